"""The train stages: load data and model, build the method's TRL trainer, train (resuming from the
last checkpoint), and leave a self-describing output folder plus a `runs` row that links the
student to the dataset fingerprint it was trained on.

Output folder (OUTPUT):
  adapter_model.safetensors + adapter_config.json (LoRA) or model.safetensors (--full), tokenizer
  merged/                 base + adapter merged (--merge)
  training_config.json    the tracekit config, resolved learning rate, dataset fingerprint, run id
  trainer_log.jsonl       one line per logging step (loss, lr, REDI/DPO log-probs, margin)
  loss_curve.png
  checkpoints/            Trainer checkpoints, the resume points after a kill
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tracekit.errors import ConfigError, TracekitError
from tracekit.store import RunResult, Store
from tracekit.train.config import (
    DPOTrainConfig,
    REDITrainConfig,
    SFTThenREDIConfig,
    SFTTrainConfig,
    TrainConfig,
)
from tracekit.train.data import load_training_data

LOG_FILE = "trainer_log.jsonl"
CONFIG_FILE = "training_config.json"
PLOT_FILE = "loss_curve.png"
CHECKPOINTS = "checkpoints"


def _device(cfg: TrainConfig) -> str:
    import torch

    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda asked for, but torch sees no CUDA device")
    if cfg.device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return cfg.device


def trainer_args(cfg: TrainConfig, out: Path, device: str) -> dict[str, Any]:
    """TrainingArguments shared by the three methods. GPU: bf16 mixed precision and gradient
    checkpointing; CPU: fp32, use_cpu, no checkpointing (it only costs time there)."""
    on_gpu = device == "cuda"
    import torch

    bf16 = on_gpu and torch.cuda.is_bf16_supported()
    gc = cfg.gradient_checkpointing if cfg.gradient_checkpointing is not None else on_gpu
    from tracekit.progress import is_quiet

    return dict(
        output_dir=str(out / CHECKPOINTS),
        learning_rate=cfg.learning_rate(),
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps,
        per_device_train_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum,
        warmup_steps=cfg.warmup_ratio,
        weight_decay=cfg.weight_decay,
        lr_scheduler_type=cfg.lr_scheduler,
        seed=cfg.seed,
        data_seed=cfg.seed,
        use_cpu=not on_gpu,
        bf16=bf16,
        fp16=False,
        gradient_checkpointing=gc,
        logging_steps=cfg.logging_steps,
        logging_first_step=True,
        save_strategy="steps",
        save_steps=cfg.save_steps,
        save_total_limit=cfg.save_total_limit,
        report_to="none",
        disable_tqdm=is_quiet(),
        dataloader_num_workers=0,
    )


def lora_config(cfg: TrainConfig) -> Any:
    if cfg.full:
        return None
    from peft import LoraConfig

    return LoraConfig(
        r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules=cfg.target_module_list(),
        bias="none",
        task_type="CAUSAL_LM",
    )


def load_model(
    spec: str, device: str, *, full: bool, trainable_adapter: bool
) -> tuple[Any, Any, str]:
    """(model, tokenizer, base spec). An adapter folder loads onto its base; with
    `trainable_adapter` that adapter keeps training (stage 2 of sft-then-redi)."""
    import torch

    from tracekit.models import is_adapter_dir, load_causal_lm, parse_spec, resolve_local_path

    ms = parse_spec(spec)
    if ms.backend != "hf":
        raise ConfigError(f"training needs a local transformers model, not {spec!r}")
    path = resolve_local_path(ms)
    # LoRA on GPU: frozen base in bf16; full fine-tuning keeps fp32 master weights (AdamW in bf16
    # weights loses small updates); CPU is always fp32
    dtype = torch.bfloat16 if device == "cuda" and not full else torch.float32
    adapter = is_adapter_dir(path)
    if adapter and not trainable_adapter:
        raise ConfigError(
            f"{spec} is a LoRA adapter: merge it first (`--merge` when training) or continue it with"
            " `tracekit train sft-then-redi`"
        )
    model, tok = load_causal_lm(ms, device=device, dtype=dtype, trainable=True)
    tok.padding_side = "right"
    model.config.use_cache = False
    return model, tok, path


def _merge(model: Any, tok: Any, target: Path) -> Path:
    merged = model.merge_and_unload()
    merged.save_pretrained(target)
    tok.save_pretrained(target)
    return target


def _builder(method: str) -> Callable[..., Any]:
    if method == "sft":
        from tracekit.train.sft import build_sft_trainer

        return build_sft_trainer
    if method == "redi":
        from tracekit.train.redi import build_redi_trainer

        return build_redi_trainer
    if method == "dpo":
        from tracekit.train.dpo import build_dpo_trainer

        return build_dpo_trainer
    raise ConfigError(f"unknown training method {method!r}")


def train_one(
    store: Store,
    cfg: SFTTrainConfig | REDITrainConfig | DPOTrainConfig,
    *,
    callbacks: list[Any] | None = None,
    continue_adapter: bool = False,
) -> RunResult:
    """One method, one run row. `continue_adapter`: cfg.model is an adapter that keeps training."""
    from transformers.trainer_utils import get_last_checkpoint

    from tracekit.train.plots import plot_loss_curve
    from tracekit.train.trainlog import JsonlLogCallback, truncate_after

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    pairs = cfg.method in ("redi", "dpo")
    out = cfg.output_dir()
    with store.run(f"train.{cfg.method}", cfg) as run:
        data = load_training_data(store, cfg.dataset, cfg.split, pairs=pairs)
        device = _device(cfg)
        out.mkdir(parents=True, exist_ok=True)
        resume = None
        if cfg.resume and (out / CHECKPOINTS).is_dir():
            resume = get_last_checkpoint(str(out / CHECKPOINTS))
        log_path = out / LOG_FILE
        if resume:
            step = int(Path(resume).name.rsplit("-", 1)[-1])
            truncate_after(log_path, step)
            run.details["resumed_from"] = resume
        elif log_path.exists():
            log_path.unlink()
        model, tok, base_path = load_model(
            cfg.model, device, full=cfg.full, trainable_adapter=continue_adapter
        )
        peft = None if continue_adapter else lora_config(cfg)
        args = trainer_args(cfg, out, device)
        trainer = _builder(cfg.method)(model, tok, data.dataset, cfg, args, peft)
        trainer.add_callback(JsonlLogCallback(log_path))
        from tracekit.progress import is_quiet

        if is_quiet():  # the log is in trainer_log.jsonl; keep stdout for the result line
            from transformers.trainer_callback import PrinterCallback

            trainer.remove_callback(PrinterCallback)
        for cb in callbacks or []:
            trainer.add_callback(cb)
        meta = {
            "run_id": run.run_id,
            "method": cfg.method,
            "config": cfg.model_dump(mode="json"),
            "learning_rate": cfg.learning_rate(),
            "lora": not cfg.full,
            "base_model": cfg.model,
            "base_model_path": base_path,
            "dataset": data.name,
            "dataset_id": data.dataset_id,
            "dataset_fingerprint": data.fingerprint,
            "dataset_rows": data.rows,
            "device": device,
            "bf16": args["bf16"],
            "gradient_checkpointing": args["gradient_checkpointing"],
            "trl_version": _version("trl"),
            "transformers_version": _version("transformers"),
            "peft_version": _version("peft"),
        }
        run.details.update(
            output=str(out.resolve()),
            base_model=cfg.model,
            dataset=data.name,
            dataset_id=data.dataset_id,
            dataset_fingerprint=data.fingerprint,
            learning_rate=cfg.learning_rate(),
        )
        main = trainer.is_world_process_zero()  # under accelerate launch only rank 0 writes files
        if main:
            (out / CONFIG_FILE).write_text(
                json.dumps({**meta, "status": "running"}, indent=2, default=str)
            )
        run.checkpoint()
        result = trainer.train(resume_from_checkpoint=resume)
        trainer.save_model(str(out))  # gathers sharded weights; writes on rank 0 only
        if main:
            tok.save_pretrained(str(out))
        state = trainer.state
        run.add("steps", int(state.global_step))
        run.add("examples", data.rows)
        losses = [h["loss"] for h in state.log_history if "loss" in h]
        run.details.update(
            train_loss=float(result.training_loss),
            first_loss=losses[0] if losses else None,
            last_loss=losses[-1] if losses else None,
            global_step=int(state.global_step),
        )
        if main and cfg.merge and not cfg.full:
            run.details["merged"] = str(_merge(trainer.model, tok, out / "merged").resolve())
        if main and cfg.plot:
            png = plot_loss_curve(log_path, out / PLOT_FILE, f"{cfg.method} - {data.name}")
            run.details["plot"] = str(png) if png else None
        if main:
            (out / CONFIG_FILE).write_text(
                json.dumps({**meta, **run.details, "status": "ok"}, indent=2, default=str)
            )
        del trainer, model
    return run.result


def _version(pkg: str) -> str:
    from importlib.metadata import version

    try:
        return version(pkg)
    except Exception:
        return ""


def run_sft(store: Store, cfg: SFTTrainConfig, *, callbacks: list[Any] | None = None) -> RunResult:
    return train_one(store, cfg, callbacks=callbacks)


def run_redi(
    store: Store, cfg: REDITrainConfig, *, callbacks: list[Any] | None = None
) -> RunResult:
    return train_one(store, cfg, callbacks=callbacks)


def run_dpo(store: Store, cfg: DPOTrainConfig, *, callbacks: list[Any] | None = None) -> RunResult:
    return train_one(store, cfg, callbacks=callbacks)


def run_sft_then_redi(
    store: Store, cfg: SFTThenREDIConfig, *, callbacks: list[Any] | None = None
) -> RunResult:
    """Stage 1 SFT, stage 2 REDI from stage 1's result: under LoRA the same adapter keeps
    training (one adapter on the untouched base at the end); with --full, stage 1's weights."""
    sft_cfg, redi_cfg = cfg.stage_configs()
    with store.run("train.sft-then-redi", cfg) as run:
        r1 = train_one(store, sft_cfg, callbacks=callbacks)
        stage1 = str(sft_cfg.output_dir())
        redi_cfg = redi_cfg.model_copy(update={"model": stage1})
        r2 = train_one(store, redi_cfg, callbacks=callbacks, continue_adapter=not cfg.full)
        run.add("steps", r1["steps"] + r2["steps"])
        run.details.update(
            sft_run=r1.run_id,
            redi_run=r2.run_id,
            output=r2.details.get("output"),
            sft_output=r1.details.get("output"),
            dataset_fingerprint=r2.details.get("dataset_fingerprint"),
            sft_dataset_fingerprint=r1.details.get("dataset_fingerprint"),
            sft_last_loss=r1.details.get("last_loss"),
            redi_last_loss=r2.details.get("last_loss"),
        )
    return run.result


RUNNERS: dict[str, Callable[..., RunResult]] = {
    "sft": run_sft,
    "redi": run_redi,
    "dpo": run_dpo,
    "sft-then-redi": run_sft_then_redi,
}


def run_train(store: Store, cfg: TrainConfig, **kw: Any) -> RunResult:
    if cfg.method not in RUNNERS:
        raise TracekitError(f"unknown training method {cfg.method!r}")
    return RUNNERS[cfg.method](store, cfg, **kw)
