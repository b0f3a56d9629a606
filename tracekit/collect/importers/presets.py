"""Named column maps for well-known trace and problem datasets.

A preset is a column map plus, where the layout needs it, a record transform. User `--map`
entries override the preset's.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tracekit.collect.importers.mapping import _MISSING, FieldError, get_path


@dataclass
class Preset:
    name: str
    description: str
    column_map: dict[str, str]
    transform: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    source: str | None = None
    teacher: str | None = None
    defaults: dict[str, Any] = field(default_factory=dict)


def gsm8k_final_answer(solution: str) -> str:
    """GSM8K puts the final answer after `####` (references) or `A:` (model solutions)."""
    if "####" in solution:
        return solution.rsplit("####", 1)[1].strip()
    m = re.search(r"A:\s*(.+?)\s*$", solution.strip())
    return m.group(1).strip() if m else solution.strip()


def _gsm8k(rec: dict[str, Any]) -> dict[str, Any]:
    out = dict(rec)
    if isinstance(rec.get("answer"), str):
        out["_reference"] = gsm8k_final_answer(rec["answer"])
        out["_solution"] = rec["answer"]
    return out


_GSM8K_SOLUTION_COLUMNS = [
    "6b_finetuning",
    "6b_verification",
    "175b_finetuning",
    "175b_verification",
]


def _gsm8k_solutions(rec: dict[str, Any]) -> dict[str, Any]:
    """openai/grade-school-math example_model_solutions: one trace per model column."""
    out = {"question": rec.get("question"), "_completions": [], "_labels": [], "_teachers": []}
    gt = rec.get("ground_truth")
    if isinstance(gt, str):
        out["_reference"] = gsm8k_final_answer(gt)
    for col in _GSM8K_SOLUTION_COLUMNS:
        if col not in rec:
            continue
        sol = get_path(rec, f"{col}.solution")
        ok = get_path(rec, f"{col}.is_correct")
        if sol is _MISSING or ok is _MISSING:
            raise FieldError(col, "expected {'is_correct': ..., 'solution': ...}")
        out["_completions"].append(sol)
        out["_labels"].append(ok)
        out["_teachers"].append(f"gpt3-{col}")
    return out


def _sharegpt(rec: dict[str, Any]) -> dict[str, Any]:
    """conversations/messages with from|role and value|content; reasoning from a
    reasoning_content/reasoning key or a think block inside the assistant turn."""
    turns = rec.get("conversations", rec.get("messages"))
    if not isinstance(turns, list):
        raise FieldError("conversations", "expected a list of turns")
    user = assistant = None
    for t in turns:
        if not isinstance(t, dict):
            raise FieldError("conversations", "expected each turn to be an object")
        role = str(t.get("from", t.get("role", ""))).lower()
        if role in ("human", "user") and user is None:
            user = t
        elif role in ("gpt", "assistant", "model") and user is not None and assistant is None:
            assistant = t
    if user is None:
        raise FieldError("conversations", "no user/human turn")
    out = {k: v for k, v in rec.items() if k not in ("conversations", "messages")}
    out["_problem"] = user.get("value", user.get("content"))
    out["_completion"] = None  # a conversation without an answer imports as a prompt only
    if assistant is not None:
        out["_completion"] = assistant.get("value", assistant.get("content"))
        r = assistant.get("reasoning_content", assistant.get("reasoning"))
        if r is not None:
            out["_reasoning"] = r
    return out


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in [
        Preset(
            "openr1",
            "OpenR1-Math-220k / OpenR1-Math-Raw: problem, answer, generations[], "
            "correctness_math_verify[], finish_reasons[]",
            {
                "problem": "problem",
                "reference": "answer",
                "completion": "generations",
                "label": "correctness_math_verify",
                "finish_reason": "finish_reasons",
                "id": "uuid",
            },
            source="open-r1/OpenR1-Math-220k",
            teacher="deepseek-ai/DeepSeek-R1",
        ),
        Preset(
            "gsm8k",
            "GSM8K (openai/grade-school-math): question, answer with the final answer after ####",
            {"problem": "question", "reference": "_reference"},
            transform=_gsm8k,
            source="gsm8k",
        ),
        Preset(
            "gsm8k-solutions",
            "GSM8K example_model_solutions: four labelled GPT-3 solutions per problem",
            {
                "problem": "question",
                "reference": "_reference",
                "completion": "_completions",
                "label": "_labels",
                "teacher": "_teachers",
            },
            transform=_gsm8k_solutions,
            source="gsm8k-model-solutions",
        ),
        Preset(
            "math",
            "MATH / MATH-500: problem, solution, answer, subject, level, unique_id",
            {"problem": "problem", "reference": "answer", "id": "unique_id"},
            source="math",
        ),
        Preset(
            "sharegpt",
            "ShareGPT-style conversations (from/value or role/content) with a reasoning turn",
            {"problem": "_problem", "completion": "_completion", "reasoning": "_reasoning"},
            transform=_sharegpt,
            source="sharegpt",
        ),
    ]
}
