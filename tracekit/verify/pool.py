"""A pool of killable worker processes with a hard per-item deadline enforced by the parent.

Why not concurrent.futures: a future that hangs in C code (sympy on a tower of exponents, a regex
on a 200 KB answer) can be neither cancelled nor timed out, and math-verify's own SIGALRM timeouts
only work on a main thread and are swallowed by its `except Exception`. Here each worker is a
plain process that receives CHUNKS of items (one pipe message per chunk, so IPC stays far below
the cost of a verification) and publishes which item it is on, and since when, in two shared
doubles. The parent watches those: an item past its deadline + grace gets its worker SIGKILLed
and replaced (forked from the parent, which already imported the heavy libraries, so a
replacement costs milliseconds), the item is reported as a timeout, and the rest of its chunk is
re-submitted. A worker that dies on its own (OOM killer, segfault) is handled the same way, with
status `crashed` for the item it was on.

Inside the worker a SIGALRM soft deadline (raising a BaseException that library code cannot
swallow) ends most slow items without a kill; the parent's hard deadline is the backstop for
items that hold the GIL in C and never see the signal.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import signal
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.sharedctypes import RawArray
from typing import Any

Handler = Callable[[Any], Any]


@dataclass(frozen=True)
class Task:
    """One unit of work: `payload` goes to the handler; `deadline_s` bounds its wall time."""

    key: Any
    payload: Any
    deadline_s: float


@dataclass(frozen=True)
class Failure:
    """What the pool yields instead of a handler result: kind is timeout | crashed | error."""

    kind: str
    message: str
    seconds: float


class SoftTimeout(BaseException):
    """Raised by the worker's alarm; a BaseException so `except Exception` in libraries lets it
    through."""


def _on_alarm(signum: int, frame: Any) -> None:
    raise SoftTimeout()


def _worker_main(handler: Handler, conn: Connection, progress: Any) -> None:
    """Loop: receive a chunk, run each item under a soft alarm, publish progress, send results."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    signal.signal(signal.SIGALRM, _on_alarm)
    while True:
        try:
            chunk = conn.recv()
        except (EOFError, OSError):
            return
        if chunk is None:
            return
        results: list[Any] = []
        for i, task in enumerate(chunk):
            t0 = time.monotonic()
            progress[0] = i
            progress[1] = t0
            try:
                signal.setitimer(signal.ITIMER_REAL, max(task.deadline_s, 0.001))
                try:
                    res = handler(task.payload)
                finally:
                    signal.setitimer(signal.ITIMER_REAL, 0)
            except SoftTimeout:
                res = Failure("timeout", f"exceeded {task.deadline_s:g}s", time.monotonic() - t0)
            except Exception as e:  # a verifier bug must not kill the run: report it per item
                res = Failure("error", f"{type(e).__name__}: {e}"[:500], time.monotonic() - t0)
            results.append(res)
        progress[1] = 0.0
        try:
            conn.send(results)
        except (BrokenPipeError, OSError):
            return


def _context() -> mp.context.BaseContext:
    # fork: workers inherit the already-imported math-verify/sympy, so starting (and replacing a
    # killed) worker costs milliseconds instead of a second of imports
    methods = mp.get_all_start_methods()
    return mp.get_context("fork" if "fork" in methods else "spawn")


class _Worker:
    def __init__(self, ctx: mp.context.BaseContext, handler: Handler) -> None:
        self.conn, child = ctx.Pipe(duplex=True)
        self.progress = RawArray("d", 2)
        self.proc = ctx.Process(
            target=_worker_main, args=(handler, child, self.progress), daemon=True
        )
        self.proc.start()
        child.close()
        self.chunk: list[Task] | None = None
        self.sent_at = 0.0

    def submit(self, chunk: list[Task]) -> None:
        self.chunk = chunk
        self.sent_at = time.monotonic()
        self.progress[0] = 0
        self.progress[1] = 0.0
        self.conn.send(chunk)

    def in_flight(self) -> tuple[int, float]:
        """(index of the item being worked on, when it started); before the worker picked up
        the chunk, item 0 counts from the moment the chunk was sent."""
        started = self.progress[1]
        if started <= 0.0:
            return 0, self.sent_at
        return int(self.progress[0]), started

    def kill(self) -> None:
        with contextlib.suppress(Exception):
            self.proc.kill()
        self.proc.join(timeout=5)
        self.conn.close()

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.conn.send(None)
        self.proc.join(timeout=2)
        if self.proc.is_alive():
            self.kill()
        else:
            self.conn.close()


class WorkerPool:
    """`map(tasks)` yields (task, result-or-Failure) as chunks complete, in completion order.

    grace: seconds past an item's deadline before the parent kills its worker (the soft alarm
    gets the first chance). chunk_size: items per message; small enough that re-running the
    completed part of a killed chunk is cheap, large enough that pipe traffic is negligible.
    """

    def __init__(
        self,
        handler: Handler,
        workers: int = 2,
        chunk_size: int = 32,
        grace_s: float = 1.0,
        poll_s: float = 0.05,
    ) -> None:
        if workers < 1:
            raise ValueError("workers must be >= 1")
        self.handler = handler
        self.n_workers = workers
        self.chunk_size = max(1, chunk_size)
        self.grace_s = grace_s
        self.poll_s = poll_s
        self.ctx = _context()
        self.workers: list[_Worker] = []
        self.killed = 0
        self.crashed = 0

    def __enter__(self) -> WorkerPool:
        self.workers = [_Worker(self.ctx, self.handler) for _ in range(self.n_workers)]
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for w in self.workers:
            w.stop()
        self.workers = []

    def _replace(self, w: _Worker) -> _Worker:
        w.kill()
        new = _Worker(self.ctx, self.handler)
        self.workers[self.workers.index(w)] = new
        return new

    def map(self, tasks: Iterable[Task]) -> Iterator[tuple[Task, Any]]:
        """Chunks are cut from `tasks` in order, so callers that sort items (e.g. by prompt) keep
        related items in one worker, where per-prompt caches hit."""
        if not self.workers:
            self.__enter__()
        source = iter(tasks)
        self._requeued: deque[list[Task]] = deque()
        requeued = self._requeued
        exhausted = False

        def next_chunk() -> list[Task] | None:
            nonlocal exhausted
            if requeued:
                return requeued.popleft()
            if exhausted:
                return None
            chunk: list[Task] = []
            for t in source:
                chunk.append(t)
                if len(chunk) >= self.chunk_size:
                    break
            if len(chunk) < self.chunk_size:
                exhausted = True
            return chunk or None

        while True:
            for w in list(self.workers):
                if w.chunk is None:
                    chunk = next_chunk()
                    if chunk is None:
                        break
                    w.submit(chunk)
            busy = [w for w in self.workers if w.chunk is not None]
            if not busy:
                return
            now = time.monotonic()
            timeout = self.poll_s
            for w in busy:
                i, started = w.in_flight()
                limit = started + w.chunk[min(i, len(w.chunk) - 1)].deadline_s + self.grace_s
                timeout = min(timeout, max(0.0, limit - now))
            ready = wait([w.conn for w in busy] + [w.proc.sentinel for w in busy], timeout)
            for w in busy:
                if w.conn in ready:
                    try:
                        results = w.conn.recv()
                    except (EOFError, OSError):
                        results = None
                    if results is not None:
                        chunk, w.chunk = w.chunk, None
                        yield from zip(chunk, results, strict=True)
                        continue
                if w.chunk is not None and (w.proc.sentinel in ready or not w.proc.is_alive()):
                    yield from self._fail_in_flight(w, "crashed")
                    continue
                i, started = w.in_flight()
                task = w.chunk[min(i, len(w.chunk) - 1)]
                if time.monotonic() - started > task.deadline_s + self.grace_s:
                    yield from self._fail_in_flight(w, "timeout")

    def _fail_in_flight(self, w: _Worker, kind: str) -> Iterator[tuple[Task, Any]]:
        """Report the item the worker was on, re-queue the rest of its chunk (the completed
        part too: its results died with the worker), and replace the worker."""
        assert w.chunk is not None
        i, started = w.in_flight()
        i = min(i, len(w.chunk) - 1)
        chunk = w.chunk
        w.chunk = None
        seconds = time.monotonic() - started
        if kind == "timeout":
            self.killed += 1
            msg = f"killed after {seconds:.1f}s (deadline {chunk[i].deadline_s:g}s)"
        else:
            self.crashed += 1
            code = w.proc.exitcode
            msg = f"worker died (exit code {code})" if code is not None else "worker died"
        rest = chunk[:i] + chunk[i + 1 :]
        self._replace(w)
        if rest:
            self._requeued.append(rest)
        yield chunk[i], Failure(kind, msg, seconds)


def run_inline(handler: Handler, tasks: Iterable[Task]) -> Iterator[tuple[Task, Any]]:
    """The same contract in-process (no isolation): for debugging and tiny inputs only."""
    for t in tasks:
        try:
            yield t, handler(t.payload)
        except Exception as e:
            yield t, Failure("error", f"{type(e).__name__}: {e}", 0.0)


__all__ = ["Failure", "Task", "WorkerPool", "run_inline", "SoftTimeout"]
