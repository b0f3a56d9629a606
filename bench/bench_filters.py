"""Benchmark of the dedup and decontamination stages against their floors, measured in the same run.

1. MinHash dedup of N traces of ~2 KB (real GSM8K/MATH solution text recombined, with planted
   exact and near copies): `tracekit score dedup` (store read, exact hash, MinHash LSH, Jaccard
   check, clusters, flags written) vs datasketch used directly in a plain loop (shingle,
   MinHash.update_batch with shared permutations, LeanMinHash, LSH query + insert: the floor).
   Time and peak memory (VmHWM of a forked child, minus its RSS at start). Goal: <= 1.3x the floor.
2. Decontamination of M prompts against the benchmark presets (MATH-500, GSM8K test, AIME 2024,
   AIME 2025, AMC 2023): rows/s of `tracekit score decontam` at M/4, M/2, M; linear means a flat
   rate.

Usage: python bench/bench_filters.py [--quick] [--dedup-n 100000] [--decontam-n 100000]
       [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TRACEKIT_QUIET", "1")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def _vm(field: str) -> int:
    """kB from /proc/self/status (Linux); 0 elsewhere."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _child(fn_name: str, args: tuple, q: Any) -> None:
    start = _vm("VmRSS")
    t0 = time.perf_counter()
    extra = globals()[fn_name](*args)
    q.put(
        {
            "seconds": time.perf_counter() - t0,
            "peak_mb": (_vm("VmHWM") - start) / 1024,
            **(extra or {}),
        }
    )


def measure(fn_name: str, *args: Any) -> dict[str, Any]:
    """Run one measurement in a forked child so its peak memory is its own."""
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_child, args=(fn_name, args, q))
    p.start()
    out = q.get()
    p.join()
    return out


# ---- data -----------------------------------------------------------------------------------


def solution_pool(data: Path) -> list[str]:
    pool = [json.loads(x)["solution"] for x in (data / "math500" / "test.jsonl").open()]
    pool += [json.loads(x)["answer"] for x in (data / "gsm8k" / "train.jsonl").open()]
    return pool


def make_traces(pool: list[str], n: int, seed: int = 0) -> list[str]:
    """~2 KB documents of real solution text; 5% exact copies, 5% near copies (3 words changed)."""
    rng = random.Random(seed)
    docs: list[str] = []
    while len(docs) < n:
        r = rng.random()
        if docs and r < 0.05:
            docs.append(rng.choice(docs))
        elif docs and r < 0.10:
            w = rng.choice(docs).split(" ")
            for j in rng.sample(range(len(w)), min(3, len(w))):
                w[j] = "changed"
            docs.append(" ".join(w))
        else:
            parts, size = [], 0
            while size < 2000:
                s = rng.choice(pool)
                parts.append(s)
                size += len(s) + 2
            docs.append("\n\n".join(parts)[:2100])
    return docs


def make_prompts(data: Path, n: int, seed: int = 0) -> list[str]:
    """Real training problems (MATH train, GSM8K train) made unique with a short preface; 1% are
    MATH-500 problems wrapped in a longer prompt (real contamination to find)."""
    rng = random.Random(seed)
    mt = [r["problem"] for r in json.loads((data / "math_train" / "train_math.json").read_text())]
    gs = [json.loads(x)["question"] for x in (data / "gsm8k" / "train.jsonl").open()]
    m5 = [json.loads(x)["problem"] for x in (data / "math500" / "test.jsonl").open()]
    base = mt + gs
    out = []
    for i in range(n):
        if rng.random() < 0.01:
            out.append(f"Exercise {i}. Solve carefully: {rng.choice(m5)} Give the final answer.")
        else:
            out.append(f"Exercise {i}. {rng.choice(base)}")
    return out


# ---- dedup ----------------------------------------------------------------------------------


def floor_datasketch(texts_path: str, num_perm: int, threshold: float) -> dict[str, Any]:
    from datasketch import LeanMinHash, MinHash, MinHashLSH

    texts = json.loads(Path(texts_path).read_text())
    t0 = time.perf_counter()
    perms = MinHash(num_perm=num_perm).permutations
    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    dups = 0
    for i, text in enumerate(texts):
        w = text.lower().split()
        sh = {" ".join(w[j : j + 5]).encode() for j in range(max(len(w) - 4, 1))}
        m = MinHash(num_perm=num_perm, permutations=perms, scheme="affine32")
        m.update_batch(sh)
        lean = LeanMinHash(m)
        if lsh.query(lean):
            dups += 1
        lsh.insert(i, lean, check_duplication=False)
    return {"dups": dups, "work_seconds": time.perf_counter() - t0}


def tracekit_dedup(store_path: str, num_perm: int, threshold: float) -> dict[str, Any]:
    from tracekit.score.dedup import DedupConfig, run_dedup
    from tracekit.store import Store

    t0 = time.perf_counter()
    with Store(store_path) as s:
        r = run_dedup(s, DedupConfig(num_perm=num_perm, threshold=threshold))
    return {
        "dups": r["flagged"],
        "clusters": r["clusters"],
        "work_seconds": time.perf_counter() - t0,
    }


def build_trace_store(path: Path, texts: list[str]) -> None:
    import pyarrow as pa

    from tracekit.store import Store
    from tracekit.store.ids import imported_trace_id, prompt_id

    pid = prompt_id("bench prompt")
    with Store(path) as s:
        s.insert_rows("prompts", [{"prompt_id": pid, "problem": "bench prompt", "domain": "math"}])
        ids = [imported_trace_id(pid, "bench", "bench", str(i), i) for i in range(len(texts))]
        s.insert_arrow(
            "traces",
            pa.table(
                {
                    "trace_id": ids,
                    "prompt_id": [pid] * len(texts),
                    "teacher": ["bench"] * len(texts),
                    "text": texts,
                }
            ),
        )


# ---- decontam -------------------------------------------------------------------------------


def build_prompt_store(path: Path, prompts: list[str]) -> None:
    import pyarrow as pa

    from tracekit.store import Store
    from tracekit.store.ids import prompt_id

    n = len(prompts)
    bucket = ["q1" if i < n // 4 else "q2" if i < n // 2 else "q3" for i in range(n)]
    with Store(path) as s:
        s.insert_arrow(
            "prompts",
            pa.table(
                {
                    "prompt_id": [prompt_id(p) for p in prompts],
                    "problem": prompts,
                    "source": bucket,
                    "domain": ["math"] * n,
                }
            ),
        )


def tracekit_decontam(store_path: str, data: str, where: str | None) -> dict[str, Any]:
    from tracekit.score.decontam import DecontamConfig, run_decontam
    from tracekit.store import Store

    with Store(store_path) as s:
        t0 = time.perf_counter()
        r = run_decontam(s, DecontamConfig(bench_dir=data, where=where))
        dt = time.perf_counter() - t0
        s.execute("DELETE FROM flags")  # the next size starts from the same state
    flagged = sum(v for k, v in r.counts.items() if k.startswith("prompts_flagged"))
    return {"rows": r["prompts"], "flagged": flagged, "work_seconds": dt}


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="10,000 traces, 20,000 prompts")
    ap.add_argument("--dedup-n", type=int, default=100_000)
    ap.add_argument("--decontam-n", type=int, default=100_000)
    ap.add_argument("--num-perm", type=int, default=128)
    ap.add_argument("--threshold", type=float, default=0.8)
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--skip-dedup", action="store_true")
    ap.add_argument("--skip-decontam", action="store_true")
    a = ap.parse_args()
    if a.quick:
        a.dedup_n, a.decontam_n = 10_000, 20_000
    data = a.data.resolve()
    tmp = Path(tempfile.mkdtemp(prefix="bench_filters_"))
    print(f"cores: {os.cpu_count()}, load average: {os.getloadavg()[0]:.2f}")

    if not a.skip_dedup:
        texts = make_traces(solution_pool(data), a.dedup_n)
        mb = sum(len(t) for t in texts) / 1e6
        tp = tmp / "texts.json"
        tp.write_text(json.dumps(texts))
        t0 = time.perf_counter()
        build_trace_store(tmp / "dedup.duckdb", texts)
        print(
            f"\n== dedup: {len(texts):,} traces, {mb:.0f} MB (store built in {time.perf_counter() - t0:.1f}s)"
        )
        del texts
        floor = measure("floor_datasketch", str(tp), a.num_perm, a.threshold)
        ours = measure("tracekit_dedup", str(tmp / "dedup.duckdb"), a.num_perm, a.threshold)
        print(
            f"datasketch plain loop : {floor['work_seconds']:7.1f}s  peak +{floor['peak_mb']:6.0f} MB  ({floor['dups']:,} docs with an LSH candidate)"
        )
        print(
            f"tracekit score dedup  : {ours['work_seconds']:7.1f}s  peak +{ours['peak_mb']:6.0f} MB  ({ours['dups']:,} flagged in {ours['clusters']:,} clusters)"
        )
        print(f"ratio (goal <= 1.3x)  : {ours['work_seconds'] / floor['work_seconds']:.2f}x")

    if not a.skip_decontam:
        prompts = make_prompts(data, a.decontam_n)
        t0 = time.perf_counter()
        build_prompt_store(tmp / "decontam.duckdb", prompts)
        n = len(prompts)
        print(
            f"\n== decontam: {n:,} prompts vs math500, gsm8k, aime24, aime25, amc23 (store built in {time.perf_counter() - t0:.1f}s)"
        )
        secs = []
        for where, size in (
            ("source = 'q1'", n // 4),
            ("source IN ('q1','q2')", n // 2),
            (None, n),
        ):
            r = measure("tracekit_decontam", str(tmp / "decontam.duckdb"), str(data), where)
            secs.append((r["rows"], r["work_seconds"]))
            rate = r["rows"] / r["work_seconds"]
            print(
                f"{size:>9,} prompts: {r['work_seconds']:6.1f}s  {rate:9,.0f} rows/s"
                f"  peak +{r['peak_mb']:5.0f} MB  ({r['flagged']:,} flags)"
            )
        # time = fixed + rows / rate; the fixed part loads the benchmark files and the index
        (n1, t1), (n2, t2), (n3, t3) = secs
        lo = (n2 - n1) / (t2 - t1) if t2 > t1 else float("inf")
        hi = (n3 - n2) / (t3 - t2) if t3 > t2 else float("inf")
        fixed = t1 - n1 * (t3 - t1) / (n3 - n1)
        print(
            f"marginal rate {n1:,}->{n2:,}: {lo:,.0f} rows/s; {n2:,}->{n3:,}: {hi:,.0f} rows/s"
            f" (equal = linear); fixed cost about {fixed:.1f}s"
        )


if __name__ == "__main__":
    main()
