"""`publish`: everything up to the Hub upload runs for real; the single upload function
(`tracekit.publish.hub.upload_folder`) is replaced, since the Hub is unreachable here."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from tests._select_helpers import basic_store
from tests.conftest import run_cli
from tracekit.errors import TracekitError
from tracekit.publish import hub
from tracekit.publish.publish import PublishConfig, run_publish
from tracekit.select.sft import SelectSFTConfig, run_select_sft

TOKEN = "hf_" + "Zz9Yy8Xx7Ww6Vv5Uu4Tt3Ss2Rr1Qq0Pp"


def _files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


@pytest.fixture
def built(store):
    basic_store(store, 8)
    run_select_sft(store, SelectSFTConfig(name="ds", per_prompt=2, eval_fraction=0.25))
    return store


@pytest.fixture
def uploads(monkeypatch):
    calls: list[dict] = []

    def fake_upload(folder: Path, repo_id: str, *, private: bool, token: str, message: str) -> str:
        calls.append(
            {
                "files": _files(folder),
                "repo_id": repo_id,
                "private": private,
                "token": token,
                "message": message,
                "card": (folder / "README.md").read_text(),
            }
        )
        return f"https://huggingface.co/datasets/{repo_id}/commit/abc"

    monkeypatch.setattr(hub, "upload_folder", fake_upload)
    return calls


EXPECTED = {
    "README.md",
    "length_hist.png",
    "data/train-00000-of-00001.parquet",
    "data/eval-00000-of-00001.parquet",
}


def test_publish_uploads_exactly_the_exported_files(built, uploads, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    result = run_publish(built, PublishConfig(name="ds", repo_id="my-org/ds", private=True))
    assert result.status == "ok" and result.details["uploaded"] is True
    assert len(uploads) == 1
    call = uploads[0]
    assert call["files"] == EXPECTED
    assert call["repo_id"] == "my-org/ds" and call["private"] is True and call["token"] == TOKEN
    assert 'load_dataset("my-org/ds")' in call["card"]
    assert TOKEN not in call["card"]
    # the token is never recorded
    runs = built.fetchall("SELECT config, counts FROM runs")
    assert all(TOKEN not in (c or "") and TOKEN not in (n or "") for c, n in runs)


def test_dry_run_writes_the_same_files_and_uploads_nothing(built, uploads, monkeypatch, tmp_path):
    from datasets import load_dataset

    monkeypatch.delenv("HF_TOKEN", raising=False)
    out = tmp_path / "export"
    result = run_publish(
        built, PublishConfig(name="ds", repo_id="my-org/ds", dry_run=True, output=str(out))
    )
    assert uploads == [] and result.details["uploaded"] is False
    assert _files(out) == EXPECTED
    # the card's `configs` make the folder loadable as the Hub would load the repo
    dd = load_dataset(str(out))
    assert set(dd) == {"train", "eval"}
    assert len(dd["train"]) + len(dd["eval"]) == 16
    assert not set(dd["train"]["prompt_id"]) & set(dd["eval"]["prompt_id"])


def test_no_token_is_a_clear_error(built, uploads, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr("huggingface_hub.get_token", lambda: None)
    with pytest.raises(TracekitError, match="HF_TOKEN"):
        run_publish(built, PublishConfig(name="ds", repo_id="my-org/ds"))
    assert uploads == []


def test_upload_failure_is_recorded(built, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", TOKEN)

    def failing(*a, **k):
        raise TracekitError("upload to my-org/ds failed: 403 Forbidden")

    monkeypatch.setattr(hub, "upload_folder", failing)
    with pytest.raises(TracekitError, match="403"):
        run_publish(built, PublishConfig(name="ds", repo_id="my-org/ds"))
    assert built.scalar("SELECT status FROM runs WHERE stage = 'publish'") == "failed"


def test_repo_id_and_dataset_are_validated(built):
    with pytest.raises(ValidationError):
        PublishConfig(name="ds", repo_id="no-slash")
    with pytest.raises(TracekitError, match="no dataset 'nope'"):
        run_publish(built, PublishConfig(name="nope", repo_id="a/b", dry_run=True))


def test_cli_publish_dry_run(built, tmp_path):
    path = built.path
    built.close()
    code, out, err = run_cli("publish", "ds", "--repo-id", "org/ds", "--dry-run", "-q", store=path)
    assert code == 0, err
    assert "dry run" in out
    assert _files(path.parent / "datasets" / "ds" / "hub") == EXPECTED
    code, out, err = run_cli("publish", "ds", "--repo-id", "bad", store=path)
    assert code == 1 and "repo_id" in err
