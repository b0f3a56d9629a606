"""In-process vLLM teacher for GPU throughput (extra `tracekit[vllm]`).

vLLM is imported only when this backend is built, so tracekit installs and runs without it. The
mapping from tracekit's options to vLLM's (engine kwargs, SamplingParams kwargs, RequestOutput ->
Sample) is plain functions, unit-tested without vLLM; the engine calls are thin around them.
Batches are large on purpose (`--batch-size 512` or more): vLLM schedules continuously inside a
batch, and the batch is also the commit unit.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Any

from tracekit.collect.backends.base import BackendOptions, GenRequest, GenResult, Sample, Sampling
from tracekit.errors import TracekitError
from tracekit.models import ModelSpec, ensure_default_model, model_revision

INSTALL_HINT = "vLLM is not installed: `pip install 'tracekit[vllm]'` (needs a CUDA GPU)"


def engine_kwargs(
    spec: ModelSpec, options: BackendOptions, seed: int | None = None
) -> dict[str, Any]:
    """Arguments of `vllm.LLM(...)`. Data parallelism inside one process needs a vLLM that
    supports `data_parallel_size` for offline use; `--shard i/n` with one process per GPU
    (CUDA_VISIBLE_DEVICES) is the portable alternative."""
    model = str(ensure_default_model()) if spec.model == "default" else spec.model
    kw: dict[str, Any] = {"model": model, "tensor_parallel_size": options.tensor_parallel_size}
    if options.data_parallel_size > 1:
        kw["data_parallel_size"] = options.data_parallel_size
    if seed is not None:
        kw["seed"] = seed
    kw.update(options.engine_args)
    return kw


def sampling_kwargs(sampling: Sampling, n: int, seed: int | None) -> dict[str, Any]:
    """Arguments of `vllm.SamplingParams(...)` for one prompt needing n samples. Greedy is
    temperature 0 with top_p 1; logprobs=0 returns only the sampled token's log-probability."""
    greedy = sampling.temperature <= 0
    kw: dict[str, Any] = {
        "n": n,
        "temperature": 0.0 if greedy else sampling.temperature,
        "top_p": 1.0 if greedy else sampling.top_p,
        "max_tokens": sampling.max_tokens,
    }
    if seed is not None:
        kw["seed"] = seed
    if sampling.logprobs:
        kw["logprobs"] = 0
    return kw


def parse_output(output: Any, req: GenRequest, latency_ms: float, want_logprobs: bool) -> GenResult:
    """A vLLM RequestOutput -> GenResult (one Sample per CompletionOutput, in order)."""
    res = GenResult(req)
    prompt_tokens = len(output.prompt_token_ids or [])
    for idx, comp in zip(req.sample_indices, output.outputs, strict=False):
        s = Sample(
            sample_index=idx,
            text=comp.text,
            finish_reason=comp.finish_reason or "unknown",
            prompt_tokens=prompt_tokens,
            completion_tokens=len(comp.token_ids),
            latency_ms=latency_ms,
        )
        if want_logprobs and comp.logprobs:
            toks, lps = [], []
            for tok_id, step in zip(comp.token_ids, comp.logprobs, strict=False):
                lp = step[tok_id]
                toks.append(getattr(lp, "decoded_token", None) or str(tok_id))
                lps.append(float(lp.logprob))
            s.tokens, s.logprobs = toks, lps
        res.samples.append(s)
    for idx in req.sample_indices[len(output.outputs) :]:
        res.errors[idx] = "vLLM returned fewer outputs than asked"
    return res


class VLLMBackend:
    name = "vllm"

    def __init__(self, spec: ModelSpec, options: BackendOptions) -> None:
        try:
            import vllm
        except ImportError:
            raise TracekitError(INSTALL_HINT) from None
        self.spec = spec
        self.options = options
        self._vllm = vllm
        kwargs = engine_kwargs(spec, options)
        self.llm = vllm.LLM(**kwargs)
        path = kwargs["model"]
        self._revision = model_revision(ModelSpec("hf", path, raw="hf:" + path))

    def revision(self) -> str | None:
        return self._revision

    def close(self) -> None:
        self.llm = None

    def stream(self, requests: Iterable[GenRequest], sampling: Sampling) -> Iterator[GenResult]:
        it = iter(requests)
        size = max(1, self.options.batch_size)
        while True:
            chunk = list(islice(it, size))
            if not chunk:
                return
            params = [
                self._vllm.SamplingParams(
                    **sampling_kwargs(
                        sampling, r.n, None if r.seed is None else r.seed + r.sample_indices[0]
                    )
                )
                for r in chunk
            ]
            t0 = time.perf_counter()
            outputs = self.llm.chat(
                [r.messages for r in chunk], sampling_params=params, use_tqdm=False
            )
            latency_ms = (time.perf_counter() - t0) * 1000.0
            for req, out in zip(chunk, outputs, strict=False):
                yield parse_output(out, req, latency_ms, sampling.logprobs)
