"""Exact-match verifier: normalised string equality of the final answer and the reference.

For answers that are names, words or codes, where math equivalence means nothing. The final
answer is the last box, else a final-answer line, else the whole answer part.
"""

from __future__ import annotations

import re
from typing import Any

from tracekit.verify.base import Outcome
from tracekit.verify.math import _FINAL_LINE_RE, find_boxed

NAME = "exact"
VERSION = "exact-1"

_TEXT_CMD = re.compile(r"\\(?:text|textbf|mathrm|mbox)\s*\{([^{}]*)\}")


def normalize(s: str) -> str:
    """Case, whitespace, surrounding `$`/quotes/bold, LaTeX text wrappers, a final full stop."""
    s = _TEXT_CMD.sub(r"\1", s)
    s = s.strip().strip("$*\"'`").strip()
    s = s.rstrip(".").strip()
    return re.sub(r"\s+", " ", s).lower()


def final_answer(answer: str) -> str | None:
    if not answer or not answer.strip():
        return None
    boxes = [b for b in find_boxed(answer) if b.strip()]
    if boxes:
        return boxes[-1]
    lines = list(_FINAL_LINE_RE.finditer(answer[-2000:]))
    if lines:
        return lines[-1].group(1)
    return answer.strip()


def check(reference: str | None, answer: str | None) -> Outcome:
    if reference is None or not normalize(reference):
        return Outcome("no_reference", None, None, {"reason": "reference missing"})
    pred = final_answer(answer or "")
    if pred is None or not normalize(pred):
        return Outcome("no_answer", False, None, {"reference": reference})
    ok = normalize(pred) == normalize(reference)
    return Outcome("ok", ok, pred[:500], {"reference": reference})


def handle(payload: dict[str, Any]) -> Outcome:
    return check(payload.get("reference"), payload.get("answer"))
