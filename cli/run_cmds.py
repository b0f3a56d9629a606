"""`tracekit run RECIPE`: a YAML recipe of stages, resumable as a whole."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Optional

import typer
from tracekit_cli.apps import app
from tracekit_cli.common import QuietOpt, StoreOpt, err, out, rich_table, set_quiet


@app.command("run")
def run(
    recipe: Annotated[
        str,
        typer.Argument(
            help="A recipe YAML file, or a shipped name (quickstart, multi-teacher, ...)."
        ),
    ],
    set_: Annotated[
        Optional[list[str]], typer.Option("--set", help="Override a recipe variable: name=value.")
    ] = None,
    from_step: Annotated[Optional[str], typer.Option("--from", help="Start at this step.")] = None,
    until_step: Annotated[
        Optional[str], typer.Option("--until", help="Stop after this step.")
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", help="Validate and print the plan with estimated work; run nothing."
        ),
    ] = False,
    store: StoreOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Run a recipe: validated as a whole first, then step by step; a re-run skips finished work.

    Example: tracekit run pipelines/quickstart.yaml --set samples=8 --until verify
    """
    from tracekit.recipe import RecipeFailed, load_recipe, parse_sets, plan, run_recipe

    set_quiet(quiet)
    r = load_recipe(recipe, parse_sets(set_), store=str(store) if store else None)
    if dry_run:
        rows = plan(r, from_step, until_step)
        cols = ["step", "stage", "plan", "max_new_tokens", "max_cost_usd"]
        out.print(
            rich_table(
                [{c: row.get(c) for c in cols} for row in rows],
                title=f"plan: {r.name} (store {r.store})",
            )
        )
        return
    t0 = time.perf_counter()

    def on_step(step, event: str) -> None:
        if event == "start":
            err.print(f"[bold cyan]▶ {step.name}[/] ({step.stage})")
        elif event == "skipped":
            err.print("  [dim]skipped: finished earlier with the same config[/]")

    try:
        outcomes = run_recipe(r, from_step, until_step, on_step=on_step)
    except RecipeFailed as e:
        _summary(r, e.outcomes, time.perf_counter() - t0)
        raise
    _summary(r, outcomes, time.perf_counter() - t0)


def _summary(recipe, outcomes, seconds: float) -> None:
    rows = [
        {
            "step": o.step,
            "stage": o.stage,
            "status": o.status,
            "seconds": round(o.seconds, 1),
            "counts": ", ".join(f"{k}={v}" for k, v in sorted(o.counts.items()))[:110],
        }
        for o in outcomes
    ]
    out.print(
        rich_table(rows, title=f"{recipe.name}: {len(outcomes)} step(s) in {seconds / 60:.1f} min")
    )
    out.print(
        f'store   {recipe.store}   (tracekit sql "SELECT * FROM v_teachers" --store {recipe.store})'
    )
    base = recipe.vars.get("out")
    if base and Path(str(base)).exists():
        for name in ("report.html", "datasets", "student", "hub"):
            p = Path(str(base)) / name
            if p.exists():
                out.print(f"{name:<12} {p}")
