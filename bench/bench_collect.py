"""Collect overhead against bare baselines measured in the same run, on real GSM8K test problems.

1. transformers backend (`run_collect` with the embedded SmolLM2: templating, batching, token
   accounting, DuckDB commits) vs raw `model.generate` on the same prompts, batch size and
   max_new_tokens: generated tokens/s. Greedy on both sides, so both produce the same tokens.
   Model loading is excluded on both sides (the run records it as details.load_seconds).
2. openai backend (`run_collect` against llama-cpp-python's server, concurrency 1) vs the same
   requests sent one by one with a bare httpx client: completions/s.

Baseline and ours alternate for a few rounds and the ratio compares medians, so that load drifting
on a shared machine hits both sides alike. On a busy machine the ratios are noisy; the share of
collect's wall time spent outside model.generate / outside HTTP requests is printed too, and does
not depend on how fast the model or server happened to be.
Goal for both ratios: >= 0.9.

    .venv/bin/python bench/bench_collect.py --quick        # 8 prompts / 6 requests, ~1-2 min
    .venv/bin/python bench/bench_collect.py                # 32 prompts / 24 requests
    .venv/bin/python bench/bench_collect.py --only hf --threads 1
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TRACEKIT_QUIET", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
DATA = REPO.parent / "shared" / "data" / "gsm8k" / "test.jsonl"
GOAL = 0.9


def gsm8k_problems(n: int) -> list[str]:
    with open(DATA) as f:
        return [json.loads(line)["question"] for _, line in zip(range(n), f, strict=False)]


def fresh_store(tmp: Path, name: str, problems: list[str]):
    from tracekit.store import Store
    from tracekit.store.ids import prompt_id

    s = Store(tmp / f"{name}.duckdb")
    s.insert_rows(
        "prompts", [{"prompt_id": prompt_id(p), "source": "gsm8k", "problem": p} for p in problems]
    )
    return s


# ---- 1. transformers ---------------------------------------------------------------------------
def bench_transformers(
    problems: list[str], batch: int, max_new: int, tmp: Path, rounds: int
) -> float:
    import torch

    from tracekit.collect.collect import CollectConfig, render_messages, run_collect
    from tracekit.models import load_causal_lm

    cfg = CollectConfig(
        teachers=["default"], samples=1, temperature=0.0, max_tokens=max_new, batch_size=batch
    )
    model, tok = load_causal_lm("default")
    eos = torch.tensor(
        sorted(
            {
                tok.eos_token_id,
                *(
                    [model.generation_config.eos_token_id]
                    if isinstance(model.generation_config.eos_token_id, int)
                    else model.generation_config.eos_token_id or []
                ),
            }
        )
    )
    # prompts in the order collect processes them (sorted by prompt id), same batches
    from tracekit.store.ids import prompt_id

    ordered = sorted(problems, key=prompt_id)
    encs = []
    for i in range(0, len(ordered), batch):
        texts = [
            tok.apply_chat_template(
                render_messages(cfg, p), add_generation_prompt=True, tokenize=False
            )
            for p in ordered[i : i + batch]
        ]
        encs.append(tok(texts, return_tensors="pt", padding=True, add_special_tokens=False))

    def raw() -> tuple[int, float]:
        tokens, seconds = 0, 0.0
        for enc in encs:
            t0 = time.perf_counter()
            with torch.inference_mode():
                out = model.generate(**enc, max_new_tokens=max_new, do_sample=False, pad_token_id=tok.pad_token_id,
                                     eos_token_id=eos.tolist(), temperature=None, top_p=None, top_k=None)  # fmt: skip
            seconds += time.perf_counter() - t0
            gen = out[:, enc["input_ids"].shape[1] :]
            is_eos = torch.isin(gen, eos)
            tokens += int(torch.where(is_eos.any(1), is_eos.int().argmax(1), gen.shape[1]).sum())
        return tokens, seconds

    raw()  # warm-up
    raws, ours_rates, overheads = [], [], []
    ours_tokens = raw_tokens = 0
    for r in range(rounds):  # alternate so that load drifts hit both sides alike
        raw_tokens, raw_s = raw()
        store = fresh_store(tmp, f"hf{r}", problems)
        res = run_collect(store, cfg)
        ours_tokens = int(store.scalar("SELECT sum(completion_tokens) FROM traces"))
        # every sample of a batch carries the batch's generate time: one value per batch
        gen_s = (
            store.scalar("SELECT sum(l) FROM (SELECT DISTINCT latency_ms AS l FROM traces)") / 1000
        )
        store.close()
        ours_s = res.seconds - sum(res.details["load_seconds"].values())
        overheads.append(1 - gen_s / ours_s)
        raws.append(raw_tokens / raw_s)
        ours_rates.append(ours_tokens / ours_s)
    print(f"  raw generate: {raw_tokens} tokens/round, tokens/s per round {_fmt(raws)}")
    print(
        f"  collect:      {ours_tokens} tokens/round, tokens/s per round {_fmt(ours_rates)} (load excluded)"
    )
    print(f"  collect time outside model.generate: {_pct(overheads)} of the run (load-independent)")
    if ours_tokens != raw_tokens:
        print(f"  note: token counts differ ({ours_tokens} vs {raw_tokens})")
    return statistics.median(ours_rates) / statistics.median(raws)


def _pct(xs: list[float]) -> str:
    return ", ".join(f"{100 * x:.1f}%" for x in xs)


def _fmt(xs: list[float]) -> str:
    return ", ".join(f"{x:.2f}" for x in xs)


# ---- 2. openai ---------------------------------------------------------------------------------
def start_server() -> tuple[subprocess.Popen, str]:
    import httpx

    from tests.llama_server import free_port
    from tracekit.models import gguf_path

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf_path()), "--host", "127.0.0.1",
         "--port", str(port), "--n_ctx", "2048"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}/v1"
    for _ in range(360):
        try:
            if httpx.get(base + "/models", timeout=2).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            time.sleep(0.5)
    proc.kill()
    raise SystemExit("llama.cpp server did not start")


def bench_openai(problems: list[str], max_tokens: int, tmp: Path, rounds: int) -> float:
    import httpx

    from tracekit.collect.collect import CollectConfig, render_messages, run_collect

    proc, base = start_server()
    try:
        cfg = CollectConfig(teachers=[f"openai:smollm2@{base}"], samples=1, temperature=0.0,
                            max_tokens=max_tokens, concurrency=1, batch_size=8, seed=0)  # fmt: skip
        bodies = [
            {"model": "smollm2", "messages": render_messages(cfg, p), "max_tokens": max_tokens,
             "temperature": 0.0, "top_p": 1.0, "seed": 0}
            for p in problems
        ]  # fmt: skip

        def bare() -> float:
            with httpx.Client(timeout=600) as client:
                t0 = time.perf_counter()
                for b in bodies:
                    r = client.post(base + "/chat/completions", json=b)
                    r.raise_for_status()
                    assert r.json()["choices"]
                return len(bodies) / (time.perf_counter() - t0)

        bare()  # warm-up
        bares, ours_rates, overheads = [], [], []
        for r in range(rounds):
            bares.append(bare())
            store = fresh_store(tmp, f"openai{r}", problems)
            res = run_collect(store, cfg)
            n = store.count("traces")
            in_requests = store.scalar("SELECT sum(latency_ms) FROM traces") / 1000
            store.close()
            wall = res.seconds - sum(res.details["load_seconds"].values())
            ours_rates.append(n / wall)
            overheads.append(1 - in_requests / wall)
        print(
            f"  bare httpx:   {len(bodies)} completions/round, per second per round {_fmt(bares)}"
        )
        print(f"  collect:      {n} completions/round, per second per round {_fmt(ours_rates)}")
        print(
            f"  collect time outside HTTP requests: {_pct(overheads)} of the run (load-independent)"
        )
        return statistics.median(ours_rates) / statistics.median(bares)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="small sizes (a minute or two)")
    ap.add_argument("--only", choices=["hf", "openai"], help="run one of the two")
    ap.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    args = ap.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    n_hf, n_api, rounds = (8, 6, 3) if args.quick else (32, 24, 3)
    results = {}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        if args.only in (None, "hf"):
            print(
                f"transformers backend vs raw model.generate ({n_hf} GSM8K prompts, batch 8, 64 new tokens, greedy)"
            )
            results["transformers tokens/s"] = bench_transformers(
                gsm8k_problems(n_hf), 8, 64, tmp, rounds
            )
        if args.only in (None, "openai"):
            print(
                f"openai backend vs bare httpx, concurrency 1 ({n_api} requests, 32 tokens, llama.cpp server)"
            )
            results["openai completions/s"] = bench_openai(gsm8k_problems(n_api), 32, tmp, rounds)
    print()
    for name, ratio in results.items():
        verdict = "ok" if ratio >= GOAL else f"BELOW the {GOAL} goal"
        print(f"{name:24s} ratio {ratio:.3f}  ({verdict})")


if __name__ == "__main__":
    main()
