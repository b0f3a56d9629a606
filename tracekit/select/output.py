"""Writing a build: the Parquet copy, the `datasets` DatasetDict, the histogram and the card into
one folder, and the `datasets` / `dataset_rows` rows that make every row traceable to its trace.

Files are written into a temporary sibling folder and swapped into place inside the store
transaction that records the build, so a failed build leaves the previous dataset and the store
as they were.
"""

from __future__ import annotations

import json
import shlex
import shutil
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tracekit.errors import ConfigError, TracekitError
from tracekit.select.candidates import SelectBase
from tracekit.select.formats import lit
from tracekit.select.funnel import Funnel
from tracekit.store import Store
from tracekit.store.ids import content_id
from tracekit.store.runs import Run

ROWS = "_tk_rows"
SPLITS = ("train", "eval")


class Clock:
    """Seconds per phase of a build, kept in the run's details (where does the time go?)."""

    def __init__(self) -> None:
        self.t = time.perf_counter()
        self.phases: dict[str, float] = {}

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.phases[name] = round(now - self.t, 3)
        self.t = now


@dataclass
class Build:
    kind: str  # sft | redi | dpo
    cfg: SelectBase
    exact_sql: str
    format_sql: str
    funnel: Funnel
    extra: dict[str, Any] = field(default_factory=dict)
    clock: Clock = field(default_factory=Clock)


def dataset_dir(store: Store, cfg: SelectBase) -> Path:
    if cfg.output:
        return Path(cfg.output).expanduser().resolve()
    return (store.path.parent / "datasets" / cfg.name).resolve()


def stored_path(store: Store, path: Path) -> str:
    """Relative to the store's folder when inside it, so a store moved with its datasets works."""
    base = store.path.parent.resolve()
    try:
        return str(path.resolve().relative_to(base))
    except ValueError:
        return str(path.resolve())


def resolve_path(store: Store, path: str) -> Path:
    p = Path(path)
    return p if p.is_absolute() else store.path.parent.resolve() / p


def rebuild_command(kind: str, cfg: SelectBase) -> str:
    """The CLI line that rebuilds this dataset from the same store (defaults omitted)."""
    sub = "sft" if kind == "sft" else "pairs"
    args = ["tracekit", "select", sub, cfg.name]
    defaults = type(cfg)(name=cfg.name)
    for key in type(cfg).model_fields:
        if key in ("name", "output"):
            continue
        value, default = getattr(cfg, key), getattr(defaults, key)
        if value == default:
            continue
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            args.append(flag if value else "--no-" + key.replace("_", "-"))
        elif isinstance(value, list):
            args += [flag, ",".join(value) or "none"]
        elif value is not None:
            args += [flag, str(value)]
    return " ".join(shlex.quote(a) for a in args)


def fingerprint(store: Store, build: Build) -> str:
    """A hash of the rows (ordered trace ids, pair ids, splits and lengths) and of the options
    that shape their text. Prompt ids hash the problem text; trace rows are never rewritten."""
    rows_hash = store.scalar(
        f"""SELECT md5(coalesce(string_agg(trace_id || ',' || coalesce(pair_trace_id, '') || ','
                      || split || ',' || coalesce(len::VARCHAR, '') || ',' || coalesce(pair_len::VARCHAR, ''),
                      ';' ORDER BY row_idx), '')) FROM {ROWS}"""
    )
    shape = {
        "kind": build.kind,
        "think_format": build.cfg.think_format,
        "system_prompt": build.cfg.system_prompt,
        "tokenizer": build.cfg.token_spec(),
    }
    return content_id("dataset-content", shape, rows_hash)


def _write_hf(
    parquet: Path, target: Path, n_train: int, with_eval: bool, fingerprint: str
) -> dict[str, int]:
    import pyarrow.parquet as pq
    from datasets import Dataset, DatasetDict
    from datasets.utils.logging import disable_progress_bar

    disable_progress_bar()  # the run line reports the build; per-shard bars are noise
    table = pq.read_table(parquet).drop_columns(["split"])
    # rows are numbered train first, so each split is a zero-copy slice of the file
    slices = {"train": table.slice(0, n_train)}
    if with_eval:
        slices["eval"] = table.slice(n_train)
    parts = {
        # our content fingerprint: without one, `datasets` pickles the whole table to make one
        split: Dataset(part, fingerprint=f"{fingerprint}-{split}")
        for split, part in slices.items()
    }
    DatasetDict(parts).save_to_disk(str(target))
    return {k: len(v) for k, v in parts.items()}


def _length_stats(store: Store, kind: str) -> list[dict[str, Any]]:
    """Quantiles of the lengths the build selected on (student tokens or characters)."""
    cols = (
        [("completion", "len")] if kind == "sft" else [("chosen", "len"), ("rejected", "pair_len")]
    )
    stats = []
    for role, col in cols:
        row = store.fetchone(
            f"SELECT count({col}), min({col}), quantile_disc({col}, 0.5), quantile_disc({col}, 0.9),"
            f" max({col}), round(avg({col}), 1) FROM {ROWS}"
        )
        assert row is not None
        stats.append(
            dict(zip(("role", "n", "min", "p50", "p90", "max", "mean"), (role, *row), strict=True))
        )
    return stats


def _swap_in(tmp: Path, out: Path) -> None:
    if out.exists():
        if any(out.iterdir()) and not ((out / "data.parquet").exists() or (out / "hf").exists()):
            raise TracekitError(
                f"output folder {out} exists and is not a tracekit dataset folder: choose another"
                " --output (tracekit replaces a dataset folder as a whole)"
            )
        old = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
        out.rename(old)
        tmp.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(out)


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def finalize(store: Store, run: Run, build: Build) -> dict[str, Any]:
    """Write the folder and record the build; `_tk_rows` holds the numbered rows."""
    from tracekit.publish.card import render_card, write_length_histogram

    cfg = build.cfg
    n, n_train, n_eval, n_prompts = store.fetchone(
        f"SELECT count(*), count(*) FILTER (WHERE split = 'train'),"
        f" count(*) FILTER (WHERE split = 'eval'), count(DISTINCT prompt_id) FROM {ROWS}"
    )
    unit = "pairs" if build.kind != "sft" else "rows"
    build.funnel.add("rows", n, unit, note="in the dataset")
    build.funnel.add("train", n_train, unit)
    if cfg.eval_fraction > 0:
        build.funnel.add("eval", n_eval, unit)
    build.funnel.add("prompts", n_prompts, "prompts", note="distinct prompts in the dataset")
    for step in build.funnel.steps:
        run.add(step.step, step.count)
    if n == 0:
        steps = ", ".join(f"{s.step}={s.count}" for s in build.funnel.steps)
        raise TracekitError(f"the selection for {cfg.name!r} is empty (funnel: {steps})")

    fp = fingerprint(store, build)
    dataset_id = content_id("dataset", cfg.name, build.kind, fp)
    out = dataset_dir(store, cfg)
    other = store.fetchone(
        "SELECT name FROM datasets WHERE path = ? AND name <> ? LIMIT 1",
        [stored_path(store, out), cfg.name],
    )
    if other:  # replacing it would leave that dataset's row pointing at this one's files
        raise ConfigError(
            f"output folder {out} holds dataset {other[0]!r}: give {cfg.name!r} its own --output"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        store.execute(
            f"COPY ({build.format_sql}) TO {lit(str(tmp / 'data.parquet'))} (FORMAT parquet)"
        )
        build.clock.lap("parquet")
        splits = _write_hf(tmp / "data.parquet", tmp / "hf", n_train, cfg.eval_fraction > 0, fp)
        build.clock.lap("hf_save_to_disk")
        lengths = store.con.sql(f"SELECT len, pair_len FROM {ROWS}").to_arrow_table()
        unit_len = "tokens" if cfg.token_spec() else "characters"
        series = {
            ("chosen" if build.kind != "sft" else "completion"): lengths["len"]
            .drop_null()
            .to_numpy()
        }
        if build.kind != "sft":
            series["rejected"] = lengths["pair_len"].drop_null().to_numpy()
        write_length_histogram(series, unit_len, tmp / "length_hist.png", title=cfg.name)
        build.clock.lap("histogram")
        selection = {
            "kind": build.kind,
            "options": cfg.model_dump(mode="json", exclude={"output"}),
            "sql": build.exact_sql,
            "funnel": build.funnel.to_list(),
            "splits": splits,
            "prompts": n_prompts,
            "verifier": cfg.verifier or "final verdict (v_final_verdicts)",
            "length_unit": unit_len,
            "length_stats": _length_stats(store, build.kind),
            "tokenizer": cfg.token_spec(),
            "rebuild": rebuild_command(build.kind, cfg),
            **build.extra,
        }
        row = {
            "dataset_id": dataset_id,
            "name": cfg.name,
            "kind": build.kind,
            "selection": json.dumps(selection, default=str),
            "rows": n,
            "path": stored_path(store, out),
            "card_path": stored_path(store, out / "README.md"),
            "fingerprint": fp,
            "run_id": run.run_id,
            "created_at": _now(),
        }
        with store.transaction():
            store.execute("DELETE FROM dataset_rows WHERE dataset_id = ?", [dataset_id])
            store.execute("DELETE FROM datasets WHERE dataset_id = ?", [dataset_id])
            store.insert_rows("datasets", [row])
            store.execute(
                f"INSERT INTO dataset_rows (dataset_id, row_idx, trace_id, pair_trace_id, split)"
                f" SELECT ?, row_idx, trace_id, pair_trace_id, split FROM {ROWS}",
                [dataset_id],
            )
            (tmp / "README.md").write_text(render_card(store, row), encoding="utf-8")
            _swap_in(tmp, out)
        build.clock.lap("record_and_card")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    run.details["timings"] = build.clock.phases
    run.details.update(
        {
            "dataset_id": dataset_id,
            "name": cfg.name,
            "fingerprint": fp,
            "path": str(out),
            "kind": build.kind,
        }
    )
    return row
