"""What provenance found, per run: category shares, where in a response they sit, and whether
teacher-owned sentences go with correct answers.

`provenance_summary` is the one reader (the CLI table, the PNG plot and the HTML report all
render its dict). Shares are over the sentences that got a category (unscored ones are counted
separately). Position thirds split each trace by sentence index: sentence i of n is early when
(i + 0.5) / n < 1/3, late when >= 2/3. Correctness is the final verdict of v_final_verdicts;
`teacher_ratio_correct_corr` is the Pearson (point-biserial) correlation between a trace's
teacher ratio and its correctness over verified traces.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from tracekit.score.provenance import CATEGORIES
from tracekit.store import Store

POSITIONS = ("early", "middle", "late")
CORRECTNESS = ("correct", "incorrect", "unverified")

_POSITION_SQL = """CASE WHEN (s.idx + 0.5) / n.n < 1.0 / 3 THEN 'early'
                        WHEN (s.idx + 0.5) / n.n < 2.0 / 3 THEN 'middle' ELSE 'late' END"""
_CORRECT_SQL = "CASE WHEN v.correct THEN 'correct' WHEN v.correct = false THEN 'incorrect' ELSE 'unverified' END"


def _shares(counts: dict[str, int]) -> dict[str, float]:
    total = sum(counts.get(c, 0) for c in CATEGORIES)
    return {c: (counts.get(c, 0) / total if total else 0.0) for c in CATEGORIES}


def _grouped(store: Store, run_id: str, group_sql: str) -> dict[str, dict[str, int]]:
    rows = store.fetchall(
        f"""WITH n AS (SELECT trace_id, count(*) AS n FROM sentences WHERE run_id = ? GROUP BY trace_id)
            SELECT {group_sql} AS g, s.category, count(*)
            FROM sentences s JOIN n USING (trace_id) LEFT JOIN v_final_verdicts v USING (trace_id)
            WHERE s.run_id = ? AND s.category IS NOT NULL
            GROUP BY ALL""",
        [run_id, run_id],
    )
    out: dict[str, dict[str, int]] = {}
    for g, cat, n in rows:
        out.setdefault(g, {})[cat] = int(n)
    return out


def _pearson(xs: list[float], ys: list[float]) -> float | None:
    if len(xs) < 3:
        return None
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    sxx = sum((x - mx) ** 2 for x in xs)
    syy = sum((y - my) ** 2 for y in ys)
    if sxx == 0 or syy == 0:
        return None
    return sxy / math.sqrt(sxx * syy)


def _run_summary(store: Store, run_id: str) -> dict[str, Any]:
    cfg_row = store.fetchone(
        "SELECT config, started_at, status FROM runs WHERE run_id = ?", [run_id]
    )
    cfg = json.loads(cfg_row[0]) if cfg_row and cfg_row[0] else {}
    counts = dict(
        store.fetchall(
            "SELECT category, count(*) FROM sentences WHERE run_id = ? AND category IS NOT NULL GROUP BY 1",
            [run_id],
        )
    )
    totals = store.fetchone(
        "SELECT count(DISTINCT trace_id), count(*), count(*) FILTER (WHERE category IS NULL)"
        " FROM sentences WHERE run_id = ?",
        [run_id],
    )
    by_position = _grouped(store, run_id, _POSITION_SQL)
    by_correct = _grouped(store, run_id, _CORRECT_SQL)
    per_trace = store.fetchall(
        """SELECT v.correct, r.value
           FROM scores r JOIN v_final_verdicts v USING (trace_id)
           WHERE r.name = 'teacher_ratio' AND r.run_id = ? AND r.value IS NOT NULL AND v.correct IS NOT NULL""",
        [run_id],
    )
    traces_by = dict(
        store.fetchall(
            f"""SELECT {_CORRECT_SQL} AS g, count(DISTINCT s.trace_id) FROM sentences s
                LEFT JOIN v_final_verdicts v USING (trace_id) WHERE s.run_id = ? GROUP BY 1""",
            [run_id],
        )
    )
    ratio_by = dict(
        store.fetchall(
            f"""SELECT {_CORRECT_SQL} AS g, avg(r.value) FROM scores r
                LEFT JOIN v_final_verdicts v USING (trace_id)
                WHERE r.name = 'teacher_ratio' AND r.run_id = ? GROUP BY 1""",
            [run_id],
        )
    )
    return {
        "run_id": run_id,
        "started_at": str(cfg_row[1]) if cfg_row else None,
        "status": cfg_row[2] if cfg_row else None,
        "teacher": cfg.get("teacher"),
        "student": cfg.get("student"),
        "distilled": cfg.get("distilled"),
        "beta": cfg.get("beta"),
        "traces": int(totals[0]),
        "sentences": int(totals[1]),
        "unscored": int(totals[2]),
        "counts": {c: int(counts.get(c, 0)) for c in CATEGORIES},
        "shares": _shares(counts),
        "by_position": {p: _shares(by_position.get(p, {})) for p in POSITIONS},
        "by_correctness": {
            g: {
                "traces": int(traces_by.get(g, 0)),
                "sentences": sum(by_correct.get(g, {}).values()),
                "shares": _shares(by_correct.get(g, {})),
                "mean_teacher_ratio": ratio_by.get(g),
            }
            for g in CORRECTNESS
        },
        "teacher_ratio_correct_corr": _pearson(
            [float(r[1]) for r in per_trace], [float(bool(r[0])) for r in per_trace]
        ),
    }


def provenance_summary(store: Store, run_id: str | None = None) -> dict[str, Any]:
    """{"categories": [...], "runs": [per-run summary, newest first]} for every provenance run
    whose sentences are still in the store (a later run over the same traces replaces them), or
    only `run_id`."""
    if run_id is not None:
        ids = (
            [run_id]
            if store.scalar("SELECT count(*) FROM sentences WHERE run_id = ?", [run_id])
            else []
        )
    else:
        ids = [
            r[0]
            for r in store.fetchall(
                "SELECT s.run_id FROM sentences s LEFT JOIN runs r USING (run_id)"
                " GROUP BY s.run_id ORDER BY max(r.started_at) DESC NULLS LAST, s.run_id"
            )
        ]
    return {"categories": list(CATEGORIES), "runs": [_run_summary(store, i) for i in ids]}


def summary_rows(run: dict[str, Any]) -> list[dict[str, Any]]:
    """The table the CLI prints: one row per slice (all, thirds, correctness), shares in %."""
    rows = [("all", run["shares"], run["sentences"] - run["unscored"])]
    rows += [(p, run["by_position"][p], None) for p in POSITIONS]
    rows += [
        (g, run["by_correctness"][g]["shares"], run["by_correctness"][g]["sentences"])
        for g in CORRECTNESS
    ]
    out = []
    for name, shares, n in rows:
        row: dict[str, Any] = {"slice": name, "sentences": n if n is not None else ""}
        row.update({c: f"{100 * shares[c]:.1f}%" for c in CATEGORIES})
        out.append(row)
    return out


def write_provenance_plot(summary: dict[str, Any], path: str | Path) -> Path:
    """A PNG with one panel per run: stacked category shares overall, by third of the response
    and by correctness, so a drift from teacher to student behaviour is visible at a glance."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = summary["runs"][:6]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    colors = {"teacher": "#1f77b4", "student": "#ff7f0e", "shared": "#9e9e9e", "boosted": "#2ca02c"}
    fig, axes = plt.subplots(
        max(1, len(runs)), 1, figsize=(9, 2.8 * max(1, len(runs))), squeeze=False
    )
    for ax, run in zip(axes[:, 0], runs or [None], strict=True):
        if run is None:
            ax.text(0.5, 0.5, "no provenance results in this store", ha="center", va="center")
            ax.axis("off")
            continue
        slices = [("all", run["shares"])]
        slices += [(p, run["by_position"][p]) for p in POSITIONS]
        slices += [(g, run["by_correctness"][g]["shares"]) for g in ("correct", "incorrect")]
        labels = [s[0] for s in slices]
        left = [0.0] * len(slices)
        for c in CATEGORIES:
            vals = [s[1][c] for s in slices]
            ax.barh(labels, vals, left=left, color=colors[c], label=c)
            left = [a + b for a, b in zip(left, vals, strict=True)]
        ax.invert_yaxis()
        ax.set_xlim(0, 1)
        ax.set_xlabel("share of sentences")
        title = f"T={run['teacher']}  S={run['student']}"
        if run.get("distilled"):
            title += f"  D={run['distilled']}"
        ax.set_title(f"{title}\n{run['run_id']} ({run['sentences']} sentences)", fontsize=8)
        ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
