"""The decontamination report: per benchmark, what the store's prompts (and traces) share with it.

Library functions for the CLI, the HTML report and the data cards: `decontam_report` (rows),
`decontam_markdown` (the table a card embeds) and `write_decontam_png`.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from tracekit.store import Store


def benchmark_totals(store: Store) -> dict[str, dict[str, Any]]:
    """Item counts and sources of every benchmark a decontam run checked (latest run wins)."""
    totals: dict[str, dict[str, Any]] = {}
    for (counts,) in store.fetchall(
        "SELECT counts FROM runs WHERE stage = 'score.decontam' AND status = 'ok' ORDER BY started_at"
    ):
        try:
            data = json.loads(counts or "{}")
        except json.JSONDecodeError:
            continue
        totals.update(data.get("benchmarks") or {})
    return totals


def decontam_report(store: Store) -> list[dict[str, Any]]:
    """One row per benchmark: items in the benchmark, prompts flagged, traces of those prompts,
    traces flagged on their own text, and distinct benchmark items hit (with the share)."""
    totals = benchmark_totals(store)
    agg: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"prompts": set(), "traces": set(), "items": set()}
    )
    for flag, pid, tid, detail in store.fetchall(
        "SELECT flag, prompt_id, trace_id, detail FROM flags WHERE flag LIKE 'decontam:%'"
    ):
        name = flag.split(":", 1)[1]
        a = agg[name]
        (a["traces"] if tid else a["prompts"]).add(tid or pid)
        try:
            d = json.loads(detail or "{}")
        except json.JSONDecodeError:
            d = {}
        a["items"].update(d.get("items") or ([d["item"]] if "item" in d else []))
    prompts_total = store.count("prompts")
    rows = []
    for name in sorted(set(totals) | set(agg)):
        a = agg[name]
        n_items = (totals.get(name) or {}).get("items")
        pids = sorted(a["prompts"])
        traces_of_prompts = (
            store.scalar(
                "SELECT count(*) FROM traces WHERE prompt_id IN (SELECT unnest(?::VARCHAR[]))",
                [pids],
            )
            if pids
            else 0
        )
        rows.append(
            {
                "benchmark": name,
                "benchmark_items": n_items,
                "items_hit": len(a["items"]),
                "items_hit_pct": round(100.0 * len(a["items"]) / n_items, 2) if n_items else None,
                "prompts_flagged": len(pids),
                "prompts_total": prompts_total,
                "traces_of_flagged_prompts": int(traces_of_prompts),
                "traces_flagged": len(a["traces"]),
            }
        )
    return rows


def decontam_markdown(rows: list[dict[str, Any]]) -> str:
    """A Markdown table for data cards; empty rows say that no check ran."""
    if not rows:
        return "_No decontamination check has run on this store._\n"
    head = (
        "| benchmark | items | items hit | prompts flagged | traces of flagged prompts |"
        " traces flagged |\n|---|---:|---:|---:|---:|---:|\n"
    )
    lines = []
    for r in rows:
        items = r["benchmark_items"] if r["benchmark_items"] is not None else "?"
        pct = f" ({r['items_hit_pct']:.1f}%)" if r["items_hit_pct"] is not None else ""
        lines.append(
            f"| {r['benchmark']} | {items} | {r['items_hit']}{pct} |"
            f" {r['prompts_flagged']} of {r['prompts_total']} | {r['traces_of_flagged_prompts']} |"
            f" {r['traces_flagged']} |"
        )
    return head + "\n".join(lines) + "\n"


def write_decontam_png(rows: list[dict[str, Any]], path: str | Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    names = [r["benchmark"] for r in rows] or ["(none)"]
    flagged = [r["prompts_flagged"] for r in rows] or [0]
    fig, ax = plt.subplots(figsize=(max(4.0, 1.2 * len(names) + 2), 3.2), dpi=120)
    bars = ax.bar(names, flagged, color="#c0504d")
    for bar, r in zip(bars, rows, strict=False):
        total = r["benchmark_items"] if r["benchmark_items"] is not None else "?"
        ax.annotate(
            f"{r['items_hit']}/{total} items",
            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
            ha="center",
            va="bottom",
            fontsize=8,
        )
    ax.set_ylabel("prompts flagged")
    ax.set_title("Benchmark overlap (word n-grams)")
    ax.margins(y=0.2)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
