"""SFT on real GSM8K solutions with the embedded model makes held-out correct solutions likelier.

The data are the correct model solutions of openai/grade-school-math (example_model_solutions),
read from ../shared/data; the held-out solutions belong to problems not trained on."""

from __future__ import annotations

import json

import pytest

from tracekit.train.config import SFTTrainConfig
from tracekit.train.runner import run_sft

pytestmark = [pytest.mark.model, pytest.mark.realdata]

COLUMNS = ["175b_verification", "175b_finetuning", "6b_verification", "6b_finetuning"]


def _correct_solutions(path, n_train: int, n_heldout: int) -> tuple[list[dict], list[dict]]:
    """One correct solution per problem; train and held-out problems are disjoint."""
    rows = []
    with open(path) as f:
        for line in f:
            rec = json.loads(line)
            for col in COLUMNS:
                sol = rec.get(col) or {}
                if sol.get("is_correct"):
                    rows.append(
                        {
                            "prompt": [{"role": "user", "content": rec["question"]}],
                            "completion": [{"role": "assistant", "content": sol["solution"]}],
                        }
                    )
                    break
            if len(rows) >= n_train + n_heldout:
                break
    return rows[:n_train], rows[n_train:]


def _mean_nll(model_dir: str, rows: list[dict]) -> float:
    """Per-token NLL of the completions given their prompts, averaged over rows (what SFT lowers)."""
    import torch

    from tracekit.models import load_causal_lm
    from tracekit.train.redi import IGNORE_INDEX, sequence_logps

    model, tok = load_causal_lm(model_dir, device="cpu")
    values = []
    for r in rows:
        prompt = tok.apply_chat_template(r["prompt"], add_generation_prompt=True, tokenize=False)
        full = tok.apply_chat_template(r["prompt"] + r["completion"], tokenize=False)
        assert full.startswith(prompt)
        p_ids = tok(prompt, add_special_tokens=False)["input_ids"]
        ids = tok(full, add_special_tokens=False)["input_ids"]
        labels = torch.tensor([[IGNORE_INDEX] * len(p_ids) + ids[len(p_ids) :]])
        with torch.no_grad():
            logits = model(torch.tensor([ids])).logits
        logp, _ = sequence_logps(logits.float(), labels)
        values.append(-logp.item())
    return sum(values) / len(values)


def test_sft_on_real_gsm8k_solutions_lowers_heldout_nll(
    store, shared_data, default_model_dir, tmp_path
):
    import datasets

    train, heldout = _correct_solutions(
        shared_data / "gsm8k" / "example_model_solutions.jsonl", 12, 4
    )
    assert len(train) == 12 and len(heldout) == 4
    folder = tmp_path / "gsm8k-sft"
    datasets.DatasetDict(train=datasets.Dataset.from_list(train)).save_to_disk(str(folder))
    before = _mean_nll(str(default_model_dir), heldout)
    out = tmp_path / "student"
    cfg = SFTTrainConfig(
        dataset=str(folder),
        model="default",
        output=str(out),
        epochs=1,
        batch_size=4,
        grad_accum=1,
        lr=1e-3,
        lora_r=8,
        lora_alpha=16,
        max_length=256,
        warmup_ratio=0.0,
        save_steps=1000,
    )
    result = run_sft(store, cfg)
    assert result.status == "ok" and result["steps"] == 3
    after = _mean_nll(str(out), heldout)
    # the GSM8K solution style (<<a*b=c>> calculator notes, "A: n") is learned from 12 examples
    print(f"held-out NLL per token: {before:.3f} -> {after:.3f}")
    assert after < before - 0.05, (before, after)
