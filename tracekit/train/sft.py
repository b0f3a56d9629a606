"""SFT through TRL's SFTTrainer: loss on completion tokens only (the prompt teaches nothing)."""

from __future__ import annotations

from typing import Any

from trl import SFTConfig, SFTTrainer

from tracekit.train.config import SFTTrainConfig


def build_sft_trainer(
    model: Any,
    tokenizer: Any,
    train_dataset: Any,
    cfg: SFTTrainConfig,
    args: dict[str, Any],
    peft_config: Any,
) -> SFTTrainer:
    sft_args = SFTConfig(
        **args,
        max_length=cfg.max_length,
        completion_only_loss=True,
        packing=False,
        dataset_num_proc=None,
    )
    return SFTTrainer(
        model=model,
        args=sft_args,
        train_dataset=train_dataset,
        processing_class=tokenizer,
        peft_config=peft_config,
    )
