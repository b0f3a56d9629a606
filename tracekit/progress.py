"""Progress bars for long loops, silenced by `--quiet` (or TRACEKIT_QUIET=1) for scripts and CI."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

console = Console(stderr=True)


def is_quiet() -> bool:
    return os.environ.get("TRACEKIT_QUIET", "") not in ("", "0", "false")


def set_quiet(quiet: bool) -> None:
    if quiet:
        os.environ["TRACEKIT_QUIET"] = "1"


class _Bar:
    def __init__(self, progress: Progress | None, task: int | None) -> None:
        self._p, self._t = progress, task

    def advance(self, n: float = 1) -> None:
        if self._p is not None:
            self._p.advance(self._t, n)

    def update(self, **kw: object) -> None:
        if self._p is not None:
            self._p.update(self._t, **kw)


@contextmanager
def progress(description: str, total: float | None, *, unit: str = "items") -> Iterator[_Bar]:
    """A rich bar with rate and ETA on stderr; a no-op when quiet or when stderr is not a TTY
    and TRACEKIT_PROGRESS is unset (logs of CI runs stay readable)."""
    show = not is_quiet() and (console.is_terminal or os.environ.get("TRACEKIT_PROGRESS"))
    if not show:
        yield _Bar(None, None)
        return
    columns = [
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TextColumn("{task.speed:>8.1f} " + unit + "/s" if False else ""),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    ]
    with Progress(*columns, console=console, transient=False) as p:
        task = p.add_task(description, total=total)
        yield _Bar(p, task)


def info(message: str) -> None:
    if not is_quiet():
        console.print(message)
