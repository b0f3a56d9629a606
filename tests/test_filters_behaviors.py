"""Behaviour markers: exact counts on a hand-written text, and the direction on real long traces."""

from __future__ import annotations

import json

import pytest

from tests.filters_support import add_prompts, add_traces, read_jsonl
from tracekit.errors import InputError
from tracekit.score.behaviors import (
    BehaviorsConfig,
    behavior_scores,
    count_attempts,
    count_markers,
    run_behaviors,
)
from tracekit.text.reasoning import split_reasoning

TEXT = (
    "Hmm, let me think. So the area is 12 because 3 times 4 is 12. Wait, let me check: 3*4 = 12. "
    "Therefore the answer is 12.\n\nAlternatively, I think we could verify it with a drawing. "
    "Waiting is not a marker, nor is the word 'sober'."
)


def test_counts_on_hand_written_text():
    c = count_markers(TEXT)
    # reflection: Hmm, Wait, Alternatively ("Waiting" is another word)
    assert c["reflection"] == 3
    # verification: "let me check" once (not also "check"), "verify" once
    assert c["verification"] == 2
    # connectors: So, because, Therefore ("sober" is not "so")
    assert c["connectors"] == 3
    # anthropomorphic: "let me" twice, "I think" once
    assert c["anthropomorphic"] == 3
    # one opening attempt plus the paragraph that starts with "Alternatively"
    assert count_attempts(TEXT) == 2
    words = len(TEXT.split())
    s = behavior_scores(TEXT)
    assert s["behavior:reflection"][0] == pytest.approx(3000 / words)
    assert s["behavior:reflection"][1] == {"count": 3, "words": words}
    assert behavior_scores("")["behavior:attempts"][0] == 0


def test_curly_apostrophes_and_custom_markers():
    assert count_markers("I\u2019m not sure. I'm not sure.")["anthropomorphic"] == 2
    assert count_markers("Eureka! eureka", {"joy": ["eureka"]}) == {"joy": 2}


def _file_rates(path) -> tuple[dict[str, float], float]:
    counts: dict[str, int] = {}
    words = 0
    attempts = []
    for r in read_jsonl(path):
        text = split_reasoning(r["code"][0]).reasoning or r["code"][0]
        for name, (value, detail) in behavior_scores(text).items():
            if name == "behavior:attempts":
                attempts.append(value)
            else:
                counts[name] = counts.get(name, 0) + detail["count"]
        words += len(text.split())
    attempts.sort()
    return {k: 1000 * v / words for k, v in counts.items()}, attempts[len(attempts) // 2]


@pytest.mark.realdata
def test_real_long_traces_direction(shared_data):
    """AIME 2024 is far harder than MATH-500: the Sky-T1 traces on it reflect more per 1,000
    words and make more attempts. Measured (reflection / anthropomorphic per 1k words, median
    attempts): ckpt-119 11.4 / 21.2 / 17, ckpt-133 12.0 / 27.9 / 20, ckpt-140 15.4 / 27.8 / 20,
    math500 27B 9.7 / 16.5 / 3. Reflection also rises with the checkpoint number; the
    anthropomorphic rate does not rise from 133 to 140, so only reflection's order is asserted."""
    d = shared_data / "longcot"
    math_rates, math_attempts = _file_rates(d / "math500__Sky-T1-math-correct-5K-27B.jsonl")
    aime = {
        ck: _file_rates(d / f"aime24__Sky-T1-math-correct-5K-32B-ckpts_checkpoint-{ck}.jsonl")
        for ck in (119, 133, 140)
    }
    for ck, (rates, attempts) in aime.items():
        print(
            f"ckpt-{ck}: {json.dumps({k: round(v, 2) for k, v in rates.items()})} attempts median {attempts}"
        )
        assert rates["behavior:reflection"] > math_rates["behavior:reflection"]
        assert rates["behavior:anthropomorphic"] > math_rates["behavior:anthropomorphic"]
        assert attempts > math_attempts
    print(
        f"math500: {json.dumps({k: round(v, 2) for k, v in math_rates.items()})} attempts median {math_attempts}"
    )
    refl = [aime[ck][0]["behavior:reflection"] for ck in (119, 133, 140)]
    assert refl == sorted(refl)


@pytest.mark.realdata
def test_stage_writes_scores_and_resumes(store, shared_data, tmp_path):
    rows = read_jsonl(
        shared_data / "longcot" / "aime24__Sky-T1-math-correct-5K-32B-ckpts_checkpoint-140.jsonl"
    )[:8]
    pids = add_prompts(store, [r["question"] for r in rows])
    tids = add_traces(store, [(p, "sky", r["code"][0]) for p, r in zip(pids, rows, strict=True)])
    first = run_behaviors(store, BehaviorsConfig(batch_size=3))
    assert first["traces"] == 8
    names = {r[0] for r in store.fetchall("SELECT DISTINCT name FROM scores")}
    assert names == {
        "behavior:reflection",
        "behavior:verification",
        "behavior:connectors",
        "behavior:anthropomorphic",
        "behavior:attempts",
    }
    # the stored value is the reasoning's rate, as computed directly
    text = split_reasoning(rows[0]["code"][0]).reasoning
    want = behavior_scores(text)["behavior:reflection"][0]
    got = store.scalar(
        "SELECT value FROM scores WHERE trace_id = ? AND name = 'behavior:reflection'", [tids[0]]
    )
    assert got == pytest.approx(want)
    assert run_behaviors(store, BehaviorsConfig())["traces"] == 0  # all done: nothing re-scored
    markers = tmp_path / "m.json"
    markers.write_text(json.dumps({"doubt": ["wait", "hmm"]}))
    again = run_behaviors(store, BehaviorsConfig(markers_file=str(markers)))
    assert again["traces"] == 8  # other markers: a new score set
    assert store.count("scores", "name = 'behavior:doubt'") == 8
    markers.write_text(json.dumps({"Bad Name": ["x"]}))
    with pytest.raises(InputError, match="m.json"):
        run_behaviors(store, BehaviorsConfig(markers_file=str(markers)))
