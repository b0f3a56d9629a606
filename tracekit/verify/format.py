"""Format checks: properties of a trace's shape, recorded as `format:<kind>` flags, not verdicts.

A flag says "look at this", not "this is wrong": a truncated trace can still hold the right
answer. Kinds: unclosed_think (a thinking block that never closed), missing_think (no thinking
block; only when the caller expects one), truncated (finish_reason = length), no_answer (empty
answer part, or the verifier found no final answer), repetition (the text ends in a unit repeated
many times), mixed_language (the reasoning switches script, e.g. Latin and CJK, in quantity).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

FAMILY = "format"

_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")
_CYRILLIC = re.compile(r"[\u0400-\u04ff]")
# words of 3+ Latin letters not part of a LaTeX command
_LATIN_WORD = re.compile(r"(?<![\\A-Za-z])[A-Za-z]{3,}")

REPEAT_TAIL_CHARS = 3000
REPEAT_MIN_COVER = 200  # the repeated unit must cover at least this many trailing chars
REPEAT_MIN_TIMES = 8
REPEAT_MAX_UNIT = 300


@dataclass(frozen=True)
class Flag:
    kind: str
    detail: str = ""

    @property
    def name(self) -> str:
        return f"{FAMILY}:{self.kind}"


def repetition(text: str) -> dict[str, Any] | None:
    """The shortest unit (1..300 chars) that repeats back-to-back at the very end of the text
    at least 8 times and over 200+ chars; catches `181818...` and looping sentences alike."""
    tail = text[-REPEAT_TAIL_CHARS:].rstrip()
    n = len(tail)
    for p in range(1, min(REPEAT_MAX_UNIT, n // REPEAT_MIN_TIMES) + 1):
        unit = tail[n - p :]
        times = 1
        while (times + 1) * p <= n and tail[n - (times + 1) * p : n - times * p] == unit:
            times += 1
        if times >= REPEAT_MIN_TIMES and times * p >= REPEAT_MIN_COVER and unit.strip():
            return {"unit": unit[:80], "times": times, "chars": times * p}
    return None


def scripts(text: str) -> dict[str, int]:
    """Rough per-script volume in word-ish units (a CJK character counts as half a word)."""
    return {
        "latin": len(_LATIN_WORD.findall(text)),
        "cjk": len(_CJK.findall(text)) // 2,
        "cyrillic": len(_CYRILLIC.findall(text)) // 4,
    }


def mixed_language(
    text: str, min_words: int = 20, min_share: float = 0.05
) -> dict[str, int] | None:
    counts = scripts(text)
    present = {k: v for k, v in counts.items() if v >= min_words}
    total = sum(counts.values())
    if len(present) < 2 or total == 0:
        return None
    minor = sorted(present.values())[-2]
    return counts if minor / total >= min_share else None


def check_format(
    text: str | None,
    reasoning: str | None,
    answer_text: str | None,
    finish_reason: str | None,
    unclosed: bool,
    *,
    expect_think: bool = False,
) -> list[Flag]:
    flags: list[Flag] = []
    text = text or ""
    if unclosed:
        flags.append(Flag("unclosed_think", "a thinking block opened and never closed"))
    elif expect_think and reasoning is None:
        flags.append(Flag("missing_think", "no thinking block"))
    if finish_reason == "length":
        flags.append(Flag("truncated", "finish_reason=length"))
    if not (answer_text or "").strip():
        flags.append(Flag("no_answer", "empty answer part"))
    if (rep := repetition(text)) is not None:
        flags.append(Flag("repetition", f"{rep['times']}x {rep['unit']!r}"))
    if reasoning and (mix := mixed_language(reasoning)) is not None:
        flags.append(Flag("mixed_language", ", ".join(f"{k}={v}" for k, v in mix.items())))
    return flags
