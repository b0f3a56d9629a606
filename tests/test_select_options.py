"""Options of the builders on a small synthetic store: flags, strategies, pairings, truncation,
verifiers, think formats, splits and failure modes."""

from __future__ import annotations

import duckdb
import pytest

from tests._select_helpers import add_flag, add_prompt, add_trace, basic_store
from tracekit.errors import ConfigError, TracekitError
from tracekit.select import find_dataset, load_training_dataset
from tracekit.select.candidates import flag_condition
from tracekit.select.output import rebuild_command
from tracekit.select.pairs import SelectPairsConfig, run_select_pairs
from tracekit.select.sft import SelectSFTConfig, run_select_sft


def _trace_ids(store, name: str, col: str = "trace_id") -> list[str]:
    did = find_dataset(store, name)["dataset_id"]
    return [
        r[0]
        for r in store.fetchall(
            f"SELECT {col} FROM dataset_rows WHERE dataset_id = ? ORDER BY row_idx", [did]
        )
    ]


@pytest.mark.parametrize(
    ("patterns", "flag", "hit"),
    [
        (["dup"], "dup:abc", True),
        (["dup"], "dup", True),
        (["dup"], "dupe:x", False),
        (["decontam:*"], "decontam:math500", True),
        (["decontam:*"], "decontam", False),
        (["safety:*"], "format:truncated", False),
        (["format:truncated"], "format:truncated", True),
        (["format:truncated"], "format:truncated_x", False),
        (["a_b"], "axb", False),  # '_' is literal, not a LIKE wildcard
        (["s?fety:*"], "safety:pii", True),
        ([], "dup:abc", False),
    ],
)
def test_flag_patterns(patterns, flag, hit):
    sql = f"SELECT {flag_condition(patterns)} FROM (SELECT ? AS flag)"
    assert duckdb.execute(sql, [flag]).fetchall()[0][0] is hit


def test_prompt_and_trace_flags_exclude(store):
    ids = basic_store(store, 4)
    add_flag(store, ids[0]["pid"], None, "decontam:gsm8k")  # the whole prompt
    add_flag(store, ids[1]["pid"], ids[1]["pos_short"], "dup:c1")  # one trace
    add_flag(store, ids[2]["pid"], ids[2]["pos_short"], "format:no_answer")  # not excluded
    run_select_sft(store, SelectSFTConfig(name="s", strategy="shortest"))
    got = _trace_ids(store, "s")
    assert ids[0]["pos_short"] not in got and ids[0]["pos_long"] not in got
    assert ids[1]["pos_long"] in got  # the other positive of the dup-flagged prompt
    assert ids[2]["pos_short"] in got
    funnel = {f["step"]: f["count"] for f in find_dataset(store, "s")["selection"]["funnel"]}
    assert funnel["positive"] == 8 and funnel["not_flagged"] == 5
    run_select_sft(store, SelectSFTConfig(name="all", exclude_flags=["none"]))
    assert find_dataset(store, "all")["rows"] == 4


def test_strategies(store):
    ids = basic_store(store, 5)
    pid = ids[0]["pid"]
    add_trace(
        store,
        pid,
        "p0t",
        True,
        text="t" * 500,
        teacher="teacher-c",
        scores={"teacher_sentences": 9},
    )
    store.insert_rows(
        "scores", [{"trace_id": ids[0]["pos_short"], "name": "teacher_sentences", "value": 2}]
    )
    run_select_sft(store, SelectSFTConfig(name="short", strategy="shortest"))
    assert set(_trace_ids(store, "short")) == {ids[i]["pos_short"] for i in range(5)}
    run_select_sft(store, SelectSFTConfig(name="first", strategy="first"))
    assert set(_trace_ids(store, "first")) == {
        ids[i]["pos_long"] for i in range(5)
    }  # sample_index 0
    run_select_sft(store, SelectSFTConfig(name="tg", strategy="teacher-guided"))
    assert "p0t" in _trace_ids(store, "tg")
    run_select_sft(store, SelectSFTConfig(name="div", strategy="diverse", per_prompt=2))
    teachers = store.fetchall(
        """SELECT t.prompt_id, count(DISTINCT t.teacher) FROM dataset_rows r JOIN traces t USING (trace_id)
           WHERE r.dataset_id = ? GROUP BY 1""",
        [find_dataset(store, "div")["dataset_id"]],
    )
    assert all(n == 2 for _, n in teachers) and len(teachers) == 5
    run_select_sft(store, SelectSFTConfig(name="r1", strategy="random", seed=7))
    run_select_sft(store, SelectSFTConfig(name="r2", strategy="random", seed=7))
    assert _trace_ids(store, "r1") == _trace_ids(store, "r2")
    run_select_sft(store, SelectSFTConfig(name="all", per_prompt=0))
    assert find_dataset(store, "all")["rows"] == 11


def test_teacher_guided_without_scores_is_a_clear_error(store):
    basic_store(store, 2)
    with pytest.raises(ConfigError, match="teacher_sentences"):
        run_select_sft(store, SelectSFTConfig(name="tg", strategy="teacher-guided"))


def test_hardest_pairs_use_lowest_perplexity(store):
    ids = basic_store(store, 3)
    for i in range(3):
        store.insert_rows(
            "scores",
            [
                {"trace_id": ids[i]["neg_a"], "name": "ppl:student", "value": 9.0},
                {"trace_id": ids[i]["neg_b"], "name": "ppl:student", "value": 1.5},
            ],
        )
    run_select_pairs(store, SelectPairsConfig(name="hard", pairing="hardest"))
    assert set(_trace_ids(store, "hard", "pair_trace_id")) == {ids[i]["neg_b"] for i in range(3)}
    assert find_dataset(store, "hard")["selection"]["ppl_score"] == "ppl:student"
    store.insert_rows("scores", [{"trace_id": ids[0]["neg_a"], "name": "ppl:other", "value": 1.0}])
    with pytest.raises(ConfigError, match="--ppl-score"):
        run_select_pairs(store, SelectPairsConfig(name="hard2", pairing="hardest"))


def test_pairing_all_and_caps(store):
    basic_store(store, 3)
    run_select_pairs(store, SelectPairsConfig(name="all", pairing="all"))
    assert find_dataset(store, "all")["rows"] == 3 * 2 * 2
    run_select_pairs(store, SelectPairsConfig(name="all3", pairing="all", max_pairs_per_prompt=3))
    assert find_dataset(store, "all3")["rows"] == 9
    run_select_pairs(store, SelectPairsConfig(name="zip", pairing="first", max_pairs_per_prompt=5))
    # zip pairs use each trace once: 2 positives x 2 negatives -> 2 pairs per prompt
    assert find_dataset(store, "zip")["rows"] == 6
    pairs = store.fetchall(
        "SELECT trace_id, pair_trace_id FROM dataset_rows WHERE dataset_id = ?",
        [find_dataset(store, "zip")["dataset_id"]],
    )
    assert len({p[0] for p in pairs}) == 6 and len({p[1] for p in pairs}) == 6


def test_truncated_negatives_are_not_negatives(store):
    pid = add_prompt(store, "2 + 2?")
    add_trace(store, pid, "ok", True)
    add_trace(store, pid, "cut", False, finish_reason="length")
    pid2 = add_prompt(store, "3 + 1?")
    add_trace(store, pid2, "ok2", True)
    add_trace(store, pid2, "cutflag", False, flags=["format:truncated"])
    add_trace(store, pid2, "wrong2", False)
    run_select_pairs(store, SelectPairsConfig(name="p"))
    row = find_dataset(store, "p")
    assert _trace_ids(store, "p", "pair_trace_id") == ["wrong2"]
    funnel = {f["step"]: f["count"] for f in row["selection"]["funnel"]}
    assert funnel["truncated_negatives_excluded"] == 2 and funnel["prompts_without_negative"] == 1
    run_select_pairs(store, SelectPairsConfig(name="p2", exclude_truncated=False))
    assert find_dataset(store, "p2")["rows"] == 2


def test_verifier_choice_and_same_verifier_pairs(store):
    pid = add_prompt(store, "1 + 3?")
    add_trace(store, pid, "a", True, verifier="math")
    add_trace(store, pid, "b", False, verifier="math")
    store.insert_rows(
        "verdicts",
        [
            {"trace_id": "a", "verifier": "source", "correct": False, "status": "ok"},
            {"trace_id": "b", "verifier": "source", "correct": True, "status": "ok"},
        ],
    )
    run_select_pairs(store, SelectPairsConfig(name="m"))  # final verdict: math outranks source
    assert _trace_ids(store, "m") == ["a"]
    run_select_pairs(store, SelectPairsConfig(name="s", verifier="source"))
    assert _trace_ids(store, "s") == ["b"] and _trace_ids(store, "s", "pair_trace_id") == ["a"]
    with pytest.raises(ConfigError, match="verifiers present: math, source"):
        run_select_sft(store, SelectSFTConfig(name="x", verifier="nope"))


def test_think_formats(store):
    pid = add_prompt(store, "5 - 1?")
    add_trace(store, pid, "r", True, text="<think>count</think>4", reasoning="count", answer="4")
    run_select_sft(store, SelectSFTConfig(name="think", system_prompt="Be brief."))
    ex = load_training_dataset(store, "think")["train"][0]
    assert ex["completion"][0]["content"] == "<think>\ncount\n</think>\n\n4"
    assert [m["role"] for m in ex["prompt"]] == ["system", "user"]
    run_select_sft(store, SelectSFTConfig(name="sky", think_format="thought"))
    assert load_training_dataset(store, "sky")["train"][0]["completion"][0]["content"].startswith(
        "<|begin_of_thought|>"
    )
    run_select_sft(store, SelectSFTConfig(name="raw", think_format="raw"))
    assert (
        load_training_dataset(store, "raw")["train"][0]["completion"][0]["content"]
        == "<think>count</think>4"
    )
    run_select_sft(store, SelectSFTConfig(name="custom", think_format="[{reasoning}] => {answer}"))
    assert (
        load_training_dataset(store, "custom")["train"][0]["completion"][0]["content"]
        == "[count] => 4"
    )
    with pytest.raises(ValueError, match="template"):
        SelectSFTConfig(name="bad", think_format="{answer} then {reasoning}")


def test_split_is_exact_and_deterministic(store):
    basic_store(store, 20)
    run_select_sft(store, SelectSFTConfig(name="a", per_prompt=2, eval_fraction=0.25))
    dd = load_training_dataset(store, "a")
    assert len(set(dd["eval"]["prompt_id"])) == 5 and len(set(dd["train"]["prompt_id"])) == 15
    assert not set(dd["eval"]["prompt_id"]) & set(dd["train"]["prompt_id"])
    run_select_sft(store, SelectSFTConfig(name="b", per_prompt=2, eval_fraction=0.25))
    assert load_training_dataset(store, "b")["eval"]["prompt_id"] == dd["eval"]["prompt_id"]
    run_select_sft(store, SelectSFTConfig(name="c", per_prompt=2, eval_fraction=0.25, seed=1))
    assert set(load_training_dataset(store, "c")["eval"]["prompt_id"]) != set(
        dd["eval"]["prompt_id"]
    )


def test_balance_length_trims_over_represented_lengths(store):
    pids = [add_prompt(store, f"q{i}") for i in range(30)]
    for i, pid in enumerate(pids):  # 24 short, 3 medium, 3 long thoughts
        n = 20 if i < 24 else (400 if i < 27 else 8000)
        add_trace(store, pid, f"t{i}", True, text="a" * n)
    run_select_sft(store, SelectSFTConfig(name="bal", balance_length=True, length_buckets=3))
    row = find_dataset(store, "bal")
    lens = [
        r[0]
        for r in store.fetchall(
            "SELECT length(t.text) FROM dataset_rows r JOIN traces t USING (trace_id) WHERE dataset_id = ?",
            [row["dataset_id"]],
        )
    ]
    assert lens.count(20) == 3 and lens.count(400) == 3 and lens.count(8000) == 3
    funnel = {f["step"]: f["count"] for f in row["selection"]["funnel"]}
    assert funnel["per_prompt"] == 30 and funnel["length_balanced"] == 9


def test_empty_selection_fails_and_changes_nothing(store):
    basic_store(store, 2)
    with pytest.raises(TracekitError, match="empty"):
        run_select_sft(store, SelectSFTConfig(name="none", where="teacher = 'nobody'"))
    assert store.count("datasets") == 0 and store.count("dataset_rows") == 0
    assert store.scalar("SELECT status FROM runs WHERE stage = 'select.sft'") == "failed"
    assert not (store.path.parent / "datasets" / "none").exists()


def test_output_folder_is_never_clobbered(store, tmp_path):
    basic_store(store, 2)
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    with pytest.raises(TracekitError, match="not a tracekit dataset folder"):
        run_select_sft(store, SelectSFTConfig(name="x", output=str(precious)))
    assert (precious / "notes.txt").read_text() == "keep me"
    assert store.count("datasets") == 0
    run_select_sft(store, SelectSFTConfig(name="x", output=str(tmp_path / "mine")))
    assert (tmp_path / "mine" / "hf").exists()
    run_select_sft(
        store, SelectSFTConfig(name="x", output=str(tmp_path / "mine"), strategy="shortest")
    )
    assert len(load_training_dataset(store, "x")["train"]) == 2
    # another dataset may not take over x's folder: x's row would point at its files
    with pytest.raises(ConfigError, match="holds dataset 'x'"):
        run_select_pairs(store, SelectPairsConfig(name="y", output=str(tmp_path / "mine")))
    assert len(load_training_dataset(store, "x")["train"]) == 2
    assert "completion" in load_training_dataset(store, "x")["train"].column_names


def test_rebuild_command_lists_non_default_options():
    cfg = SelectPairsConfig(
        name="n", kind="dpo", where="teacher = 'a b'", exclude_flags=[], exclude_truncated=False
    )
    cmd = rebuild_command("dpo", cfg)
    assert cmd.startswith("tracekit select pairs n ")
    assert "--kind dpo" in cmd and "--where 'teacher = '\"'\"'a b'\"'\"''" in cmd
    assert "--exclude-flags none" in cmd and "--no-exclude-truncated" in cmd
    assert "--seed" not in cmd


def test_stages_registered():
    from tracekit.stages import stage

    for name in ("select.sft", "select.pairs", "publish"):
        cfg_cls, fn = stage(name)
        assert callable(fn) and cfg_cls.model_config.get("extra") == "forbid"
