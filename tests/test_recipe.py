"""Recipes: validation before anything runs, variables, dry-run estimates, resume after a kill."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tracekit.errors import ConfigError
from tracekit.recipe import load_recipe, parse_sets, plan, run_recipe
from tracekit.store import Store

RECIPES = Path(__file__).resolve().parent.parent / "pipelines"


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "r.yaml"
    p.write_text(text)
    return p


SMALL = """
name: small
store: ${out}/t.duckdb
vars: {out: OUT, teacher: default, samples: 2, n: 6}
steps:
  - name: problems
    stage: problems
    with: {n: "${n}", seed: 3, eval_fraction: 0.0}
  - name: collect
    stage: collect
    with: {teachers: ["${teacher}"], samples: "${samples}", max_tokens: 8, batch_size: 1, where: "split = 'train'"}
  - name: verify
    stage: verify
    with: {verifiers: [math], workers: 1}
"""


def test_every_shipped_recipe_validates():
    for path in sorted(RECIPES.glob("*.yaml")):
        r = load_recipe(str(path))
        assert r.steps, path


def test_variables_keep_their_types_and_set_overrides(tmp_path):
    r = load_recipe(str(_write(tmp_path, SMALL)), parse_sets(["samples=5", "out=/x/y"]))
    collect = next(s for s in r.steps if s.name == "collect").config
    assert collect.samples == 5 and isinstance(collect.samples, int)
    assert r.store == "/x/y/t.duckdb"


@pytest.mark.parametrize(
    "mutation, message",
    [
        (("stage: verify", "stage: verfy"), "step 'verify': unknown stage 'verfy'"),
        (("workers: 1", "workers: many"), "step 'verify' (verify): field 'workers'"),
        (('samples: "${samples}"', 'samples: "${nsamples}"'), "step 'collect'"),
        (("max_tokens: 8", "max_tokens: 8, tempreature: 0.5"), "field 'tempreature'"),
    ],
)
def test_invalid_recipes_fail_before_any_step_runs(tmp_path, mutation, message):
    text = SMALL.replace(*mutation).replace("OUT", str(tmp_path / "o"))
    with pytest.raises(ConfigError) as e:
        load_recipe(str(_write(tmp_path, text)))
    assert message in str(e.value)
    assert not (tmp_path / "o").exists()  # nothing ran, no store was created


def test_unknown_set_variable_is_refused(tmp_path):
    code, out, err = run_cli("run", str(_write(tmp_path, SMALL)), "--set", "smaples=3")
    assert code == 1 and "--set smaples: not a variable" in err


def test_from_and_until_must_name_steps(tmp_path):
    r = load_recipe(str(_write(tmp_path, SMALL)))
    assert [s.name for s in r.select("collect", "verify")] == ["collect", "verify"]
    with pytest.raises(ConfigError, match="no step 'nope'"):
        r.select("nope", None)


@pytest.mark.model
def test_dry_run_estimate_matches_the_work_done(tmp_path, tiny_model_dir):
    text = SMALL.replace("OUT", str(tmp_path / "o"))
    r = load_recipe(str(_write(tmp_path, text)), {"teacher": f"hf:{tiny_model_dir}"})
    rows = {row["step"]: row for row in plan(r)}
    assert not Path(r.store).exists()  # the plan ran on a scratch copy
    assert rows["collect"]["prompts"] == 6 and rows["collect"]["generations"] == 12
    outcomes = run_recipe(r)
    assert [o.status for o in outcomes] == ["ok", "ok", "ok"]
    with Store(r.store) as s:
        assert s.count("traces") == rows["collect"]["generations"]
    # a second run does no new work
    again = run_recipe(r)
    assert again[1].counts.get("traces", 0) == 0 and again[1].counts.get("skipped") == 12


@pytest.mark.model
def test_killed_recipe_resumes_to_the_same_counts(tmp_path, tiny_model_dir):
    tk = str(Path(sys.executable).parent / "tracekit")

    def recipe(out: Path) -> Path:
        p = tmp_path / f"{out.name}.yaml"
        p.write_text(
            SMALL.replace("OUT", str(out))
            .replace("n: 6}", "n: 6}")
            .replace("max_tokens: 8", "max_tokens: 24")
        )
        return p

    killed = recipe(tmp_path / "killed")
    args = ["--set", f"teacher=hf:{tiny_model_dir}", "--set", "n=40", "--quiet"]
    proc = subprocess.Popen(
        [tk, "run", str(killed), *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    wal = tmp_path / "killed" / "t.duckdb.wal"
    deadline = time.time() + 240
    # wait until collect has committed some batches (the WAL grows past the problems step)
    while time.time() < deadline and proc.poll() is None:
        if wal.exists() and wal.stat().st_size > 60_000:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with Store(tmp_path / "killed" / "t.duckdb") as s:
        partial = s.count("traces")
    subprocess.run([tk, "run", str(killed), *args], check=True, stdout=subprocess.DEVNULL)
    clean = recipe(tmp_path / "clean")
    subprocess.run([tk, "run", str(clean), *args], check=True, stdout=subprocess.DEVNULL)
    a, b = Store(tmp_path / "killed" / "t.duckdb"), Store(tmp_path / "clean" / "t.duckdb")
    for table in ("prompts", "traces", "verdicts"):
        assert a.count(table) == b.count(table), table
    assert a.count("traces") == 80 and partial < 80
    assert a.scalar("SELECT count(*) - count(DISTINCT trace_id) FROM traces") == 0
    a.close()
    b.close()
