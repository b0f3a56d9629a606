"""What every verifier returns, and the statuses a verdict row may carry."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

STATUSES = ("ok", "no_answer", "timeout", "error", "no_reference")


@dataclass(frozen=True)
class Outcome:
    """One verdict. `correct` is None whenever the verifier could not decide (timeout, error,
    no reference): an undecided trace is neither a positive nor a negative. A trace with no final
    answer is decided: it is a negative (`no_answer`, correct=False)."""

    status: str
    correct: bool | None
    extracted: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown verdict status {self.status!r}")
        if self.status in ("timeout", "error", "no_reference") and self.correct is not None:
            raise ValueError(f"status {self.status} cannot carry correct={self.correct}")
