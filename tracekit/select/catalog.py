"""Built datasets as the store knows them: find one by name or id, load it for training, list
them, and diff two builds by the traces they contain."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from tracekit.errors import TracekitError
from tracekit.select.output import resolve_path
from tracekit.store import Store


def find_dataset(store: Store, ref: str) -> dict[str, Any]:
    """`ref` is a name (its latest build), a dataset id, or a unique id prefix."""
    rows = store.dicts(
        "SELECT * FROM datasets WHERE name = ? ORDER BY created_at DESC NULLS LAST LIMIT 1", [ref]
    )
    if not rows:
        rows = store.dicts("SELECT * FROM datasets WHERE dataset_id LIKE ? || '%'", [ref])
        if len(rows) > 1:
            raise TracekitError(f"dataset id prefix {ref!r} is ambiguous ({len(rows)} builds)")
    if not rows:
        names = [r[0] for r in store.fetchall("SELECT DISTINCT name FROM datasets ORDER BY 1")]
        hint = (
            f" (built: {', '.join(names)})" if names else " (none built yet: see `tracekit select`)"
        )
        raise TracekitError(f"no dataset {ref!r} in {store.path}{hint}")
    row = rows[0]
    row["selection"] = json.loads(row["selection"]) if row.get("selection") else {}
    return row


def load_training_dataset(store: Store, name: str) -> Any:
    """The `datasets.DatasetDict` of a build (split `train`, plus `eval` when built with one)."""
    from datasets import load_from_disk

    row = find_dataset(store, name)
    folder = resolve_path(store, row["path"]) / "hf"
    if not folder.exists():
        raise TracekitError(
            f"dataset {name!r} was recorded at {folder}, which is missing: rebuild it with"
            f" `{row['selection'].get('rebuild', 'tracekit select ...')}`"
        )
    return load_from_disk(str(folder))


def list_datasets(store: Store, all_builds: bool = False) -> list[dict[str, Any]]:
    latest = (
        ""
        if all_builds
        else "QUALIFY row_number() OVER (PARTITION BY d.name ORDER BY d.created_at DESC) = 1"
    )
    return store.dicts(
        f"""SELECT d.name, d.kind, d.rows, c.train, c.eval, c.prompts,
                   left(d.fingerprint, 12) AS fingerprint, d.dataset_id,
                   strftime(d.created_at, '%Y-%m-%d %H:%M') AS created, d.path
            FROM datasets d
            LEFT JOIN (SELECT r.dataset_id,
                              count(*) FILTER (WHERE r.split = 'train') AS train,
                              count(*) FILTER (WHERE r.split = 'eval') AS eval,
                              count(DISTINCT t.prompt_id) AS prompts
                       FROM dataset_rows r JOIN traces t ON t.trace_id = r.trace_id
                       GROUP BY r.dataset_id) c USING (dataset_id)
            {latest}
            ORDER BY d.created_at DESC"""
    )


@dataclass
class DatasetDiff:
    a: dict[str, Any]
    b: dict[str, Any]
    added: list[dict[str, Any]] = field(default_factory=list)  # traces in B, not in A
    removed: list[dict[str, Any]] = field(default_factory=list)  # traces in A, not in B
    counts: dict[str, int] = field(default_factory=dict)


def diff_datasets(store: Store, a: str, b: str, limit: int | None = 20) -> DatasetDiff:
    """Traces (chosen and rejected alike) added and removed from build A to build B, and for
    pair sets the pairs that changed."""
    da, db = find_dataset(store, a), find_dataset(store, b)
    traces = """SELECT trace_id FROM dataset_rows WHERE dataset_id = $d
                UNION SELECT pair_trace_id FROM dataset_rows WHERE dataset_id = $d AND pair_trace_id IS NOT NULL"""

    def side(x: str, y: str, lim: str) -> tuple[int, list[dict[str, Any]]]:
        q = f"""WITH x AS ({traces.replace("$d", "$x")}), y AS ({traces.replace("$d", "$y")}),
                 d AS (SELECT trace_id FROM x EXCEPT SELECT trace_id FROM y)"""
        n = store.con.execute(f"{q} SELECT count(*) FROM d", {"x": x, "y": y}).fetchall()[0][0]
        cur = store.con.execute(
            f"""{q} SELECT d.trace_id, t.prompt_id, t.teacher, v.correct, v.verifier,
                       left(replace(p.problem, chr(10), ' '), 60) AS problem
                FROM d JOIN traces t USING (trace_id) JOIN prompts p ON p.prompt_id = t.prompt_id
                LEFT JOIN v_final_verdicts v ON v.trace_id = d.trace_id
                ORDER BY t.prompt_id, d.trace_id {lim}""",
            {"x": x, "y": y},
        )
        cols = [c[0] for c in cur.description]
        return int(n), [dict(zip(cols, r, strict=False)) for r in cur.fetchall()]

    lim = f"LIMIT {int(limit)}" if limit else ""
    n_added, added = side(db["dataset_id"], da["dataset_id"], lim)
    n_removed, removed = side(da["dataset_id"], db["dataset_id"], lim)
    pairs = store.con.execute(
        """WITH x AS (SELECT trace_id, pair_trace_id FROM dataset_rows WHERE dataset_id = $a),
                y AS (SELECT trace_id, pair_trace_id FROM dataset_rows WHERE dataset_id = $b)
           SELECT (SELECT count(*) FROM (SELECT * FROM y EXCEPT SELECT * FROM x)),
                  (SELECT count(*) FROM (SELECT * FROM x EXCEPT SELECT * FROM y)),
                  (SELECT count(*) FROM (SELECT * FROM x INTERSECT SELECT * FROM y))""",
        {"a": da["dataset_id"], "b": db["dataset_id"]},
    ).fetchall()[0]
    counts = {
        "rows_a": int(da["rows"]),
        "rows_b": int(db["rows"]),
        "traces_added": n_added,
        "traces_removed": n_removed,
        "rows_added": int(pairs[0]),
        "rows_removed": int(pairs[1]),
        "rows_kept": int(pairs[2]),
    }
    return DatasetDiff(da, db, added, removed, counts)
