"""A miniature REDI replication with the embedded model as both teacher and student.

1. the embedded SmolLM2-135M-Instruct samples K traces on GSM8K *train* problems (collect),
2. math-verify judges them (verify),
3. select builds SFT rows (the first correct trace per prompt: rejection-sampling SFT) and REDI
   pairs (first correct + first incorrect per prompt, seed-42 shuffle),
4. students: RS-SFT (LoRA SFT on the positives) and SFT->REDI (the same SFT, then REDI on pairs),
5. eval of base, RS-SFT and SFT->REDI on held-out GSM8K *test* problems, pass@1 over S samples,
   with standard errors, and paired comparisons against the base.

Everything goes through the library stages (the same code as the CLI) into one store under
bench/out/mini/ (gitignored). The slow tier: about 70 minutes on 2 CPU cores with the defaults
(a re-run reuses the stored teacher traces: collect skips what exists).
  nohup .venv/bin/python bench/mini_replication.py > bench/out/mini.log 2>&1 &
  .venv/bin/python bench/mini_replication.py --quick   # a few minutes, numbers meaningless
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRACEKIT_QUIET", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data" / "gsm8k"


# the quickstart's short-answer template: a 135M model stays under max_tokens with it
ARITH_TEMPLATE = "{problem}\nExplain briefly, then give the final number as \\boxed{ANSWER}."


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--retrain", action="store_true", help="train even if the students exist")
    ap.add_argument(
        "--suite",
        choices=["gsm8k", "arith"],
        default="gsm8k",
        help="gsm8k: GSM8K train/test from ../shared/data; arith: the built-in word problems",
    )
    ap.add_argument("--train-problems", type=int, default=64)
    ap.add_argument("--teacher-samples", type=int, default=8)
    ap.add_argument("--test-problems", type=int, default=40)
    ap.add_argument("--eval-samples", type=int, default=4)
    ap.add_argument("--max-tokens", type=int, default=192)
    ap.add_argument("--eval-batch", type=int, default=16, help="prompts per generate call in eval")
    ap.add_argument("--out", default=None, help="default bench/out/mini (arith: mini-arith)")
    a = ap.parse_args()
    if a.quick:
        a.train_problems, a.teacher_samples, a.test_problems, a.eval_samples, a.max_tokens = (
            12,
            4,
            8,
            2,
            96,
        )

    from tracekit.collect.collect import CollectConfig, run_collect
    from tracekit.collect.importers import ImportConfig, run_import
    from tracekit.collect.problems import ProblemsConfig, run_problems
    from tracekit.evaluate.benchmarks import Benchmark
    from tracekit.evaluate.compare import compare_runs
    from tracekit.evaluate.eval import EvalConfig, benchmark_prompt_ids, run_eval
    from tracekit.select.pairs import SelectPairsConfig, run_select_pairs
    from tracekit.select.sft import SelectSFTConfig, run_select_sft
    from tracekit.store import Store
    from tracekit.train.config import SFTThenREDIConfig, SFTTrainConfig
    from tracekit.train.runner import run_sft, run_sft_then_redi
    from tracekit.verify import VerifyConfig, run_verify

    out = Path(a.out or ROOT / "bench" / "out" / ("mini" if a.suite == "gsm8k" else "mini-arith"))
    out.mkdir(parents=True, exist_ok=True)
    store = Store(out / "traces.duckdb")
    t0 = time.time()
    log(f"settings: {vars(a)}")

    # 1-2. teacher traces on train problems, verified
    if a.suite == "gsm8k":
        train_file = str(DATA / "train.jsonl")
        run_import(
            store,
            ImportConfig(path=train_file, preset="gsm8k", source="gsm8k-train", split="train"),
        )
        ids = benchmark_prompt_ids(
            Benchmark("gsm8k-train", "", "", preset="gsm8k", path=train_file), a.train_problems
        )
        quoted = ", ".join(f"'{i}'" for i in ids)
        where, template = f"prompt_id IN ({quoted})", None
        bench_name, bench_file = "gsm8k", str(DATA / "test.jsonl")
    else:  # the built-in GSM8K-style word problems (tracekit.collect.problems), seeded
        n = a.train_problems + a.test_problems
        bench_file = str(out / "eval-problems.jsonl")
        bench_name = "eval-problems"  # a plain FILE benchmark is named after the file
        run_problems(
            store,
            ProblemsConfig(
                n=n,
                seed=0,
                kinds=["add", "sub", "mul", "two_step"],
                eval_fraction=a.test_problems / n,
                export_eval=bench_file,
            ),
        )
        where, template = "split = 'train' AND source = 'tracekit-arith'", ARITH_TEMPLATE
    r = run_collect(
        store,
        CollectConfig(
            teachers=["default"],
            samples=a.teacher_samples,
            temperature=0.7,
            top_p=0.95,
            max_tokens=a.max_tokens,
            seed=0,
            where=where,
            batch_size=8,
            template=template,
        ),
    )
    log(f"collect: {r.counts} ({time.time() - t0:.0f}s)")
    run_verify(store, VerifyConfig(verifiers=["math"], where="origin = 'generated'"))
    pos, neg, both = store.fetchone(
        "SELECT count(*) FILTER (WHERE positives > 0), count(*) FILTER (WHERE negatives > 0),"
        " count(*) FILTER (WHERE positives > 0 AND negatives > 0) FROM v_prompt_stats"
        " WHERE teacher LIKE 'default:%'"
    )
    acc = store.scalar("SELECT avg(correct::int) FROM v_traces WHERE origin = 'generated'")
    log(
        f"teacher accuracy {acc:.3f}; prompts with a positive {pos}, with a negative {neg}, with both {both}"
    )

    # 3. training sets
    run_select_sft(
        store,
        SelectSFTConfig(
            name="mini-sft",
            verifier="math",
            think_format="plain",
            where="origin = 'generated'",
            output=str(out / "datasets" / "mini-sft"),
        ),
    )
    run_select_pairs(
        store,
        SelectPairsConfig(
            name="mini-pairs",
            kind="redi",
            verifier="math",
            think_format="plain",
            where="origin = 'generated'",
            seed=42,
            output=str(out / "datasets" / "mini-pairs"),
        ),
    )
    rows = dict(store.fetchall("SELECT name, rows FROM datasets"))
    log(f"datasets: {rows}")

    # 4. students (LoRA; SFT epochs and rates scaled to the tiny data)
    done = all((out / d / "adapter_config.json").exists() for d in ("rs-sft", "sft-redi/redi"))
    if done and not a.retrain:  # a re-run (e.g. after an eval failure) reuses the students
        log("students exist: reusing rs-sft and sft-redi (--retrain to train again)")
    else:
        sft_kw = dict(
            epochs=3, batch_size=4, grad_accum=2, max_length=640, lr=2e-4, save_steps=10_000
        )
        rs = run_sft(
            store,
            SFTTrainConfig(
                dataset="mini-sft", model="default", output=str(out / "rs-sft"), **sft_kw
            ),
        )
        log(
            f"RS-SFT: {rs.details.get('first_loss')} -> {rs.details.get('last_loss')} ({time.time() - t0:.0f}s)"
        )
        two = run_sft_then_redi(
            store,
            SFTThenREDIConfig(
                model="default",
                output=str(out / "sft-redi"),
                max_length=640,
                save_steps=10_000,
                sft={
                    "dataset": "mini-sft",
                    "lr": 2e-4,
                    "epochs": 3,
                    "batch_size": 4,
                    "grad_accum": 2,
                },
                redi={
                    "dataset": "mini-pairs",
                    "lr": 2e-5,
                    "epochs": 1,
                    "batch_size": 4,
                    "grad_accum": 2,
                    "alpha": 0.8,
                },
            ),
        )
        log(f"SFT->REDI: {two.details} ({time.time() - t0:.0f}s)")

    # 5. eval on held-out test problems
    results = {}
    for name, spec in (
        ("base", "default"),
        ("rs-sft", str(out / "rs-sft")),
        ("sft-redi", str(out / "sft-redi" / "redi")),
    ):
        r = run_eval(
            store,
            EvalConfig(
                model=spec,
                benchmarks=[f"{bench_name}={bench_file}" if a.suite == "gsm8k" else bench_file],
                template=template,
                samples=a.eval_samples,
                temperature=0.6,
                top_p=0.95,
                max_tokens=a.max_tokens,
                limit=a.test_problems,
                batch_size=a.eval_batch,
            ),
        )
        results[name] = r
        m = r.details["benchmarks"][bench_name]
        log(
            f"eval {name}: pass@1 {m['pass@1']:.4f} ± {m['se']:.4f} (problems {m['problems']}, truncated {m['truncation_rate']:.2f}) ({time.time() - t0:.0f}s)"
        )

    print("\n| student | pass@1 | ± se (sample idx) | ± se (problems) | mean tokens | truncated |")
    print("|---|---|---|---|---|---|")
    for name, r in results.items():
        m = r.details["benchmarks"][bench_name]
        print(
            f"| {name} | {m['pass@1']:.4f} | {m['se']:.4f} | {m['se_problems']:.4f} | {m['mean_tokens']:.0f} | {m['truncation_rate']:.2f} |"
        )
    print("\npaired vs base (sign-flip test over problems):")
    for name in ("rs-sft", "sft-redi"):
        (d,) = compare_runs(store, results["base"].run_id, results[name].run_id)
        print(
            f"  {name}: {d.diff:+.4f} ± {d.se_diff:.4f}, p = {d.p_value:.3f} ({d.b_better} better, {d.a_better} worse of {d.problems})"
        )
    (d,) = compare_runs(store, results["rs-sft"].run_id, results["sft-redi"].run_id)
    print(f"  sft-redi vs rs-sft: {d.diff:+.4f} ± {d.se_diff:.4f}, p = {d.p_value:.3f}")
    log(f"total {time.time() - t0:.0f}s")
    store.close()


if __name__ == "__main__":
    main()
