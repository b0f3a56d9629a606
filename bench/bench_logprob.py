"""Benchmark: tracekit's logprob scorer vs a plain loop of forward passes, and provenance speed.

All rates are measured in the same run on the same machine, with the embedded model:
  plain     a plain loop: model(input_ids, attention_mask, position_ids).logits -> log_softmax ->
            gather, over exactly the padded batches the scorer builds (same batch size, same
            length-sorted order). Goal: tracekit >= 0.9x this rate.
  tracekit  LogprobScorer.score_ids (sorted by length, logits only where needed, chunked softmax)
  naive     the same scorer with batches in input order (unsorted), to show what sorting buys
  provenance  run_provenance with teacher, student and distilled (three scorer passes) on a
            temporary store: sentences per second.
Traces are real long chain-of-thought texts (../shared/data/longcot) cut to a token budget, under
their real problems in the chat template; continuation lengths are uniform in [tokens/4, tokens]
(`--fixed` for all exactly `--tokens`). Rates count every token of every sequence (prompt
included), so the ratios are ratios of wall time.

Usage: .venv/bin/python bench/bench_logprob.py [--traces 200 --tokens 512] [--quick] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
DATA = REPO.parent / "shared" / "data" / "longcot"


def load_texts(n: int) -> list[tuple[str, str]]:
    out = []
    for path in sorted(DATA.glob("*.jsonl")):
        with open(path, encoding="utf-8") as f:
            for line in f:
                r = json.loads(line)
                out.append((r["question"], r["code"][0]))
    if not out:
        sys.exit(f"no traces under {DATA}")
    return [out[i % len(out)] for i in range(n)]


def plain_loop(scorer, encoded) -> float:
    """The baseline: forward + full log_softmax + gather on the scorer's own padded batches."""
    import torch

    t0 = time.perf_counter()
    with torch.inference_mode():
        for batch in scorer.batches(encoded, sort=True):
            ids, mask, pos = scorer.padded_batch(batch)
            logits = scorer.model(input_ids=ids, attention_mask=mask, position_ids=pos).logits
            lp = torch.log_softmax(logits[:, :-1].float(), dim=-1).gather(2, ids[:, 1:, None])[
                ..., 0
            ]
            lp.cpu()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--traces", type=int, default=200)
    ap.add_argument("--tokens", type=int, default=512, help="continuation tokens (maximum)")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--fixed", action="store_true", help="every continuation exactly --tokens long")
    ap.add_argument("--provenance-traces", type=int, default=None, help="default: min(traces, 40)")
    ap.add_argument("--device", default=None)
    ap.add_argument("--repeats", type=int, default=1, help="interleaved repeats; best time of each")
    ap.add_argument("--quick", action="store_true", help="24 traces x 128 tokens")
    args = ap.parse_args()
    if args.quick:
        args.traces, args.tokens = 24, 128
    import torch

    from tracekit.models import load_causal_lm
    from tracekit.progress import set_quiet
    from tracekit.score.logprob import LogprobScorer

    set_quiet(True)
    torch.manual_seed(0)
    rng = random.Random(0)
    model, tok = load_causal_lm("default", device=args.device)
    scorer = LogprobScorer(model, tok, batch_size=args.batch_size)
    pairs, texts = [], []
    for problem, trace in load_texts(args.traces):
        n = args.tokens if args.fixed else rng.randint(max(1, args.tokens // 4), args.tokens)
        cont = tok(trace, add_special_tokens=False)["input_ids"][:n]
        ctx = scorer.encode_context(scorer.render_prompt(problem))
        pairs.append((ctx, cont))
        texts.append((problem, tok.decode(cont)))
    encoded = [scorer._encode(i, c, x) for i, (c, x) in enumerate(pairs)]
    total = sum(len(c) + len(x) for c, x in pairs)
    cont_tokens = sum(len(x) for _, x in pairs)
    print(
        f"{len(pairs)} traces, {cont_tokens} trace tokens (mean {cont_tokens / len(pairs):.0f}), "
        f"{total} tokens with prompts, batch size {args.batch_size}, device {scorer.device}, "
        f"torch threads {torch.get_num_threads()}"
    )
    scorer.score_ids(pairs[:2])  # warm-up

    def timed(fn) -> float:
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0

    # interleaved repeats, best of each: a shared machine's load moves between runs
    t_plain = t_tk = t_naive = float("inf")
    for _ in range(args.repeats):
        t_plain = min(t_plain, plain_loop(scorer, encoded))
        t_tk = min(t_tk, timed(lambda: scorer.score_ids(pairs, sort=True)))
        t_naive = min(t_naive, timed(lambda: scorer.score_ids(pairs, sort=False)))
    plain, tk, naive = total / t_plain, total / t_tk, total / t_naive
    print(f"plain loop (same sorted padded batches): {plain:9.0f} tokens/s  ({t_plain:.1f} s)")
    print(
        f"tracekit scorer (sorted):                {tk:9.0f} tokens/s  ({t_tk:.1f} s)  ratio {tk / plain:.2f}x plain"
    )
    print(
        f"tracekit scorer, naive unsorted batches: {naive:9.0f} tokens/s  ({t_naive:.1f} s)  ratio {naive / plain:.2f}x plain"
    )

    n_prov = args.provenance_traces or min(args.traces, 40)
    from tracekit.score.provenance import ProvenanceConfig, run_provenance
    from tracekit.store import Store
    from tracekit.store.ids import imported_trace_id, prompt_id

    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "bench.duckdb") as store:
        prompts, traces = {}, []
        for i, (problem, text) in enumerate(texts[:n_prov]):
            pid = prompt_id(problem)
            prompts[pid] = {"prompt_id": pid, "source": "bench", "problem": problem}
            traces.append(
                {
                    "trace_id": imported_trace_id(pid, "b", "bench", str(i), i),
                    "prompt_id": pid,
                    "text": text,
                }
            )
        store.insert_rows("prompts", list(prompts.values()))
        store.insert_rows("traces", traces)
        cfg = ProvenanceConfig(
            teacher="default",
            student="default",
            distilled="default",
            batch_size=args.batch_size,
            device=args.device,
        )
        t0 = time.perf_counter()
        res = run_provenance(store, cfg)
        t_prov = time.perf_counter() - t0
    sentences = res["sentences"]
    print(
        f"provenance, 3 models, {n_prov} traces: {sentences} sentences in {t_prov:.1f} s = "
        f"{sentences / t_prov:.1f} sentences/s ({n_prov / t_prov:.2f} traces/s, model loads included)"
    )


if __name__ == "__main__":
    main()
