"""Helpers for the filter tests: real problems and traces into a store, the way importers do."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from tracekit.store import Store
from tracekit.store.ids import imported_trace_id, prompt_id


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def math500(data: Path) -> list[dict[str, Any]]:
    return read_jsonl(data / "math500" / "test.jsonl")


def real_prompts(data: Path, n_math: int = 1000, n_gsm: int = 1000, seed: int = 0) -> list[str]:
    """Real training problems: MATH train and GSM8K train, sampled with a fixed seed."""
    rng = random.Random(seed)
    mt = [r["problem"] for r in json.loads((data / "math_train" / "train_math.json").read_text())]
    gs = [r["question"] for r in read_jsonl(data / "gsm8k" / "train.jsonl")]
    return rng.sample(mt, n_math) + rng.sample(gs, n_gsm)


def add_prompts(
    store: Store, problems: list[str], source: str = "test", domain: str | None = "math"
) -> list[str]:
    rows = [
        {"prompt_id": prompt_id(p), "source": source, "problem": p, "domain": domain}
        for p in problems
    ]
    store.insert_rows("prompts", rows)
    return [r["prompt_id"] for r in rows]


def add_traces(
    store: Store,
    items: list[tuple[str, str, str]],
    *,
    correct: list[bool | None] | None = None,
) -> list[str]:
    """items: (prompt_id, teacher, text); optional verdicts (verifier `source`)."""
    rows, verdicts = [], []
    for i, (pid, teacher, text) in enumerate(items):
        tid = imported_trace_id(pid, teacher, "test", str(i), i)
        rows.append(
            {
                "trace_id": tid,
                "prompt_id": pid,
                "teacher": teacher,
                "text": text,
                "origin": "imported",
            }
        )
        if correct is not None and correct[i] is not None:
            verdicts.append(
                {"trace_id": tid, "verifier": "source", "correct": correct[i], "status": "ok"}
            )
    store.insert_rows("traces", rows)
    store.insert_rows("verdicts", verdicts)
    return [r["trace_id"] for r in rows]


def flags(store: Store, family: str) -> list[dict[str, Any]]:
    rows = store.dicts("SELECT * FROM flags WHERE flag LIKE ? ORDER BY flag_id", [family + ":%"])
    for r in rows:
        r["detail"] = json.loads(r["detail"])
    return rows
