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


class Split(NamedTuple):
    reasoning: str | None
    answer_text: str
    unclosed: bool  # an opened thinking block that never closed (usually a truncated trace)


def split_reasoning(text: str | None, reasoning_field: str | None = None) -> Split:
    """Return (reasoning, answer_text, unclosed). With no markers the whole text is the answer."""
    text = text or ""
    if reasoning_field:
        return Split(reasoning_field, text.strip(), False)
    for open_tag, close_tag in _MARKERS:
        close = text.find(close_tag)
        if close >= 0:
            open_ = text.rfind(open_tag, 0, close)
            start = open_ + len(open_tag) if open_ >= 0 else 0  # templates often pre-fill <think>
            reasoning = text[start:close].strip()
            answer = text[close + len(close_tag) :]
            return Split(reasoning, _strip_answer_markers(answer), False)
        open_ = text.find(open_tag)
        if open_ >= 0:
            return Split(text[open_ + len(open_tag) :].strip(), "", True)
    return Split(None, text.strip(), False)


def _strip_answer_markers(answer: str) -> str:
    for open_tag, close_tag in _ANSWER_MARKERS:
        i = answer.find(open_tag)
        if i >= 0:
            j = answer.find(close_tag, i)
            answer = answer[i + len(open_tag) : j if j >= 0 else None]
    return answer.strip()
