"""`publish`: push a built dataset and its card to the Hugging Face Hub as a dataset repo.

The files are exported to a folder first (the `--output` folder, or a temporary one), checked,
and uploaded in one commit by `tracekit.publish.hub.upload_folder`. `--dry-run` stops before the
upload and leaves the folder: what it contains is exactly what would be uploaded.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tracekit.errors import TracekitError
from tracekit.publish import hub
from tracekit.publish.export import export_hub_files
from tracekit.select.catalog import find_dataset
from tracekit.select.output import resolve_path
from tracekit.store import RunResult, Store

STAGE = "publish"
_REPO = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")


class PublishConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="a built dataset (name or id)")
    repo_id: str = Field(description="ORG/NAME of the Hub dataset repo")
    private: bool = False
    dry_run: bool = Field(False, description="write the files, upload nothing")
    output: str | None = Field(None, description="folder for the files; default <dataset>/hub")

    @field_validator("repo_id")
    @classmethod
    def _repo(cls, v: str) -> str:
        if not _REPO.match(v) or len(v) > 96:
            raise ValueError("expected ORG/NAME (letters, digits, '.', '_', '-')")
        return v


def run_publish(store: Store, cfg: PublishConfig) -> RunResult:
    row = find_dataset(store, cfg.name)
    token = None
    if not cfg.dry_run:
        token = hub.get_token()
        if not token:
            raise TracekitError(
                "no Hugging Face token: set HF_TOKEN or run `hf auth login` (or use --dry-run)"
            )
    with (
        store.run(STAGE, cfg) as run,
        tempfile.TemporaryDirectory(prefix="tracekit-publish-") as tmp,
    ):
        if cfg.output:
            folder = Path(cfg.output).expanduser().resolve()
        elif cfg.dry_run:
            folder = resolve_path(store, row["path"]) / "hub"
        else:
            folder = Path(tmp) / "hub"
        files = export_hub_files(store, row["dataset_id"], folder, cfg.repo_id)
        run.add("files", len(files))
        run.add("rows", int(row["rows"]))
        run.details.update(
            {
                "dataset_id": row["dataset_id"],
                "name": row["name"],
                "repo_id": cfg.repo_id,
                "files": [str(f) for f in files],
                "folder": str(folder) if (cfg.output or cfg.dry_run) else None,
            }
        )
        if cfg.dry_run:
            run.details["uploaded"] = False
        else:
            assert token is not None
            url = hub.upload_folder(
                folder,
                cfg.repo_id,
                private=cfg.private,
                token=token,
                message=f"tracekit: {row['name']} ({row['kind']}, {row['rows']} rows, fingerprint {row['fingerprint']})",
            )
            run.details.update({"uploaded": True, "url": url})
    return run.result
