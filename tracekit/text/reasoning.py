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
# ASCII whitespace only, so that the SQL twins of this function (reasoning_sql, answer_sql) strips the same chars
WS = " \t\n\r"


class Split(NamedTuple):
    reasoning: str | None
    answer_text: str
    unclosed: bool  # an opened thinking block that never closed (usually a truncated trace)


def split_reasoning(text: str | None, reasoning_field: str | None = None) -> Split:
    """Return (reasoning, answer_text, unclosed). With no markers the whole text is the answer."""
    text = text or ""
    if reasoning_field:
        return Split(reasoning_field, _strip_answer_markers(text), False)
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


def _nonempty(e: str) -> str:
    return f"({e} IS NOT NULL AND {e} <> '')"


_WS_SQL = "' ' || chr(9) || chr(10) || chr(13)"


def _strip_sql(e: str) -> str:
    """`e.strip(WS)` in SQL. DuckDB's rtrim walks the whole string from the front (seconds per
    0.2 GB of long traces), so trailing whitespace is measured with a regular expression instead."""
    left = f"ltrim({e}, {_WS_SQL})"
    return f"substr({left}, 1, length({left}) - length(regexp_extract({left}, '[ \\t\\n\\r]*$')))"


def reasoning_sql(text: str = "text", reasoning_field: str | None = "reasoning_field") -> str:
    """One SQL expression equal to `split_reasoning(text, field).reasoning`.

    It is the definition of the store's virtual `traces.reasoning` column: the reasoning is read
    out of `text` on demand instead of being written a second time, which would double the bytes
    every import and collect writes."""
    whens = []
    if reasoning_field:
        whens.append(f"WHEN {_nonempty(reasoning_field)} THEN {reasoning_field}")
    for open_tag, close_tag in _MARKERS:
        c, o = f"strpos({text}, {_sql_str(close_tag)})", f"strpos({text}, {_sql_str(open_tag)})"
        start = f"(CASE WHEN {o} > 0 AND {o} < {c} THEN {o} + {len(open_tag)} ELSE 1 END)"
        whens.append(f"WHEN {c} > 0 THEN {_strip_sql(f'substr({text}, {start}, {c} - {start})')}")
        whens.append(f"WHEN {o} > 0 THEN {_strip_sql(f'substr({text}, {o} + {len(open_tag)})')}")
    return f"(CASE {' '.join(whens)} ELSE NULL END)"


def answer_sql(text: str = "text", reasoning_field: str | None = "reasoning_field") -> str:
    """One SQL expression equal to `split_reasoning(text, field).answer_text` (the store's
    virtual `traces.answer_text` column)."""
    whens = []
    if reasoning_field:
        whens.append(f"WHEN {_nonempty(reasoning_field)} THEN coalesce({text}, '')")
    for open_tag, close_tag in _MARKERS:
        c, o = f"strpos({text}, {_sql_str(close_tag)})", f"strpos({text}, {_sql_str(open_tag)})"
        whens.append(f"WHEN {c} > 0 THEN substr({text}, {c} + {len(close_tag)})")
        whens.append(f"WHEN {o} > 0 THEN ''")
    ans = f"(CASE {' '.join(whens)} ELSE coalesce({text}, '') END)"
    (bos, eos) = _ANSWER_MARKERS[0]
    b = f"strpos({ans}, {_sql_str(bos)})"
    after = f"substr({ans}, {b} + {len(bos)})"
    e = f"strpos({after}, {_sql_str(eos)})"
    inner = f"(CASE WHEN {e} > 0 THEN substr({after}, 1, {e} - 1) ELSE {after} END)"
    return _strip_sql(f"(CASE WHEN {b} > 0 THEN {inner} ELSE {ans} END)")
