"""Import existing trace or problem datasets into the store.

One engine, many inputs: a reader yields numbered records (sources.py), a column map or preset
turns each into canonical fields (mapping.py, presets.py), and batches are written in one
transaction each, the heavy text columns going through Arrow into DuckDB, where the reasoning /
answer split runs as SQL (no row-by-row Python inserts).

Atomicity: a malformed record stops the import and every row this run added is removed again
(rows are tagged with the run id), so the store is as it was; with `skip_bad` the record is
skipped and counted. Re-importing adds nothing: ids are content-addressed and inserts skip
existing keys. A killed import keeps its committed batches; re-running it adds the rest.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, field_validator

from tracekit.collect.importers.columnar import build_tables, plan_columnar
from tracekit.collect.importers.mapping import CANONICAL_FIELDS, Canonical, FieldError, canonicalize
from tracekit.collect.importers.presets import PRESETS
from tracekit.collect.importers.sources import detect_format, iter_records
from tracekit.errors import ConfigError, InputError
from tracekit.progress import progress
from tracekit.store import RunResult, Store
from tracekit.store.ids import imported_trace_id
from tracekit.store.ids import prompt_id as make_prompt_id
from tracekit.store.store import rows_table

__all__ = ["ImportConfig", "run_import", "PRESETS", "CANONICAL_FIELDS"]


class ImportConfig(BaseModel):
    """What to import and how its columns map onto prompts, traces and label verdicts."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(
        description="JSONL / JSON array / Parquet file, a save_to_disk folder, or an HF dataset id"
    )
    format: Literal["auto", "jsonl", "json", "parquet", "hf", "hf-disk"] = "auto"
    preset: str | None = Field(None, description="openr1, gsm8k, gsm8k-solutions, math, sharegpt")
    map: dict[str, str] = Field(default_factory=dict, description="canonical field -> column path")
    teacher: str | None = Field(None, description="the model that wrote the completions")
    source: str | None = Field(
        None, description="dataset name recorded on prompts (default: file name)"
    )
    split: str | None = Field(None, description="split recorded on prompts (train/test/...)")
    domain: str = "math"
    hf_split: str | None = Field(None, description="which split of an HF dataset to read")
    label_verifier: str = Field("source", description="verifier name for imported labels")
    skip_bad: bool = False
    batch_size: int | None = Field(
        None,
        ge=1,
        description="records per transaction (default: 4000, or ~256 MB of Parquet data)",
    )

    @field_validator("map")
    @classmethod
    def _known_fields(cls, v: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(v) - set(CANONICAL_FIELDS))
        if unknown:
            raise ValueError(f"unknown map field(s) {unknown}; known: {sorted(CANONICAL_FIELDS)}")
        return v

    @field_validator("preset")
    @classmethod
    def _known_preset(cls, v: str | None) -> str | None:
        if v is not None and v not in PRESETS:
            raise ValueError(f"unknown preset {v!r}; known: {sorted(PRESETS)}")
        return v

    def column_map(self) -> dict[str, str]:
        base = dict(PRESETS[self.preset].column_map) if self.preset else {"problem": "problem"}
        base.update(self.map)
        return base

    def source_name(self) -> str:
        if self.source:
            return self.source
        if self.preset and PRESETS[self.preset].source and self.preset not in ("math", "gsm8k"):
            return PRESETS[self.preset].source  # type: ignore[return-value]
        return (
            Path(self.path.rstrip("/")).name.split(".")[0]
            if Path(self.path).exists()
            else self.path
        )

    def teacher_name(self) -> str:
        if self.teacher:
            return self.teacher
        if self.preset and PRESETS[self.preset].teacher:
            return PRESETS[self.preset].teacher  # type: ignore[return-value]
        return "unknown"


_TRACE_SCHEMA = pa.schema(
    [
        ("trace_id", pa.string()),
        ("prompt_id", pa.string()),
        ("teacher", pa.string()),
        ("sample_index", pa.int32()),
        ("text", pa.string()),
        ("rfield", pa.string()),
        ("finish_reason", pa.string()),
        ("meta", pa.string()),
    ]
)


class _Batch:
    def __init__(self) -> None:
        self.prompts: dict[str, dict[str, Any]] = {}
        self.traces: dict[str, list[Any]] = {f.name: [] for f in _TRACE_SCHEMA}
        self.verdicts: list[dict[str, Any]] = []
        self.records = 0

    def __len__(self) -> int:
        return self.records


def run_import(store: Store, cfg: ImportConfig) -> RunResult:
    column_map = cfg.column_map()
    if "problem" not in column_map:
        raise ConfigError("the column map needs a problem field (--map problem=COLUMN)")
    preset = PRESETS[cfg.preset] if cfg.preset else None
    fmt = detect_format(cfg.path) if cfg.format == "auto" else cfg.format
    source = cfg.source_name()
    teacher = cfg.teacher_name()
    total = _count_hint(cfg.path, fmt)

    with store.run("import", cfg) as run:
        run.details.update({"source": source, "format": fmt})
        try:
            with progress(f"import {Path(cfg.path).name}", total, unit="records") as bar:
                plan, pf = _columnar_plan(cfg, fmt, column_map, preset)
                if plan is not None:
                    _import_columnar(
                        store, cfg, run, bar, pf, plan, column_map, preset, source, teacher
                    )
                else:
                    records = iter_records(cfg.path, fmt, cfg.hf_split)
                    _import_records(
                        store, cfg, run, bar, records, column_map, preset, source, teacher
                    )
        except (InputError, FieldError) as e:
            _undo(store, run.run_id)
            run.details["undone"] = True
            raise e
        except BaseException:
            # a crash or Ctrl-C: committed batches stay (a re-run skips them); nothing half-written
            raise
    return run.result


def _import_records(store, cfg, run, bar, records, column_map, preset, source, teacher) -> None:
    """The record path: any input, one Python dict per record, batches of cfg.batch_size."""
    batch = _Batch()
    for lineno, record in records:
        try:
            if isinstance(record, InputError):
                raise record
            if preset and preset.transform:
                record = preset.transform(record)
            canon = canonicalize(record, column_map)
        except (FieldError, InputError) as e:
            error = (
                e
                if isinstance(e, InputError)
                else InputError(str(e), path=cfg.path, line=lineno, field=e.field)
            )
            if not cfg.skip_bad:
                raise error from None
            run.add("skipped_bad")
            examples = run.details.setdefault("bad_examples", [])
            if len(examples) < 10:
                examples.append(str(error))
            continue
        _add(batch, canon, lineno, cfg, source, teacher, run.run_id)
        run.add("records")
        bar.advance()
        if len(batch) >= (cfg.batch_size or RECORD_BATCH):
            _flush(store, batch, cfg, run)
            batch = _Batch()
    _flush(store, batch, cfg, run)


def _columnar_plan(cfg, fmt, column_map, preset):
    if fmt != "parquet":
        return None, None
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(cfg.path)
    except Exception as e:
        raise InputError(f"not a readable Parquet file ({e})", path=cfg.path) from None
    plan = plan_columnar(
        column_map, pf.schema_arrow, bool(preset and preset.transform), pf.metadata
    )
    return plan, pf


def _import_columnar(store, cfg, run, bar, pf, plan, column_map, preset, source, teacher) -> None:
    """Parquet with a plain column map: Arrow batches straight to DuckDB (see columnar.py); a
    batch the fast path declines goes through the record path with its own row numbers."""
    row = 1
    if plan.direct:
        # a transaction per Parquet row group's worth of rows (DuckDB writes full row groups
        # straight to the file); the text is never in memory, only the ids of these rows
        rows_per_batch = cfg.batch_size or DIRECT_BATCH
    else:
        rows_per_batch = cfg.batch_size or _columnar_batch_rows(pf)
    for rb in pf.iter_batches(batch_size=rows_per_batch, columns=plan.python_columns()):
        tables = build_tables(
            rb,
            row,
            plan,
            source=source,
            teacher=teacher,
            domain=cfg.domain,
            split=cfg.split,
            label_verifier=cfg.label_verifier,
            run_id=run.run_id,
        )
        if tables is None:
            records = (
                _parquet_records(store, cfg.path, row, rb.num_rows)
                if plan.direct
                else (zip(range(row, row + rb.num_rows), rb.to_pylist(), strict=True))
            )
            _import_records(store, cfg, run, bar, records, column_map, preset, source, teacher)
        else:
            traces_select = (
                _direct_select(cfg.path, plan, row, rb.num_rows) if plan.direct else _NEW_TRACES
            )
            _write(store, run, tables.prompts, tables.traces, tables.verdicts, traces_select)
            run.add("records", tables.records)
            run.add("direct_batches" if plan.direct else "columnar_batches")
            bar.advance(tables.records)
        row += rb.num_rows


RECORD_BATCH = 4000
COLUMNAR_BATCH_BYTES = 256 << 20


DIRECT_BATCH = 122_880  # DuckDB's row group size


def _sql_path(path: str) -> str:
    return "'" + str(Path(path).resolve()).replace("'", "''") + "'"


def _direct_select(path: str, plan, first_row: int, n: int) -> str:
    """The batch's traces: ids from Python ({src}), text read by DuckDB from the file. Ids
    already in the store are left out here (an anti-join on the ids only), which is cheaper
    than INSERT OR IGNORE's per-row conflict checks."""
    comp = '"' + plan.columns["completion"].replace('"', '""') + '"'
    rf = plan.columns.get("reasoning")
    rfield = 'nullif(p."' + rf.replace('"', '""') + "\", '')" if rf else "NULL"
    lo, hi = first_row - 1, first_row - 2 + n
    return f"""SELECT k.trace_id, k.prompt_id, k.teacher, 'import' AS backend, k.sample_index,
       p.{comp} AS text, {rfield} AS reasoning_field, k.finish_reason, 'imported' AS origin,
       NULL AS meta, ? AS run_id
FROM (SELECT * FROM {{src}} WHERE trace_id NOT IN (SELECT trace_id FROM traces_data)) k
JOIN (SELECT * FROM read_parquet({_sql_path(path)}, file_row_number = true)
      WHERE file_row_number BETWEEN {lo} AND {hi}) p ON p.file_row_number = k.file_row"""


def _parquet_records(store: Store, path: str, first_row: int, n: int):
    """Rows first_row.. as dicts (the record path for a batch the direct path declined)."""
    lo, hi = first_row - 1, first_row - 2 + n
    table = store.con.sql(
        f"SELECT * EXCLUDE (file_row_number) FROM read_parquet({_sql_path(path)},"
        f" file_row_number = true) WHERE file_row_number BETWEEN {lo} AND {hi}"
        " ORDER BY file_row_number"
    ).to_arrow_table()
    return zip(range(first_row, first_row + n), table.to_pylist(), strict=True)


def _columnar_batch_rows(pf) -> int:
    """Rows per transaction for Parquet: about 256 MB of uncompressed data. Each commit costs a
    WAL write and soon a checkpoint that rewrites the table's open row group, so with long
    traces 4,000-row transactions spent more time committing than inserting."""
    meta = pf.metadata
    if not meta.num_rows:
        return RECORD_BATCH
    size = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
    per_row = max(1, size // meta.num_rows)
    return max(RECORD_BATCH, COLUMNAR_BATCH_BYTES // per_row)


def _count_hint(path: str, fmt: str) -> int | None:
    if fmt == "parquet":
        try:
            import pyarrow.parquet as pq

            return pq.ParquetFile(path).metadata.num_rows
        except Exception:
            return None
    return None


def _add(
    batch: _Batch,
    c: Canonical,
    lineno: int,
    cfg: ImportConfig,
    source: str,
    teacher: str,
    run_id: str,
) -> None:
    pid = make_prompt_id(c.problem)
    ref = c.source_ref if c.source_ref is not None else str(lineno)
    if pid not in batch.prompts:
        batch.prompts[pid] = {
            "prompt_id": pid,
            "source": source,
            "source_ref": ref,
            "problem": c.problem,
            "reference_answer": c.reference,
            "domain": c.domain or cfg.domain,
            "split": c.split or cfg.split,
            "meta": json.dumps(c.meta, default=str) if c.meta else None,
            "run_id": run_id,
        }
    batch.records += 1
    if not c.completions:
        return
    t = batch.traces
    for i, text in enumerate(c.completions):
        who = (c.teachers[i] if c.teachers and c.teachers[i] else None) or teacher
        tid = imported_trace_id(pid, who, source, ref, i)
        t["trace_id"].append(tid)
        t["prompt_id"].append(pid)
        t["teacher"].append(who)
        t["sample_index"].append(i)
        t["text"].append(text)
        t["rfield"].append(c.reasonings[i] if c.reasonings else None)
        t["finish_reason"].append(c.finish_reasons[i] if c.finish_reasons else None)
        t["meta"].append(None)
        if c.labels is not None and c.labels[i] is not None:
            batch.verdicts.append(
                {
                    "trace_id": tid,
                    "verifier": cfg.label_verifier,
                    "verifier_version": source,
                    "correct": c.labels[i],
                    "extracted": None,
                    "status": "ok",
                    "detail": json.dumps({"from": "imported label", "source": source}),
                    "run_id": run_id,
                }
            )


# the trace columns of a batch (reasoning / answer_text are virtual columns derived from these)
_TRACES_SELECT = """SELECT trace_id, prompt_id, teacher, 'import' AS backend, sample_index, text,
       nullif(rfield, '') AS reasoning_field, finish_reason, 'imported' AS origin, meta,
       ? AS run_id
FROM {src}"""
# the same for a batch whose ids are known to be distinct: ids already stored are left out by an
# anti-join on the ids, cheaper than INSERT OR IGNORE's per-row conflict checks
_NEW_TRACES = _TRACES_SELECT.replace(
    "FROM {src}", "FROM {src} WHERE trace_id NOT IN (SELECT trace_id FROM traces_data)"
)


def _flush(store: Store, batch: _Batch, cfg: ImportConfig, run) -> None:
    if not batch.records:
        return
    traces = None
    if batch.traces["trace_id"]:
        traces = pa.Table.from_pydict(batch.traces, schema=_TRACE_SCHEMA)
    prompts = rows_table(list(batch.prompts.values()))
    _write(store, run, prompts, traces, rows_table(batch.verdicts) if batch.verdicts else None)


def _write(
    store: Store,
    run,
    prompts: pa.Table | None,
    traces: pa.Table | None,
    verdicts: pa.Table | None,
    traces_select: str | None = None,
) -> None:
    """One batch, one transaction: prompts, traces and their label verdicts."""
    with store.transaction():
        if prompts is not None:
            run.add("prompts_added", store.insert_arrow("prompts", prompts))
        if traces is not None and traces.num_rows:
            added = store.insert_arrow(
                "traces",
                traces,
                select=traces_select or _TRACES_SELECT,
                params=[run.run_id],
                ignore_existing=traces_select is None,  # the columnar selects skip stored ids
            )
            run.add("traces_added", added)
            run.add("traces_existing", traces.num_rows - added)
        if verdicts is not None and verdicts.num_rows:
            run.add("verdicts_added", store.insert_arrow("verdicts", verdicts))
    run.checkpoint()


def _undo(store: Store, run_id: str) -> None:
    with store.transaction():
        for table in ("verdicts", "traces_data", "prompts"):
            store.execute(f"DELETE FROM {table} WHERE run_id = ?", [run_id])
