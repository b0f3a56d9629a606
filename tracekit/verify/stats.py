"""Rejection-sampling statistics over verdicts: accuracy per teacher and verifier, agreement
between two verifiers on the same traces, and the SQL that lists their disagreements.

Agreement is measured on traces that BOTH verifiers judged (status `ok`: each found an answer
and compared it); traces where one side found no answer, timed out or had no reference are
counted separately, because "no answer found" is not a difference of opinion about an answer.
`agreement_decided` also reports the rate over every trace both sides decided (correct not NULL).
"""

from __future__ import annotations

from typing import Any

from tracekit.store import Store


def _lit(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def verdict_summary(store: Store) -> list[dict[str, Any]]:
    """One row per (teacher, verifier): n, ok, correct, accuracy (correct / decided), and the
    count of each non-ok status."""
    return store.dicts(
        """
        SELECT t.teacher, v.verifier,
               count(*) AS n,
               count(*) FILTER (WHERE v.status = 'ok') AS ok,
               count(*) FILTER (WHERE v.correct) AS correct,
               round(count(*) FILTER (WHERE v.correct) / nullif(count(v.correct), 0), 4) AS accuracy,
               count(*) FILTER (WHERE v.status = 'no_answer') AS no_answer,
               count(*) FILTER (WHERE v.status = 'timeout') AS timeouts,
               count(*) FILTER (WHERE v.status = 'error') AS errors,
               count(*) FILTER (WHERE v.status = 'no_reference') AS no_reference
        FROM verdicts v JOIN traces t USING (trace_id)
        GROUP BY ALL ORDER BY t.teacher, v.verifier
        """
    )


def disagreements_sql(a: str, b: str, *, judged_only: bool = True) -> str:
    """SQL listing traces where verifiers `a` and `b` disagree, with both extractions; paste it
    into `tracekit sql` or build on it."""
    both = (
        "va.status = 'ok' AND vb.status = 'ok'"
        if judged_only
        else "va.correct IS NOT NULL AND vb.correct IS NOT NULL"
    )
    return f"""SELECT va.trace_id, t.teacher, p.reference_answer,
       va.correct AS {a}_correct, va.extracted AS {a}_extracted,
       vb.correct AS {b}_correct, vb.extracted AS {b}_extracted
FROM verdicts va
JOIN verdicts vb ON vb.trace_id = va.trace_id AND vb.verifier = {_lit(b)}
JOIN traces t ON t.trace_id = va.trace_id
JOIN prompts p ON p.prompt_id = t.prompt_id
WHERE va.verifier = {_lit(a)} AND {both} AND va.correct <> vb.correct
ORDER BY t.teacher, va.trace_id"""


def agreement(store: Store, a: str, b: str, where: str | None = None) -> dict[str, Any]:
    """How often verifiers a and b agree on the traces both judged. `where` filters over
    v_traces (e.g. "source = 'math500'")."""
    filt = f" AND va.trace_id IN (SELECT trace_id FROM v_traces WHERE {where})" if where else ""
    row = store.dicts(
        f"""
        SELECT count(*) AS n_common,
               count(*) FILTER (WHERE va.status = 'ok' AND vb.status = 'ok') AS n_both,
               count(*) FILTER (WHERE va.status = 'ok' AND vb.status = 'ok' AND va.correct = vb.correct) AS agree,
               count(*) FILTER (WHERE va.correct IS NOT NULL AND vb.correct IS NOT NULL) AS n_decided,
               count(*) FILTER (WHERE va.correct IS NOT NULL AND vb.correct IS NOT NULL
                                AND va.correct = vb.correct) AS agree_decided,
               count(*) FILTER (WHERE va.status <> 'ok') AS {_ident(a)}_not_ok,
               count(*) FILTER (WHERE vb.status <> 'ok') AS {_ident(b)}_not_ok,
               count(*) FILTER (WHERE va.correct AND NOT vb.correct AND vb.status = 'ok' AND va.status = 'ok') AS only_{_ident(a)}_correct,
               count(*) FILTER (WHERE vb.correct AND NOT va.correct AND vb.status = 'ok' AND va.status = 'ok') AS only_{_ident(b)}_correct
        FROM verdicts va JOIN verdicts vb ON vb.trace_id = va.trace_id AND vb.verifier = ?
        WHERE va.verifier = ?{filt}
        """,
        [b, a],
    )[0]
    n, agree = row["n_both"], row["agree"]
    return {
        "a": a,
        "b": b,
        **row,
        "agreement": round(agree / n, 4) if n else None,
        "disagreements": n - agree,
        "agreement_decided": round(row["agree_decided"] / row["n_decided"], 4)
        if row["n_decided"]
        else None,
    }


def _ident(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name)


def pass_rates(store: Store, where: str | None = None) -> list[dict[str, Any]]:
    """v_prompt_stats (pass rate = positives / verified samples per prompt and teacher)."""
    q = "SELECT * FROM v_prompt_stats"
    if where:
        q += f" WHERE {where}"
    return store.dicts(q + " ORDER BY prompt_id, teacher")
