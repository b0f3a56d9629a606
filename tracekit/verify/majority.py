"""Majority-vote pseudo-reference for prompts without a reference answer.

All traces of a prompt vote with their extracted final answer; answers are grouped by
math-verify equivalence (not string equality), and the largest group wins when it holds at least
`min_share` of the votes from at least `min_votes` answers. Each trace is then judged against the
winner. The result is a PSEUDO label: the majority of a weak teacher can be wrong together, so
every verdict carries `"pseudo_reference": true`, the winning answer and its vote share, under
its own verifier name `majority`, which ranks below real verifiers in v_final_verdicts.
"""

from __future__ import annotations

from typing import Any

from math_verify import verify

from tracekit.verify.base import Outcome
from tracekit.verify.math import _parse_pred, _shown, extract_predictions

NAME = "majority"
VERSION = "majority-1"


def _answer(text: str | None) -> tuple[list[Any], str] | None:
    for pred in extract_predictions(text or ""):
        parsed = _parse_pred(pred)
        if parsed:
            return parsed, _shown(parsed, pred.text)
    return None


def _same(a: list[Any], b: list[Any]) -> bool:
    return bool(verify(a, b, timeout_seconds=None)) or bool(verify(b, a, timeout_seconds=None))


def vote(
    answers: list[tuple[str, str | None]], min_share: float = 0.5, min_votes: int = 2
) -> dict[str, Outcome]:
    """answers: (trace_id, answer part) of ONE prompt -> an Outcome per trace id."""
    parsed: dict[str, tuple[list[Any], str] | None] = {tid: _answer(a) for tid, a in answers}
    groups: list[tuple[list[Any], str, list[str]]] = []  # representative, shown, members
    for tid, p in parsed.items():
        if p is None:
            continue
        for rep, _shown_rep, members in groups:
            if _same(rep, p[0]):
                members.append(tid)
                break
        else:
            groups.append((p[0], p[1], [tid]))
    n_votes = sum(len(g[2]) for g in groups)
    base = {"pseudo_reference": True, "n_samples": len(answers), "n_votes": n_votes}
    if not groups:
        return {
            tid: Outcome("no_reference", None, None, {**base, "reason": "no answers to vote"})
            for tid, _ in answers
        }
    groups.sort(key=lambda g: -len(g[2]))
    winner = groups[0]
    share = len(winner[2]) / n_votes
    tie = len(groups) > 1 and len(groups[1][2]) == len(winner[2])
    base.update({"reference": winner[1], "votes": len(winner[2]), "vote_share": round(share, 4)})
    if n_votes < min_votes or share < min_share or tie:
        reason = "tie" if tie else f"no majority (share {share:.2f}, {n_votes} votes)"
        return {
            tid: Outcome(
                "no_reference",
                None,
                parsed[tid][1] if parsed[tid] else None,
                {**base, "reason": reason},
            )
            for tid, _ in answers
        }
    members = set(winner[2])
    out: dict[str, Outcome] = {}
    for tid, _ in answers:
        p = parsed[tid]
        if p is None:
            out[tid] = Outcome("no_answer", False, None, base)
        else:
            out[tid] = Outcome("ok", tid in members, p[1][:500], base)
    return out


def handle(payload: dict[str, Any]) -> dict[str, Outcome]:
    return vote(
        [tuple(x) for x in payload["answers"]],
        float(payload.get("min_share", 0.5)),
        int(payload.get("min_votes", 2)),
    )
