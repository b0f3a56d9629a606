"""Benchmark: `tracekit verify` (worker pool, store in and out) vs math-verify called directly.

Items are real answers: the 5,276 GSM8K example model solutions, the 500 MATH-500 reference
solutions and the answer parts of the 500 longcot MATH-500 traces, replicated to --n items (each
replica is its own trace of the same prompt, as repeated samples are). The baseline is the plain
loop a user would write in one process: parse(gold), parse(answer), verify(gold, answer) per
item. A second baseline caches the parsed gold per reference, to show how much of the gain is
the cache and how much the parallel workers.

Usage: .venv/bin/python bench/bench_verify.py [--n 20000] [--quick] [--workers 1 2]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TRACEKIT_QUIET", "1")

import pyarrow as pa  # noqa: E402
from math_verify import parse, verify  # noqa: E402

from tracekit.collect.importers.presets import gsm8k_final_answer  # noqa: E402
from tracekit.store import Store  # noqa: E402
from tracekit.store.ids import content_id, prompt_id  # noqa: E402
from tracekit.text.reasoning import split_reasoning  # noqa: E402
from tracekit.verify import VerifyConfig, run_verify  # noqa: E402

DATA = (ROOT.parent / "shared" / "data").resolve()


def real_items() -> list[tuple[str, str, str]]:
    """(problem, reference, answer part)."""
    items = []
    for line in (DATA / "gsm8k/example_model_solutions.jsonl").read_text().splitlines():
        r = json.loads(line)
        ref = gsm8k_final_answer(r["ground_truth"])
        for col in ("6b_finetuning", "6b_verification", "175b_finetuning", "175b_verification"):
            items.append((r["question"], ref, r[col]["solution"]))
    for line in (DATA / "math500/test.jsonl").read_text().splitlines():
        r = json.loads(line)
        items.append((r["problem"], r["answer"], r["solution"]))
    for line in (
        (DATA / "longcot/math500__Sky-T1-math-correct-5K-27B.jsonl").read_text().splitlines()
    ):
        r = json.loads(line)
        items.append((r["question"], r["gt"], split_reasoning(r["code"][0]).answer_text))
    return items


def replicate(items: list, n: int) -> list:
    out = [items[i % len(items)] for i in range(n)]
    random.Random(0).shuffle(out)
    return out


def raw(items: list, cache_gold: bool) -> float:
    cache: dict[str, list] = {}
    t0 = time.perf_counter()
    for _, ref, answer in items:
        if cache_gold:
            gold = cache.get(ref)
            if gold is None:
                gold = cache[ref] = parse("\\boxed{" + ref + "}")
        else:
            gold = parse("\\boxed{" + ref + "}")
        verify(gold, parse(answer))
    return len(items) / (time.perf_counter() - t0)


def build_store(path: Path, items: list) -> None:
    with Store(path) as s:
        prompts = {}
        traces = []
        for i, (problem, ref, answer) in enumerate(items):
            pid = prompt_id(problem)
            prompts.setdefault(
                pid,
                {"prompt_id": pid, "problem": problem, "reference_answer": ref, "domain": "math"},
            )
            traces.append(
                {
                    "trace_id": content_id("bench", i),
                    "prompt_id": pid,
                    "teacher": "bench",
                    "text": answer,
                    "origin": "imported",
                    "sample_index": i,
                }
            )
        s.insert_arrow("prompts", pa.Table.from_pylist(list(prompts.values())))
        s.insert_arrow("traces", pa.Table.from_pylist(traces))


def tracekit_rate(path: Path, workers: int, n: int) -> float:
    with Store(path) as s:
        s.execute("DELETE FROM verdicts")
        t0 = time.perf_counter()
        r = run_verify(s, VerifyConfig(verifiers=["math"], workers=workers, format_checks=False))
        dt = time.perf_counter() - t0
        assert r["verdicts_added"] == n, r.counts
    return n / dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--quick", action="store_true", help="2,000 items")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = ap.parse_args()
    n = 2000 if args.quick else args.n
    items = replicate(real_items(), n)
    print(
        f"{n} items ({len(set(i[2] for i in items))} distinct answers), {os.cpu_count()} CPUs,"
        f" load average {os.getloadavg()[0]:.1f}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.duckdb"
        build_store(path, items)
        base = raw(items, cache_gold=False)
        print(f"raw math-verify, one process:              {base:8.1f} items/s")
        cached = raw(items, cache_gold=True)
        print(f"raw math-verify, gold cached, one process: {cached:8.1f} items/s")
        for w in args.workers:
            rate = tracekit_rate(path, w, n)
            print(
                f"tracekit verify --workers {w}:              {rate:8.1f} items/s"
                f"  ratio {rate / base:.2f}x raw ({rate / cached:.2f}x raw with gold cache)"
            )


if __name__ == "__main__":
    main()
