"""The trainer log as JSONL, written as training goes so a killed run keeps what it logged.

On resume the lines past the checkpoint's step are dropped first: they belong to steps that are
about to be trained again.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

from transformers import TrainerCallback


class JsonlLogCallback(TrainerCallback):
    def __init__(self, path: Path) -> None:
        self.path = path
        self._t0 = time.time()

    def on_log(
        self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kw: Any
    ) -> None:
        if not state.is_world_process_zero or not logs:
            return
        row = {
            "step": state.global_step,
            "epoch": state.epoch,
            "time": round(time.time() - self._t0, 3),
        }
        for k, v in logs.items():
            if isinstance(v, float) and not math.isfinite(v):
                v = None
            row[k] = v
        with self.path.open("a") as f:
            f.write(json.dumps(row, default=str) + "\n")


def truncate_after(path: Path, step: int) -> None:
    """Keep only rows logged at or before `step` (the checkpoint a resumed run restarts from)."""
    if not path.exists():
        return
    keep = [
        line
        for line in path.read_text().splitlines()
        if line.strip() and json.loads(line).get("step", 0) <= step
    ]
    path.write_text("".join(line + "\n" for line in keep))


def read_log(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
