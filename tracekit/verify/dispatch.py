"""The worker-side entry point: one payload in, (outcome(s), format flags) out.

Lives in its own module so that forked pool workers find every verifier already imported, and so
that the parent's runner never runs verification code in its own process.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from tracekit.verify import choice, code, exact, majority, regex
from tracekit.verify import math as math_v
from tracekit.verify.base import Outcome
from tracekit.verify.format import Flag, check_format

VERIFIERS: dict[str, ModuleType] = {
    m.NAME: m for m in (math_v, code, exact, choice, regex, majority)
}
VERSIONS: dict[str, str] = {name: m.VERSION for name, m in VERIFIERS.items()}


def handle(payload: dict[str, Any]) -> tuple[Outcome | dict[str, Outcome], list[Flag]]:
    result = VERIFIERS[payload["v"]].handle(payload)
    flags: list[Flag] = []
    fmt = payload.get("format")
    if fmt is not None:
        flags = check_format(
            fmt.get("text"),
            fmt.get("reasoning"),
            payload.get("answer"),
            fmt.get("finish_reason"),
            bool(fmt.get("unclosed")),
            expect_think=bool(fmt.get("expect_think")),
        )
        if (
            isinstance(result, Outcome)
            and result.status == "no_answer"
            and not any(f.kind == "no_answer" for f in flags)
        ):
            flags.append(Flag("no_answer", f"{payload['v']} verifier found no final answer"))
    return result, flags
