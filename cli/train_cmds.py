"""`tracekit train sft|redi|dpo|sft-then-redi`: parse options into the method's TrainConfig
(a YAML --config first, options given on the command line over it) and call the runner."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from tracekit_cli.apps import train_app
from tracekit_cli.common import QuietOpt, StoreOpt, open_store, out, print_result, set_quiet

DatasetOpt = Annotated[
    Optional[str],
    typer.Option("--dataset", "-d", help="Dataset name in the store, or a save_to_disk folder."),
]
ModelOpt = Annotated[
    Optional[str],
    typer.Option("--model", "-m", help="Base model SPEC (default: the embedded SmolLM2-135M)."),
]
OutputOpt = Annotated[
    Optional[Path],
    typer.Option("--output", "-o", help="Output folder (default students/<method>-<dataset>)."),
]
ConfigOpt = Annotated[
    Optional[Path],
    typer.Option("--config", help="YAML file of config fields; options given here win."),
]
LoraR = Annotated[Optional[int], typer.Option("--lora-r", help="LoRA rank [16].")]
LoraAlpha = Annotated[Optional[int], typer.Option("--lora-alpha", help="LoRA alpha [32].")]
LoraDropout = Annotated[
    Optional[float], typer.Option("--lora-dropout", help="LoRA dropout [0.05].")
]
TargetModules = Annotated[
    Optional[str],
    typer.Option("--target-modules", help="'all-linear' or comma-separated module names."),
]
FullOpt = Annotated[
    Optional[bool],
    typer.Option("--full/--lora", help="Full fine-tuning instead of LoRA.", show_default=False),
]
LrOpt = Annotated[
    Optional[float],
    typer.Option("--lr", help="Learning rate (default per method; see docs/train.md)."),
]
EpochsOpt = Annotated[Optional[float], typer.Option("--epochs", help="Epochs (SFT 3, REDI/DPO 1).")]
MaxStepsOpt = Annotated[
    Optional[int], typer.Option("--max-steps", help="Stop after N optimizer steps.")
]
BatchOpt = Annotated[Optional[int], typer.Option("--batch-size", help="Per-device batch size [8].")]
AccumOpt = Annotated[
    Optional[int], typer.Option("--grad-accum", help="Gradient accumulation (SFT 16, REDI/DPO 4).")
]
MaxLenOpt = Annotated[
    Optional[int], typer.Option("--max-length", help="Max tokens, prompt + completion [1024].")
]
WarmupOpt = Annotated[
    Optional[float], typer.Option("--warmup-ratio", help="Warmup fraction of steps [0.1].")
]
SeedOpt = Annotated[Optional[int], typer.Option("--seed", help="Seed [42].")]
SaveStepsOpt = Annotated[
    Optional[int], typer.Option("--save-steps", help="Checkpoint every N steps [50].")
]
MergeOpt = Annotated[
    Optional[bool],
    typer.Option(
        "--merge", help="Also save base+adapter merged in OUTPUT/merged.", show_default=False
    ),
]
ResumeOpt = Annotated[
    Optional[bool],
    typer.Option(
        "--resume/--no-resume", help="Resume from OUTPUT/checkpoints [on].", show_default=False
    ),
]
DeviceOpt = Annotated[Optional[str], typer.Option("--device", help="auto | cpu | cuda [auto].")]
AlphaOpt = Annotated[
    Optional[float],
    typer.Option("--alpha", help="REDI weight of the negative term [0.8]; 0 = SFT."),
]
BetaOpt = Annotated[Optional[float], typer.Option("--beta", help="DPO beta [0.1].")]


def _yaml(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    import yaml

    from tracekit.errors import ConfigError

    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"{path}: cannot read YAML config: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of config fields, got {type(data).__name__}")
    data.pop("stage", None)  # a recipe step's config can be reused as is
    return data


def _build(method: str, config: Path | None, given: dict[str, Any]) -> Any:
    from pydantic import ValidationError

    from tracekit.errors import ConfigError
    from tracekit.train.config import CONFIGS

    data = _yaml(config)
    for k, v in given.items():
        if v is None:
            continue
        if isinstance(v, dict):  # stage overrides of sft-then-redi
            data.setdefault(k, {})
            data[k].update({kk: vv for kk, vv in v.items() if vv is not None})
        else:
            data[k] = str(v) if isinstance(v, Path) else v
    try:
        return CONFIGS[method](**data)
    except ValidationError as e:
        first = e.errors()[0]
        loc = ".".join(str(x) for x in first["loc"]) or "config"
        raise ConfigError(f"{config or 'options'}: {loc}: {first['msg']}") from None


def _rank() -> int:
    return int(os.environ.get("RANK") or os.environ.get("LOCAL_RANK") or 0)


def _store_for_rank(store: Path | None, cfg: Any) -> Any:
    """Under `accelerate launch` every rank runs this command, but DuckDB lets one process write
    a store: rank 0 opens the real one (runs row, lineage), the others a throwaway store of their
    own, so they need the dataset as a folder (`tracekit datasets` shows its path; add /hf)."""
    if _rank() == 0:
        return open_store(store)
    import tempfile

    from tracekit.errors import ConfigError
    from tracekit.store import Store

    datasets = (
        [cfg.dataset] if cfg.method != "sft-then-redi" else [cfg.sft.dataset, cfg.redi.dataset]
    )
    for d in datasets:
        if d and not Path(d).is_dir():
            raise ConfigError(
                f"under accelerate launch pass --dataset as a folder (got {d!r}): only rank 0 may"
                " open the store, so the other ranks cannot look a name up"
            )
    return Store(Path(tempfile.mkdtemp(prefix=f"tracekit-rank{_rank()}-")) / "rank.duckdb")


def _run(
    method: str, store: Path | None, quiet: bool, config: Path | None, given: dict[str, Any]
) -> None:
    from tracekit.train.runner import run_train

    set_quiet(quiet)
    cfg = _build(method, config, given)
    with _store_for_rank(store, cfg) as s:
        result = run_train(s, cfg)
    if _rank() > 0:
        return
    print_result(result, quiet)
    d = result.details
    loss = ""
    if d.get("first_loss") is not None and d.get("last_loss") is not None:
        loss = f"; loss {d['first_loss']:.4g} -> {d['last_loss']:.4g}"
    if d.get("redi_last_loss") is not None:
        loss = f"; SFT last loss {d['sft_last_loss']:.4g}, REDI last loss {d['redi_last_loss']:.4g}"
    out.print(f"student: {d.get('output')}{loss}")


@train_app.command("sft")
def sft(
    dataset: DatasetOpt = None,
    model: ModelOpt = None,
    output: OutputOpt = None,
    lora_r: LoraR = None,
    lora_alpha: LoraAlpha = None,
    lora_dropout: LoraDropout = None,
    target_modules: TargetModules = None,
    full: FullOpt = None,
    lr: LrOpt = None,
    epochs: EpochsOpt = None,
    max_steps: MaxStepsOpt = None,
    batch_size: BatchOpt = None,
    grad_accum: AccumOpt = None,
    max_length: MaxLenOpt = None,
    warmup_ratio: WarmupOpt = None,
    seed: SeedOpt = None,
    save_steps: SaveStepsOpt = None,
    merge: MergeOpt = None,
    resume: ResumeOpt = None,
    device: DeviceOpt = None,
    config: ConfigOpt = None,
    store: StoreOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Supervised fine-tuning on positives (loss on completion tokens only), LoRA by default.

    Example: tracekit train sft --dataset gsm8k-sft --model default --output students/sft --epochs 3
    """
    given = {k: v for k, v in locals().items() if k not in ("store", "quiet", "config")}
    _run("sft", store, quiet, config, given)


@train_app.command("redi")
def redi(
    dataset: DatasetOpt = None,
    model: ModelOpt = None,
    output: OutputOpt = None,
    alpha: AlphaOpt = None,
    lora_r: LoraR = None,
    lora_alpha: LoraAlpha = None,
    lora_dropout: LoraDropout = None,
    target_modules: TargetModules = None,
    full: FullOpt = None,
    lr: LrOpt = None,
    epochs: EpochsOpt = None,
    max_steps: MaxStepsOpt = None,
    batch_size: BatchOpt = None,
    grad_accum: AccumOpt = None,
    max_length: MaxLenOpt = None,
    warmup_ratio: WarmupOpt = None,
    seed: SeedOpt = None,
    save_steps: SaveStepsOpt = None,
    merge: MergeOpt = None,
    resume: ResumeOpt = None,
    device: DeviceOpt = None,
    config: ConfigOpt = None,
    store: StoreOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """REDI on (positive, negative) pairs: -logp(y+)/|y+| + alpha*logp(y-)/|y-|, no reference model.

    Example: tracekit train redi --dataset gsm8k-pairs --model students/sft/merged --alpha 0.8
    """
    given = {k: v for k, v in locals().items() if k not in ("store", "quiet", "config")}
    _run("redi", store, quiet, config, given)


@train_app.command("dpo")
def dpo(
    dataset: DatasetOpt = None,
    model: ModelOpt = None,
    output: OutputOpt = None,
    beta: BetaOpt = None,
    lora_r: LoraR = None,
    lora_alpha: LoraAlpha = None,
    lora_dropout: LoraDropout = None,
    target_modules: TargetModules = None,
    full: FullOpt = None,
    lr: LrOpt = None,
    epochs: EpochsOpt = None,
    max_steps: MaxStepsOpt = None,
    batch_size: BatchOpt = None,
    grad_accum: AccumOpt = None,
    max_length: MaxLenOpt = None,
    warmup_ratio: WarmupOpt = None,
    seed: SeedOpt = None,
    save_steps: SaveStepsOpt = None,
    merge: MergeOpt = None,
    resume: ResumeOpt = None,
    device: DeviceOpt = None,
    config: ConfigOpt = None,
    store: StoreOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """DPO on pairs (TRL DPOTrainer, sigmoid loss); the LoRA reference is the base, adapters off.

    Example: tracekit train dpo --dataset gsm8k-pairs --model default --beta 0.1 --output students/dpo
    """
    given = {k: v for k, v in locals().items() if k not in ("store", "quiet", "config")}
    _run("dpo", store, quiet, config, given)


@train_app.command("sft-then-redi")
def sft_then_redi(
    sft_dataset: Annotated[
        Optional[str], typer.Option("--sft-dataset", help="SFT rows (positives).")
    ] = None,
    redi_dataset: Annotated[
        Optional[str], typer.Option("--redi-dataset", help="Pairs for REDI.")
    ] = None,
    model: ModelOpt = None,
    output: OutputOpt = None,
    alpha: AlphaOpt = None,
    sft_lr: Annotated[
        Optional[float], typer.Option("--sft-lr", help="Stage 1 learning rate.")
    ] = None,
    redi_lr: Annotated[
        Optional[float], typer.Option("--redi-lr", help="Stage 2 learning rate.")
    ] = None,
    sft_epochs: Annotated[
        Optional[float], typer.Option("--sft-epochs", help="Stage 1 epochs [3].")
    ] = None,
    redi_epochs: Annotated[
        Optional[float], typer.Option("--redi-epochs", help="Stage 2 epochs [1].")
    ] = None,
    lora_r: LoraR = None,
    lora_alpha: LoraAlpha = None,
    lora_dropout: LoraDropout = None,
    target_modules: TargetModules = None,
    full: FullOpt = None,
    max_steps: MaxStepsOpt = None,
    batch_size: BatchOpt = None,
    grad_accum: AccumOpt = None,
    max_length: MaxLenOpt = None,
    warmup_ratio: WarmupOpt = None,
    seed: SeedOpt = None,
    save_steps: SaveStepsOpt = None,
    merge: MergeOpt = None,
    resume: ResumeOpt = None,
    device: DeviceOpt = None,
    config: ConfigOpt = None,
    store: StoreOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Two stages in one run: SFT on positives, then REDI on pairs continuing stage 1's adapter.

    Options without a stage prefix apply to both stages. The final student is OUTPUT/redi.

    Example: tracekit train sft-then-redi --sft-dataset gsm8k-sft --redi-dataset gsm8k-pairs --output students/redi
    """
    given = {
        k: v
        for k, v in locals().items()
        if k not in ("store", "quiet", "config", "alpha") and not k.startswith(("sft_", "redi_"))
    }
    given["sft"] = {"dataset": sft_dataset, "lr": sft_lr, "epochs": sft_epochs}
    given["redi"] = {"dataset": redi_dataset, "lr": redi_lr, "epochs": redi_epochs, "alpha": alpha}
    _run("sft-then-redi", store, quiet, config, given)
