"""The math verifier, on math-verify: is the final answer of a trace equivalent to the reference?

Order of work per trace: take the answer part (after the reasoning), pick the prediction (the
LAST non-empty `\\boxed{}`; else a final-answer line such as GSM8K's `A: 42` or `#### 42`; else
math-verify's own anchors over the tail of the answer), parse it, and call
`verify(gold, pred)` in that order (gold first: math-verify is not symmetric).

Gold is parsed once per distinct reference (an LRU cache; the runner sends a prompt's traces in
one chunk so the cache hits). A reference is wrapped in `\\boxed{}` before parsing, because bare
LaTeX such as `\\left( 3, \\frac{\\pi}{2} \\right)` otherwise parses as its first number. A
reference that still does not parse gives status `no_reference` and never `correct=True`.

math-verify's own SIGALRM timeouts are turned off (`parsing_timeout=None`, `timeout_seconds=None`):
they swallow the timeout into a silent `False`, which would record a hang as a wrong answer. The
worker pool's soft alarm and hard deadline handle time instead (pool.py).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

from tracekit.verify.base import Outcome

try:
    from importlib.metadata import version as _pkg_version

    _MV_VERSION = _pkg_version("math-verify")
except Exception:  # pragma: no cover - metadata missing in odd installs
    _MV_VERSION = "unknown"

NAME = "math"
VERSION = f"math-verify-{_MV_VERSION}+tk1"

# math-verify warns once that we disabled its timeouts (we did, on purpose) and logs every
# unparseable candidate; neither is news to a user
logging.getLogger("math_verify").setLevel(logging.ERROR)

_BOXED_ONLY = [LatexExtractionConfig(boxed_match_priority=0)]
_DEFAULT = [LatexExtractionConfig(), ExprExtractionConfig()]
_TAIL_CHARS = 2000  # math-verify's anchors scan the whole string: bound the work on huge answers
_MAX_BOX_CHARS = 2000  # a "boxed" answer longer than this is not an answer

_BOX_RE = re.compile(r"\\(?:boxed|fbox)\s*\{")
_FINAL_LINE_RE = re.compile(
    r"(?:^|\n)[ \t]*(?:\*\*)?(?:A|Answer|Final [Aa]nswer|####)(?:\*\*)?[ \t]*[:：]?(?:\*\*)?[ \t]*(.+?)[ \t]*$"
)
_PHRASE_RE = re.compile(
    r"(?i)\b(?:final answer|answer|result)\b[^.\n]{0,20}?\b(?:is|was|are)\b[:\s]*(.+?)(?:\.\s|\.?\n|\.?$)"
    r"|(?:^|[\s,])([^\s,][^\n,]{0,60}?)\s+is\s+(?:indeed\s+)?the\s+(?:correct\s+|final\s+)?answer"
)
# "Therefore, the sum \(a+b+c = 11+9+0 = 20\)." : a concluding sentence with math in it
_CONCLUSION_RE = re.compile(
    r"(?:^|\n|\.\s)(?:Therefore|Thus|Hence|So)\b,?([^\n]*?(?:\\\(|\$)[^\n]*?(?:\\\)|\$))\s*\.?\s*\Z"
)
_WORDS_RE = re.compile(r"[A-Za-z][A-Za-z ]{0,40}")
# 12^{\text{th}} grade -> 12: ordinal suffixes make a number unparseable
_ORDINAL_RE = re.compile(r"\^\s*\{?\s*(?:\\text\{|\\mathrm\{)?\s*(?:st|nd|rd|th)\s*\}?\s*\}?")
_GSM_HASHES = re.compile(r"####\s*(.+?)\s*$", re.S)


def find_boxed(text: str) -> list[str]:
    """Contents of every `\\boxed{...}` / `\\fbox{...}`, braces balanced, in order."""
    out: list[str] = []
    for m in _BOX_RE.finditer(text):
        depth, i = 1, m.end()
        while i < len(text) and depth:
            c = text[i]
            if c == "{":
                depth += 1
            elif c == "}":
                depth -= 1
            i += 1
        if depth == 0:
            out.append(text[m.end() : i - 1])
    return out


def reference_text(reference: str | None) -> str | None:
    """The final answer inside a reference: GSM8K worked solutions end in `#### 42`; inline
    `$...$` delimiters are dropped. Empty means there is no reference."""
    if reference is None:
        return None
    ref = reference.strip()
    m = _GSM_HASHES.search(ref)
    if m:
        ref = m.group(1)
    boxes = find_boxed(ref)
    if boxes and boxes[-1].strip():
        ref = boxes[-1]
    ref = ref.strip()
    if len(ref) >= 2 and ref[0] == "$" and ref[-1] == "$":
        ref = ref.strip("$").strip()
    return ref or None


@lru_cache(maxsize=8192)
def parse_gold(reference: str | None) -> tuple[list[Any], str | None]:
    """(parsed gold, the reference's answer text); parsed is [] when it does not parse."""
    ref = reference_text(reference)
    if ref is None:
        return [], None
    gold = parse("\\boxed{" + ref + "}", _DEFAULT, parsing_timeout=None)
    if not gold:
        gold = parse(ref, _DEFAULT, parsing_timeout=None)
    return gold, ref


@dataclass(frozen=True)
class Prediction:
    text: str  # what was handed to the parser
    source: str  # boxed | final_line | anchors
    n_boxed: int
    boxes: tuple[str, ...]


def extract_predictions(answer: str) -> list[Prediction]:
    """Candidates for the final answer in the answer part of a trace, best first: the last
    non-empty box; a final-answer line (`A: 42`, `#### 42`, `Final Answer: 42`); the last "the
    answer is ..." phrase; the tail of the answer under math-verify's own anchors. The first one
    that parses is the prediction."""
    if not answer or not answer.strip():
        return []
    boxes = tuple(
        _ORDINAL_RE.sub("", b) for b in find_boxed(answer) if b.strip() and len(b) <= _MAX_BOX_CHARS
    )
    if boxes:
        return [Prediction("\\boxed{" + boxes[-1] + "}", "boxed", len(boxes), boxes)]
    tail = answer[-_TAIL_CHARS:]
    out: list[Prediction] = []
    lines = list(_FINAL_LINE_RE.finditer(tail))
    if lines and (value := _clean_phrase(lines[-1].group(1))):
        out.append(Prediction(value, "final_line", 0, ()))
    phrases = list(_PHRASE_RE.finditer(tail))
    if phrases and (value := _clean_phrase(phrases[-1].group(1) or phrases[-1].group(2) or "")):
        out.append(Prediction(value, "phrase", 0, ()))
        if "final answer" in phrases[-1].group(0).lower() and _WORDS_RE.fullmatch(
            value
        ):  # "the final answer is east": a text answer
            out.append(Prediction("\\boxed{\\text{" + value + "}}", "boxed", 0, ()))
    conclusions = list(_CONCLUSION_RE.finditer(tail))
    if conclusions and conclusions[-1].group(1).count("=") >= 2:
        # only an equation chain: its last side is a result, anything else is too vague
        value = _clean_phrase(conclusions[-1].group(1))
        out.append(Prediction(value, "conclusion", 0, ()))
    out.append(Prediction(tail, "anchors", 0, ()))
    return out


def _clean_phrase(value: str) -> str:
    """Drop bold and the full stop; of an equation CHAIN (`a+b = 11+9 = 20`) keep the last side
    (a single `x = 5` stays: math-verify compares equations with values)."""
    value = value.strip().strip("*").strip().rstrip(".").strip().strip("*").strip()
    bare = value
    for d in ("\\(", "\\)", "\\[", "\\]", "$"):
        bare = bare.replace(d, " ")
    if bare.count("=") >= 2:
        return "$" + bare.rsplit("=", 1)[1].strip() + "$"
    return value


def _parse_pred(pred: Prediction) -> list[Any]:
    if pred.source == "boxed":
        return parse(pred.text, _BOXED_ONLY, parsing_timeout=None)
    if pred.source in ("final_line", "phrase", "conclusion"):
        # "18 dollars" boxed would parse as a product of symbols; the anchors mode of
        # math-verify reads "Final answer: 18 dollars" as 18, and "$\frac12$" as LaTeX
        return parse("Final answer: " + pred.text, _DEFAULT, parsing_timeout=None)
    return parse(pred.text, _DEFAULT, parsing_timeout=None)


def _shown(parsed: list[Any], fallback: str) -> str:
    if len(parsed) >= 2 and isinstance(parsed[1], str):
        return parsed[1]
    if parsed:
        return str(parsed[0])
    return fallback


def check(reference: str | None, answer: str | None) -> Outcome:
    """Verify one answer part against one reference."""
    gold, ref = parse_gold(reference)
    if not gold:
        detail = {
            "reference": ref,
            "reason": "reference missing" if ref is None else "reference does not parse",
        }
        return Outcome("no_reference", None, None, detail)
    preds = extract_predictions(answer or "")
    if not preds:
        return Outcome("no_answer", False, None, {"reference": ref, "reason": "empty answer part"})
    for pred in preds:
        parsed = _parse_pred(pred)
        if parsed:
            break
    else:
        detail = {"reference": ref, "reason": "no parseable answer"}
        return Outcome("no_answer", False, None, detail)
    correct = bool(verify(gold, parsed, timeout_seconds=None))
    detail: dict[str, Any] = {"reference": ref, "gold": _shown(gold, ref), "source": pred.source}
    if pred.n_boxed > 1:
        detail["n_boxed"] = pred.n_boxed
        if not correct and len(set(pred.boxes)) > 1:
            # several answers boxed on purpose ("x = 2 and x = 3"): compare them as one set,
            # which can only match a multi-valued gold
            together = parse(
                "\\boxed{" + ", ".join(pred.boxes) + "}", _BOXED_ONLY, parsing_timeout=None
            )
            if together and verify(gold, together, timeout_seconds=None):
                correct, parsed = True, together
                detail["combined_boxes"] = True
    return Outcome("ok", correct, _shown(parsed, pred.text)[:500], detail)


def handle(payload: dict[str, Any]) -> Outcome:
    """Worker entry: payload = {reference, answer}."""
    return check(payload.get("reference"), payload.get("answer"))
