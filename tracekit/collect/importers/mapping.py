"""From a raw record to the canonical fields of an import, through a user's column map.

Map values are dotted paths (`6b_finetuning.solution`); a string that holds a JSON object or a
Python dict literal is parsed on the way down (the GSM8K model-solutions file stores its columns
that way). Several comma-separated paths make a list (one trace per path).
"""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass, field
from typing import Any

CANONICAL_FIELDS = {
    "problem": "the problem text (required)",
    "reference": "the reference answer (string or number)",
    "completion": "a completion (string) or a list of them: one trace per element",
    "label": "correctness of each completion: bool, 0/1, or a list aligned with completion",
    "reasoning": "a separate reasoning field (string or list aligned with completion)",
    "finish_reason": "stop/length per completion (string or list)",
    "teacher": "a column naming the model that wrote the completions",
    "id": "a stable record id (else the line/row number)",
    "domain": "math, code, ... (default math)",
    "split": "train/test/... for the prompt",
}

_MISSING = object()


class FieldError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass
class Canonical:
    problem: str
    reference: str | None = None
    completions: list[str] | None = None
    labels: list[bool | None] | None = None
    reasonings: list[str | None] | None = None
    finish_reasons: list[str | None] | None = None
    teachers: list[str | None] | None = None
    source_ref: str | None = None
    domain: str | None = None
    split: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


def _parse_embedded(value: str) -> Any:
    s = value.strip()
    if not s or s[0] not in "{[":
        return _MISSING
    try:
        return json.loads(s)
    except ValueError:
        pass
    try:
        return ast.literal_eval(s)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return _MISSING


def get_path(record: dict[str, Any], path: str) -> Any:
    """Follow a dotted path; returns _MISSING when a step is absent."""
    if path in record:
        return record[path]
    value: Any = record
    for part in path.split("."):
        if isinstance(value, str):
            value = _parse_embedded(value)
        if isinstance(value, dict):
            value = value.get(part, _MISSING)
        elif isinstance(value, list) and part.lstrip("-").isdigit():
            i = int(part)
            value = value[i] if -len(value) <= i < len(value) else _MISSING
        else:
            return _MISSING
        if value is _MISSING:
            return _MISSING
    return value


def resolve(record: dict[str, Any], spec: str, name: str, required: bool = False) -> Any:
    paths = [p.strip() for p in spec.split(",")] if "," in spec else [spec]
    values = [get_path(record, p) for p in paths]
    for p, v in zip(paths, values, strict=False):
        if v is _MISSING:
            if required or len(paths) > 1:
                raise FieldError(name, f"missing (mapped from '{p}')")
            return None
    return values if len(paths) > 1 else values[0]


def as_text(value: Any, name: str, allow_number: bool = False) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if allow_number and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise FieldError(name, f"expected a string, got {type(value).__name__}")


def as_text_list(value: Any, name: str) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)):
        out = []
        for i, v in enumerate(value):
            if not isinstance(v, str):
                raise FieldError(name, f"element {i}: expected a string, got {type(v).__name__}")
            out.append(v)
        return out
    raise FieldError(name, f"expected a string or a list of strings, got {type(value).__name__}")


_TRUE = {"true", "1", "yes", "correct", "y", "t"}
_FALSE = {"false", "0", "no", "incorrect", "n", "f"}


def as_bool(value: Any, name: str) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise FieldError(name, f"expected a boolean label, got {value!r:.60}")


def aligned(value: Any, n: int, name: str, convert) -> list | None:
    """A per-completion value: a list of n, or a scalar that applies when n == 1."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise FieldError(name, f"has {len(value)} values but completion has {n}")
        return [convert(v, name) for v in value]
    if n != 1:
        raise FieldError(name, f"is a single value but completion has {n} elements")
    return [convert(value, name)]


def _opt_text(v: Any, name: str) -> str | None:
    return as_text(v, name)


def canonicalize(record: dict[str, Any], column_map: dict[str, str]) -> Canonical:
    """Apply a column map. Unmapped short scalar fields are kept as prompt metadata."""
    problem = as_text(resolve(record, column_map["problem"], "problem", required=True), "problem")
    if problem is None or not problem.strip():
        raise FieldError("problem", "is empty")
    c = Canonical(problem=problem)
    if "reference" in column_map:
        c.reference = as_text(
            resolve(record, column_map["reference"], "reference"), "reference", True
        )
    if "completion" in column_map:
        c.completions = as_text_list(
            resolve(record, column_map["completion"], "completion", True), "completion"
        )
        n = len(c.completions or [])
        for key, conv, attr in (
            ("label", as_bool, "labels"),
            ("reasoning", _opt_text, "reasonings"),
            ("finish_reason", _opt_text, "finish_reasons"),
            ("teacher", _opt_text, "teachers"),
        ):
            if key in column_map:
                setattr(c, attr, aligned(resolve(record, column_map[key], key), n, key, conv))
    if "id" in column_map:
        ref = resolve(record, column_map["id"], "id")
        c.source_ref = None if ref is None else str(ref)
    for key in ("domain", "split"):
        if key in column_map:
            setattr(c, key, as_text(resolve(record, column_map[key], key), key))
    used = {p.split(".")[0] for spec in column_map.values() for p in spec.split(",")}
    for k, v in record.items():
        if k in used:
            continue
        if isinstance(v, (int, float, bool)) or (isinstance(v, str) and len(v) <= 200):
            c.meta[k] = v
    return c
