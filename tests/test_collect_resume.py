"""Crash safety and scale-out: kill -9 a running `tracekit collect` and resume it, Ctrl-C it, and
split prompts into shards collected into separate stores and merged back."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tracekit.collect.collect import CollectConfig, run_collect
from tracekit.collect.shard import shard_of
from tracekit.store import Store
from tracekit.store.ids import prompt_id

pytestmark = pytest.mark.model


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    """On a busy 2-core runner two spinning torch threads per process make generation 10x slower
    (measured: a tiny model's 8 tokens took 0.3 s on one thread, 2-5 s on two)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


TRACEKIT = str(Path(sys.executable).parent / "tracekit")


def make_store(path: Path, n: int) -> Path:
    with Store(path) as s:
        problems = [
            f"A train travels {i} km in {i + 1} hours. What is its speed?" for i in range(n)
        ]
        s.insert_rows(
            "prompts",
            [{"prompt_id": prompt_id(p), "source": "unit", "problem": p} for p in problems],
        )
    return path


def start_collect(db: Path, spec: str, n_prompts: int) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in ("TRACEKIT_QUIET", "TRACEKIT_PROGRESS")}
    env["OMP_NUM_THREADS"] = (
        "1"  # a shared 2-core runner: torch's spinning threads slow each other down
    )
    cmd = [TRACEKIT, "collect", "--teacher", spec, "--samples", "2", "--limit", str(n_prompts),
           "--batch-size", "1", "--max-tokens", "8", "--store", str(db)]  # fmt: skip
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)


def wait_for_commits(proc: subprocess.Popen, n: int) -> None:
    """Without a terminal, collect prints a line per committed batch: wait for n of them."""
    seen = 0
    assert proc.stderr is not None
    for line in proc.stderr:
        if b"samples committed" in line:
            seen += 1
            if seen >= n:
                return
    raise AssertionError(f"collect ended (rc={proc.wait()}) before {n} commits")


def trace_ids(db: Path) -> list[str]:
    with Store(db, read_only=True) as s:
        return [r[0] for r in s.fetchall("SELECT trace_id FROM traces ORDER BY trace_id")]


def test_kill_9_then_resume_equals_an_uninterrupted_run(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    spec, n = f"hf:{tiny_model_dir}", 40
    killed = make_store(tmp_path / "killed.duckdb", n)
    proc = start_collect(killed, spec, n)
    try:
        wait_for_commits(proc, 2)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    with Store(killed) as s:
        partial = s.count("traces")
        assert 4 <= partial < 2 * n, "the kill should land mid-run"
        assert partial % 2 == 0  # whole batches only (batch = one prompt x 2 samples)
        assert (
            s.count("traces", "text IS NULL OR finish_reason IS NULL OR completion_tokens IS NULL")
            == 0
        )
        assert s.scalar("SELECT status FROM runs WHERE stage = 'collect'") == "running"  # it died

    code, out, err = run_cli("collect", "--teacher", spec, "--samples", "2", "--limit", str(n),
                             "--batch-size", "1", "--max-tokens", "8", "--quiet", store=killed)  # fmt: skip
    assert code == 0, err
    assert f"skipped={partial}" in out

    whole = make_store(tmp_path / "whole.duckdb", n)
    with Store(whole) as s:
        run_collect(
            s, CollectConfig(teachers=[spec], samples=2, limit=n, batch_size=8, max_tokens=8)
        )
    resumed = trace_ids(killed)
    assert len(resumed) == len(set(resumed)) == 2 * n
    assert resumed == trace_ids(whole)


def test_sigint_stops_after_the_batch_in_flight(tmp_path: Path, tiny_model_dir: Path) -> None:
    spec, n = f"hf:{tiny_model_dir}", 40
    db = make_store(tmp_path / "int.duckdb", n)
    proc = start_collect(db, spec, n)
    try:
        wait_for_commits(proc, 1)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert b"re-run the same command to resume" in err
    with Store(db) as s:
        status, counts = s.fetchone("SELECT status, counts FROM runs WHERE stage = 'collect'")
        assert status == "interrupted" and '"stopped": "interrupted"' in counts
        done = s.count("traces")
        assert 2 <= done < 2 * n and done % 2 == 0


def test_shards_partition_the_prompts_and_merge_back(tmp_path: Path, tiny_model_dir: Path) -> None:
    spec, n = f"hf:{tiny_model_dir}", 6
    shards = []
    for i in range(2):
        db = make_store(tmp_path / f"shard{i}.duckdb", n)
        code, out, err = run_cli("collect", "--teacher", spec, "--samples", "1", "--max-tokens", "3",
                                 "--shard", f"{i}/2", "--quiet", store=db)  # fmt: skip
        assert code == 0, err
        shards.append(db)
    ids0, ids1 = set(trace_ids(shards[0])), set(trace_ids(shards[1]))
    assert ids0 and ids1 and not ids0 & ids1
    with Store(shards[0], read_only=True) as s:
        assert {shard_of(r[0], 2) for r in s.fetchall("SELECT prompt_id FROM traces")} == {0}

    merged = tmp_path / "merged.duckdb"
    code, out, err = run_cli("merge", str(shards[0]), str(shards[1]), "--quiet", store=merged)
    assert code == 0, err
    assert f"traces={n}" in out and "prompts=6" in out
    with Store(merged) as s:
        assert s.count("runs", "stage = 'collect'") == 2  # lineage of both shards came along
    code, out, err = run_cli("merge", str(shards[0]), str(shards[1]), "--quiet", store=merged)
    assert code == 0 and "traces=" not in out  # re-merging adds nothing

    single = make_store(tmp_path / "single.duckdb", n)
    with Store(single) as s:
        run_collect(s, CollectConfig(teachers=[spec], samples=1, max_tokens=3))
    assert trace_ids(merged) == trace_ids(single) == sorted(ids0 | ids1)


def test_merge_refuses_itself_and_missing_files(tmp_path: Path) -> None:
    db = make_store(tmp_path / "a.duckdb", 1)
    code, _, err = run_cli("merge", str(db), store=db)
    assert code == 1 and "target store itself" in err
    code, _, err = run_cli("merge", str(tmp_path / "nope.duckdb"), store=db)
    assert code == 1 and "no store at" in err
