"""Local teacher: a transformers causal LM, batched with left padding and the model's chat template.

One `generate` call per batch of prompts with `num_return_sequences` = samples per prompt (when a
resumed batch needs different sample counts per prompt, prompts are repeated instead: same cost).
Sampling follows the API semantics of the other backends: temperature and top-p only (top-k off),
temperature 0 is greedy. Token counts come from the token ids, finish_reason from whether an EOS
token was produced before `max_tokens`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Any

from tracekit.collect.backends.base import (
    BackendOptions,
    GenRequest,
    GenResult,
    Message,
    Sample,
    Sampling,
)
from tracekit.models import ModelSpec, load_causal_lm, model_revision
from tracekit.store.ids import content_id


class TransformersBackend:
    name = "transformers"

    def __init__(self, spec: ModelSpec, options: BackendOptions) -> None:
        import torch

        self.spec = spec
        self.options = options
        self.model, self.tok = load_causal_lm(spec, device=options.device)
        self.device = next(self.model.parameters()).device
        eos: set[int] = set()
        gen_eos = getattr(self.model.generation_config, "eos_token_id", None)
        for e in gen_eos if isinstance(gen_eos, list) else [gen_eos]:
            if e is not None:
                eos.add(int(e))
        if self.tok.eos_token_id is not None:
            eos.add(int(self.tok.eos_token_id))
        self.eos_ids = sorted(eos)
        self._eos = torch.tensor(self.eos_ids, device=self.device)
        self._revision = model_revision(spec)

    def revision(self) -> str | None:
        return self._revision

    def close(self) -> None:
        self.model = None  # type: ignore[assignment]

    def render(self, messages: list[Message]) -> str:
        """The prompt text the model sees: its chat template, or plain text when it has none."""
        if getattr(self.tok, "chat_template", None):
            return self.tok.apply_chat_template(
                messages, add_generation_prompt=True, tokenize=False
            )
        return "\n\n".join(m["content"] for m in messages) + "\n"

    def stream(self, requests: Iterable[GenRequest], sampling: Sampling) -> Iterator[GenResult]:
        it = iter(requests)
        size = max(1, self.options.batch_size)
        while True:
            chunk = list(islice(it, size))
            if not chunk:
                return
            yield from self.generate_batch(chunk, sampling)

    def generation_kwargs(self, sampling: Sampling, num_return_sequences: int) -> dict[str, Any]:
        kw: dict[str, Any] = {
            "max_new_tokens": sampling.max_tokens,
            "num_return_sequences": num_return_sequences,
            "pad_token_id": self.tok.pad_token_id,
            "eos_token_id": self.eos_ids,
        }
        if sampling.temperature > 0:
            kw.update(
                do_sample=True, temperature=sampling.temperature, top_p=sampling.top_p, top_k=0
            )
        else:
            kw.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        return kw

    def generate_batch(self, chunk: list[GenRequest], sampling: Sampling) -> list[GenResult]:
        import torch

        texts = [self.render(r.messages) for r in chunk]
        counts = [r.n for r in chunk]
        uniform = len(set(counts)) == 1
        if uniform:
            inputs, nrs = texts, counts[0]
        else:  # a resumed batch: prompts need different numbers of samples
            inputs, nrs = [t for t, n in zip(texts, counts, strict=False) for _ in range(n)], 1
        enc = self.tok(inputs, return_tensors="pt", padding=True, add_special_tokens=False)
        enc = {k: v.to(self.device) for k, v in enc.items()}
        if chunk[0].seed is not None:
            # seeded by batch content: a re-run of the same batch samples the same completions
            torch.manual_seed(
                int(
                    content_id("seed", chunk[0].seed, chunk[0].key, chunk[0].sample_indices)[:8], 16
                )
            )
        t0 = time.perf_counter()
        with torch.inference_mode():
            out = self.model.generate(**enc, **self.generation_kwargs(sampling, nrs))
        latency_ms = (time.perf_counter() - t0) * 1000.0
        plen = enc["input_ids"].shape[1]
        gen = out[:, plen:]
        prompt_tokens = enc["attention_mask"].sum(dim=1).tolist()
        is_eos = torch.isin(gen, self._eos)
        has_eos = is_eos.any(dim=1).tolist()
        first_eos = torch.where(
            is_eos.any(dim=1), is_eos.int().argmax(dim=1), gen.shape[1]
        ).tolist()

        results: list[GenResult] = []
        row = 0
        for req in chunk:
            res = GenResult(req)
            for sample_index in req.sample_indices:
                n_tok = int(first_eos[row])
                ids = gen[row, :n_tok]
                src_row = row // nrs if uniform else row
                sample = Sample(
                    sample_index=sample_index,
                    text=self.tok.decode(ids, skip_special_tokens=True),
                    finish_reason="stop" if has_eos[row] else "length",
                    prompt_tokens=int(prompt_tokens[src_row]),
                    completion_tokens=n_tok,
                    latency_ms=latency_ms,
                )
                if sampling.logprobs:
                    prompt_ids = enc["input_ids"][src_row][enc["attention_mask"][src_row].bool()]
                    sample.tokens, sample.logprobs = self._token_logprobs(prompt_ids, ids)
                res.samples.append(sample)
                row += 1
            results.append(res)
        return results

    def _token_logprobs(
        self, prompt_ids: Any, completion_ids: Any
    ) -> tuple[list[str], list[float]]:
        """Log-probabilities of the sampled tokens under the model's raw distribution (temperature
        1, no top-p), from one teacher-forced forward pass: the same numbers a scorer would compute
        later, without keeping per-step logits of the whole batch in memory during generation."""
        import torch

        if completion_ids.numel() == 0:
            return [], []
        ids = torch.cat([prompt_ids, completion_ids])[None]
        with torch.inference_mode():
            logits = self.model(input_ids=ids).logits[0, prompt_ids.numel() - 1 : -1].float()
        lp = torch.log_softmax(logits, dim=-1).gather(1, completion_ids[:, None])[:, 0]
        return self.tok.convert_ids_to_tokens(completion_ids.tolist()), lp.tolist()
