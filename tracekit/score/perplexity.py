"""`score perplexity`: how surprising each trace is to a model (e.g. the student to be trained).

High-perplexity traces are the hard ones to learn; a student-side perplexity also pairs traces
for "hardest" selections. Each trace is scored in its generation context (prompt as the user
turn of the chat template) and stored as two scores, `nll:<model>` (mean token negative log-
likelihood, nats) and `ppl:<model>` = exp(nll), where <model> is the model SPEC's recorded name
(`default:HuggingFaceTB/SmolLM2-135M-Instruct` for the embedded model, else the SPEC as given).
"""

from __future__ import annotations

import json
from typing import Any

import duckdb
from pydantic import BaseModel, ConfigDict, Field

from tracekit.errors import ConfigError
from tracekit.models import model_revision, parse_spec
from tracekit.progress import progress
from tracekit.score.logprob import LogprobScorer, perplexity
from tracekit.store import RunResult, Store

# traces read, sorted and committed together: big enough that length sorting pays off, small
# enough that a killed run loses little
CHUNK = 256


class PerplexityConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = Field(
        "default", description="transformers SPEC: default, hf:PATH_OR_ID, adapter folder"
    )
    where: str | None = Field(None, description="SQL filter over v_traces")
    batch_size: int = Field(8, ge=1)
    max_length: int | None = Field(None, ge=2, description="tokens; default: the model's limit")
    device: str | None = None
    overwrite: bool = Field(False, description="re-score traces that already have the score")
    limit: int | None = Field(None, ge=1, description="score at most this many traces")


def score_names(spec: str) -> tuple[str, str]:
    """(`ppl:<model>`, `nll:<model>`): the contract other stages (select `hardest`) read."""
    name = parse_spec(spec).name
    return f"ppl:{name}", f"nll:{name}"


def check_where(store: Store, where: str | None) -> None:
    """Fail before any model loads, naming the user's expression."""
    if not where:
        return
    try:
        store.fetchall(f"SELECT count(*) FROM (SELECT * FROM v_traces WHERE ({where}) LIMIT 0)")
    except duckdb.Error as e:
        raise ConfigError(
            f"--where {where!r} is not a valid filter over v_traces: {str(e).splitlines()[0]}"
        ) from None


def pending_trace_ids(
    store: Store, where: str | None, done_sql: str | None, params: list[Any]
) -> list[str]:
    """Ids of traces matching `where` for which `done_sql` (a NOT EXISTS body over trace t) finds
    nothing: the resume rule of both model stages."""
    check_where(store, where)
    q = "SELECT v.trace_id FROM v_traces v WHERE " + (f"({where})" if where else "true")
    if done_sql:
        q += f" AND NOT EXISTS ({done_sql})"
    return [r[0] for r in store.fetchall(q + " ORDER BY v.trace_id", params)]


def load_traces(store: Store, ids: list[str]) -> list[tuple[str, str, str]]:
    """(trace_id, problem, text) of the given traces, in the given order."""
    if not ids:
        return []
    rows = store.fetchall(
        "SELECT t.trace_id, p.problem, coalesce(t.text, '') FROM traces t JOIN prompts p USING (prompt_id)"
        " WHERE t.trace_id IN (SELECT unnest(?::VARCHAR[]))",
        [ids],
    )
    by_id = {r[0]: r for r in rows}
    return [by_id[i] for i in ids if i in by_id]


def run_perplexity(store: Store, cfg: PerplexityConfig) -> RunResult:
    ppl_name, nll_name = score_names(cfg.model)
    check_where(store, cfg.where)  # before the runs row: a typo leaves the store as it was
    with store.run("score.perplexity", cfg) as run:
        done = (
            None
            if cfg.overwrite
            else "SELECT 1 FROM scores s WHERE s.trace_id = v.trace_id AND s.name = ?"
        )
        ids = pending_trace_ids(store, cfg.where, done, [] if cfg.overwrite else [nll_name])
        if cfg.limit:
            ids = ids[: cfg.limit]
        run.details["model"] = ppl_name[4:]
        run.add("scored", 0)
        if ids:
            _score(store, cfg, run, ids, ppl_name, nll_name)
    return run.result


def _score(
    store: Store, cfg: PerplexityConfig, run: Any, ids: list[str], ppl_name: str, nll_name: str
) -> None:
    scorer = LogprobScorer.load(
        cfg.model, device=cfg.device, batch_size=cfg.batch_size, max_length=cfg.max_length
    )
    revision = model_revision(cfg.model)
    run.details["max_length"] = scorer.max_length
    with progress(f"perplexity {ppl_name[4:]}", len(ids), unit="traces") as bar:
        for i in range(0, len(ids), CHUNK):
            rows = load_traces(store, ids[i : i + CHUNK])
            scorable = [r for r in rows if r[2].strip()]
            run.add("empty", len(rows) - len(scorable))
            bar.advance(len(rows) - len(scorable))
            results = scorer.score_prompts(
                [r[1] for r in scorable], [r[2] for r in scorable], on_batch=bar.advance
            )
            out: list[dict[str, Any]] = []
            for (trace_id, _, _), res in zip(scorable, results, strict=True):
                nll_mean = res.mean_logprob()
                if nll_mean is None:
                    run.add("unscorable")
                    continue
                nll = -nll_mean
                detail = json.dumps(
                    {
                        "tokens": res.n_tokens,
                        "scored_tokens": res.n_scored,
                        "context_tokens": res.context_tokens,
                        "truncated_tokens": res.truncated_tokens,
                        "revision": revision,
                    }
                )
                for name, value in ((nll_name, nll), (ppl_name, perplexity(nll))):
                    out.append(
                        {
                            "trace_id": trace_id,
                            "name": name,
                            "value": value,
                            "detail": detail,
                            "run_id": run.run_id,
                        }
                    )
                run.add("truncated", int(res.truncated_tokens > 0))
            with store.transaction():
                if cfg.overwrite and out:
                    store.execute(
                        "DELETE FROM scores WHERE name IN (?, ?) AND trace_id IN (SELECT unnest(?::VARCHAR[]))",
                        [ppl_name, nll_name, [r["trace_id"] for r in out]],
                    )
                store.insert_rows("scores", out)
            run.add("scored", len(out) // 2)
            run.checkpoint()
