"""The store: schema, migrations, idempotent inserts, runs log, views and the write lock."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from tracekit.errors import StoreLockedError, TracekitError
from tracekit.store import Store
from tracekit.store.ids import flag_id, generated_trace_id, imported_trace_id, prompt_id
from tracekit.store.schema import SCHEMA_VERSION


def test_new_store_has_schema_and_views(store):
    assert store.schema_version() == SCHEMA_VERSION
    tables = {r[0] for r in store.fetchall("SELECT table_name FROM information_schema.tables")}
    for t in [
        "runs",
        "prompts",
        "traces",
        "verdicts",
        "scores",
        "flags",
        "sentences",
        "datasets",
        "dataset_rows",
        "v_traces",
        "v_prompt_stats",
        "v_teachers",
    ]:
        assert t in tables


def test_reopening_does_not_reapply_migrations(tmp_path):
    path = tmp_path / "s.duckdb"
    Store(path).close()
    s = Store(path)
    assert s.count("schema_version") == SCHEMA_VERSION
    s.close()


def test_a_newer_store_is_refused(tmp_path):
    path = tmp_path / "s.duckdb"
    s = Store(path)
    s.execute("INSERT INTO schema_version (version, description) VALUES (999, 'future')")
    s.close()
    with pytest.raises(TracekitError, match="newer than this tracekit"):
        Store(path)


def test_ids_are_content_addressed():
    assert prompt_id("What is 1+1?") == prompt_id("  What is 1+1?\n")
    assert prompt_id("What is 1+1?") != prompt_id("What is 1+2?")
    a = generated_trace_id("p", "t", "r", {"temperature": 0.6, "top_p": 0.95}, 1, 0)
    b = generated_trace_id("p", "t", "r", {"top_p": 0.95, "temperature": 0.6}, 1, 0)
    assert a == b  # key order of the sampling config does not matter
    assert a != generated_trace_id("p", "t", "r", {"temperature": 0.7, "top_p": 0.95}, 1, 0)
    assert imported_trace_id("p", "t", "s", "1", 0) != imported_trace_id("p", "t", "s", "1", 1)
    assert flag_id("p", None, "dup:1") != flag_id("p", "t", "dup:1")


def test_insert_skips_existing_keys(store):
    rows = [{"prompt_id": "a", "problem": "x"}, {"prompt_id": "b", "problem": "y"}]
    assert store.insert_rows("prompts", rows) == 2
    assert store.insert_rows("prompts", rows + [{"prompt_id": "c", "problem": "z"}]) == 1
    assert store.count("prompts") == 3


def test_a_failed_batch_leaves_nothing(store):
    with pytest.raises(RuntimeError), store.transaction():
        store.insert_rows("prompts", [{"prompt_id": "a", "problem": "x"}])
        raise RuntimeError("crash mid-batch")
    assert store.count("prompts") == 0


def test_runs_record_status_config_and_counts(store):
    with store.run("demo", {"samples": 4}) as run:
        run.add("done", 3)
    assert run.result.status == "ok" and run.result["done"] == 3
    with pytest.raises(ValueError), store.run("demo", {"samples": 4}) as run2:
        raise ValueError("bad thing")
    rows = store.dicts(
        "SELECT run_id, status, config, counts, error, code_version FROM runs ORDER BY started_at"
    )
    assert [r["status"] for r in rows] == ["ok", "failed"]
    assert '"samples": 4' in rows[0]["config"] and '"done": 3' in rows[0]["counts"]
    assert "bad thing" in rows[1]["error"] and rows[1]["run_id"] == run2.run_id
    assert rows[0]["code_version"].startswith("0.")


def test_views_compute_pass_rates(store):
    store.insert_rows("prompts", [{"prompt_id": "p", "problem": "x"}])
    store.insert_rows(
        "traces",
        [
            {
                "trace_id": f"t{i}",
                "prompt_id": "p",
                "teacher": "T",
                "text": "abc",
                "origin": "imported",
            }
            for i in range(4)
        ],
    )
    store.insert_rows(
        "verdicts",
        [
            {"trace_id": "t0", "verifier": "math", "correct": True, "status": "ok"},
            {"trace_id": "t1", "verifier": "math", "correct": False, "status": "ok"},
            {"trace_id": "t2", "verifier": "math", "correct": True, "status": "ok"},
            # math outranks the dataset's own label when both exist
            {"trace_id": "t2", "verifier": "source", "correct": False, "status": "ok"},
        ],
    )
    (row,) = store.dicts("SELECT * FROM v_prompt_stats")
    assert (row["samples"], row["verified"], row["positives"], row["negatives"]) == (4, 3, 2, 1)
    assert row["pass_rate"] == pytest.approx(2 / 3)
    (t,) = store.dicts("SELECT accuracy, traces FROM v_teachers")
    assert t["traces"] == 4 and t["accuracy"] == pytest.approx(2 / 3)
    verifiers = dict(
        store.fetchall("SELECT trace_id, verifier FROM v_traces WHERE correct IS NOT NULL")
    )
    assert verifiers["t2"] == "math"


def test_second_writer_gets_a_clear_lock_error(tmp_path):
    path = tmp_path / "locked.duckdb"
    Store(path).close()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
            import sys, time
            from tracekit.store import Store
            s = Store({str(path)!r})
            print("ready", flush=True)
            sys.stdin.readline()
        """),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        with pytest.raises(StoreLockedError, match="locked by another tracekit process"):
            Store(path)
    finally:
        holder.stdin.write("\n")
        holder.stdin.flush()
        holder.wait(timeout=30)
    # once the writer is gone, readers and writers work again and nothing is corrupted
    s = Store(path, read_only=True)
    assert s.schema_version() == SCHEMA_VERSION
    s.close()


def test_reasoning_and_answer_are_read_out_of_text_not_stored_twice(store):
    store.insert_rows("prompts", [{"prompt_id": "p", "problem": "1+1?"}])
    store.insert_rows(
        "traces",
        [
            {"trace_id": "a", "prompt_id": "p", "text": "<think>\n one plus one \n</think>\n2"},
            {"trace_id": "b", "prompt_id": "p", "text": "It is 2.", "reasoning_field": "API says"},
            {"trace_id": "c", "prompt_id": "p", "text": " no markers "},
        ],
    )
    rows = store.fetchall("SELECT trace_id, reasoning, answer_text FROM traces ORDER BY trace_id")
    assert rows == [
        ("a", "one plus one", "2"),
        ("b", "API says", "It is 2."),
        ("c", None, "no markers"),
    ]
    with pytest.raises(Exception, match="reasoning"):  # derived, so not a column one can write
        store.insert_rows("traces", [{"trace_id": "d", "prompt_id": "p", "reasoning": "copy"}])


def test_a_version_1_store_is_migrated_keeping_every_trace(tmp_path):
    """v1 stored reasoning and answer_text as copies; v2 derives them, keeping only a reasoning
    that is not inside the text (an API's reasoning_content) in reasoning_field."""
    import duckdb

    from tracekit.store.schema import MIGRATIONS

    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    con.execute(
        "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, description VARCHAR,"
        " applied_at TIMESTAMP DEFAULT now())"
    )
    for stmt in MIGRATIONS[0][2]:
        con.execute(stmt)
    con.execute("INSERT INTO schema_version (version, description) VALUES (1, 'initial schema')")
    con.execute("INSERT INTO prompts (prompt_id, problem) VALUES ('p', '1+1?')")
    con.execute(
        """INSERT INTO traces (trace_id, prompt_id, text, reasoning, answer_text, origin) VALUES
           ('a', 'p', '<think>sum</think> 2', 'sum', '2', 'imported'),
           ('b', 'p', 'It is 2.', 'from the API', 'It is 2.', 'generated'),
           ('c', 'p', 'plain 2', NULL, 'plain 2', 'student')"""
    )
    con.close()
    with Store(path) as s:
        assert s.schema_version() == SCHEMA_VERSION == 2
        assert s.fetchall(
            "SELECT trace_id, reasoning_field, reasoning, answer_text, origin FROM traces ORDER BY 1"
        ) == [
            ("a", None, "sum", "2", "imported"),
            ("b", "from the API", "from the API", "It is 2.", "generated"),
            ("c", None, None, "plain 2", "student"),
        ]
        assert s.count("v_traces") == 3


@pytest.mark.parametrize(
    "text",
    [
        "",
        "  ",
        "<think>  a \n</think>\n x \t",
        "<think> unclosed  ",
        "no markers \n",
        "</think> a pre-filled open tag",
        "<|begin_of_thought|> r <|end_of_thought|> <|begin_of_solution|> s <|end_of_solution|> ",
        "<think>\n\n</think>",
        "é <think> ü \n</think> ö ",
        "</think> x <think> y </think>",
    ],
)
@pytest.mark.parametrize("field", [None, "", " from the API "])
def test_the_sql_split_equals_the_python_split(text, field):
    import duckdb

    from tracekit.text.reasoning import answer_sql, reasoning_sql, split_reasoning

    got = (
        duckdb.connect()
        .execute(f"SELECT {reasoning_sql('$1', '$2')}, {answer_sql('$1', '$2')}", [text, field])
        .fetchall()[0]
    )
    assert got == tuple(split_reasoning(text, field)[:2])
