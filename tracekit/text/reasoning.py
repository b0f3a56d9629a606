"""Splitting a completion into its reasoning and its final answer.

Reasoning models mark their thinking in a few ways: `<think>...</think>` (R1, QwQ, Qwen3),
`<|begin_of_thought|>...<|end_of_thought|>` (Sky-T1, Bespoke) and an API's separate
`reasoning_content` field. The raw text is always kept whole in `traces.text`; these two parts make
verification look at the answer and length/behaviour signals look at the reasoning.
"""

from __future__ import annotations

from typing import NamedTuple

# (open, close, optional answer-section markers that follow the close)
_MARKERS = [
    ("<think>", "</think>"),
    ("<|begin_of_thought|>", "<|end_of_thought|>"),
]
_ANSWER_MARKERS = [("<|begin_of_solution|>", "<|end_of_solution|>")]
# ASCII whitespace only, so that the SQL twin of this function (split_sql) strips the same chars
WS = " \t\n\r"


class Split(NamedTuple):
    reasoning: str | None
    answer_text: str
    unclosed: bool  # an opened thinking block that never closed (usually a truncated trace)


def split_reasoning(text: str | None, reasoning_field: str | None = None) -> Split:
    """Return (reasoning, answer_text, unclosed). With no markers the whole text is the answer."""
    text = text or ""
    if reasoning_field:
        return Split(reasoning_field, text.strip(WS), False)
    for open_tag, close_tag in _MARKERS:
        close = text.find(close_tag)
        if close >= 0:
            open_ = text.find(open_tag)
            # chat templates often pre-fill the opening tag, so a close without an open is normal
            start = open_ + len(open_tag) if 0 <= open_ < close else 0
            reasoning = text[start:close].strip(WS)
            answer = text[close + len(close_tag) :]
            return Split(reasoning, _strip_answer_markers(answer), False)
        open_ = text.find(open_tag)
        if open_ >= 0:
            return Split(text[open_ + len(open_tag) :].strip(WS), "", True)
    return Split(None, text.strip(WS), False)


def _strip_answer_markers(answer: str) -> str:
    for open_tag, close_tag in _ANSWER_MARKERS:
        i = answer.find(open_tag)
        if i >= 0:
            j = answer.find(close_tag, i)
            answer = answer[i + len(open_tag) : j if j >= 0 else None]
    return answer.strip(WS)


def _sql_str(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def split_sql(text: str, reasoning_field: str | None = None) -> tuple[str, str]:
    """SQL expressions (reasoning, answer_text) computing what `split_reasoning` computes, so bulk
    imports split inside DuckDB instead of in a Python loop. Tested against the Python version."""
    ws = "' ' || chr(9) || chr(10) || chr(13)"

    def trim(e: str) -> str:
        return f"trim({e}, {ws})"

    def strip_answer(a: str) -> str:
        (o, c) = _ANSWER_MARKERS[0]
        after = f"substr({a}, strpos({a}, {_sql_str(o)}) + {len(o)})"
        cut = (
            f"CASE WHEN strpos({after}, {_sql_str(c)}) > 0"
            f" THEN substr({after}, 1, strpos({after}, {_sql_str(c)}) - 1) ELSE {after} END"
        )
        return trim(f"CASE WHEN strpos({a}, {_sql_str(o)}) > 0 THEN {cut} ELSE {a} END")

    r_cases, a_cases = [], []
    for open_tag, close_tag in _MARKERS:
        c = f"strpos({text}, {_sql_str(close_tag)})"
        o = f"strpos({text}, {_sql_str(open_tag)})"
        start = f"(CASE WHEN {o} > 0 AND {o} < {c} THEN {o} + {len(open_tag)} ELSE 1 END)"
        r_cases.append((f"{c} > 0", trim(f"substr({text}, {start}, {c} - {start})")))
        a_cases.append((f"{c} > 0", strip_answer(f"substr({text}, {c} + {len(close_tag)})")))
        r_cases.append((f"{o} > 0", trim(f"substr({text}, {o} + {len(open_tag)})")))
        a_cases.append((f"{o} > 0", "''"))
    if reasoning_field:
        r_cases.insert(0, (f"{reasoning_field} IS NOT NULL", reasoning_field))
        a_cases.insert(0, (f"{reasoning_field} IS NOT NULL", trim(f"coalesce({text}, '')")))
    reasoning = "CASE " + " ".join(f"WHEN {w} THEN {e}" for w, e in r_cases) + " ELSE NULL END"
    answer = "CASE " + " ".join(f"WHEN {w} THEN {e}" for w, e in a_cases)
    empty = "''"
    answer += " ELSE " + trim(f"coalesce({text}, {empty})") + " END"
    return reasoning, answer
