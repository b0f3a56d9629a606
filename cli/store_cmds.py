"""Store commands: init, sql, stats, show, runs, export, models."""

from __future__ import annotations

from typing import Annotated

import typer

from tracekit_cli.apps import app
from tracekit_cli.common import QuietOpt, StoreOpt, open_store, out


@app.command()
def init(store: StoreOpt = None) -> None:
    """Create (or migrate) a store.

    Example: tracekit init --store my.duckdb
    """
    s = open_store(store)
    out.print(f"store {s.path} ready (schema version {s.schema_version()})")
    s.close()


@app.command()
def models(
    prepare: Annotated[bool, typer.Option("--prepare", help="Convert the embedded model now.")] = False,
    quiet: QuietOpt = False,
) -> None:
    """Show the embedded default model and where its converted copy is cached.

    Example: tracekit models --prepare
    """
    from tracekit.models import DEFAULT_MODEL_NAME, default_model_dir, ensure_default_model, gguf_path

    if prepare:
        ensure_default_model(quiet=quiet)
    d = default_model_dir()
    out.print(f"default  {DEFAULT_MODEL_NAME} (Apache-2.0)")
    out.print(f"  gguf   {gguf_path()}")
    out.print(f"  cache  {d} ({'ready' if (d / 'tracekit.json').exists() else 'converted on first use'})")
