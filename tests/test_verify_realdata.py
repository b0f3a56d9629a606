"""The math verifier against other graders' labels on real public data (../shared/data)."""

from __future__ import annotations

import json

import pytest

from tracekit.collect.importers import ImportConfig, run_import
from tracekit.verify import VerifyConfig, run_verify
from tracekit.verify.math import check, parse_gold
from tracekit.verify.stats import agreement, disagreements_sql

pytestmark = pytest.mark.realdata


def _print_disagreements(store, where: str) -> None:
    sql = disagreements_sql("math", "source").replace(
        "ORDER BY", f"AND va.trace_id IN (SELECT trace_id FROM v_traces WHERE {where})\nORDER BY", 1
    )
    for r in store.dicts(sql):
        print(
            f"  {r['teacher']}: ref={r['reference_answer']!r} math={r['math_correct']}"
            f" ({r['math_extracted']!r}) source={r['source_correct']}"
        )


def test_longcot_agreement_with_source_labels(store, shared_data) -> None:
    # MATH-500's own answers first: the longcot `gt` column was reformatted by its producer
    # (e.g. "\begin{pmatrix}-18-4996\end{pmatrix}"), the prompt keeps the first reference
    run_import(
        store,
        ImportConfig(
            path=str(shared_data / "math500/test.jsonl"),
            source="math500",
            map={"problem": "problem", "reference": "answer"},
        ),
    )
    files = sorted((shared_data / "longcot").glob("*.jsonl"))
    assert len(files) == 4
    for f in files:
        name, teacher = f.stem.split("__")
        run_import(
            store,
            ImportConfig(
                path=str(f),
                source=name,
                teacher=teacher,
                map={
                    "problem": "question",
                    "reference": "gt",
                    "completion": "code",
                    "label": "score",
                },
            ),
        )
    result = run_verify(store, VerifyConfig(verifiers=["math"], workers=2, timeout=10))
    assert result["math:timeout"] == 0
    for f in files:
        name, teacher = f.stem.split("__")
        where = f"teacher = '{teacher}'"
        ag = agreement(store, "math", "source", where=where)
        print(
            f"{f.name}: {ag['agree']}/{ag['n_both']} judged by both agree"
            f" ({ag['agreement']}); math found no answer in {ag['math_not_ok']};"
            f" over all decided {ag['agree_decided']}/{ag['n_decided']}"
        )
        _print_disagreements(store, where)
        if name == "aime24":
            assert ag["n_decided"] == 30
            assert ag["agree_decided"] >= 29
        else:
            assert ag["n_common"] == 500
            assert ag["agreement"] >= 0.95


def test_gsm8k_model_solutions_agreement(store, shared_data) -> None:
    run_import(
        store,
        ImportConfig(
            path=str(shared_data / "gsm8k/example_model_solutions.jsonl"), preset="gsm8k-solutions"
        ),
    )
    assert store.count("traces") == 5276
    run_verify(store, VerifyConfig(verifiers=["math"], workers=2, format_checks=False))
    ag = agreement(store, "math", "source")
    print(
        f"gsm8k: {ag['agree']}/{ag['n_both']} ({ag['agreement']}), decided {ag['agree_decided']}/{ag['n_decided']}"
    )
    _print_disagreements(store, "true")
    assert ag["n_decided"] == 5276
    assert ag["agree_decided"] / 5276 >= 0.995


def test_gsm8k_references_after_hashes(shared_data) -> None:
    rows = [
        json.loads(line) for line in (shared_data / "gsm8k/test.jsonl").read_text().splitlines()
    ][:200]
    for r in rows:
        final = r["answer"].rsplit("####", 1)[1].strip()
        assert check(r["answer"], f"A: {final}").correct is True, r["answer"][-80:]


def test_math500_references_parse_and_verify_themselves(shared_data) -> None:
    rows = [
        json.loads(line) for line in (shared_data / "math500/test.jsonl").read_text().splitlines()
    ]
    assert len(rows) == 500
    unparsed = [r["answer"] for r in rows if not parse_gold(r["answer"])[0]]
    assert unparsed == []
    wrong = [
        r["answer"]
        for r in rows
        if check(r["answer"], "\\boxed{" + r["answer"] + "}").correct is not True
    ]
    assert wrong == []
