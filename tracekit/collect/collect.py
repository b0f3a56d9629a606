"""The collect stage: ask teachers to solve the store's prompts, N samples each, and store every
trace with what produced it.

Resumable by construction: a trace's id hashes (prompt, teacher, revision, sampling, seed, sample
index), so the pending work is "the ids not yet in `traces`", computed before any model loads (a
finished run re-runs in a second). Results are committed in batches, one transaction each, with the
run's counts; a SIGKILL loses at most the batch in flight. Ctrl-C stops feeding new requests and
commits what is in flight. A request that fails after its retries lands in `collect_errors` (the
last error per prompt, teacher and sample) and is asked again by the next run.
"""

from __future__ import annotations

import json
import math
import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import duckdb
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, field_validator

from tracekit.collect.backends.base import (
    Backend,
    BackendOptions,
    GenRequest,
    GenResult,
    Message,
    Sampling,
    make_backend,
)
from tracekit.collect.pricing import Price, price_for
from tracekit.collect.shard import in_shard, parse_shard
from tracekit.errors import ConfigError, TracekitError
from tracekit.models import ModelSpec, model_revision, parse_spec
from tracekit.progress import console, info, is_quiet, progress
from tracekit.store import RunResult, Store
from tracekit.store.ids import content_id, generated_trace_id
from tracekit.store.runs import Run
from tracekit.text.reasoning import split_reasoning

DEFAULT_TEMPLATE = (
    "{problem}\n\nPlease reason step by step, and put your final answer within \\boxed{}."
)
PAGE_PROMPTS = 2048  # prompts whose texts are read at once; bounds memory on huge stores


class CollectConfig(BaseModel):
    """Shared by `tracekit collect`, recipes and the eval stage (origin="student")."""

    model_config = ConfigDict(extra="forbid")

    teachers: list[str] = Field(default_factory=lambda: ["default"], min_length=1)
    samples: int = Field(4, ge=1)
    temperature: float = Field(0.6, ge=0)
    top_p: float = Field(0.95, gt=0, le=1)
    max_tokens: int = Field(1024, ge=1)
    seed: int | None = 0
    system_prompt: str | None = None
    template: str = DEFAULT_TEMPLATE
    where: str | None = None  # SQL over the prompts table's columns
    limit: int | None = Field(None, ge=1)  # at most this many prompts (after where and shard)
    shard: str | None = None  # "i/n", zero-based
    batch_size: int = Field(8, ge=1)  # prompts per commit (and per generate call locally)
    concurrency: int = Field(8, ge=1)  # openai: requests in flight
    budget_usd: float | None = Field(None, gt=0)
    price_in: float | None = Field(None, ge=0)  # USD per 1M input tokens, overrides the table
    price_out: float | None = Field(None, ge=0)
    api_key_env: str | None = None  # NAME of the env var with the key; never the key
    request_timeout: float = Field(600.0, gt=0)
    max_retries: int = Field(6, ge=0)
    backoff_base: float = Field(1.0, ge=0)
    max_consecutive_failures: int = Field(50, ge=1)  # then the run stops: the server is down
    extra_body: dict[str, Any] = Field(default_factory=dict)  # openai: extra request fields
    logprobs: bool = False  # keep per-token logprobs of sampled tokens in token_logprobs
    device: str | None = None  # transformers: cpu | cuda | cuda:1 ...
    tensor_parallel_size: int = Field(1, ge=1)  # vllm
    data_parallel_size: int = Field(1, ge=1)  # vllm
    engine_args: dict[str, Any] = Field(default_factory=dict)  # vllm: extra LLM(...) kwargs
    origin: Literal["generated", "student"] = "generated"

    @field_validator("template")
    @classmethod
    def _template_has_problem(cls, v: str) -> str:
        if "{problem}" not in v:
            raise ValueError("the template must contain {problem}")
        return v

    @field_validator("shard")
    @classmethod
    def _shard_format(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                parse_shard(v)
            except ConfigError as e:
                raise ValueError(str(e)) from None
        return v

    def sampling(self) -> Sampling:
        return Sampling(self.temperature, self.top_p, self.max_tokens, self.logprobs)

    def backend_options(self) -> BackendOptions:
        return BackendOptions(
            batch_size=self.batch_size,
            concurrency=self.concurrency,
            request_timeout=self.request_timeout,
            max_retries=self.max_retries,
            backoff_base=self.backoff_base,
            api_key_env=self.api_key_env,
            extra_body=dict(self.extra_body),
            device=self.device,
            tensor_parallel_size=self.tensor_parallel_size,
            data_parallel_size=self.data_parallel_size,
            engine_args=dict(self.engine_args),
        )


# ---- lineage ---------------------------------------------------------------------------------
def sampling_key(cfg: CollectConfig) -> dict[str, Any]:
    """The sampling fields a trace id depends on (and that `traces.sampling` records). The prompt
    format enters as a hash; its text is in the run's config."""
    key: dict[str, Any] = {
        "temperature": cfg.temperature,
        "top_p": cfg.top_p if cfg.temperature > 0 else 1.0,
        "max_tokens": cfg.max_tokens,
        "prompt_format": content_id("prompt-format", cfg.system_prompt or "", cfg.template),
    }
    if cfg.origin != "generated":  # a student evaluated with a teacher's settings is another trace
        key["origin"] = cfg.origin
    return key


def teacher_revision(spec: ModelSpec) -> str | None:
    if spec.backend == "hf":
        return model_revision(spec)
    if spec.backend == "vllm" and os.path.isdir(spec.model):
        return model_revision(ModelSpec("hf", spec.model, raw="hf:" + spec.model))
    return None


def redact_spec(spec: str) -> str:
    """A teacher SPEC as it may be stored: no user:password@ and no query string in a URL."""
    if not spec.startswith("openai:") or "@" not in spec:
        return spec
    model, url = spec[len("openai:") :].split("@", 1)
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return f"openai:{model}@" + urlunsplit((parts.scheme, host, parts.path, "", ""))


def render_messages(cfg: CollectConfig, problem: str) -> list[Message]:
    msgs: list[Message] = []
    if cfg.system_prompt:
        msgs.append({"role": "system", "content": cfg.system_prompt})
    msgs.append({"role": "user", "content": cfg.template.replace("{problem}", problem)})
    return msgs


# ---- budget ----------------------------------------------------------------------------------
class Budget:
    """A spending cap checked before each request: a request goes out only if its worst case
    (every sample hits max_tokens) fits in what is left after spent and in-flight reservations,
    so the cap is never crossed. Thread-safe: the openai backend pulls requests in its thread."""

    def __init__(self, limit_usd: float | None) -> None:
        self.limit = limit_usd
        self.spent = 0.0
        self.reserved = 0.0
        self.exhausted = False
        self._lock = threading.Lock()

    def reserve(self, amount: float) -> bool:
        with self._lock:
            if self.limit is not None and self.spent + self.reserved + amount > self.limit:
                self.exhausted = True
                return False
            self.reserved += amount
            return True

    def settle(self, reserved: float, actual: float) -> None:
        with self._lock:
            self.reserved -= reserved
            self.spent += actual


def worst_case_cost(price: Price, prompt_chars: int, n: int, max_tokens: int) -> float:
    # ~4 characters per token for English and LaTeX; counted at 2.5 plus template overhead, so
    # the estimate errs high
    prompt_tokens = math.ceil(prompt_chars / 2.5) + 64
    return n * price.cost(prompt_tokens, max_tokens)


# ---- interruption ----------------------------------------------------------------------------
@contextmanager
def stop_on_sigint(stop: threading.Event) -> Iterator[None]:
    """First Ctrl-C: stop feeding requests, finish and commit the batch in flight. Second: abort."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum: int, frame: Any) -> None:
        if stop.is_set():
            signal.signal(signal.SIGINT, previous)
            raise KeyboardInterrupt
        stop.set()
        info("[yellow]collect[/]: stopping after the requests in flight (Ctrl-C again to abort)")

    signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


# ---- the stage -------------------------------------------------------------------------------
@dataclass
class _Teacher:
    spec: ModelSpec
    name: str
    revision: str | None
    price: Price | None
    pending: list[tuple[str, list[int]]] = field(default_factory=list)  # (prompt_id, indices)

    @property
    def n_pending(self) -> int:
        return sum(len(ix) for _, ix in self.pending)


def select_prompts(store: Store, cfg: CollectConfig) -> list[str]:
    where = f"WHERE ({cfg.where})" if cfg.where else ""
    try:
        ids = [
            r[0]
            for r in store.fetchall(f"SELECT prompt_id FROM prompts {where} ORDER BY prompt_id")
        ]
    except duckdb.Error as e:
        raise ConfigError(f"--where {cfg.where!r}: {str(e).splitlines()[0]}") from None
    shard = parse_shard(cfg.shard) if cfg.shard else None
    ids = [p for p in ids if in_shard(p, shard)]
    return ids[: cfg.limit] if cfg.limit else ids


def _existing(store: Store, trace_ids: list[str]) -> set[str]:
    if not trace_ids:
        return set()
    rows = store.fetchall(
        "SELECT trace_id FROM traces WHERE trace_id IN (SELECT unnest(?))", [trace_ids]
    )
    return {r[0] for r in rows}


def plan_teacher(
    store: Store, cfg: CollectConfig, spec: ModelSpec, prompt_ids: list[str]
) -> _Teacher:
    """Which samples this teacher still owes, without loading it."""
    revision = teacher_revision(spec)
    price = price_for(spec.backend, spec.model, cfg.price_in, cfg.price_out)
    t = _Teacher(spec, spec.name, revision, price)
    skey = sampling_key(cfg)
    for start in range(0, len(prompt_ids), PAGE_PROMPTS * 4):
        page = prompt_ids[start : start + PAGE_PROMPTS * 4]
        ids = {
            (pid, i): generated_trace_id(pid, t.name, revision, skey, cfg.seed, i)
            for pid in page
            for i in range(cfg.samples)
        }
        have = _existing(store, list(ids.values()))
        for pid in page:
            missing = [i for i in range(cfg.samples) if ids[(pid, i)] not in have]
            if missing:
                t.pending.append((pid, missing))
    return t


_TRACE_SCHEMA = pa.schema(
    [
        ("trace_id", pa.string()),
        ("prompt_id", pa.string()),
        ("teacher", pa.string()),
        ("teacher_revision", pa.string()),
        ("backend", pa.string()),
        ("sampling", pa.string()),
        ("seed", pa.int64()),
        ("sample_index", pa.int32()),
        ("text", pa.string()),
        ("reasoning_field", pa.string()),
        ("finish_reason", pa.string()),
        ("prompt_tokens", pa.int32()),
        ("completion_tokens", pa.int32()),
        ("latency_ms", pa.float64()),
        ("cost_usd", pa.float64()),
        ("origin", pa.string()),
        ("meta", pa.string()),
        ("run_id", pa.string()),
    ]
)


class _Writer:
    """Buffers results and commits them in one transaction per batch, with the run's counts."""

    def __init__(
        self,
        store: Store,
        run: Run,
        cfg: CollectConfig,
        teacher: _Teacher,
        backend: Backend,
        budget: Budget,
    ) -> None:
        self.store, self.run, self.cfg, self.t, self.backend, self.budget = (
            store,
            run,
            cfg,
            teacher,
            backend,
            budget,
        )
        self.skey = sampling_key(cfg)
        self.sampling_json = json.dumps(self.skey, sort_keys=True)
        self.rows: list[dict[str, Any]] = []
        self.logprob_rows: list[dict[str, Any]] = []
        self.errors: list[tuple[str, int, str]] = []
        self.requests = 0
        self.cost = 0.0
        self.consecutive_failures = 0
        self.last_error = ""
        self.committed = 0

    def add(self, res: GenResult) -> None:
        req = res.request
        actual = 0.0
        for s in res.samples:
            tid = generated_trace_id(
                req.key, self.t.name, self.t.revision, self.skey, self.cfg.seed, s.sample_index
            )
            split = split_reasoning(s.text, s.reasoning)
            meta = dict(s.meta)
            if split.unclosed:
                meta["unclosed_reasoning"] = True
            cost = None
            if self.t.price is not None:
                cost = self.t.price.cost(
                    s.prompt_tokens, s.completion_tokens, 1.0 / max(1, meta.get("n_choices", 1))
                )
                actual += cost
            self.rows.append(
                {
                    "trace_id": tid,
                    "prompt_id": req.key,
                    "teacher": self.t.name,
                    "teacher_revision": self.t.revision,
                    "backend": self.backend.name,
                    "sampling": self.sampling_json,
                    "seed": self.cfg.seed,
                    "sample_index": s.sample_index,
                    "text": s.text,
                    "reasoning_field": s.reasoning or None,  # reasoning/answer_text derive from it
                    "finish_reason": s.finish_reason,
                    "prompt_tokens": s.prompt_tokens,
                    "completion_tokens": s.completion_tokens,
                    "latency_ms": s.latency_ms,
                    "cost_usd": cost,
                    "origin": self.cfg.origin,
                    "meta": json.dumps(meta, sort_keys=True) if meta else None,
                    "run_id": self.run.run_id,
                }
            )
            if s.logprobs is not None:
                self.logprob_rows.append(
                    {
                        "trace_id": tid,
                        "tokens": s.tokens or [],
                        "logprobs": s.logprobs,
                        "run_id": self.run.run_id,
                    }
                )
        for idx, err in res.errors.items():
            self.errors.append((req.key, idx, err))
            self.last_error = err
        self.budget.settle(float(req.meta.get("reserved", 0.0)), actual)
        self.cost += actual
        self.requests += 1
        if res.samples or not res.errors:
            self.consecutive_failures = 0
        else:
            self.consecutive_failures += 1

    def flush(self) -> int:
        if not self.rows and not self.errors:
            return 0
        now = datetime.now(timezone.utc).replace(tzinfo=None)
        ok_keys = [f"{r['prompt_id']}:{r['sample_index']}" for r in self.rows]
        err_keys = [f"{p}:{i}" for p, i, _ in self.errors]
        with self.store.transaction():
            added = self.store.insert_arrow(
                "traces", pa.Table.from_pylist(self.rows, schema=_TRACE_SCHEMA)
            )
            if self.logprob_rows:
                self.store.insert_rows("token_logprobs", self.logprob_rows)
            # collect_errors holds what is still missing: the last error per (prompt, teacher, sample)
            if ok_keys or err_keys:
                self.store.execute(
                    "DELETE FROM collect_errors WHERE teacher = ?"
                    " AND (prompt_id || ':' || sample_index) IN (SELECT unnest(?))",
                    [self.t.name, ok_keys + err_keys],
                )
            if self.errors:
                self.store.insert_rows(
                    "collect_errors",
                    [
                        {
                            "prompt_id": p,
                            "teacher": self.t.name,
                            "sample_index": i,
                            "error": e[:2000],
                            "failed_at": now,
                            "run_id": self.run.run_id,
                        }
                        for p, i, e in self.errors
                    ],
                    ignore_existing=False,
                )
            self.run.add("traces", added)
            self.run.add("truncated", sum(1 for r in self.rows if r["finish_reason"] == "length"))
            self.run.add("errors", len(self.errors))
            self.run.add("completion_tokens", sum(r["completion_tokens"] or 0 for r in self.rows))
            self.run.details["cost_usd"] = round(
                self.run.details.get("cost_usd", 0.0) + self.cost, 6
            )
            self.run.checkpoint()
        n = len(self.rows)
        self.committed += n
        self.rows, self.logprob_rows, self.errors, self.requests, self.cost = [], [], [], 0, 0.0
        return n


def _log_lines_wanted() -> bool:
    """Without a live bar (not a terminal: nohup, CI, a cluster job) print a line per commit."""
    return not is_quiet() and not (console.is_terminal or os.environ.get("TRACEKIT_PROGRESS"))


def _collect_teacher(
    store: Store, run: Run, cfg: CollectConfig, t: _Teacher, budget: Budget, stop: threading.Event
) -> None:
    if budget.limit is not None and t.price is None:
        raise ConfigError(
            f"--budget-usd needs a price for {t.name}: pass --price-in/--price-out (USD per 1M"
            " tokens) or add the model to the table named by TRACEKIT_PRICES"
        )
    t0 = time.perf_counter()
    backend = make_backend(t.spec, cfg.backend_options())
    # model loading is a fixed cost worth seeing apart from generation (and benchmarks exclude it)
    run.details.setdefault("load_seconds", {})[t.name] = round(time.perf_counter() - t0, 3)
    writer = _Writer(store, run, cfg, t, backend, budget)
    sampling = cfg.sampling()
    total = t.n_pending
    log_lines = _log_lines_wanted()

    def feed(page: list[tuple[str, list[int]]], problems: dict[str, str]) -> Iterator[GenRequest]:
        for pid, indices in page:
            if stop.is_set() or budget.exhausted:
                return
            msgs = render_messages(cfg, problems[pid])
            req = GenRequest(pid, msgs, indices, cfg.seed)
            if budget.limit is not None and t.price is not None:
                est = worst_case_cost(
                    t.price, sum(len(m["content"]) for m in msgs), len(indices), cfg.max_tokens
                )
                if not budget.reserve(est):
                    return
                req.meta["reserved"] = est
            yield req

    try:
        with progress(f"collect {t.name}", total=total, unit="samples") as bar:
            for start in range(0, len(t.pending), PAGE_PROMPTS):
                if stop.is_set() or budget.exhausted:
                    break
                page = t.pending[start : start + PAGE_PROMPTS]
                problems = dict(
                    store.fetchall(
                        "SELECT prompt_id, problem FROM prompts WHERE prompt_id IN (SELECT unnest(?))",
                        [[p for p, _ in page]],
                    )
                )
                for res in backend.stream(feed(page, problems), sampling):
                    writer.add(res)
                    bar.advance(len(res.request.sample_indices))
                    if writer.consecutive_failures >= cfg.max_consecutive_failures:
                        writer.flush()
                        raise TracekitError(
                            f"{t.name}: {writer.consecutive_failures} requests in a row failed, stopping"
                            f" (last error: {writer.last_error}); failures are in collect_errors and"
                            " are retried by the next run"
                        )
                    if writer.requests >= cfg.batch_size:
                        writer.flush()
                        if log_lines:
                            console.print(
                                f"collect {t.name}: {writer.committed}/{total} samples committed"
                            )
                writer.flush()
    finally:
        run.add("retries", int(getattr(backend, "stats", {}).get("retries", 0)))
        backend.close()
    if log_lines:
        console.print(f"collect {t.name}: {writer.committed}/{total} samples committed")


def run_collect(store: Store, cfg: CollectConfig) -> RunResult:
    specs: list[ModelSpec] = []
    for raw in dict.fromkeys(cfg.teachers):  # keep order, drop repeats
        specs.append(parse_spec(raw))
    stored_cfg = cfg.model_copy(update={"teachers": [redact_spec(s) for s in cfg.teachers]})
    stop = threading.Event()
    with store.run("collect", stored_cfg) as run, stop_on_sigint(stop):
        prompt_ids = select_prompts(store, cfg)
        run.add("prompts", len(prompt_ids))
        budget = Budget(cfg.budget_usd)
        run.details["teachers"] = [s.name for s in specs]
        for spec in specs:
            t = plan_teacher(store, cfg, spec, prompt_ids)
            run.add("skipped", len(prompt_ids) * cfg.samples - t.n_pending)
            if not t.pending:
                info(
                    f"collect {t.name}: nothing to do ({len(prompt_ids)} prompts x {cfg.samples} samples stored)"
                )
                continue
            if stop.is_set() or budget.exhausted:
                run.add("not_started", t.n_pending)
                continue
            _collect_teacher(store, run, cfg, t, budget, stop)
        if budget.exhausted:
            run.details["stopped"] = "budget"
            info(
                f"[yellow]collect[/]: stopped at the budget cap (${budget.spent:.4f} of"
                f" ${cfg.budget_usd:.4f} spent); re-run with a higher --budget-usd to go on"
            )
        if stop.is_set():
            run.details["stopped"] = "interrupted"
            raise KeyboardInterrupt
    return run.result
