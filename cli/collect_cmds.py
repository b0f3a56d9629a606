"""`tracekit collect`, `tracekit merge`, `tracekit prompts add|list`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, NoReturn, Optional

import typer
from tracekit_cli.apps import app, prompts_app
from tracekit_cli.common import (
    QuietOpt,
    StoreOpt,
    err,
    open_store,
    out,
    parse_kv,
    print_result,
    rich_table,
    set_quiet,
)

from tracekit.errors import ConfigError
from tracekit.store import Store


def _read_text(value: Optional[str], what: str) -> Optional[str]:
    """`@FILE` (or, for --template, a plain path) reads the file."""
    if value is None:
        return None
    path = Path(value[1:]) if value.startswith("@") else Path(value)
    if value.startswith("@") or (what == "--template" and path.is_file()):
        try:
            return path.read_text()
        except OSError as e:
            raise ConfigError(f"{what} {value}: {e.strerror}") from None
    if what == "--template":
        raise ConfigError(f"--template {value}: no such file")
    return value


@app.command()
def collect(
    teacher: Annotated[
        Optional[list[str]],
        typer.Option(
            "--teacher",
            "-t",
            help="Teacher SPEC, repeatable: default, hf:PATH_OR_ID, openai:MODEL@BASE_URL, vllm:PATH_OR_ID.",
        ),
    ] = None,
    samples: Annotated[
        int, typer.Option("--samples", "-n", help="Samples per prompt and teacher.")
    ] = 4,
    where: Annotated[
        Optional[str],
        typer.Option(help="SQL filter over prompts columns, e.g. \"split = 'test'\"."),
    ] = None,
    limit: Annotated[Optional[int], typer.Option(help="At most this many prompts.")] = None,
    temperature: Annotated[float, typer.Option(help="0 = greedy.")] = 0.6,
    top_p: Annotated[float, typer.Option("--top-p")] = 0.95,
    max_tokens: Annotated[
        int, typer.Option("--max-tokens", help="Completion tokens per sample.")
    ] = 1024,
    seed: Annotated[Optional[int], typer.Option(help="Base seed; sample i uses seed + i.")] = 0,
    system_prompt: Annotated[
        Optional[str], typer.Option("--system-prompt", help="System message text, or @FILE.")
    ] = None,
    template: Annotated[
        Optional[str],
        typer.Option(help="FILE with the user message; {problem} is replaced by the problem."),
    ] = None,
    concurrency: Annotated[int, typer.Option(help="openai: requests in flight.")] = 8,
    batch_size: Annotated[
        int,
        typer.Option("--batch-size", help="Prompts per commit (and per generate call locally)."),
    ] = 8,
    budget_usd: Annotated[
        Optional[float], typer.Option("--budget-usd", help="Stop before spending more than this.")
    ] = None,
    price_in: Annotated[
        Optional[float],
        typer.Option("--price-in", help="USD per 1M input tokens (overrides the table)."),
    ] = None,
    price_out: Annotated[
        Optional[float], typer.Option("--price-out", help="USD per 1M output tokens.")
    ] = None,
    api_key_env: Annotated[
        Optional[str],
        typer.Option("--api-key-env", help="Env var holding the API key (default OPENAI_API_KEY)."),
    ] = None,
    shard: Annotated[
        Optional[str], typer.Option(help="i/n: this machine's share of the prompts (0-based).")
    ] = None,
    logprobs: Annotated[
        bool, typer.Option("--logprobs", help="Keep per-token logprobs in token_logprobs.")
    ] = False,
    timeout: Annotated[float, typer.Option(help="openai: seconds per request.")] = 600.0,
    max_retries: Annotated[
        int, typer.Option("--max-retries", help="openai: retries per request.")
    ] = 6,
    device: Annotated[
        Optional[str], typer.Option(help="transformers: cpu, cuda, cuda:1, ...")
    ] = None,
    tensor_parallel_size: Annotated[int, typer.Option("--tensor-parallel-size", help="vllm.")] = 1,
    data_parallel_size: Annotated[int, typer.Option("--data-parallel-size", help="vllm.")] = 1,
    store: StoreOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Ask teachers to solve the store's prompts, N samples each; resumable, with lineage.

    Re-running skips samples already stored; Ctrl-C stops after the requests in flight. Failed requests go to the collect_errors table and are retried by the next run. The API key is read from the environment and never stored.

    Example: tracekit collect --teacher default --samples 2 --max-tokens 256 --where "split = 'test'" --limit 3
    """
    from tracekit.collect.collect import DEFAULT_TEMPLATE, CollectConfig, run_collect

    set_quiet(quiet)
    cfg = CollectConfig(
        teachers=teacher or ["default"],
        samples=samples,
        where=where,
        limit=limit,
        temperature=temperature,
        top_p=top_p,
        max_tokens=max_tokens,
        seed=seed,
        system_prompt=_read_text(system_prompt, "--system-prompt"),
        template=_read_text(template, "--template") or DEFAULT_TEMPLATE,
        concurrency=concurrency,
        batch_size=batch_size,
        budget_usd=budget_usd,
        price_in=price_in,
        price_out=price_out,
        api_key_env=api_key_env,
        shard=shard,
        logprobs=logprobs,
        request_timeout=timeout,
        max_retries=max_retries,
        device=device,
        tensor_parallel_size=tensor_parallel_size,
        data_parallel_size=data_parallel_size,
    )
    with open_store(store) as s:
        try:
            result = run_collect(s, cfg)
        except KeyboardInterrupt:
            _interrupted(s)
        rows = s.dicts(
            "SELECT teacher, count(*) AS traces,"
            " count(*) FILTER (WHERE finish_reason = 'length') AS truncated,"
            " round(avg(completion_tokens), 1) AS avg_tokens, sum(cost_usd) AS cost_usd"
            " FROM traces WHERE run_id = ? GROUP BY teacher ORDER BY teacher",
            [result.run_id],
        )
        pending_errors = s.scalar(
            "SELECT count(*) FROM collect_errors WHERE run_id = ?", [result.run_id]
        )
    print_result(result)
    if rows and not quiet:
        out.print(rich_table(rows, title="added by this run"))
    if pending_errors:
        out.print(
            f'[yellow]{pending_errors} sample(s) failed[/]: see `tracekit sql "SELECT * FROM'
            ' collect_errors"`; re-run to retry them'
        )
    if result.details.get("stopped") == "budget":
        out.print("[yellow]stopped at the budget cap[/]")


def _interrupted(s: Store) -> NoReturn:
    """Ctrl-C: say what was kept and exit 130 (SystemExit passes through the app untouched)."""
    row = s.fetchone(
        "SELECT run_id, counts FROM runs WHERE stage = 'collect' ORDER BY started_at DESC LIMIT 1"
    )
    kept = json.loads(row[1] or "{}").get("counts", {}).get("traces", 0) if row else 0
    err.print(
        f"[yellow]interrupted[/]: run {row[0] if row else '?'} committed {kept} trace(s);"
        " re-run the same command to resume",
        soft_wrap=True,
    )
    raise SystemExit(130)


@app.command()
def merge(
    sources: Annotated[list[Path], typer.Argument(help="Store files to merge into --store.")],
    store: StoreOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Merge shard stores into one, without duplicates (re-merging adds nothing).

    Example: tracekit merge shard0.duckdb shard1.duckdb --store all.duckdb
    """
    from tracekit.collect.merge import MergeConfig, run_merge

    set_quiet(quiet)
    cfg = MergeConfig(sources=[str(p) for p in sources])
    with open_store(store) as s:
        result = run_merge(s, cfg)
    print_result(result)


@prompts_app.command("add")
def prompts_add(
    path: Annotated[
        str,
        typer.Argument(
            help="JSONL, JSON array, Parquet, a save_to_disk folder or an HF dataset id."
        ),
    ],
    map_: Annotated[
        Optional[list[str]],
        typer.Option("--map", "-m", help="FIELD=COLUMN for problem, reference, id, domain, split."),
    ] = None,
    preset: Annotated[Optional[str], typer.Option(help="gsm8k, math (problem sets).")] = None,
    split: Annotated[
        Optional[str], typer.Option(help="Split recorded on the prompts (train, test, ...).")
    ] = None,
    source: Annotated[
        Optional[str], typer.Option(help="Dataset name recorded on prompts (default: file name).")
    ] = None,
    domain: Annotated[str, typer.Option(help="math, code, ...")] = "math",
    hf_split: Annotated[Optional[str], typer.Option(help="Split of an HF dataset to read.")] = None,
    fmt: Annotated[
        str, typer.Option("--format", help="auto, jsonl, json, parquet, hf, hf-disk.")
    ] = "auto",
    skip_bad: Annotated[
        bool, typer.Option("--skip-bad", help="Skip malformed records (counted).")
    ] = False,
    store: StoreOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Add problems for teachers to solve (the prompts-only path of `tracekit import`).

    Example: tracekit prompts add ../shared/data/gsm8k/test.jsonl --preset gsm8k --split test
    """
    from tracekit.collect.importers import run_import
    from tracekit.collect.prompts import prompts_import_config

    set_quiet(quiet)
    cfg = prompts_import_config(
        path,
        parse_kv(map_),
        preset=preset,
        split=split,
        source=source,
        domain=domain,
        hf_split=hf_split,
        fmt=fmt,
        skip_bad=skip_bad,
    )
    with open_store(store) as s:
        result = run_import(s, cfg)
        total = s.count("prompts")
    print_result(result)
    if not quiet:
        out.print(f"{result.counts.get('prompts_added', 0)} prompt(s) added, {total} in the store")


@prompts_app.command("list")
def prompts_list(
    where: Annotated[Optional[str], typer.Option(help="SQL filter over prompts columns.")] = None,
    limit: Annotated[int, typer.Option(help="Rows to show.")] = 20,
    store: StoreOpt = None,
) -> None:
    """List prompts with their trace counts.

    Example: tracekit prompts list --where "source = 'gsm8k'" --limit 5
    """
    from tracekit.collect.prompts import list_prompts

    with open_store(store, read_only=True) as s:
        total, rows = list_prompts(s, where, limit)
    out.print(rich_table(rows, title=f"{total} prompt(s){' matching' if where else ''}"))
