"""One self-contained HTML report of a store: every table and plot a user looks at after a run.

Plots are matplotlib PNGs embedded as base64 so the file can be mailed or attached to a PR.
Each section reads the store through SQL or the stage modules' own summary functions and is
left out (with a note) when the store has nothing for it yet.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tracekit.store import RunResult, Store

SECTIONS = [
    "overview",
    "funnel",
    "teachers",
    "pass-rate",
    "flags",
    "datasets",
    "training",
    "eval",
    "provenance",
]


class ReportConfig(BaseModel):
    """Where to write the report."""

    model_config = ConfigDict(extra="forbid")

    output: str = Field("report.html", description="HTML file to write")
    title: str = "tracekit report"


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _img(b64: str, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{b64}"/>'


def _table(rows: list[dict[str, Any]], max_rows: int = 50) -> str:
    if not rows:
        return "<p class='empty'>no rows</p>"
    cols = list(rows[0])
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in cols)
    body = []
    for r in rows[:max_rows]:
        cells = []
        for c in cols:
            v = r[c]
            if isinstance(v, float):
                v = f"{v:.4g}"
            elif isinstance(v, (dict, list)):
                v = json.dumps(v, default=str)
            cells.append(f"<td>{html.escape('' if v is None else str(v))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    more = (
        f"<p class='empty'>{len(rows) - max_rows} more rows not shown</p>"
        if len(rows) > max_rows
        else ""
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>{more}"


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _counts(raw: str | None) -> dict[str, Any]:
    try:
        data = json.loads(raw or "{}")
    except ValueError:
        return {}
    return data


# ---- sections -----------------------------------------------------------------------------------
def overview(store: Store) -> str:
    rows = [
        {"table": t, "rows": store.count(t)}
        for t in (
            "prompts",
            "traces",
            "verdicts",
            "scores",
            "flags",
            "sentences",
            "datasets",
            "runs",
        )
    ]
    return _table(rows)


def funnel(store: Store) -> str:
    """Every stage run in the order it ran, with its counts: what each step took in and let
    through (eval runs show the collect/verify runs they drive as well)."""
    rows = store.dicts(
        """SELECT stage, run_id, status, round(epoch(finished_at) - epoch(started_at), 1) AS seconds, counts
           FROM runs WHERE stage NOT IN ('recipe-step', 'report')
           ORDER BY started_at DESC LIMIT 60"""
    )[::-1]
    for r in rows:
        c = _counts(r.pop("counts")).get("counts", {})
        r["counts"] = ", ".join(f"{k}={v}" for k, v in c.items())
    return _table(rows, 100)


def teachers(store: Store) -> str:
    rows = store.dicts(
        """SELECT t.teacher, t.origin, count(*) AS traces, count(v.correct) AS verified,
                  count(*) FILTER (WHERE v.correct) AS correct,
                  round(count(*) FILTER (WHERE v.correct) / nullif(count(v.correct), 0), 4) AS accuracy,
                  round(avg(t.completion_tokens), 1) AS mean_tokens,
                  quantile_cont(length(t.text), 0.5) AS chars_p50,
                  count(*) FILTER (WHERE t.finish_reason = 'length') AS truncated,
                  round(sum(t.cost_usd), 4) AS cost_usd
           FROM traces t LEFT JOIN v_final_verdicts v USING (trace_id)
           GROUP BY t.teacher, t.origin ORDER BY t.origin, t.teacher"""
    )
    if not rows:
        return _table(rows)
    plt = _plt()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.2))
    labels = [f"{r['teacher'][-28:]}\n({r['origin']})" for r in rows]
    a1.barh(labels, [r["accuracy"] or 0 for r in rows], color="#1f77b4")
    a1.set_xlim(0, 1)
    a1.set_xlabel("accuracy (verified traces)")
    lengths = store.dicts(
        "SELECT teacher, origin, list(length(text)) AS l FROM traces GROUP BY ALL ORDER BY origin, teacher"
    )
    a2.boxplot(
        [r["l"] for r in lengths],
        orientation="horizontal",
        tick_labels=[f"{r['teacher'][-28:]}" for r in lengths],
    )
    a2.set_xlabel("trace length (characters)")
    fig.tight_layout()
    return _table(rows) + _img(_png(fig), "accuracy and length per teacher")


def pass_rate(store: Store) -> str:
    """Per prompt over all teacher samples (students excluded): the shape that decides how much
    SFT data (prompts above 0) and how many preference pairs (prompts strictly between 0 and 1)
    a store can give."""
    rows = store.fetchall(
        """SELECT count(*) FILTER (WHERE v.correct) / count(v.correct) AS pass_rate,
                  bool_or(v.correct) AND bool_or(NOT v.correct) AS both
           FROM traces t JOIN v_final_verdicts v USING (trace_id)
           WHERE t.origin <> 'student' AND v.correct IS NOT NULL
           GROUP BY t.prompt_id"""
    )
    if not rows:
        return "<p class='empty'>no verified traces yet</p>"
    vals = [r[0] for r in rows]
    both = sum(1 for r in rows if r[1])
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 2.8))
    ax.hist(vals, bins=[i / 10 for i in range(11)], color="#2ca02c", edgecolor="white")
    ax.set_xlabel("pass rate per prompt (all teacher samples)")
    ax.set_ylabel("prompts")
    return (
        f"<p>{len(vals)} prompts with verified teacher traces; {both} have both a positive and a"
        " negative (usable for REDI/DPO pairs); prompts at 0 give no SFT data, prompts at 1 no"
        " negatives.</p>" + _img(_png(fig), "pass-rate histogram")
    )


def flags(store: Store) -> str:
    rows = store.dicts(
        """SELECT split_part(flag, ':', 1) AS family, count(*) AS flags,
                  count(DISTINCT trace_id) AS traces, count(DISTINCT prompt_id) AS prompts
           FROM flags GROUP BY 1 ORDER BY 2 DESC"""
    )
    out = _table(rows)
    try:
        from tracekit.report.filters import filter_funnel

        ff = filter_funnel(store)
        if ff:
            out += "<h3>what each filter would remove</h3>" + _table(ff)
    except Exception as e:  # a section must never break the report
        out += f"<p class='empty'>filter funnel unavailable: {html.escape(str(e))}</p>"
    return out


def datasets(store: Store) -> str:
    rows = store.dicts(
        "SELECT name, kind, rows, fingerprint, selection, created_at FROM datasets ORDER BY created_at"
    )
    out_rows = []
    for r in rows:
        sel = _counts(r.pop("selection"))
        fun = sel.get("funnel") or sel.get("counts") or {}
        r["funnel"] = (
            ", ".join(f"{k}={v}" for k, v in fun.items()) if isinstance(fun, dict) else str(fun)
        )
        out_rows.append(r)
    return _table(out_rows)


def training(store: Store) -> str:
    runs = store.dicts(
        """SELECT run_id, stage, counts FROM runs
           WHERE stage LIKE 'train%' AND status = 'ok' ORDER BY started_at"""
    )
    parts, curves = [], []
    for r in runs:
        details = _counts(r["counts"])
        out = details.get("output")
        row = {
            "run": r["run_id"],
            "stage": r["stage"],
            "dataset": details.get("dataset"),
            "steps": details.get("global_step"),
            "first_loss": details.get("first_loss"),
            "last_loss": details.get("last_loss"),
            "lr": details.get("learning_rate"),
        }
        parts.append(row)
        if out and (Path(out) / "trainer_log.jsonl").exists():
            steps, losses = [], []
            for line in (Path(out) / "trainer_log.jsonl").read_text().splitlines():
                rec = json.loads(line)
                if "loss" in rec and "step" in rec:
                    steps.append(rec["step"])
                    losses.append(rec["loss"])
            if losses:
                curves.append((f"{r['stage']} {details.get('dataset', '')}", steps, losses))
    if not parts:
        return "<p class='empty'>no training runs</p>"
    html_out = _table(parts)
    if curves:
        plt = _plt()
        fig, axes = plt.subplots(1, len(curves), figsize=(5 * len(curves), 2.8), squeeze=False)
        for ax, (name, steps, losses) in zip(axes[0], curves, strict=False):
            ax.plot(steps, losses, marker=".")
            ax.set_title(name, fontsize=9)
            ax.set_xlabel("step")
            ax.set_ylabel("loss")
        fig.tight_layout()
        html_out += _img(_png(fig), "training curves")
    return html_out


def evals(store: Store) -> str:
    runs = store.dicts(
        "SELECT run_id, counts, started_at FROM runs WHERE stage = 'eval' AND status = 'ok' ORDER BY started_at"
    )
    rows = []
    for r in runs:
        d = _counts(r["counts"])
        for bench, m in (d.get("benchmarks") or {}).items():
            rows.append(
                {
                    "run": r["run_id"],
                    "model": d.get("student") or d.get("model"),
                    "benchmark": bench,
                    "problems": m.get("problems"),
                    "samples": m.get("samples"),
                    "pass@1": m.get("pass@1"),
                    "stderr": m.get("pass@1_stderr", m.get("stderr")),
                    "mean_tokens": m.get("mean_tokens"),
                    "truncation_rate": m.get("truncation_rate"),
                }
            )
    if not rows:
        return "<p class='empty'>no evaluations</p>"
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 2.8))
    labels = [f"{(r['model'] or '')[-30:]}\n{r['benchmark']}" for r in rows]
    ax.bar(
        labels,
        [r["pass@1"] or 0 for r in rows],
        yerr=[r["stderr"] or 0 for r in rows],
        capsize=4,
        color="#9467bd",
    )
    ax.set_ylabel("pass@1 (± s.e.)")
    ax.set_ylim(0, 1)
    fig.tight_layout()
    return _table(rows) + _img(_png(fig), "eval before and after")


def provenance(store: Store) -> str:
    if not store.count("sentences"):
        return "<p class='empty'>no provenance results</p>"
    from tracekit.report.provenance import provenance_summary, summary_rows, write_provenance_plot

    summary = provenance_summary(store)
    out = ""
    for run in summary["runs"][:3]:
        out += f"<h3>T={html.escape(str(run['teacher']))} S={html.escape(str(run['student']))} D={html.escape(str(run.get('distilled')))}</h3>"
        out += _table(summary_rows(run))
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        p = write_provenance_plot(summary, Path(d) / "prov.png")
        out += _img(base64.b64encode(p.read_bytes()).decode(), "provenance shares")
    return out


_RENDERERS = {
    "overview": ("Store overview", overview),
    "funnel": ("Funnel: every stage run, in order", funnel),
    "teachers": ("Accuracy and length per teacher", teachers),
    "pass-rate": ("Pass rate per prompt", pass_rate),
    "flags": ("Flags", flags),
    "datasets": ("Datasets built", datasets),
    "training": ("Training", training),
    "eval": ("Evaluation (pass@1 with standard errors)", evals),
    "provenance": ("Provenance of student sentences", provenance),
}

CSS = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
h1{margin-bottom:0}section{margin:1.5em 0;padding-top:.5em;border-top:1px solid #ddd}
table{border-collapse:collapse;font-size:13px;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 7px;text-align:left}
th{background:#f3f3f3}img{max-width:100%;display:block;margin:.5em 0}.empty{color:#888;font-style:italic}"""


def render_report(store: Store, title: str = "tracekit report") -> str:
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{CSS}</style></head><body><h1>{html.escape(title)}</h1>"
        f"<p>store <code>{html.escape(store.path.name)}</code></p>"
    ]
    for key in SECTIONS:
        heading, fn = _RENDERERS[key]
        try:
            body = fn(store)
        except Exception as e:  # one broken section must not lose the rest of the report
            body = f"<p class='empty'>section failed: {html.escape(type(e).__name__ + ': ' + str(e))}</p>"
        parts.append(f"<section id='{key}'><h2>{html.escape(heading)}</h2>{body}</section>")
    parts.append("</body></html>")
    return "\n".join(parts)


def run_report(store: Store, cfg: ReportConfig) -> RunResult:
    with store.run("report", cfg) as run:
        doc = render_report(store, cfg.title)
        out = Path(cfg.output)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(doc)
        run.add("sections", len(SECTIONS))
        run.add("images", doc.count("data:image/png;base64,"))
        run.details["output"] = str(out)
    return run.result
