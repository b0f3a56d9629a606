"""REDI: Reinforcement Distillation from both positive and negative teacher traces.

From "Harnessing Negative Signals: Reinforcement Distillation from Teacher Data for LLM
Reasoning". Per (positive, negative) pair of the same prompt, with token-length-normalised
log-likelihoods of the completions (prompt masked, EOS counted):

    L = - log p(y+|x) / |y+|  +  alpha * log p(y-|x) / |y-|

No reference model and no beta: the length normalisation is what keeps the negative term from
collapsing the model, and alpha < 1 (0.8 recommended) makes the push-down gentler than the pull-up.
alpha = 0 is plain SFT on the positives' per-sequence normalised NLL.

The loss is a small function (`redi_loss`, `sequence_logps`) so it is tested on hand-made tensors;
`REDITrainer` plugs it into TRL's CPO trainer (pinned trl==1.16.0), which already tokenises
prompt/chosen/rejected rows, masks the prompt, appends EOS and runs chosen and rejected through the
model in one concatenated forward pass.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import nn

# the CPO trainer lives in trl.experimental; tracekit pins trl==1.16.0, so the warning that
# experimental APIs may move is ours to handle, not the user's
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
from trl.experimental.cpo import CPOConfig, CPOTrainer
from trl.trainer.utils import selective_log_softmax

IGNORE_INDEX = -100


def sequence_logps(
    logits: torch.Tensor, labels: torch.Tensor, *, average: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sequence log-likelihood of the labelled tokens of a causal LM.

    `labels` has IGNORE_INDEX (-100) on prompt and padding positions, so those never count.
    Logits at position t predict the token at t+1 (the usual shift). Returns (logps, n_tokens):
    the mean per-token log-prob when `average` (REDI's length normalisation), else the sum.
    """
    if logits.shape[:-1] != labels.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and labels {tuple(labels.shape)} disagree")
    labels = labels[:, 1:].clone()
    logits = logits[:, :-1, :]
    mask = labels != IGNORE_INDEX
    labels[~mask] = 0
    per_token = selective_log_softmax(logits, labels)
    total = (per_token * mask).sum(-1)
    n = mask.sum(-1)
    if average:
        # a completion truncated to nothing has no tokens: its term is 0, not NaN
        return total / n.clamp(min=1), n
    return total, n


def redi_loss(
    chosen_logps: torch.Tensor, rejected_logps: torch.Tensor, alpha: float = 0.8
) -> torch.Tensor:
    """Per-pair REDI loss from length-normalised log-likelihoods (shape (batch,) each).

    -chosen + alpha * rejected: the gradient raises the positive's likelihood with weight 1 and
    lowers the negative's with weight alpha. Returns per-pair losses; the trainer averages them.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"REDI alpha must be in [0, 1], got {alpha}")
    return -chosen_logps + alpha * rejected_logps


@dataclass
class REDIConfig(CPOConfig):
    """CPOConfig with REDI's asymmetry weight. `loss_type`, `cpo_alpha` and CPO's AlphaPO `alpha`
    are fixed (simpo = length-normalised log-probs, no extra NLL term, no reward shaping)."""

    redi_alpha: float = field(default=0.8, metadata={"help": "Weight of the negative term."})

    def __post_init__(self) -> None:
        self.loss_type = "simpo"  # makes CPOTrainer average log-probs over completion tokens
        self.cpo_alpha = 0.0  # no separate NLL term: alpha=0 REDI is the SFT term already
        self.alpha = 0.0  # CPO's AlphaPO reward shaping, unrelated to REDI's alpha
        super().__post_init__()


class REDITrainer(CPOTrainer):
    """CPOTrainer whose loss is REDI's. Logs logps/chosen, logps/rejected, margin, redi_loss."""

    _tag_names = ["trl", "redi", "tracekit"]
    _name = "REDI"
    _paper = {
        "title": "Harnessing Negative Signals: Reinforcement Distillation from Teacher Data for LLM Reasoning",
        "id": "2505.24850",
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.redi_alpha = float(self.args.redi_alpha)

    def _pair_logps(
        self, model: nn.Module, batch: dict[str, Any]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        cat = self.concatenated_inputs(
            batch,
            is_encoder_decoder=False,
            padding_value=self.pad_token_id,
            device=self.accelerator.device,
        )
        n_chosen = batch["chosen_labels"].shape[0]
        out = model(
            cat["concatenated_input_ids"],
            attention_mask=cat["concatenated_attention_mask"],
            use_cache=False,
        )
        logps, ntok = sequence_logps(out.logits, cat["concatenated_labels"], average=True)
        return logps[:n_chosen], logps[n_chosen:], ntok[:n_chosen], ntok[n_chosen:]

    def get_batch_loss_metrics(
        self,
        model: nn.Module,
        batch: dict[str, Any],
        train_eval: Literal["train", "eval"] = "train",
    ) -> tuple[torch.Tensor, dict[str, float]]:
        chosen, rejected, n_chosen, n_rejected = self._pair_logps(model, batch)
        losses = redi_loss(chosen, rejected, self.redi_alpha)
        loss = losses.mean()
        gather = self.accelerator.gather_for_metrics
        prefix = "eval_" if train_eval == "eval" else ""
        chosen_d, rejected_d = chosen.detach(), rejected.detach()
        metrics = {
            f"{prefix}logps/chosen": gather(chosen_d).mean().item(),
            f"{prefix}logps/rejected": gather(rejected_d).mean().item(),
            f"{prefix}margin": gather(chosen_d - rejected_d).mean().item(),
            f"{prefix}redi_loss": gather(losses.detach()).mean().item(),
            f"{prefix}tokens/chosen": gather(n_chosen.float()).mean().item(),
            f"{prefix}tokens/rejected": gather(n_rejected.float()).mean().item(),
        }
        return loss, metrics

    def prediction_step(
        self,
        model: nn.Module,
        inputs: dict[str, Any],
        prediction_loss_only: bool,
        ignore_keys: list[str] | None = None,
    ):
        with torch.no_grad():
            loss, metrics = self.get_batch_loss_metrics(model, inputs, train_eval="eval")
        self.store_metrics(metrics, train_eval="eval")
        return (loss.detach(), None, None)


def build_redi_trainer(
    model: Any, tokenizer: Any, train_dataset: Any, cfg: Any, args: dict[str, Any], peft_config: Any
) -> REDITrainer:
    redi_args = REDIConfig(
        **args,
        redi_alpha=cfg.alpha,
        max_length=cfg.max_length,
        remove_unused_columns=False,
        dataset_num_proc=None,
    )
    return REDITrainer(
        model=model,
        args=redi_args,
        train_dataset=train_dataset,
        processing_class=tokenizer,
        peft_config=peft_config,
    )
