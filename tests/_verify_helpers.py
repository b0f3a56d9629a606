"""Rows for verify tests, inserted the way the importer writes them."""

from __future__ import annotations

import json
from typing import Any

from tracekit.store.ids import content_id, prompt_id


def add_prompt(
    store,
    problem: str,
    reference: str | None,
    domain: str | None = "math",
    meta: dict | None = None,
) -> str:
    pid = prompt_id(problem)
    store.insert_rows(
        "prompts",
        [
            {
                "prompt_id": pid,
                "source": "test",
                "problem": problem,
                "reference_answer": reference,
                "domain": domain,
                "meta": json.dumps(meta) if meta is not None else None,
            }
        ],
    )
    return pid


def add_trace(
    store, pid: str, text: str, teacher: str = "t1", finish_reason: str | None = "stop", **kw: Any
) -> str:
    tid = content_id("test-trace", pid, teacher, text, kw.get("sample_index", 0))
    store.insert_rows(
        "traces",
        [
            {
                "trace_id": tid,
                "prompt_id": pid,
                "teacher": teacher,
                "text": text,
                "finish_reason": finish_reason,
                "origin": "imported",
                "sample_index": kw.get("sample_index", 0),
            }
        ],
    )
    return tid


def verdict(store, tid: str, verifier: str) -> dict[str, Any]:
    rows = store.dicts(
        "SELECT * FROM verdicts WHERE trace_id = ? AND verifier = ?", [tid, verifier]
    )
    assert len(rows) == 1, rows
    r = rows[0]
    r["detail"] = json.loads(r["detail"]) if isinstance(r["detail"], str) else r["detail"]
    return r
