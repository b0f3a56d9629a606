"""The funnel: how many traces (or prompts, rows, pairs) survived each filter of a build.

A dataset's numbers are only trustworthy if every cut is visible: the funnel goes into the
`datasets.selection` JSON, the run's counts and the data card, in the order the filters apply.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Step:
    step: str
    count: int
    unit: str  # traces | prompts | rows | pairs
    note: str = ""


@dataclass
class Funnel:
    steps: list[Step] = field(default_factory=list)

    def add(self, step: str, count: int, unit: str = "traces", note: str = "") -> None:
        self.steps.append(Step(step, int(count), unit, note))

    def get(self, step: str) -> int | None:
        for s in self.steps:
            if s.step == step:
                return s.count
        return None

    def to_list(self) -> list[dict[str, Any]]:
        return [asdict(s) for s in self.steps]

    def counts(self) -> dict[str, int]:
        return {s.step: s.count for s in self.steps}

    @classmethod
    def from_list(cls, rows: list[dict[str, Any]]) -> Funnel:
        return cls(
            [
                Step(r["step"], int(r["count"]), r.get("unit", "traces"), r.get("note", ""))
                for r in rows
            ]
        )
