"""Reasoning behaviours: how often a trace reflects, verifies, connects and talks like a person.

Hu et al. 2025, "Why Distillation can Outperform Zero-RL: The Role of Flexible Reasoning"
(arXiv:2505.21067) find that distilled students outperform zero-RL ones together with far more
anthropomorphic tokens and logical connectors, and with two behaviours, multi-perspective
thinking (trying several approaches) and metacognitive awareness (checking one's own work). The
default marker groups below operationalise those categories with the markers the tracekit issue
names; the word lists are ours, not the paper's, and are configurable.

Scores per trace:
  behavior:<group>    matches per 1,000 words (detail: raw count and word count)
  behavior:attempts   distinct solution attempts, a heuristic: 1 + the number of sentences that
                      OPEN with a switch to a new approach ("Alternatively, ...", "Another
                      approach ...", "Let me try a different ...", "Let me start over ...").
                      A "wait" that re-checks one step is reflection, not a new attempt.

Matching is case-insensitive on whole words; multi-word markers allow any whitespace between
words; within one group the longest marker wins at a position (so "let me check" counts once in
`verification`), while groups are independent ("let me check" also counts in `anthropomorphic`
through "let me"). Text analysed: the reasoning part, or the whole text when the trace has no
thinking block. Words are whitespace-separated tokens.
"""

from __future__ import annotations

import hashlib
import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tracekit.errors import ConfigError, InputError
from tracekit.progress import progress
from tracekit.score.filters_common import (
    batched,
    fetch_traces,
    replace_scores,
    selected_trace_ids,
    trace_parts,
)
from tracekit.store import RunResult, Store

STAGE = "score.behaviors"

DEFAULT_MARKERS: dict[str, list[str]] = {
    # metacognitive awareness: noticing a problem with one's own reasoning
    "reflection": [
        "wait",
        "hmm",
        "alternatively",
        "on second thought",
        "actually",
        "let me reconsider",
        "let me rethink",
        "i made a mistake",
        "that's not right",
        "that doesn't seem right",
    ],
    # metacognitive awareness: explicitly checking a result
    "verification": [
        "verify",
        "let me check",
        "let me verify",
        "double-check",
        "double check",
        "check again",
        "let's check",
        "confirm",
        "sanity check",
        "plug it back",
        "plugging back",
        "substitute back",
    ],
    # logical connectors (Hu et al.: far more frequent after distillation)
    "connectors": ["therefore", "because", "so", "thus", "hence", "since", "but", "however"],
    # anthropomorphic tokens (Hu et al.): the model speaking as a person thinking aloud
    "anthropomorphic": [
        "i think",
        "let me",
        "i need to",
        "i guess",
        "i wonder",
        "i'm not sure",
        "i recall",
        "i remember",
        "maybe",
        "perhaps",
    ],
}

# sentence-initial cues that a new solution attempt starts (multi-perspective thinking)
ATTEMPT_CUES = [
    "alternatively",
    "another approach",
    "another way",
    "another method",
    "a different approach",
    "a better approach",
    "let me try a different",
    "let me try another",
    "let's try a different",
    "let's try another",
    "let me try again",
    "let me start over",
    "let me start again",
    "let me approach this differently",
    "let me think of another",
    "maybe there's another way",
    "maybe there's a better way",
    "let me solve it another way",
]

_BOUND_L = r"(?<![\w'])"
_BOUND_R = r"(?![\w'])"


def _alternation(phrases: list[str]) -> str:
    parts = [r"\s+".join(re.escape(w) for w in p.lower().split()) for p in phrases if p.strip()]
    return "|".join(sorted(parts, key=len, reverse=True))


@lru_cache(maxsize=32)
def _compile(group_json: str) -> dict[str, re.Pattern[str]]:
    groups: dict[str, list[str]] = json.loads(group_json)
    return {
        g: re.compile(_BOUND_L + "(?:" + _alternation(ps) + ")" + _BOUND_R, re.IGNORECASE)
        for g, ps in groups.items()
    }


_ATTEMPT = re.compile(
    r"(?:^|[.!?:]\s+|\n\s*)(?:\*\*)?(?:" + _alternation(ATTEMPT_CUES) + ")" + _BOUND_R,
    re.IGNORECASE,
)


def _clean(text: str) -> str:
    return text.replace("\u2019", "'")


def count_markers(text: str, markers: dict[str, list[str]] | None = None) -> dict[str, int]:
    """Raw marker counts per group (non-overlapping, longest marker first within a group)."""
    pats = _compile(json.dumps(markers or DEFAULT_MARKERS, sort_keys=True))
    t = _clean(text)
    return {g: sum(1 for _ in p.finditer(t)) for g, p in pats.items()}


def count_attempts(text: str) -> int:
    t = _clean(text).strip()
    if not t:
        return 0
    return 1 + sum(1 for _ in _ATTEMPT.finditer(t))


def behavior_scores(
    text: str, markers: dict[str, list[str]] | None = None
) -> dict[str, tuple[float, dict[str, Any]]]:
    """{score name: (value, detail)} for one text: rates per 1,000 words and the attempt count."""
    n_words = len(text.split())
    out: dict[str, tuple[float, dict[str, Any]]] = {}
    for g, c in count_markers(text, markers).items():
        rate = 1000.0 * c / n_words if n_words else 0.0
        out[f"behavior:{g}"] = (rate, {"count": c, "words": n_words})
    out["behavior:attempts"] = (float(count_attempts(text)), {"words": n_words})
    return out


class BehaviorsConfig(BaseModel):
    """`markers`: group -> phrases, replacing the defaults; `markers_file`: the same as a JSON or
    YAML file."""

    model_config = ConfigDict(extra="forbid")

    markers: dict[str, list[str]] | None = None
    markers_file: str | None = None
    where: str | None = None
    batch_size: int = Field(500, ge=1)
    recompute: bool = False

    @field_validator("markers")
    @classmethod
    def _names(cls, v: dict[str, list[str]] | None) -> dict[str, list[str]] | None:
        for g, ps in (v or {}).items():
            if not re.fullmatch(r"[a-z0-9_]+", g) or g == "attempts":
                raise ValueError(
                    f"marker group {g!r}: use lowercase letters, digits, _ (not 'attempts')"
                )
            if not any(p.strip() for p in ps):
                raise ValueError(f"marker group {g!r} has no phrases")
        return v


def resolve_markers(cfg: BehaviorsConfig) -> dict[str, list[str]]:
    if cfg.markers_file:
        path = Path(cfg.markers_file)
        if not path.exists():
            raise InputError("markers file not found", path=path)
        try:
            if path.suffix.lower() in (".yaml", ".yml"):
                import yaml

                data = yaml.safe_load(path.read_text(encoding="utf-8"))
            else:
                data = json.loads(path.read_text(encoding="utf-8"))
        except Exception as e:
            raise InputError(f"cannot parse markers: {e}", path=path) from None
        if not isinstance(data, dict) or not all(
            isinstance(v, list) and all(isinstance(x, str) for x in v) for v in data.values()
        ):
            raise InputError("expected a mapping of group name -> list of phrases", path=path)
        try:
            return BehaviorsConfig(markers=data).markers or {}
        except Exception as e:
            raise InputError(str(e).splitlines()[-1], path=path) from None
    if cfg.markers:
        return cfg.markers
    return DEFAULT_MARKERS


def run_behaviors(store: Store, cfg: BehaviorsConfig) -> RunResult:
    markers = resolve_markers(cfg)
    if not markers:
        raise ConfigError("no marker groups given")
    mhash = hashlib.blake2b(json.dumps(markers, sort_keys=True).encode(), digest_size=6).hexdigest()
    names = [f"behavior:{g}" for g in markers] + ["behavior:attempts"]
    ids = selected_trace_ids(
        store,
        cfg.where,
        done_score=None if cfg.recompute else "behavior:attempts",
        done_detail=("markers", mhash),
    )
    with store.run(STAGE, cfg) as run:
        run.details["markers"] = markers
        with progress("behaviors", len(ids), unit="traces") as bar:
            for batch in batched(ids, cfg.batch_size):
                rows = fetch_traces(store, batch, "t.trace_id, t.text, t.reasoning, t.answer_text")
                out: list[dict[str, Any]] = []
                for tid, text, reasoning, answer in rows:
                    r, _ = trace_parts(text, reasoning, answer)
                    for name, (value, detail) in behavior_scores(r or text or "", markers).items():
                        out.append(
                            {
                                "trace_id": tid,
                                "name": name,
                                "value": value,
                                "detail": {**detail, "markers": mhash},
                            }
                        )
                with store.transaction():
                    replace_scores(store, out, names, run.run_id)
                run.add("traces", len(rows))
                bar.advance(len(rows))
    return run.result
