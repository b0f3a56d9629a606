"""Store commands: init, sql, stats, show, runs, export, models."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.panel import Panel
from tracekit_cli.apps import app
from tracekit_cli.common import QuietOpt, StoreOpt, open_store, out, rich_table


@app.command()
def init(store: StoreOpt = None) -> None:
    """Create (or migrate) a store.

    Example: tracekit init --store my.duckdb
    """
    s = open_store(store)
    out.print(f"store {s.path} ready (schema version {s.schema_version()})")
    s.close()


@app.command()
def sql(
    query: Annotated[str, typer.Argument(help="A SQL query over the store's tables and views.")],
    fmt: Annotated[
        str, typer.Option("--format", "-f", help="table, csv, json or parquet.")
    ] = "table",
    output: Annotated[
        Optional[Path], typer.Option("--output", "-o", help="Write to this file instead of stdout.")
    ] = None,
    write: Annotated[
        bool, typer.Option("--write", help="Open the store for writing (UPDATE/DELETE).")
    ] = False,
    store: StoreOpt = None,
) -> None:
    """Run SQL on the store (read-only unless --write). Tables: prompts, traces, verdicts, scores,
    flags, sentences, datasets, dataset_rows, runs; views: v_traces, v_prompt_stats, v_teachers.

    Example: tracekit sql "SELECT teacher, accuracy FROM v_teachers" --format csv
    """
    from tracekit.store.queries import export_query, format_rows, run_query

    with open_store(store, read_only=not write) as s:
        if fmt == "parquet" or (output is not None and fmt == "table"):
            if output is None:
                raise typer.BadParameter("--format parquet needs --output FILE")
            n = export_query(s, query, output, None if fmt == "table" else fmt)
            out.print(f"wrote {n} rows to {output}")
            return
        cols, rows = run_query(s, query)
    if fmt == "table":
        out.print(rich_table([dict(zip(cols, r, strict=False)) for r in rows]))
        return
    text = format_rows(cols, rows, fmt)
    if output:
        output.write_text(text)
        out.print(f"wrote {len(rows)} rows to {output}")
    else:
        sys.stdout.write(text)


@app.command()
def stats(
    verdicts: Annotated[
        bool,
        typer.Option(
            "--verdicts", help="Accuracy per teacher and verifier, and verifier agreement."
        ),
    ] = False,
    store: StoreOpt = None,
) -> None:
    """Counts per table, teacher, source and verdict, and trace length quantiles.

    Example: tracekit stats --verdicts
    """
    from tracekit.store.queries import store_stats

    with open_store(store, read_only=True) as s:
        data = store_stats(s)
        for name, rows in data.items():
            if rows:
                out.print(rich_table(rows, title=name))
        if verdicts:
            _verdict_tables(s)


def _verdict_tables(s) -> None:
    try:
        from tracekit.verify.stats import agreement, verdict_summary
    except ImportError:
        out.print("[yellow]verification statistics need the verify stage[/]")
        return
    out.print(rich_table(verdict_summary(s), title="accuracy per teacher and verifier"))
    verifiers = [r[0] for r in s.fetchall("SELECT DISTINCT verifier FROM verdicts ORDER BY 1")]
    rows = []
    for i, a in enumerate(verifiers):
        for b in verifiers[i + 1 :]:
            ag = agreement(s, a, b)
            if ag.get("n_both"):
                rows.append({"a": a, "b": b, **ag})
    if rows:
        out.print(rich_table(rows, title="verifier agreement"))


@app.command()
def show(
    trace_id: Annotated[str, typer.Argument(help="A trace id (or a unique prefix).")],
    full: Annotated[
        bool, typer.Option("--full", help="Print the whole text, not the first 2,000 characters.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    store: StoreOpt = None,
) -> None:
    """Show one trace with its prompt, verdicts, scores, flags and lineage.

    Example: tracekit show 3f9a2c
    """
    from tracekit.store.queries import show_trace

    with open_store(store, read_only=True) as s:
        data = show_trace(s, trace_id)
    if as_json:
        sys.stdout.write(json.dumps(data, default=str, indent=2, ensure_ascii=False) + "\n")
        return
    t, p = data["trace"], data["prompt"]
    head = {
        k: t[k]
        for k in (
            "trace_id",
            "prompt_id",
            "teacher",
            "backend",
            "origin",
            "sample_index",
            "finish_reason",
            "completion_tokens",
            "run_id",
        )
    }
    out.print(rich_table([head], title="trace"))
    out.print(
        Panel(p["problem"], title=f"problem ({p['source']}, reference: {p['reference_answer']})")
    )
    text = t["text"] or ""
    if not full and len(text) > 2000:
        text = text[:2000] + f"\n... [{len(t['text']) - 2000} more characters: --full]"
    out.print(Panel(text, title="text"))
    for key in ("verdicts", "scores", "flags"):
        if data[key]:
            out.print(rich_table(data[key], title=key))
    out.print(f"sentences: {data['sentences']}")
    lin = data["lineage"]
    if lin["run"]:
        out.print(rich_table(lin["run"], title="made by run"))
    if lin["datasets"]:
        out.print(rich_table(lin["datasets"], title="used in datasets"))


@app.command()
def runs(
    limit: Annotated[int, typer.Option(help="How many runs, newest first.")] = 20,
    stage: Annotated[Optional[str], typer.Option(help="Only this stage.")] = None,
    store: StoreOpt = None,
) -> None:
    """The run log: every stage execution with status, counts and errors.

    Example: tracekit runs --stage import
    """
    from tracekit.store.queries import list_runs

    with open_store(store, read_only=True) as s:
        out.print(rich_table(list_runs(s, limit, stage), title="runs"))


@app.command()
def export(
    query: Annotated[
        str, typer.Option("--query", help="SQL whose result is exported.")
    ] = "SELECT * FROM v_traces",
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Target file (.parquet, .csv, .json, .jsonl).")
    ] = Path("traces.parquet"),
    store: StoreOpt = None,
) -> None:
    """Export a query to Parquet, CSV or JSON (DuckDB COPY).

    Example: tracekit export --query "SELECT * FROM traces WHERE teacher = 'x'" --output x.parquet
    """
    from tracekit.store.queries import export_query

    with open_store(store, read_only=True) as s:
        n = export_query(s, query, output)
    out.print(f"wrote {n} rows to {output}")


@app.command()
def models(
    prepare: Annotated[
        bool, typer.Option("--prepare", help="Convert the embedded model now.")
    ] = False,
    quiet: QuietOpt = False,
) -> None:
    """Show the embedded default model and where its converted copy is cached.

    Example: tracekit models --prepare
    """
    from tracekit.models import (
        DEFAULT_MODEL_NAME,
        default_model_dir,
        ensure_default_model,
        gguf_path,
    )

    if prepare:
        ensure_default_model(quiet=quiet)
    d = default_model_dir()
    out.print(f"default  {DEFAULT_MODEL_NAME} (Apache-2.0)")
    out.print(f"  gguf   {gguf_path()}")
    out.print(
        f"  cache  {d} ({'ready' if (d / 'tracekit.json').exists() else 'converted on first use'})"
    )
