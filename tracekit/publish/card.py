"""Data cards: Hub YAML metadata plus what a reader needs to trust a dataset (sources and their
licenses, teachers, verification, the funnel, lengths, decontamination, safety flags, the exact
rebuild command, limitations, citations), rendered from the Jinja templates in data_cards/.

Everything in a card comes from the store, and the final text is scrubbed of local paths,
hostnames and secrets: a card is written to be published.
"""

from __future__ import annotations

import json
import os
import re
import socket
import tempfile
from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml

from tracekit.select.formats import lit
from tracekit.select.sql import verifier_priority_sql
from tracekit.store import Store

TEMPLATES = {
    "sft": "sft.md.j2",
    "redi": "preference.md.j2",
    "dpo": "preference.md.j2",
    "traces": "traces.md.j2",
}

# lowercase substring of prompts.source -> (Hub license id, what the card says)
KNOWN_SOURCES: list[tuple[str, str, str]] = [
    ("gsm8k", "mit", "MIT (openai/grade-school-math)"),
    ("math500", "mit", "MIT (openai/prm800k, MATH-500 split)"),
    ("math-500", "mit", "MIT (openai/prm800k, MATH-500 split)"),
    ("deepscaler", "mit", "MIT (agentica-project/deepscaler)"),
    ("openr1", "apache-2.0", "Apache-2.0 (open-r1/OpenR1-Math-220k)"),
    ("open-r1", "apache-2.0", "Apache-2.0 (open-r1/OpenR1-Math-220k)"),
    ("numina", "apache-2.0", "Apache-2.0 (AI-MO/NuminaMath)"),
    ("skythought", "apache-2.0", "Apache-2.0 (NovaSky-AI/SkyThought)"),
]

VERIFIER_METHODS = {
    "math": "symbolic and numeric equivalence with Hugging Face math-verify against the reference answer",
    "code": "running the candidate program against test cases in a sandboxed subprocess",
    "exact": "normalised exact string match with the reference answer",
    "choice": "extracting the chosen option letter and matching the reference",
    "regex": "a regular expression extracting the answer, compared with the reference",
    "majority": "agreement with the majority answer of the teacher samples (no reference)",
    "source": "correctness labels shipped with the source dataset (not re-verified by tracekit)",
}

CITATIONS = {
    "redi": """@article{xu2025redi,
  title   = {Harnessing Negative Signals: Reinforcement Distillation from Teacher Data for LLM Reasoning},
  author  = {Xu, Shuyao and others},
  journal = {arXiv preprint arXiv:2505.24850},
  year    = {2025}
}""",
    "dpo": """@inproceedings{rafailov2023dpo,
  title     = {Direct Preference Optimization: Your Language Model is Secretly a Reward Model},
  author    = {Rafailov, Rafael and Sharma, Archit and Mitchell, Eric and Ermon, Stefano and Manning, Christopher D. and Finn, Chelsea},
  booktitle = {Advances in Neural Information Processing Systems},
  year      = {2023},
  note      = {arXiv:2305.18290}
}""",
    "skyt1flash": """@misc{novasky2025t1flash,
  author       = {{NovaSky Team}},
  title        = {Think Less, Achieve More: Cut Reasoning Costs by 50\\% Without Sacrificing Accuracy},
  howpublished = {https://novasky-ai.github.io/posts/reduce-overthinking},
  year         = {2025}
}""",
    "gsm8k": """@article{cobbe2021gsm8k,
  title   = {Training Verifiers to Solve Math Word Problems},
  author  = {Cobbe, Karl and Kosaraju, Vineet and Bavarian, Mohammad and Chen, Mark and Jun, Heewoo and Kaiser, Lukasz and Plappert, Matthias and Tworek, Jerry and Hilton, Jacob and Nakano, Reiichiro and Hesse, Christopher and Schulman, John},
  journal = {arXiv preprint arXiv:2110.14168},
  year    = {2021}
}""",
    "math-verify": """@misc{mathverify,
  author       = {Kydl{\\'\\i}{\\v{c}}ek, Hynek and others},
  title        = {Math-Verify: a robust mathematical expression evaluation system},
  howpublished = {https://github.com/huggingface/Math-Verify},
  year         = {2025}
}""",
}


# ---- scrubbing ---------------------------------------------------------------------------------
_ABS_PATH = re.compile(r"(?<![\w.~/-])(?:~|/(?!/))(?:[\w.@+-]+/)+[\w.@+-]*")
_WIN_PATH = re.compile(r"\b[A-Za-z]:\\[^\s'\"`|]+")
_LOCAL_URL = re.compile(
    r"\b(?:https?|wss?)://(?:localhost|127\.\d+\.\d+\.\d+|0\.0\.0\.0|10\.\d+\.\d+\.\d+|192\.168\.\d+\.\d+"
    r"|172\.(?:1[6-9]|2\d|3[01])\.\d+\.\d+|\[::1\]|[\w-]+(?:\.local|\.lan|\.internal))(?::\d+)?[^\s'\"`|)]*"
)
_SECRETS = [
    re.compile(r"\bhf_[A-Za-z0-9]{20,}\b"),
    re.compile(r"\bsk-[A-Za-z0-9_-]{16,}\b"),
    re.compile(r"\b(?:ghp|gho|github_pat)_[A-Za-z0-9_]{20,}\b"),
]


def _secret_values() -> list[str]:
    keys = re.compile(r"(TOKEN|KEY|SECRET|PASSWORD)", re.I)
    return [v for k, v in os.environ.items() if keys.search(k) and len(v) >= 8]


def scrub(text: str, extra: list[str] | None = None) -> str:
    """Remove what must never be published: secrets, local URLs and hosts, absolute paths."""
    for value in _secret_values():
        text = text.replace(value, "<redacted>")
    for pat in _SECRETS:
        text = pat.sub("<redacted>", text)
    text = _LOCAL_URL.sub("<local-url>", text)
    for literal in sorted(
        {*(extra or []), str(Path.home()), tempfile.gettempdir()}, key=len, reverse=True
    ):
        if literal and len(literal) > 1:
            text = text.replace(literal, "<local>")
    host = socket.gethostname()
    if host and len(host) >= 3 and host not in ("localhost",):
        text = re.sub(rf"\b{re.escape(host)}\b", "<host>", text)
    text = _WIN_PATH.sub("<local-path>", text)
    return _ABS_PATH.sub(lambda m: "<local>/" + m.group(0).rstrip("/").rsplit("/", 1)[-1], text)


# ---- helpers -----------------------------------------------------------------------------------
def size_category(n: int) -> str:
    for bound, label in [
        (1_000, "n<1K"),
        (10_000, "1K<n<10K"),
        (100_000, "10K<n<100K"),
        (1_000_000, "100K<n<1M"),
        (10_000_000, "1M<n<10M"),
        (100_000_000, "10M<n<100M"),
        (1_000_000_000, "100M<n<1B"),
    ]:
        if n < bound:
            return label
    return "n>1T"


def source_license(source: str | None) -> tuple[str | None, str]:
    s = (source or "").lower()
    for key, hub_id, text in KNOWN_SOURCES:
        if key in s:
            return hub_id, text
    return None, "unknown: check the source's own license"


def write_length_histogram(series: dict[str, Any], unit: str, path: Path, title: str = "") -> Path:
    """Binned with numpy and drawn as one step artist per series: bar patches and tight_layout
    cost seconds per plot, which a build should not pay."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig = plt.figure(figsize=(7, 3.6), dpi=100)
    ax = fig.add_axes((0.1, 0.14, 0.86, 0.76))
    arrays = {k: np.asarray(v) for k, v in series.items()}
    values = np.concatenate(list(arrays.values())) if arrays else np.array([])
    edges = np.histogram_bin_edges(values, bins=40) if values.size else np.linspace(0, 1, 11)
    for label, vs in arrays.items():
        if vs.size:
            counts, _ = np.histogram(vs, bins=edges)
            ax.stairs(
                counts, edges, fill=len(series) == 1, alpha=0.8, label=f"{label} (n={len(vs)})"
            )
    ax.set_xlabel(f"length ({unit})")
    ax.set_ylabel("rows")
    ax.set_title(f"{title}: completion lengths" if title else "completion lengths")
    ax.legend()
    fig.savefig(path)
    plt.close(fig)
    return path


def _ids_sql(kind: str) -> str:
    if kind == "sft" or kind == "traces":
        return "SELECT 'completion' AS role, trace_id FROM dataset_rows WHERE dataset_id = $id"
    return (
        "SELECT 'chosen' AS role, trace_id FROM dataset_rows WHERE dataset_id = $id"
        " UNION ALL SELECT 'rejected', pair_trace_id FROM dataset_rows"
        " WHERE dataset_id = $id AND pair_trace_id IS NOT NULL"
    )


def _q(store: Store, sql: str, dataset_id: str) -> list[dict[str, Any]]:
    cur = store.con.execute(sql, {"id": dataset_id}) if "$id" in sql else store.con.execute(sql)
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r, strict=False)) for r in cur.fetchall()]


def _agreement(store: Store, a: str, b: str) -> Any:
    """The verify helper's measure when installed; a plain agreement rate over traces both judged
    otherwise."""
    try:
        from tracekit.verify.stats import agreement  # type: ignore[import-not-found]
    except ImportError:
        agreement = None
    if agreement is not None:
        try:
            return agreement(store, a, b)
        except Exception as e:  # a card must render even if a statistic cannot be computed
            return {"error": f"{type(e).__name__}: {e}"}
    row = store.fetchone(
        "SELECT count(*), count(*) FILTER (WHERE x.correct = y.correct) FROM verdicts x"
        " JOIN verdicts y USING (trace_id) WHERE x.verifier = ? AND y.verifier = ?"
        " AND x.correct IS NOT NULL AND y.correct IS NOT NULL",
        [a, b],
    )
    both, agree = row or (0, 0)
    return {
        "traces_judged_by_both": both,
        "agree": agree,
        "agreement": round(agree / both, 4) if both else None,
    }


def _flatten(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return ", ".join(f"{k}={_flatten(v)}" for k, v in value.items())
    return str(value)


def _decontam(store: Store) -> dict[str, Any]:
    try:
        from tracekit.report.decontam import decontam_report
    except ImportError:
        return {"available": False, "rows": [], "markdown": None}
    try:
        rows = decontam_report(store)
    except Exception as e:
        return {
            "available": True,
            "rows": [],
            "markdown": None,
            "error": f"{type(e).__name__}: {e}",
        }
    md = None
    try:
        from tracekit.report.decontam import decontam_markdown

        md = decontam_markdown(rows) if rows else None
    except ImportError:
        pass
    return {"available": True, "rows": rows, "markdown": md}


# ---- the context -------------------------------------------------------------------------------
def card_context(store: Store, row: dict[str, Any], repo_id: str | None = None) -> dict[str, Any]:
    sel = row["selection"]
    sel = json.loads(sel) if isinstance(sel, str) else sel
    kind, did = row["kind"], row["dataset_id"]
    opts = sel.get("options", {})
    # the dataset's trace ids once, as a temp table every query below joins
    store.con.execute(
        f"CREATE OR REPLACE TEMP TABLE _tk_card_ids AS {_ids_sql(kind)}", {"id": did}
    ).fetchall()
    ids = "SELECT * FROM _tk_card_ids"
    sources = _q(
        store,
        f"""WITH ids AS ({ids})
            SELECT p.source, count(DISTINCT p.prompt_id) AS prompts, count(*) AS traces,
                   any_value(json_extract_string(p.meta, '$.license')) AS meta_license
            FROM ids JOIN traces t USING (trace_id) JOIN prompts p ON p.prompt_id = t.prompt_id
            GROUP BY p.source ORDER BY prompts DESC""",
        did,
    )
    hub_ids = set()
    for s in sources:
        hub_id, text = source_license(s["source"])
        if s.get("meta_license"):
            text = s["meta_license"]
        s["license"] = text
        hub_ids.add(hub_id)
    license_id = opts.get("license") or (
        hub_ids.pop() if len(hub_ids) == 1 and None not in hub_ids else "other"
    )
    teachers = _q(
        store,
        f"""WITH ids AS ({ids})
            SELECT t.teacher, t.teacher_revision AS revision, t.backend, t.origin, ids.role,
                   count(*) AS traces, list(DISTINCT t.sampling) FILTER (WHERE t.sampling IS NOT NULL) AS sampling
            FROM ids JOIN traces t USING (trace_id) GROUP BY ALL ORDER BY traces DESC""",
        did,
    )
    for t in teachers:
        samp = [s for s in (t.pop("sampling") or []) if s]
        t["sampling"] = "; ".join(samp[:3]) + (f" (+{len(samp) - 3} more)" if len(samp) > 3 else "")
    chosen = opts.get("verifier")
    in_ids = "trace_id IN (SELECT trace_id FROM _tk_card_ids)"
    verdict_src = (
        f"(SELECT trace_id, verifier, verifier_version FROM verdicts WHERE verifier = {lit(chosen)} AND {in_ids})"
        if chosen
        else f"""(SELECT trace_id, verifier, verifier_version FROM verdicts
                  WHERE status <> 'no_reference' AND {in_ids}
                  QUALIFY row_number() OVER (PARTITION BY trace_id
                                             ORDER BY {verifier_priority_sql("verifier")}, verifier) = 1)"""
    )
    verifiers = _q(
        store,
        f"""WITH ids AS ({ids})
            SELECT v.verifier, v.verifier_version AS version, count(*) AS traces
            FROM ids JOIN {verdict_src} v USING (trace_id) GROUP BY ALL ORDER BY traces DESC""",
        did,
    )
    for v in verifiers:
        v["method"] = VERIFIER_METHODS.get(v["verifier"], "see the verifier's documentation")
    others = _q(
        store,
        f"""WITH ids AS ({ids}) SELECT DISTINCT v.verifier FROM ids JOIN verdicts v USING (trace_id)
            ORDER BY 1""",
        did,
    )
    agreement = []
    main = verifiers[0]["verifier"] if verifiers else None
    for o in others:
        if main and o["verifier"] != main:
            agreement.append(
                {
                    "a": main,
                    "b": o["verifier"],
                    "result": _flatten(_agreement(store, main, o["verifier"])),
                }
            )
    length_stats = sel.get("length_stats") or _q(
        store,
        f"""WITH ids AS ({ids})
            SELECT role, count(n) AS n, min(n) AS min, quantile_disc(n, 0.5) AS p50,
                   quantile_disc(n, 0.9) AS p90, max(n) AS max, round(avg(n), 1) AS mean
            FROM (SELECT role, length(t.text) AS n FROM ids JOIN traces t USING (trace_id))
            GROUP BY role ORDER BY CASE role WHEN 'completion' THEN 0 WHEN 'chosen' THEN 1 ELSE 2 END""",
        did,
    )
    unit = sel.get("length_unit", "characters")
    safety = _q(
        store,
        f"""WITH ids AS ({ids})
            SELECT f.flag, count(DISTINCT f.trace_id) AS in_store,
                   count(DISTINCT f.trace_id) FILTER (WHERE f.trace_id IN (SELECT trace_id FROM ids)) AS in_dataset
            FROM flags f WHERE f.flag LIKE 'safety:%' GROUP BY f.flag ORDER BY f.flag""",
        did,
    )
    safety_scanned = _q(
        store,
        f"""WITH ids AS ({ids}) SELECT count(DISTINCT s.trace_id) AS n FROM ids JOIN scores s
            ON s.trace_id = ids.trace_id AND s.name = 'safety:flags'""",
        did,
    )[0]["n"]
    decontam = _decontam(store)
    dataset_decontam = _q(
        store,
        f"""WITH ids AS ({ids}) SELECT count(DISTINCT t.prompt_id) AS n FROM ids JOIN traces t USING (trace_id)
            JOIN flags f ON f.prompt_id = t.prompt_id AND f.flag LIKE 'decontam:%'""",
        did,
    )[0]["n"]
    splits = sel.get("splits", {"train": row["rows"]})
    pairing = sel.get("pairing")
    strategy = opts.get("strategy")
    cites = []
    if kind == "redi":
        cites.append(CITATIONS["redi"])
    if kind == "dpo":
        cites.append(CITATIONS["dpo"])
    if pairing == "longest-shortest":
        cites.append(CITATIONS["skyt1flash"])
    if any("gsm8k" in (s["source"] or "").lower() for s in sources):
        cites.append(CITATIONS["gsm8k"])
    if any(v["verifier"] == "math" for v in verifiers):
        cites.append(CITATIONS["math-verify"])
    limitations = _limitations(
        kind, sel, verifiers, decontam, safety_scanned, row["rows"], teachers
    )
    name = row["name"]
    repo = repo_id or f"<org>/{name}"
    metadata = {
        "license": license_id,
        "task_categories": ["text-generation"],
        "language": ["en"],
        "tags": sorted(
            {
                "reasoning",
                "distillation",
                "tracekit",
                "synthetic",
                *({"sft"} if kind == "sft" else {"preference", kind}),
                *{
                    (s["source"] or "").lower()
                    for s in sources
                    if s["source"] and re.fullmatch(r"[\w.-]+", s["source"])
                },
            }
        ),
        "size_categories": [size_category(int(row["rows"]))],
        "pretty_name": name,
        "configs": [
            {
                "config_name": "default",
                "data_files": [{"split": s, "path": f"data/{s}-*"} for s in splits],
            }
        ],
    }
    store.execute("DROP TABLE IF EXISTS _tk_card_ids")
    return {
        "yaml": yaml.safe_dump(metadata, sort_keys=False, allow_unicode=True),
        "name": name,
        "repo_id": repo,
        "kind": kind,
        "rows": row["rows"],
        "splits": splits,
        "prompts": sel.get("prompts"),
        "fingerprint": row["fingerprint"],
        "dataset_id": did,
        "run_id": row.get("run_id"),
        "created_at": str(row.get("created_at") or "")[:19],
        "options": opts,
        "strategy": strategy,
        "pairing": pairing,
        "pairs_per_prompt": sel.get("pairs_per_prompt"),
        "ppl_score": sel.get("ppl_score"),
        "think_format": opts.get("think_format"),
        "sources": sources,
        "license": license_id,
        "teachers": teachers,
        "verifier_label": chosen or "final verdict (highest-priority verifier per trace)",
        "verifiers": verifiers,
        "agreement": agreement,
        "funnel": sel.get("funnel", []),
        "length_unit": unit,
        "length_stats": length_stats,
        "tokenizer": sel.get("tokenizer"),
        "decontam": decontam,
        "dataset_decontam_prompts": dataset_decontam,
        "safety": safety,
        "safety_scanned": safety_scanned,
        "exclude_flags": opts.get("exclude_flags", []),
        "rebuild": sel.get("rebuild", ""),
        "sql": sel.get("sql", ""),
        "limitations": limitations,
        "citations": cites,
        "version": _version(),
    }


def _version() -> str:
    from tracekit import __version__

    return __version__


def _limitations(
    kind: str,
    sel: dict[str, Any],
    verifiers: list[dict[str, Any]],
    decontam: dict[str, Any],
    safety_scanned: int,
    rows: int,
    teachers: list[dict[str, Any]],
) -> list[str]:
    out = []
    if any(v["verifier"] == "source" for v in verifiers):
        out.append(
            "Correctness comes from labels shipped with the source data; tracekit did not re-verify them."
        )
    if any(v["verifier"] == "majority" for v in verifiers):
        out.append(
            "Some verdicts are majority votes without a reference answer: a shared mistake passes as correct."
        )
    if not decontam.get("rows"):
        out.append(
            "No decontamination against evaluation benchmarks was run on this store: do not assume the prompts are absent from benchmarks."
        )
    if safety_scanned < rows:
        out.append(
            f"Safety flags are regex heuristics and cover {safety_scanned} of the traces in this dataset;"
            " a trace without a flag is not certified safe."
        )
    if sel.get("length_unit") == "characters":
        out.append(
            "Lengths are in characters of the teacher's text, not in a student's tokens (no tokenizer was named)."
        )
    if kind != "sft":
        out.append(
            "A rejected completion is wrong under the verifier at its final answer; its intermediate steps may be partly correct."
        )
    if any((t.get("origin") or "") == "imported" for t in teachers):
        out.append(
            "Some traces were imported: their sampling parameters and teacher revisions may be unknown."
        )
    out.append(
        "Teacher outputs may be subject to the teachers' terms of use; check them before commercial use."
    )
    out.append(
        "The fingerprint identifies the rows (trace ids, splits, lengths) and formatting options; it does not hash every byte of text."
    )
    return out


@lru_cache(maxsize=1)
def _env() -> Any:
    import jinja2

    root = files("tracekit.data_cards")
    return jinja2.Environment(
        loader=jinja2.FunctionLoader(lambda name: root.joinpath(name).read_text(encoding="utf-8")),
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )


def render_card(store: Store, row: dict[str, Any], repo_id: str | None = None) -> str:
    """The README.md of a dataset row (a `datasets` row as a dict)."""
    ctx = card_context(store, row, repo_id)
    text = _env().get_template(TEMPLATES.get(row["kind"], "sft.md.j2")).render(ctx=ctx, **ctx)
    extra = [str(store.path.resolve().parent), str(Path.cwd())]
    return scrub(text, extra)
