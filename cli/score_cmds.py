"""`tracekit score length|dedup|decontam|behaviors|safety` and `tracekit report decontam|filters`.

Thin: options -> the stage's pydantic config -> the library function -> one result line or table.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from pydantic import BaseModel, ValidationError
from tracekit_cli.apps import report_app, score_app
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

from tracekit.errors import ConfigError

RecomputeOpt = Annotated[
    bool,
    typer.Option("--recompute", help="Score traces again even if they already have this score."),
]


def _cfg(cls: type[BaseModel], **kw: Any) -> Any:
    """Build a stage config; a bad value becomes one line naming the option."""
    try:
        return cls(**{k: v for k, v in kw.items() if v is not None})
    except ValidationError as e:
        err = e.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "config"
        raise ConfigError(f"--{field.replace('_', '-')}: {err['msg']}") from None


@score_app.command("length")
def length(
    tokenizer: Annotated[
        str,
        typer.Option(
            help="Tokenizer SPEC: default (embedded student), hf:PATH_OR_ID, a folder, or none."
        ),
    ] = "default",
    where: WhereOpt = None,
    batch_size: Annotated[int, typer.Option(help="Traces per transaction.")] = 256,
    recompute: RecomputeOpt = False,
    store: StoreOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Characters and tokens of reasoning and answer, and their ratio (overthinking signal).

    Scores: length:reasoning_chars, length:answer_chars, length:reasoning_tokens,
    length:answer_tokens, length:ratio.

    Example: tracekit score length --tokenizer hf:Qwen/Qwen2.5-1.5B-Instruct --where "teacher = 'r1'"
    """
    from tracekit.score.length import LengthConfig, run_length

    set_quiet(quiet)
    cfg = _cfg(
        LengthConfig, tokenizer=tokenizer, where=where, batch_size=batch_size, recompute=recompute
    )
    with open_store(store) as s:
        print_result(run_length(s, cfg))


@score_app.command("dedup")
def dedup(
    target: Annotated[str, typer.Option(help="traces or prompts.")] = "traces",
    scope: Annotated[
        str, typer.Option(help="store (all pairs) or prompt (traces of one prompt).")
    ] = "store",
    field: Annotated[
        str, typer.Option(help="Part of a trace compared: text, reasoning, answer.")
    ] = "text",
    threshold: Annotated[
        float, typer.Option(help="Jaccard similarity of word shingles for a near duplicate.")
    ] = 0.8,
    num_perm: Annotated[int, typer.Option(help="MinHash permutations.")] = 128,
    shingle: Annotated[int, typer.Option(help="Words per shingle.")] = 5,
    exact_only: Annotated[
        bool, typer.Option("--exact-only", help="Only exact (normalised) duplicates.")
    ] = False,
    where: Annotated[
        Optional[str],
        typer.Option("--where", help="SQL filter over v_traces (traces) or prompts (prompts)."),
    ] = None,
    store: StoreOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Flag exact and near-duplicate traces or prompts as dup:<cluster_id>, keeping one per cluster.

    The representative of each cluster is NOT flagged, so `--exclude-flags dup` keeps one copy.

    Example: tracekit score dedup --target traces --scope prompt --threshold 0.8
    """
    from tracekit.score.dedup import DedupConfig, run_dedup

    set_quiet(quiet)
    cfg = _cfg(
        DedupConfig,
        target=target,
        scope=scope,
        field=field,
        threshold=threshold,
        num_perm=num_perm,
        shingle=shingle,
        exact_only=exact_only,
        where=where,
    )
    with open_store(store) as s:
        print_result(run_dedup(s, cfg))


@score_app.command("decontam")
def decontam(
    bench: Annotated[
        Optional[list[str]],
        typer.Option(
            "--bench",
            "-b",
            help="Benchmark SPEC, repeatable: math500, gsm8k, aime24, aime25, amc23, NAME=PATH, PATH, hf:ID[@SPLIT]. Default: all five presets.",
        ),
    ] = None,
    bench_dir: Annotated[
        Optional[Path],
        typer.Option(
            help="Folder with the preset files. Default: $TRACEKIT_BENCH_DIR or ../shared/data."
        ),
    ] = None,
    ngram: Annotated[int, typer.Option("--ngram", "-n", help="Words per n-gram.")] = 8,
    min_matches: Annotated[int, typer.Option(help="Shared n-grams needed to flag.")] = 1,
    min_coverage: Annotated[
        float,
        typer.Option(
            help="Share of the benchmark item's n-grams needed to flag (0.5 = copies only)."
        ),
    ] = 0.0,
    traces: Annotated[
        bool, typer.Option("--traces", help="Also screen trace texts (flags per trace).")
    ] = False,
    where: Annotated[
        Optional[str], typer.Option("--where", help="SQL filter over prompts columns.")
    ] = None,
    store: StoreOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Flag prompts that share word n-grams with benchmark items as decontam:<benchmark>.

    Example: tracekit score decontam --bench math500 --bench aime24 --bench-dir ../shared/data
    """
    from tracekit.score.decontam import DecontamConfig, run_decontam

    set_quiet(quiet)
    cfg = _cfg(
        DecontamConfig,
        benchmarks=bench or None,
        bench_dir=str(bench_dir) if bench_dir else None,
        n=ngram,
        min_matches=min_matches,
        min_coverage=min_coverage,
        traces=traces,
        where=where,
    )
    with open_store(store) as s:
        print_result(run_decontam(s, cfg))


@score_app.command("behaviors")
def behaviors(
    markers: Annotated[
        Optional[Path],
        typer.Option(
            help="JSON or YAML file: marker group -> list of phrases (replaces the defaults)."
        ),
    ] = None,
    where: WhereOpt = None,
    recompute: RecomputeOpt = False,
    store: StoreOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Reflection, verification, connector and anthropomorphic markers per 1,000 words, and attempts.

    Example: tracekit score behaviors --markers my_markers.yaml
    """
    from tracekit.score.behaviors import BehaviorsConfig, run_behaviors

    set_quiet(quiet)
    cfg = _cfg(
        BehaviorsConfig,
        markers_file=str(markers) if markers else None,
        where=where,
        recompute=recompute,
    )
    with open_store(store) as s:
        print_result(run_behaviors(s, cfg))


@score_app.command("safety")
def safety(
    allow_domain: Annotated[
        Optional[list[str]],
        typer.Option(
            "--allow-domain", help="Extra allowed link host (with subdomains), repeatable."
        ),
    ] = None,
    only_allow: Annotated[
        bool,
        typer.Option(
            "--only-allow", help="Use only the --allow-domain hosts, not the default list."
        ),
    ] = False,
    kind: Annotated[
        Optional[list[str]],
        typer.Option(
            "--kind",
            help="Screens to run (default all): url, phishing, promo, insecure_code, injection, offtask.",
        ),
    ] = None,
    where: WhereOpt = None,
    recompute: RecomputeOpt = False,
    store: StoreOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Flag links, phishing and promo text, insecure code, prompt injection and off-task content.

    Example: tracekit score safety --allow-domain mathoverflow.net
    """
    from tracekit.score.safety import DEFAULT_ALLOW_DOMAINS, SafetyConfig, run_safety

    set_quiet(quiet)
    allow = ([] if only_allow else list(DEFAULT_ALLOW_DOMAINS)) + list(allow_domain or [])
    cfg = _cfg(
        SafetyConfig, allow_domains=allow, kinds=kind or None, where=where, recompute=recompute
    )
    with open_store(store) as s:
        print_result(run_safety(s, cfg))


def _emit(rows: list[dict[str, Any]], as_json: bool, title: str) -> None:
    if as_json:
        out.print_json(json.dumps(rows, default=str))
    else:
        out.print(rich_table(rows, title=title))


@report_app.command("decontam")
def report_decontam(
    out_md: Annotated[
        Optional[Path],
        typer.Option("--out", help="Write the Markdown table (for data cards) here."),
    ] = None,
    png: Annotated[Optional[Path], typer.Option(help="Write a bar chart PNG here.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print rows as JSON.")] = False,
    store: StoreOpt = None,
) -> None:
    """Per benchmark: items, items hit, prompts flagged and their traces.

    Example: tracekit report decontam --out reports/decontam.md --png reports/decontam.png
    """
    from tracekit.report.decontam import decontam_markdown, decontam_report, write_decontam_png

    with open_store(store, read_only=True) as s:
        rows = decontam_report(s)
    _emit(rows, as_json, "Decontamination")
    if out_md:
        out_md.parent.mkdir(parents=True, exist_ok=True)
        out_md.write_text(decontam_markdown(rows), encoding="utf-8")
        out.print(f"wrote {out_md}")
    if png:
        out.print(f"wrote {write_decontam_png(rows, png)}")


@report_app.command("filters")
def report_filters(
    out_md: Annotated[
        Optional[Path], typer.Option("--out", help="Write the Markdown funnel table here.")
    ] = None,
    png: Annotated[Optional[Path], typer.Option(help="Write the funnel PNG here.")] = None,
    safety_png: Annotated[
        Optional[Path], typer.Option(help="Write the per-teacher safety PNG here.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print rows as JSON.")] = False,
    store: StoreOpt = None,
) -> None:
    """The filter funnel: traces each flag family removes alone and combined, per teacher.

    Example: tracekit report filters --png reports/funnel.png
    """
    from tracekit.report.filters import (
        filter_funnel,
        funnel_markdown,
        safety_counts,
        write_funnel_png,
        write_safety_png,
    )

    with open_store(store, read_only=True) as s:
        rows = filter_funnel(s)
        safety = safety_counts(s)
    _emit(rows, as_json, "Filter funnel")
    if safety and not as_json:
        out.print(rich_table(safety, title="Safety flags per teacher"))
    if out_md:
        out_md.parent.mkdir(parents=True, exist_ok=True)
        out_md.write_text(funnel_markdown(rows), encoding="utf-8")
        out.print(f"wrote {out_md}")
    if png:
        out.print(f"wrote {write_funnel_png(rows, png)}")
    if safety_png:
        out.print(f"wrote {write_safety_png(safety, safety_png)}")
