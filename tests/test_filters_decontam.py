"""Decontamination against the real benchmark files in ../shared/data."""

from __future__ import annotations

import json
import random

import pytest

from tests.filters_support import add_prompts, add_traces, flags, math500, read_jsonl, real_prompts
from tracekit.errors import ConfigError, InputError
from tracekit.report.decontam import decontam_markdown, decontam_report
from tracekit.score.benchmarks import load_benchmark
from tracekit.score.decontam import DecontamConfig, DecontamIndex, run_decontam
from tracekit.score.filters_common import normalize
from tracekit.store.ids import prompt_id


@pytest.mark.realdata
def test_gsm8k_train_against_gsm8k_test(store, shared_data):
    train = [r["question"] for r in read_jsonl(shared_data / "gsm8k" / "train.jsonl")]
    add_prompts(store, train, source="gsm8k-train")
    result = run_decontam(store, DecontamConfig(benchmarks=["gsm8k"], bench_dir=str(shared_data)))
    found = flags(store, "decontam")
    strong = [f for f in found if f["detail"]["coverage"] >= 0.5]
    print(
        f"decontam: {len(found)} of {len(train)} GSM8K train prompts share an 8-gram with GSM8K test; {len(strong)} cover >= 50% of the test item"
    )
    assert result["prompts"] == len(train)
    assert result["prompts_flagged:gsm8k"] == len(found) > 0
    test_items = {
        str(i): r["question"]
        for i, r in enumerate(read_jsonl(shared_data / "gsm8k" / "test.jsonl"), 1)
    }
    problems = dict(store.fetchall("SELECT prompt_id, problem FROM prompts"))
    for f in found:
        d = f["detail"]
        assert f["trace_id"] is None and f["flag"] == "decontam:gsm8k"
        # the reported n-gram really is in both texts
        assert d["ngram"] in normalize(problems[f["prompt_id"]])
        assert d["ngram"] in normalize(test_items[d["item"].removeprefix("line ")])
        assert len(d["ngram"].split()) == 8
    # a stricter setting flags a subset
    run_decontam(
        store, DecontamConfig(benchmarks=["gsm8k"], bench_dir=str(shared_data), min_coverage=0.5)
    )
    assert len(flags(store, "decontam")) == len(strong) < len(found)


@pytest.mark.realdata
def test_math500_problems_planted_in_longer_prompts_are_all_flagged(store, shared_data):
    rng = random.Random(5)
    items = rng.sample(math500(shared_data), 50)
    wrappers = [
        "You are a careful solver. Here is today's exercise:\n\n{p}\n\nShow every step and box the answer.",
        "Problem 3 of the homework set (from a textbook chapter on review).\n{p}\nHint: start small.",
        "Q: {p} A: let's think it through.",
    ]
    planted = [wrappers[i % 3].format(p=r["problem"]) for i, r in enumerate(items)]
    clean = real_prompts(shared_data, n_math=0, n_gsm=300, seed=2)
    add_prompts(store, planted + clean)
    # the instruction QwQ appends to every AIME 2025 item must not flag prompts that carry it
    carrier = "Count the apples in a basket of 12. Please reason step by step, and put your final answer within \\boxed{}."
    add_prompts(store, [carrier])

    run_decontam(store, DecontamConfig(bench_dir=str(shared_data)))

    by_prompt = {}
    for f in flags(store, "decontam"):
        by_prompt.setdefault(f["prompt_id"], {})[f["flag"]] = f["detail"]
    for text, item in zip(planted, items, strict=True):
        d = by_prompt[prompt_id(text)]["decontam:math500"]
        assert d["item"] == item["unique_id"]
        assert d["coverage"] == 1.0
    assert prompt_id(carrier) not in by_prompt
    rows = {r["benchmark"]: r for r in decontam_report(store)}
    assert rows["math500"]["prompts_flagged"] >= 50 and rows["math500"]["items_hit"] >= 50
    assert rows["math500"]["benchmark_items"] == 500 and rows["aime25"]["benchmark_items"] == 30
    assert "| math500 | 500 |" in decontam_markdown(list(rows.values()))


@pytest.mark.realdata
def test_traces_screened_when_asked(store, shared_data):
    item = math500(shared_data)[0]
    (pid,) = add_prompts(
        store, ["An unrelated warm-up question about counting sheep in a field today."]
    )
    (tid,) = add_traces(
        store, [(pid, "leaky", "I remember this one: " + item["problem"] + " The answer is 3.")]
    )
    run_decontam(
        store, DecontamConfig(benchmarks=["math500"], bench_dir=str(shared_data), traces=True)
    )
    f = flags(store, "decontam")
    assert [(x["trace_id"], x["flag"]) for x in f] == [(tid, "decontam:math500")]


def test_custom_benchmark_file_and_short_items(tmp_path, store):
    bench = tmp_path / "mybench.jsonl"
    bench.write_text(
        json.dumps({"id": "q1", "question": "Compute $\\dbinom{31}{28}$."})
        + "\n"
        + json.dumps(
            {
                "id": "q2",
                "question": "A long enough problem about seven red marbles and three blue marbles in a jar.",
            }
        )
        + "\n"
    )
    add_prompts(
        store,
        ["Warm-up. compute   $\\dbinom{31}{28}$. Then rest.", "Seven red marbles sit in a jar."],
    )
    run_decontam(store, DecontamConfig(benchmarks=[f"mine={bench}"]))
    f = flags(store, "decontam")
    assert len(f) == 1 and f[0]["flag"] == "decontam:mine" and f[0]["detail"]["item"] == "q1"


def test_bad_benchmark_inputs(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "ok one"}\n{"nothing": 1}\n')
    with pytest.raises(InputError, match=r"bad.jsonl:2"):
        load_benchmark(str(bad))
    with pytest.raises(ConfigError, match="unknown benchmark"):
        load_benchmark("no-such-benchmark")
    with pytest.raises(InputError, match="math500/test.jsonl: benchmark file not found"):
        load_benchmark("math500", data_dir=tmp_path / "absent")


def test_boilerplate_ngrams_shared_by_items_are_not_indexed():
    from tracekit.score.benchmarks import Benchmark

    tail = "where m and n are relatively prime positive integers. find m+n."
    b = Benchmark(
        "b",
        "mem",
        ["1", "2"],
        [f"A first story about coins {tail}", f"A second tale about dice {tail}"],
    )
    idx = DecontamIndex([b], n=8)
    assert idx.match(f"Some training problem about cards {tail}") == []
    assert idx.match(f"A first story about coins {tail}")[0].item == 0
