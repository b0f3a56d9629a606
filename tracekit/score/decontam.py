"""Benchmark decontamination: word n-gram overlap between the store's prompts and benchmark sets.

A prompt that shares a word n-gram (default n = 8, after lowercasing and whitespace folding) with a
benchmark item is flagged `decontam:<benchmark>` at the prompt level (trace_id NULL); with
`traces=True` trace texts are screened too and flagged per trace. One flag per (prompt or trace,
benchmark); its detail names the best-matching item (most shared n-grams), one matching n-gram,
how many of the item's n-grams the text contains (`matches`, `coverage`) and every item hit.

Two rules keep generic phrasing from flagging everything:
- an n-gram found in more than `max_item_df` items of one benchmark (default 1) is boilerplate
  ("where $m$ and $n$ are relatively prime positive integers") and not indexed; a copied item
  still matches through its other n-grams;
- items shorter than n words are indexed whole (a two-word MATH item such as
  "compute $\\dbinom{31}{28}$." matches only when all its words appear in order).

Decontamination is fast (see bench/bench_filters.py), so a re-run recomputes and replaces the flags
of the benchmarks it checks, batch by batch, rather than tracking what was done.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tracekit.progress import progress
from tracekit.score.benchmarks import DEFAULT_BENCHMARKS, Benchmark, load_benchmark
from tracekit.score.filters_common import batched, check_where, flag_row, words
from tracekit.store import RunResult, Store

STAGE = "score.decontam"

Gram = tuple[str, ...]


class DecontamConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    benchmarks: list[str] = Field(default_factory=lambda: list(DEFAULT_BENCHMARKS))
    bench_dir: str | None = None
    n: int = Field(8, ge=2, le=50)
    max_item_df: int = Field(1, ge=1)
    min_matches: int = Field(1, ge=1)
    min_coverage: float = Field(0.0, ge=0.0, le=1.0)
    traces: bool = False
    where: str | None = None  # over prompts columns; traces=True screens those prompts' traces
    batch_size: int = Field(5000, ge=1)


@dataclass
class Hit:
    benchmark: str
    item: int  # index into the benchmark's items
    matches: int
    ngram: str
    items: list[int] = field(default_factory=list)


class DecontamIndex:
    """N-grams of every benchmark item, looked up by set intersection (C speed, no per-gram
    Python loop): the cost per text is one pass to build its n-gram set, plus one bigram pass
    when the benchmarks have items shorter than n words (checked in place on a bigram hit)."""

    def __init__(self, benchmarks: Iterable[Benchmark], n: int = 8, max_item_df: int = 1) -> None:
        self.n = n
        self.benchmarks = list(benchmarks)
        # length -> gram -> list of (bench index, item index)
        self.grams: dict[Gram, list[tuple[int, int]]] = {}
        # short items (fewer than n words), keyed by their first two words
        self.short: dict[Gram, list[tuple[Gram, int, int]]] = defaultdict(list)
        self.item_grams: list[list[int]] = []  # bench -> item -> number of indexed grams
        self.dropped: list[int] = []
        for b, bench in enumerate(self.benchmarks):
            per_item: list[set[Gram]] = []
            for text in bench.texts:
                w = words(text)
                if len(w) >= n:
                    per_item.append(set(zip(*(w[i:] for i in range(n)), strict=False)))
                elif len(w) >= 2:
                    per_item.append({tuple(w)})
                else:
                    per_item.append(set())
            df = Counter(g for s in per_item for g in s)
            self.dropped.append(sum(1 for c in df.values() if c > max_item_df))
            counts: list[int] = []
            for k, s in enumerate(per_item):
                kept = [g for g in s if df[g] <= max_item_df]
                counts.append(len(kept))
                for g in kept:
                    if len(g) == n:
                        self.grams.setdefault(g, []).append((b, k))
                    else:
                        self.short[g[:2]].append((g, b, k))
            self.item_grams.append(counts)

    def match(self, text: str | None, min_matches: int = 1, min_coverage: float = 0.0) -> list[Hit]:
        """Benchmarks whose items share at least `min_matches` n-grams and `min_coverage` of
        their indexed n-grams with `text`; the best item (most shared n-grams) first."""
        w = words(text)
        per_item: Counter[tuple[int, int]] = Counter()
        example: dict[tuple[int, int], Gram] = {}
        found: list[tuple[Gram, tuple[int, int]]] = []
        if len(w) >= self.n:
            grams = set(zip(*(w[i:] for i in range(self.n)), strict=False))
            found += [(g, key) for g in self.grams.keys() & grams for key in self.grams[g]]
        heads = self.short.keys() & set(zip(w, w[1:], strict=False)) if self.short else ()
        if heads:
            for i, bigram in enumerate(zip(w, w[1:], strict=False)):
                if bigram in heads:
                    for g, b, k in self.short[bigram]:
                        if tuple(w[i : i + len(g)]) == g:
                            found.append((g, (b, k)))
        for g, key in found:
            per_item[key] += 1
            if key not in example or g < example[key]:
                example[key] = g
        if not per_item:
            return []
        by_bench: dict[int, list[tuple[int, int]]] = defaultdict(list)
        for (b, k), c in per_item.items():
            if c >= min_matches and c >= min_coverage * self.item_grams[b][k]:
                by_bench[b].append((c, k))
        hits = []
        for b, items in sorted(by_bench.items()):
            items.sort(key=lambda ck: (-ck[0], ck[1]))
            c, k = items[0]
            hits.append(
                Hit(
                    benchmark=self.benchmarks[b].name,
                    item=k,
                    matches=c,
                    ngram=" ".join(example[(b, k)]),
                    items=[kk for _, kk in items],
                )
            )
        return hits

    def detail(self, hit: Hit) -> dict[str, Any]:
        b = next(i for i, bb in enumerate(self.benchmarks) if bb.name == hit.benchmark)
        bench = self.benchmarks[b]
        total = self.item_grams[b][hit.item]
        return {
            "benchmark": hit.benchmark,
            "item": bench.refs[hit.item],
            "item_text": bench.texts[hit.item][:300],
            "ngram": hit.ngram,
            "matches": hit.matches,
            "coverage": round(hit.matches / total, 4) if total else None,
            "items": [bench.refs[k] for k in hit.items[:20]],
            "n_items": len(hit.items),
            "n": self.n,
        }


def load_index(cfg: DecontamConfig) -> DecontamIndex:
    benches = [load_benchmark(s, cfg.bench_dir) for s in cfg.benchmarks]
    names = [b.name for b in benches]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        from tracekit.errors import ConfigError

        raise ConfigError(f"benchmark names must differ, got {sorted(dup)} twice: use NAME=PATH")
    return DecontamIndex(benches, n=cfg.n, max_item_df=cfg.max_item_df)


def _screen(
    store: Store,
    cfg: DecontamConfig,
    index: DecontamIndex,
    run: Any,
    kind: str,
    keys: list[tuple[str, str | None]],
) -> None:
    """Screen prompts (kind="prompts": keys are (prompt_id, None)) or traces ((prompt, trace))."""
    flags = [f"decontam:{b.name}" for b in index.benchmarks]
    with progress(f"decontam {kind}", len(keys), unit=kind) as bar:
        for batch in batched(keys, cfg.batch_size):
            if kind == "prompts":
                texts = store.fetchall(
                    "SELECT problem FROM prompts WHERE prompt_id IN (SELECT unnest(?::VARCHAR[]))"
                    " ORDER BY prompt_id",
                    [[k[0] for k in batch]],
                )
            else:
                texts = store.fetchall(
                    "SELECT text FROM traces WHERE trace_id IN (SELECT unnest(?::VARCHAR[]))"
                    " ORDER BY trace_id",
                    [[k[1] for k in batch]],
                )
            rows = []
            for (pid, tid), (text,) in zip(batch, texts, strict=True):
                for hit in index.match(text, cfg.min_matches, cfg.min_coverage):
                    rows.append(
                        flag_row(
                            pid, tid, f"decontam:{hit.benchmark}", index.detail(hit), run.run_id
                        )
                    )
                    run.add(f"{kind}_flagged:{hit.benchmark}")
            with store.transaction():
                if kind == "prompts":
                    store.execute(
                        "DELETE FROM flags WHERE trace_id IS NULL AND prompt_id IN"
                        " (SELECT unnest(?::VARCHAR[])) AND flag IN (SELECT unnest(?::VARCHAR[]))",
                        [[k[0] for k in batch], flags],
                    )
                else:
                    store.execute(
                        "DELETE FROM flags WHERE trace_id IN (SELECT unnest(?::VARCHAR[]))"
                        " AND flag IN (SELECT unnest(?::VARCHAR[]))",
                        [[k[1] for k in batch], flags],
                    )
                store.insert_rows("flags", rows)
            run.add(kind, len(batch))
            bar.advance(len(batch))


def run_decontam(store: Store, cfg: DecontamConfig) -> RunResult:
    index = load_index(cfg)
    check_where(store, cfg.where, view="prompts")
    w = f"WHERE ({cfg.where})" if cfg.where else ""
    prompts = [
        (r[0], None)
        for r in store.fetchall(f"SELECT prompt_id FROM prompts {w} ORDER BY prompt_id")
    ]
    traces: list[tuple[str, str | None]] = []
    if cfg.traces:
        traces = [
            (r[0], r[1])
            for r in store.fetchall(
                "SELECT prompt_id, trace_id FROM traces WHERE prompt_id IN"
                f" (SELECT prompt_id FROM prompts {w}) ORDER BY trace_id"
            )
        ]
    with store.run(STAGE, cfg) as run:
        run.details["benchmarks"] = {
            b.name: {"items": len(b), "source": str(Path(b.source)), "boilerplate_ngrams": d}
            for b, d in zip(index.benchmarks, index.dropped, strict=True)
        }
        _screen(store, cfg, index, run, "prompts", prompts)
        if cfg.traces:
            _screen(store, cfg, index, run, "traces", traces)
    return run.result
