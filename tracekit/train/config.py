"""Training configs: one pydantic model per method, shared by `tracekit train` and YAML recipes.

Defaults follow the papers where they transfer and say so where they do not:
- SFT: the REDI paper's stage 1 (lr 5e-5 full fine-tuning, effective batch 128, 3 epochs).
- REDI: the paper's stage 2 (lr 1e-6 full fine-tuning, effective batch 32, 1 epoch, alpha 0.8).
- DPO: beta 0.1 and lr 5e-7 full fine-tuning (Zephyr / TRL's recipes), effective batch 32.
LoRA trains a few million parameters from a zero-initialised B matrix, so the same rates barely
move it: the LoRA defaults are 10-40x the full-tuning rates (2e-4 SFT, the usual QLoRA/TRL value;
2e-5 REDI; 5e-6 DPO). `lr` set explicitly always wins.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Method = Literal["sft", "redi", "dpo"]

# (full fine-tuning, LoRA) learning rates per method
DEFAULT_LR: dict[str, tuple[float, float]] = {
    "sft": (5e-5, 2e-4),
    "redi": (1e-6, 2e-5),
    "dpo": (5e-7, 5e-6),
}


class TrainConfig(BaseModel):
    """What every method shares: data, model, LoRA, optimisation, outputs."""

    model_config = ConfigDict(extra="forbid")

    dataset: str | None = Field(
        None,
        description="A dataset name in the store (`tracekit datasets`) or a save_to_disk folder.",
    )
    split: str = Field("train", description="Split of the dataset to train on.")
    model: str = Field("default", description="Model SPEC: default, hf:PATH_OR_ID or a folder.")
    output: str | None = Field(
        None, description="Output folder. Default: students/<method>-<dataset>."
    )
    # LoRA (or --full)
    full: bool = Field(False, description="Full fine-tuning instead of LoRA.")
    lora_r: int = Field(16, ge=1)
    lora_alpha: int = Field(32, ge=1)
    lora_dropout: float = Field(0.05, ge=0.0, lt=1.0)
    target_modules: str = Field("all-linear", description="'all-linear' or comma-separated names.")
    # optimisation
    lr: float | None = Field(
        None, gt=0, description="Learning rate. Default depends on method and LoRA/full."
    )
    epochs: float = Field(1.0, gt=0)
    max_steps: int = Field(
        -1, description="Stop after this many optimizer steps (-1: epochs decide)."
    )
    batch_size: int = Field(8, ge=1, description="Per-device batch size.")
    grad_accum: int = Field(4, ge=1)
    max_length: int = Field(1024, ge=16, description="Max tokens of prompt + completion.")
    warmup_ratio: float = Field(0.1, ge=0.0, lt=1.0)
    weight_decay: float = Field(0.0, ge=0.0)
    lr_scheduler: str = Field("cosine")
    seed: int = 42
    # runtime
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto: cuda when available.")
    gradient_checkpointing: bool | None = Field(
        None, description="Default: on for GPU, off for CPU."
    )
    logging_steps: int = Field(1, ge=1)
    save_steps: int = Field(50, ge=1, description="Checkpoint every N steps (resume after a kill).")
    save_total_limit: int = Field(2, ge=1)
    resume: bool = Field(True, description="Resume from the last checkpoint in the output folder.")
    merge: bool = Field(
        False, description="Also save a merged copy (base + adapter) in OUTPUT/merged."
    )
    plot: bool = Field(True, description="Write loss_curve.png.")

    method: Method = "sft"  # overridden by each subclass

    def learning_rate(self) -> float:
        if self.lr is not None:
            return self.lr
        full, lora = DEFAULT_LR[self.method]
        return full if self.full else lora

    def output_dir(self) -> Path:
        if self.output:
            return Path(self.output)
        name = Path(self.dataset or "data").name.replace("/", "_")
        return Path("students") / f"{self.method}-{name}"

    def target_module_list(self) -> str | list[str]:
        if self.target_modules == "all-linear":
            return "all-linear"
        return [m.strip() for m in self.target_modules.split(",") if m.strip()]


class SFTTrainConfig(TrainConfig):
    """Supervised fine-tuning on positives, loss on completion tokens only."""

    method: Literal["sft"] = "sft"
    epochs: float = Field(3.0, gt=0)
    grad_accum: int = Field(16, ge=1)  # 8 x 16 = the paper's batch of 128


class REDITrainConfig(TrainConfig):
    """REDI on (positive, negative) pairs; reference-free, length-normalised."""

    method: Literal["redi"] = "redi"
    alpha: float = Field(0.8, ge=0.0, le=1.0, description="Weight of the negative term (0 = SFT).")


class DPOTrainConfig(TrainConfig):
    """DPO on pairs; under LoRA the reference is the base model (adapters disabled)."""

    method: Literal["dpo"] = "dpo"
    beta: float = Field(0.1, gt=0)


class StageOverrides(BaseModel):
    """Per-stage settings of `sft-then-redi`: anything not set here comes from the parent."""

    model_config = ConfigDict(extra="forbid")

    dataset: str | None = None
    split: str | None = None
    lr: float | None = Field(None, gt=0)
    epochs: float | None = Field(None, gt=0)
    max_steps: int | None = None
    batch_size: int | None = Field(None, ge=1)
    grad_accum: int | None = Field(None, ge=1)
    alpha: float | None = Field(None, ge=0.0, le=1.0)


class SFTThenREDIConfig(TrainConfig):
    """Two stages as one command: SFT on positives, then REDI on pairs, starting from stage 1's
    adapter (LoRA: the same adapter keeps training) or weights (--full). Outputs land in
    OUTPUT/sft and OUTPUT/redi; OUTPUT/redi is the final student."""

    method: Literal["sft-then-redi"] = "sft-then-redi"  # type: ignore[assignment]
    sft: StageOverrides = Field(default_factory=StageOverrides)
    redi: StageOverrides = Field(default_factory=StageOverrides)

    @model_validator(mode="after")
    def _datasets(self) -> SFTThenREDIConfig:
        if not (self.sft.dataset or self.dataset) or not self.redi.dataset:
            raise ValueError("sft-then-redi needs sft.dataset (SFT rows) and redi.dataset (pairs)")
        return self

    def learning_rate(self) -> float:  # not used directly: each stage resolves its own
        return REDITrainConfig(dataset="x", full=self.full).learning_rate()

    def output_dir(self) -> Path:
        if self.output:
            return Path(self.output)
        name = Path(self.redi.dataset or "data").name
        return Path("students") / f"sft-then-redi-{name}"

    def stage_configs(self) -> tuple[SFTTrainConfig, REDITrainConfig]:
        """The two stage configs. A parent field the user set applies to both stages, a stage
        override wins over it, and anything unset keeps that method's own default (so SFT gets 3
        epochs and batch 128, REDI 1 epoch and batch 32, unless told otherwise)."""
        out = self.output_dir()
        exclude = {"method", "sft", "redi", "output", "merge", "dataset", "split"}
        shared = {
            k: v
            for k, v in self.model_dump().items()
            if k in self.model_fields_set and k not in exclude
        }

        def build(cls: type[TrainConfig], over: StageOverrides, sub: str, **extra: object):
            data = {**shared, **over.model_dump(exclude_none=True), **extra}
            data["output"] = str(out / sub)
            if cls is SFTTrainConfig:
                data.pop("alpha", None)
            return cls(**data)

        sft = build(SFTTrainConfig, self.sft, "sft", dataset=self.sft.dataset or self.dataset)
        redi = build(REDITrainConfig, self.redi, "redi", merge=self.merge)
        return sft, redi


CONFIGS: dict[str, type[TrainConfig]] = {
    "sft": SFTTrainConfig,
    "redi": REDITrainConfig,
    "dpo": DPOTrainConfig,
    "sft-then-redi": SFTThenREDIConfig,
}
