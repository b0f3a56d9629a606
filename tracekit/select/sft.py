"""`select sft`: positives only, a per-prompt cap chosen by a strategy, length caps in the
student's tokens, optional thought-length balancing, and a split by prompt.

Every step is a window function or filter over the candidate temp table, so the cost grows with
the rows selected and nothing loops over traces in Python (student token counting excepted,
which only runs when a tokenizer is named).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tracekit.errors import ConfigError
from tracekit.select import candidates as cands
from tracekit.select.formats import assistant_messages_sql, completion_sql, prompt_messages_sql
from tracekit.select.funnel import Funnel
from tracekit.select.output import Build, Clock, finalize
from tracekit.select.split import seeded_key_sql, split_rows_sql
from tracekit.select.sql import with_ctes
from tracekit.store import RunResult, Store

STAGE = "select.sft"
Strategy = Literal["first", "shortest", "random", "teacher-guided", "diverse"]


class SelectSFTConfig(cands.SelectBase):
    per_prompt: int = Field(1, ge=0, description="traces kept per prompt; 0 keeps all")
    strategy: Strategy = "first"
    balance_length: bool = Field(False, description="trim over-represented thought lengths")
    length_buckets: int = Field(4, ge=2, le=64, description="log-length buckets for balancing")
    teacher_score: str = Field("teacher_sentences", description="score teacher-guided reads")


def _order(cfg: SelectSFTConfig) -> str:
    rand = seeded_key_sql("trace_id", cfg.seed)
    return {
        "first": "sample_index NULLS LAST, teacher, trace_id",
        "shortest": "len NULLS LAST, trace_id",
        "random": f"{rand}, trace_id",
        # the provenance stage's own order: most teacher-originated sentences, then their share
        "teacher-guided": "ts DESC NULLS LAST, tr DESC NULLS LAST, trace_id",
        "diverse": f"_round, {rand}, trace_id",
    }[cfg.strategy]


def plan(cfg: SelectSFTConfig) -> list[tuple[str, str]]:
    """The CTE chain from the candidate table to the numbered rows (last CTE: `rows`)."""
    conds = ["correct", "NOT flagged"]
    if cfg.exclude_truncated:
        conds.append("NOT truncated")
    if cfg.max_tokens:
        conds.append(f"len <= {int(cfg.max_tokens)}")
    ctes: list[tuple[str, str]] = [
        ("kept", f"SELECT * FROM {cands.CAND} WHERE {' AND '.join(conds)}")
    ]
    src = "kept"
    if cfg.strategy == "diverse":
        # one trace per teacher before a second from any; within a teacher the shortest, then
        # the longest, then the next shortest...: spread over teachers and lengths
        ctes.append(
            (
                "spread",
                """SELECT *, row_number() OVER (PARTITION BY prompt_id, teacher
                                   ORDER BY least(_lr, _ln + 1 - _lr), _lr) AS _round
        FROM (SELECT *, row_number() OVER (PARTITION BY prompt_id, teacher ORDER BY len, trace_id) AS _lr,
                     count(*) OVER (PARTITION BY prompt_id, teacher) AS _ln
              FROM kept)""",
            )
        )
        src = "spread"
    cap = f"\n        QUALIFY rk <= {int(cfg.per_prompt)}" if cfg.per_prompt else ""
    ctes.append(
        (
            "picked",
            f"SELECT *, row_number() OVER (PARTITION BY prompt_id ORDER BY {_order(cfg)}) AS rk"
            f"\n        FROM {src}{cap}",
        )
    )
    src = "picked"
    if cfg.balance_length:
        b = int(cfg.length_buckets)
        ctes += [
            (
                "bucketed",
                f"""SELECT *, count(*) OVER (PARTITION BY _bucket) AS _bn
        FROM (SELECT *, least({b - 1}, floor((ln(len + 1) - min(ln(len + 1)) OVER ())
                     * {b} / (max(ln(len + 1)) OVER () - min(ln(len + 1)) OVER () + 1e-9)))::INTEGER AS _bucket
              FROM picked)""",
            ),
            (
                "balanced",
                f"""SELECT * FROM bucketed
        QUALIFY row_number() OVER (PARTITION BY _bucket ORDER BY {seeded_key_sql("trace_id", cfg.seed)}, trace_id)
                <= (SELECT quantile_disc(n, 0.5) FROM (SELECT DISTINCT _bucket, _bn AS n FROM bucketed))""",
            ),
        ]
        src = "balanced"
    ctes.append(
        (
            "final",
            f"SELECT trace_id, NULL::VARCHAR AS pair_trace_id, prompt_id, len, NULL::BIGINT AS pair_len, rk FROM {src}",
        )
    )
    ctes.append(("rows", split_rows_sql("final", cfg.eval_fraction, cfg.seed, "rk, trace_id")))
    return ctes


def format_sql(cfg: SelectSFTConfig, rows: str = "_tk_rows") -> str:
    return f"""SELECT r.split,
       {prompt_messages_sql("p.problem", cfg.system_prompt)} AS prompt,
       {assistant_messages_sql(completion_sql("t", cfg.think_format))} AS completion,
       r.trace_id, r.prompt_id
FROM {rows} r JOIN traces t ON t.trace_id = r.trace_id JOIN prompts p ON p.prompt_id = r.prompt_id
ORDER BY r.row_idx"""


def _funnel(store: Store, cfg: SelectSFTConfig, ctes: list[tuple[str, str]]) -> Funnel:
    f = Funnel()
    f.add("traces", store.scalar("SELECT count(*) FROM traces"), note="in the store")
    mx = int(cfg.max_tokens) if cfg.max_tokens else None
    trunc = "AND NOT truncated" if cfg.exclude_truncated else ""
    row = store.fetchone(
        f"""SELECT count(*), count(correct), count(*) FILTER (WHERE correct),
                   count(*) FILTER (WHERE correct AND NOT flagged),
                   count(*) FILTER (WHERE correct AND NOT flagged {trunc}),
                   count(*) FILTER (WHERE correct AND NOT flagged {trunc} AND len <= {mx or 0})
            FROM {cands.CAND}"""
    )
    assert row is not None
    if cfg.where:
        f.add("where", row[0], note=f"match --where {cfg.where}")
    f.add("verified", row[1], note=f"have a verdict ({cfg.verifier or 'final verdict'})")
    f.add("positive", row[2], note="verdict correct")
    f.add(
        "not_flagged", row[3], note="no flag matching " + (",".join(cfg.exclude_flags) or "(none)")
    )
    if cfg.exclude_truncated:
        f.add("not_truncated", row[4], note="finish_reason != length and no format:truncated flag")
    if mx:
        f.add("within_max_tokens", row[5], note=f"<= {mx} student tokens ({cfg.token_spec()})")
    if cfg.balance_length:
        names = [n for n, _ in ctes]
        picked = store.scalar(
            with_ctes(ctes[: names.index("picked") + 1], "SELECT count(*) FROM picked")
        )
        f.add(
            "per_prompt",
            picked,
            "rows",
            note=f"<= {cfg.per_prompt or 'all'} per prompt ({cfg.strategy})",
        )
    return f


def exact_sql(store: Store, cfg: SelectSFTConfig) -> str:
    """The self-contained query a build records (what `bench_select` copies as its floor)."""
    scores = (
        {"ts": cfg.teacher_score, "tr": "teacher_ratio"} if cfg.strategy == "teacher-guided" else {}
    )
    cand_sql = cands.candidates_sql(store, cfg, scores, tokens=bool(cfg.token_spec()))
    rows_sql = with_ctes(plan(cfg), "SELECT * FROM rows")
    return with_ctes([(cands.CAND, cand_sql), ("_tk_rows", rows_sql)], format_sql(cfg))


def run_select_sft(store: Store, cfg: SelectSFTConfig) -> RunResult:
    scores = (
        {"ts": cfg.teacher_score, "tr": "teacher_ratio"} if cfg.strategy == "teacher-guided" else {}
    )
    if scores and not store.scalar(
        "SELECT count(*) FROM scores WHERE name = ?", [cfg.teacher_score]
    ):
        raise ConfigError(
            f"strategy teacher-guided reads the score {cfg.teacher_score!r}, which no trace has:"
            " run the provenance scorer (`tracekit provenance ...`) first"
        )
    with store.run(STAGE, cfg) as run:
        try:
            clock = Clock()
            cand_sql = cands.materialise(store, cfg, scores)
            clock.lap("candidates")
            ctes = plan(cfg)
            rows_sql = with_ctes(ctes, "SELECT * FROM rows")
            store.execute(f"CREATE OR REPLACE TEMP TABLE _tk_rows AS {rows_sql}")
            clock.lap("rows")
            funnel = _funnel(store, cfg, ctes)
            if not cfg.balance_length:
                f_rows = store.scalar("SELECT count(*) FROM _tk_rows")
                funnel.add(
                    "per_prompt",
                    f_rows,
                    "rows",
                    note=f"<= {cfg.per_prompt or 'all'} per prompt ({cfg.strategy})",
                )
            else:
                f_rows = store.scalar("SELECT count(*) FROM _tk_rows")
                funnel.add(
                    "length_balanced",
                    f_rows,
                    "rows",
                    note=f"{cfg.length_buckets} log-length buckets, capped at the median bucket",
                )
            exact = with_ctes([(cands.CAND, cand_sql), ("_tk_rows", rows_sql)], format_sql(cfg))
            clock.lap("funnel")
            build = Build("sft", cfg, exact, format_sql(cfg), funnel, clock=clock)
            finalize(store, run, build)
        finally:
            cands.drop_temp(store)
    return run.result
