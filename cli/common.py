"""Options and rendering shared by every command, so `--store` means the same thing everywhere."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from tracekit.store import RunResult, Store

# wide when piped (logs, tests); the terminal's width otherwise
_WIDTH = None if sys.stdout.isatty() else int(os.environ.get("COLUMNS", "160"))
out = Console(soft_wrap=True, width=_WIDTH)
err = Console(stderr=True)

StoreOpt = Annotated[
    Optional[Path],
    typer.Option(
        "--store",
        "-s",
        help="Store file. Default: $TRACEKIT_STORE, else ./traces.duckdb.",
        show_default=False,
    ),
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars or chatter.")]
WhereOpt = Annotated[
    Optional[str],
    typer.Option("--where", help="SQL filter over v_traces columns, e.g. \"teacher = 'x'\"."),
]


def open_store(path: Path | None, read_only: bool = False) -> Store:
    return Store(path, read_only=read_only)


def set_quiet(quiet: bool) -> None:
    from tracekit.progress import set_quiet as _sq

    _sq(quiet)


def parse_kv(items: list[str] | None, what: str = "--map") -> dict[str, str]:
    """`key=value` pairs from repeated options."""
    result: dict[str, str] = {}
    for item in items or []:
        if "=" not in item:
            raise typer.BadParameter(f"{what} expects key=value, got {item!r}")
        k, v = item.split("=", 1)
        result[k.strip()] = v.strip()
    return result


def rich_table(rows: list[dict[str, Any]], title: str | None = None) -> Table:
    table = Table(title=title, show_lines=False)
    if not rows:
        table.add_column("(no rows)")
        return table
    for col in rows[0]:
        table.add_column(str(col), overflow="fold")
    for r in rows:
        table.add_row(*[_fmt(v) for v in r.values()])
    return table


def _fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (dict, list)):
        return json.dumps(v, default=str)
    return str(v)


def print_result(result: RunResult, quiet: bool = False) -> None:
    """One line per run: status, counts and time, so scripts can grep and people can read."""
    counts = ", ".join(f"{k}={v}" for k, v in sorted(result.counts.items()))
    style = "green" if result.status == "ok" else "red"
    out.print(
        f"[{style}]{result.stage}[/] {result.status} in {result.seconds:.1f}s"
        f" (run {result.run_id}){': ' + counts if counts else ''}"
    )
