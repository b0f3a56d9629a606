"""The data card: Hub metadata that huggingface_hub parses, the funnel numbers, verification and
agreement, the real decontamination and safety reports, and nothing local or secret."""

from __future__ import annotations

import json
import re

import pytest

from tests._select_helpers import add_prompt, add_trace
from tracekit.publish.card import scrub
from tracekit.select import find_dataset
from tracekit.select.pairs import SelectPairsConfig, run_select_pairs
from tracekit.select.sft import SelectSFTConfig, run_select_sft

SECRET = "hf_" + "A1b2C3d4E5f6G7h8I9j0KlMnOpQrStUv"
ABS_PATH = re.compile(r"(?<![\w:/.<-])/(?:home|tmp|root|work|Users|var|private)/")


@pytest.fixture
def card_store(store, shared_data, monkeypatch):
    """GSM8K-sourced prompts (one copied from the real GSM8K test set, so decontamination has
    something to find), a teacher named by a local path and a local URL, two verifiers."""
    monkeypatch.setenv("HF_TOKEN", SECRET)
    test_problem = json.loads((shared_data / "gsm8k" / "test.jsonl").open().readline())["question"]
    problems = [test_problem] + [
        f"Tom has {i} apples and buys 3 more. How many now?" for i in range(6)
    ]
    for i, q in enumerate(problems):
        pid = add_prompt(store, q, source="gsm8k")
        add_trace(
            store,
            pid,
            f"c{i}",
            True,
            teacher=f"hf:{store.path.parent}/models/qwen",
            text=f"{i}+3={i + 3}",
        )
        add_trace(
            store,
            pid,
            f"w{i}",
            False,
            teacher="openai:gpt@http://127.0.0.1:8000/v1",
            text="Click here to claim your prize" if i == 1 else f"{i}+3=0",
        )
        store.insert_rows(
            "verdicts",
            [
                {"trace_id": f"c{i}", "verifier": "source", "correct": True, "status": "ok"},
                {"trace_id": f"w{i}", "verifier": "source", "correct": i == 2, "status": "ok"},
            ],
        )
    from tracekit.score.decontam import DecontamConfig, run_decontam
    from tracekit.score.safety import SafetyConfig, run_safety

    run_decontam(store, DecontamConfig(benchmarks=["gsm8k"], bench_dir=str(shared_data)))
    run_safety(store, SafetyConfig())
    return store


def _card(store, name: str) -> str:
    row = find_dataset(store, name)
    return (store.path.parent / row["card_path"]).read_text()


@pytest.mark.realdata
def test_card_parses_and_reports_everything(card_store, tmp_path):
    from huggingface_hub import DatasetCard

    s = card_store
    run_select_pairs(
        s,
        SelectPairsConfig(
            name="prefs", kind="dpo", where=f"teacher <> '{SECRET}' AND source <> '{tmp_path}/x'"
        ),
    )
    text = _card(s, "prefs")
    card = DatasetCard(text)
    assert card.data.license == "mit"  # from the gsm8k source
    assert card.data.task_categories == ["text-generation"]
    assert card.data.size_categories == ["n<1K"]
    assert card.data.configs[0]["data_files"][0] == {"split": "train", "path": "data/train-*"}
    row = find_dataset(s, "prefs")
    for step in row["selection"]["funnel"]:
        assert f"| {step['step']} | {step['count']} |" in text
    # decontamination ran for real: the copied GSM8K test problem is flagged and excluded
    assert "| gsm8k |" in text
    assert s.scalar("SELECT count(*) FROM flags WHERE flag = 'decontam:gsm8k'") >= 1
    assert "decontam:* flag: 0" in text or "carry a `decontam:*` flag: 0" in text
    # safety: the phishing-like negative is flagged in the store and excluded from the dataset
    assert re.search(r"\| safety:phishing \| 1 \| 0 \|", text)
    # verification and agreement (math-style verifier 'math' vs the source labels)
    assert "| source |" in text and "Direct Preference Optimization" in text
    assert "tracekit select pairs prefs" in text and "--kind dpo" in text
    # nothing local or secret
    assert str(tmp_path) not in text and str(s.path.parent) not in text
    assert not ABS_PATH.search(text), ABS_PATH.search(text)
    assert SECRET not in text and "127.0.0.1" not in text
    png = (s.path.parent / row["path"] / "length_hist.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_card_agreement_between_verifiers(store):
    for i in range(4):
        pid = add_prompt(store, f"{i} times 2?")
        add_trace(store, pid, f"a{i}", True, verifier="math")
        add_trace(store, pid, f"b{i}", False, verifier="math")
        store.insert_rows(
            "verdicts",
            [
                {"trace_id": f"a{i}", "verifier": "source", "correct": True, "status": "ok"},
                {"trace_id": f"b{i}", "verifier": "source", "correct": i == 0, "status": "ok"},
            ],
        )
    run_select_sft(store, SelectSFTConfig(name="sft", verifier="math", eval_fraction=0.25))
    text = _card(store, "sft")
    assert "| math | source |" in text
    assert "agreement" in text.lower()
    # 8 traces judged by both, 7 agree (b0 is the disagreement)
    assert "7" in text.split("| math | source |", 1)[1].splitlines()[0]
    from huggingface_hub import DatasetCard

    card = DatasetCard(text)
    assert [f["split"] for f in card.data.configs[0]["data_files"]] == ["train", "eval"]
    assert card.data.license == "other"  # the source 'unit' has no known license


def test_scrub_removes_paths_hosts_and_secrets(monkeypatch):
    monkeypatch.setenv("MY_API_KEY", "supersecretvalue123")
    text = (
        "model hf:/home/alice/models/qwen at http://localhost:8080/v1 and http://192.168.1.4/x,"
        " key supersecretvalue123, token hf_abcdefghijklmnopqrstuvwxyz0123, sk-abcdefghijklmnopqrstu,"
        " C:\\Users\\bob\\data.jsonl; keep https://arxiv.org/abs/2505.24850 and 1/2 and data/train-*"
    )
    out = scrub(text)
    for bad in (
        "/home/alice",
        "localhost",
        "192.168",
        "supersecretvalue123",
        "hf_abcdef",
        "sk-abcdef",
        "C:\\Users",
    ):
        assert bad not in out
    assert "qwen" in out  # the model's own name stays
    assert "https://arxiv.org/abs/2505.24850" in out and "1/2" in out and "data/train-*" in out
