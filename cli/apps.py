"""The Typer app and its command groups, shared by the command modules that register on them."""

from __future__ import annotations

import typer

CONTEXT = {"help_option_names": ["-h", "--help"]}


def _group(name: str, help: str) -> typer.Typer:
    return typer.Typer(name=name, help=help, no_args_is_help=True, context_settings=CONTEXT)


app = typer.Typer(
    name="tracekit",
    help=(
        "Reasoning-trace distillation data: collect, verify, score, select, train, evaluate and"
        " publish, with lineage in one DuckDB store.\n\n"
        "Example: tracekit import traces.jsonl --map problem=question --map completion=output"
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings=CONTEXT,
    rich_markup_mode="rich",
)

prompts_app = _group("prompts", "Add and list prompts (problems) that teachers will solve.")
score_app = _group("score", "Score traces: perplexity, length, dedup, decontam, behaviors, safety.")
select_app = _group("select", "Build training sets (SFT, REDI/DPO pairs) from SQL selections.")
datasets_app = _group("datasets", "List and compare built datasets.")
train_app = _group("train", "Train a student with LoRA: sft, redi, dpo, sft-then-redi.")
# `tracekit report` alone writes the HTML report; subcommands give the focused reports
report_app = typer.Typer(
    name="report",
    help="The HTML report of a store (no subcommand), or: decontam, filters, provenance.",
    invoke_without_command=True,
    context_settings=CONTEXT,
)

app.add_typer(prompts_app)
app.add_typer(score_app)
app.add_typer(select_app)
app.add_typer(datasets_app)
app.add_typer(train_app)
app.add_typer(report_app)
