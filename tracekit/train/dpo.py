"""DPO through TRL's DPOTrainer (sigmoid loss). Under LoRA there is no second model in memory:
the reference log-probs come from the same network with the adapters disabled."""

from __future__ import annotations

from typing import Any

from trl import DPOConfig, DPOTrainer

from tracekit.train.config import DPOTrainConfig


def build_dpo_trainer(
    model: Any,
    tokenizer: Any,
    train_dataset: Any,
    cfg: DPOTrainConfig,
    args: dict[str, Any],
    peft_config: Any,
) -> DPOTrainer:
    dpo_args = DPOConfig(
        **args,
        beta=cfg.beta,
        loss_type=["sigmoid"],  # a list in TRL 1.x (losses can be mixed)
        max_length=cfg.max_length,
        dataset_num_proc=None,
    )
    return DPOTrainer(
        model=model,
        ref_model=None,
        args=dpo_args,
        train_dataset=train_dataset,
        processing_class=tokenizer,
        peft_config=peft_config,
    )
