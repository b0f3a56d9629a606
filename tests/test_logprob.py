"""The batched scorer against a token-by-token reference, and `score perplexity` on a real store."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.conftest import run_cli
from tracekit.models import load_causal_lm
from tracekit.score.logprob import LogprobScorer

PAIRS = [
    ("Question: what is 2 + 3?\nAnswer:", " 2 + 3 = 5. The answer is 5."),
    ("Hi", " there"),
    ("", " A continuation with no context at all, so its first token cannot be scored."),
    (
        "A long context that will not fit: "
        + "one two three four five six seven eight nine ten " * 4,
        " and then the continuation, which is long as well, keeps going for a while.",
    ),
    ("Short.", " x"),
]


def reference(model, ctx_ids: list[int], cont_ids: list[int], max_length: int) -> list[float]:
    """log p(token | prefix) with one unpadded forward pass per token: the obvious definition,
    including left truncation of the whole sequence to max_length tokens."""
    import torch

    ids = ctx_ids + cont_ids
    drop = max(0, len(ids) - max_length)
    window = ids[drop:]
    out = []
    for j in range(len(cont_ids)):
        w = len(ctx_ids) + j - drop  # the token's column in the kept window
        if w < 1:
            out.append(float("nan"))
            continue
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([window[:w]])).logits[0, -1].double()
        out.append(float(torch.log_softmax(logits, -1)[window[w]]))
    return out


@pytest.mark.model
@pytest.mark.parametrize("max_length", [None, 40])
def test_batched_logprobs_equal_token_by_token_reference(tiny_model_dir, max_length):
    model, tok = load_causal_lm(f"hf:{tiny_model_dir}", device="cpu")
    scorer = LogprobScorer(model, tok, batch_size=3, max_length=max_length)
    results = scorer.score(PAIRS)
    limit = scorer.max_length
    truncated_any = False
    for (ctx, cont), res in zip(PAIRS, results, strict=True):
        ctx_ids = list(tok(ctx, add_special_tokens=False)["input_ids"]) if ctx else []
        cont_ids = list(tok(cont, add_special_tokens=False)["input_ids"])
        assert res.token_ids == cont_ids
        ref = np.array(reference(model, ctx_ids, cont_ids, limit))
        assert np.array_equal(np.isnan(ref), np.isnan(res.logprobs))
        finite = ~np.isnan(ref)
        assert finite.any()
        assert np.max(np.abs(ref[finite] - res.logprobs[finite])) < 1e-4
        dropped = max(0, len(ctx_ids) + len(cont_ids) - limit)
        assert res.truncated_tokens == dropped
        assert res.context_tokens == max(0, len(ctx_ids) - dropped)
        truncated_any |= dropped > 0
    assert truncated_any == (max_length is not None)


@pytest.mark.model
def test_sorted_and_unsorted_batches_agree(tiny_model_dir):
    model, tok = load_causal_lm(f"hf:{tiny_model_dir}", device="cpu")
    pairs = [(list(tok(c)["input_ids"]), list(tok(x)["input_ids"])) for c, x in PAIRS if c]
    a = LogprobScorer(model, tok, batch_size=4).score_ids(pairs, sort=True)
    b = LogprobScorer(model, tok, batch_size=1).score_ids(pairs, sort=False)
    for x, y in zip(a, b, strict=True):
        assert np.allclose(x.logprobs, y.logprobs, atol=1e-4, equal_nan=True)


def _insert_traces(store, texts: list[tuple[str, str]]) -> list[str]:
    from tracekit.store.ids import imported_trace_id, prompt_id

    prompts, traces = [], []
    for i, (problem, text) in enumerate(texts):
        pid = prompt_id(problem)
        prompts.append({"prompt_id": pid, "source": "test", "problem": problem})
        tid = imported_trace_id(pid, "t", "test", str(i), 0)
        traces.append(
            {"trace_id": tid, "prompt_id": pid, "teacher": "t", "text": text, "origin": "imported"}
        )
    store.insert_rows("prompts", prompts)
    store.insert_rows("traces", traces)
    return [t["trace_id"] for t in traces]


@pytest.mark.model
def test_score_perplexity_stores_nll_and_ppl_and_resumes(store, tiny_model_dir):
    from tracekit.score.perplexity import PerplexityConfig, run_perplexity, score_names

    ids = _insert_traces(
        store,
        [
            ("What is 1+1?", "1 + 1 = 2. The answer is 2."),
            ("Name a colour.", "Blue."),
            ("Empty?", ""),
        ],
    )
    spec = f"hf:{tiny_model_dir}"
    cfg = PerplexityConfig(model=spec, batch_size=2)
    result = run_perplexity(store, cfg)
    assert result.status == "ok" and result["scored"] == 2 and result["empty"] == 1
    ppl_name, nll_name = score_names(spec)
    assert ppl_name == f"ppl:{spec}" and nll_name == f"nll:{spec}"
    got = dict(store.fetchall("SELECT trace_id, value FROM scores WHERE name = ?", [nll_name]))
    ppl = dict(store.fetchall("SELECT trace_id, value FROM scores WHERE name = ?", [ppl_name]))
    # the stored NLL is the mean negative token log-prob of the trace in its chat context
    model, tok = load_causal_lm(spec, device="cpu")
    scorer = LogprobScorer(model, tok)
    res = scorer.score_prompts(["What is 1+1?"], ["1 + 1 = 2. The answer is 2."])[0]
    assert got[ids[0]] == pytest.approx(-float(np.mean(res.logprobs)), abs=1e-5)
    assert ppl[ids[0]] == pytest.approx(math.exp(got[ids[0]]), rel=1e-9)
    # a random model is very uncertain: its perplexity is of the order of the vocabulary
    assert ppl[ids[0]] > 100
    again = run_perplexity(store, cfg)
    assert again["scored"] == 0
    assert store.scalar("SELECT count(*) FROM scores WHERE name = ?", [nll_name]) == 2


@pytest.mark.model
def test_cli_score_perplexity(tmp_path, tiny_model_dir):
    from tracekit.store import Store

    path = tmp_path / "s.duckdb"
    with Store(path) as s:
        _insert_traces(s, [("Say hi.", "Hi there! Nice to meet you.")])
    code, out, err = run_cli(
        "score",
        "perplexity",
        "--model",
        f"hf:{tiny_model_dir}",
        "--where",
        "teacher = 't'",
        "-q",
        store=path,
    )
    assert code == 0, err
    assert "score.perplexity ok" in out and "scored=1" in out
    code, _, err = run_cli(
        "score", "perplexity", "--model", "default", "--where", "no_such_column > 1", store=path
    )
    assert code != 0 and "no_such_column" in err
