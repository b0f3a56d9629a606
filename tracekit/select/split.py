"""Deterministic train/eval split by prompt.

Splitting by row would leak: several traces of one problem would land on both sides and the eval
loss would measure memorisation. Prompts are ranked by a seeded md5 of their id (stable across
machines and DuckDB versions, unlike `hash()`), and the first round(F * prompts) go to eval: at
least one when F > 0 and there are two prompts or more, never all of them.
"""

from __future__ import annotations


def seeded_key_sql(column: str, seed: int) -> str:
    """A stable pseudo-random UBIGINT per value: the seeded shuffle every strategy uses."""
    return f"md5_number_lower('{int(seed)}:' || {column})"


def n_eval_sql(eval_fraction: float, n_prompts: str) -> str:
    f = float(eval_fraction)
    if f <= 0:
        return "0"
    return (
        f"(CASE WHEN {n_prompts} < 2 THEN 0"
        f" ELSE least({n_prompts} - 1, greatest(1, round({f!r} * {n_prompts})))::BIGINT END)"
    )


def split_rows_sql(source: str, eval_fraction: float, seed: int, order: str) -> str:
    """Number the rows of `source` (which has prompt_id) and assign each prompt a split.

    The result has every column of `source` plus `split` and `row_idx` (train rows first, then
    eval; prompts in seeded order; within a prompt by `order`)."""
    key = seeded_key_sql("prompt_id", seed)
    return f"""SELECT s.*,
               CASE WHEN pr.prank <= pr.n_eval THEN 'eval' ELSE 'train' END AS split,
               row_number() OVER (
                   ORDER BY (pr.prank <= pr.n_eval), pr.prank, {order}) - 1 AS row_idx
        FROM {source} s
        JOIN (SELECT prompt_id,
                     row_number() OVER (ORDER BY {key}, prompt_id) AS prank,
                     {n_eval_sql(eval_fraction, "count(*) OVER ()")} AS n_eval
              FROM (SELECT DISTINCT prompt_id FROM {source})) pr USING (prompt_id)"""
