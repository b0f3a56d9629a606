"""Importing real trace datasets: column maps, presets, idempotency, bad input, kill and resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import run_cli
from tracekit.collect.importers import ImportConfig, run_import
from tracekit.errors import InputError
from tracekit.store import Store
from tracekit.text.reasoning import split_reasoning

LONGCOT_MAP = {"problem": "question", "reference": "gt", "completion": "code", "label": "score"}
DATA_TABLES = ("prompts", "traces", "verdicts")


def _counts(store: Store) -> dict[str, int]:
    return {t: store.count(t) for t in DATA_TABLES}


@pytest.mark.realdata
def test_longcot_math500_import_and_reimport(tmp_path, shared_data):
    path = shared_data / "longcot" / "math500__Sky-T1-math-correct-5K-27B.jsonl"
    expected_correct = sum(sum(bool(x) for x in json.loads(line)["score"]) for line in path.open())
    db = tmp_path / "t.duckdb"
    args = [
        "import",
        str(path),
        *sum((["--map", f"{k}={v}"] for k, v in LONGCOT_MAP.items()), []),
        "--teacher",
        "Sky-T1-27B",
    ]
    code, out, err = run_cli(*args, store=db)
    assert code == 0, err
    code, out, _ = run_cli(
        "sql",
        "SELECT (SELECT count(*) FROM traces) AS traces, (SELECT count(*) FROM prompts) AS prompts,"
        " (SELECT count(*) FROM verdicts WHERE verifier = 'source') AS verdicts,"
        " (SELECT count(*) FROM verdicts WHERE correct) AS correct",
        "--format",
        "csv",
        store=db,
    )
    assert code == 0
    assert out.splitlines()[1] == f"500,500,500,{expected_correct}"
    # re-importing the same file adds nothing
    code, out, err = run_cli(*args, store=db)
    assert code == 0 and "traces_added=0" in out and "prompts_added=0" in out
    code, out, _ = run_cli(
        "sql",
        "SELECT count(*) AS n, count(*) FILTER (WHERE correct) AS correct FROM verdicts",
        "--format",
        "json",
        store=db,
    )
    assert json.loads(out) == [{"n": 500, "correct": expected_correct}]


@pytest.mark.realdata
def test_thought_markers_split_reasoning_and_keep_the_raw_text(store, shared_data):
    path = shared_data / "longcot" / "math500__Sky-T1-math-correct-5K-27B.jsonl"
    run_import(store, ImportConfig(path=str(path), map=LONGCOT_MAP, teacher="sky"))
    rows = store.dicts("SELECT text, reasoning, answer_text FROM traces")
    raw = [json.loads(line)["code"][0] for line in path.open()]
    assert sorted(r["text"] for r in rows) == sorted(raw)  # raw text kept whole
    with_thought = [r for r in rows if "<|end_of_thought|>" in r["text"]]
    assert len(with_thought) > 100
    for r in with_thought:
        s = split_reasoning(r["text"])  # the SQL split inside the import equals the Python one
        assert (r["reasoning"], r["answer_text"]) == (s.reasoning, s.answer_text)
        assert "<|end_of_thought|>" not in r["answer_text"]


@pytest.mark.realdata
def test_gsm8k_model_solutions_with_dotted_paths(store, shared_data):
    path = shared_data / "gsm8k" / "example_model_solutions.jsonl"
    cols = ["6b_finetuning", "6b_verification", "175b_finetuning", "175b_verification"]
    cfg = ImportConfig(
        path=str(path),
        map={
            "problem": "question",
            "completion": ",".join(f"{c}.solution" for c in cols),
            "label": ",".join(f"{c}.is_correct" for c in cols),
        },
        teacher="gpt3",
    )
    result = run_import(store, cfg)
    assert result["records"] == 1319 and result["traces_added"] == 4 * 1319
    assert store.scalar("SELECT count(DISTINCT prompt_id) FROM traces") == 1319
    # labels are the file's is_correct values, column by column
    expected = 0
    for line in path.open():
        rec = json.loads(line)
        expected += sum(bool(rec[c]["is_correct"]) for c in cols)
    assert store.scalar("SELECT count(*) FROM verdicts WHERE correct") == expected


@pytest.mark.realdata
def test_gsm8k_solutions_preset_names_each_model(store, shared_data):
    path = shared_data / "gsm8k" / "example_model_solutions.jsonl"
    run_import(store, ImportConfig(path=str(path), preset="gsm8k-solutions"))
    teachers = dict(store.fetchall("SELECT teacher, count(*) FROM traces GROUP BY 1"))
    assert teachers == {
        f"gpt3-{c}": 1319
        for c in ["6b_finetuning", "6b_verification", "175b_finetuning", "175b_verification"]
    }
    both = store.scalar(
        """SELECT count(*) FROM (SELECT prompt_id FROM v_traces GROUP BY 1
           HAVING bool_or(correct) AND bool_or(NOT correct))"""
    )
    assert both == 731  # the README's count of problems with a positive and a negative
    assert store.scalar("SELECT count(*) FROM prompts WHERE reference_answer IS NULL") == 0


@pytest.mark.realdata
def test_prompts_only_files_and_presets(store, shared_data):
    r = run_import(
        store,
        ImportConfig(path=str(shared_data / "math500" / "test.jsonl"), preset="math", split="test"),
    )
    assert r["prompts_added"] == 500 and r.counts.get("traces_added", 0) == 0
    r = run_import(
        store,
        ImportConfig(path=str(shared_data / "gsm8k" / "test.jsonl"), preset="gsm8k", split="test"),
    )
    assert r["prompts_added"] == 1319
    ref = store.scalar("SELECT reference_answer FROM prompts WHERE problem LIKE 'Janet%ducks%'")
    assert ref == "18"
    # a JSON array with numeric answers (AMC: 27.0)
    r = run_import(
        store,
        ImportConfig(
            path=str(shared_data / "competition" / "deepscaler" / "test_amc.json"), source="amc"
        ),
    )
    assert r["prompts_added"] > 0
    assert store.count("traces") == 0


@pytest.mark.realdata
def test_garbled_file_is_refused_with_file_and_line(tmp_path, shared_data):
    src = shared_data / "longcot" / "math500__Sky-T1-math-correct-5K-27B.jsonl"
    lines = src.read_bytes().splitlines(keepends=True)[:40]
    bad = tmp_path / "garbled.jsonl"
    # line 31 truncated mid-record (as a partial download would leave it)
    bad.write_bytes(
        b"".join(lines[:30]) + lines[30][: len(lines[30]) // 2] + b"\n" + b"".join(lines[31:])
    )
    db = tmp_path / "t.duckdb"
    store = Store(db)
    run_import(store, ImportConfig(path=str(shared_data / "math500" / "test.jsonl"), preset="math"))
    before = _counts(store)
    store.close()
    args = ["import", str(bad), *sum((["--map", f"{k}={v}"] for k, v in LONGCOT_MAP.items()), [])]
    code, out, err = run_cli(*args, store=db)
    assert code == 1
    assert f"{bad}:31" in err and "invalid JSON" in err
    assert "Traceback" not in err
    store = Store(db)
    assert _counts(store) == before  # the first 30 good records were not left behind
    store.close()
    code, out, err = run_cli(*args, "--skip-bad", store=db)
    assert code == 0 and "skipped 1 malformed record" in out
    store = Store(db)
    assert store.count("traces") == 39
    counts = json.loads(
        store.scalar("SELECT counts FROM runs WHERE status = 'ok' ORDER BY started_at DESC LIMIT 1")
    )
    assert counts["counts"]["skipped_bad"] == 1
    store.close()


def test_bad_records_name_the_field(tmp_path, store):
    f = tmp_path / "x.jsonl"
    f.write_text(
        json.dumps({"q": "ok problem", "out": ["a", "b"], "ok": [True, False]})
        + "\n"
        + json.dumps({"q": "second", "out": ["a", "b"], "ok": [True]})
        + "\n"
    )
    cfg = ImportConfig(path=str(f), map={"problem": "q", "completion": "out", "label": "ok"})
    with pytest.raises(InputError) as e:
        run_import(store, cfg)
    assert (
        e.value.line == 2
        and e.value.field == "label"
        and "has 1 values but completion has 2" in str(e.value)
    )
    assert _counts(store) == {"prompts": 0, "traces": 0, "verdicts": 0}
    f.write_bytes(b'{"q": "caf\xe9"}\n')
    with pytest.raises(InputError, match=r"x.jsonl:1: not valid UTF-8"):
        run_import(store, ImportConfig(path=str(f), map={"problem": "q"}))
    f.write_text(json.dumps({"q": 3}) + "\n")
    with pytest.raises(InputError, match="field 'problem': expected a string, got int"):
        run_import(store, ImportConfig(path=str(f), map={"problem": "q"}))


def test_unknown_map_field_is_a_usage_error(tmp_path):
    f = tmp_path / "x.jsonl"
    f.write_text('{"q": "a"}\n')
    code, out, err = run_cli("import", str(f), "--map", "question=q", store=tmp_path / "t.duckdb")
    assert code == 1 and "unknown map field" in err


def _openr1_fixture(path: Path) -> list[dict]:
    """Rows in the exact column layout of open-r1/OpenR1-Math-220k."""
    rows = [
        {
            "problem": "Find the sum of the first 10 positive integers.",
            "solution": "The sum is 10*11/2 = 55.",
            "answer": "55",
            "problem_type": "Algebra",
            "question_type": "math-word-problem",
            "source": "olympiads",
            "uuid": "a1b2c3d4-0000-5000-8000-000000000001",
            "is_reasoning_complete": [True, False],
            "generations": [
                "<think>\nPair terms: 1+10, 2+9... five pairs of 11.\n</think>\n\nThe sum is \\boxed{55}.",
                "<think>\nMaybe 10*10 = 100, wait, hmm",
            ],
            "correctness_math_verify": [True, False],
            "correctness_llama": None,
            "finish_reasons": ["stop", "length"],
            "correctness_count": 1,
            "messages": [{"role": "user", "content": "Find the sum..."}],
        },
        {
            "problem": "What is 7 * 8?",
            "solution": "56",
            "answer": "56",
            "problem_type": "Arithmetic",
            "question_type": "math-word-problem",
            "source": "synthetic",
            "uuid": "a1b2c3d4-0000-5000-8000-000000000002",
            "is_reasoning_complete": [True],
            "generations": ["<think>7*8 = 56</think>\n\\boxed{56}"],
            "correctness_math_verify": [True],
            "correctness_llama": None,
            "finish_reasons": ["stop"],
            "correctness_count": 1,
            "messages": [],
        },
    ]
    pq.write_table(pa.Table.from_pylist(rows), path)
    return rows


def test_openr1_preset_on_parquet(tmp_path, store):
    path = tmp_path / "openr1.parquet"
    _openr1_fixture(path)
    r = run_import(store, ImportConfig(path=str(path), preset="openr1"))
    assert (r["prompts_added"], r["traces_added"], r["verdicts_added"]) == (2, 3, 3)
    rows = store.dicts(
        "SELECT t.teacher, t.finish_reason, t.reasoning, t.answer_text, v.correct, p.source_ref, p.reference_answer"
        " FROM traces t JOIN verdicts v USING (trace_id) JOIN prompts p USING (prompt_id) ORDER BY p.source_ref, t.sample_index"
    )
    assert rows[0]["teacher"] == "deepseek-ai/DeepSeek-R1"
    assert rows[0]["finish_reason"] == "stop" and rows[1]["finish_reason"] == "length"
    assert rows[0]["answer_text"] == "The sum is \\boxed{55}." and rows[0]["reasoning"].startswith(
        "Pair terms"
    )
    assert rows[1]["answer_text"] == "" and rows[1]["correct"] is False  # unclosed think block
    assert (
        rows[0]["source_ref"] == "a1b2c3d4-0000-5000-8000-000000000001"
        and rows[0]["reference_answer"] == "55"
    )


def test_hf_save_to_disk_folder_and_sharegpt(tmp_path, store):
    import datasets

    ds = datasets.Dataset.from_list(
        [
            {
                "conversations": [
                    {"from": "human", "value": "What is 2+3?"},
                    {"from": "gpt", "value": "<think>2 plus 3 is 5</think>The answer is 5."},
                ]
            },
            {"conversations": [{"from": "human", "value": "Only a prompt here."}]},
        ]
    )
    folder = tmp_path / "sg"
    ds.save_to_disk(str(folder))
    r = run_import(store, ImportConfig(path=str(folder), preset="sharegpt", teacher="m"))
    assert (r["prompts_added"], r["traces_added"]) == (2, 1)
    assert store.fetchall("SELECT reasoning, answer_text FROM traces") == [
        ("2 plus 3 is 5", "The answer is 5.")
    ]


def _big_jsonl(tmp_path: Path, shared_data: Path, n: int) -> Path:
    src = [
        json.loads(line)
        for line in (shared_data / "longcot" / "math500__Sky-T1-math-correct-5K-27B.jsonl").open()
    ]
    out = tmp_path / "big.jsonl"
    with out.open("w") as f:
        for i in range(n):
            r = dict(src[i % len(src)])
            r["question"] = f"[{i}] " + r["question"]
            f.write(json.dumps({k: r[k] for k in ("question", "gt", "code", "score")}) + "\n")
    return out


@pytest.mark.realdata
@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_kill_9_midway_then_rerun_equals_clean_import(tmp_path, shared_data, fmt):
    big = _big_jsonl(tmp_path, shared_data, 1500)
    if fmt == "parquet":  # one string completion per row: the direct (DuckDB-reads-text) path
        rows = [json.loads(line) for line in big.open()]
        for r in rows:
            r["code"], r["score"] = r["code"][0], bool(r["score"][0])
        big = tmp_path / "big.parquet"
        pq.write_table(pa.Table.from_pylist(rows), big)
    maps = sum((["--map", f"{k}={v}"] for k, v in LONGCOT_MAP.items()), [])
    tk = str(Path(sys.executable).parent / "tracekit")
    killed_db = tmp_path / "killed.duckdb"
    proc = subprocess.Popen(
        [tk, "import", str(big), *maps, "--batch-size", "100", "--store", str(killed_db), "-q"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wal = Path(str(killed_db) + ".wal")
    deadline = time.time() + 120
    # wait for committed batches (the WAL grows with each commit), then kill without warning
    while (
        time.time() < deadline
        and proc.poll() is None
        and (not wal.exists() or wal.stat().st_size < 1_000_000)
    ):
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    s = Store(killed_db)
    partial = s.count("traces")
    status = s.scalar("SELECT status FROM runs WHERE stage = 'import'")
    s.close()
    assert status == "running"  # a killed run stays open in the log: visible as died
    assert 0 < partial < 1500, "the kill did not land midway"
    subprocess.run([tk, "import", str(big), *maps, "--store", str(killed_db), "-q"], check=True)
    clean_db = tmp_path / "clean.duckdb"
    subprocess.run([tk, "import", str(big), *maps, "--store", str(clean_db), "-q"], check=True)
    a, b = Store(killed_db), Store(clean_db)
    assert _counts(a) == _counts(b) == {"prompts": 1500, "traces": 1500, "verdicts": 1500}
    assert a.scalar("SELECT count(*) - count(DISTINCT trace_id) FROM traces") == 0
    assert sorted(r[0] for r in a.fetchall("SELECT trace_id FROM traces")) == sorted(
        r[0] for r in b.fetchall("SELECT trace_id FROM traces")
    )
    a.close()
    b.close()


def _longcot_records(shared_data: Path) -> list[dict]:
    path = shared_data / "longcot" / "math500__Sky-T1-math-correct-5K-27B.jsonl"
    return [json.loads(line) for line in path.open()]


def _rows(store: Store) -> dict[str, list[tuple]]:
    return {
        "prompts": store.fetchall(
            "SELECT prompt_id, source, source_ref, problem, reference_answer, domain, split, meta"
            " FROM prompts ORDER BY prompt_id"
        ),
        "traces": store.fetchall(
            "SELECT trace_id, prompt_id, teacher, sample_index, text, reasoning, answer_text,"
            " finish_reason, origin FROM traces ORDER BY trace_id"
        ),
        "verdicts": store.fetchall(
            "SELECT trace_id, verifier, verifier_version, correct, status, detail FROM verdicts"
            " ORDER BY trace_id"
        ),
    }


@pytest.mark.realdata
def test_parquet_goes_through_arrow_and_stores_what_the_jsonl_path_stores(tmp_path, shared_data):
    """The same 500 real records as JSONL (record path) and as Parquet (columnar path, several
    batches) give identical prompts, traces and verdicts, ids included."""
    records = _longcot_records(shared_data)
    jsonl = tmp_path / "math500.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in records))
    parquet = tmp_path / "math500.parquet"
    pq.write_table(pa.Table.from_pylist(records), parquet)
    common = dict(
        map=LONGCOT_MAP | {"id": "idx"}, teacher="Sky-T1-27B", source="m500", batch_size=128
    )
    with Store(tmp_path / "a.duckdb") as a, Store(tmp_path / "b.duckdb") as b:
        ra = run_import(a, ImportConfig(path=str(jsonl), **common))
        rb = run_import(b, ImportConfig(path=str(parquet), **common))
        assert "columnar_batches" not in ra.counts
        assert rb.counts["columnar_batches"] == 4 and rb.counts["records"] == 500
        rows_a, rows_b = _rows(a), _rows(b)
        assert {k: len(v) for k, v in rows_b.items()} == {
            "prompts": 500,
            "traces": 500,
            "verdicts": 500,
        }
        assert rows_a == rows_b
        assert any(m and "gt_cot" not in m for (*_, m) in rows_b["prompts"])  # short scalars kept


@pytest.mark.realdata
def test_a_bad_parquet_row_is_named_and_the_import_undone(tmp_path, shared_data, store):
    records = _longcot_records(shared_data)[:300]
    records[200]["code"] = [None]  # row 201: a completion that is not a string
    parquet = tmp_path / "bad.parquet"
    pq.write_table(pa.Table.from_pylist(records), parquet)
    cfg = ImportConfig(path=str(parquet), map=LONGCOT_MAP, teacher="t", batch_size=64)
    with pytest.raises(InputError, match=r"bad\.parquet:201: field 'completion'"):
        run_import(store, cfg)
    assert _counts(store) == {"prompts": 0, "traces": 0, "verdicts": 0}
    r = run_import(store, cfg.model_copy(update={"skip_bad": True}))
    assert r.counts["skipped_bad"] == 1 and r.counts["columnar_batches"] == 4  # 1 of 5 declined
    assert _counts(store) == {"prompts": 299, "traces": 299, "verdicts": 299}


@pytest.mark.realdata
def test_one_trace_per_row_parquet_is_read_by_duckdb_and_matches_jsonl(tmp_path, shared_data):
    """String completions without nulls take the direct path (DuckDB reads the text from the
    file, Python only computes ids); duplicated records and a reasoning column included."""
    records = []
    for r in _longcot_records(shared_data)[:200]:
        records.append(
            {
                "idx": r["idx"],
                "question": r["question"],
                "gt": r["gt"],
                "code": r["code"][0],
                "score": bool(r["score"][0]),
                "why": f"note {r['idx']}",
            }
        )
    records += records[:10]  # the same records again: same ids, stored once
    records.insert(1, records[0])  # and a duplicate inside the first batch: that batch declines
    jsonl = tmp_path / "rows.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in records))
    parquet = tmp_path / "rows.parquet"
    pq.write_table(pa.Table.from_pylist(records), parquet, row_group_size=64)
    common = dict(
        map=LONGCOT_MAP | {"id": "idx", "reasoning": "why"}, teacher="t", source="s", batch_size=50
    )
    with Store(tmp_path / "a.duckdb") as a, Store(tmp_path / "b.duckdb") as b:
        run_import(a, ImportConfig(path=str(jsonl), **common))
        rb = run_import(b, ImportConfig(path=str(parquet), **common))
        assert rb.counts["direct_batches"] == 4 and rb.counts["records"] == 211
        assert rb.counts["traces_added"] == 200
        assert _rows(a) == _rows(b)
        assert b.scalar("SELECT count(*) FROM traces WHERE reasoning LIKE 'note %'") == 200
        # a re-import adds nothing
        again = run_import(b, ImportConfig(path=str(parquet), **common))
        assert again.counts.get("traces_added", 0) == 0 and b.count("traces") == 200
