"""Compare two eval runs per benchmark with a paired per-problem test.

Both runs saw the same problems, so the per-problem differences of pass rates are what carries
the signal (problem difficulty cancels). The test is a sign-flip randomisation test of their mean
(exact up to 2^16 sign patterns, else 20,000 seeded random flips): it assumes only that, under
no difference, each problem's difference is as likely positive as negative.
"""

from __future__ import annotations

import itertools
import json
import math
import random
from dataclasses import dataclass
from typing import Any

from tracekit.errors import TracekitError
from tracekit.evaluate.passk import mean, std_error
from tracekit.store import Store


@dataclass
class BenchmarkDiff:
    benchmark: str
    pass1_a: float
    pass1_b: float
    diff: float
    se_diff: float
    p_value: float
    problems: int
    b_better: int
    a_better: int


def sign_flip_p(diffs: list[float], *, rounds: int = 20000, seed: int = 0) -> float:
    """Two-sided p-value of mean(diffs) under random sign flips."""
    nz = [d for d in diffs if d != 0]
    if not nz:
        return 1.0
    observed = abs(sum(nz))
    eps = 1e-12
    if len(nz) <= 16:
        hits = total = 0
        for signs in itertools.product((1, -1), repeat=len(nz)):
            total += 1
            if abs(sum(s * d for s, d in zip(signs, nz, strict=True))) >= observed - eps:
                hits += 1
        return hits / total
    rng = random.Random(seed)
    hits = 0
    for _ in range(rounds):
        if abs(sum(d if rng.random() < 0.5 else -d for d in nz)) >= observed - eps:
            hits += 1
    return (hits + 1) / (rounds + 1)


def load_eval_run(store: Store, run_id: str) -> dict[str, Any]:
    row = store.fetchone("SELECT stage, status, counts FROM runs WHERE run_id = ?", [run_id])
    if row is None:
        # a unique prefix is enough, as with git hashes
        rows = store.fetchall(
            "SELECT run_id, stage, status, counts FROM runs WHERE stage = 'eval' AND run_id LIKE ? || '%'",
            [run_id],
        )
        if len(rows) != 1:
            what = "no" if not rows else "several"
            raise TracekitError(
                f"{what} eval run(s) match {run_id!r} (see `tracekit runs --stage eval`)"
            )
        row = rows[0][1:]
    stage, status, counts = row
    if stage != "eval":
        raise TracekitError(f"run {run_id} is a {stage} run, not an eval run")
    data = json.loads(counts or "{}")
    if "benchmarks" not in data:
        raise TracekitError(f"eval run {run_id} ({status}) has no results")
    return data


def compare_runs(store: Store, run_a: str, run_b: str) -> list[BenchmarkDiff]:
    a, b = load_eval_run(store, run_a), load_eval_run(store, run_b)
    out: list[BenchmarkDiff] = []
    for name in a["benchmarks"]:
        if name not in b["benchmarks"]:
            continue
        pa = a["benchmarks"][name].get("per_problem", {})
        pb = b["benchmarks"][name].get("per_problem", {})
        common = sorted(set(pa) & set(pb))
        if not common:
            continue
        ra = [pa[p][1] / pa[p][0] for p in common]
        rb = [pb[p][1] / pb[p][0] for p in common]
        diffs = [y - x for x, y in zip(ra, rb, strict=True)]
        se = std_error(diffs)
        out.append(
            BenchmarkDiff(
                benchmark=name,
                pass1_a=mean(ra),
                pass1_b=mean(rb),
                diff=mean(diffs),
                se_diff=se if not math.isnan(se) else 0.0,
                p_value=sign_flip_p(diffs),
                problems=len(common),
                b_better=sum(d > 0 for d in diffs),
                a_better=sum(d < 0 for d in diffs),
            )
        )
    if not out:
        raise TracekitError(f"runs {run_a} and {run_b} share no benchmark problems")
    return out
