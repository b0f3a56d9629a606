"""The trace store: one DuckDB file with lineage from every dataset row to the teacher call."""

from tracekit.store.runs import Run, RunResult
from tracekit.store.store import Store, default_store_path

__all__ = ["Run", "RunResult", "Store", "default_store_path"]
