"""The multi-GPU launch configs shipped in pipelines/accelerate load as accelerate configs (the
same parser `accelerate launch --config_file` uses, which rejects unknown keys)."""

from __future__ import annotations

from pathlib import Path

import pytest

CONFIGS = Path(__file__).resolve().parent.parent / "pipelines" / "accelerate"


@pytest.mark.parametrize(
    ("name", "kind", "detail"),
    [
        ("ddp", "MULTI_GPU", None),
        ("fsdp", "FSDP", ("fsdp_version", 2)),
        ("deepspeed-zero2", "DEEPSPEED", ("zero_stage", 2)),
        ("deepspeed-zero3", "DEEPSPEED", ("zero_stage", 3)),
    ],
)
def test_accelerate_configs_are_valid(name, kind, detail):
    from accelerate.commands.config.config_args import load_config_from_file

    cfg = load_config_from_file(str(CONFIGS / f"{name}.yaml"))
    assert cfg.distributed_type.name == kind
    assert cfg.mixed_precision == "bf16" and cfg.use_cpu is False
    if detail:
        key, value = detail
        section = cfg.fsdp_config if kind == "FSDP" else cfg.deepspeed_config
        assert section[key] == value


def test_a_typo_in_a_config_would_be_caught(tmp_path):
    from accelerate.commands.config.config_args import load_config_from_file

    bad = tmp_path / "bad.yaml"
    bad.write_text((CONFIGS / "ddp.yaml").read_text().replace("num_processes", "num_processez"))
    with pytest.raises(ValueError, match="unknown keys"):
        load_config_from_file(str(bad))


def test_configs_ship_with_the_package():
    import tomllib

    data = tomllib.loads((CONFIGS.parent.parent / "pyproject.toml").read_text())
    assert "accelerate/*.yaml" in data["tool"]["setuptools"]["package-data"]["tracekit.recipes"]


def test_only_rank_zero_opens_the_store(monkeypatch, tmp_path):
    """Other ranks get a private store and must be given the dataset as a folder."""
    from tracekit_cli.train_cmds import _store_for_rank

    from tracekit.errors import ConfigError
    from tracekit.train.config import SFTTrainConfig

    monkeypatch.setenv("RANK", "1")
    with pytest.raises(ConfigError, match="as a folder"):
        _store_for_rank(tmp_path / "real.duckdb", SFTTrainConfig(dataset="by-name"))
    s = _store_for_rank(tmp_path / "real.duckdb", SFTTrainConfig(dataset=str(tmp_path)))
    assert s.path != tmp_path / "real.duckdb"
    s.close()
    assert not (tmp_path / "real.duckdb").exists()
