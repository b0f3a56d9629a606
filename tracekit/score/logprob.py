"""Batched log-probabilities of a continuation given its context under a causal LM.

One engine serves perplexity (mean token NLL of a whole trace) and provenance (mean token
log-prob of each sentence given everything before it): both need, for every continuation token,
log p(token | all preceding tokens) from one teacher-forced forward pass.

Choices that matter for correctness:
- The context is rendered exactly as the transformers teacher renders it at generation time
  (prompt as the user turn of the chat template, generation prompt appended) and tokenised
  separately from the continuation, so the scored token sequence is the one the model produced.
- Requests are sorted by length and batched with left padding and explicit position ids, so
  every row's tokens see the same positions as unpadded; padding costs little because neighbours
  have similar lengths.
- A sequence longer than the model's maximum length loses tokens from the LEFT (context first);
  the count is recorded, and continuation tokens that fell off (or the first kept token, which
  has nothing to condition on) get NaN instead of a made-up number.
- Only the positions that predict continuation tokens are projected onto the vocabulary
  (`logits_to_keep`), and log-softmax runs in float32 chunks, so long prompts and large
  vocabularies do not multiply memory.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tracekit.errors import TracekitError
from tracekit.models import ModelSpec, load_causal_lm, parse_spec

# a model whose config claims an absurd context (tokenizers often say 1e30) gets this cap
_FALLBACK_MAX_LENGTH = 4096
# floats per log-softmax chunk (rows x vocab): bounds the float32 temporaries to ~256 MB
_SOFTMAX_CHUNK_FLOATS = 64 * 1024 * 1024


@dataclass
class TokenLogprobs:
    """Per-token log-probs of one continuation, in the order of its tokens."""

    logprobs: np.ndarray  # float64 [n_tokens]; NaN where a token could not be scored
    token_ids: list[int]
    offsets: list[tuple[int, int]] | None  # character span of each token in the continuation
    context_tokens: int  # context tokens the model saw (after truncation)
    truncated_tokens: int  # tokens dropped from the left to fit max_length

    @property
    def n_tokens(self) -> int:
        return len(self.token_ids)

    @property
    def n_scored(self) -> int:
        return int(np.isfinite(self.logprobs).sum())

    def mean_logprob(self, mask: np.ndarray | None = None) -> float | None:
        """Mean over scored tokens (optionally a subset); None when no token was scored."""
        lp = self.logprobs if mask is None else self.logprobs[mask]
        lp = lp[np.isfinite(lp)]
        return float(lp.mean()) if lp.size else None


@dataclass
class _Encoded:
    index: int
    ids: list[int]  # context + continuation after left truncation
    n_cont: int  # continuation tokens in `ids` (the tail)
    n_cont_total: int
    truncated: int
    cont_ids: list[int] = field(default_factory=list)
    offsets: list[tuple[int, int]] | None = None


def model_max_length(model: Any, tokenizer: Any, override: int | None = None) -> int:
    """The longest sequence the model accepts: an explicit override, else the config's position
    limit, else the tokenizer's (ignoring the 1e30 placeholder many tokenizers carry)."""
    if override:
        return int(override)
    cfg = getattr(model, "config", None)
    for name in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        v = getattr(cfg, name, None)
        if isinstance(v, int) and 0 < v < 10_000_000:
            return v
    v = getattr(tokenizer, "model_max_length", None)
    if isinstance(v, int) and 0 < v < 10_000_000:
        return v
    return _FALLBACK_MAX_LENGTH


def render_prompt(tokenizer: Any, prompt: str) -> str:
    """The text before the trace, as the transformers teacher renders it when generating
    (tracekit.collect.backends.transformers): the chat template with the prompt as the user turn
    and the generation prompt appended, or the plain prompt and a newline without a template."""
    messages = [{"role": "user", "content": prompt}]
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    return "\n\n".join(m["content"] for m in messages) + "\n"


class LogprobScorer:
    """Scores (context, continuation) pairs under one causal LM; see the module docstring."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        batch_size: int = 8,
        max_length: int | None = None,
        name: str = "",
    ) -> None:
        import torch

        self.model = model
        self.tok = tokenizer
        self.batch_size = max(1, int(batch_size))
        self.max_length = model_max_length(model, tokenizer, max_length)
        if self.max_length < 2:
            raise TracekitError(f"max_length must be at least 2 tokens (got {self.max_length})")
        self.name = name
        self.device = next(model.parameters()).device
        pad = (
            tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        )
        self.pad_id = int(pad if pad is not None else 0)
        self._supports_keep = True
        self._torch = torch

    @classmethod
    def load(
        cls,
        spec: str | ModelSpec,
        *,
        device: str | None = None,
        dtype: Any = None,
        batch_size: int = 8,
        max_length: int | None = None,
    ) -> LogprobScorer:
        """Any transformers SPEC: `default`, hf:PATH_OR_ID, or a PEFT adapter folder (scored on
        its base without merging, through load_causal_lm)."""
        ms = parse_spec(spec) if isinstance(spec, str) else spec
        model, tok = load_causal_lm(ms, device=device, dtype=dtype)
        return cls(model, tok, batch_size=batch_size, max_length=max_length, name=ms.name)

    # ---- encoding --------------------------------------------------------------------------
    def render_prompt(self, prompt: str) -> str:
        return render_prompt(self.tok, prompt)

    def encode_continuation(self, text: str) -> tuple[list[int], list[tuple[int, int]] | None]:
        """Token ids of the continuation and, with a fast tokenizer, each token's character span."""
        if getattr(self.tok, "is_fast", False):
            enc = self.tok(text, add_special_tokens=False, return_offsets_mapping=True)
            return list(enc["input_ids"]), [tuple(o) for o in enc["offset_mapping"]]
        return list(self.tok(text, add_special_tokens=False)["input_ids"]), None

    def encode_context(self, text: str) -> list[int]:
        return list(self.tok(text, add_special_tokens=False)["input_ids"]) if text else []

    def _encode(
        self,
        index: int,
        ctx_ids: list[int],
        cont_ids: list[int],
        offsets: list[tuple[int, int]] | None = None,
    ) -> _Encoded:
        ids = ctx_ids + cont_ids
        drop = max(0, len(ids) - self.max_length)
        kept = ids[drop:]
        n_cont = min(len(cont_ids), len(kept))
        return _Encoded(index, kept, n_cont, len(cont_ids), drop, cont_ids, offsets)

    # ---- scoring ---------------------------------------------------------------------------
    def score(
        self,
        pairs: Sequence[tuple[str, str]],
        *,
        on_batch: Callable[[int], None] | None = None,
    ) -> list[TokenLogprobs]:
        """Per-token log-probs of each continuation given its (already rendered) context, in
        the order of `pairs`. `on_batch(n)` is called after each batch of n items."""
        encoded = []
        for i, (ctx, cont) in enumerate(pairs):
            cont_ids, offsets = self.encode_continuation(cont)
            encoded.append(self._encode(i, self.encode_context(ctx), cont_ids, offsets))
        return self._score_encoded(encoded, on_batch=on_batch)

    def score_prompts(
        self,
        prompts: Sequence[str],
        continuations: Sequence[str],
        *,
        on_batch: Callable[[int], None] | None = None,
    ) -> list[TokenLogprobs]:
        """Traces as they were generated: each prompt is the user turn, the trace the reply."""
        return self.score(
            [(self.render_prompt(p), c) for p, c in zip(prompts, continuations, strict=True)],
            on_batch=on_batch,
        )

    def score_ids(
        self, pairs: Sequence[tuple[list[int], list[int]]], *, sort: bool = True
    ) -> list[TokenLogprobs]:
        """Already tokenised (context ids, continuation ids) pairs: the benchmark's entry point."""
        encoded = [self._encode(i, list(c), list(x)) for i, (c, x) in enumerate(pairs)]
        return self._score_encoded(encoded, sort=sort)

    def batches(self, encoded: list[_Encoded], sort: bool = True) -> list[list[_Encoded]]:
        """Longest first, so an out-of-memory error shows on the first batch, not the last."""
        order = sorted(encoded, key=lambda e: -len(e.ids)) if sort else list(encoded)
        return [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]

    def _score_encoded(
        self,
        encoded: list[_Encoded],
        *,
        sort: bool = True,
        on_batch: Callable[[int], None] | None = None,
    ) -> list[TokenLogprobs]:
        results: list[TokenLogprobs | None] = [None] * len(encoded)
        for batch in self.batches(encoded, sort=sort):
            for e, lp in zip(batch, self._forward(batch), strict=True):
                full = np.full(e.n_cont_total, np.nan)
                if e.n_cont:
                    full[e.n_cont_total - e.n_cont :] = lp
                results[e.index] = TokenLogprobs(
                    logprobs=full,
                    token_ids=e.cont_ids,
                    offsets=e.offsets,
                    context_tokens=len(e.ids) - e.n_cont,
                    truncated_tokens=e.truncated,
                )
            if on_batch is not None:
                on_batch(len(batch))
        return [r for r in results if r is not None]

    def padded_batch(self, batch: list[_Encoded]) -> tuple[Any, Any, Any]:
        """(input_ids, attention_mask, position_ids), left padded: every row ends at the same
        column, so the continuation tokens of all rows sit in the last columns."""
        torch = self._torch
        width = max(len(e.ids) for e in batch)
        ids = torch.full((len(batch), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for r, e in enumerate(batch):
            if e.ids:
                ids[r, width - len(e.ids) :] = torch.tensor(e.ids, dtype=torch.long)
                mask[r, width - len(e.ids) :] = 1
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        return ids.to(self.device), mask.to(self.device), pos.to(self.device)

    def _forward(self, batch: list[_Encoded]) -> list[np.ndarray]:
        """Log-probs of the scorable continuation tokens of each row. The token at column j is
        predicted by the logits at column j-1; the first column of a row predicts nothing."""
        torch = self._torch
        # a continuation token is scorable when some kept token precedes it
        need = [min(e.n_cont, len(e.ids) - 1) for e in batch]
        keep = max(need)
        if keep == 0:
            return [np.zeros(0) for _ in batch]
        ids, mask, pos = self.padded_batch(batch)
        width = ids.shape[1]
        with torch.inference_mode():
            logits = self._logits(
                ids, mask, pos, keep + 1
            )  # [B, keep+1, V] ends at the last column
            # logits[:, k] sits at column width-keep-1+k and predicts column width-keep+k
            logits = logits[:, :keep]
            targets = ids[:, width - keep :]
            lp = self._gather_logprobs(logits, targets)
        out = []
        lp_np = lp.double().cpu().numpy()
        for r, e in enumerate(batch):
            row = np.full(e.n_cont, np.nan)
            n = need[r]
            if n:
                row[e.n_cont - n :] = lp_np[r, keep - n :]
            out.append(row)
        return out

    def _logits(self, ids: Any, mask: Any, pos: Any, keep: int) -> Any:
        if self._supports_keep:
            try:
                out = self.model(
                    input_ids=ids, attention_mask=mask, position_ids=pos, logits_to_keep=keep
                )
                logits = out.logits
                if logits.shape[1] >= keep:
                    return logits[:, -keep:]
            except TypeError:  # an older or custom model without logits_to_keep
                self._supports_keep = False
        out = self.model(input_ids=ids, attention_mask=mask, position_ids=pos)
        return out.logits[:, -keep:]

    def _gather_logprobs(self, logits: Any, targets: Any) -> Any:
        """log_softmax(logits)[target] in float32, a few rows at a time to bound memory."""
        torch = self._torch
        b, k, v = logits.shape
        flat = logits.reshape(b * k, v)
        tgt = targets.reshape(b * k)
        step = max(1, _SOFTMAX_CHUNK_FLOATS // max(1, v))
        parts = []
        for i in range(0, b * k, step):
            chunk = flat[i : i + step].float()
            picked = chunk.gather(1, tgt[i : i + step, None])[:, 0]
            parts.append(picked - torch.logsumexp(chunk, dim=-1))
        return torch.cat(parts).reshape(b, k)


def perplexity(nll: float | None) -> float | None:
    """exp(mean NLL), guarded against overflow (a degenerate model can give huge NLLs)."""
    if nll is None:
        return None
    return math.exp(nll) if nll < 700 else math.inf
