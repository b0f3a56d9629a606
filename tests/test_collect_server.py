"""The OpenAI-compatible backend against a real server: llama-cpp-python serving the embedded
model's GGUF on 127.0.0.1. It ignores `n` (so samples are emulated), reports usage, truncates at
max_tokens, and costs what the price flags say."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.llama_server import llama_server  # noqa: F401  (fixture)
from tracekit.collect.collect import CollectConfig, run_collect
from tracekit.store import Store
from tracekit.store.ids import prompt_id

pytestmark = [pytest.mark.server, pytest.mark.model]

PROBLEMS = ["What is 7 plus 5?", "Name a prime number larger than 10.", "What is 3 times 4?"]


def add_prompts(store: Store) -> None:
    store.insert_rows(
        "prompts", [{"prompt_id": prompt_id(p), "source": "unit", "problem": p} for p in PROBLEMS]
    )


def test_llama_server_samples_usage_cost_and_truncation(tmp_path: Path, llama_server: str) -> None:  # noqa: F811
    db = tmp_path / "s.duckdb"
    with Store(db) as s:
        add_prompts(s)
    code, out, err = run_cli(
        "collect", "--teacher", f"openai:smollm2@{llama_server}", "--samples", "2", "--limit", "2",
        "--max-tokens", "8", "--price-in", "0.5", "--price-out", "2.0", "--concurrency", "2", "--quiet",
        store=db,
    )  # fmt: skip
    assert code == 0, err
    assert "traces=4" in out
    with Store(db) as s:
        rows = s.dicts("SELECT * FROM traces ORDER BY prompt_id, sample_index")
        assert [r["sample_index"] for r in rows] == [
            0,
            1,
            0,
            1,
        ]  # n=2 emulated: llama.cpp returns one choice
        for r in rows:
            assert r["teacher"] == "openai:smollm2" and r["backend"] == "openai"
            assert r["prompt_tokens"] > 10 and 0 < r["completion_tokens"] <= 8 and r["text"]
            assert (r["finish_reason"] == "length") == (r["completion_tokens"] == 8)
            assert r["cost_usd"] == pytest.approx(
                (r["prompt_tokens"] * 0.5 + r["completion_tokens"] * 2.0) / 1e6
            )
            assert r["latency_ms"] > 0
        assert sum(r["finish_reason"] == "length" for r in rows) >= 1  # 8 tokens cut most answers
        counts = json.loads(s.scalar("SELECT counts FROM runs WHERE stage = 'collect'"))
        assert counts["cost_usd"] == pytest.approx(sum(r["cost_usd"] for r in rows), abs=1e-6)


def test_llama_server_budget_cap(store: Store, llama_server: str) -> None:  # noqa: F811
    add_prompts(store)
    # $1 per output token and 8 tokens at most: each request may cost $8; $10 admits one at a time
    cfg = CollectConfig(
        teachers=[f"openai:smollm2@{llama_server}"], samples=1, max_tokens=8, price_in=0.0, price_out=1e6,
        budget_usd=10.0, concurrency=1,
    )  # fmt: skip
    res = run_collect(store, cfg)
    assert res.details["stopped"] == "budget"
    n = store.count("traces")
    assert 1 <= n < len(PROBLEMS)
    assert store.scalar("SELECT sum(cost_usd) FROM traces") <= 10.0
