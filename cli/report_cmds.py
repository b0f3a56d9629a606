"""`tracekit report`: the self-contained HTML report of a store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from tracekit_cli.apps import report_app
from tracekit_cli.common import StoreOpt, open_store, out


@report_app.callback()
def report(
    ctx: typer.Context,
    output: Annotated[Path, typer.Option("--output", "-o", help="HTML file to write.")] = Path(
        "report.html"
    ),
    title: Annotated[str, typer.Option(help="Title of the report.")] = "tracekit report",
    store: StoreOpt = None,
) -> None:
    """Write one self-contained HTML report (tables and embedded plots): funnel, teachers, pass
    rates, flags, datasets, training curves, eval before/after, provenance.

    Example: tracekit report --output report.html
    """
    if ctx.invoked_subcommand is not None:
        return
    from tracekit.report.html import ReportConfig, run_report

    with open_store(store) as s:
        result = run_report(s, ReportConfig(output=str(output), title=title))
    out.print(f"wrote {output} ({result.counts.get('images', 0)} plots)")
