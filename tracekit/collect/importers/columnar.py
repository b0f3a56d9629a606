"""The columnar fast path: a Parquet batch goes from the file to DuckDB as Arrow.

The record path turns every row into a Python dict, and for a Parquet file of long traces that
costs more than DuckDB takes to store them. With a plain column map (top-level columns whose
Arrow types the record path accepts) only the short key columns (problem, id, teacher) become
Python values, to compute the content ids; the text columns stay Arrow buffers until DuckDB
copies them. Any batch this path cannot vouch for (nulls where the record path would complain,
misaligned lists, other types) returns None and goes through the record path, which then stores
the same rows or raises the exact error with the row and field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tracekit.collect.importers.mapping import CANONICAL_FIELDS
from tracekit.store.ids import imported_trace_id, prompt_id

# fields aligned with the completions, and the Arrow value type each must have
_ALIGNED = {"label": pa.bool_(), "reasoning": pa.string(), "finish_reason": pa.string()}
_ALIGNED_TEACHER = {"teacher": pa.string()}


# the long text columns; in direct mode DuckDB reads them from the file itself
TEXT_FIELDS = ("completion", "reasoning")


@dataclass
class ColumnarPlan:
    columns: dict[str, str]  # canonical field -> column name
    meta_columns: list[str]  # unmapped scalar columns that the record path keeps as prompt meta
    # one string completion per row and no nulls in it (Parquet statistics): DuckDB reads the
    # text columns straight from the file, joined to the ids by row number, so the long text
    # never passes through Python or Arrow at all
    direct: bool = False

    def python_columns(self) -> list[str] | None:
        """The columns Python reads (None: all of them)."""
        if not self.direct:
            return None
        skip = {self.columns[f] for f in TEXT_FIELDS if f in self.columns}
        return list(
            dict.fromkeys(c for c in [*self.columns.values(), *self.meta_columns] if c not in skip)
        )


def _no_nulls(meta: Any, column: str) -> bool:
    """True when every row group's statistics say `column` has no nulls."""
    schema = meta.schema.to_arrow_schema()
    idx = [i for i in range(meta.num_columns) if meta.schema.column(i).path == column]
    if len(idx) != 1 or column not in schema.names:
        return False
    for g in range(meta.num_row_groups):
        stats = meta.row_group(g).column(idx[0]).statistics
        if stats is None or not stats.has_null_count or stats.null_count:
            return False
    return True


@dataclass
class BatchTables:
    records: int
    prompts: pa.Table
    traces: pa.Table | None
    verdicts: pa.Table | None


def _is_string(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t)


def _is_list(t: pa.DataType) -> bool:
    return pa.types.is_list(t) or pa.types.is_large_list(t)


def _value_ok(t: pa.DataType, want: pa.DataType) -> bool:
    return _is_string(t) if pa.types.is_string(want) else t == want


def plan_columnar(
    column_map: dict[str, str], schema: pa.Schema, has_transform: bool, metadata: Any = None
) -> ColumnarPlan | None:
    """A plan when every mapped field is a top-level column of an accepted type, else None."""
    if has_transform:
        return None
    names = set(schema.names)
    for field, spec in column_map.items():
        if field not in CANONICAL_FIELDS or "," in spec or spec not in names:
            return None
    types = {f: schema.field(c).type for f, c in column_map.items()}
    if not _is_string(types["problem"]):
        return None
    for f in ("reference", "id"):
        if f in types and not (_is_string(types[f]) or pa.types.is_integer(types[f])):
            return None
    for f in ("domain", "split"):
        if f in types and not _is_string(types[f]):
            return None
    comp = types.get("completion")
    aligned = {**_ALIGNED, **_ALIGNED_TEACHER}
    if comp is None:
        if any(f in types for f in aligned):
            return None
    elif _is_string(comp):
        if any(f in types and not _value_ok(types[f], want) for f, want in aligned.items()):
            return None
    elif _is_list(comp) and _is_string(comp.value_type):
        for f, want in aligned.items():
            if f in types and not (_is_list(types[f]) and _value_ok(types[f].value_type, want)):
                return None
    else:
        return None
    used = {spec.split(".")[0] for spec in column_map.values()}
    meta = [
        f.name
        for f in schema
        if f.name not in used
        and (
            _is_string(f.type)
            or pa.types.is_integer(f.type)
            or pa.types.is_floating(f.type)
            or pa.types.is_boolean(f.type)
        )
    ]
    direct = (
        comp is not None
        and _is_string(comp)
        and metadata is not None
        and _no_nulls(metadata, column_map["completion"])
    )
    return ColumnarPlan(dict(column_map), meta, direct)


def _to_str_list(arr: pa.Array) -> list[str | None]:
    return (arr if _is_string(arr.type) else pc.cast(arr, pa.string())).to_pylist()


def build_tables(
    rb: pa.RecordBatch,
    first_row: int,
    plan: ColumnarPlan,
    *,
    source: str,
    teacher: str,
    domain: str,
    split: str | None,
    label_verifier: str,
    run_id: str,
) -> BatchTables | None:
    """The prompt, trace and verdict rows of one batch, or None to use the record path."""
    n = rb.num_rows
    col = {
        f: rb.column(c)
        for f, c in plan.columns.items()
        if not (plan.direct and f in TEXT_FIELDS)  # those are read by DuckDB
    }
    problem = col["problem"]
    if (
        problem.null_count
        or pc.any(pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(problem)), 0)).as_py()
    ):
        return None
    problems = problem.to_pylist()
    if any(not p.strip() for p in problems):  # Unicode whitespace the Arrow trim does not know
        return None
    pids = [prompt_id(p) for p in problems]
    rows = range(first_row, first_row + n)
    if "id" in col:
        ids = _to_str_list(col["id"])
        refs = [i if i is not None else str(r) for i, r in zip(ids, rows, strict=True)]
    else:
        refs = [str(r) for r in rows]

    # prompts: the first row of each prompt in the batch
    first: dict[str, int] = {}
    for i, pid in enumerate(pids):
        first.setdefault(pid, i)
    take = pa.array(list(first.values()), pa.int64())
    reference = _to_str_list(col["reference"].take(take)) if "reference" in col else None
    doms = col["domain"].take(take).to_pylist() if "domain" in col else None
    splits = col["split"].take(take).to_pylist() if "split" in col else None
    k = len(first)
    prompts = pa.table(
        {
            "prompt_id": list(first),
            "source": [source] * k,
            "source_ref": [refs[i] for i in first.values()],
            "problem": problem.take(take),
            "reference_answer": pa.array(
                reference if reference is not None else [None] * k, pa.string()
            ),
            "domain": [(d or domain) for d in doms] if doms else [domain] * k,
            "split": pa.array(
                [(s or split) for s in splits] if splits else [split] * k, pa.string()
            ),
            "meta": pa.array(_meta(rb, plan.meta_columns, take), pa.string()),
            "run_id": [run_id] * k,
        }
    )
    if "completion" not in plan.columns:
        return BatchTables(n, prompts, None, None)

    comp = col.get("completion")
    if plan.direct:  # the text stays in the file: one trace per row, located by its row number
        texts = pa.array(np.arange(first_row - 1, first_row - 1 + n), pa.int64())
        parent = np.arange(n)
        sample_index = np.zeros(n, dtype=np.int64)
        aligned = {f: col[f] for f in ("label", "finish_reason", "teacher") if f in col}
    elif comp.null_count:
        return None
    elif _is_list(comp.type):
        texts = comp.flatten()
        if texts.null_count:
            return None
        lengths = pc.list_value_length(comp).to_numpy(zero_copy_only=False)
        parent = pc.list_parent_indices(comp).to_numpy(zero_copy_only=False)
        starts = np.cumsum(lengths) - lengths
        sample_index = np.arange(len(texts)) - starts[parent]
        aligned: dict[str, pa.Array] = {}
        for f in ("label", "reasoning", "finish_reason", "teacher"):
            if f not in col:
                continue
            a = col[f]
            if a.null_count or not np.array_equal(
                pc.list_value_length(a).to_numpy(zero_copy_only=False), lengths
            ):
                return None
            aligned[f] = a.flatten()
    else:
        texts = comp
        parent = np.arange(n)
        sample_index = np.zeros(n, dtype=np.int64)
        aligned = {
            f: col[f] for f in ("label", "reasoning", "finish_reason", "teacher") if f in col
        }

    m = len(texts)
    whos = (
        [w or teacher for w in aligned["teacher"].to_pylist()]
        if "teacher" in aligned
        else [teacher] * m
    )
    parents = parent.tolist()
    sidx = sample_index.tolist()
    tids = [
        imported_trace_id(pids[p], w, source, refs[p], s)
        for p, w, s in zip(parents, whos, sidx, strict=True)
    ]
    null = pa.nulls(m, pa.string())
    if len(set(tids)) < m:  # the columnar insert checks ids against the store only
        return None
    traces = pa.table(
        {
            "trace_id": tids,
            "prompt_id": [pids[p] for p in parents],
            "teacher": whos,
            "sample_index": pa.array(sidx, pa.int32()),
            **({"file_row": texts} if plan.direct else {"text": texts}),
            **({} if plan.direct else {"rfield": aligned.get("reasoning", null)}),
            "finish_reason": aligned.get("finish_reason", null),
            "meta": null,
        }
    )
    verdicts = None
    if "label" in aligned:
        labels = aligned["label"]
        keep = pc.is_valid(labels)
        v_ids = pa.array(tids, pa.string()).filter(keep)
        j = len(v_ids)
        detail = json.dumps({"from": "imported label", "source": source})
        verdicts = pa.table(
            {
                "trace_id": v_ids,
                "verifier": [label_verifier] * j,
                "verifier_version": [source] * j,
                "correct": labels.filter(keep),
                "extracted": pa.nulls(j, pa.string()),
                "status": ["ok"] * j,
                "detail": [detail] * j,
                "run_id": [run_id] * j,
            }
        )
    return BatchTables(n, prompts, traces, verdicts)


def _meta(rb: pa.RecordBatch, columns: list[str], take: pa.Array) -> list[str | None]:
    """Prompt meta as the record path builds it: short scalars of the unmapped columns, in column
    order; strings over 200 characters are left out (and never become Python strings)."""
    if not columns:
        return [None] * len(take)
    values: dict[str, list[Any]] = {}
    for name in columns:
        a = rb.column(name).take(take)
        if _is_string(a.type):
            a = pc.if_else(pc.greater(pc.utf8_length(a), 200), pa.scalar(None, a.type), a)
        values[name] = a.to_pylist()
    out: list[str | None] = []
    for i in range(len(take)):
        meta = {k: v[i] for k, v in values.items() if v[i] is not None}
        out.append(json.dumps(meta, default=str) if meta else None)
    return out
