"""Merge stores written by shards (`collect --shard i/n` on n machines) into one.

Every table is copied by column name through DuckDB's ATTACH, one transaction per source store:
tables with a primary key use INSERT OR IGNORE (content-addressed ids make the same trace from two
shards, or a re-merge, one row), tables without one (collect_errors) insert only rows not already
present. Sources are attached read-only and never modified; they must have this tracekit's schema
version (open an older store once for writing to migrate it).
"""

from __future__ import annotations

from pathlib import Path

import duckdb
from pydantic import BaseModel, ConfigDict, Field

from tracekit.errors import ConfigError, TracekitError
from tracekit.progress import progress
from tracekit.store import RunResult, Store
from tracekit.store.schema import SCHEMA_VERSION, WRITE_TABLES

LOGICAL = {table: view for view, table in WRITE_TABLES.items()}

_ALIAS = "tk_merge_src"


class MergeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sources: list[str] = Field(min_length=1)


def _tables(store: Store, catalog: str) -> list[str]:
    rows = store.fetchall(
        "SELECT table_name FROM information_schema.tables"
        " WHERE table_catalog = ? AND table_schema = 'main' AND table_type = 'BASE TABLE'"
        " ORDER BY table_name",
        [catalog],
    )
    return [r[0] for r in rows if r[0] != "schema_version"]


def _keyed_tables(store: Store) -> set[str]:
    rows = store.fetchall(
        "SELECT DISTINCT table_name FROM duckdb_constraints()"
        " WHERE database_name = current_database() AND constraint_type IN ('PRIMARY KEY', 'UNIQUE')"
    )
    return {r[0] for r in rows}


def _attach(store: Store, path: Path) -> None:
    quoted = str(path).replace("'", "''")
    try:
        store.execute(f"ATTACH '{quoted}' AS {_ALIAS} (READ_ONLY)")
    except duckdb.Error as e:
        msg = str(e).splitlines()[0]
        if "lock" in msg.lower():
            raise TracekitError(
                f"store {path} is in use by another process; merge it when that finishes"
            ) from None
        raise TracekitError(f"cannot open store {path}: {msg}") from None


def run_merge(store: Store, cfg: MergeConfig) -> RunResult:
    paths = [Path(s) for s in cfg.sources]
    for p in paths:
        if not p.exists():
            raise ConfigError(f"no store at {p}")
        if p.resolve() == store.path.resolve():
            raise ConfigError(f"{p} is the target store itself")
    main_catalog = store.scalar("SELECT current_database()")
    keyed = _keyed_tables(store)
    with store.run("merge", cfg) as run, progress("merge", total=len(paths), unit="stores") as bar:
        for p in paths:
            _attach(store, p)
            try:
                version = store.scalar(f"SELECT max(version) FROM {_ALIAS}.schema_version")
                if version != SCHEMA_VERSION:
                    raise ConfigError(
                        f"{p} has schema version {version}, this store {SCHEMA_VERSION}: open it"
                        " once with this tracekit (e.g. `tracekit init --store PATH`) to migrate"
                    )
                ours = set(_tables(store, main_catalog))
                with store.transaction():
                    for table in _tables(store, _ALIAS):
                        if table not in ours:
                            continue
                        before = store.count(table)
                        if table in keyed:
                            store.execute(
                                f"INSERT OR IGNORE INTO {table} BY NAME SELECT * FROM {_ALIAS}.{table}"
                            )
                        else:
                            store.execute(
                                f"INSERT INTO {table} BY NAME"
                                f" (SELECT * FROM {_ALIAS}.{table} EXCEPT SELECT * FROM {table})"
                            )
                        added = store.count(table) - before
                        if added:  # counted under the name users query (traces, not traces_data)
                            run.add(LOGICAL.get(table, table), added)
                    run.add("stores")
                    run.checkpoint()
            finally:
                store.execute(f"DETACH {_ALIAS}")
            bar.advance()
    return run.result
