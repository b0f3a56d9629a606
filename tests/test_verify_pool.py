"""The worker pool never hangs: soft alarms, hard kills, crashed workers, re-submitted chunks."""

from __future__ import annotations

import os
import signal
import time

from tracekit.verify.pool import Failure, Task, WorkerPool


def _handler(x):
    if x == "loop":  # interruptible: the soft alarm ends it
        while True:
            pass
    if x == "stuck":  # deaf to SIGALRM, like C code holding the GIL: only a kill ends it
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
        time.sleep(600)
    if x == "die":
        os._exit(3)
    if x == "raise":
        raise ValueError("bad input")
    return x * 2


def test_every_item_gets_a_result_despite_hangs_and_crashes() -> None:
    items = list(range(60)) + ["loop", "stuck", "die", "raise"] + list(range(60, 120))
    tasks = [Task(i, x, 1.0) for i, x in enumerate(items)]
    with WorkerPool(_handler, workers=2, chunk_size=8, grace_s=0.5) as pool:
        results = {t.key: r for t, r in pool.map(tasks)}
        killed, crashed = pool.killed, pool.crashed
    assert sorted(results) == list(range(len(items)))
    by_payload = {items[k]: r for k, r in results.items() if isinstance(items[k], str)}
    assert by_payload["loop"].kind == "timeout"
    assert by_payload["stuck"].kind == "timeout" and "killed" in by_payload["stuck"].message
    assert by_payload["stuck"].seconds < 1.0 + 0.5 + 2.0  # deadline + grace, with slack
    assert by_payload["die"].kind == "crashed"
    assert by_payload["raise"].kind == "error" and "ValueError" in by_payload["raise"].message
    normal = {k: r for k, r in results.items() if isinstance(items[k], int)}
    assert all(r == items[k] * 2 for k, r in normal.items())
    assert (killed, crashed) == (1, 1)


def test_pool_reports_failure_objects_only_for_bad_items() -> None:
    with WorkerPool(_handler, workers=1, chunk_size=3) as pool:
        out = list(pool.map([Task(i, i, 5.0) for i in range(10)]))
    assert [r for _, r in out] == [i * 2 for i in range(10)]
    assert not any(isinstance(r, Failure) for _, r in out)
