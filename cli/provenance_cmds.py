"""`tracekit provenance`, `tracekit score perplexity` and `tracekit report provenance`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from tracekit_cli.apps import app, report_app, score_app
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

BatchOpt = Annotated[int, typer.Option("--batch-size", help="Sequences per forward pass.")]
MaxLenOpt = Annotated[
    Optional[int],
    typer.Option(
        "--max-length",
        help="Tokens per sequence; longer ones lose tokens from the left. Default: the model's limit.",
    ),
]
DeviceOpt = Annotated[
    Optional[str],
    typer.Option("--device", help="cpu, cuda, cuda:1 ... Default: cuda if available."),
]
OverwriteOpt = Annotated[
    bool, typer.Option("--overwrite", help="Recompute traces that already have results.")
]
LimitOpt = Annotated[Optional[int], typer.Option("--limit", help="At most this many traces.")]


@score_app.command("perplexity")
def perplexity(
    model: Annotated[
        str, typer.Option("--model", "-m", help="default, hf:PATH_OR_ID, or a LoRA adapter folder.")
    ] = "default",
    where: WhereOpt = None,
    batch_size: BatchOpt = 8,
    max_length: MaxLenOpt = None,
    device: DeviceOpt = None,
    overwrite: OverwriteOpt = False,
    limit: LimitOpt = None,
    store: StoreOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Mean token NLL and perplexity of each trace under a model, in its chat context.

    Stored as scores `nll:<model>` and `ppl:<model>`; traces already scored are skipped.

    Example: tracekit score perplexity --model default --where "correct"
    """
    from tracekit.score.perplexity import PerplexityConfig, run_perplexity

    set_quiet(quiet)
    cfg = PerplexityConfig(
        model=model,
        where=where,
        batch_size=batch_size,
        max_length=max_length,
        device=device,
        overwrite=overwrite,
        limit=limit,
    )
    with open_store(store) as s:
        result = run_perplexity(s, cfg)
    print_result(result)


@app.command("provenance")
def provenance(
    teacher: Annotated[
        str, typer.Option("--teacher", help="Teacher SPEC (default, hf:PATH_OR_ID).")
    ],
    student: Annotated[str, typer.Option("--student", help="Original student SPEC.")],
    distilled: Annotated[
        Optional[str],
        typer.Option("--distilled", help="Distilled student SPEC (a LoRA adapter folder works)."),
    ] = None,
    beta: Annotated[float, typer.Option("--beta", help="Margin on sentence probabilities.")] = 0.1,
    where: WhereOpt = None,
    batch_size: BatchOpt = 8,
    max_length: MaxLenOpt = None,
    device: DeviceOpt = None,
    overwrite: OverwriteOpt = False,
    limit: LimitOpt = None,
    store: StoreOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Trace where each sentence comes from: teacher, student, shared or boosted.

    Segments each trace into sentences, scores every sentence under each model given the same
    preceding context, and stores them in `sentences`; per trace it also stores the scores
    `teacher_sentences` and `teacher_ratio` (for teacher-guided selection).

    Example: tracekit provenance --teacher hf:Qwen/QwQ-32B --student hf:Qwen/Qwen2.5-1.5B-Instruct --distilled runs/sft/adapter
    """
    from tracekit.score.provenance import ProvenanceConfig, run_provenance

    set_quiet(quiet)
    cfg = ProvenanceConfig(
        teacher=teacher,
        student=student,
        distilled=distilled,
        beta=beta,
        where=where,
        batch_size=batch_size,
        max_length=max_length,
        device=device,
        overwrite=overwrite,
        limit=limit,
    )
    with open_store(store) as s:
        result = run_provenance(s, cfg)
    print_result(result)


@report_app.command("provenance")
def report_provenance(
    run: Annotated[
        Optional[str],
        typer.Option("--run", help="One provenance run id (default: all still in the store)."),
    ] = None,
    plot: Annotated[
        Optional[Path], typer.Option("--plot", help="Also write a PNG plot here.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    store: StoreOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Category shares per provenance run, by third of the response and by correctness.

    Example: tracekit report provenance --plot provenance.png
    """
    from tracekit.report.provenance import provenance_summary, summary_rows, write_provenance_plot

    set_quiet(quiet)
    with open_store(store, read_only=True) as s:
        summary = provenance_summary(s, run)
    if as_json:
        out.print_json(json.dumps(summary, default=str))
    else:
        if not summary["runs"]:
            out.print("no provenance results in this store (run `tracekit provenance` first)")
        for r in summary["runs"]:
            title = f"{r['run_id']}: T={r['teacher']} S={r['student']}"
            if r["distilled"]:
                title += f" D={r['distilled']}"
            out.print(rich_table(summary_rows(r), title=title))
            corr = r["teacher_ratio_correct_corr"]
            ratios = {
                g: r["by_correctness"][g]["mean_teacher_ratio"] for g in ("correct", "incorrect")
            }
            out.print(
                f"traces {r['traces']}, sentences {r['sentences']} ({r['unscored']} unscored), beta {r['beta']};"
                f" mean teacher ratio correct {_f(ratios['correct'])} vs incorrect {_f(ratios['incorrect'])};"
                f" corr(teacher ratio, correct) {_f(corr)}"
            )
    if plot is not None:
        path = write_provenance_plot(summary, plot)
        if not quiet:
            out.print(f"plot written to {path}")


def _f(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.3f}"
