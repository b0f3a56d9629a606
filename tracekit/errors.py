"""Errors a user can act on.

The CLI prints a `TracekitError` as one line and exits 1; anything else is a bug and keeps its
traceback. Raising these from the library keeps that contract without the CLI knowing details.
"""

from __future__ import annotations

from pathlib import Path


class TracekitError(Exception):
    """An error caused by input, configuration or environment, not by a bug."""


class StoreLockedError(TracekitError):
    """Another process holds the store's write lock."""


class ConfigError(TracekitError):
    """A stage or recipe configuration is invalid."""


class InputError(TracekitError):
    """A record of an input file is malformed; names the file, line or row, and field."""

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.path = str(path) if path is not None else None
        self.line = line
        self.field = field
        self.reason = message
        where = ""
        if self.path is not None:
            where = self.path
            if line is not None:
                where += f":{line}"
            where += ": "
        if field is not None:
            message = f"field '{field}': {message}"
        super().__init__(where + message)
