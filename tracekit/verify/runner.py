"""The verify stage: every selected trace without a verdict from a verifier gets one.

Reads work by SQL (traces lacking a `verdicts` row for that verifier, filtered by `--where` over
v_traces), sorts it by prompt (a prompt's traces land in one chunk, where the parsed gold is
cached), sends it through the killable worker pool, and commits verdicts and format flags in
batches, one transaction each. Idempotent and resumable: a re-run skips what committed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tracekit.errors import ConfigError
from tracekit.progress import progress
from tracekit.store import RunResult, Store
from tracekit.store.ids import flag_id
from tracekit.text.reasoning import split_reasoning
from tracekit.verify import code as code_v
from tracekit.verify import dispatch
from tracekit.verify.base import Outcome
from tracekit.verify.format import Flag
from tracekit.verify.pool import Failure, Task, WorkerPool

VERIFIER_NAMES = ("auto", "math", "code", "exact", "choice", "regex", "majority")

_HAS_TESTS = "(p.meta IS NOT NULL AND json_extract(p.meta, '$.tests') IS NOT NULL)"
_HAS_REF = "(p.reference_answer IS NOT NULL AND trim(p.reference_answer) <> '')"
_MATHY = "(p.domain IS NULL OR p.domain = 'math')"

# which traces each verifier takes when it is named explicitly, and under `auto`
_EXPLICIT = {
    "math": "true",
    "code": "true",
    "exact": "true",
    "choice": "true",
    "regex": "true",
    "majority": f"NOT {_HAS_REF} AND NOT {_HAS_TESTS}",
}
_AUTO = {
    "code": _HAS_TESTS,
    "math": f"NOT {_HAS_TESTS} AND {_MATHY}",
}


class VerifyConfig(BaseModel):
    """Which verifiers to run over which traces, and the limits that keep a run from hanging."""

    model_config = ConfigDict(extra="forbid")

    verifiers: list[str] = Field(
        default_factory=lambda: ["auto"],
        description="auto (math for math prompts, code where tests exist), or names among "
        "math, code, exact, choice, regex, majority",
    )
    where: str | None = Field(None, description="SQL filter over v_traces columns")
    workers: int = Field(2, ge=1, le=256, description="worker processes")
    timeout: float = Field(10.0, gt=0, description="seconds per item before it is a timeout")
    code_timeout: float = Field(5.0, gt=0, description="wall-clock seconds per code test case")
    code_memory_mb: int = Field(512, ge=32, description="address-space limit of a code run")
    pseudo_reference: Literal["none", "majority"] = Field(
        "none", description="majority: vote a pseudo-reference for prompts without one"
    )
    majority_min_share: float = Field(0.5, gt=0, le=1)
    majority_min_votes: int = Field(2, ge=1)
    regex: str | None = Field(None, description="pattern for the regex verifier (group 1)")
    format_checks: bool = Field(True, description="also write format:<kind> flags")
    expect_think: bool = Field(False, description="flag traces without a thinking block")
    batch_size: int = Field(2000, ge=1, description="verdicts per transaction")
    chunk_size: int = Field(32, ge=1, description="items per message to a worker")
    limit: int | None = Field(None, ge=1, description="at most this many traces per verifier")

    @field_validator("verifiers")
    @classmethod
    def _known(cls, v: list[str]) -> list[str]:
        unknown = [x for x in v if x not in VERIFIER_NAMES]
        if unknown:
            raise ValueError(f"unknown verifier(s) {unknown}; known: {list(VERIFIER_NAMES)}")
        if not v:
            raise ValueError("name at least one verifier")
        return list(dict.fromkeys(v))

    def plan(self) -> list[tuple[str, str]]:
        """(verifier, SQL condition over t/p) in the order they run."""
        out: list[tuple[str, str]] = []
        for name in self.verifiers:
            if name == "auto":
                out.extend(_AUTO.items())
            else:
                out.append((name, _EXPLICIT[name]))
        if self.pseudo_reference == "majority" and not any(n == "majority" for n, _ in out):
            out.append(("majority", _EXPLICIT["majority"] + f" AND {_MATHY}"))
        seen: dict[str, str] = {}
        for name, cond in out:
            seen[name] = f"({seen[name]}) OR ({cond})" if name in seen else cond
        return list(seen.items())


_PAYLOAD_SQL = """
SELECT t.trace_id, t.prompt_id, p.reference_answer, p.meta, t.answer_text,
       CASE WHEN t.answer_text IS NULL THEN t.text END AS full_text,
       right(t.text, 3000) AS text_tail,
       CASE WHEN length(t.reasoning) > 40000 THEN left(t.reasoning, 20000) || right(t.reasoning, 20000)
            ELSE t.reasoning END AS reasoning,
       t.finish_reason,
       (strpos(t.text, '<think>') > 0 AND strpos(t.text, '</think>') = 0)
         OR (strpos(t.text, '<|begin_of_thought|>') > 0 AND strpos(t.text, '<|end_of_thought|>') = 0)
         AS unclosed
FROM traces t JOIN prompts p USING (prompt_id)
WHERE t.trace_id IN (SELECT unnest(?::VARCHAR[]))
ORDER BY t.prompt_id, t.trace_id
"""


def _where_clause(where: str | None) -> str:
    if not where:
        return ""
    return f" AND t.trace_id IN (SELECT trace_id FROM v_traces WHERE {where})"


def _todo(store: Store, verifier: str, cond: str, cfg: VerifyConfig) -> list[tuple[str, str]]:
    sql = (
        "SELECT t.trace_id, t.prompt_id FROM traces t JOIN prompts p USING (prompt_id)"
        f" WHERE ({cond})"
        " AND NOT EXISTS (SELECT 1 FROM verdicts v WHERE v.trace_id = t.trace_id AND v.verifier = ?)"
        + _where_clause(cfg.where)
        + " ORDER BY t.prompt_id, t.trace_id"
        + (f" LIMIT {int(cfg.limit)}" if cfg.limit else "")
    )
    try:
        return store.fetchall(sql, [verifier])
    except Exception as e:  # a bad --where is a user error, not a bug
        if cfg.where and "v_traces" in sql:
            raise ConfigError(
                f"--where {cfg.where!r} is not a valid filter over v_traces: {e}"
            ) from None
        raise


class _Writer:
    """Buffers verdict and flag rows; one transaction per batch."""

    def __init__(self, store: Store, run: Any, batch_size: int) -> None:
        self.store, self.run, self.batch_size = store, run, batch_size
        self.verdicts: list[dict[str, Any]] = []
        self.flags: list[dict[str, Any]] = []

    def add(
        self, trace_id: str, prompt_id: str, verifier: str, o: Outcome, flags: list[Flag]
    ) -> None:
        self.verdicts.append(
            {
                "trace_id": trace_id,
                "verifier": verifier,
                "verifier_version": dispatch.VERSIONS[verifier],
                "correct": o.correct,
                "extracted": o.extracted,
                "status": o.status,
                "detail": json.dumps(o.detail, default=str, ensure_ascii=False),
                "run_id": self.run.run_id,
            }
        )
        self.run.add(f"{verifier}:{o.status}")
        if o.correct is True:
            self.run.add(f"{verifier}:correct")
        for f in flags:
            self.flags.append(
                {
                    "flag_id": flag_id(prompt_id, trace_id, f.name),
                    "prompt_id": prompt_id,
                    "trace_id": trace_id,
                    "flag": f.name,
                    "detail": f.detail,
                    "run_id": self.run.run_id,
                }
            )
        if len(self.verdicts) >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        if not self.verdicts and not self.flags:
            return
        with self.store.transaction():
            added = self.store.insert_rows("verdicts", self.verdicts)
            flagged = self.store.insert_rows("flags", self.flags)
        self.run.add("verdicts_added", added)
        self.run.add("flags_added", flagged)
        self.verdicts, self.flags = [], []
        self.run.checkpoint()


def _failure_outcome(f: Failure) -> Outcome:
    status = "timeout" if f.kind == "timeout" else "error"
    return Outcome(
        status, None, None, {"reason": f.message, "seconds": round(f.seconds, 3), "failure": f.kind}
    )


def _tasks(
    store: Store, verifier: str, todo: list[tuple[str, str]], cfg: VerifyConfig, formatted: set[str]
) -> Iterator[Task]:
    limits = code_v.Limits(timeout_s=cfg.code_timeout, memory_mb=cfg.code_memory_mb)
    ids = [tid for tid, _ in todo]
    step = 1000
    for i in range(0, len(ids), step):
        rows = store.dicts(_PAYLOAD_SQL, [ids[i : i + step]])
        for r in rows:
            answer = r["answer_text"]
            if answer is None:
                answer = split_reasoning(r["full_text"]).answer_text
            payload: dict[str, Any] = {
                "v": verifier,
                "reference": r["reference_answer"],
                "answer": answer,
            }
            deadline = cfg.timeout
            if verifier == "code":
                payload["meta"] = r["meta"]
                payload["limits"] = {"timeout_s": limits.timeout_s, "memory_mb": limits.memory_mb}
                deadline = max(
                    cfg.timeout, code_v.deadline_s(code_v.parse_tests(r["meta"]), limits)
                )
            elif verifier == "regex":
                payload["pattern"] = cfg.regex or _meta_get(r["meta"], "answer_regex")
            if cfg.format_checks and r["trace_id"] not in formatted:
                formatted.add(r["trace_id"])
                payload["format"] = {
                    "text": r["text_tail"],
                    "reasoning": r["reasoning"],
                    "finish_reason": r["finish_reason"],
                    "unclosed": bool(r["unclosed"]),
                    "expect_think": cfg.expect_think,
                }
            yield Task((r["trace_id"], r["prompt_id"]), payload, deadline)


def _meta_get(meta: Any, key: str) -> Any:
    if isinstance(meta, str):
        try:
            meta = json.loads(meta)
        except json.JSONDecodeError:
            return None
    return meta.get(key) if isinstance(meta, dict) else None


def _majority_tasks(store: Store, todo: list[tuple[str, str]], cfg: VerifyConfig) -> Iterator[Task]:
    """One task per prompt; every selected trace of the prompt votes, also those that already
    have a majority verdict (the vote must not depend on how the work was resumed)."""
    prompts = list(dict.fromkeys(pid for _, pid in todo))
    for pid in prompts:
        rows = store.fetchall(
            "SELECT t.trace_id, coalesce(t.answer_text, t.text) FROM traces t"
            " JOIN prompts p USING (prompt_id) WHERE t.prompt_id = ?"
            + _where_clause(cfg.where)
            + " ORDER BY t.trace_id",
            [pid],
        )
        payload = {
            "v": "majority",
            "answers": [list(r) for r in rows],
            "min_share": cfg.majority_min_share,
            "min_votes": cfg.majority_min_votes,
        }
        yield Task(("majority", pid), payload, cfg.timeout * (1 + len(rows) / 8))


def run_verify(store: Store, cfg: VerifyConfig) -> RunResult:
    """Run the configured verifiers; returns counts such as `math:ok`, `math:correct`,
    `math:timeout`, `verdicts_added`, `flags_added`."""
    plan = cfg.plan()
    with store.run("verify", cfg) as run:
        work = [(name, _todo(store, name, cond, cfg)) for name, cond in plan]
        total = sum(len(t) for _, t in work)
        run.details["todo"] = {name: len(t) for name, t in work}
        writer = _Writer(store, run, cfg.batch_size)
        formatted: set[str] = set()
        if total:
            with (
                WorkerPool(dispatch.handle, workers=cfg.workers, chunk_size=cfg.chunk_size) as pool,
                progress("verify", total, unit="traces") as bar,
            ):
                for name, todo in work:
                    if not todo:
                        continue
                    if name == "majority":
                        _run_majority(pool, store, todo, cfg, writer, bar)
                        continue
                    for task, res in pool.map(_tasks(store, name, todo, cfg, formatted)):
                        trace_id, prompt_id = task.key
                        if isinstance(res, Failure):
                            writer.add(trace_id, prompt_id, name, _failure_outcome(res), [])
                        else:
                            outcome, flags = res
                            writer.add(trace_id, prompt_id, name, outcome, flags)
                        bar.advance()
                run.add("workers_killed", pool.killed)
                run.add("workers_crashed", pool.crashed)
        writer.flush()
    return run.result


def _run_majority(
    pool: WorkerPool,
    store: Store,
    todo: list[tuple[str, str]],
    cfg: VerifyConfig,
    writer: _Writer,
    bar: Any,
) -> None:
    wanted = {tid for tid, _ in todo}
    for task, res in pool.map(_majority_tasks(store, todo, cfg)):
        prompt_id = task.key[1]
        trace_ids = [a[0] for a in task.payload["answers"]]
        if isinstance(res, Failure):
            outcomes = dict.fromkeys(trace_ids, _failure_outcome(res))
        else:
            outcomes = res[0]
        for tid in trace_ids:
            if tid in wanted:
                writer.add(tid, prompt_id, "majority", outcomes[tid], [])
                bar.advance()
