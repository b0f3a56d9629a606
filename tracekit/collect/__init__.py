"""Teachers and their traces: `run_collect` (collect.py), backends (backends/), `run_merge`
(merge.py) for shard stores, and importers (importers/).

Names resolve lazily so that importing `tracekit.collect.importers` stays light.
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "CollectConfig": "tracekit.collect.collect",
    "run_collect": "tracekit.collect.collect",
    "MergeConfig": "tracekit.collect.merge",
    "run_merge": "tracekit.collect.merge",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(name)
