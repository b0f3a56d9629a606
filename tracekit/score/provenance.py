"""Provenance tracing: which model each sentence of a trace "comes from".

For every sentence s of a trace with its preceding context c (the prompt as the chat user turn
plus the trace text before s), each model M gives log p_M(s) = mean over the tokens of s of
log p_M(token | everything before it); that is what the `logp_*` columns of `sentences` hold, and
p_M = exp(logp_M) is the per-sentence probability compared across models. Because it is a mean
per sentence, teacher and student may use different tokenizers: each tokenises the same text.
A sentence's tokens are the tokens whose first non-space character lies in it, taken from ONE
forward pass over the whole trace per model (so provenance with three models costs about three
scorer passes).

Categories with margin beta (DESIGN.md; T teacher, S original student, D distilled student):
  teacher   p_T - p_S > beta
  student   p_S - p_T > beta
  boosted   |p_T - p_S| <= beta and p_D differs from both p_T and p_S by more than beta
            (only when a distilled model is given)
  shared    everything else (all gaps within beta, or D beyond beta from only one of them)
A sentence any model could not score (its tokens fell off the left of a too-long sequence) gets
NULL logp for that model and a NULL category, counted as `unscored`.

Teacher-guided selection (before training, with T and S only): per trace the scores
`teacher_sentences` (count of teacher sentences) and `teacher_ratio` (that count over the scored
sentences); `teacher_guided_selection` keeps per prompt the trace with the most teacher sentences.
"""

from __future__ import annotations

import bisect
import json
import math
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from tracekit.errors import TracekitError
from tracekit.models import model_revision, parse_spec
from tracekit.progress import progress
from tracekit.score.logprob import LogprobScorer, TokenLogprobs
from tracekit.score.perplexity import check_where, load_traces, pending_trace_ids
from tracekit.score.segment import SEGMENTER_VERSION, Segment, segment
from tracekit.store import RunResult, Store
from tracekit.store.ids import content_id

CATEGORIES = ("teacher", "student", "shared", "boosted")
TEACHER_SENTENCES = "teacher_sentences"
TEACHER_RATIO = "teacher_ratio"
# traces per committed batch: every model scores the batch, then one transaction writes it
CHUNK = 64
# per prompt: most teacher sentences; then the higher teacher ratio (fewer sentences the student
# already owns); then the smaller trace_id (a content hash: arbitrary but stable across runs)
TEACHER_GUIDED_ORDER = "teacher_sentences DESC, teacher_ratio DESC NULLS LAST, trace_id ASC"


class ProvenanceConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    teacher: str = Field(..., description="transformers SPEC of the teacher")
    student: str = Field(..., description="SPEC of the original (undistilled) student")
    distilled: str | None = Field(
        None, description="SPEC of the distilled student (adapter folder ok)"
    )
    beta: float = Field(0.1, ge=0.0, le=1.0, description="margin on sentence probabilities")
    where: str | None = Field(None, description="SQL filter over v_traces")
    batch_size: int = Field(8, ge=1)
    max_length: int | None = Field(None, ge=2)
    device: str | None = None
    overwrite: bool = Field(False, description="recompute traces already traced with these models")
    limit: int | None = Field(None, ge=1)


def categorize(p_t: float, p_s: float, p_d: float | None, beta: float) -> str:
    """The category of one sentence from its probabilities (not log-probs) under T, S and D."""
    if p_t - p_s > beta:
        return "teacher"
    if p_s - p_t > beta:
        return "student"
    if p_d is not None and abs(p_d - p_t) > beta and abs(p_d - p_s) > beta:
        return "boosted"
    return "shared"


def sentence_logprobs(
    text: str, segments: list[Segment], scored: TokenLogprobs
) -> list[float | None]:
    """Mean token log-prob of each segment: a token belongs to the segment holding its first
    non-space character; a segment that owns no token (a tokenizer merged it into a neighbour's
    token) takes the tokens that overlap it."""
    if scored.offsets is None:
        raise TracekitError("provenance needs a fast (offset-mapping) tokenizer for every model")
    starts = [s.start for s in segments]
    n = len(segments)
    owner = np.empty(len(scored.offsets), dtype=np.int64)
    for j, (a, b) in enumerate(scored.offsets):
        k = a
        while k < b and text[k].isspace():
            k += 1
        owner[j] = max(0, bisect.bisect_right(starts, k if k < b else a) - 1)
    lp = scored.logprobs
    ok = np.isfinite(lp)
    sums = np.bincount(owner[ok], weights=lp[ok], minlength=n)
    counts = np.bincount(owner[ok], minlength=n)
    owned = np.bincount(owner, minlength=n)
    result: list[float | None] = []
    for i, seg in enumerate(segments):
        if owned[i] == 0:  # no token starts here: use the tokens overlapping the segment
            sel = (
                np.array([a < seg.end and b > seg.start for a, b in scored.offsets], dtype=bool)
                & ok
            )
            result.append(float(lp[sel].mean()) if sel.any() else None)
        else:
            result.append(float(sums[i] / counts[i]) if counts[i] else None)
    return result


def model_names(cfg: ProvenanceConfig) -> dict[str, str | None]:
    return {
        "teacher": parse_spec(cfg.teacher).name,
        "student": parse_spec(cfg.student).name,
        "distilled": parse_spec(cfg.distilled).name if cfg.distilled else None,
    }


def provenance_key(cfg: ProvenanceConfig) -> str:
    """What makes two provenance results the same: the models (names and revisions), beta and
    the segmenter; a trace already traced under this key is skipped on resume."""
    specs = [cfg.teacher, cfg.student, cfg.distilled]
    return content_id(
        "provenance",
        model_names(cfg),
        [model_revision(s) if s else None for s in specs],
        cfg.beta,
        SEGMENTER_VERSION,
    )


def run_provenance(store: Store, cfg: ProvenanceConfig) -> RunResult:
    check_where(store, cfg.where)
    key = provenance_key(cfg)
    with store.run("provenance", cfg) as run:
        done = None
        params: list[Any] = []
        if not cfg.overwrite:
            done = (
                "SELECT 1 FROM scores s WHERE s.trace_id = v.trace_id AND s.name = ?"
                " AND json_extract_string(s.detail, '$.key') = ?"
            )
            params = [TEACHER_SENTENCES, key]
        ids = pending_trace_ids(store, cfg.where, done, params)
        if cfg.limit:
            ids = ids[: cfg.limit]
        run.details.update(model_names(cfg))
        run.details["key"] = key
        run.add("traces", 0)
        if ids:
            _trace(store, cfg, run, ids, key)
    return run.result


def _load(spec: str, cfg: ProvenanceConfig) -> LogprobScorer:
    return LogprobScorer.load(
        spec, device=cfg.device, batch_size=cfg.batch_size, max_length=cfg.max_length
    )


def _trace(store: Store, cfg: ProvenanceConfig, run: Any, ids: list[str], key: str) -> None:
    # all models stay loaded: each batch is scored by each of them, then committed once
    roles = {"teacher": _load(cfg.teacher, cfg), "student": _load(cfg.student, cfg)}
    if cfg.distilled:
        roles["distilled"] = _load(cfg.distilled, cfg)
    names = model_names(cfg)
    with progress("provenance", len(ids), unit="traces") as bar:
        for i in range(0, len(ids), CHUNK):
            rows = load_traces(store, ids[i : i + CHUNK])
            sentence_rows, score_rows = _trace_batch(rows, roles, cfg, run, key, names)
            done_ids = [r[0] for r in rows]
            with store.transaction():
                store.execute(
                    "DELETE FROM sentences WHERE trace_id IN (SELECT unnest(?::VARCHAR[]))",
                    [done_ids],
                )
                store.execute(
                    "DELETE FROM scores WHERE name IN (?, ?) AND trace_id IN (SELECT unnest(?::VARCHAR[]))",
                    [TEACHER_SENTENCES, TEACHER_RATIO, done_ids],
                )
                store.insert_rows("sentences", sentence_rows)
                store.insert_rows("scores", score_rows)
            run.add("traces", len(rows))
            run.checkpoint()
            bar.advance(len(rows))


def _trace_batch(
    rows: list[tuple[str, str, str]],
    roles: dict[str, LogprobScorer],
    cfg: ProvenanceConfig,
    run: Any,
    key: str,
    names: dict[str, str | None],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    segs = [segment(text) for _, _, text in rows]
    logps: dict[str, list[list[float | None]]] = {}
    for role, scorer in roles.items():
        scored = scorer.score_prompts([r[1] for r in rows], [r[2] for r in rows])
        logps[role] = [
            sentence_logprobs(r[2], s, sc) for r, s, sc in zip(rows, segs, scored, strict=True)
        ]
        run.add(f"truncated_{role}", sum(1 for sc in scored if sc.truncated_tokens))
    sentence_rows: list[dict[str, Any]] = []
    score_rows: list[dict[str, Any]] = []
    for t, (trace_id, _, _) in enumerate(rows):
        counts = dict.fromkeys(CATEGORIES, 0)
        unscored = 0
        for j, seg in enumerate(segs[t]):
            lt, ls = logps["teacher"][t][j], logps["student"][t][j]
            ld = logps["distilled"][t][j] if "distilled" in logps else None
            category = None
            if lt is not None and ls is not None and (ld is not None or "distilled" not in logps):
                category = categorize(
                    math.exp(lt), math.exp(ls), math.exp(ld) if ld is not None else None, cfg.beta
                )
                counts[category] += 1
            else:
                unscored += 1
            sentence_rows.append(
                {
                    "trace_id": trace_id,
                    "idx": seg.idx,
                    "start": seg.start,
                    "end": seg.end,
                    "text": seg.text,
                    "logp_teacher": lt,
                    "logp_student": ls,
                    "logp_distilled": ld,
                    "category": category,
                    "run_id": run.run_id,
                }
            )
        scored_n = sum(counts.values())
        detail = json.dumps(
            {
                "key": key,
                **names,
                "beta": cfg.beta,
                "sentences": len(segs[t]),
                "unscored": unscored,
                "categories": counts,
            }
        )
        score_rows.append(
            {
                "trace_id": trace_id,
                "name": TEACHER_SENTENCES,
                "value": float(counts["teacher"]),
                "detail": detail,
                "run_id": run.run_id,
            }
        )
        score_rows.append(
            {
                "trace_id": trace_id,
                "name": TEACHER_RATIO,
                "value": counts["teacher"] / scored_n if scored_n else None,
                "detail": detail,
                "run_id": run.run_id,
            }
        )
        run.add("sentences", len(segs[t]))
        run.add("unscored", unscored)
        for c, n in counts.items():
            run.add(c, n)
    return sentence_rows, score_rows


def teacher_guided_selection(store: Store, where: str | None = None) -> list[dict[str, Any]]:
    """Per prompt, the trace with the most teacher-originated sentences (ties: TEACHER_GUIDED_ORDER).
    Only traces that provenance has scored take part; `where` filters v_traces first (e.g.
    `correct` to choose among verified positives)."""
    check_where(store, where)
    return store.dicts(
        f"""WITH c AS (
              SELECT v.trace_id, v.prompt_id, s.value AS teacher_sentences, r.value AS teacher_ratio
              FROM (SELECT * FROM v_traces WHERE {f"({where})" if where else "true"}) v
              JOIN scores s ON s.trace_id = v.trace_id AND s.name = '{TEACHER_SENTENCES}'
              LEFT JOIN scores r ON r.trace_id = v.trace_id AND r.name = '{TEACHER_RATIO}')
            SELECT prompt_id, trace_id, teacher_sentences, teacher_ratio FROM c
            QUALIFY row_number() OVER (PARTITION BY prompt_id ORDER BY {TEACHER_GUIDED_ORDER}) = 1
            ORDER BY prompt_id"""
    )
