"""The `runs` log: one row per stage execution, opened before work starts and closed after.

A run that is killed stays `running` forever (nothing can close it), which is itself the signal
that it died; `tracekit runs` shows it and the next run of the stage resumes by skipping what
committed batches already wrote.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

if TYPE_CHECKING:
    from tracekit.store.store import Store


@lru_cache(maxsize=1)
def code_version() -> str:
    from tracekit import __version__

    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    except Exception:  # git missing or not a checkout: the package version is enough
        sha = ""
    return f"{__version__}+{sha}" if sha else __version__


def config_json(cfg: BaseModel | dict[str, Any] | None) -> str:
    """Serialise a stage config for the runs table. Fields marked secret never get here: configs
    hold the NAME of an environment variable, never a key."""
    if cfg is None:
        return "{}"
    if isinstance(cfg, BaseModel):
        data = cfg.model_dump(mode="json")
    else:
        data = cfg
    return json.dumps(data, sort_keys=True, default=str)


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


@dataclass
class RunResult:
    """What a stage returns: the run's id, final status and counts (what it did and skipped)."""

    run_id: str
    stage: str
    status: str
    counts: dict[str, int] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def __getitem__(self, key: str) -> int:
        return self.counts.get(key, 0)


class Run:
    """A live run: counts accumulate here and are written when the run closes (and on each
    `checkpoint`, so a long run shows progress in `tracekit runs`)."""

    def __init__(self, store: Store, stage: str, config: BaseModel | dict[str, Any] | None):
        self.store = store
        self.stage = stage
        self.run_id = f"{stage}-{_now():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
        self.counts: Counter[str] = Counter()
        self.details: dict[str, Any] = {}
        self._t0 = time.perf_counter()
        store.con.execute(
            "INSERT INTO runs (run_id, stage, status, started_at, config, code_version, counts)"
            " VALUES (?, ?, 'running', ?, ?, ?, '{}')",
            [self.run_id, stage, _now(), config_json(config), code_version()],
        )

    def add(self, key: str, n: int = 1) -> None:
        self.counts[key] += n

    def checkpoint(self) -> None:
        self.store.con.execute(
            "UPDATE runs SET counts = ? WHERE run_id = ?",
            [self._counts_json(), self.run_id],
        )

    def _counts_json(self) -> str:
        return json.dumps({"counts": dict(self.counts), **self.details}, default=str)

    def finish(self, status: str = "ok", error: str | None = None) -> RunResult:
        self.store.con.execute(
            "UPDATE runs SET status = ?, finished_at = ?, counts = ?, error = ? WHERE run_id = ?",
            [status, _now(), self._counts_json(), error, self.run_id],
        )
        return RunResult(
            run_id=self.run_id,
            stage=self.stage,
            status=status,
            counts=dict(self.counts),
            details=dict(self.details),
            seconds=time.perf_counter() - self._t0,
        )
