"""Length scores in characters and in the student's tokens."""

from __future__ import annotations

import pytest

from tests.filters_support import add_prompts, add_traces, read_jsonl
from tracekit.errors import TracekitError
from tracekit.score.length import LengthConfig, run_length
from tracekit.text.reasoning import split_reasoning


def _scores(store, tid: str) -> dict[str, float]:
    return dict(store.fetchall("SELECT name, value FROM scores WHERE trace_id = ?", [tid]))


def test_chars_only_split_from_markers(store):
    (pid,) = add_prompts(store, ["What is 6 times 7?"])
    tids = add_traces(
        store,
        [
            (pid, "t", "<think>6*7: 6*7 = 42, checked twice.</think>The answer is 42."),
            (pid, "t", "42"),  # no thinking block: all answer
        ],
    )
    res = run_length(store, LengthConfig(tokenizer="none"))
    assert res["traces"] == 2
    s = _scores(store, tids[0])
    assert s["length:reasoning_chars"] == len("6*7: 6*7 = 42, checked twice.")
    assert s["length:answer_chars"] == len("The answer is 42.")
    assert s["length:ratio"] == pytest.approx(
        len("6*7: 6*7 = 42, checked twice.") / len("The answer is 42.")
    )
    assert "length:reasoning_tokens" not in s
    assert _scores(store, tids[1])["length:reasoning_chars"] == 0
    assert run_length(store, LengthConfig(tokenizer="none"))["skipped_done"] == 2


@pytest.mark.model
@pytest.mark.realdata
def test_tokens_in_the_default_student_tokenizer(store, shared_data, default_model_dir):
    rows = read_jsonl(
        shared_data / "longcot" / "aime24__Sky-T1-math-correct-5K-32B-ckpts_checkpoint-133.jsonl"
    )[:5]
    pids = add_prompts(store, [r["question"] for r in rows])
    tids = add_traces(store, [(p, "sky", r["code"][0]) for p, r in zip(pids, rows, strict=True)])
    run_length(store, LengthConfig(tokenizer="default", batch_size=2))
    from transformers import PreTrainedTokenizerFast

    # the reference: transformers' own tokenizer class over the same files
    tok = PreTrainedTokenizerFast(tokenizer_file=str(default_model_dir / "tokenizer.json"))
    for tid, r in zip(tids, rows, strict=True):
        split = split_reasoning(r["code"][0])
        s = _scores(store, tid)
        want_r = len(tok(split.reasoning, add_special_tokens=False)["input_ids"])
        want_a = len(tok(split.answer_text, add_special_tokens=False)["input_ids"])
        assert s["length:reasoning_tokens"] == want_r
        assert s["length:answer_tokens"] == want_a
        assert s["length:ratio"] == pytest.approx(want_r / max(want_a, 1))
        assert s["length:ratio"] > 1  # long thinking, short boxed answer
    # the same tokenizer by path is another SPEC string: recorded, recomputed, same counts
    before = _scores(store, tids[0])["length:reasoning_tokens"]
    res = run_length(store, LengthConfig(tokenizer=str(default_model_dir)))
    assert res["traces"] == 5
    assert _scores(store, tids[0])["length:reasoning_tokens"] == before


def test_unknown_tokenizer_is_a_user_error(store, tmp_path):
    with pytest.raises(TracekitError, match="cannot load tokenizer"):
        run_length(store, LengthConfig(tokenizer=str(tmp_path / "missing")))
