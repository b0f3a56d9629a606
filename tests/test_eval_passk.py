"""pass@k, its summaries, the paired comparison of eval runs, and benchmark resolution."""

from __future__ import annotations

import json
from math import comb

import pytest

from tracekit.errors import ConfigError, TracekitError
from tracekit.evaluate.benchmarks import resolve_benchmark
from tracekit.evaluate.compare import compare_runs, sign_flip_p
from tracekit.evaluate.eval import EvalConfig, model_spec
from tracekit.evaluate.passk import ks_for, pass_at_k, summarize


@pytest.mark.parametrize("n", range(1, 13))
def test_pass_at_k_equals_the_closed_form(n):
    for c in range(n + 1):
        for k in range(1, n + 1):
            closed = 1 - comb(n - c, k) / comb(n, k)
            assert pass_at_k(n, c, k) == pytest.approx(closed, abs=1e-12)


def test_pass_at_k_edges_and_large_n():
    assert pass_at_k(16, 0, 4) == 0.0
    assert pass_at_k(16, 16, 1) == 1.0
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)  # pass@1 is c/n
    # large n: comb() would be astronomically large, the product form is exact enough
    assert pass_at_k(1000, 10, 100) == pytest.approx(1 - comb(990, 100) / comb(1000, 100), rel=1e-9)
    with pytest.raises(ValueError):
        pass_at_k(4, 5, 1)
    with pytest.raises(ValueError):
        pass_at_k(4, 2, 5)


def test_ks_for():
    assert ks_for(1) == [1]
    assert ks_for(4) == [1, 2, 4]
    assert ks_for(6) == [1, 2, 4, 6]
    assert ks_for(16) == [1, 2, 4, 8, 16]


def test_summarize_known_counts():
    # 3 problems x 4 samples
    correct = [
        [True, False, False, False],  # c=1
        [True, True, True, True],  # c=4
        [False, False, False, False],  # c=0
    ]
    s = summarize(correct, 4)
    assert s["problems"] == 3 and s["samples"] == 4
    assert s["pass@1"] == pytest.approx((0.25 + 1 + 0) / 3)
    assert s["pass@k"]["pass@2"] == pytest.approx((0.5 + 1 + 0) / 3)  # 1 - C(3,2)/C(4,2) = 0.5
    assert s["pass@k"]["pass@4"] == pytest.approx(2 / 3)
    # per-sample-index accuracies are 2/3, 1/3, 1/3, 1/3: their standard error
    import statistics

    by_index = [2 / 3, 1 / 3, 1 / 3, 1 / 3]
    assert s["se"] == pytest.approx(statistics.stdev(by_index) / 2)
    assert s["se_problems"] == pytest.approx(statistics.stdev([0.25, 1, 0]) / 3**0.5)


def test_sign_flip_p_exact_and_sampled():
    assert sign_flip_p([0, 0]) == 1.0
    # three equal positive differences: only all-plus and all-minus reach |sum| = 3 -> 2/8
    assert sign_flip_p([1, 1, 1]) == pytest.approx(0.25)
    assert sign_flip_p([1, -1]) == 1.0
    # 40 consistent improvements: essentially impossible by chance (Monte Carlo branch)
    assert sign_flip_p([0.25] * 40) < 0.001
    mixed = [0.5, -0.25, 0.25, -0.5] * 10
    assert sign_flip_p(mixed) > 0.5


def _eval_run(store, run_id: str, per_problem: dict[str, list[int]]) -> None:
    counts = {"counts": {}, "benchmarks": {"gsm8k": {"per_problem": per_problem}}}
    store.execute(
        "INSERT INTO runs (run_id, stage, status, started_at, counts) VALUES (?, 'eval', 'ok', now(), ?)",
        [run_id, json.dumps(counts)],
    )


def test_compare_runs_pairs_problems(store):
    _eval_run(store, "eval-a", {"p1": [4, 1], "p2": [4, 0], "p3": [4, 4], "p4": [4, 2]})
    _eval_run(store, "eval-b", {"p1": [4, 3], "p2": [4, 1], "p3": [4, 4], "p5": [4, 4]})
    (d,) = compare_runs(store, "eval-a", "eval-b")
    assert d.problems == 3  # p4 and p5 are not in both
    assert d.pass1_a == pytest.approx((0.25 + 0 + 1) / 3)
    assert d.pass1_b == pytest.approx((0.75 + 0.25 + 1) / 3)
    assert d.diff == pytest.approx((0.5 + 0.25 + 0) / 3)
    assert (d.b_better, d.a_better) == (2, 0)
    assert d.p_value == pytest.approx(0.5)  # 2 nonzero differences, 4 sign patterns, 2 as extreme
    # prefixes work like git hashes; wrong stages and unknown ids are user errors
    assert (
        compare_runs(store, "eval-a", "eval-b")[0].diff
        == compare_runs(store, "eval-a", "eval-b")[0].diff
    )
    with pytest.raises(TracekitError, match="no eval run"):
        compare_runs(store, "eval-zzz", "eval-b")


def test_benchmark_resolution(shared_data, tmp_path, monkeypatch):
    monkeypatch.delenv("TRACEKIT_BENCH_DIR", raising=False)
    with pytest.raises(ConfigError, match="--data-dir"):
        resolve_benchmark("gsm8k")
    b = resolve_benchmark("gsm8k", str(shared_data))
    assert b.path == str(shared_data / "gsm8k" / "test.jsonl") and b.preset == "gsm8k"
    for name in ("math500", "aime24", "aime25", "amc23", "MATH-500"):
        assert resolve_benchmark(name, str(shared_data)).path
    monkeypatch.setenv("TRACEKIT_BENCH_DIR", str(shared_data))
    assert resolve_benchmark("aime2025").name == "aime25"
    f = tmp_path / "mine.jsonl"
    f.write_text('{"problem": "1+1?", "answer": "2"}\n')
    assert resolve_benchmark(str(f)).name == "mine"
    assert resolve_benchmark(f"math500={f}").path == str(f)
    with pytest.raises(ConfigError, match="neither a preset"):
        resolve_benchmark("nope.jsonl")
    with pytest.raises(ConfigError, match="unknown preset"):
        resolve_benchmark(f"nope={f}")


def test_backend_option_builds_the_spec():
    assert (
        model_spec(EvalConfig(model="Qwen/Qwen2.5-1.5B", benchmarks=["x"], backend="vllm"))
        == "vllm:Qwen/Qwen2.5-1.5B"
    )
    assert model_spec(EvalConfig(model="students/redi", benchmarks=["x"])) == "students/redi"
    assert (
        model_spec(EvalConfig(model="hf:students/redi", benchmarks=["x"], backend="hf"))
        == "hf:students/redi"
    )
    with pytest.raises(ConfigError, match="contradicts"):
        model_spec(EvalConfig(model="vllm:x", benchmarks=["x"], backend="hf"))
    with pytest.raises(ConfigError, match="openai"):
        model_spec(EvalConfig(model="gpt", benchmarks=["x"], backend="openai"))
