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


def split_select(source: str, text: str = "text", reasoning_field: str | None = None) -> str:
    """A SELECT over `source` that adds `reasoning` and `answer_text` columns computed as
    `split_reasoning` computes them, so bulk imports split inside DuckDB instead of in a Python
    loop. Marker positions are computed once per row (nested selects), since each `strpos` scans
    a long text. Tested against the Python version."""
    ws = "' ' || chr(9) || chr(10) || chr(13)"
    rf = reasoning_field or "NULL"

    def trim(e: str) -> str:
        return f"trim({e}, {ws})"

    pos = []
    for k, (open_tag, close_tag) in enumerate(_MARKERS):
        pos.append(f"strpos({text}, {_sql_str(close_tag)}) AS _c{k}")
        pos.append(f"strpos({text}, {_sql_str(open_tag)}) AS _o{k}")
    r_cases, a_cases = (
        [f"WHEN {rf} IS NOT NULL THEN {rf}"],
        [f"WHEN {rf} IS NOT NULL THEN coalesce({text}, '')"],
    )
    for k, (open_tag, close_tag) in enumerate(_MARKERS):
        start = f"(CASE WHEN _o{k} > 0 AND _o{k} < _c{k} THEN _o{k} + {len(open_tag)} ELSE 1 END)"
        r_cases.append(f"WHEN _c{k} > 0 THEN substr({text}, {start}, _c{k} - {start})")
        a_cases.append(f"WHEN _c{k} > 0 THEN substr({text}, _c{k} + {len(close_tag)})")
        r_cases.append(f"WHEN _o{k} > 0 THEN substr({text}, _o{k} + {len(open_tag)})")
        a_cases.append(f"WHEN _o{k} > 0 THEN ''")
    a_cases.append("ELSE coalesce(" + text + ", '')")
    (bos, eos) = _ANSWER_MARKERS[0]
    level1 = f"SELECT *, {', '.join(pos)} FROM {source}"
    level2 = (
        f"SELECT *, {trim('CASE ' + ' '.join(r_cases) + ' ELSE NULL END')} AS _reasoning,"
        f" CASE {' '.join(a_cases)} END AS _ans FROM ({level1})"
    )
    after = f"substr(_ans, _b + {len(bos)})"
    level3 = (
        f"SELECT *, CASE WHEN _b > 0 THEN (CASE WHEN strpos({after}, {_sql_str(eos)}) > 0"
        f" THEN substr({after}, 1, strpos({after}, {_sql_str(eos)}) - 1) ELSE {after} END)"
        f" ELSE _ans END AS _ans2 FROM (SELECT *, strpos(_ans, {_sql_str(bos)}) AS _b FROM ({level2}))"
    )
    return (
        f"SELECT * EXCLUDE (_c0, _o0, _c1, _o1, _reasoning, _ans, _b, _ans2),"
        f" _reasoning AS reasoning, {trim('_ans2')} AS answer_text FROM ({level3})"
    )
