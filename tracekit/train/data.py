"""Find the training set a config names: a dataset built by `tracekit select` (by name, through
the store) or a `save_to_disk` folder, and check it has the columns the method needs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tracekit.errors import ConfigError, TracekitError
from tracekit.store import Store

SFT_COLUMNS = ("prompt", "completion")
PAIR_COLUMNS = ("prompt", "chosen", "rejected")


@dataclass
class TrainingData:
    dataset: Any  # datasets.Dataset, trimmed to the columns the trainer needs
    name: str
    fingerprint: str
    dataset_id: str | None
    path: str | None
    rows: int


def _from_store(store: Store, ref: str) -> tuple[Any, dict[str, Any]] | None:
    """A build of `tracekit select` by name or id, through the select stage's own loader (it
    knows its folder layout). None when the store has no such dataset."""
    from tracekit.select.catalog import find_dataset, load_training_dataset

    n = store.scalar(
        "SELECT count(*) FROM datasets WHERE name = ? OR dataset_id LIKE ? || '%'", [ref, ref]
    )
    if not n:
        return None
    row = find_dataset(store, ref)
    return load_training_dataset(store, row["name"]), row


def load_training_data(store: Store, ref: str | None, split: str, pairs: bool) -> TrainingData:
    if not ref:
        raise ConfigError(
            "no dataset given: pass --dataset NAME (see `tracekit datasets`) or a folder"
        )
    from datasets import Dataset, DatasetDict, load_from_disk

    found = _from_store(store, ref)
    if found is not None:
        data, row = found
        name, fingerprint, dataset_id, path = (
            row["name"],
            row.get("fingerprint") or "",
            row["dataset_id"],
            row.get("path"),
        )
    elif Path(ref).is_dir():
        try:
            data = load_from_disk(ref)
        except FileNotFoundError as e:
            raise TracekitError(
                f"{ref} is not a dataset folder saved with save_to_disk: {e}"
            ) from None
        name, fingerprint, dataset_id, path = Path(ref).name, "", None, str(Path(ref).resolve())
    else:
        raise TracekitError(
            f"no dataset named {ref!r} in the store and no folder at that path (see `tracekit datasets`)"
        )
    if isinstance(data, DatasetDict):
        if split not in data:
            raise ConfigError(
                f"dataset {name!r} has no split {split!r} (it has: {', '.join(data)})"
            )
        ds = data[split]
    elif isinstance(data, Dataset):
        ds = data
    else:
        raise TracekitError(f"dataset {name!r} loaded as {type(data).__name__}, expected a Dataset")
    if not fingerprint:
        fingerprint = getattr(ds, "_fingerprint", "") or ""
    need = PAIR_COLUMNS if pairs else SFT_COLUMNS
    if not pairs and "messages" in ds.column_names and "prompt" not in ds.column_names:
        need = ("messages",)
    missing = [c for c in need if c not in ds.column_names]
    if missing:
        kind = "pairs (prompt, chosen, rejected)" if pairs else "SFT rows (prompt, completion)"
        raise ConfigError(
            f"dataset {name!r} lacks column(s) {', '.join(missing)}: this method needs {kind}"
            f" (it has: {', '.join(ds.column_names)})"
        )
    if len(ds) == 0:
        raise ConfigError(f"dataset {name!r} split {split!r} is empty")
    ds = ds.select_columns(list(need))
    return TrainingData(ds, name, fingerprint, dataset_id, path, len(ds))
