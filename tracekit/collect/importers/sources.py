"""Readers that turn an input (JSONL, JSON array, Parquet, a Hugging Face dataset) into numbered
records. Each record carries its 1-based line (JSONL) or row number, so errors can name it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tracekit.errors import InputError, TracekitError

# a record, or the InputError that reading it raised (so --skip-bad can skip it and go on)
Record = tuple[int, "dict[str, Any] | InputError"]


def detect_format(path: str) -> str:
    p = Path(path)
    if p.is_dir():
        return "hf-disk"
    if not p.exists():
        if "/" in path and not path.startswith((".", "/", "~")) and not p.suffix:
            return "hf"
        raise TracekitError(f"{path}: no such file (nor a Hugging Face dataset id ORG/NAME)")
    suffixes = "".join(p.suffixes).lower()
    if suffixes.endswith((".jsonl", ".jsonl.gz", ".ndjson")):
        return "jsonl"
    if suffixes.endswith(".json"):
        # a JSON array, or JSON lines saved with a .json name: peek at the first character
        with p.open("rb") as f:
            head = f.read(4096).lstrip()
        return "json" if head.startswith(b"[") else "jsonl"
    if suffixes.endswith(".parquet"):
        return "parquet"
    raise TracekitError(
        f"{path}: unknown format (use .jsonl, .json, .parquet, a folder or --format)"
    )


def iter_jsonl(path: str) -> Iterator[Record]:
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            if not raw.strip():
                continue
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                yield (
                    lineno,
                    InputError(
                        f"not valid UTF-8 ({e.reason} at byte {e.start})", path=path, line=lineno
                    ),
                )
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                yield (
                    lineno,
                    InputError(
                        f"invalid JSON ({e.msg} at column {e.colno})", path=path, line=lineno
                    ),
                )
                continue
            if not isinstance(rec, dict):
                yield (
                    lineno,
                    InputError(
                        f"expected a JSON object, got {type(rec).__name__}", path=path, line=lineno
                    ),
                )
                continue
            yield lineno, rec


def iter_json_array(path: str) -> Iterator[Record]:
    try:
        data = json.loads(Path(path).read_bytes().decode("utf-8"))
    except UnicodeDecodeError as e:
        raise InputError(f"not valid UTF-8 ({e.reason} at byte {e.start})", path=path) from None
    except json.JSONDecodeError as e:
        raise InputError(
            f"invalid JSON ({e.msg} at column {e.colno})", path=path, line=e.lineno
        ) from None
    if not isinstance(data, list):
        raise InputError("expected a JSON array of objects", path=path)
    for i, rec in enumerate(data, start=1):
        if not isinstance(rec, dict):
            yield (
                i,
                InputError(f"element {i}: expected an object, got {type(rec).__name__}", path=path),
            )
            continue
        yield i, rec


def iter_parquet(path: str, batch_rows: int = 4096) -> Iterator[Record]:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except Exception as e:
        raise InputError(f"not a readable Parquet file ({e})", path=path) from None
    row = 0
    for batch in pf.iter_batches(batch_size=batch_rows):
        for rec in batch.to_pylist():
            row += 1
            yield row, rec


def iter_hf(path: str, fmt: str, split: str | None) -> Iterator[Record]:
    import datasets

    try:
        if fmt == "hf-disk":
            ds = datasets.load_from_disk(path)
        else:
            ds = datasets.load_dataset(path, split=split or "train")
    except Exception as e:
        raise TracekitError(f"{path}: cannot load Hugging Face dataset ({e})") from None
    if isinstance(ds, datasets.DatasetDict):
        key = split or ("train" if "train" in ds else next(iter(ds)))
        if key not in ds:
            raise TracekitError(f"{path}: no split {key!r} (has {', '.join(ds)})")
        ds = ds[key]
    yield from enumerate(ds, start=1)


def iter_records(path: str, fmt: str = "auto", hf_split: str | None = None) -> Iterator[Record]:
    fmt = detect_format(path) if fmt == "auto" else fmt
    if fmt == "jsonl":
        return iter_jsonl(path)
    if fmt == "json":
        return iter_json_array(path)
    if fmt == "parquet":
        return iter_parquet(path)
    if fmt in ("hf", "hf-disk"):
        return iter_hf(path, fmt, hf_split)
    raise TracekitError(f"unknown format {fmt!r} (auto, jsonl, json, parquet, hf, hf-disk)")
