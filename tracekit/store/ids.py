"""Content-addressed ids.

An id is a hash of the fields that define a row, so a stage that is re-run (or resumed after a
crash) computes the same ids and skips what already exists instead of writing duplicates.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

ID_LENGTH = 16  # 64 bits of blake2b: collisions need ~4e9 rows per table


def canonical(value: Any) -> str:
    """A stable text form: dict keys sorted, no whitespace, so equal configs hash equally."""
    if isinstance(value, str):
        return value
    if type(value) is int:  # json.dumps of an int is str(int), without json's overhead
        return str(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def content_id(kind: str, *fields: Any) -> str:
    h = hashlib.blake2b(digest_size=ID_LENGTH // 2)
    h.update(kind.encode())
    for f in fields:
        h.update(b"\x1f")
        h.update(canonical(f).encode("utf-8", "surrogatepass"))
    return h.hexdigest()


def prompt_id(problem: str) -> str:
    """Prompts are identified by their text alone, so the same problem from two sources or two
    teachers is one prompt and per-prompt comparisons join naturally."""
    return content_id("prompt", problem.strip())


def imported_trace_id(
    prompt_id: str, teacher: str, source: str, source_ref: str, sample_index: int
) -> str:
    return content_id("trace-import", prompt_id, teacher, source, source_ref, sample_index)


def generated_trace_id(
    prompt_id: str,
    teacher: str,
    revision: str | None,
    sampling: dict[str, Any],
    seed: int | None,
    sample_index: int,
) -> str:
    return content_id(
        "trace-gen",
        prompt_id,
        teacher,
        revision or "",
        sampling,
        seed if seed is not None else "",
        sample_index,
    )


def flag_id(prompt_id: str | None, trace_id: str | None, flag: str) -> str:
    return content_id("flag", prompt_id or "", trace_id or "", flag)
