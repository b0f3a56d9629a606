"""Benchmark presets: how to read each benchmark's file and where it usually lives.

A preset names an import preset or column map (the importer reads the file), the source and split
recorded on the prompts, and a path relative to a data folder (`--data-dir`, else
$TRACEKIT_BENCH_DIR). tracekit ships no benchmark data: the files are the user's (the tests use
the public copies in ../shared/data, whose layout these relative paths follow).

`--benchmark` accepts PRESET (file found under the data folder), PRESET=FILE, or FILE (a JSONL
with `problem` and `answer` fields, named after the file).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from tracekit.errors import ConfigError


@dataclass(frozen=True)
class Benchmark:
    name: str
    relpath: str
    description: str
    preset: str | None = None  # an importer preset
    map: dict[str, str] = field(default_factory=dict)  # or a column map
    path: str | None = None  # resolved file

    def import_kwargs(self) -> dict[str, object]:
        kw: dict[str, object] = {"path": self.path, "source": self.name, "split": "test"}
        if self.preset:
            kw["preset"] = self.preset
        if self.map:
            kw["map"] = dict(self.map)
        return kw


PRESETS: dict[str, Benchmark] = {
    b.name: b
    for b in [
        Benchmark("math500", "math500/test.jsonl", "MATH-500 (problem, answer)", preset="math"),
        Benchmark(
            "gsm8k", "gsm8k/test.jsonl", "GSM8K test (question, answer after ####)", preset="gsm8k"
        ),
        Benchmark(
            "aime24",
            "competition/qwen25_math/aime24_test.jsonl",
            "AIME 2024 (problem, answer)",
            map={"problem": "problem", "reference": "answer", "id": "id"},
        ),
        Benchmark(
            "aime25",
            "competition/qwq/aime25.jsonl",
            "AIME 2025 (prompt, answer)",
            map={"problem": "prompt", "reference": "answer"},
        ),
        Benchmark(
            "amc23",
            "competition/qwen25_math/amc23_test.jsonl",
            "AMC 2023 (problem, answer)",
            map={"problem": "problem", "reference": "answer", "id": "id"},
        ),
    ]
}
ALIASES = {
    "math-500": "math500",
    "gsm8k-test": "gsm8k",
    "aime2024": "aime24",
    "aime2025": "aime25",
    "amc": "amc23",
}


def data_dir(explicit: str | None) -> Path | None:
    d = explicit or os.environ.get("TRACEKIT_BENCH_DIR")
    return Path(d) if d else None


def resolve_benchmark(spec: str, data_folder: str | None = None) -> Benchmark:
    """PRESET | PRESET=FILE | FILE -> a Benchmark with its file path checked."""
    name, _, file = spec.partition("=")
    key = ALIASES.get(name.lower(), name.lower())
    if file:
        if key not in PRESETS:
            raise ConfigError(
                f"--benchmark {spec!r}: unknown preset {name!r} (known: {', '.join(PRESETS)})"
            )
        bench = replace(PRESETS[key], path=file)
    elif key in PRESETS:
        folder = data_dir(data_folder)
        if folder is None:
            raise ConfigError(
                f"--benchmark {name}: where is its file? Pass --data-dir (a folder with"
                f" {PRESETS[key].relpath}), set TRACEKIT_BENCH_DIR, or use {name}=FILE"
            )
        bench = replace(PRESETS[key], path=str(folder / PRESETS[key].relpath))
    else:
        p = Path(spec)
        if not p.exists():
            raise ConfigError(
                f"--benchmark {spec!r} is neither a preset ({', '.join(PRESETS)}) nor an existing file"
            )
        bench = Benchmark(
            p.name.split(".")[0],
            "",
            f"file {p}",
            map={"problem": "problem", "reference": "answer"},
            path=str(p),
        )
    if not Path(bench.path or "").exists():
        raise ConfigError(f"benchmark {bench.name}: no file at {bench.path}")
    return bench
