"""Multiple-choice verifier: the chosen letter (A-J) against the reference letter.

Reads `\\boxed{B}`, `(B)`, `**B**`, "answer is B", "Answer: B" in the answer part; the last
explicit choice wins. A reference such as `(C)` or `\\text{(C)}` is reduced to its letter.
"""

from __future__ import annotations

import re
from typing import Any

from tracekit.verify.base import Outcome
from tracekit.verify.math import find_boxed

NAME = "choice"
VERSION = "choice-1"

_LETTERS = "ABCDEFGHIJ"
_REF_RE = re.compile(r"^\W*(?:\\text\{)?\W*([A-Ja-j])\W*\}?\W*$")
_ANSWER_RE = re.compile(
    r"(?i)(?:answer|option|choice)\s*(?:is|:)?\s*[:\s]*\**\s*\(?([A-J])\)?(?![A-Za-z])"
)
_MARKED_RE = re.compile(r"(?:\*\*\(?([A-J])\)?\*\*|\(([A-J])\)(?!\w))")


def letter_of(text: str | None) -> str | None:
    if not text:
        return None
    m = _REF_RE.match(text.strip())
    return m.group(1).upper() if m else None


def chosen(answer: str) -> str | None:
    for b in reversed(find_boxed(answer)):
        if (c := letter_of(b)) is not None:
            return c
    found = [m.group(1) for m in _ANSWER_RE.finditer(answer)]
    if found:
        return found[-1].upper()
    marked = [m.group(1) or m.group(2) for m in _MARKED_RE.finditer(answer)]
    if marked:
        return marked[-1]
    stripped = answer.strip()
    return stripped.upper() if len(stripped) == 1 and stripped.upper() in _LETTERS else None


def check(reference: str | None, answer: str | None) -> Outcome:
    ref = letter_of(reference)
    if ref is None:
        return Outcome(
            "no_reference", None, None, {"reference": reference, "reason": "not a letter A-J"}
        )
    c = chosen(answer or "")
    if c is None:
        return Outcome("no_answer", False, None, {"reference": ref})
    return Outcome("ok", c == ref, c, {"reference": ref})


def handle(payload: dict[str, Any]) -> Outcome:
    return check(payload.get("reference"), payload.get("answer"))
