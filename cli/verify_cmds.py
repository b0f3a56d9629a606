"""`tracekit verify`: verdicts for traces; `tracekit verify agreement A B`: verifier agreement."""

from __future__ import annotations

from typing import Annotated, Optional

import typer
from tracekit_cli.apps import CONTEXT, app
from tracekit_cli.common import (
    QuietOpt,
    StoreOpt,
    WhereOpt,
    open_store,
    out,
    print_result,
    rich_table,
    set_quiet,
)

verify_app = typer.Typer(
    name="verify",
    help="Verify traces (math, code, exact, choice, regex, majority) and compare verifiers.",
    invoke_without_command=True,
    no_args_is_help=False,
    context_settings=CONTEXT,
)
app.add_typer(verify_app)


@verify_app.callback()
def verify(
    ctx: typer.Context,
    verifier: Annotated[
        Optional[list[str]],
        typer.Option(
            "--verifier",
            "-v",
            help="auto (default: math for math prompts, code where prompts.meta has tests), math,"
            " code, exact, choice, regex, majority. Repeat for several.",
        ),
    ] = None,
    where: WhereOpt = None,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 2,
    timeout: Annotated[float, typer.Option(help="Seconds per item; then status timeout.")] = 10.0,
    pseudo_reference: Annotated[
        str,
        typer.Option(help="none, or majority: vote a pseudo-reference where prompts have none."),
    ] = "none",
    regex: Annotated[
        Optional[str], typer.Option(help="Pattern for the regex verifier (group 1 is the answer).")
    ] = None,
    code_timeout: Annotated[
        float, typer.Option(help="Wall-clock seconds per code test case.")
    ] = 5.0,
    code_memory_mb: Annotated[int, typer.Option(help="Memory limit of a code run (MB).")] = 512,
    format_checks: Annotated[
        bool,
        typer.Option("--format-checks/--no-format-checks", help="Also write format:<kind> flags."),
    ] = True,
    expect_think: Annotated[
        bool, typer.Option(help="Flag traces without a thinking block.")
    ] = False,
    limit: Annotated[
        Optional[int], typer.Option(help="At most this many traces per verifier.")
    ] = None,
    batch_size: Annotated[int, typer.Option(help="Verdicts per transaction.")] = 2000,
    store: StoreOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Verify every selected trace that has no verdict from the verifier yet (idempotent).

    Each verdict row has status ok, no_answer, timeout, error or no_reference; a hanging input
    is killed at the deadline and recorded as timeout while the rest continue.

    Example: tracekit verify --verifier math --workers 2 --where "teacher = 'Sky-T1-32B'"
    """
    if ctx.invoked_subcommand is not None:
        return
    from tracekit.verify import VerifyConfig, run_verify

    set_quiet(quiet)
    cfg = VerifyConfig(
        verifiers=verifier or ["auto"],
        where=where,
        workers=workers,
        timeout=timeout,
        pseudo_reference=pseudo_reference,  # type: ignore[arg-type]
        regex=regex,
        code_timeout=code_timeout,
        code_memory_mb=code_memory_mb,
        format_checks=format_checks,
        expect_think=expect_think,
        limit=limit,
        batch_size=batch_size,
    )
    with open_store(store) as s:
        result = run_verify(s, cfg)
    print_result(result)


@verify_app.command("agreement")
def agreement_cmd(
    a: Annotated[str, typer.Argument(help="First verifier, e.g. math.")],
    b: Annotated[str, typer.Argument(help="Second verifier, e.g. source (imported labels).")],
    where: WhereOpt = None,
    show: Annotated[int, typer.Option(help="List this many disagreements.")] = 10,
    store: StoreOpt = None,
) -> None:
    """How often two verifiers agree on the traces both judged, and where they differ.

    Example: tracekit verify agreement math source --where "source = 'math500'"
    """
    from tracekit.verify.stats import agreement, disagreements_sql

    with open_store(store, read_only=True) as s:
        stats = agreement(s, a, b, where=where)
        sql = disagreements_sql(a, b)
        if where:
            sql = sql.replace(
                "ORDER BY",
                f"AND va.trace_id IN (SELECT trace_id FROM v_traces WHERE {where})\nORDER BY",
                1,
            )
        rows = s.dicts(sql + f" LIMIT {int(show)}") if show > 0 else []
    out.print(
        rich_table([{"metric": k, "value": v} for k, v in stats.items()], title=f"{a} vs {b}")
    )
    if rows:
        out.print(rich_table(rows, title="disagreements"))
    out.print(
        f'all disagreements: tracekit sql "{" ".join(disagreements_sql(a, b).split())}"',
        highlight=False,
    )
