"""Regex verifier: a user pattern extracts the answer (group 1, last match), then exact match.

The pattern comes from `--regex` (VerifyConfig.regex); a prompt may carry its own in
meta.answer_regex. For formats the other verifiers do not know, e.g. `ANSWER: (\\w+)`.
"""

from __future__ import annotations

import re
from typing import Any

from tracekit.verify.base import Outcome
from tracekit.verify.exact import normalize

NAME = "regex"
VERSION = "regex-1"
DEFAULT_PATTERN = r"(?im)^\s*(?:final\s+)?answer\s*[:：]\s*(.+?)\s*$"


def check(reference: str | None, answer: str | None, pattern: str | None = None) -> Outcome:
    pattern = pattern or DEFAULT_PATTERN
    if reference is None or not normalize(reference):
        return Outcome("no_reference", None, None, {"reason": "reference missing"})
    try:
        rx = re.compile(pattern)
    except re.error as e:
        return Outcome("error", None, None, {"pattern": pattern, "reason": f"bad regex: {e}"})
    matches = list(rx.finditer(answer or ""))
    if not matches:
        return Outcome("no_answer", False, None, {"pattern": pattern, "reference": reference})
    m = matches[-1]
    value = m.group(1) if m.groups() else m.group(0)
    ok = normalize(value) == normalize(reference)
    return Outcome("ok", ok, value[:500], {"pattern": pattern, "reference": reference})


def handle(payload: dict[str, Any]) -> Outcome:
    return check(payload.get("reference"), payload.get("answer"), payload.get("pattern"))
