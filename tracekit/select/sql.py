"""Tiny helpers to compose the builders' queries as named CTEs, so the same text is executed
(in steps, for the funnel) and recorded (as one self-contained query that rebuilds the rows)."""

from __future__ import annotations


def with_ctes(ctes: list[tuple[str, str]], select: str) -> str:
    if not ctes:
        return select
    body = ",\n".join(f"{name} AS (\n{sql}\n)" for name, sql in ctes)
    return f"WITH {body}\n{select}"
