"""Plumbing shared by the text signals (length, dedup, decontam, behaviours, safety).

Every signal reads traces the same way (ids first, then rows in batches, because DuckDB refuses a
second statement while a result is open) and writes scores and flags the same way (replace the
rows of the batch in one transaction, so a re-run with other settings never leaves stale rows).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

import duckdb

from tracekit.errors import ConfigError
from tracekit.store import Store
from tracekit.store.ids import flag_id
from tracekit.text.reasoning import split_reasoning


def normalize(text: str | None) -> str:
    """Lowercase and fold every run of whitespace to one space: the form both exact dedup and
    decontamination compare, so reformatting alone never hides a copy."""
    return " ".join((text or "").lower().split())


def words(text: str | None) -> list[str]:
    return (text or "").lower().split()


def check_where(store: Store, where: str | None, view: str = "v_traces") -> None:
    """Fail early, with the user's expression in the message, rather than deep inside a batch."""
    if not where:
        return
    try:
        store.fetchall(f"SELECT count(*) FROM (SELECT * FROM {view} WHERE ({where}) LIMIT 0)")
    except duckdb.Error as e:
        first = str(e).splitlines()[0]
        raise ConfigError(f"--where {where!r} is not a valid filter over {view}: {first}") from None


def selected_trace_ids(
    store: Store,
    where: str | None,
    *,
    done_score: str | None = None,
    done_detail: tuple[str, str] | None = None,
) -> list[str]:
    """Trace ids matching `where` that still lack the score `done_score` (the marker a signal
    writes last per trace), or whose marker's detail field differs (e.g. another tokenizer)."""
    check_where(store, where)
    q = "SELECT trace_id FROM v_traces WHERE " + (f"({where})" if where else "true")
    params: list[Any] = []
    if done_score:
        cond = "s.name = ?"
        params.append(done_score)
        if done_detail:
            cond += f" AND json_extract_string(s.detail, '$.{done_detail[0]}') = ?"
            params.append(done_detail[1])
        q += f" AND trace_id NOT IN (SELECT s.trace_id FROM scores s WHERE {cond})"
    q += " ORDER BY trace_id"
    return [r[0] for r in store.fetchall(q, params)]


def fetch_traces(store: Store, ids: Sequence[str], columns: str) -> list[tuple]:
    """Rows of `traces` (aliased t, joined to prompts p) for one batch of ids, in id order."""
    return store.fetchall(
        f"SELECT {columns} FROM traces t JOIN prompts p USING (prompt_id)"
        " WHERE t.trace_id IN (SELECT unnest(?::VARCHAR[])) ORDER BY t.trace_id",
        [list(ids)],
    )


def batched(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def trace_parts(
    text: str | None, reasoning: str | None, answer_text: str | None
) -> tuple[str, str]:
    """(reasoning, answer): the stored split when an importer or collector made one, else split
    the raw text now. A trace without thinking markers has empty reasoning."""
    if reasoning is not None or answer_text is not None:
        return reasoning or "", answer_text or ""
    split = split_reasoning(text)
    return split.reasoning or "", split.answer_text


def replace_scores(
    store: Store, rows: list[dict[str, Any]], names: Sequence[str], run_id: str
) -> int:
    """Write one batch of scores, replacing earlier values of the same names for these traces."""
    if not rows:
        return 0
    ids = sorted({r["trace_id"] for r in rows})
    for r in rows:
        r["run_id"] = run_id
        if not isinstance(r.get("detail"), (str, type(None))):
            r["detail"] = json.dumps(r["detail"], sort_keys=True)
    store.execute(
        "DELETE FROM scores WHERE trace_id IN (SELECT unnest(?::VARCHAR[]))"
        " AND name IN (SELECT unnest(?::VARCHAR[]))",
        [ids, list(names)],
    )
    return store.insert_rows("scores", rows)


def flag_row(
    prompt_id: str | None, trace_id: str | None, flag: str, detail: dict[str, Any], run_id: str
) -> dict[str, Any]:
    return {
        "flag_id": flag_id(prompt_id, trace_id, flag),
        "prompt_id": prompt_id,
        "trace_id": trace_id,
        "flag": flag,
        "detail": json.dumps(detail, sort_keys=True, ensure_ascii=False),
        "run_id": run_id,
    }


def delete_trace_flags(store: Store, ids: Sequence[str], family: str) -> None:
    """Drop a family's earlier flags on these traces before writing the new verdicts."""
    store.execute(
        "DELETE FROM flags WHERE trace_id IN (SELECT unnest(?::VARCHAR[])) AND flag LIKE ?",
        [list(ids), family + ":%"],
    )
