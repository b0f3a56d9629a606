"""The filter funnel: how many traces each flag family would remove, alone and combined.

A flag family is the part of a flag before the first ':' (dup, decontam, safety, and any family
other stages write). A prompt-level flag (trace_id NULL, e.g. decontam) removes every trace of its
prompt. Families are applied in a fixed order (decontam, dup, safety, then the rest by name) for
the cumulative column; `removed_alone` does not depend on the order.

Dup flags mark only the non-representative members of each cluster, so the dup step removes the
copies and keeps one trace per cluster.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tracekit.store import Store

ORDER = ["decontam", "dup", "safety"]
ALL = "(all)"

_FLAGGED = """
    SELECT t.trace_id, coalesce(t.teacher, '(none)') AS teacher, split_part(f.flag, ':', 1) AS family
    FROM traces t JOIN flags f ON f.trace_id = t.trace_id
    UNION
    SELECT t.trace_id, coalesce(t.teacher, '(none)'), split_part(f.flag, ':', 1)
    FROM traces t JOIN flags f ON f.trace_id IS NULL AND f.prompt_id = t.prompt_id
"""


def _order(families: set[str]) -> list[str]:
    return [f for f in ORDER if f in families] + sorted(families - set(ORDER))


def filter_funnel(store: Store, families: list[str] | None = None) -> list[dict[str, Any]]:
    """Rows (teacher, step, family, total, removed_alone, removed_cumulative, remaining), one per
    teacher and family plus a `(combined)` row per teacher, and the same for `(all)` teachers."""
    present = {r[0] for r in store.fetchall(f"SELECT DISTINCT family FROM ({_FLAGGED})")}
    steps = families if families is not None else _order(present)
    totals = dict(
        store.fetchall("SELECT coalesce(teacher, '(none)'), count(*) FROM traces GROUP BY ALL")
    )
    totals[ALL] = sum(totals.values())
    alone: dict[tuple[str, str], int] = {}
    first: dict[tuple[str, int], int] = {}
    if steps:
        case = " ".join(f"WHEN '{f}' THEN {i}" for i, f in enumerate(steps) if "'" not in f)
        for teacher, family, n in store.fetchall(
            f"""SELECT coalesce(teacher, '{ALL}'), family, count(DISTINCT trace_id)
                FROM ({_FLAGGED}) GROUP BY GROUPING SETS ((teacher, family), (family))"""
        ):
            alone[(teacher, family)] = n
        for teacher, step, n in store.fetchall(
            f"""SELECT coalesce(teacher, '{ALL}'), step, count(*) FROM (
                    SELECT trace_id, teacher, min(CASE family {case} END) AS step
                    FROM ({_FLAGGED}) GROUP BY trace_id, teacher)
                WHERE step IS NOT NULL GROUP BY GROUPING SETS ((teacher, step), (step))"""
        ):
            first[(teacher, int(step))] = n
    rows: list[dict[str, Any]] = []
    teachers = sorted(t for t in totals if t != ALL) + [ALL]
    for teacher in teachers:
        total = totals[teacher]
        cum = 0
        for i, fam in enumerate(steps):
            cum += first.get((teacher, i), 0)
            rows.append(
                {
                    "teacher": teacher,
                    "step": i + 1,
                    "family": fam,
                    "total": total,
                    "removed_alone": alone.get((teacher, fam), 0),
                    "removed_cumulative": cum,
                    "remaining": total - cum,
                }
            )
        rows.append(
            {
                "teacher": teacher,
                "step": len(steps) + 1,
                "family": "(combined)",
                "total": total,
                "removed_alone": cum,
                "removed_cumulative": cum,
                "remaining": total - cum,
            }
        )
    return rows


def funnel_markdown(rows: list[dict[str, Any]]) -> str:
    head = "| teacher | filter | removed alone | removed so far | remaining |\n|---|---|---:|---:|---:|\n"
    body = "\n".join(
        f"| {r['teacher']} | {r['family']} | {r['removed_alone']} | {r['removed_cumulative']} |"
        f" {r['remaining']} of {r['total']} |"
        for r in rows
    )
    return head + body + "\n"


def write_funnel_png(rows: list[dict[str, Any]], path: str | Path) -> Path:
    """Left: traces each filter removes alone, per teacher. Right: traces remaining as filters
    are applied in order."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    teachers = list(dict.fromkeys(r["teacher"] for r in rows if r["teacher"] != ALL)) or [ALL]
    fams = list(dict.fromkeys(r["family"] for r in rows))
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.8), dpi=120)
    width = 0.8 / max(len(teachers), 1)
    for k, t in enumerate(teachers):
        tr = {r["family"]: r for r in rows if r["teacher"] == t}
        xs = [i + k * width for i in range(len(fams))]
        ax1.bar(xs, [tr[f]["removed_alone"] if f in tr else 0 for f in fams], width, label=t)
        steps = [r for r in rows if r["teacher"] == t and r["family"] != "(combined)"]
        total = steps[0]["total"] if steps else (tr.get("(combined)") or {}).get("total", 0)
        ax2.plot(
            ["all"] + [f"-{r['family']}" for r in steps],
            [total] + [r["remaining"] for r in steps],
            marker="o",
            label=t,
        )
    ax1.set_xticks([i + 0.4 - width / 2 for i in range(len(fams))], fams, rotation=20)
    ax1.set_ylabel("traces removed (alone)")
    ax1.set_title("Each filter alone")
    ax2.set_ylabel("traces remaining")
    ax2.set_title("Filters applied in order")
    ax2.set_ylim(bottom=0)
    for ax in (ax1, ax2):
        if len(teachers) > 1:
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def safety_counts(store: Store) -> list[dict[str, Any]]:
    """Per teacher: traces scanned and flagged per safety kind (see tracekit.score.safety)."""
    from tracekit.score.safety import safety_counts as _counts

    return _counts(store)


def write_safety_png(rows: list[dict[str, Any]], path: str | Path) -> Path:
    """Share of scanned traces flagged per safety kind, one bar group per teacher."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tracekit.score.safety import KINDS

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    kinds = list(KINDS) + ["any_flag"]
    fig, ax = plt.subplots(figsize=(9, 3.6), dpi=120)
    width = 0.8 / max(len(rows), 1)
    for k, r in enumerate(rows):
        scanned = r["scanned"] or 1
        ax.bar(
            [i + k * width for i in range(len(kinds))],
            [100.0 * (r.get(kind) or 0) / scanned for kind in kinds],
            width,
            label=f"{r['teacher']} ({r['scanned']})",
        )
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(kinds))], kinds, rotation=15)
    ax.set_ylabel("% of scanned traces flagged")
    ax.set_title("Safety screens per teacher")
    if rows:
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
