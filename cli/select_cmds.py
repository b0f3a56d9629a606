"""`tracekit select sft|pairs` (training-set builders) and `tracekit datasets [list|diff]`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from tracekit_cli.apps import datasets_app, select_app
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

NameArg = Annotated[
    str, typer.Argument(help="Dataset name (a folder name; how `train --dataset` finds it).")
]
VerifierOpt = Annotated[
    Optional[str],
    typer.Option("--verifier", help="Whose verdicts count (default: the final verdict per trace)."),
]
ExcludeOpt = Annotated[
    Optional[str],
    typer.Option(
        "--exclude-flags",
        help="Comma list of flag families or globs to drop (prompt-level flags drop the whole prompt)."
        " Default: dup,decontam:*,safety:*. 'none' keeps all.",
    ),
]
TruncOpt = Annotated[
    bool,
    typer.Option(
        "--exclude-truncated/--no-exclude-truncated", help="Drop traces cut at the token limit."
    ),
]
MaxTokOpt = Annotated[
    Optional[int],
    typer.Option(
        "--max-tokens", help="Drop completions longer than N student tokens (never truncated)."
    ),
]
TokOpt = Annotated[
    Optional[str],
    typer.Option(
        "--tokenizer", help="Student tokenizer SPEC for lengths (default: the embedded student)."
    ),
]
ThinkOpt = Annotated[
    str,
    typer.Option(
        "--think-format",
        help="think | thought | plain | raw, or a template with {reasoning} and {answer}.",
    ),
]
SystemOpt = Annotated[
    Optional[str], typer.Option("--system-prompt", help="A system message before each prompt.")
]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed of every shuffle and of the split.")]
EvalOpt = Annotated[
    float, typer.Option("--eval-fraction", help="Share of PROMPTS held out as split 'eval'.")
]
OutputOpt = Annotated[
    Optional[Path],
    typer.Option("--output", "-o", help="Dataset folder (default: <store dir>/datasets/NAME)."),
]
LicenseOpt = Annotated[
    Optional[str],
    typer.Option("--license", help="License id for the card (default: from the sources)."),
]


def _flags(value: str | None) -> dict[str, Any]:
    if value is None:
        return {}
    return {"exclude_flags": [p for p in value.split(",") if p.strip()]}


def _show_build(result: Any, quiet: bool) -> None:
    print_result(result, quiet)
    if result.status != "ok":
        return
    d = result.details
    out.print(
        f"dataset [bold]{d.get('name')}[/] ({d.get('kind')}) -> {d.get('path')}  fingerprint {d.get('fingerprint')}"
    )


@select_app.command("sft")
def select_sft(
    name: NameArg,
    where: WhereOpt = None,
    verifier: VerifierOpt = None,
    per_prompt: Annotated[
        int, typer.Option("--per-prompt", help="Traces per prompt (0 = all).")
    ] = 1,
    strategy: Annotated[
        str,
        typer.Option("--strategy", help="first | shortest | random | teacher-guided | diverse."),
    ] = "first",
    max_tokens: MaxTokOpt = None,
    tokenizer: TokOpt = None,
    balance_length: Annotated[
        bool,
        typer.Option(
            "--balance-length", help="Trim over-represented thought lengths (log-length buckets)."
        ),
    ] = False,
    length_buckets: Annotated[
        int, typer.Option("--length-buckets", help="Buckets for --balance-length.")
    ] = 4,
    exclude_flags: ExcludeOpt = None,
    exclude_truncated: TruncOpt = True,
    think_format: ThinkOpt = "think",
    system_prompt: SystemOpt = None,
    seed: SeedOpt = 42,
    eval_fraction: EvalOpt = 0.0,
    teacher_score: Annotated[
        str, typer.Option("--teacher-score", help="Score read by --strategy teacher-guided.")
    ] = "teacher_sentences",
    output: OutputOpt = None,
    license: LicenseOpt = None,
    store: StoreOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Build an SFT set: verified-correct traces, capped per prompt, as TRL prompt/completion rows.

    Example: tracekit select sft gsm8k-sft --per-prompt 1 --strategy shortest --eval-fraction 0.05
    """
    from tracekit.select.sft import SelectSFTConfig, run_select_sft

    set_quiet(quiet)
    cfg = SelectSFTConfig(
        name=name,
        where=where,
        verifier=verifier,
        per_prompt=per_prompt,
        strategy=strategy,  # type: ignore[arg-type]
        max_tokens=max_tokens,
        tokenizer=tokenizer,
        balance_length=balance_length,
        length_buckets=length_buckets,
        exclude_truncated=exclude_truncated,
        think_format=think_format,
        system_prompt=system_prompt,
        seed=seed,
        eval_fraction=eval_fraction,
        teacher_score=teacher_score,
        output=str(output) if output else None,
        license=license,
        **_flags(exclude_flags),
    )
    with open_store(store) as s:
        _show_build(run_select_sft(s, cfg), quiet)


@select_app.command("pairs")
def select_pairs(
    name: NameArg,
    kind: Annotated[
        str, typer.Option("--kind", help="redi | dpo (same rows; recorded for training).")
    ] = "redi",
    pairing: Annotated[
        str, typer.Option("--pairing", help="first | all | hardest | longest-shortest.")
    ] = "first",
    max_pairs_per_prompt: Annotated[
        Optional[int],
        typer.Option("--max-pairs-per-prompt", help="Default 1 (unlimited for --pairing all)."),
    ] = None,
    ppl_score: Annotated[
        Optional[str],
        typer.Option("--ppl-score", help="Perplexity score for --pairing hardest (ppl:<model>)."),
    ] = None,
    where: WhereOpt = None,
    verifier: VerifierOpt = None,
    max_tokens: MaxTokOpt = None,
    tokenizer: TokOpt = None,
    exclude_flags: ExcludeOpt = None,
    exclude_truncated: TruncOpt = True,
    think_format: ThinkOpt = "think",
    system_prompt: SystemOpt = None,
    seed: SeedOpt = 42,
    eval_fraction: EvalOpt = 0.0,
    output: OutputOpt = None,
    license: LicenseOpt = None,
    store: StoreOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Build REDI/DPO pairs: a correct (chosen) and an incorrect (rejected) trace of the same prompt.

    Example: tracekit select pairs gsm8k-redi --kind redi --pairing first
    """
    from tracekit.select.pairs import SelectPairsConfig, run_select_pairs

    set_quiet(quiet)
    cfg = SelectPairsConfig(
        name=name,
        kind=kind,  # type: ignore[arg-type]
        pairing=pairing,  # type: ignore[arg-type]
        max_pairs_per_prompt=max_pairs_per_prompt,
        ppl_score=ppl_score,
        where=where,
        verifier=verifier,
        max_tokens=max_tokens,
        tokenizer=tokenizer,
        exclude_truncated=exclude_truncated,
        think_format=think_format,
        system_prompt=system_prompt,
        seed=seed,
        eval_fraction=eval_fraction,
        output=str(output) if output else None,
        license=license,
        **_flags(exclude_flags),
    )
    with open_store(store) as s:
        _show_build(run_select_pairs(s, cfg), quiet)


def _list(store: Path | None, all_builds: bool, as_json: bool) -> None:
    from tracekit.select import list_datasets

    with open_store(store, read_only=True) as s:
        rows = list_datasets(s, all_builds)
    if as_json:
        out.print_json(json.dumps(rows, default=str))
    else:
        out.print(rich_table(rows, title="datasets"))


AllOpt = Annotated[bool, typer.Option("--all", help="Every build, not only the latest per name.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="JSON instead of a table.")]


@datasets_app.callback(invoke_without_command=True, no_args_is_help=False)
def datasets_default(
    ctx: typer.Context, store: StoreOpt = None, all_builds: AllOpt = False, as_json: JsonOpt = False
) -> None:
    """List and compare built datasets (`tracekit datasets` alone lists them).

    Example: tracekit datasets --store traces.duckdb
    """
    if ctx.invoked_subcommand is None:
        _list(store, all_builds, as_json)


@datasets_app.command("list")
def datasets_list(
    store: StoreOpt = None, all_builds: AllOpt = False, as_json: JsonOpt = False
) -> None:
    """List built datasets with their counts (latest build per name unless --all).

    Example: tracekit datasets list --all
    """
    _list(store, all_builds, as_json)


@datasets_app.command("diff")
def datasets_diff(
    a: Annotated[str, typer.Argument(help="Dataset A: a name (latest build) or a dataset id.")],
    b: Annotated[str, typer.Argument(help="Dataset B.")],
    limit: Annotated[int, typer.Option("--limit", help="Traces listed per side (0 = all).")] = 20,
    as_json: JsonOpt = False,
    store: StoreOpt = None,
) -> None:
    """Traces added and removed from build A to build B (and rows, for pair sets).

    Example: tracekit datasets diff gsm8k-sft-v1 gsm8k-sft-v2
    """
    from tracekit.select import diff_datasets

    with open_store(store, read_only=True) as s:
        d = diff_datasets(s, a, b, limit=limit or None)
    if as_json:
        out.print_json(
            json.dumps({"counts": d.counts, "added": d.added, "removed": d.removed}, default=str)
        )
        return
    c = d.counts
    out.print(
        f"{d.a['name']} ({d.a['dataset_id']}, {c['rows_a']} rows) -> {d.b['name']} ({d.b['dataset_id']}, {c['rows_b']} rows):"
        f" traces +{c['traces_added']} -{c['traces_removed']}; rows +{c['rows_added']} -{c['rows_removed']}"
        f" ={c['rows_kept']}"
    )
    if d.added:
        out.print(rich_table(d.added, title=f"added (first {len(d.added)} of {c['traces_added']})"))
    if d.removed:
        out.print(
            rich_table(
                d.removed, title=f"removed (first {len(d.removed)} of {c['traces_removed']})"
            )
        )
