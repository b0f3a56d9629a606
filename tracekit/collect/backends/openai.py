"""OpenAI-compatible teacher (vLLM, SGLang, llama.cpp, hosted APIs) over plain httpx.

Why httpx and not the `openai` package: we need the raw JSON (vLLM and DeepSeek put the thinking in
non-standard `reasoning_content` / `reasoning` fields, llama.cpp ignores `n`), our own retry policy
(Retry-After honoured, jittered backoff, 401/404 fatal) and no hidden retries underneath it; the
SDK would add a dependency and a second, hidden retry loop for what is one POST.

Concurrency: an asyncio loop in a worker thread keeps up to `concurrency` HTTP requests in flight
and hands finished results to the caller's thread through a queue, so the caller (which owns the
DuckDB connection) commits batches while requests keep flowing. Requests are pulled from the
caller's iterator one at a time, when a slot is free, so the caller can stop feeding (budget,
Ctrl-C) and in-flight requests still complete and get stored.

`n`: sent as asked; when a server returns fewer choices (llama.cpp returns one), the missing
samples are requested one by one with seed + sample_index, and later requests of the run go out as
n=1 calls in parallel straight away.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import os
import queue
import random
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone
from typing import Any

import httpx

from tracekit.collect.backends.base import BackendOptions, GenRequest, GenResult, Sample, Sampling
from tracekit.errors import ConfigError, TracekitError
from tracekit.models import ModelSpec

RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504, 520, 522, 524, 529}
FATAL_STATUS = {401, 403, 404}  # wrong key or model: every request would fail the same way
_DONE = object()


class RequestFailed(Exception):
    """A request that failed after its retries; recorded per sample and retried next run."""


class FatalServerError(TracekitError):
    """The server refuses every request (auth, unknown model): stop the run."""


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After is either seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def backoff_delay(attempt: int, base: float, cap: float, retry_after: float | None) -> float:
    """Exponential backoff with equal jitter (half fixed, half random) so that many clients
    hit by the same 429 do not come back in lockstep; a server's Retry-After wins."""
    if retry_after is not None:
        return min(retry_after, max(cap, 300.0))
    x = min(cap, base * (2**attempt))
    return x / 2 + random.uniform(0, x / 2)


def split_tokens(total: int | None, texts: list[str]) -> list[int | None]:
    """Usage counts completion tokens of all choices together: share them by text length so
    per-trace counts add up to what the server billed."""
    if total is None:
        return [None] * len(texts)
    if len(texts) == 1:
        return [total]
    weights = [max(1, len(t)) for t in texts]
    shares = [total * w // sum(weights) for w in weights]
    shares[-1] += total - sum(shares)
    return shares


class OpenAIBackend:
    name = "openai"

    def __init__(self, spec: ModelSpec, options: BackendOptions) -> None:
        if not spec.base_url:
            raise ConfigError(f"openai spec needs a base URL: openai:MODEL@URL (got {spec.raw!r})")
        self.spec = spec
        self.options = options
        env = options.api_key_env or "OPENAI_API_KEY"
        self._api_key = os.environ.get(env) or None
        if options.api_key_env and not self._api_key:
            raise ConfigError(f"--api-key-env {env}: that environment variable is not set")
        self.url = spec.base_url.rstrip("/") + "/chat/completions"
        self.ignores_n = False
        self.stats: Counter[str] = Counter()

    def revision(self) -> str | None:
        return None

    def close(self) -> None:
        pass

    def redact(self, text: str) -> str:
        """Error texts may echo request headers back: the key never leaves this object."""
        if self._api_key:
            text = text.replace(self._api_key, "***")
        return text

    # ---- the caller's side ------------------------------------------------------------------
    def stream(self, requests: Iterable[GenRequest], sampling: Sampling) -> Iterator[GenResult]:
        q: queue.Queue[Any] = queue.Queue()
        state: dict[str, Any] = {}
        ready = threading.Event()

        def worker() -> None:
            loop = asyncio.new_event_loop()
            state["loop"] = loop
            try:
                task = loop.create_task(self._dispatch(iter(requests), sampling, q))
                state["task"] = task
                ready.set()
                loop.run_until_complete(task)
            except asyncio.CancelledError:
                pass
            except BaseException as e:  # surfaced in the caller's thread
                q.put(e)
            finally:
                ready.set()
                loop.close()
                q.put(_DONE)

        thread = threading.Thread(target=worker, name="tracekit-openai", daemon=True)
        thread.start()
        try:
            while True:
                item = q.get()
                if item is _DONE:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            ready.wait()
            loop, task = state.get("loop"), state.get("task")
            if thread.is_alive() and loop is not None and task is not None:
                with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                    loop.call_soon_threadsafe(task.cancel)
            thread.join()

    # ---- the worker thread ------------------------------------------------------------------
    async def _dispatch(self, it: Iterator[GenRequest], sampling: Sampling, q: queue.Queue) -> None:
        opts = self.options
        sem = asyncio.Semaphore(max(1, opts.concurrency))
        headers = {"Content-Type": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        timeout = httpx.Timeout(opts.request_timeout, connect=min(30.0, opts.request_timeout))
        limits = httpx.Limits(
            max_connections=opts.concurrency, max_keepalive_connections=opts.concurrency
        )
        tasks: set[asyncio.Task] = set()
        failure: list[BaseException] = []

        def done(t: asyncio.Task) -> None:
            tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                failure.append(t.exception())  # type: ignore[arg-type]

        async with httpx.AsyncClient(headers=headers, timeout=timeout, limits=limits) as client:
            try:
                while not failure:
                    await sem.acquire()
                    req = next(it, None)
                    if req is None or failure:
                        sem.release()
                        break
                    t = asyncio.create_task(self._one(client, sem, req, sampling, q))
                    tasks.add(t)
                    t.add_done_callback(done)
                while tasks and not failure:
                    await asyncio.wait(set(tasks), return_when=asyncio.FIRST_EXCEPTION)
            finally:
                for t in list(tasks):
                    t.cancel()
                if tasks:
                    await asyncio.gather(*tasks, return_exceptions=True)
        if failure:
            raise failure[0]

    async def _one(
        self,
        client: httpx.AsyncClient,
        sem: asyncio.Semaphore,
        req: GenRequest,
        sampling: Sampling,
        q: queue.Queue,
    ) -> None:
        """One prompt: the first call uses the slot the dispatcher took; emulated samples take
        their own slots (released after each call, so no task holds one while waiting)."""
        result = GenResult(req)
        indices = list(req.sample_indices)
        try:
            if self.ignores_n and len(indices) > 1:
                first, rest = [indices[0]], indices[1:]
            else:
                first, rest = indices, []
            try:
                got = await self._call(client, req, first, sampling)
            finally:
                sem.release()
            result.samples.extend(got)
            if len(got) < len(first):
                if len(first) > 1 and len(got) == 1:
                    self.ignores_n = True
                rest = first[len(got) :] + rest

            async def single(idx: int) -> list[Sample] | BaseException:
                async with sem:
                    try:
                        return await self._call(client, req, [idx], sampling)
                    except RequestFailed as e:
                        return e

            if rest:
                outs = await asyncio.gather(*(single(i) for i in rest))
                for idx, out in zip(rest, outs, strict=False):
                    if isinstance(out, BaseException):
                        result.errors[idx] = str(out)
                    elif out:
                        result.samples.extend(out)
                    else:
                        result.errors[idx] = "server returned no choices"
        except RequestFailed as e:
            for idx in indices:
                if all(s.sample_index != idx for s in result.samples):
                    result.errors[idx] = str(e)
        q.put(result)

    def request_body(
        self, req: GenRequest, indices: list[int], sampling: Sampling
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.spec.model,
            "messages": req.messages,
            "max_tokens": sampling.max_tokens,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p if sampling.temperature > 0 else 1.0,
        }
        if len(indices) > 1:
            body["n"] = len(indices)
        if req.seed is not None:
            body["seed"] = req.seed + indices[0]
        if sampling.logprobs:
            body["logprobs"] = True
        body.update(self.options.extra_body)
        return body

    async def _call(
        self, client: httpx.AsyncClient, req: GenRequest, indices: list[int], sampling: Sampling
    ) -> list[Sample]:
        body = self.request_body(req, indices, sampling)
        data, latency_ms = await self._post(client, body)
        return self.parse_choices(data, indices, latency_ms)

    async def _post(self, client: httpx.AsyncClient, body: dict[str, Any]) -> tuple[dict, float]:
        opts = self.options
        last = ""
        for attempt in range(opts.max_retries + 1):
            retry_after: float | None = None
            t0 = time.perf_counter()
            try:
                resp = await client.post(self.url, json=body)
            except (httpx.TimeoutException, httpx.TransportError) as e:
                last = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
            else:
                if resp.status_code == 200:
                    try:
                        return resp.json(), (time.perf_counter() - t0) * 1000.0
                    except ValueError:
                        last = f"invalid JSON in response: {resp.text[:200]!r}"
                else:
                    detail = resp.text[:300].replace("\n", " ")
                    last = f"HTTP {resp.status_code}: {detail}"
                    if resp.status_code in FATAL_STATUS:
                        raise FatalServerError(
                            self.redact(f"{self.spec.name} at {self.spec.base_url}: {last}")
                        )
                    if resp.status_code not in RETRY_STATUS:
                        raise RequestFailed(self.redact(last))
                    retry_after = parse_retry_after(resp.headers.get("retry-after"))
            if attempt == opts.max_retries:
                break
            self.stats["retries"] += 1
            await asyncio.sleep(
                backoff_delay(attempt, opts.backoff_base, opts.backoff_max, retry_after)
            )
        raise RequestFailed(self.redact(f"{last} (after {opts.max_retries} retries)"))

    def parse_choices(
        self, data: dict[str, Any], indices: list[int], latency_ms: float
    ) -> list[Sample]:
        choices = sorted(data.get("choices") or [], key=lambda c: c.get("index", 0))[: len(indices)]
        usage = data.get("usage") or {}
        texts = [((c.get("message") or {}).get("content") or "") for c in choices]
        logprob_lists = [((c.get("logprobs") or {}).get("content")) for c in choices]
        if all(lp is not None for lp in logprob_lists) and choices:
            completion = [len(lp) for lp in logprob_lists]  # type: ignore[arg-type]
        else:
            completion = split_tokens(usage.get("completion_tokens"), texts)
        samples = []
        for idx, c, text, n_tok, lp in zip(
            indices, choices, texts, completion, logprob_lists, strict=False
        ):
            msg = c.get("message") or {}
            finish = c.get("finish_reason") or "unknown"
            s = Sample(
                sample_index=idx,
                text=text,
                reasoning=msg.get("reasoning_content") or msg.get("reasoning") or None,
                finish_reason="stop" if finish == "eos" else finish,
                prompt_tokens=usage.get("prompt_tokens"),
                completion_tokens=n_tok,
                latency_ms=latency_ms,
                meta={"n_choices": len(choices)} if len(choices) > 1 else {},
            )
            if lp is not None:
                s.tokens = [t.get("token", "") for t in lp]
                s.logprobs = [float(t.get("logprob", 0.0)) for t in lp]
            samples.append(s)
        return samples
