"""Benchmark sets to decontaminate against, read from files the user points at.

A SPEC names one benchmark:
  math500 | gsm8k | aime24 | aime25 | amc23   a preset: a known file under the benchmark folder
                                              (--bench-dir, else $TRACEKIT_BENCH_DIR, else
                                              ../shared/data or ./shared/data)
  NAME=PATH                                   a .jsonl / .json / .parquet file, named NAME
  PATH                                        the same, named after the file's stem
  hf:DATASET_ID[@SPLIT]                       a Hugging Face dataset (split default `test`)

The problem text is the first field present among problem, question, prompt, input, text; the item
reference is the first among unique_id, id, idx (else the 1-based line number). Presets strip the
evaluation instruction some files append to every item (it would match every prompt that carries
the same instruction).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tracekit.errors import ConfigError, InputError

TEXT_FIELDS = ("problem", "question", "prompt", "input", "text")
REF_FIELDS = ("unique_id", "id", "idx")
INSTRUCTIONS = (
    "Please reason step by step, and put your final answer within \\boxed{}.",
    "Let's think step by step and output the final answer within \\boxed{}.",
)


@dataclass(frozen=True)
class Preset:
    path: str  # relative to the benchmark folder
    description: str


PRESETS: dict[str, Preset] = {
    "math500": Preset("math500/test.jsonl", "MATH-500 test (500 problems, PRM800K split)"),
    "gsm8k": Preset("gsm8k/test.jsonl", "GSM8K test (1,319 problems)"),
    "aime24": Preset("competition/qwen25_math/aime24_test.jsonl", "AIME 2024 (30 problems)"),
    "aime25": Preset("competition/qwq/aime25.jsonl", "AIME 2025 (30 problems)"),
    "amc23": Preset("competition/qwen25_math/amc23_test.jsonl", "AMC 2023 (40 problems)"),
}
DEFAULT_BENCHMARKS = list(PRESETS)


@dataclass
class Benchmark:
    name: str
    source: str
    refs: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.texts)


def bench_dir(explicit: str | Path | None = None) -> Path:
    """Where presets live: the option, the environment, else a shared/data folder nearby."""
    if explicit:
        return Path(explicit)
    env = os.environ.get("TRACEKIT_BENCH_DIR")
    if env:
        return Path(env)
    for cand in (Path("..") / "shared" / "data", Path("shared") / "data"):
        if (cand / PRESETS["math500"].path).exists():
            return cand
    raise ConfigError(
        "benchmark presets need their files: pass --bench-dir DIR (the folder holding"
        " math500/test.jsonl, gsm8k/test.jsonl, competition/...) or set TRACEKIT_BENCH_DIR,"
        " or name files directly as NAME=PATH"
    )


def strip_instruction(text: str) -> str:
    t = text.rstrip()
    for ins in INSTRUCTIONS:
        if t.endswith(ins):
            return t[: -len(ins)].rstrip()
    return text


def _records(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """(line number, record) pairs; a .json file is one array, line numbers are 1-based indices."""
    if not path.exists():
        raise InputError("benchmark file not found", path=path)
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        return list(enumerate(pq.read_table(path).to_pylist(), start=1))
    if suffix == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise InputError(f"not valid JSON: {e.msg}", path=path, line=e.lineno) from None
        if not isinstance(data, list):
            raise InputError("expected a JSON array of records", path=path)
        return list(enumerate(data, start=1))
    out: list[tuple[int, dict[str, Any]]] = []
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                out.append((n, json.loads(line)))
            except json.JSONDecodeError as e:
                raise InputError(f"not valid JSON: {e.msg}", path=path, line=n) from None
    return out


def from_records(name: str, source: str, records: list[tuple[int, dict[str, Any]]]) -> Benchmark:
    bench = Benchmark(name=name, source=source)
    for n, rec in records:
        if not isinstance(rec, dict):
            raise InputError("expected an object", path=source, line=n)
        key = next((k for k in TEXT_FIELDS if isinstance(rec.get(k), str)), None)
        if key is None:
            raise InputError(
                f"no problem text (looked for {', '.join(TEXT_FIELDS)})", path=source, line=n
            )
        ref_key = next((k for k in REF_FIELDS if rec.get(k) is not None), None)
        bench.refs.append(str(rec[ref_key]) if ref_key else f"line {n}")
        bench.texts.append(strip_instruction(rec[key]))
    if not bench.texts:
        raise InputError("benchmark file has no records", path=source)
    return bench


def load_benchmark(spec: str, data_dir: str | Path | None = None) -> Benchmark:
    spec = spec.strip()
    if spec in PRESETS:
        path = bench_dir(data_dir) / PRESETS[spec].path
        return from_records(spec, str(path), _records(path))
    if spec.startswith("hf:"):
        return _load_hf(spec)
    name, sep, rest = spec.partition("=")
    if sep:
        path = Path(rest)
    else:
        path, name = Path(spec), Path(spec).stem
        if not path.exists():
            known = ", ".join(PRESETS)
            raise ConfigError(f"unknown benchmark {spec!r}: a preset ({known}), NAME=PATH or hf:ID")
    if not name or ":" in name:
        raise ConfigError(f"benchmark name {name!r} must be non-empty and contain no ':'")
    return from_records(name, str(path), _records(path))


def _load_hf(spec: str) -> Benchmark:
    ident, _, split = spec[3:].partition("@")
    try:
        import datasets

        ds = datasets.load_dataset(ident, split=split or "test")
    except Exception as e:  # offline, unknown id, no such split: all user-fixable
        raise ConfigError(f"cannot load benchmark {spec!r}: {type(e).__name__}: {e}") from None
    name = ident.rsplit("/", 1)[-1].lower()
    return from_records(name, spec, list(enumerate(ds, start=1)))
