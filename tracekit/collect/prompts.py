"""Prompts (problems) for teachers: adding them goes through the importer (one reader, one column
map engine); this module narrows it to problem fields and lists what is there."""

from __future__ import annotations

from typing import Any

import duckdb

from tracekit.collect.importers import ImportConfig
from tracekit.collect.importers.presets import PRESETS
from tracekit.errors import ConfigError
from tracekit.store import Store

PROMPT_FIELDS = {"problem", "reference", "id", "domain", "split"}


def prompts_import_config(
    path: str,
    column_map: dict[str, str],
    *,
    preset: str | None = None,
    split: str | None = None,
    source: str | None = None,
    domain: str = "math",
    hf_split: str | None = None,
    fmt: str = "auto",
    skip_bad: bool = False,
) -> ImportConfig:
    """An ImportConfig that reads problems only. Completion columns are refused rather than
    silently imported as traces: that is `tracekit import`'s job."""
    extra = sorted(set(column_map) - PROMPT_FIELDS)
    if extra:
        raise ConfigError(
            f"prompts add maps problem fields only ({', '.join(sorted(PROMPT_FIELDS))}); got"
            f" {extra}: use `tracekit import` to import traces"
        )
    if preset is not None and preset in PRESETS and set(PRESETS[preset].column_map) - PROMPT_FIELDS:
        raise ConfigError(
            f"preset {preset!r} imports completions: use `tracekit import --preset {preset}`, or"
            " `prompts add` with --map problem=COLUMN --map reference=COLUMN"
        )
    return ImportConfig(
        path=path,
        map=column_map,
        preset=preset,
        split=split,
        source=source,
        domain=domain,
        hf_split=hf_split,
        format=fmt,  # type: ignore[arg-type]
        skip_bad=skip_bad,
    )


def list_prompts(store: Store, where: str | None, limit: int) -> tuple[int, list[dict[str, Any]]]:
    cond = f"WHERE ({where})" if where else ""
    try:
        total = int(store.scalar(f"SELECT count(*) FROM prompts {cond}"))
        rows = store.dicts(
            f"""SELECT p.prompt_id, p.source, p.split,
                       CASE WHEN length(p.problem) > 70 THEN left(p.problem, 67) || '...'
                            ELSE p.problem END AS problem,
                       p.reference_answer AS reference,
                       (SELECT count(*) FROM traces t WHERE t.prompt_id = p.prompt_id) AS traces
                FROM (SELECT * FROM prompts {cond}) p ORDER BY p.source, p.prompt_id LIMIT ?""",
            [limit],
        )
    except duckdb.Error as e:
        raise ConfigError(f"--where {where!r}: {str(e).splitlines()[0]}") from None
    return total, rows
