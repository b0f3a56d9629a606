"""Each training method for a few steps on the CPU: a tiny random Llama built from the embedded
tokenizer (fast, real shapes) and the embedded SmolLM2 itself (LoRA). The datasets are tiny and
repeated, in the exact format `tracekit select` builds (TRL conversational rows)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tracekit.train.config import (
    DPOTrainConfig,
    REDITrainConfig,
    SFTThenREDIConfig,
    SFTTrainConfig,
)
from tracekit.train.runner import run_dpo, run_redi, run_sft, run_sft_then_redi
from tracekit.train.trainlog import read_log

pytestmark = pytest.mark.model

FAST = dict(
    batch_size=8,
    grad_accum=1,
    max_length=96,
    warmup_ratio=0.0,
    lr_scheduler="constant",
    save_steps=100,
)


def _msg(role: str, text: str) -> list[dict[str, str]]:
    return [{"role": role, "content": text}]


@pytest.fixture(scope="module")
def data_dirs(tmp_path_factory) -> dict[str, str]:
    """Two problems repeated four times (8 rows = one full batch per step, so the loss curve is
    not batch noise): a model that can learn anything learns these in a few steps."""
    import datasets

    root = tmp_path_factory.mktemp("train-data")
    problems = [("What is 2+3?", "5", "6"), ("What is 4*2?", "8", "6")]
    sft, pairs = [], []
    for rep in range(4):
        for i, (q, good, bad) in enumerate(problems):
            sft.append(
                dict(
                    prompt=_msg("user", q),
                    completion=_msg("assistant", f"Step by step: the answer is {good}."),
                    trace_id=f"t{i}-{rep}",
                    prompt_id=f"p{i}",
                )
            )
            pairs.append(
                dict(
                    prompt=_msg("user", q),
                    chosen=_msg("assistant", f"The answer is {good}."),
                    rejected=_msg("assistant", f"The answer is {bad}, I think."),
                    chosen_trace_id=f"c{i}-{rep}",
                    rejected_trace_id=f"r{i}-{rep}",
                    prompt_id=f"p{i}",
                )
            )
    out = {}
    for name, rows in (("sft", sft), ("pairs", pairs)):
        path = root / name
        datasets.DatasetDict(train=datasets.Dataset.from_list(rows)).save_to_disk(str(path))
        out[name] = str(path)
    return out


def _losses(out: Path, key: str = "loss") -> list[float]:
    return [r[key] for r in read_log(out / "trainer_log.jsonl") if r.get(key) is not None]


def _generates(model_dir: Path) -> bool:
    import torch

    from tracekit.models import load_causal_lm

    model, tok = load_causal_lm(str(model_dir), device="cpu")
    enc = tok(["What is 2+3?"], return_tensors="pt")
    with torch.no_grad():
        gen = model.generate(
            **enc, max_new_tokens=4, do_sample=False, pad_token_id=tok.pad_token_id
        )
    return gen.shape[1] > enc["input_ids"].shape[1]


@pytest.fixture(scope="module")
def redi_base_run(tmp_path_factory, tiny_model_dir, data_dirs):
    """REDI from the tiny base: shared by the REDI test and the sft-then-redi comparison."""
    from tracekit.store import Store

    root = tmp_path_factory.mktemp("redi-base")
    with Store(root / "s.duckdb") as s:
        cfg = REDITrainConfig(
            dataset=data_dirs["pairs"],
            model=str(tiny_model_dir),
            output=str(root / "out"),
            max_steps=5,
            lr=5e-3,
            **FAST,
        )
        result = run_redi(s, cfg)
    return result, root / "out"


def test_sft_lora_learns_saves_merges_and_reloads(store, tiny_model_dir, data_dirs, tmp_path):
    import datasets

    out = tmp_path / "sft"
    cfg = SFTTrainConfig(
        dataset=data_dirs["sft"],
        model=str(tiny_model_dir),
        output=str(out),
        max_steps=4,
        lr=3e-3,
        merge=True,
        **FAST,
    )
    result = run_sft(store, cfg)
    assert result.status == "ok" and result["steps"] == 4
    losses = _losses(out)
    assert len(losses) == 4
    assert losses[-1] < losses[0]
    # the outputs a user gets
    assert (out / "adapter_config.json").exists() and (out / "adapter_model.safetensors").exists()
    assert (out / "loss_curve.png").stat().st_size > 1000
    meta = json.loads((out / "training_config.json").read_text())
    fp = datasets.load_from_disk(data_dirs["sft"])["train"]._fingerprint
    assert meta["dataset_fingerprint"] == fp and meta["status"] == "ok" and meta["lora"] is True
    assert meta["learning_rate"] == 3e-3 and meta["trl_version"] == "1.16.0"
    # the runs row links the student to the dataset fingerprint
    stage, counts = store.fetchone(
        "SELECT stage, counts FROM runs WHERE run_id = ?", [result.run_id]
    )
    details = json.loads(counts)
    assert stage == "train.sft"
    assert details["dataset_fingerprint"] == fp and details["output"] == str(out.resolve())
    # merged copy is a plain model
    assert (out / "merged" / "model.safetensors").exists()
    assert not (out / "merged" / "adapter_config.json").exists()
    assert _generates(out) and _generates(out / "merged")


def test_redi_raises_chosen_over_rejected(redi_base_run):
    result, out = redi_base_run
    assert result.status == "ok"
    rows = [r for r in read_log(out / "trainer_log.jsonl") if "redi_loss" in r]
    assert len(rows) == 5
    assert {"logps/chosen", "logps/rejected", "margin", "redi_loss"} <= set(rows[0])
    assert rows[-1]["loss"] < rows[0]["loss"]
    assert rows[-1]["margin"] > rows[0]["margin"]
    assert rows[-1]["logps/chosen"] > rows[0]["logps/chosen"]
    assert _generates(out)


def test_dpo_lora_loss_falls_from_log2(store, tiny_model_dir, data_dirs, tmp_path):
    out = tmp_path / "dpo"
    cfg = DPOTrainConfig(
        dataset=data_dirs["pairs"],
        model=str(tiny_model_dir),
        output=str(out),
        max_steps=4,
        lr=5e-3,
        **FAST,
    )
    result = run_dpo(store, cfg)
    assert result.status == "ok"
    losses = _losses(out)
    # the policy starts equal to its reference (adapters disabled), so the first loss is log 2
    assert losses[0] == pytest.approx(0.6931, abs=1e-3)
    assert losses[-1] < losses[0]
    assert _generates(out)


def test_sft_then_redi_continues_the_sft_adapter(
    store, tiny_model_dir, data_dirs, tmp_path, redi_base_run
):
    out = tmp_path / "two"
    cfg = SFTThenREDIConfig(
        model=str(tiny_model_dir),
        output=str(out),
        max_steps=5,
        sft={"dataset": data_dirs["sft"], "lr": 3e-3},
        redi={"dataset": data_dirs["pairs"], "lr": 5e-3},
        **FAST,
    )
    result = run_sft_then_redi(store, cfg)
    assert result.status == "ok" and result["steps"] == 10
    stages = [r[0] for r in store.fetchall("SELECT stage FROM runs ORDER BY started_at")]
    assert stages == ["train.sft-then-redi", "train.sft", "train.redi"]
    meta = json.loads((out / "redi" / "training_config.json").read_text())
    assert meta["base_model"] == str(out / "sft")
    # stage 2's first batch is scored by the SFT-trained adapter: the positives are already more
    # likely than under the untouched base on the same batch
    _, base_out = redi_base_run
    base_first = read_log(base_out / "trainer_log.jsonl")[0]["logps/chosen"]
    stage2_first = read_log(out / "redi" / "trainer_log.jsonl")[0]["logps/chosen"]
    assert stage2_first > base_first
    assert _generates(out / "redi")


def test_resume_after_a_crash_continues_from_the_last_checkpoint(
    store, tiny_model_dir, data_dirs, tmp_path
):
    from transformers import TrainerCallback

    class Crash(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            if state.global_step == 3:
                raise RuntimeError("simulated kill")

    out = tmp_path / "resume"
    fast = {**FAST, "save_steps": 2}
    cfg = SFTTrainConfig(
        dataset=data_dirs["sft"],
        model=str(tiny_model_dir),
        output=str(out),
        max_steps=4,
        lr=1e-3,
        **fast,
    )
    with pytest.raises(RuntimeError, match="simulated kill"):
        run_sft(store, cfg, callbacks=[Crash()])
    assert store.scalar("SELECT status FROM runs WHERE stage = 'train.sft'") == "failed"
    assert (out / "checkpoints" / "checkpoint-2").is_dir()
    result = run_sft(store, cfg)
    assert result.status == "ok"
    assert result.details["resumed_from"].endswith("checkpoint-2")
    assert result.details["global_step"] == 4
    # the log holds each step once: the crashed run's step 3 was dropped before retraining it
    steps = [r["step"] for r in read_log(out / "trainer_log.jsonl") if "loss" in r]
    assert steps == [1, 2, 3, 4]


def test_redi_with_the_embedded_model_lora(store, default_model_dir, data_dirs, tmp_path):
    out = tmp_path / "smol-redi"
    cfg = REDITrainConfig(
        dataset=data_dirs["pairs"],
        model="default",
        output=str(out),
        max_steps=2,
        lr=1e-4,
        lora_r=4,
        lora_alpha=8,
        **FAST,
    )
    result = run_redi(store, cfg)
    assert result.status == "ok" and result["steps"] == 2
    rows = read_log(out / "trainer_log.jsonl")
    # a real instruct model finds the right short answer far likelier than random (log 1/49152)
    assert rows[0]["logps/chosen"] > -8
    assert _generates(out)


def test_cli_yaml_config_store_dataset_and_errors(tmp_path, tiny_model_dir, data_dirs):
    import shutil

    from tracekit.store import Store

    # a dataset as `tracekit select` records it: a row in `datasets`, the HF folder under path/hf
    built = tmp_path / "built"
    shutil.copytree(data_dirs["sft"], built / "hf")
    db = tmp_path / "s.duckdb"
    with Store(db) as s:
        s.insert_rows(
            "datasets",
            [
                dict(
                    dataset_id="ds1",
                    name="tiny-sft",
                    kind="sft",
                    path=str(built),
                    fingerprint="fp-123",
                    rows=8,
                    selection="{}",
                )
            ],
        )
    conf = tmp_path / "sft.yaml"
    conf.write_text(
        f"model: {tiny_model_dir}\nmax_steps: 5\nbatch_size: 2\ngrad_accum: 1\nmax_length: 96\n"
    )
    out = tmp_path / "cli-sft"
    code, stdout, stderr = run_cli(
        "train",
        "sft",
        "--dataset",
        "tiny-sft",
        "--config",
        str(conf),
        "--max-steps",
        "1",
        "--output",
        str(out),
        "--quiet",
        store=db,
    )
    assert code == 0, stderr
    assert "train.sft ok" in stdout and str(out) in stdout
    meta = json.loads((out / "training_config.json").read_text())
    assert meta["dataset_fingerprint"] == "fp-123" and meta["dataset_id"] == "ds1"
    assert (
        meta["config"]["max_steps"] == 1 and meta["config"]["batch_size"] == 2
    )  # option beats YAML
    # pairs given to SFT: one line naming what is missing
    code, _, stderr = run_cli(
        "train", "sft", "--dataset", data_dirs["pairs"], "--model", str(tiny_model_dir), store=db
    )
    assert code == 1 and "lacks column(s) completion" in stderr
    code, _, stderr = run_cli("train", "redi", "--dataset", "nope", "--alpha", "0.5", store=db)
    assert code == 1 and "no dataset named 'nope'" in stderr, stderr
    code, _, stderr = run_cli("train", "redi", "--dataset", "tiny-sft", "--alpha", "1.5", store=db)
    assert code == 1 and "alpha" in stderr
