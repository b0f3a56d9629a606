"""`select pairs`: (chosen = positive, rejected = negative) of the SAME prompt under the SAME
verifier, for REDI and DPO alike.

Pairings (`--pairing`):
  first             REDI's rule: the first correct and the first incorrect trace after a seeded
                    shuffle (seed 42 by default); K pairs zip the i-th of each.
  all               every positive x negative combination of a prompt, K per prompt if capped.
  hardest           the negative with the lowest student perplexity (score `ppl:<model>`), with the
                    first positive after the shuffle: the mistakes the student finds most natural.
  longest-shortest  the shortest correct vs the longest incorrect (the Sky-T1-Flash rule).
Truncated negatives are excluded by default: a trace cut at max tokens is unfinished, not wrong.
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
from tracekit.select.sql import verifier_priority_sql, with_ctes
from tracekit.store import RunResult, Store

STAGE = "select.pairs"
Pairing = Literal["first", "all", "hardest", "longest-shortest"]


class SelectPairsConfig(cands.SelectBase):
    kind: Literal["redi", "dpo"] = "redi"
    pairing: Pairing = "first"
    max_pairs_per_prompt: int | None = Field(
        None, ge=1, description="pairs per prompt; default 1, unlimited for `all`"
    )
    ppl_score: str | None = Field(None, description="perplexity score for `hardest` (ppl:<model>)")

    def pairs_cap(self) -> int | None:
        if self.max_pairs_per_prompt is not None:
            return self.max_pairs_per_prompt
        return None if self.pairing == "all" else 1


def _orders(cfg: SelectPairsConfig) -> tuple[str, str]:
    rand = f"{seeded_key_sql('trace_id', cfg.seed)}, trace_id"
    return {
        "first": (rand, rand),
        "all": (rand, rand),
        "hardest": (rand, f"ppl NULLS LAST, {rand}"),
        "longest-shortest": ("len NULLS LAST, trace_id", "len DESC NULLS LAST, trace_id"),
    }[cfg.pairing]


def _pool_conditions(cfg: SelectPairsConfig) -> tuple[str, str]:
    base = ["NOT flagged"]
    if cfg.max_tokens:
        base.append(f"len <= {int(cfg.max_tokens)}")
    pos = ["correct", *base] + (["NOT truncated"] if cfg.exclude_truncated else [])
    neg = ["NOT correct", *base] + (["NOT truncated"] if cfg.exclude_truncated else [])
    return " AND ".join(pos), " AND ".join(neg)


def plan(cfg: SelectPairsConfig) -> list[tuple[str, str]]:
    pos_order, neg_order = _orders(cfg)
    pos_cond, neg_cond = _pool_conditions(cfg)
    k = cfg.pairs_cap()
    part = "PARTITION BY prompt_id, verifier"
    ctes: list[tuple[str, str]] = [
        (
            "pos",
            f"SELECT *, row_number() OVER ({part} ORDER BY {pos_order}) AS rk FROM {cands.CAND} WHERE {pos_cond}",
        ),
        (
            "neg",
            f"SELECT *, row_number() OVER ({part} ORDER BY {neg_order}) AS rk FROM {cands.CAND} WHERE {neg_cond}",
        ),
    ]
    cols = (
        "p.prompt_id, p.verifier, p.trace_id, n.trace_id AS pair_trace_id, p.len,"
        " n.len AS pair_len, p.rk AS prk, n.rk AS nrk"
    )
    on = "p.prompt_id = n.prompt_id AND p.verifier = n.verifier"
    if cfg.pairing == "all":
        ctes.append(("paired", f"SELECT {cols} FROM pos p JOIN neg n ON {on}"))
        pair_order = "greatest(prk, nrk), prk, nrk"
    else:  # zip: the i-th positive with the i-th negative, each trace used once
        cap = f" AND p.rk <= {int(k)}" if k else ""
        ctes.append(("paired", f"SELECT {cols} FROM pos p JOIN neg n ON {on} AND p.rk = n.rk{cap}"))
        pair_order = "prk"
    cap = f"\n        QUALIFY rk <= {int(k)}" if k else ""
    # a prompt judged by two verifiers (final verdicts) pairs under the higher-ranked one first
    ctes.append(
        (
            "capped",
            f"SELECT *, row_number() OVER (PARTITION BY prompt_id ORDER BY {verifier_priority_sql('verifier')},"
            f" verifier, {pair_order}, trace_id, pair_trace_id) AS rk FROM paired{cap}",
        )
    )
    ctes.append(("rows", split_rows_sql("capped", cfg.eval_fraction, cfg.seed, "rk")))
    return ctes


def format_sql(cfg: SelectPairsConfig, rows: str = "_tk_rows") -> str:
    return f"""SELECT r.split,
       {prompt_messages_sql("p.problem", cfg.system_prompt)} AS prompt,
       {assistant_messages_sql(completion_sql("c", cfg.think_format))} AS chosen,
       {assistant_messages_sql(completion_sql("j", cfg.think_format))} AS rejected,
       r.trace_id AS chosen_trace_id, r.pair_trace_id AS rejected_trace_id, r.prompt_id
FROM {rows} r
JOIN traces c ON c.trace_id = r.trace_id
JOIN traces j ON j.trace_id = r.pair_trace_id
JOIN prompts p ON p.prompt_id = r.prompt_id
ORDER BY r.row_idx"""


def _funnel(store: Store, cfg: SelectPairsConfig) -> Funnel:
    f = Funnel()
    f.add("traces", store.scalar("SELECT count(*) FROM traces"), note="in the store")
    pos_cond, neg_cond = _pool_conditions(cfg)
    mx = int(cfg.max_tokens) if cfg.max_tokens else 0
    row = store.fetchone(
        f"""SELECT count(*), count(correct),
                   count(*) FILTER (WHERE correct), count(*) FILTER (WHERE NOT correct),
                   count(*) FILTER (WHERE correct IS NOT NULL AND flagged),
                   count(*) FILTER (WHERE NOT correct AND NOT flagged AND truncated),
                   count(*) FILTER (WHERE correct AND NOT flagged AND truncated),
                   count(*) FILTER (WHERE correct IS NOT NULL AND NOT flagged AND len > {mx}),
                   count(*) FILTER (WHERE {pos_cond}), count(*) FILTER (WHERE {neg_cond})
            FROM {cands.CAND}"""
    )
    assert row is not None
    if cfg.where:
        f.add("where", row[0], note=f"match --where {cfg.where}")
    f.add("verified", row[1], note=f"have a verdict ({cfg.verifier or 'final verdict'})")
    f.add("positive", row[2], note="verdict correct")
    f.add("negative", row[3], note="verdict incorrect")
    f.add(
        "flagged_excluded",
        row[4],
        note="dropped: flag matching " + (",".join(cfg.exclude_flags) or "(none)"),
    )
    if cfg.exclude_truncated:
        f.add(
            "truncated_negatives_excluded", row[5], note="a truncated trace is not a wrong answer"
        )
        f.add("truncated_positives_excluded", row[6])
    if mx:
        f.add(
            "over_max_tokens_excluded", row[7], note=f"> {mx} student tokens ({cfg.token_spec()})"
        )
    f.add("positive_usable", row[8])
    f.add("negative_usable", row[9])
    p = store.fetchone(
        f"""SELECT count(*), count(*) FILTER (WHERE has_pair),
                   count(*) FILTER (WHERE NOT has_pos), count(*) FILTER (WHERE has_pos AND NOT has_neg)
            FROM (SELECT prompt_id, bool_or(pair_ok) AS has_pair, bool_or(has_pos) AS has_pos,
                         bool_or(has_neg) AS has_neg
                  FROM (SELECT prompt_id, verifier,
                               bool_or({pos_cond}) AS has_pos, bool_or({neg_cond}) AS has_neg,
                               bool_or({pos_cond}) AND bool_or({neg_cond}) AS pair_ok
                        FROM {cands.CAND} WHERE correct IS NOT NULL GROUP BY ALL)
                  GROUP BY prompt_id)"""
    )
    assert p is not None
    f.add("prompts_verified", p[0], "prompts", note="prompts with at least one verdict")
    f.add("prompts_without_positive", p[2], "prompts", note="skipped: no usable correct trace")
    f.add("prompts_without_negative", p[3], "prompts", note="skipped: no usable incorrect trace")
    f.add("prompts_with_both", p[1], "prompts", note="have a usable positive and negative")
    return f


def _ppl_score(store: Store, cfg: SelectPairsConfig) -> str:
    if cfg.ppl_score:
        if not store.scalar("SELECT count(*) FROM scores WHERE name = ?", [cfg.ppl_score]):
            raise ConfigError(
                f"no trace has the score {cfg.ppl_score!r} (see `tracekit score ppl`)"
            )
        return cfg.ppl_score
    names = cands.score_names(store, "ppl:")
    if len(names) == 1:
        return names[0]
    if not names:
        raise ConfigError(
            "pairing hardest needs the student's perplexity of the negatives: run the"
            " perplexity scorer first (a score named ppl:<model>)"
        )
    raise ConfigError(f"several perplexity scores ({', '.join(names)}): pick one with --ppl-score")


def exact_sql(store: Store, cfg: SelectPairsConfig) -> str:
    """The self-contained query a build records (what `bench_select` copies as its floor)."""
    scores = {"ppl": _ppl_score(store, cfg)} if cfg.pairing == "hardest" else {}
    cand_sql = cands.candidates_sql(store, cfg, scores, tokens=bool(cfg.token_spec()))
    rows_sql = with_ctes(plan(cfg), "SELECT * FROM rows")
    return with_ctes([(cands.CAND, cand_sql), ("_tk_rows", rows_sql)], format_sql(cfg))


def run_select_pairs(store: Store, cfg: SelectPairsConfig) -> RunResult:
    scores: dict[str, str] = {}
    extra: dict[str, object] = {"pairing": cfg.pairing, "pairs_per_prompt": cfg.pairs_cap()}
    if cfg.pairing == "hardest":
        scores["ppl"] = _ppl_score(store, cfg)
        extra["ppl_score"] = scores["ppl"]
    with store.run(STAGE, cfg) as run:
        try:
            clock = Clock()
            cand_sql = cands.materialise(store, cfg, scores)
            clock.lap("candidates")
            ctes = plan(cfg)
            rows_sql = with_ctes(ctes, "SELECT * FROM rows")
            store.execute(f"CREATE OR REPLACE TEMP TABLE _tk_rows AS {rows_sql}")
            clock.lap("rows")
            funnel = _funnel(store, cfg)
            exact = with_ctes([(cands.CAND, cand_sql), ("_tk_rows", rows_sql)], format_sql(cfg))
            clock.lap("funnel")
            build = Build(cfg.kind, cfg, exact, format_sql(cfg), funnel, extra, clock=clock)
            finalize(store, run, build)
        finally:
            cands.drop_temp(store)
    return run.result
