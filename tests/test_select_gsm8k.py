"""Building SFT and REDI sets from the real GSM8K labelled solutions (4 per problem, labels from
the source): the numbers must equal what direct SQL over the store predicts."""

from __future__ import annotations

import json

import pytest

from tests.conftest import run_cli
from tracekit.select import diff_datasets, find_dataset, load_training_dataset
from tracekit.select.pairs import SelectPairsConfig, run_select_pairs
from tracekit.select.sft import SelectSFTConfig, run_select_sft
from tracekit.store import Store

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def gsm8k_store(tmp_path_factory, shared_data):
    from tracekit.collect.importers import ImportConfig, run_import

    path = tmp_path_factory.mktemp("gsm8k") / "traces.duckdb"
    s = Store(path)
    run_import(
        s,
        ImportConfig(
            path=str(shared_data / "gsm8k" / "example_model_solutions.jsonl"),
            preset="gsm8k-solutions",
            source="gsm8k",
        ),
    )
    run_select_sft(s, SelectSFTConfig(name="sft", per_prompt=1, eval_fraction=0.1))
    run_select_pairs(s, SelectPairsConfig(name="redi", kind="redi"))
    yield s
    s.close()


def test_gsm8k_store_has_731_problems_with_both_labels(gsm8k_store):
    n = gsm8k_store.scalar(
        """SELECT count(*) FROM (SELECT prompt_id FROM traces JOIN verdicts USING (trace_id)
           WHERE verifier = 'source' GROUP BY prompt_id HAVING bool_or(correct) AND bool_or(NOT correct))"""
    )
    assert n == 731


def test_sft_per_prompt_one_matches_sql(gsm8k_store):
    s = gsm8k_store
    expected = s.scalar(
        "SELECT count(DISTINCT prompt_id) FROM traces JOIN verdicts USING (trace_id) WHERE correct"
    )
    row = find_dataset(s, "sft")
    assert row["kind"] == "sft" and row["rows"] == expected
    assert (
        s.scalar("SELECT count(*) FROM dataset_rows WHERE dataset_id = ?", [row["dataset_id"]])
        == expected
    )
    # every row is a correct trace, one per prompt
    bad = s.scalar(
        """SELECT count(*) FROM dataset_rows r JOIN verdicts v USING (trace_id)
           WHERE r.dataset_id = ? AND NOT v.correct""",
        [row["dataset_id"]],
    )
    assert bad == 0
    per_prompt = s.scalar(
        """SELECT max(n) FROM (SELECT t.prompt_id, count(*) AS n FROM dataset_rows r
           JOIN traces t USING (trace_id) WHERE r.dataset_id = ? GROUP BY 1)""",
        [row["dataset_id"]],
    )
    assert per_prompt == 1
    funnel = {f["step"]: f["count"] for f in row["selection"]["funnel"]}
    assert funnel["positive"] == s.scalar("SELECT count(*) FROM verdicts WHERE correct")
    assert funnel["rows"] == expected


def test_sft_rows_are_trl_conversational_with_lineage(gsm8k_store):
    s = gsm8k_store
    dd = load_training_dataset(s, "sft")
    assert set(dd) == {"train", "eval"}
    ex = dd["train"][0]
    assert ex["prompt"][0]["role"] == "user" and ex["completion"][0]["role"] == "assistant"
    problem, text = s.fetchone(
        "SELECT p.problem, t.text FROM traces t JOIN prompts p USING (prompt_id) WHERE t.trace_id = ?",
        [ex["trace_id"]],
    )
    assert ex["prompt"][0]["content"] == problem
    assert ex["completion"][0]["content"] == text.strip()  # no separate reasoning: text kept
    assert (
        s.scalar("SELECT prompt_id FROM traces WHERE trace_id = ?", [ex["trace_id"]])
        == ex["prompt_id"]
    )


def test_eval_split_is_by_prompt(gsm8k_store):
    s = gsm8k_store
    row = find_dataset(s, "sft")
    both = s.scalar(
        """SELECT count(*) FROM (SELECT t.prompt_id FROM dataset_rows r JOIN traces t USING (trace_id)
           WHERE r.dataset_id = ? GROUP BY 1 HAVING count(DISTINCT r.split) > 1)""",
        [row["dataset_id"]],
    )
    assert both == 0
    dd = load_training_dataset(s, "sft")
    assert not set(dd["train"]["prompt_id"]) & set(dd["eval"]["prompt_id"])
    assert len(dd["eval"]) == round(0.1 * row["selection"]["prompts"])
    assert len(dd["train"]) + len(dd["eval"]) == row["rows"]


def test_redi_pairs_match_sql_and_share_prompt(gsm8k_store):
    s = gsm8k_store
    row = find_dataset(s, "redi")
    assert row["rows"] == 731
    did = row["dataset_id"]
    checks = s.fetchone(
        """SELECT count(*),
                  count(*) FILTER (WHERE c.prompt_id = j.prompt_id),
                  count(*) FILTER (WHERE vc.correct AND NOT vj.correct),
                  count(DISTINCT c.prompt_id)
           FROM dataset_rows r
           JOIN traces c ON c.trace_id = r.trace_id JOIN traces j ON j.trace_id = r.pair_trace_id
           JOIN verdicts vc ON vc.trace_id = c.trace_id AND vc.verifier = 'source'
           JOIN verdicts vj ON vj.trace_id = j.trace_id AND vj.verifier = 'source'
           WHERE r.dataset_id = ?""",
        [did],
    )
    assert checks == (731, 731, 731, 731)
    funnel = {f["step"]: f["count"] for f in row["selection"]["funnel"]}
    skipped_no_pos = s.scalar(
        """SELECT count(*) FROM (SELECT prompt_id FROM traces JOIN verdicts USING (trace_id)
           GROUP BY 1 HAVING NOT bool_or(correct))"""
    )
    assert funnel["prompts_without_positive"] == skipped_no_pos
    assert funnel["prompts_with_both"] == 731
    ds = load_training_dataset(s, "redi")["train"]
    assert {
        "prompt",
        "chosen",
        "rejected",
        "chosen_trace_id",
        "rejected_trace_id",
        "prompt_id",
    } <= set(ds.column_names)
    ex = ds[0]
    assert ex["chosen"][0]["content"] != ex["rejected"][0]["content"]


def test_folder_contents_and_parquet_copy(gsm8k_store):
    import pyarrow.parquet as pq
    from datasets import load_from_disk

    s = gsm8k_store
    row = find_dataset(s, "redi")
    folder = s.path.parent / row["path"]
    assert folder == s.path.parent / "datasets" / "redi"
    for name in ("hf", "data.parquet", "README.md", "length_hist.png"):
        assert (folder / name).exists(), name
    assert len(load_from_disk(str(folder / "hf"))["train"]) == 731
    table = pq.read_table(folder / "data.parquet")
    assert table.num_rows == 731
    assert (
        table.column("chosen_trace_id").to_pylist()
        == load_from_disk(str(folder / "hf"))["train"]["chosen_trace_id"]
    )


def test_same_options_same_fingerprint_different_where_differs(gsm8k_store):
    s = gsm8k_store
    first = find_dataset(s, "redi")
    run_select_pairs(s, SelectPairsConfig(name="redi", kind="redi"))
    again = find_dataset(s, "redi")
    assert again["fingerprint"] == first["fingerprint"]
    assert again["dataset_id"] == first["dataset_id"]
    assert s.scalar("SELECT count(*) FROM datasets WHERE name = 'redi'") == 1
    run_select_pairs(s, SelectPairsConfig(name="redi-175b", where="teacher LIKE 'gpt3-175b%'"))
    other = find_dataset(s, "redi-175b")
    assert other["fingerprint"] != first["fingerprint"]
    assert other["rows"] < first["rows"]
    # the rows of the filtered build are exactly the pairs whose traces match the filter
    bad = s.scalar(
        """SELECT count(*) FROM dataset_rows r JOIN traces c ON c.trace_id = r.trace_id
           JOIN traces j ON j.trace_id = r.pair_trace_id
           WHERE r.dataset_id = ? AND NOT (c.teacher LIKE 'gpt3-175b%' AND j.teacher LIKE 'gpt3-175b%')""",
        [other["dataset_id"]],
    )
    assert bad == 0


def test_longest_shortest_pairs_pick_extremes(gsm8k_store):
    s = gsm8k_store
    run_select_pairs(s, SelectPairsConfig(name="flash", kind="dpo", pairing="longest-shortest"))
    row = find_dataset(s, "flash")
    assert row["kind"] == "dpo" and row["rows"] == 731
    wrong = s.scalar(
        """WITH lens AS (SELECT t.prompt_id, v.correct, length(t.text) AS n FROM traces t
                         JOIN verdicts v USING (trace_id)),
                ext AS (SELECT prompt_id, min(n) FILTER (WHERE correct) AS short_pos,
                               max(n) FILTER (WHERE NOT correct) AS long_neg FROM lens GROUP BY 1)
           SELECT count(*) FROM dataset_rows r JOIN traces c ON c.trace_id = r.trace_id
           JOIN traces j ON j.trace_id = r.pair_trace_id JOIN ext ON ext.prompt_id = c.prompt_id
           WHERE r.dataset_id = ? AND (length(c.text) <> short_pos OR length(j.text) <> long_neg)""",
        [row["dataset_id"]],
    )
    assert wrong == 0


def test_datasets_diff_matches_set_difference(gsm8k_store):
    s = gsm8k_store
    d = diff_datasets(s, "redi", "redi-175b", limit=5)
    a, b = find_dataset(s, "redi")["dataset_id"], find_dataset(s, "redi-175b")["dataset_id"]
    traces = "SELECT trace_id FROM dataset_rows WHERE dataset_id = ? UNION SELECT pair_trace_id FROM dataset_rows WHERE dataset_id = ?"
    removed = s.scalar(f"SELECT count(*) FROM ({traces} EXCEPT ({traces}))", [a, a, b, b])
    added = s.scalar(f"SELECT count(*) FROM ({traces} EXCEPT ({traces}))", [b, b, a, a])
    assert d.counts["traces_removed"] == removed > 0
    assert d.counts["traces_added"] == added
    assert len(d.removed) == 5


def test_cli_end_to_end(shared_data, tmp_path):
    path = tmp_path / "cli.duckdb"
    src = str(shared_data / "gsm8k" / "example_model_solutions.jsonl")
    code, out, err = run_cli("import", src, "--preset", "gsm8k-solutions", "-q", store=path)
    assert code == 0, err
    code, out, err = run_cli(
        "select",
        "pairs",
        "cli-dpo",
        "--kind",
        "dpo",
        "--pairing",
        "all",
        "--max-pairs-per-prompt",
        "2",
        "-q",
        store=path,
    )
    assert code == 0, err
    assert "cli-dpo" in out
    code, out, err = run_cli("select", "sft", "cli-sft", "--per-prompt", "0", "-q", store=path)
    assert code == 0, err
    code, out, err = run_cli("datasets", "--json", store=path)
    assert code == 0, err
    rows = {r["name"]: r for r in json.loads(out)}
    with Store(path, read_only=True) as s:
        pairs_expected = s.scalar(
            """SELECT sum(least(2, p * n)) FROM (SELECT prompt_id, count(*) FILTER (WHERE correct) AS p,
                      count(*) FILTER (WHERE NOT correct) AS n FROM traces JOIN verdicts USING (trace_id)
                      GROUP BY 1)"""
        )
        positives = s.scalar("SELECT count(*) FROM verdicts WHERE correct")
    assert rows["cli-dpo"]["kind"] == "dpo" and rows["cli-dpo"]["rows"] == pairs_expected
    assert rows["cli-sft"]["rows"] == positives
    code, out, err = run_cli("datasets", "diff", "cli-sft", "cli-dpo", "--limit", "2", store=path)
    assert code == 0, err
    assert "traces +" in out
    code, out, err = run_cli("select", "sft", "bad", "--where", "no_such_column = 1", store=path)
    assert code == 1 and "invalid --where" in err
