"""Building training sets from a large store: `select sft` and `select pairs` (the whole build:
selection, Parquet, the HF DatasetDict, lineage rows, histogram, card) vs the floor, a DuckDB
`COPY (<the same SELECT>) TO parquet` of the exact query the build records.

    .venv/bin/python bench/bench_select.py              # 1,000,000 traces (250,000 prompts x 4)
    .venv/bin/python bench/bench_select.py --quick      # 100,000 traces
    .venv/bin/python bench/bench_select.py --traces 300000 --repeat 2

Goal: the build within 2x of the floor. The synthetic store has realistic columns: think-block
traces of 0.3-1.5 KB, 3 teachers, per-prompt difficulty (so some prompts have no positive or no
negative), 1% truncated traces, 1% duplicate flags and 0.5% decontaminated prompts.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TRACEKIT_QUIET", "1")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench_import import WORDS  # noqa: E402  (the same vocabulary as the import benchmark)

from tracekit.select import pairs as pairs_mod  # noqa: E402
from tracekit.select import sft as sft_mod  # noqa: E402
from tracekit.select.formats import lit  # noqa: E402
from tracekit.store import Store  # noqa: E402


def make_store(path: Path, n_traces: int) -> Store:
    s = Store(path)
    con = s.con
    con.execute("SET enable_progress_bar = false")
    n_prompts = max(1, n_traces // 4)
    con.execute(
        "CREATE TEMP TABLE vocab AS SELECT i AS id, (SELECT string_agg(w, ' ') FROM"
        f" (SELECT ({lit(' '.join(WORDS))}).split(' ')[1 + ((i * 7919 + j * 104729) % {len(WORDS)})] AS w"
        " FROM range(60) r(j))) AS phrase FROM range(512) t(i)"
    )
    con.execute(
        f"""INSERT INTO prompts (prompt_id, source, source_ref, problem, reference_answer, domain, split)
            SELECT substr(md5('p' || i), 1, 16), 'synthetic', i::VARCHAR,
                   'Problem ' || i || ': ' || v.phrase, (i % 97)::VARCHAR, 'math', 'train'
            FROM range({n_prompts}) t(i) JOIN vocab v ON v.id = i % 512"""
    )
    con.execute(
        f"""INSERT INTO traces (trace_id, prompt_id, teacher, teacher_revision, backend, sampling, seed,
                                sample_index, text, finish_reason, prompt_tokens,
                                completion_tokens, latency_ms, cost_usd, origin, run_id)
            SELECT substr(md5('t' || i), 1, 16), substr(md5('p' || (i // 4)), 1, 16),
                   'teacher-' || (i % 3), 'rev1', 'vllm', '{{"temperature": 0.6, "top_p": 0.95}}', 0,
                   (i % 4)::INTEGER,
                   '<think>' || r || '</think>The answer is ' || (i % 97),
                   CASE WHEN hash(i, 'trunc') % 100 = 0 THEN 'length' ELSE 'stop' END,
                   60, (length(r) // 4)::INTEGER, 1000.0, 0.0001, 'generated', 'bench'
            FROM (SELECT i, substr(a.phrase || ' ' || b.phrase || ' ' || c.phrase || ' ' || d.phrase,
                                   1, 300 + (hash(i, 'len') % 1200)::INTEGER) AS r
                  FROM range({n_traces}) t(i)
                  JOIN vocab a ON a.id = hash(i, 'a') % 512 JOIN vocab b ON b.id = hash(i, 'b') % 512
                  JOIN vocab c ON c.id = hash(i, 'c') % 512 JOIN vocab d ON d.id = hash(i, 'd') % 512)"""
    )
    con.execute(
        f"""INSERT INTO verdicts (trace_id, verifier, verifier_version, correct, extracted, status)
            SELECT substr(md5('t' || i), 1, 16), 'math', '0.9',
                   hash(i, 'ok') % 100 < hash(i // 4, 'difficulty') % 100, (i % 97)::VARCHAR, 'ok'
            FROM range({n_traces}) t(i)"""
    )
    con.execute(
        f"""INSERT INTO flags (flag_id, prompt_id, trace_id, flag, detail)
            SELECT md5('f' || i), substr(md5('p' || (i // 4)), 1, 16), substr(md5('t' || i), 1, 16),
                   'dup:' || (i % 1000), '{{}}'
            FROM range({n_traces}) t(i) WHERE hash(i, 'dup') % 100 = 0
            UNION ALL
            SELECT md5('d' || i), substr(md5('p' || i), 1, 16), NULL, 'decontam:math500', '{{}}'
            FROM range({n_prompts}) t(i) WHERE hash(i, 'decontam') % 200 = 0"""
    )
    con.execute("CHECKPOINT")
    return s


def time_floor(store: Store, sql: str, out: Path) -> float:
    t0 = time.perf_counter()
    store.con.execute(f"COPY ({sql}) TO {lit(str(out))} (FORMAT parquet)")
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--traces", type=int, default=1_000_000)
    ap.add_argument("--quick", action="store_true", help="100,000 traces")
    ap.add_argument("--repeat", type=int, default=1, help="runs of each side; the best counts")
    ap.add_argument("--dir", type=Path, default=None, help="work folder (default: a temp folder)")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    n = 100_000 if args.quick else args.traces
    work = Path(args.dir or tempfile.mkdtemp(prefix="bench-select-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        t0 = time.perf_counter()
        store = make_store(work / "traces.duckdb", n)
        print(f"store: {n:,} traces, {n // 4:,} prompts, built in {time.perf_counter() - t0:.1f}s")
        store.con.execute("SET enable_progress_bar = false")
        store.fetchall("SELECT sum(length(text)), count(*) FROM traces")  # warm the cache
        import datasets  # noqa: F401  (imports are paid once per process, not per row)
        import matplotlib.pyplot  # noqa: F401

        cases = [
            (
                "sft (per-prompt 1, first)",
                sft_mod,
                sft_mod.SelectSFTConfig(name="bench-sft"),
                sft_mod.run_select_sft,
            ),
            (
                "pairs (redi, first)",
                pairs_mod,
                pairs_mod.SelectPairsConfig(name="bench-redi"),
                pairs_mod.run_select_pairs,
            ),
        ]
        print(
            f"{'build':<28}{'rows':>10}{'floor s':>10}{'build s':>10}{'floor rows/s':>14}{'build rows/s':>14}{'ratio':>8}"
        )
        for label, mod, cfg, run in cases:
            sql = mod.exact_sql(store, cfg)
            floor, ours, result = float("inf"), float("inf"), None
            for _ in range(args.repeat):
                floor = min(floor, time_floor(store, sql, work / "floor.parquet"))
                t0 = time.perf_counter()
                result = run(store, cfg)
                ours = min(ours, time.perf_counter() - t0)
            assert result is not None
            rows = result.counts["rows"]
            print(
                f"{label:<28}{rows:>10,}{floor:>10.2f}{ours:>10.2f}{rows / floor:>14,.0f}{rows / ours:>14,.0f}"
                f"{ours / floor:>8.2f}x"
            )
            print(f"    phases: {result.details.get('timings')}")
        store.close()
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
