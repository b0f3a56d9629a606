"""The Store: a DuckDB connection with the schema applied and a few helpers that every stage needs.

DuckDB lets one process open a file for writing; others get a lock error, which becomes
`StoreLockedError` with a message a user can act on. Read-only opens can share the file while
nothing writes.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
from pydantic import BaseModel

from tracekit.errors import StoreLockedError, TracekitError
from tracekit.store.runs import Run, RunResult
from tracekit.store.schema import MIGRATIONS, SCHEMA_VERSION, VIEWS, WRITE_TABLES

DEFAULT_STORE = "traces.duckdb"


def default_store_path(path: str | Path | None = None) -> Path:
    """`--store PATH`, else TRACEKIT_STORE, else ./traces.duckdb."""
    if path:
        return Path(path)
    env = os.environ.get("TRACEKIT_STORE")
    return Path(env) if env else Path(DEFAULT_STORE)


class Store:
    def __init__(self, path: str | Path | None = None, *, read_only: bool = False) -> None:
        self.path = default_store_path(path)
        self.read_only = read_only
        if read_only and not self.path.exists():
            raise TracekitError(f"no store at {self.path} (create one with `tracekit init`)")
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.con = duckdb.connect(str(self.path), read_only=read_only)
        except duckdb.IOException as e:
            msg = str(e)
            if "lock" in msg.lower():
                raise StoreLockedError(
                    f"store {self.path} is locked by another tracekit process; wait for it to"
                    " finish (readers such as `tracekit sql` work only while nothing writes)"
                ) from None
            raise TracekitError(f"cannot open store {self.path}: {msg}") from None
        self._in_tx = False
        if not read_only:
            self._migrate()
        elif self.schema_version() != SCHEMA_VERSION:
            raise TracekitError(
                f"store {self.path} has schema version {self.schema_version()}, this tracekit"
                f" expects {SCHEMA_VERSION}: open it once for writing to migrate"
            )

    # ---- lifecycle -------------------------------------------------------------------------
    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- schema ----------------------------------------------------------------------------
    def schema_version(self) -> int:
        exists = self.con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_version'"
        ).fetchall()[0][0]
        if not exists:
            return 0
        row = self.con.execute("SELECT max(version) FROM schema_version").fetchall()[0]
        return int(row[0] or 0)

    def _migrate(self) -> None:
        self.con.execute(
            "CREATE TABLE IF NOT EXISTS schema_version ("
            " version INTEGER PRIMARY KEY, description VARCHAR, applied_at TIMESTAMP DEFAULT now())"
        )
        current = self.schema_version()
        if current > SCHEMA_VERSION:
            raise TracekitError(
                f"store {self.path} has schema version {current}, newer than this tracekit"
                f" ({SCHEMA_VERSION}): upgrade tracekit"
            )
        for version, description, statements in MIGRATIONS:
            if version <= current:
                continue
            with self.transaction():
                for stmt in statements:
                    self.con.execute(stmt)
                self.con.execute(
                    "INSERT INTO schema_version (version, description) VALUES (?, ?)",
                    [version, description],
                )
        for view in VIEWS:
            self.con.execute(view)

    # ---- transactions and runs -------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One atomic batch: committed as a whole or not at all (also on SIGKILL)."""
        if self._in_tx:
            yield
            return
        self.con.execute("BEGIN TRANSACTION")
        self._in_tx = True
        try:
            yield
        except BaseException:
            self._in_tx = False
            self.con.execute("ROLLBACK")
            raise
        self._in_tx = False
        self.con.execute("COMMIT")

    @contextmanager
    def run(self, stage: str, config: BaseModel | dict[str, Any] | None = None) -> Iterator[Run]:
        """Open a `runs` row, yield it, and close it with status ok / failed / interrupted.
        The run's result is on `run.result` afterwards."""
        run = Run(self, stage, config)
        try:
            yield run
        except KeyboardInterrupt:
            run.result = run.finish("interrupted", "interrupted by the user")
            raise
        except BaseException as e:
            run.result = run.finish("failed", f"{type(e).__name__}: {e}"[:2000])
            raise
        run.result = run.finish("ok")

    # ---- queries ---------------------------------------------------------------------------
    def execute(self, query: str, params: Sequence[Any] | dict[str, Any] | None = None):
        return self.con.execute(query, params) if params is not None else self.con.execute(query)

    def fetchall(self, query: str, params: Sequence[Any] | None = None) -> list[tuple]:
        return self.execute(query, params).fetchall()

    def fetchone(self, query: str, params: Sequence[Any] | None = None) -> tuple | None:
        # fetchall, not fetchone: DuckDB 2 keeps a half-read result open and refuses the next call
        rows = self.execute(query, params).fetchall()
        return rows[0] if rows else None

    def scalar(self, query: str, params: Sequence[Any] | None = None) -> Any:
        row = self.fetchone(query, params)
        return row[0] if row else None

    def dicts(self, query: str, params: Sequence[Any] | None = None) -> list[dict[str, Any]]:
        cur = self.execute(query, params)
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, r, strict=False)) for r in cur.fetchall()]

    def arrow(self, query: str, params: Sequence[Any] | None = None) -> pa.Table:
        rel = self.execute(query, params)
        return rel.to_arrow_table() if hasattr(rel, "to_arrow_table") else rel.arrow()

    def count(self, table: str, where: str | None = None) -> int:
        q = f"SELECT count(*) FROM {table}" + (f" WHERE {where}" if where else "")
        return int(self.scalar(q))

    # ---- bulk writes -----------------------------------------------------------------------
    def insert_arrow(
        self,
        table: str,
        data: pa.Table,
        *,
        ignore_existing: bool = True,
        select: str = "SELECT * FROM {src}",
        params: Sequence[Any] | None = None,
    ) -> int:
        """Insert an Arrow table by column name; rows whose key already exists are skipped
        (content-addressed ids make that the idempotency of every stage). `select` may reshape
        the rows in SQL on the way in (`{src}` names the registered table). Returns rows added."""
        if data.num_rows == 0:
            return 0
        table = WRITE_TABLES.get(table, table)  # `traces` is a view; its rows live in traces_data
        before = self.count(table)
        name = f"_tk_insert_{table}"
        self.con.register(name, data)
        try:
            verb = "INSERT OR IGNORE INTO" if ignore_existing else "INSERT INTO"
            self.execute(f"{verb} {table} BY NAME {select.replace('{src}', name)}", params)
        finally:
            self.con.unregister(name)
        return self.count(table) - before

    def insert_rows(
        self, table: str, rows: list[dict[str, Any]], *, ignore_existing: bool = True
    ) -> int:
        if not rows:
            return 0
        return self.insert_arrow(table, rows_table(rows), ignore_existing=ignore_existing)


def rows_table(rows: list[dict[str, Any]]) -> pa.Table:
    """Dicts to an Arrow table with every key any row has: pyarrow's from_pylist takes the
    columns from the first row only, dropping a key that only later rows carry without a word."""
    keys = list(dict.fromkeys(k for r in rows for k in r))
    return pa.table({k: [r.get(k) for r in rows] for k in keys})


__all__ = ["Store", "default_store_path", "RunResult", "rows_table"]
