"""Pure parts of collect: configs, lineage keys, shards, prices, backoff, and the vLLM parameter
mapping (vLLM needs a GPU; its RequestOutput is stood in for by plain objects with its fields)."""

from __future__ import annotations

import importlib.util
import json
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from types import SimpleNamespace

import pytest
from pydantic import ValidationError

from tracekit.collect.backends.base import BackendOptions, GenRequest, Sampling, make_backend
from tracekit.collect.backends.openai import backoff_delay, parse_retry_after, split_tokens
from tracekit.collect.backends.vllm import engine_kwargs, parse_output, sampling_kwargs
from tracekit.collect.collect import (
    Budget,
    CollectConfig,
    redact_spec,
    render_messages,
    run_collect,
    sampling_key,
    worst_case_cost,
)
from tracekit.collect.pricing import Price, price_for
from tracekit.collect.shard import in_shard, parse_shard, shard_of
from tracekit.errors import ConfigError, TracekitError
from tracekit.models import parse_spec
from tracekit.store.ids import generated_trace_id, prompt_id


def test_config_validation() -> None:
    with pytest.raises(ValidationError, match=r"\{problem\}"):
        CollectConfig(template="no placeholder")
    with pytest.raises(ValidationError, match="i/n"):
        CollectConfig(shard="3")
    with pytest.raises(ValidationError, match="0 <= i < n"):
        CollectConfig(shard="2/2")
    with pytest.raises(ValidationError):
        CollectConfig(samples=0)
    with pytest.raises(ValidationError):
        CollectConfig(api_key="sk-x")  # type: ignore[call-arg]  (keys are never config)


def test_template_braces_are_literal() -> None:
    msgs = render_messages(CollectConfig(system_prompt="Be brief."), "Is {x} a set?")
    assert msgs[0] == {"role": "system", "content": "Be brief."}
    assert msgs[1]["content"].startswith("Is {x} a set?") and msgs[1]["content"].endswith(
        "\\boxed{}."
    )


def test_sampling_key_changes_with_what_changes_the_output() -> None:
    base = CollectConfig()
    keys = {
        json.dumps(sampling_key(c), sort_keys=True)
        for c in [
            base,
            base.model_copy(update={"temperature": 1.0}),
            base.model_copy(update={"max_tokens": 7}),
            base.model_copy(update={"system_prompt": "x"}),
            base.model_copy(update={"template": "Q: {problem}"}),
            base.model_copy(update={"origin": "student"}),
        ]
    }
    assert len(keys) == 6
    # what does not change the output does not change the key
    same = base.model_copy(
        update={"concurrency": 64, "batch_size": 2, "budget_usd": 5.0, "where": "1=1"}
    )
    assert sampling_key(same) == sampling_key(base)


def test_shards_partition_prompts() -> None:
    ids = [prompt_id(f"problem {i}") for i in range(500)]
    buckets = [[p for p in ids if in_shard(p, (i, 4))] for i in range(4)]
    assert sorted(sum(buckets, [])) == sorted(ids)
    assert all(60 < len(b) < 190 for b in buckets)  # roughly even
    assert all(shard_of(p, 4) == i for i, b in enumerate(buckets) for p in b)
    assert parse_shard(" 1 / 3 ") == (1, 3)
    with pytest.raises(ConfigError):
        parse_shard("-1/3")


def test_redact_spec() -> None:
    assert (
        redact_spec("openai:m@https://user:pw@api.x.com:8443/v1?key=abc")
        == "openai:m@https://api.x.com:8443/v1"
    )
    assert redact_spec("hf:/models/a") == "hf:/models/a"
    assert parse_spec("openai:gpt-4o@https://api.openai.com/v1").name == "openai:gpt-4o"


def test_prices(tmp_path, monkeypatch) -> None:
    assert price_for("openai", "gpt-4o-mini") == Price(0.15, 0.60)
    assert price_for("openai", "my-own-model") is None  # unknown, not free
    assert price_for("hf", "/models/x") == Price(0.0, 0.0)
    assert price_for("openai", "gpt-4o", 1.0, 2.0) == Price(1.0, 2.0)
    table = tmp_path / "prices.json"
    table.write_text(json.dumps({"my-own-model": [3, 4]}))
    monkeypatch.setenv("TRACEKIT_PRICES", str(table))
    assert price_for("openai", "my-own-model") == Price(3.0, 4.0)
    table.write_text(json.dumps({"bad": 3}))
    with pytest.raises(ConfigError, match="bad"):
        price_for("openai", "x")
    # a call with n=4 choices bills the prompt once: each trace carries a quarter of it
    p = Price(2.0, 8.0)
    assert 4 * p.cost(100, 10, 0.25) == pytest.approx(p.cost(100, 0) + 4 * p.cost(0, 10))


def test_budget_never_admits_past_the_cap() -> None:
    b = Budget(10.0)
    assert b.reserve(4.0) and b.reserve(4.0)
    assert not b.reserve(4.0) and b.exhausted
    b.settle(4.0, 1.0)  # a request finished cheaper than its worst case
    assert b.spent == 1.0 and b.reserved == 4.0
    assert worst_case_cost(Price(0.0, 1e6), 1000, 2, 5) == 10.0


def test_retry_after_and_backoff() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    later = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=30), usegmt=True)
    assert 25 < parse_retry_after(later) <= 30  # type: ignore[operator]
    assert backoff_delay(5, 1.0, 60.0, retry_after=2.0) == 2.0
    for attempt in range(8):
        d = backoff_delay(attempt, 1.0, 60.0, None)
        cap = min(60.0, 2.0**attempt)
        assert cap / 2 <= d <= cap
    assert split_tokens(10, ["a", "bbb", "cccccc"]) == [1, 3, 6]
    assert sum(split_tokens(7, ["ab", "ab", "ab"])) == 7


# ---- vLLM: mapping only (no GPU here) --------------------------------------------------------
def test_vllm_sampling_kwargs() -> None:
    s = Sampling(temperature=0.6, top_p=0.95, max_tokens=4096, logprobs=True)
    assert sampling_kwargs(s, 8, 42) == {
        "n": 8, "temperature": 0.6, "top_p": 0.95, "max_tokens": 4096, "seed": 42, "logprobs": 0,
    }  # fmt: skip
    greedy = sampling_kwargs(Sampling(temperature=0.0, top_p=0.5, max_tokens=16), 1, None)
    assert greedy == {"n": 1, "temperature": 0.0, "top_p": 1.0, "max_tokens": 16}


def test_vllm_engine_kwargs() -> None:
    opts = BackendOptions(
        tensor_parallel_size=4, data_parallel_size=2, engine_args={"gpu_memory_utilization": 0.85}
    )
    kw = engine_kwargs(parse_spec("vllm:Qwen/Qwen2.5-Math-7B-Instruct"), opts, seed=1)
    assert kw == {
        "model": "Qwen/Qwen2.5-Math-7B-Instruct", "tensor_parallel_size": 4, "data_parallel_size": 2,
        "seed": 1, "gpu_memory_utilization": 0.85,
    }  # fmt: skip
    assert "data_parallel_size" not in engine_kwargs(parse_spec("vllm:m"), BackendOptions())


def test_vllm_output_parsing() -> None:
    lp = SimpleNamespace
    out = SimpleNamespace(
        prompt_token_ids=[1, 2, 3, 4],
        outputs=[
            SimpleNamespace(text="<think>hm</think> 4", token_ids=[7, 8], finish_reason="stop",
                            logprobs=[{7: lp(logprob=-0.5, decoded_token="<think>")}, {8: lp(logprob=-1.0, decoded_token="4")}]),
            SimpleNamespace(text="long", token_ids=[9, 9, 9], finish_reason="length", logprobs=None),
        ],
    )  # fmt: skip
    req = GenRequest("p", [{"role": "user", "content": "x"}], [2, 3, 4])
    res = parse_output(out, req, 12.0, want_logprobs=True)
    a, b = res.samples
    assert (a.sample_index, a.prompt_tokens, a.completion_tokens, a.finish_reason) == (
        2,
        4,
        2,
        "stop",
    )
    assert a.tokens == ["<think>", "4"] and a.logprobs == [-0.5, -1.0]
    assert (b.sample_index, b.finish_reason, b.completion_tokens, b.logprobs) == (
        3,
        "length",
        3,
        None,
    )
    assert res.errors == {4: "vLLM returned fewer outputs than asked"}


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vLLM is installed")
def test_vllm_missing_is_a_clear_error(store) -> None:
    with pytest.raises(TracekitError, match="pip install 'tracekit\\[vllm\\]'"):
        make_backend("vllm:some/model")
    store.insert_rows("prompts", [{"prompt_id": prompt_id("q"), "problem": "q"}])
    with pytest.raises(TracekitError, match="vLLM is not installed"):
        run_collect(store, CollectConfig(teachers=["vllm:some/model"], samples=1))
    assert store.count("traces") == 0


def test_where_errors_name_the_option(store) -> None:
    store.insert_rows("prompts", [{"prompt_id": prompt_id("q"), "problem": "q"}])
    with pytest.raises(ConfigError, match="--where"):
        run_collect(store, CollectConfig(where="no_such_column = 1"))


def test_nothing_pending_loads_no_model(store) -> None:
    """A finished collect re-runs in a second: pending samples are computed from trace ids
    before any backend is built (this teacher could not even load)."""
    cfg = CollectConfig(teachers=["hf:/nonexistent/model"], samples=2)
    pid = prompt_id("q")
    store.insert_rows("prompts", [{"prompt_id": pid, "problem": "q"}])
    store.insert_rows(
        "traces",
        [{"trace_id": generated_trace_id(pid, "hf:/nonexistent/model", None, sampling_key(cfg), 0, i),
          "prompt_id": pid, "sample_index": i, "text": "done"} for i in range(2)],
    )  # fmt: skip
    res = run_collect(store, cfg)
    assert res.status == "ok" and res["skipped"] == 2 and res["traces"] == 0
    with pytest.raises(TracekitError, match="cannot load model"):
        run_collect(store, cfg.model_copy(update={"samples": 3}))
