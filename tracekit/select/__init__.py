"""Training-set builders: SFT rows and REDI/DPO pairs from SQL selections over the store, written
as Hugging Face datasets with every row traceable to its trace (see docs/select.md)."""

from __future__ import annotations

from tracekit.select.catalog import (
    DatasetDiff,
    diff_datasets,
    find_dataset,
    list_datasets,
    load_training_dataset,
)

__all__ = [
    "DatasetDiff",
    "diff_datasets",
    "find_dataset",
    "list_datasets",
    "load_training_dataset",
]
