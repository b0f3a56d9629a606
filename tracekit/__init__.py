"""tracekit: reasoning-trace distillation data with lineage in one DuckDB store."""

__version__ = "0.1.0"

from tracekit.errors import ConfigError, InputError, StoreLockedError, TracekitError  # noqa: E402
from tracekit.store import Store  # noqa: E402

__all__ = ["ConfigError", "InputError", "Store", "StoreLockedError", "TracekitError", "__version__"]
