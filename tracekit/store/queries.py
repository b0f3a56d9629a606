"""Read-side helpers behind `tracekit sql`, `stats`, `show` and `export`: the library API that the
CLI mirrors (as in sqlite-utils, SQL is the interface and these are conveniences over it)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from tracekit.errors import TracekitError
from tracekit.store.store import Store


def run_query(store: Store, query: str) -> tuple[list[str], list[tuple]]:
    import duckdb

    try:
        cur = store.execute(query)
        cols = [d[0] for d in cur.description] if cur.description else []
        rows = cur.fetchall() if cols else []
    except duckdb.Error as e:
        raise TracekitError(_one_line(e)) from None
    return cols, rows


def _one_line(e: Exception) -> str:
    """DuckDB errors carry a caret diagram on later lines; the CLI contract is one line."""
    lines = [ln.strip() for ln in str(e).strip().splitlines() if ln.strip()]
    extra = next((ln for ln in lines[1:] if ln.startswith("LINE")), "")
    return f"SQL error: {lines[0] if lines else e}" + (f" ({extra})" if extra else "")


def _jsonable(v: Any) -> Any:
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    return str(v)


def format_rows(cols: list[str], rows: list[tuple], fmt: str) -> str:
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(cols)
        for r in rows:
            w.writerow(
                [
                    ""
                    if v is None
                    else (json.dumps(_jsonable(v)) if isinstance(v, (dict, list)) else v)
                    for v in r
                ]
            )
        return buf.getvalue()
    if fmt == "json":
        return (
            json.dumps(
                [dict(zip(cols, map(_jsonable, r), strict=False)) for r in rows],
                indent=2,
                ensure_ascii=False,
            )
            + "\n"
        )
    raise TracekitError(f"unknown format {fmt!r} (table, csv, json, parquet)")


def export_query(store: Store, query: str, output: str | Path, fmt: str | None = None) -> int:
    """Write a query's result to Parquet/CSV/JSON through DuckDB's COPY (no Python row loop)."""
    import duckdb

    output = Path(output)
    fmt = fmt or output.suffix.lstrip(".").lower() or "parquet"
    options = {
        "parquet": "FORMAT parquet",
        "csv": "FORMAT csv, HEADER",
        "json": "FORMAT json",
        "jsonl": "FORMAT json",
    }
    if fmt not in options:
        raise TracekitError(f"cannot export to {fmt!r} (parquet, csv, json, jsonl)")
    output.parent.mkdir(parents=True, exist_ok=True)
    q = query.strip().rstrip(";")
    try:
        store.execute(
            f"COPY ({q}) TO '{str(output).replace(chr(39), chr(39) * 2)}' ({options[fmt]})"
        ).fetchall()
        n = store.execute(f"SELECT count(*) FROM ({q})").fetchall()[0][0]
    except duckdb.Error as e:
        raise TracekitError(_one_line(e)) from None
    return int(n)


def store_stats(store: Store) -> dict[str, list[dict[str, Any]]]:
    """Counts per table, per teacher, per source and per verdict, and length quantiles."""
    tables = ["prompts", "traces", "verdicts", "scores", "flags", "sentences", "datasets", "runs"]
    return {
        "tables": [{"table": t, "rows": store.count(t)} for t in tables],
        "teachers": store.dicts(
            """SELECT teacher, traces, prompts, verified, correct, round(accuracy, 4) AS accuracy,
                      chars_p50, chars_p90, tokens_p50, truncated, round(cost_usd, 4) AS cost_usd
               FROM v_teachers ORDER BY teacher"""
        ),
        "sources": store.dicts(
            """SELECT p.source, count(DISTINCT p.prompt_id) AS prompts, count(t.trace_id) AS traces
               FROM prompts p LEFT JOIN traces t USING (prompt_id) GROUP BY p.source ORDER BY p.source"""
        ),
        "verdicts": store.dicts(
            """SELECT verifier, status, count(*) AS n, count(*) FILTER (WHERE correct) AS correct
               FROM verdicts GROUP BY verifier, status ORDER BY verifier, status"""
        ),
        "lengths": store.dicts(
            """SELECT 'text_chars' AS measure, min(length(text)) AS min,
                      quantile_cont(length(text), 0.25) AS p25, quantile_cont(length(text), 0.5) AS p50,
                      quantile_cont(length(text), 0.75) AS p75, quantile_cont(length(text), 0.9) AS p90,
                      max(length(text)) AS max
               FROM traces HAVING count(*) > 0"""
        ),
    }


def show_trace(store: Store, trace_id: str) -> dict[str, Any]:
    """A trace with its prompt, verdicts, scores, flags, sentences count and lineage (the run that
    made it and every dataset row that uses it)."""
    rows = store.dicts("SELECT * FROM traces WHERE trace_id = ?", [trace_id])
    if not rows:
        like = store.fetchall(
            "SELECT trace_id FROM traces WHERE trace_id LIKE ? LIMIT 2", [trace_id + "%"]
        )
        if len(like) == 1:
            return show_trace(store, like[0][0])
        raise TracekitError(f"no trace {trace_id!r}" + (" (prefix is ambiguous)" if like else ""))
    trace = rows[0]
    return {
        "trace": trace,
        "prompt": store.dicts("SELECT * FROM prompts WHERE prompt_id = ?", [trace["prompt_id"]])[0],
        "verdicts": store.dicts(
            "SELECT verifier, correct, status, extracted, detail, run_id FROM verdicts WHERE trace_id = ? ORDER BY verifier",
            [trace["trace_id"]],
        ),
        "scores": store.dicts(
            "SELECT name, value, run_id FROM scores WHERE trace_id = ? ORDER BY name",
            [trace["trace_id"]],
        ),
        "flags": store.dicts(
            "SELECT flag, detail, run_id FROM flags WHERE trace_id = ? OR (trace_id IS NULL AND prompt_id = ?) ORDER BY flag",
            [trace["trace_id"], trace["prompt_id"]],
        ),
        "sentences": store.scalar(
            "SELECT count(*) FROM sentences WHERE trace_id = ?", [trace["trace_id"]]
        ),
        "lineage": {
            "run": store.dicts(
                "SELECT run_id, stage, status, started_at, code_version FROM runs WHERE run_id = ?",
                [trace["run_id"]],
            ),
            "datasets": store.dicts(
                """SELECT d.name, d.kind, r.row_idx, r.split, d.fingerprint
                   FROM dataset_rows r JOIN datasets d USING (dataset_id)
                   WHERE r.trace_id = ? OR r.pair_trace_id = ? ORDER BY d.name, r.row_idx""",
                [trace["trace_id"], trace["trace_id"]],
            ),
        },
    }


def list_runs(store: Store, limit: int = 50, stage: str | None = None) -> list[dict[str, Any]]:
    where = "WHERE stage = ?" if stage else ""
    params = [stage] if stage else []
    rows = store.dicts(
        f"""SELECT run_id, stage, status, started_at, finished_at,
                   round(epoch(finished_at) - epoch(started_at), 1) AS seconds, counts, error
            FROM runs {where} ORDER BY started_at DESC LIMIT {int(limit)}""",
        params,
    )
    for r in rows:
        try:
            c = json.loads(r["counts"] or "{}")
            r["counts"] = ", ".join(f"{k}={v}" for k, v in (c.get("counts") or {}).items())
        except ValueError:
            pass
    return rows
