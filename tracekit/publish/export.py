"""The files a published dataset consists of, written to a folder: exactly what `publish`
uploads and what `--dry-run` / `--output` leave for inspection.

Layout (the card's `configs` point at it, so `load_dataset(repo_id)` finds the splits):
  README.md                          the card, rendered for this repo id
  length_hist.png                    the histogram the card shows
  data/<split>-00000-of-00001.parquet one Parquet file per split
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from tracekit.errors import TracekitError
from tracekit.publish.card import render_card
from tracekit.select.catalog import find_dataset, load_training_dataset
from tracekit.select.output import resolve_path
from tracekit.store import Store


def export_hub_files(
    store: Store, name: str, folder: Path, repo_id: str | None = None
) -> list[Path]:
    """Write the dataset's Hub files into `folder` (emptied first) and return them, relative."""
    from datasets.utils.logging import disable_progress_bar

    disable_progress_bar()
    row = find_dataset(store, name)
    dd = load_training_dataset(store, name)
    folder = Path(folder)
    if folder.exists():
        if any(folder.iterdir()) and not (folder / "README.md").exists():
            raise TracekitError(
                f"{folder} is not empty and not a previous export: choose another --output"
            )
        shutil.rmtree(folder)
    (folder / "data").mkdir(parents=True)
    written: list[Path] = []
    for split, ds in dd.items():
        rel = Path("data") / f"{split}-00000-of-00001.parquet"
        ds.to_parquet(str(folder / rel))
        written.append(rel)
    src = resolve_path(store, row["path"])
    if (src / "length_hist.png").exists():
        shutil.copyfile(src / "length_hist.png", folder / "length_hist.png")
        written.append(Path("length_hist.png"))
    card_row: dict[str, Any] = dict(row)
    (folder / "README.md").write_text(
        render_card(store, card_row, repo_id=repo_id), encoding="utf-8"
    )
    written.append(Path("README.md"))
    return sorted(written)
