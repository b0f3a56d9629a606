"""Exact and near-duplicate detection over traces or prompts.

Training on the same trace twice weights it twice; a prompt set with reworded copies overstates
its size. Exact duplicates are equal after lowercasing and whitespace folding (a hash of that
form); near duplicates share most word 5-gram shingles, found with MinHash LSH (datasketch) and
confirmed by the MinHash estimate of Jaccard similarity >= threshold. Linked items form clusters
(connected components: A~B and B~C put A, B, C in one cluster even if A and C are further apart).

Flags: every cluster member EXCEPT its representative gets `dup:<cluster_id>`, so
`--exclude-flags dup` keeps exactly one item per cluster. The detail JSON names the
representative, the kind of match (exact | near), the similarity to the representative and the
cluster size. Representative: for traces a verified-correct member first, then the lowest
trace_id; for prompts the lowest prompt_id (stable across re-runs).

Dedup is one computation over the whole selection, so a re-run recomputes it and replaces the
earlier dup flags of the selected items in one transaction (never a half-written state).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from tracekit.errors import ConfigError
from tracekit.progress import progress
from tracekit.score.filters_common import batched, check_where, flag_row, normalize
from tracekit.store import RunResult, Store
from tracekit.store.ids import content_id

STAGE = "score.dedup"


class DedupConfig(BaseModel):
    """`target`: what to deduplicate. `scope`: `store` compares everything with everything;
    `prompt` compares only traces of the same prompt (traces only). `field`: which part of a
    trace is compared (text = the whole completion)."""

    model_config = ConfigDict(extra="forbid")

    target: Literal["traces", "prompts"] = "traces"
    scope: Literal["store", "prompt"] = "store"
    field: Literal["text", "reasoning", "answer"] = "text"
    threshold: float = Field(0.8, gt=0.0, le=1.0)
    num_perm: int = Field(128, ge=16, le=1024)
    shingle: int = Field(5, ge=1, le=32)
    exact_only: bool = False
    seed: int = 1
    where: str | None = None
    batch_size: int = Field(2000, ge=1)

    @model_validator(mode="after")
    def _scope_needs_traces(self) -> DedupConfig:
        if self.target == "prompts" and self.scope == "prompt":
            raise ConfigError(
                "--scope prompt compares traces of one prompt: use it with --target traces"
            )
        return self


# ---- the engine: texts in, clusters out (no store; the benchmark and tests call it directly) ----


def shingles(norm: str, n: int) -> set[bytes]:
    """Word n-grams of normalised text; a text shorter than n words is one shingle."""
    w = norm.split(" ")
    if len(w) < n:
        return {norm.encode()}
    return {" ".join(w[i : i + n]).encode() for i in range(len(w) - n + 1)}


class _UnionFind:
    def __init__(self) -> None:
        self.parent: list[int] = []

    def add(self) -> int:
        self.parent.append(len(self.parent))
        return len(self.parent) - 1

    def find(self, x: int) -> int:
        p = self.parent
        while p[x] != x:
            p[x] = p[p[x]]
            x = p[x]
        return x

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


@dataclass
class DedupIndex:
    """Streams documents in, links exact and near duplicates as they arrive.

    One MinHash object is reused for every document (its permutations are computed once) and
    only the uint32 signature is kept per distinct text, so memory is about num_perm * 4 bytes
    per document plus the LSH buckets."""

    threshold: float = 0.8
    num_perm: int = 128
    shingle: int = 5
    seed: int = 1
    exact_only: bool = False
    n: int = 0
    _uf: _UnionFind = field(default_factory=_UnionFind)
    _exact: dict[tuple[str, bytes], int] = field(default_factory=dict)
    _rep_of: list[int] = field(default_factory=list)  # doc -> first doc with the same text
    _group: list[str] = field(default_factory=list)
    _sig_row: dict[int, int] = field(default_factory=dict)
    _sigs: list[np.ndarray] = field(default_factory=list)

    def __post_init__(self) -> None:
        from datasketch import MinHash, MinHashLSH

        self._mh = MinHash(num_perm=self.num_perm, seed=self.seed)
        self._lsh = MinHashLSH(threshold=self.threshold, num_perm=self.num_perm)

    def add(self, text: str | None, group: str = "") -> int:
        """Index one document; returns its position. Empty texts are never duplicates."""
        i = self._uf.add()
        self.n += 1
        self._group.append(group)
        norm = normalize(text)
        if not norm:
            self._rep_of.append(i)
            return i
        key = (group, hashlib.blake2b(norm.encode(), digest_size=16).digest())
        first = self._exact.get(key)
        if first is not None:
            self._rep_of.append(first)
            self._uf.union(first, i)
            return i
        self._exact[key] = i
        self._rep_of.append(i)
        if self.exact_only:
            return i
        m = self._mh
        m.clear()
        m.update_batch(shingles(norm, self.shingle))
        sig = m.hashvalues
        for j in self._lsh.query(m):
            if group and self._group[j] != group:
                continue  # scope=prompt: only traces of the same prompt count
            if self.similarity_rows(sig, self._sigs[self._sig_row[j]]) >= self.threshold:
                self._uf.union(i, j)
        self._lsh.insert(i, m, check_duplication=False)
        self._sig_row[i] = len(self._sigs)
        self._sigs.append(sig)
        return i

    @staticmethod
    def similarity_rows(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.count_nonzero(a == b)) / len(a)

    def similarity(self, i: int, j: int) -> float:
        """MinHash Jaccard estimate between two indexed documents (1.0 for exact copies)."""
        ri, rj = self._rep_of[i], self._rep_of[j]
        if ri == rj:
            return 1.0
        if ri not in self._sig_row or rj not in self._sig_row:
            return 0.0
        return self.similarity_rows(self._sigs[self._sig_row[ri]], self._sigs[self._sig_row[rj]])

    def is_exact(self, i: int, j: int) -> bool:
        return self._rep_of[i] == self._rep_of[j]

    def clusters(self) -> list[list[int]]:
        """Groups of two or more linked documents, each sorted by position."""
        comps: dict[int, list[int]] = defaultdict(list)
        for i in range(self.n):
            comps[self._uf.find(i)].append(i)
        return [c for c in comps.values() if len(c) > 1]


def find_duplicates(
    texts: Iterable[str | None],
    groups: Iterable[str] | None = None,
    **kw: Any,
) -> tuple[DedupIndex, list[list[int]]]:
    """Index texts (with optional group keys restricting comparisons) and return the clusters."""
    idx = DedupIndex(**kw)
    gs = groups if groups is not None else iter(lambda: "", None)
    for text, g in zip(texts, gs, strict=False):
        idx.add(text, g)
    return idx, idx.clusters()


# ---- the stage ----------------------------------------------------------------------------


_FIELDS = {"text": "t.text", "reasoning": "t.reasoning", "answer": "t.answer_text"}


def _select(store: Store, cfg: DedupConfig) -> list[tuple]:
    """(key, prompt_id, preference) for every item to compare; preference sorts representatives
    first (verified-correct traces before others)."""
    if cfg.target == "prompts":
        check_where(store, cfg.where, view="prompts")
        w = f"WHERE ({cfg.where})" if cfg.where else ""
        return store.fetchall(f"SELECT prompt_id, prompt_id, 0 FROM prompts {w} ORDER BY prompt_id")
    check_where(store, cfg.where)
    w = f"WHERE ({cfg.where})" if cfg.where else ""
    return store.fetchall(
        f"SELECT trace_id, prompt_id, CASE WHEN correct THEN 0 ELSE 1 END FROM v_traces {w}"
        " ORDER BY trace_id"
    )


def _texts(store: Store, cfg: DedupConfig, keys: Sequence[str]) -> list[str | None]:
    if cfg.target == "prompts":
        q = "SELECT problem FROM prompts WHERE prompt_id IN (SELECT unnest(?::VARCHAR[])) ORDER BY prompt_id"
    else:
        col = _FIELDS[cfg.field]
        if cfg.field != "text":  # no stored split: derive it like the other signals do
            from tracekit.score.filters_common import trace_parts

            rows = store.fetchall(
                "SELECT t.text, t.reasoning, t.answer_text FROM traces t"
                " WHERE t.trace_id IN (SELECT unnest(?::VARCHAR[])) ORDER BY t.trace_id",
                [list(keys)],
            )
            part = 0 if cfg.field == "reasoning" else 1
            return [trace_parts(*r)[part] for r in rows]
        q = f"SELECT {col} FROM traces t WHERE t.trace_id IN (SELECT unnest(?::VARCHAR[])) ORDER BY t.trace_id"
    return [r[0] for r in store.fetchall(q, [list(keys)])]


def cluster_flags(
    cfg: DedupConfig,
    idx: DedupIndex,
    clusters: list[list[int]],
    items: Sequence[tuple],
    run_id: str,
    rank: Callable[[int], Any] | None = None,
) -> list[dict[str, Any]]:
    """One flag per non-representative member of each cluster."""
    rank = rank or (lambda i: (items[i][2], items[i][0]))
    rows: list[dict[str, Any]] = []
    for members in clusters:
        rep = min(members, key=rank)
        keys = sorted(items[i][0] for i in members)
        cid = content_id("dup", cfg.target, *keys)
        for i in members:
            if i == rep:
                continue
            detail = {
                "cluster": cid,
                "representative": items[rep][0],
                "kind": "exact" if idx.is_exact(i, rep) else "near",
                "similarity": round(idx.similarity(i, rep), 4),
                "size": len(members),
                "scope": cfg.scope,
                "threshold": cfg.threshold,
            }
            if cfg.target == "prompts":
                rows.append(flag_row(items[i][0], None, f"dup:{cid}", detail, run_id))
            else:
                rows.append(flag_row(items[i][1], items[i][0], f"dup:{cid}", detail, run_id))
    return rows


def run_dedup(store: Store, cfg: DedupConfig) -> RunResult:
    items = _select(store, cfg)
    with store.run(STAGE, cfg) as run:
        idx = DedupIndex(
            threshold=cfg.threshold,
            num_perm=cfg.num_perm,
            shingle=cfg.shingle,
            seed=cfg.seed,
            exact_only=cfg.exact_only,
        )
        scoped = cfg.scope == "prompt"
        with progress(f"dedup {cfg.target}", len(items), unit=cfg.target) as bar:
            for batch in batched(items, cfg.batch_size):
                for (_, pid, _), text in zip(
                    batch, _texts(store, cfg, [b[0] for b in batch]), strict=True
                ):
                    idx.add(text, pid if scoped else "")
                bar.advance(len(batch))
        clusters = idx.clusters()
        rows = cluster_flags(cfg, idx, clusters, items, run.run_id)
        keys = [it[0] for it in items]
        with store.transaction():
            if cfg.target == "prompts":
                store.execute(
                    "DELETE FROM flags WHERE trace_id IS NULL AND flag LIKE 'dup:%'"
                    " AND prompt_id IN (SELECT unnest(?::VARCHAR[]))",
                    [keys],
                )
            else:
                store.execute(
                    "DELETE FROM flags WHERE flag LIKE 'dup:%' AND trace_id IN (SELECT unnest(?::VARCHAR[]))",
                    [keys],
                )
            store.insert_rows("flags", rows)
        run.add(cfg.target, len(items))
        run.add("clusters", len(clusters))
        run.add("flagged", len(rows))
        run.add("exact", sum(1 for r in rows if '"kind": "exact"' in r["detail"]))
        run.add("near", sum(1 for r in rows if '"kind": "near"' in r["detail"]))
    return run.result
