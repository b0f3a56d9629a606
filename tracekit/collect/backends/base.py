"""The backend interface shared by collect and eval: chat requests in, sampled completions out.

A backend is built once per teacher (`make_backend`) and consumes an iterator of requests, yielding
results as they finish. Pulling requests lazily lets the caller decide, request by request, whether
to go on (a budget cap, Ctrl-C) and lets a concurrent backend keep its pipe full across commit
batches. A request carries the sample indices it still needs, so a resumed run asks only for the
missing samples of a prompt.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from tracekit.errors import ConfigError
from tracekit.models import ModelSpec, parse_spec

Message = dict[str, str]


@dataclass(frozen=True)
class Sampling:
    """Sampling parameters every backend maps onto its own API. temperature 0 means greedy."""

    temperature: float = 0.6
    top_p: float = 0.95
    max_tokens: int = 1024
    logprobs: bool = False


@dataclass
class GenRequest:
    """One prompt and the samples still wanted for it. `key` is the caller's handle (prompt_id).
    `seed` is the base seed; sample i uses seed + i where a backend can seed per sample."""

    key: str
    messages: list[Message]
    sample_indices: list[int]
    seed: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.sample_indices)


@dataclass
class Sample:
    """One sampled completion. `reasoning` is what an API returned as `reasoning_content`
    (None for local backends, whose thinking stays inline in `text`)."""

    sample_index: int
    text: str
    finish_reason: str  # stop | length (others passed through as the server named them)
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency_ms: float | None = None
    reasoning: str | None = None
    tokens: list[str] | None = None  # sampled tokens, when logprobs were asked for
    logprobs: list[float] | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class GenResult:
    """What a backend produced for one request: the samples it got and, per missing sample
    index, the last error (the caller records those and retries them on a later run)."""

    request: GenRequest
    samples: list[Sample] = field(default_factory=list)
    errors: dict[int, str] = field(default_factory=dict)


@dataclass
class BackendOptions:
    """Knobs of all backends in one place; each backend reads the ones it understands."""

    batch_size: int = 8  # local backends: prompts per generate call
    concurrency: int = 8  # openai: requests in flight
    request_timeout: float = 600.0  # openai: seconds per HTTP request
    max_retries: int = 6  # openai: retries of 429/5xx/timeouts/connection errors
    backoff_base: float = 1.0  # openai: first backoff in seconds (doubles, with jitter)
    backoff_max: float = 60.0
    api_key_env: str | None = None  # openai: env var holding the key (default OPENAI_API_KEY)
    extra_body: dict[str, Any] = field(default_factory=dict)  # openai: extra JSON fields
    device: str | None = None  # transformers
    tensor_parallel_size: int = 1  # vllm
    data_parallel_size: int = 1  # vllm
    engine_args: dict[str, Any] = field(default_factory=dict)  # vllm: extra LLM(...) kwargs


class Backend(Protocol):
    """A teacher. `stream` yields one GenResult per request, in completion order."""

    spec: ModelSpec
    name: str  # the backend's name in the store: transformers | openai | vllm

    def stream(self, requests: Iterable[GenRequest], sampling: Sampling) -> Iterator[GenResult]: ...

    def revision(self) -> str | None: ...

    def close(self) -> None: ...


def generate(backend: Backend, requests: list[GenRequest], sampling: Sampling) -> list[GenResult]:
    """All results at once, in request order (for callers that do not stream)."""
    order = {id(r): i for i, r in enumerate(requests)}
    results = list(backend.stream(requests, sampling))
    return sorted(results, key=lambda r: order[id(r.request)])


def make_backend(spec: str | ModelSpec, options: BackendOptions | None = None) -> Backend:
    """Build the backend a SPEC names (default, hf:PATH, openai:MODEL@URL, vllm:ID)."""
    ms = parse_spec(spec) if isinstance(spec, str) else spec
    opts = options or BackendOptions()
    if ms.backend == "hf":
        from tracekit.collect.backends.transformers import TransformersBackend

        return TransformersBackend(ms, opts)
    if ms.backend == "openai":
        from tracekit.collect.backends.openai import OpenAIBackend

        return OpenAIBackend(ms, opts)
    if ms.backend == "vllm":
        from tracekit.collect.backends.vllm import VLLMBackend

        return VLLMBackend(ms, opts)
    raise ConfigError(f"no backend for model spec {ms.raw!r}")
