"""YAML recipes: a named list of steps, each a registered stage with its config.

A recipe is validated as a whole before any step runs (unknown stage, bad field or missing
variable fail with the step and field named). Variables (`${name}`) come from the recipe's `vars`
and `--set name=value`; a value that is exactly `${name}` keeps its type (`samples: ${samples}`
stays an int).

Resuming: every stage is idempotent, so re-running a step that finished does no new work (ids are
content-addressed). Steps that are not incremental (training, publishing) are skipped outright
when a finished step with the same config is recorded; each finished step leaves a `recipe-step`
row in `runs`.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tracekit.errors import ConfigError, TracekitError
from tracekit.stages import REGISTRY, stage
from tracekit.store import RunResult, Store

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
# stages whose re-run would redo expensive work instead of skipping existing rows
NON_INCREMENTAL_PREFIXES = ("train.", "publish", "report")


class StepSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str
    stage: str
    with_: dict[str, Any] = Field(default_factory=dict, alias="with")


class RecipeSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""
    store: str = "${store}"
    vars: dict[str, Any] = Field(default_factory=dict)
    steps: list[StepSpec] = Field(min_length=1)


@dataclass
class Step:
    name: str
    stage: str
    config: BaseModel

    @property
    def config_hash(self) -> str:
        return hashlib.sha256(self.config.model_dump_json().encode()).hexdigest()[:16]

    @property
    def incremental(self) -> bool:
        return not self.stage.startswith(NON_INCREMENTAL_PREFIXES)


@dataclass
class Recipe:
    name: str
    description: str
    store: str
    vars: dict[str, Any]
    steps: list[Step]
    path: str = ""

    def select(self, from_step: str | None, until_step: str | None) -> list[Step]:
        names = [s.name for s in self.steps]
        for n in (from_step, until_step):
            if n is not None and n not in names:
                raise ConfigError(
                    f"no step {n!r} in recipe {self.name} (steps: {', '.join(names)})"
                )
        i = names.index(from_step) if from_step else 0
        j = names.index(until_step) + 1 if until_step else len(names)
        return self.steps[i:j]


def parse_sets(items: list[str] | None) -> dict[str, Any]:
    """`--set name=value`; values are parsed as YAML scalars (16 -> int, true -> bool)."""
    out: dict[str, Any] = {}
    for item in items or []:
        if "=" not in item:
            raise ConfigError(f"--set expects name=value, got {item!r}")
        k, v = item.split("=", 1)
        try:
            out[k.strip()] = yaml.safe_load(v) if v.strip() else ""
        except yaml.YAMLError:
            out[k.strip()] = v
        if isinstance(out[k.strip()], (dict, list)) and not v.strip().startswith(("[", "{")):
            out[k.strip()] = v
    return out


def _substitute(value: Any, variables: dict[str, Any], where: str) -> Any:
    if isinstance(value, str):
        m = _VAR.fullmatch(value.strip())
        if m:
            if m.group(1) not in variables:
                raise ConfigError(
                    f"{where}: undefined variable ${{{m.group(1)}}} (define it in vars or --set)"
                )
            return _substitute(variables[m.group(1)], variables, where)

        def repl(mm: re.Match[str]) -> str:
            if mm.group(1) not in variables:
                raise ConfigError(
                    f"{where}: undefined variable ${{{mm.group(1)}}} (define it in vars or --set)"
                )
            return str(_substitute(variables[mm.group(1)], variables, where))

        return _VAR.sub(repl, value)
    if isinstance(value, list):
        return [_substitute(v, variables, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        return {k: _substitute(v, variables, f"{where}.{k}") for k, v in value.items()}
    return value


def find_recipe(path_or_name: str) -> Path:
    p = Path(path_or_name)
    if p.exists():
        return p
    from importlib.resources import files

    candidate = files("tracekit.recipes") / (
        path_or_name if path_or_name.endswith(".yaml") else path_or_name + ".yaml"
    )
    if candidate.is_file():
        return Path(str(candidate))
    raise ConfigError(
        f"no recipe {path_or_name!r} (a YAML file, or a shipped name such as quickstart)"
    )


def load_recipe(
    path_or_name: str, sets: dict[str, Any] | None = None, store: str | None = None
) -> Recipe:
    path = find_recipe(path_or_name)
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: invalid YAML: {e}") from None
    try:
        spec = RecipeSpec.model_validate(raw)
    except ValidationError as e:
        first = e.errors()[0]
        raise ConfigError(f"{path}: {'.'.join(map(str, first['loc']))}: {first['msg']}") from None
    variables = {"recipe_dir": str(path.parent), **spec.vars}
    unknown = sorted(set(sets or {}) - set(variables))
    if unknown:
        raise ConfigError(
            f"--set {unknown[0]}: not a variable of {spec.name} (has: {', '.join(sorted(spec.vars))})"
        )
    variables.update(sets or {})
    if store:
        variables["store"] = store
    names: set[str] = set()
    steps: list[Step] = []
    for s in spec.steps:
        where = f"step '{s.name}'"
        if s.name in names:
            raise ConfigError(f"{where}: duplicate step name")
        names.add(s.name)
        if s.stage not in REGISTRY:
            raise ConfigError(
                f"{where}: unknown stage {s.stage!r} (known: {', '.join(sorted(REGISTRY))})"
            )
        cfg_cls, _ = stage(s.stage)
        values = _substitute(s.with_, variables, where)
        try:
            cfg = cfg_cls.model_validate(values)
        except ValidationError as e:
            first = e.errors()[0]
            loc = ".".join(map(str, first["loc"])) or "(config)"
            raise ConfigError(f"{where} ({s.stage}): field '{loc}': {first['msg']}") from None
        steps.append(Step(s.name, s.stage, cfg))
    store_path = store or _substitute(spec.store, variables, "store")
    return Recipe(spec.name, spec.description, str(store_path), variables, steps, str(path))


# ---- running -----------------------------------------------------------------------------------
@dataclass
class StepOutcome:
    step: str
    stage: str
    status: str  # ok | skipped | failed
    seconds: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)
    run_id: str | None = None
    error: str | None = None


def _done(store: Store, recipe: Recipe, step: Step) -> bool:
    return bool(
        store.scalar(
            """SELECT count(*) FROM runs WHERE stage = 'recipe-step' AND status = 'ok'
               AND json_extract_string(config, '$.recipe') = ? AND json_extract_string(config, '$.step') = ?
               AND json_extract_string(config, '$.config_hash') = ?""",
            [recipe.name, step.name, step.config_hash],
        )
    )


def run_recipe(
    recipe: Recipe,
    from_step: str | None = None,
    until_step: str | None = None,
    on_step: Any = None,
) -> list[StepOutcome]:
    """Run the selected steps in order; stop at the first failure (raised as a TracekitError
    that names the step and the command to resume)."""
    outcomes: list[StepOutcome] = []
    for step in recipe.select(from_step, until_step):
        if on_step:
            on_step(step, "start")
        _, fn = stage(step.stage)
        t0 = time.perf_counter()
        try:
            with Store(recipe.store) as store:
                if not step.incremental and _done(store, recipe, step):
                    outcomes.append(StepOutcome(step.name, step.stage, "skipped"))
                    if on_step:
                        on_step(step, "skipped")
                    continue
                result: RunResult = fn(store, step.config)
                with store.run(
                    "recipe-step",
                    {
                        "recipe": recipe.name,
                        "step": step.name,
                        "stage": step.stage,
                        "config_hash": step.config_hash,
                        "run_id": result.run_id,
                    },
                ) as r:
                    r.counts.update(result.counts)
        except Exception as e:
            outcomes.append(
                StepOutcome(step.name, step.stage, "failed", time.perf_counter() - t0, error=str(e))
            )
            msg = (
                f"step '{step.name}' ({step.stage}) failed: {e}\n"
                f"resume with: tracekit run {recipe.path} --from {step.name}"
            )
            raise RecipeFailed(msg, outcomes) from e
        outcomes.append(
            StepOutcome(
                step.name,
                step.stage,
                "ok",
                time.perf_counter() - t0,
                dict(result.counts),
                result.run_id,
            )
        )
        if on_step:
            on_step(step, "done")
    return outcomes


class RecipeFailed(TracekitError):
    def __init__(self, message: str, outcomes: list[StepOutcome]) -> None:
        super().__init__(message)
        self.outcomes = outcomes


# ---- planning (--dry-run) ---------------------------------------------------------------------
PROMPT_STAGES = ("problems", "import")
GENERATION_STAGES = ("collect", "eval")


def plan(
    recipe: Recipe, from_step: str | None = None, until_step: str | None = None
) -> list[dict[str, Any]]:
    """What each step would do. Prompt-producing steps are run against a scratch copy of the
    store so that the generation estimates (prompts x samples x teachers) are exact counts."""
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp) / "plan.duckdb"
        if Path(recipe.store).exists():
            try:
                shutil.copy(recipe.store, scratch)
                if Path(recipe.store + ".wal").exists():
                    shutil.copy(recipe.store + ".wal", str(scratch) + ".wal")
            except OSError:
                pass
        with Store(scratch) as store:
            for step in recipe.select(from_step, until_step):
                row: dict[str, Any] = {"step": step.name, "stage": step.stage}
                if not step.incremental and _done(store, recipe, step):
                    row["plan"] = "skip (finished with this config)"
                elif step.stage in PROMPT_STAGES:
                    _, fn = stage(step.stage)
                    res = fn(store, step.config)
                    row["plan"] = f"{res.counts.get('prompts_added', 0)} new prompts"
                elif step.stage in GENERATION_STAGES:
                    row.update(_estimate_generation(store, step))
                    row["plan"] = (
                        f"{row['prompts']} prompts x {row['samples']} samples x {row['teachers']} model(s)"
                        f" = {row['generations']} generations"
                    )
                else:
                    row["plan"] = "run (only new work)" if step.incremental else "run"
                rows.append(row)
    return rows


def _estimate_generation(store: Store, step: Step) -> dict[str, Any]:
    cfg: Any = step.config
    if step.stage == "collect":
        where = f"WHERE {cfg.where}" if cfg.where else ""
        n = int(store.scalar(f"SELECT count(*) FROM prompts {where}"))
        if getattr(cfg, "limit", None):
            n = min(n, cfg.limit)
        if getattr(cfg, "shard", None):
            i, k = (int(x) for x in cfg.shard.split("/"))
            n = len(range(i, n, k))
        teachers = len(cfg.teachers)
        samples = cfg.samples
    else:  # eval: the benchmark files' records
        from tracekit.collect.importers.sources import iter_records
        from tracekit.evaluate.benchmarks import resolve_benchmark

        n = 0
        for b in cfg.benchmarks:
            bench = resolve_benchmark(b, cfg.data_dir)
            count = sum(1 for _ in iter_records(bench.path))
            n += min(count, cfg.limit) if cfg.limit else count
        teachers, samples = 1, cfg.samples
    gens = n * samples * teachers
    est: dict[str, Any] = {
        "prompts": n,
        "samples": samples,
        "teachers": teachers,
        "generations": gens,
        "max_new_tokens": gens * cfg.max_tokens,
    }
    if step.stage == "collect":
        cost = _cost_estimate(cfg, gens)
        if cost is not None:
            est["max_cost_usd"] = round(cost, 4)
    return est


def _cost_estimate(cfg: Any, generations: int) -> float | None:
    """An upper bound: every generation uses max_tokens, prompts are counted as ~300 tokens.
    None when any teacher's price is unknown (a hosted model missing from the price table)."""
    from tracekit.collect.pricing import price_for
    from tracekit.models import parse_spec

    total = 0.0
    for t in cfg.teachers:
        spec = parse_spec(t)
        p = price_for(spec.backend, spec.model, cfg.price_in, cfg.price_out)
        if p is None:
            return None
        per_teacher = generations / len(cfg.teachers)
        total += per_teacher * (300 * p.input_per_m + cfg.max_tokens * p.output_per_m) / 1e6
    return total


def steps_json(outcomes: list[StepOutcome]) -> str:
    return json.dumps([o.__dict__ for o in outcomes], default=str)
