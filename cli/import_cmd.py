"""`tracekit import`: existing trace or problem datasets into the store."""

from __future__ import annotations

from typing import Annotated, Optional

import typer
from tracekit_cli.apps import app
from tracekit_cli.common import (
    QuietOpt,
    StoreOpt,
    open_store,
    out,
    parse_kv,
    print_result,
    set_quiet,
)


@app.command("import")
def import_(
    path: Annotated[
        str,
        typer.Argument(
            help="JSONL, JSON array, Parquet, a save_to_disk folder or an HF dataset id."
        ),
    ],
    map_: Annotated[
        Optional[list[str]],
        typer.Option(
            "--map",
            "-m",
            help="FIELD=COLUMN (problem, reference, completion, label, reasoning, finish_reason, teacher, id, domain, split). Dotted paths reach nested fields; commas list several columns.",
        ),
    ] = None,
    preset: Annotated[
        Optional[str], typer.Option(help="openr1, gsm8k, gsm8k-solutions, math, sharegpt.")
    ] = None,
    teacher: Annotated[
        Optional[str], typer.Option(help="The model that wrote the completions.")
    ] = None,
    source: Annotated[
        Optional[str], typer.Option(help="Dataset name recorded on prompts (default: file name).")
    ] = None,
    split: Annotated[
        Optional[str], typer.Option(help="Split recorded on the prompts (train, test, ...).")
    ] = None,
    domain: Annotated[str, typer.Option(help="Domain of the prompts (math, code, ...).")] = "math",
    fmt: Annotated[
        str, typer.Option("--format", help="auto, jsonl, json, parquet, hf, hf-disk.")
    ] = "auto",
    hf_split: Annotated[Optional[str], typer.Option(help="Split of an HF dataset to read.")] = None,
    skip_bad: Annotated[
        bool,
        typer.Option("--skip-bad", help="Skip malformed records (counted) instead of stopping."),
    ] = False,
    batch_size: Annotated[
        int | None,
        typer.Option(
            help="Records per transaction (default 4000; Parquet: about 256 MB of rows,"
            " or 122,880 rows when DuckDB reads the text itself)."
        ),
    ] = None,
    store: StoreOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Import traces (or prompts only) from a file or a Hugging Face dataset.

    Re-importing the same file adds nothing. A malformed record stops the import with FILE:LINE
    and the field, leaving the store as it was, unless --skip-bad.

    Example: tracekit import math500_traces.jsonl --map problem=question --map reference=gt
    --map completion=code --map label=score --teacher Sky-T1-32B
    """
    from tracekit.collect.importers import ImportConfig, run_import

    set_quiet(quiet)
    cfg = ImportConfig(
        path=path,
        map=parse_kv(map_),
        preset=preset,
        teacher=teacher,
        source=source,
        split=split,
        domain=domain,
        format=fmt,  # type: ignore[arg-type]
        hf_split=hf_split,
        skip_bad=skip_bad,
        batch_size=batch_size,
    )
    with open_store(store) as s:
        result = run_import(s, cfg)
    print_result(result)
    if result.counts.get("skipped_bad"):
        out.print(f"[yellow]skipped {result.counts['skipped_bad']} malformed record(s)[/]")
        for ex in result.details.get("bad_examples", []):
            out.print(f"  {ex}")
