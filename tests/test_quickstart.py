"""The main job: the quickstart recipe end to end on the embedded model, with tiny sizes."""

from __future__ import annotations

import pytest

from tracekit.recipe import load_recipe, run_recipe
from tracekit.store import Store

# small enough for CI, large enough that the 135M model (seeded, so deterministic) produces a
# prompt with both a correct and an incorrect untruncated answer, which REDI pairs need
TINY = {
    "problems": 8,
    "kinds": ["add"],
    "samples": 4,
    "max_tokens": 96,
    "eval_samples": 1,
    "sft_steps": 1,
    "redi_steps": 1,
}


@pytest.mark.model
def test_quickstart_produces_every_artefact_and_a_rerun_does_no_work(tmp_path, default_model_dir):
    out = tmp_path / "demo"
    recipe = load_recipe("quickstart", {**TINY, "out": str(out)})
    outcomes = run_recipe(recipe)
    assert all(o.status == "ok" for o in outcomes), [(o.step, o.status, o.error) for o in outcomes]
    by_step = {o.step: o for o in outcomes}
    assert by_step["collect"].counts["traces"] == 6 * 4  # 8 problems, 2 held out, 4 samples each

    # every artefact the recipe promises
    assert (out / "report.html").exists() and "Evaluation" in (out / "report.html").read_text()
    assert (out / "datasets" / "quickstart-sft" / "hf").is_dir()
    assert (out / "datasets" / "quickstart-redi" / "data.parquet").exists()
    assert (out / "student" / "redi" / "adapter_config.json").exists()
    assert (out / "hub" / "quickstart-sft" / "README.md").exists()
    with Store(recipe.store) as s:
        assert s.count("traces", "origin = 'student'") == 2 * 2  # two evals, 2 problems x 1 sample
        assert s.count("verdicts") >= s.count("traces")
        assert s.count("sentences") > 0
        assert (
            s.scalar("SELECT count(DISTINCT category) FROM sentences WHERE category IS NOT NULL")
            >= 1
        )
        assert s.count("datasets") == 2
        counts = {
            t: s.count(t)
            for t in (
                "prompts",
                "traces",
                "verdicts",
                "scores",
                "flags",
                "sentences",
                "dataset_rows",
            )
        }

    again = run_recipe(load_recipe("quickstart", {**TINY, "out": str(out)}))
    status = {o.step: o.status for o in again}
    assert status["train"] == "skipped"
    assert {o.step: o.counts.get("traces", 0) for o in again}["collect"] == 0
    with Store(recipe.store) as s:
        assert {t: s.count(t) for t in counts} == counts  # a second run does no new work
