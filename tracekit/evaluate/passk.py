"""pass@k and its uncertainty.

The unbiased estimator (Chen et al. 2021, "Evaluating Large Language Models Trained on Code"):
with n samples of which c are correct, pass@k = 1 - C(n-c, k) / C(n, k), the probability that k
samples drawn without replacement from the n contain at least one correct one. Computed as a
running product so it stays exact in floating point for large n.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def pass_at_k(n: int, c: int, k: int) -> float:
    if not 0 <= c <= n:
        raise ValueError(f"need 0 <= c <= n, got n={n}, c={c}")
    if not 1 <= k <= n:
        raise ValueError(f"need 1 <= k <= n, got n={n}, k={k}")
    if n - c < k:
        return 1.0
    # C(n-c, k) / C(n, k) = prod_{i=n-c+1}^{n} (1 - k / i)
    prod = 1.0
    for i in range(n - c + 1, n + 1):
        prod *= 1.0 - k / i
    return 1.0 - prod


def ks_for(n: int) -> list[int]:
    """1, 2, 4, ... up to n, and n itself: the k values a report shows."""
    ks, k = [], 1
    while k < n:
        ks.append(k)
        k *= 2
    ks.append(n)
    return ks


def mean(xs: Sequence[float]) -> float:
    return sum(xs) / len(xs) if xs else float("nan")


def std_error(xs: Sequence[float]) -> float:
    """Standard error of the mean (sample standard deviation / sqrt(n)); NaN below 2 values."""
    n = len(xs)
    if n < 2:
        return float("nan")
    m = mean(xs)
    var = sum((x - m) ** 2 for x in xs) / (n - 1)
    return math.sqrt(var / n)


def summarize(
    correct: Sequence[Sequence[bool]], samples: int | None = None
) -> dict[str, float | int | dict[str, float]]:
    """Metrics of one benchmark from per-problem lists of per-sample correctness (ordered by
    sample index). pass@1 is the mean over problems of c/n; `se` is the standard error across
    sample indices (the spread of the K single-sample accuracies, as reasoning papers report),
    `se_problems` the standard error across problems of c/n."""
    problems = [list(p) for p in correct if len(p) > 0]
    if not problems:
        return {"problems": 0, "samples": 0, "pass@1": float("nan")}
    n_min = min(len(p) for p in problems)
    k_max = samples if samples is not None else n_min
    k_max = min(k_max, n_min)
    rates = [sum(p) / len(p) for p in problems]
    by_index = [mean([float(p[j]) for p in problems]) for j in range(n_min)]
    passk = {
        f"pass@{k}": mean([pass_at_k(len(p), sum(p), k) for p in problems]) for k in ks_for(k_max)
    }
    return {
        "problems": len(problems),
        "samples": n_min,
        "pass@1": mean(rates),
        "se": std_error(by_index),
        "se_problems": std_error(rates),
        "pass@k": passk,
    }
