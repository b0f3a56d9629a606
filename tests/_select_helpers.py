"""A small synthetic store for the select/publish tests: each case names its traces so the
expected selection can be read off the fixture."""

from __future__ import annotations

from typing import Any

from tracekit.store import Store
from tracekit.store.ids import flag_id, prompt_id
from tracekit.text.reasoning import split_reasoning


def add_prompt(store: Store, problem: str, source: str = "unit", answer: str = "4") -> str:
    pid = prompt_id(problem)
    store.insert_rows(
        "prompts",
        [
            {
                "prompt_id": pid,
                "source": source,
                "problem": problem,
                "reference_answer": answer,
                "domain": "math",
            }
        ],
    )
    return pid


def add_trace(
    store: Store,
    pid: str,
    tid: str,
    correct: bool | None,
    *,
    text: str | None = None,
    reasoning: str | None = None,
    answer: str | None = None,
    teacher: str = "teacher-a",
    sample_index: int = 0,
    finish_reason: str = "stop",
    verifier: str = "math",
    scores: dict[str, float] | None = None,
    flags: list[str] | None = None,
) -> str:
    text = text if text is not None else f"trace {tid}"
    # reasoning / answer_text are read out of text; a reasoning given apart from it is stored
    field = reasoning if split_reasoning(text).reasoning != reasoning else None
    if answer is not None and split_reasoning(text, field).answer_text != answer:
        raise ValueError(f"answer {answer!r} is not what the store reads out of text {text!r}")
    store.insert_rows(
        "traces",
        [
            {
                "trace_id": tid,
                "prompt_id": pid,
                "teacher": teacher,
                "sample_index": sample_index,
                "text": text,
                "reasoning_field": field,
                "finish_reason": finish_reason,
                "origin": "generated",
                "sampling": '{"temperature": 0.6, "top_p": 0.95}',
            }
        ],
    )
    if correct is not None:
        store.insert_rows(
            "verdicts",
            [
                {
                    "trace_id": tid,
                    "verifier": verifier,
                    "verifier_version": "1",
                    "correct": correct,
                    "status": "ok",
                }
            ],
        )
    for name, value in (scores or {}).items():
        store.insert_rows("scores", [{"trace_id": tid, "name": name, "value": value}])
    for flag in flags or []:
        add_flag(store, pid, tid, flag)
    return tid


def add_flag(store: Store, pid: str, tid: str | None, flag: str) -> None:
    store.insert_rows(
        "flags",
        [
            {
                "flag_id": flag_id(pid, tid, flag),
                "prompt_id": pid,
                "trace_id": tid,
                "flag": flag,
                "detail": "{}",
            }
        ],
    )


def basic_store(store: Store, n_prompts: int = 6) -> dict[str, Any]:
    """n prompts, each with 2 correct (short/long, two teachers) and 2 incorrect traces."""
    ids: dict[str, Any] = {}
    for i in range(n_prompts):
        pid = add_prompt(store, f"What is {i} + 4?")
        ids[i] = {
            "pid": pid,
            "pos_short": add_trace(
                store, pid, f"p{i}s", True, text="x" * (10 + i), teacher="teacher-a", sample_index=1
            ),
            "pos_long": add_trace(
                store,
                pid,
                f"p{i}l",
                True,
                text="y" * (200 + i),
                teacher="teacher-b",
                sample_index=0,
            ),
            "neg_a": add_trace(
                store,
                pid,
                f"n{i}a",
                False,
                text="z" * (50 + i),
                teacher="teacher-a",
                sample_index=2,
            ),
            "neg_b": add_trace(
                store,
                pid,
                f"n{i}b",
                False,
                text="w" * (300 + i),
                teacher="teacher-b",
                sample_index=3,
            ),
        }
    return ids
