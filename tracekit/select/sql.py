"""Tiny helpers to compose the builders' queries as named CTEs, so the same text is executed
(in steps, for the funnel) and recorded (as one self-contained query that rebuilds the rows)."""

from __future__ import annotations


def with_ctes(ctes: list[tuple[str, str]], select: str) -> str:
    if not ctes:
        return select
    body = ",\n".join(f"{name} AS (\n{sql}\n)" for name, sql in ctes)
    return f"WITH {body}\n{select}"


def verifier_priority_sql(col: str) -> str:
    """The rank v_final_verdicts gives a verifier (executable checks first, source labels last)."""
    from tracekit.store.schema import VERIFIER_PRIORITY

    whens = " ".join(f"WHEN '{v}' THEN {i}" for i, v in enumerate(VERIFIER_PRIORITY))
    return f"CASE {col} {whens} ELSE {len(VERIFIER_PRIORITY)} END"
