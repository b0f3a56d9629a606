"""The transformers backend with real models: the embedded SmolLM2 on real GSM8K prompts, and the
tiny random Llama for logprobs and partial resumes (shapes only, milliseconds per step)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tracekit.collect.collect import DEFAULT_TEMPLATE, CollectConfig, run_collect
from tracekit.store import Store
from tracekit.store.ids import prompt_id

pytestmark = pytest.mark.model


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    """On a busy 2-core runner two spinning torch threads per process make generation 10x slower
    (measured: a tiny model's 8 tokens took 0.3 s on one thread, 2-5 s on two)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.realdata
def test_embedded_model_on_three_gsm8k_prompts(
    tmp_path: Path, shared_data: Path, default_model_dir: Path
) -> None:
    db = tmp_path / "s.duckdb"
    code, out, err = run_cli(
        "prompts", "add", str(shared_data / "gsm8k" / "test.jsonl"), "--preset", "gsm8k", "--split", "test",
        store=db,
    )  # fmt: skip
    assert code == 0, err
    assert "1319 prompt(s) added" in out
    args = ("collect", "--teacher", "default", "--samples", "2", "--max-tokens", "48", "--limit", "3",
            "--where", "split = 'test'", "--quiet")  # fmt: skip
    code, out, err = run_cli(*args, store=db)
    assert code == 0, err
    assert "traces=6" in out

    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(default_model_dir)
    with Store(db) as s:
        rows = s.dicts(
            "SELECT t.*, p.problem FROM traces t JOIN prompts p USING (prompt_id) ORDER BY prompt_id, sample_index"
        )
        assert len(rows) == 6 and len({r["prompt_id"] for r in rows}) == 3
        for r in rows:
            assert r["teacher"] == "default:HuggingFaceTB/SmolLM2-135M-Instruct"
            assert r["backend"] == "transformers" and r["origin"] == "generated"
            assert r["teacher_revision"] and json.loads(r["sampling"])["max_tokens"] == 48
            assert 0 < r["completion_tokens"] <= 48 and r["text"].strip()
            assert r["finish_reason"] in ("stop", "length")
            assert (r["finish_reason"] == "length") == (r["completion_tokens"] == 48)
            # the real prompt length: the chat template around the default instruction
            msgs = [
                {"role": "user", "content": DEFAULT_TEMPLATE.replace("{problem}", r["problem"])}
            ]
            rendered = tok.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)
            assert r["prompt_tokens"] == len(tok(rendered, add_special_tokens=False)["input_ids"])
            assert r["answer_text"] == r["text"].strip() and r["reasoning"] is None
        assert [r["sample_index"] for r in rows] == [0, 1] * 3
    code, out, err = run_cli(*args, store=db)
    assert code == 0 and "skipped=6" in out and "traces=" not in out  # nothing added


def _prompts(store: Store, n: int) -> list[str]:
    problems = [f"Compute {i} times {i + 2}." for i in range(n)]
    store.insert_rows(
        "prompts", [{"prompt_id": prompt_id(p), "source": "unit", "problem": p} for p in problems]
    )
    return sorted(prompt_id(p) for p in problems)


def test_logprobs_match_a_forward_pass(store: Store, tiny_model_dir: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _prompts(store, 2)
    cfg = CollectConfig(teachers=[f"hf:{tiny_model_dir}"], samples=2, max_tokens=6, logprobs=True)
    res = run_collect(store, cfg)
    assert res["traces"] == 4
    rows = store.dicts(
        "SELECT t.trace_id, t.completion_tokens, l.tokens, l.logprobs, p.problem"
        " FROM traces t JOIN token_logprobs l USING (trace_id) JOIN prompts p USING (prompt_id)"
    )
    assert len(rows) == 4
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    for r in rows:
        assert len(r["tokens"]) == len(r["logprobs"]) == r["completion_tokens"]
        msgs = [{"role": "user", "content": DEFAULT_TEMPLATE.replace("{problem}", r["problem"])}]
        prompt = tok.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)
        p_ids = tok(prompt, add_special_tokens=False, return_tensors="pt")["input_ids"][0]
        c_ids = torch.tensor(tok.convert_tokens_to_ids(r["tokens"]))
        with torch.no_grad():
            logits = model(torch.cat([p_ids, c_ids])[None]).logits[0, len(p_ids) - 1 : -1]
        expected = torch.log_softmax(logits, -1).gather(1, c_ids[:, None])[:, 0]
        assert torch.allclose(torch.tensor(r["logprobs"]), expected, atol=1e-4)


def test_partial_resume_and_more_samples(store: Store, tiny_model_dir: Path) -> None:
    pids = _prompts(store, 4)
    cfg = CollectConfig(teachers=[f"hf:{tiny_model_dir}"], samples=2, max_tokens=4, batch_size=4)
    assert run_collect(store, cfg)["traces"] == 8
    before = {r[0] for r in store.fetchall("SELECT trace_id FROM traces")}
    # lose some samples (as a crash between prompts would): prompts now need 1, 1 and 2 samples
    store.execute(
        "DELETE FROM traces_data WHERE (prompt_id = ? AND sample_index = 1) OR (prompt_id = ? AND sample_index = 0)"
        " OR prompt_id = ?",
        [pids[0], pids[1], pids[2]],
    )
    assert store.count("traces") == 4
    res = run_collect(store, cfg)
    assert res["traces"] == 4 and res["skipped"] == 4
    assert {r[0] for r in store.fetchall("SELECT trace_id FROM traces")} == before
    res = run_collect(store, cfg.model_copy(update={"samples": 3}))
    assert res["traces"] == 4 and res["skipped"] == 8
    assert store.fetchall("SELECT DISTINCT sample_index FROM traces ORDER BY 1") == [
        (0,),
        (1,),
        (2,),
    ]


def test_sampling_settings_are_part_of_the_lineage(store: Store, tiny_model_dir: Path) -> None:
    _prompts(store, 1)
    cfg = CollectConfig(teachers=[f"hf:{tiny_model_dir}"], samples=1, max_tokens=3)
    run_collect(store, cfg)
    run_collect(store, cfg.model_copy(update={"temperature": 0.0}))
    run_collect(store, cfg.model_copy(update={"template": "Solve: {problem}"}))
    run_collect(store, cfg.model_copy(update={"origin": "student"}))
    rows = store.fetchall("SELECT sampling, origin FROM traces")
    assert len(rows) == 4 and len({r[0] for r in rows}) == 4
    assert sorted(r[1] for r in rows) == ["generated"] * 3 + ["student"]
