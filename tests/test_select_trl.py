"""TRL accepts what `select` builds: SFTTrainer and DPOTrainer tokenise the real GSM8K SFT and
pair sets (loaded through the store, as `tracekit train` does). No training step runs."""

from __future__ import annotations

import pytest

from tracekit.select.pairs import SelectPairsConfig, run_select_pairs
from tracekit.select.sft import SelectSFTConfig, run_select_sft
from tracekit.store import Store

pytestmark = [pytest.mark.model, pytest.mark.realdata]


@pytest.fixture(scope="module")
def built(tmp_path_factory, shared_data):
    from tracekit.collect.importers import ImportConfig, run_import

    s = Store(tmp_path_factory.mktemp("trl") / "traces.duckdb")
    run_import(
        s,
        ImportConfig(
            path=str(shared_data / "gsm8k" / "example_model_solutions.jsonl"),
            preset="gsm8k-solutions",
            source="gsm8k",
        ),
    )
    run_select_sft(s, SelectSFTConfig(name="sft", where="source = 'gsm8k'", eval_fraction=0.05))
    run_select_pairs(s, SelectPairsConfig(name="redi"))
    yield s
    s.close()


def _args(tmp_path):
    return dict(output_dir=str(tmp_path), use_cpu=True, bf16=False, report_to=[], max_length=256)


def test_sft_trainer_tokenises_select_output(built, tiny_model_dir, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from tracekit.train.data import load_training_data

    data = load_training_data(built, "sft", "train", pairs=False)
    ds = data.dataset.select(range(16))
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    trainer = SFTTrainer(
        model=AutoModelForCausalLM.from_pretrained(tiny_model_dir),
        args=SFTConfig(**_args(tmp_path), completion_only_loss=True, dataset_num_proc=None),
        train_dataset=ds,
        processing_class=tok,
    )
    row = trainer.train_dataset[0]
    assert "input_ids" in row and "labels" in row
    kept = [t for t in row["labels"] if t != -100]
    assert 0 < len(kept) < len(row["input_ids"])  # prompt masked, completion trained on
    completion = ds[0]["completion"][0]["content"]
    assert completion.split("\n")[0] in tok.decode(kept)


def test_dpo_trainer_tokenises_select_pairs(built, tiny_model_dir, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    from tracekit.train.data import load_training_data

    data = load_training_data(built, "redi", "train", pairs=True)
    ds = data.dataset.select(range(8))
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    trainer = DPOTrainer(
        model=model,
        args=DPOConfig(**_args(tmp_path), dataset_num_proc=None, precompute_ref_log_probs=False),
        train_dataset=ds,
        processing_class=tok,
    )
    row = trainer.train_dataset[0]
    assert {"prompt_ids", "chosen_ids", "rejected_ids"} <= set(row)
    assert row["chosen_ids"] != row["rejected_ids"]
    assert tok.decode(row["chosen_ids"]).find(ds[0]["chosen"][0]["content"][:20]) >= 0


def test_max_tokens_filters_in_student_tokens(store, default_model_dir):
    from transformers import AutoTokenizer

    from tests._select_helpers import add_prompt, add_trace
    from tracekit.select import find_dataset, load_training_dataset

    tok = AutoTokenizer.from_pretrained(default_model_dir)
    for i in range(4):
        pid = add_prompt(store, f"Count to {i}?")
        add_trace(store, pid, f"s{i}", True, text="one two three", sample_index=1)
        add_trace(store, pid, f"l{i}", True, text=" ".join(["seven"] * 300), sample_index=0)
    spec = f"hf:{default_model_dir}"
    run_select_sft(
        store, SelectSFTConfig(name="capped", max_tokens=50, tokenizer=spec, strategy="first")
    )
    row = find_dataset(store, "capped")
    funnel = {f["step"]: f["count"] for f in row["selection"]["funnel"]}
    assert funnel["positive"] == 8 and funnel["within_max_tokens"] == 4  # filtered, not truncated
    ds = load_training_dataset(store, "capped")["train"]
    assert sorted(ds["trace_id"]) == ["s0", "s1", "s2", "s3"]  # `first` would pick l*, too long
    assert ds[0]["completion"][0]["content"] == "one two three"
    stats = row["selection"]["length_stats"][0]
    assert row["selection"]["length_unit"] == "tokens"
    assert stats["max"] == len(tok("one two three", add_special_tokens=False)["input_ids"])
    card = (store.path.parent / row["card_path"]).read_text()
    assert str(default_model_dir) not in card
