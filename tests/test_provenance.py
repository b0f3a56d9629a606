"""Provenance end to end: teacher = the embedded model, student = the same model plus a LoRA
adapter trained here on a few distinctive traces, run on real GSM8K solutions."""

from __future__ import annotations

import json
import math
from collections import defaultdict

import pytest

from tests.conftest import run_cli
from tracekit.score.provenance import (
    CATEGORIES,
    ProvenanceConfig,
    categorize,
    run_provenance,
    teacher_guided_selection,
)

MARK = "Zorblax the quantum penguin says: count every egg twice before you add."
DISTINCTIVE = [
    ("What is 3 + 4?", f"{MARK} 3 + 4 = 7."),
    ("What is 10 - 6?", f"{MARK} 10 - 6 = 4."),
]
SOLUTIONS = ("6b_finetuning", "175b_verification", "175b_finetuning")


def test_categorize_rules():
    assert categorize(0.6, 0.3, None, 0.1) == "teacher"
    assert categorize(0.3, 0.6, None, 0.1) == "student"
    assert categorize(0.5, 0.45, None, 0.1) == "shared"
    assert categorize(0.5, 0.45, 0.9, 0.1) == "boosted"
    assert categorize(0.5, 0.45, 0.1, 0.1) == "boosted"  # clearly different, in either direction
    assert categorize(0.5, 0.58, 0.65, 0.1) == "shared"  # D beyond beta from only one of them
    assert categorize(0.9, 0.1, 0.1, 0.1) == "teacher"  # the T/S gap decides first


@pytest.fixture(scope="module")
def adapter_dir(default_model_dir, tmp_path_factory):
    """The embedded model + LoRA on the attention of its last layers (so backward stays short),
    trained with a plain torch loop until it knows MARK (loss ~4.9 -> <0.1 in 8 steps)."""
    import torch
    from peft import LoraConfig, get_peft_model

    from tracekit.models import load_causal_lm
    from tracekit.score.logprob import render_prompt

    torch.manual_seed(0)
    model, tok = load_causal_lm("default", device="cpu", trainable=True)
    model = get_peft_model(
        model,
        LoraConfig(
            r=16,
            lora_alpha=32,
            lora_dropout=0.0,
            target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
            layers_to_transform=list(range(22, 30)),
            task_type="CAUSAL_LM",
        ),
    )
    batch_ids, batch_labels = [], []
    for prompt, text in DISTINCTIVE:
        ctx = tok(render_prompt(tok, prompt), add_special_tokens=False)["input_ids"]
        cont = tok(text, add_special_tokens=False)["input_ids"]
        batch_ids.append(ctx + cont)
        batch_labels.append([-100] * len(ctx) + cont)
    width = max(len(x) for x in batch_ids)
    pad = tok.pad_token_id
    ids = torch.tensor([x + [pad] * (width - len(x)) for x in batch_ids])
    labels = torch.tensor([y + [-100] * (width - len(y)) for y in batch_labels])
    mask = torch.tensor([[1] * len(x) + [0] * (width - len(x)) for x in batch_ids])
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=5e-3)
    model.train()
    for _ in range(8):
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
    out = tmp_path_factory.mktemp("lora") / "adapter"
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def _insert_gsm8k(store, shared_data, n_problems: int = 2) -> dict[str, str]:
    """A few real GSM8K problems with three model solutions each (labels from the dataset), plus
    one trace that contains the sentence the adapter learned. Returns {role: trace_id}."""
    from tracekit.store.ids import imported_trace_id, prompt_id

    prompts, traces, verdicts, roles = [], [], [], {}
    with open(shared_data / "gsm8k" / "example_model_solutions.jsonl", encoding="utf-8") as f:
        records = [json.loads(next(f)) for _ in range(n_problems)]
    for rec in records:
        pid = prompt_id(rec["question"])
        answer = rec["ground_truth"].rsplit("A:", 1)[-1].strip()
        prompts.append(
            {
                "prompt_id": pid,
                "source": "gsm8k",
                "problem": rec["question"],
                "reference_answer": answer,
            }
        )
        for k, key in enumerate(SOLUTIONS):
            tid = imported_trace_id(pid, key, "gsm8k-solutions", rec["question"][:20], k)
            traces.append(
                {
                    "trace_id": tid,
                    "prompt_id": pid,
                    "teacher": key,
                    "text": rec[key]["solution"],
                    "origin": "imported",
                }
            )
            verdicts.append(
                {
                    "trace_id": tid,
                    "verifier": "source",
                    "correct": rec[key]["is_correct"],
                    "status": "ok",
                }
            )
    # the learned sentence, in the context of a real problem and solution it was never trained on
    rec = records[0]
    tid = imported_trace_id(prompt_id(rec["question"]), "marked", "test", "mark", 0)
    traces.append(
        {
            "trace_id": tid,
            "prompt_id": prompt_id(rec["question"]),
            "teacher": "marked",
            "text": f"{MARK}\n{rec['175b_verification']['solution']}",
            "origin": "student",
        }
    )
    roles["marked"] = tid
    store.insert_rows("prompts", prompts)
    store.insert_rows("traces", traces)
    store.insert_rows("verdicts", verdicts)
    return roles


@pytest.mark.model
@pytest.mark.realdata
def test_provenance_end_to_end(store, shared_data, adapter_dir, tmp_path):
    roles = _insert_gsm8k(store, shared_data)
    n_traces = store.count("traces")
    cfg = ProvenanceConfig(teacher="default", student=f"hf:{adapter_dir}", batch_size=4)
    result = run_provenance(store, cfg)
    assert result.status == "ok" and result["traces"] == n_traces

    # every sentence of every trace is stored, with offsets into the trace and a category
    rows = store.dicts(
        "SELECT s.*, t.text AS trace_text FROM sentences s JOIN traces t USING (trace_id)"
    )
    assert len({r["trace_id"] for r in rows}) == n_traces
    for r in rows:
        assert r["trace_text"][r["start"] : r["end"]] == r["text"]
        assert r["category"] in ("teacher", "student", "shared")  # no distilled model: no boosted
        assert r["logp_teacher"] <= 0 and r["logp_student"] <= 0 and r["logp_distilled"] is None
    by_trace = defaultdict(list)
    for r in sorted(rows, key=lambda r: (r["trace_id"], r["idx"])):
        by_trace[r["trace_id"]].append(r)
    for sents in by_trace.values():
        assert "".join(s["text"] for s in sents) == sents[0]["trace_text"]

    # the sentence the adapter was trained on is much more likely under the adapted student
    mark = by_trace[roles["marked"]][0]
    assert mark["text"].strip() == MARK
    assert mark["logp_student"] > mark["logp_teacher"]
    assert math.exp(mark["logp_student"]) - math.exp(mark["logp_teacher"]) > 0.1
    assert mark["category"] == "student"

    # teacher_sentences / teacher_ratio agree with the sentences table
    scores = {
        (r[0], r[1]): r[2]
        for r in store.fetchall(
            "SELECT trace_id, name, value FROM scores WHERE name LIKE 'teacher_%'"
        )
    }
    for tid, sents in by_trace.items():
        n_teacher = sum(s["category"] == "teacher" for s in sents)
        assert scores[(tid, "teacher_sentences")] == n_teacher
        assert scores[(tid, "teacher_ratio")] == pytest.approx(n_teacher / len(sents))

    # teacher-guided selection: per prompt the max count; ties by ratio, then trace_id
    picked = teacher_guided_selection(store)
    prompts = dict(store.fetchall("SELECT trace_id, prompt_id FROM traces"))
    expected = {}
    for tid in sorted(by_trace):
        key = (-scores[(tid, "teacher_sentences")], -scores[(tid, "teacher_ratio")], tid)
        pid = prompts[tid]
        if pid not in expected or key < expected[pid][0]:
            expected[pid] = (key, tid)
    assert {p["prompt_id"]: p["trace_id"] for p in picked} == {p: v[1] for p, v in expected.items()}
    assert len(picked) == store.count("prompts")
    only_correct = teacher_guided_selection(store, where="correct")
    correct = {r[0] for r in store.fetchall("SELECT trace_id FROM v_final_verdicts WHERE correct")}
    assert only_correct and {p["trace_id"] for p in only_correct} <= correct

    # resumable: the same models again skip everything
    assert run_provenance(store, cfg)["traces"] == 0

    # the summary the report renders: shares sum to 1, overall and per slice
    from tracekit.report.provenance import provenance_summary, write_provenance_plot

    summary = provenance_summary(store)
    run = summary["runs"][0]
    assert run["run_id"] == result.run_id and run["sentences"] == len(rows) and run["unscored"] == 0
    assert sum(run["shares"].values()) == pytest.approx(1.0)
    counts = {c: sum(r["category"] == c for r in rows) for c in CATEGORIES}
    assert run["counts"] == counts
    for third in run["by_position"].values():
        assert sum(third.values()) == pytest.approx(1.0)
    assert run["by_correctness"]["unverified"]["traces"] == 1  # the marked trace has no verdict
    assert (
        run["by_correctness"]["correct"]["traces"] + run["by_correctness"]["incorrect"]["traces"]
        == n_traces - 1
    )
    png = write_provenance_plot(summary, tmp_path / "prov.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.model
def test_cli_provenance_with_distilled_model_boosts_the_learned_sentence(tmp_path, adapter_dir):
    """Teacher and student are the same base model, the distilled one is the adapter: the
    learned sentence is the one distillation boosted."""
    from tracekit.store import Store
    from tracekit.store.ids import imported_trace_id, prompt_id

    path = tmp_path / "s.duckdb"
    with Store(path) as s:
        pid = prompt_id("What is 2 + 2?")
        s.insert_rows("prompts", [{"prompt_id": pid, "source": "t", "problem": "What is 2 + 2?"}])
        s.insert_rows(
            "traces",
            [
                {
                    "trace_id": imported_trace_id(pid, "x", "t", "0", 0),
                    "prompt_id": pid,
                    "teacher": "x",
                    "text": f"{MARK} 2 + 2 = 4.\nA: 4",
                }
            ],
        )
    args = [
        "provenance",
        "--teacher",
        "default",
        "--student",
        "default",
        "--distilled",
        f"hf:{adapter_dir}",
        "-q",
    ]
    code, out, err = run_cli(*args, store=path)
    assert code == 0, err
    assert "provenance ok" in out and "traces=1" in out
    with Store(path, read_only=True) as s:
        cats = s.fetchall(
            "SELECT idx, category, logp_teacher, logp_student, logp_distilled FROM sentences ORDER BY idx"
        )
    assert cats[0][1] == "boosted"
    assert cats[0][2] == pytest.approx(cats[0][3], abs=1e-9)  # the same model twice
    assert cats[0][4] > cats[0][2]
    code, out, err = run_cli("report", "provenance", "--plot", str(tmp_path / "p.png"), store=path)
    assert code == 0, err
    assert "boosted" in out and "early" in out and (tmp_path / "p.png").exists()
