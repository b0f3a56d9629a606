"""`run_verify` and `tracekit verify` over a real store file."""

from __future__ import annotations

import json

import pytest

from tests._verify_helpers import add_prompt, add_trace, verdict
from tests.conftest import run_cli
from tracekit.errors import ConfigError
from tracekit.verify import VerifyConfig, run_verify
from tracekit.verify.stats import agreement, disagreements_sql, verdict_summary

TOWER = "So the answer is \\boxed{9^{9^{9^{9^{9^{9}}}}}}"  # hangs sympy in C, deaf to SIGALRM


def test_hanging_input_times_out_while_100_others_get_verdicts(store) -> None:
    pid = add_prompt(store, "What is 1 + 2?", "3")
    good = [
        add_trace(store, pid, f"1 + 2 = 3\nA: {3 if i % 2 else 4}", sample_index=i)
        for i in range(100)
    ]
    bad = add_trace(store, pid, TOWER, sample_index=999)
    result = run_verify(store, VerifyConfig(verifiers=["math"], workers=2, timeout=2.0))
    v = verdict(store, bad, "math")
    assert v["status"] == "timeout" and v["correct"] is None
    assert v["detail"]["seconds"] <= 2.0 + 2.0
    assert result["math:timeout"] == 1  # by the soft alarm or by a kill: either way, no hang
    got = {tid: verdict(store, tid, "math")["correct"] for tid in good}
    assert all(got[tid] is (i % 2 == 1) for i, tid in enumerate(good))


def test_idempotent_and_one_row_per_trace_and_verifier(store) -> None:
    pid = add_prompt(store, "2+2?", "4")
    t1 = add_trace(store, pid, "<think>easy</think>\\boxed{4}")
    t2 = add_trace(store, pid, "<think>hmm</think>The answer is 5.", teacher="t2")
    first = run_verify(store, VerifyConfig(verifiers=["math", "exact"], workers=1))
    assert first["verdicts_added"] == 4
    again = run_verify(store, VerifyConfig(verifiers=["math", "exact"], workers=1))
    assert again["verdicts_added"] == 0 and store.count("verdicts") == 4
    assert verdict(store, t1, "math")["correct"] is True
    assert verdict(store, t2, "math")["correct"] is False
    assert verdict(store, t1, "exact")["correct"] is True
    assert verdict(store, t1, "math")["verifier_version"].startswith("math-verify-")
    # a third trace added later is the only new work
    add_trace(store, pid, "<think>x</think>\\boxed{4}", teacher="t3")
    assert run_verify(store, VerifyConfig(verifiers=["math"], workers=1))["verdicts_added"] == 1


def test_auto_picks_math_and_code_and_where_filters(store) -> None:
    m = add_prompt(store, "3*3?", "9")
    c = add_prompt(
        store,
        "Print the sum of two ints.",
        None,
        domain="code",
        meta={"tests": {"type": "stdio", "cases": [{"input": "1 2\n", "output": "3\n"}]}},
    )
    tm = add_trace(store, m, "\\boxed{9}")
    tc = add_trace(store, c, "```python\na, b = map(int, input().split())\nprint(a + b)\n```")
    other = add_trace(store, m, "\\boxed{9}", teacher="skip-me")
    run_verify(store, VerifyConfig(workers=1, where="teacher <> 'skip-me'"))
    assert verdict(store, tm, "math")["correct"] is True
    vc = verdict(store, tc, "code")
    assert vc["correct"] is True and vc["detail"]["passed"] == 1
    assert store.count("verdicts", f"trace_id = '{other}'") == 0
    assert store.count("verdicts", f"trace_id = '{tc}' AND verifier = 'math'") == 0
    with pytest.raises(ConfigError):
        run_verify(store, VerifyConfig(workers=1, where="no_such_column = 1"))


def test_choice_regex_exact(store) -> None:
    p = add_prompt(store, "Pick one: (A) 1 (B) 2 (C) 3", "(C)", domain="mcq")
    a = add_trace(store, p, "I think the answer is (C).")
    b = add_trace(store, p, "**B**", teacher="t2")
    run_verify(store, VerifyConfig(verifiers=["choice"], workers=1))
    assert verdict(store, a, "choice")["correct"] is True
    assert verdict(store, b, "choice")["extracted"] == "B"
    q = add_prompt(store, "Capital of France?", "Paris", domain="qa")
    r = add_trace(store, q, "thinking...\nANSWER: paris")
    run_verify(
        store,
        VerifyConfig(
            verifiers=["regex"], regex=r"ANSWER:\s*(\w+)", workers=1, where="domain = 'qa'"
        ),
    )
    assert verdict(store, r, "regex")["correct"] is True


def test_format_flags(store) -> None:
    p = add_prompt(store, "1+1?", "2")
    loop = add_trace(store, p, "<think>" + "I wonder. " * 300, finish_reason="length")
    mixed = add_trace(
        store,
        p,
        "<think>"
        + "Let me compute the sum of these numbers carefully. " * 6
        + "我们需要仔细计算这两个数的和才对。" * 6
        + "</think>\\boxed{2}",
        teacher="t2",
    )
    clean = add_trace(store, p, "<think>ok</think>\\boxed{2}", teacher="t3")
    run_verify(store, VerifyConfig(verifiers=["math"], workers=1))
    flags = {(r[0], r[1]) for r in store.fetchall("SELECT trace_id, flag FROM flags")}
    assert {
        (loop, "format:unclosed_think"),
        (loop, "format:truncated"),
        (loop, "format:repetition"),
        (loop, "format:no_answer"),
    } <= flags
    assert (mixed, "format:mixed_language") in flags
    assert not any(t == clean for t, _ in flags)
    assert all(f.startswith("format:") for _, f in flags)


def test_majority_pseudo_reference(store) -> None:
    p = add_prompt(store, "A question without a reference", None)
    ids = [
        add_trace(store, p, f"\\boxed{{{x}}}", sample_index=i)
        for i, x in enumerate(["7", "7.0", "7", "8"])
    ]
    run_verify(store, VerifyConfig(pseudo_reference="majority", workers=1))
    v = [verdict(store, t, "majority") for t in ids]
    assert [x["correct"] for x in v] == [True, True, True, False]
    assert v[0]["detail"]["pseudo_reference"] is True and v[0]["detail"]["vote_share"] == 0.75
    assert verdict(store, ids[0], "math")["status"] == "no_reference"
    # the pseudo label is what v_traces reports, since math could not decide
    assert store.scalar(f"SELECT verifier FROM v_traces WHERE trace_id = '{ids[0]}'") == "majority"


def test_stats_and_agreement(store) -> None:
    p = add_prompt(store, "5-1?", "4")
    t1 = add_trace(store, p, "\\boxed{4}")
    t2 = add_trace(store, p, "\\boxed{3}", teacher="t2")
    store.insert_rows(
        "verdicts",
        [
            {"trace_id": t1, "verifier": "source", "correct": True, "status": "ok"},
            {"trace_id": t2, "verifier": "source", "correct": True, "status": "ok"},
        ],
    )
    run_verify(store, VerifyConfig(verifiers=["math"], workers=1))
    ag = agreement(store, "math", "source")
    assert (ag["n_both"], ag["agree"], ag["disagreements"]) == (2, 1, 1)
    rows = store.fetchall(disagreements_sql("math", "source"))
    assert [r[0] for r in rows] == [t2]
    summary = {(r["teacher"], r["verifier"]): r for r in verdict_summary(store)}
    assert summary[("t1", "math")]["accuracy"] == 1.0 and summary[("t2", "math")]["accuracy"] == 0.0
    assert store.scalar("SELECT pass_rate FROM v_prompt_stats WHERE teacher = 't2'") == 0.0


def test_cli(tmp_path) -> None:
    from tracekit.store import Store

    path = tmp_path / "s.duckdb"
    with Store(path) as s:
        p = add_prompt(s, "9-1?", "8")
        add_trace(s, p, "\\boxed{8}")
    code, out, err = run_cli(
        "verify", "--verifier", "math", "--workers", "1", "--quiet", store=path
    )
    assert code == 0, err
    assert "math:correct=1" in out
    code, out, err = run_cli("verify", "agreement", "math", "math", store=path)
    assert code == 0, err and "agreement" in out
    code, out, err = run_cli("verify", "--verifier", "nope", store=path)
    assert code == 1 and "unknown verifier" in err
    with Store(path, read_only=True) as s:
        assert (
            json.loads(s.scalar("SELECT counts FROM runs WHERE stage = 'verify'"))["counts"][
                "math:ok"
            ]
            == 1
        )
