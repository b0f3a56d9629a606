"""`tracekit eval --model SPEC --benchmark ...` and `tracekit eval compare RUN_A RUN_B`.

`eval` is a Typer group whose callback runs the evaluation when no subcommand is given, so both
spellings of the issue work: the options belong to `eval` itself, `compare` is its one subcommand.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from tracekit_cli.apps import CONTEXT, app
from tracekit_cli.common import QuietOpt, StoreOpt, open_store, out, print_result, set_quiet

eval_app = typer.Typer(
    name="eval",
    help=(
        "Evaluate a model: K samples per benchmark problem, verified and stored as student traces;"
        " pass@1 with standard error, pass@k, mean tokens, truncation rate.\n\n"
        "Example: tracekit eval --model students/redi --benchmark gsm8k --data-dir ../shared/data"
        " --samples 4 --limit 50\n\n"
        "Compare two eval runs: tracekit eval compare RUN_A RUN_B"
    ),
    invoke_without_command=True,
    no_args_is_help=True,
    context_settings=CONTEXT,
)
app.add_typer(eval_app)


def _f(x: Any, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x:.{digits}f}"


def render_eval(details: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(title=f"eval of {details.get('student', '')}")
    ks: list[str] = []
    for m in details["benchmarks"].values():
        for k in m.get("pass@k", {}):
            if k not in ks and k != "pass@1":
                ks.append(k)
    for col in ["benchmark", "problems", "K", "pass@1", "± se", *ks, "mean tokens", "truncated"]:
        table.add_column(col, justify="left" if col == "benchmark" else "right")
    for name, m in details["benchmarks"].items():
        table.add_row(
            name,
            str(m.get("problems", 0)),
            str(m.get("samples", 0)),
            _f(m.get("pass@1")),
            _f(m.get("se")),
            *[_f(m.get("pass@k", {}).get(k)) for k in ks],
            _f(m.get("mean_tokens"), 1),
            _f(m.get("truncation_rate")),
        )
    out.print(table)
    for name, m in details["benchmarks"].items():
        if m.get("missing") or m.get("unverified"):
            out.print(
                f"[yellow]{name}[/]: {m.get('missing', 0)} samples missing (collect errors),"
                f" {m.get('unverified', 0)} without a verdict (counted as wrong)"
            )


@eval_app.callback()
def eval_cmd(
    ctx: typer.Context,
    model: Annotated[
        str,
        typer.Option(
            "--model",
            "-m",
            help="Model SPEC: default, a trained student folder, hf:ID, vllm:ID, openai:MODEL@URL.",
        ),
    ] = "default",
    benchmark: Annotated[
        Optional[list[str]],
        typer.Option(
            "--benchmark",
            "-b",
            help="PRESET (math500, gsm8k, aime24, aime25, amc23), PRESET=FILE, or FILE. Repeatable.",
        ),
    ] = None,
    data_dir: Annotated[
        Optional[Path],
        typer.Option(
            "--data-dir",
            help="Folder where presets find their files (default $TRACEKIT_BENCH_DIR).",
        ),
    ] = None,
    samples: Annotated[int, typer.Option("--samples", "-k", help="Samples per problem (K).")] = 4,
    temperature: Annotated[float, typer.Option("--temperature")] = 0.6,
    top_p: Annotated[float, typer.Option("--top-p")] = 0.95,
    max_tokens: Annotated[int, typer.Option("--max-tokens")] = 1024,
    backend: Annotated[
        Optional[str],
        typer.Option("--backend", help="hf | vllm | openai (default: from the SPEC)."),
    ] = None,
    limit: Annotated[
        Optional[int], typer.Option("--limit", help="First N problems of each benchmark.")
    ] = None,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    verifier: Annotated[
        Optional[list[str]], typer.Option("--verifier", help="Verifier(s) [math].")
    ] = None,
    batch_size: Annotated[
        int, typer.Option("--batch-size", help="Prompts per generate call / commit.")
    ] = 8,
    device: Annotated[
        Optional[str], typer.Option("--device", help="cpu | cuda | cuda:1 (hf backend).")
    ] = None,
    store: StoreOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Evaluate a model on benchmarks (see `tracekit eval --help`)."""
    if ctx.invoked_subcommand is not None:
        return
    from pydantic import ValidationError

    from tracekit.errors import ConfigError
    from tracekit.evaluate.eval import EvalConfig, run_eval

    set_quiet(quiet)
    if not benchmark:
        raise ConfigError("give at least one --benchmark (a preset, PRESET=FILE or FILE)")
    try:
        cfg = EvalConfig(
            model=model,
            benchmarks=benchmark,
            data_dir=str(data_dir) if data_dir else None,
            samples=samples,
            temperature=temperature,
            top_p=top_p,
            max_tokens=max_tokens,
            backend=backend,
            limit=limit,
            seed=seed,
            verifiers=verifier or ["math"],
            batch_size=batch_size,
            device=device,
        )
    except ValidationError as e:
        first = e.errors()[0]
        raise ConfigError(f"--{'-'.join(str(x) for x in first['loc'])}: {first['msg']}") from None
    with open_store(store) as s:
        result = run_eval(s, cfg)
    render_eval(result.details)
    print_result(result, quiet)


@eval_app.command("compare")
def compare_cmd(
    run_a: Annotated[str, typer.Argument(help="Baseline eval run id (or a unique prefix).")],
    run_b: Annotated[str, typer.Argument(help="Eval run id to compare against it.")],
    store: StoreOpt = None,
) -> None:
    """Per-benchmark pass@1 of two eval runs, the paired per-problem difference and its p-value.

    Example: tracekit eval compare eval-20250101T120000-abc123 eval-20250101T130000-def456
    """
    from rich.table import Table

    from tracekit.evaluate.compare import compare_runs

    with open_store(store, read_only=True) as s:
        diffs = compare_runs(s, run_a, run_b)
    table = Table(title=f"B = {run_b}  vs  A = {run_a}")
    for col in [
        "benchmark",
        "problems",
        "A pass@1",
        "B pass@1",
        "B - A",
        "± se",
        "p (paired)",
        "B better",
        "A better",
    ]:
        table.add_column(col, justify="left" if col == "benchmark" else "right")
    for d in diffs:
        table.add_row(
            d.benchmark,
            str(d.problems),
            _f(d.pass1_a),
            _f(d.pass1_b),
            f"{d.diff:+.3f}",
            _f(d.se_diff),
            _f(d.p_value, 4),
            str(d.b_better),
            str(d.a_better),
        )
    out.print(table)
