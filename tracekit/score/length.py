"""Length signals: how much a trace thinks before it answers.

Characters and tokens of the reasoning and of the answer, counted separately, and their ratio: a
long reasoning behind a short answer is the overthinking signal, and token counts in the
student's tokenizer are what a training run actually pays for.

Scores written per trace (`scores.name`):
  length:reasoning_chars, length:answer_chars      characters
  length:reasoning_tokens, length:answer_tokens    tokens in the named tokenizer (no special tokens)
  length:ratio                                     reasoning_tokens / max(answer_tokens, 1)
                                                   (characters when tokenizer = "none")
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tracekit.errors import ConfigError, TracekitError
from tracekit.progress import progress
from tracekit.score.filters_common import (
    batched,
    fetch_traces,
    replace_scores,
    selected_trace_ids,
    trace_parts,
)
from tracekit.store import RunResult, Store

STAGE = "score.length"
NAMES = (
    "length:reasoning_chars",
    "length:answer_chars",
    "length:reasoning_tokens",
    "length:answer_tokens",
    "length:ratio",
)
CHAR_NAMES = NAMES[:2] + NAMES[4:]


class LengthConfig(BaseModel):
    """`tokenizer`: a model SPEC whose tokenizer counts tokens (`default` is the embedded
    SmolLM2 student, `hf:PATH_OR_ID` or a folder any other), or `none` for characters only."""

    model_config = ConfigDict(extra="forbid")

    tokenizer: str = "default"
    where: str | None = None
    batch_size: int = Field(256, ge=1)
    recompute: bool = False


class TokenCounter:
    """Counts tokens without special tokens. A folder with a tokenizer.json is read with the
    `tokenizers` library directly (the same ids as transformers' fast tokenizer, without
    importing torch: about 0.5 s instead of 10-20 s); anything else goes through AutoTokenizer."""

    def __init__(self, spec: str) -> None:
        from tracekit.models import parse_spec, resolve_local_path

        ms = parse_spec(spec)
        if ms.backend != "hf":
            raise ConfigError(
                f"tokenizer {spec!r} must be a transformers SPEC (default, hf:PATH, PATH)"
            )
        path = resolve_local_path(ms)
        if path.startswith(("/", "./", "../", "~")) and not Path(path).expanduser().exists():
            raise TracekitError(f"cannot load tokenizer {spec!r}: folder {path} does not exist")
        self.spec = spec
        self._fast: Any = None
        self._hf: Any = None
        if (Path(path) / "tokenizer.json").is_file():
            from tokenizers import Tokenizer

            self._fast = Tokenizer.from_file(str(Path(path) / "tokenizer.json"))
            return
        from transformers import AutoTokenizer

        try:
            self._hf = AutoTokenizer.from_pretrained(path)
        except (OSError, ValueError) as e:
            where = "folder" if Path(path).exists() else "model id (offline or unknown?)"
            raise TracekitError(
                f"cannot load tokenizer {spec!r} from {where} {path}: {e}"
            ) from None

    def count(self, texts: list[str]) -> list[int]:
        if not texts:
            return []
        if self._fast is not None:
            return [len(e.ids) for e in self._fast.encode_batch(texts, add_special_tokens=False)]
        enc = self._hf(texts, add_special_tokens=False, return_attention_mask=False)["input_ids"]
        return [len(ids) for ids in enc]


@lru_cache(maxsize=4)
def load_tokenizer(spec: str) -> TokenCounter:
    """Only the tokenizer, never the weights: counting tokens must not cost a model load."""
    return TokenCounter(spec)


def count_tokens(tok: TokenCounter, texts: list[str]) -> list[int]:
    return tok.count(texts)


def run_length(store: Store, cfg: LengthConfig) -> RunResult:
    with_tokens = cfg.tokenizer.lower() != "none"
    tok = load_tokenizer(cfg.tokenizer) if with_tokens else None
    marker = NAMES[4]
    ids = selected_trace_ids(
        store,
        cfg.where,
        done_score=None if cfg.recompute else marker,
        done_detail=("tokenizer", cfg.tokenizer),
    )
    names = NAMES if with_tokens else CHAR_NAMES
    with store.run(STAGE, cfg) as run:
        if not cfg.recompute:
            run.add("skipped_done", store.count("v_traces", cfg.where) - len(ids))
        with progress("length", len(ids), unit="traces") as bar:
            for batch in batched(ids, cfg.batch_size):
                rows = fetch_traces(store, batch, "t.trace_id, t.text, t.reasoning, t.answer_text")
                parts = [trace_parts(text, r, a) for _, text, r, a in rows]
                if tok is not None:
                    r_tok = count_tokens(tok, [p[0] for p in parts])
                    a_tok = count_tokens(tok, [p[1] for p in parts])
                out: list[dict[str, Any]] = []
                detail = {"tokenizer": cfg.tokenizer}
                for i, ((tid, *_), (reasoning, answer)) in enumerate(zip(rows, parts, strict=True)):
                    vals = {
                        "length:reasoning_chars": len(reasoning),
                        "length:answer_chars": len(answer),
                    }
                    if tok is not None:
                        vals["length:reasoning_tokens"] = r_tok[i]
                        vals["length:answer_tokens"] = a_tok[i]
                        vals["length:ratio"] = r_tok[i] / max(a_tok[i], 1)
                    else:
                        vals["length:ratio"] = len(reasoning) / max(len(answer), 1)
                    out += [
                        {"trace_id": tid, "name": k, "value": float(v), "detail": detail}
                        for k, v in vals.items()
                    ]
                with store.transaction():
                    replace_scores(store, out, names, run.run_id)
                run.add("traces", len(rows))
                bar.advance(len(rows))
    return run.result
