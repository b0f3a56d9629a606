"""Import throughput: `tracekit import` of a Parquet file vs DuckDB's own INSERT ... SELECT FROM
read_parquet of the same file into the same table shape (the floor).

    .venv/bin/python bench/bench_import.py            # 200,000 traces, 2-20 KB each
    .venv/bin/python bench/bench_import.py --rows 20000 --repeat 3

Each side runs --repeat times, alternating, and the best time of each is compared (the machine
this was written on is shared: single runs swing by 30%).
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

os.environ.setdefault("TRACEKIT_QUIET", "1")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

WORDS = [
    "so",
    "we",
    "need",
    "to",
    "find",
    "the",
    "value",
    "of",
    "x",
    "wait",
    "let",
    "me",
    "check",
    "that",
    "again",
    "the",
    "sum",
    "of",
    "the",
    "first",
    "n",
    "terms",
    "is",
    "therefore",
    "because",
    "alternatively",
    "we",
    "can",
    "verify",
    "this",
    "by",
    "substituting",
    "back",
    "hmm",
    "that",
    "gives",
    "us",
]


def make_parquet(path: Path, rows: int, seed: int = 0, layout: str = "row") -> int:
    """Realistic shapes: a problem, a reference, one trace of 2-20 KB with a think block.
    layout "list": the four traces of a problem in one row, as lists (OpenR1's layout)."""
    rng = random.Random(seed)
    chunk = 10_000
    writer = None
    total_bytes = 0
    vocab = [" ".join(rng.choice(WORDS) for _ in range(60)) for _ in range(512)]
    for start in range(0, rows, chunk):
        n = min(chunk, rows - start)
        problems, refs, texts, labels = [], [], [], []
        for i in range(start, start + n):
            target = rng.randint(2_000, 20_000)
            parts, size = [], 0
            while size < target:
                s = vocab[rng.randrange(512)]
                parts.append(s)
                size += len(s) + 1
            body = " ".join(parts)[:target]
            texts.append(f"<think>\n{body}\n</think>\n\nThe answer is \\boxed{{{i % 97}}}.")
            problems.append(f"Problem {i // 4}: compute the value of expression number {i // 4}.")
            refs.append(str((i // 4) % 97))
            labels.append(i % 3 != 0)
            total_bytes += len(texts[-1])
        table = pa.table(
            {"problem": problems, "answer": refs, "completion": texts, "correct": labels}
        )
        if layout == "list":  # chunk is a multiple of 4: a problem's four traces stay together
            g = list(range(0, n, 4))
            table = pa.table(
                {
                    "problem": [problems[j] for j in g],
                    "answer": [refs[j] for j in g],
                    "completion": [texts[j : j + 4] for j in g],
                    "correct": [labels[j : j + 4] for j in g],
                }
            )
        if writer is None:
            writer = pq.ParquetWriter(path, table.schema)
        writer.write_table(table)
    writer.close()
    return total_bytes


def bench_raw(parquet: Path, db: Path, layout: str = "row") -> float:
    from tracekit.store.schema import MIGRATIONS

    con = duckdb.connect(str(db))
    ddl = next(s for s in MIGRATIONS[0][2] if s.strip().startswith("CREATE TABLE traces"))
    con.execute(ddl)
    t0 = time.perf_counter()
    source = f"read_parquet('{parquet}')"
    if layout == "list":
        source = f"(SELECT problem, unnest(completion) AS completion FROM {source})"
    con.execute(
        f"""INSERT INTO traces (trace_id, prompt_id, teacher, sample_index, text, origin)
            SELECT md5(problem || '#' || row_number() OVER ()), md5(problem), 'bench', 0, completion, 'imported'
            FROM {source}"""
    )
    con.execute("CHECKPOINT")
    dt = time.perf_counter() - t0
    con.close()
    return dt


def bench_tracekit(parquet: Path, db: Path) -> float:
    t0 = time.perf_counter()
    subprocess.run(
        [
            str(REPO / ".venv/bin/tracekit"),
            "import",
            str(parquet),
            "--store",
            str(db),
            "--quiet",
            "--map",
            "problem=problem",
            "--map",
            "reference=answer",
            "--map",
            "completion=completion",
            "--map",
            "label=correct",
            "--teacher",
            "bench",
        ],
        check=True,
    )
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=3, help="best of N for each side")
    ap.add_argument(
        "--layout",
        choices=["row", "list"],
        default="row",
        help="row: one trace per row (DuckDB reads the text); list: 4 traces per row (Arrow path)",
    )
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        parquet = d / "traces.parquet"
        t = time.perf_counter()
        nbytes = make_parquet(parquet, args.rows, layout=args.layout)
        print(
            f"made {args.rows:,} traces ({nbytes / 1e9:.2f} GB of text) in {time.perf_counter() - t:.1f}s"
        )
        raws, tks = [], []
        for i in range(args.repeat):  # alternate, so load changes hit both sides alike
            for f in d.glob("*.duckdb*"):
                f.unlink()
            raws.append(bench_raw(parquet, d / "raw.duckdb", args.layout))
            tks.append(bench_tracekit(parquet, d / "tk.duckdb"))
            print(f"  try {i + 1}: raw {raws[-1]:.2f}s, tracekit {tks[-1]:.2f}s", flush=True)
        raw, tk = min(raws), min(tks)
        n = (
            duckdb.connect(str(d / "tk.duckdb"), read_only=True)
            .execute("SELECT count(*) FROM traces")
            .fetchall()[0][0]
        )
        assert n == args.rows, n
        print(
            f"raw DuckDB INSERT ... SELECT read_parquet: {raw:7.2f}s  {args.rows / raw:10,.0f} rows/s"
        )
        print(
            f"tracekit import (CLI, end to end):        {tk:7.2f}s  {args.rows / tk:10,.0f} rows/s"
        )
        print(f"ratio tracekit / raw: {tk / raw:.2f}x (goal <= 2.0x)")


if __name__ == "__main__":
    main()
