"""A seeded generator of small arithmetic and algebra word problems with exact answers.

The quickstart must run offline on a laptop, so it cannot download a benchmark; these problems
are easy enough that the 135M embedded model solves some and fails others, which is what a
rejection-sampling demo needs (positives and negatives for the same prompt).
"""

from __future__ import annotations

import random
from collections.abc import Callable

from pydantic import BaseModel, ConfigDict, Field

from tracekit.store import RunResult, Store
from tracekit.store.ids import prompt_id

NAMES = [
    "Ava",
    "Ben",
    "Chloe",
    "Dan",
    "Emma",
    "Finn",
    "Grace",
    "Hugo",
    "Iris",
    "Jack",
    "Lena",
    "Omar",
]
ITEMS = ["apples", "pencils", "stickers", "marbles", "books", "cookies", "cards", "shells"]


def _add(r: random.Random) -> tuple[str, int]:
    n, item = r.choice(NAMES), r.choice(ITEMS)
    a, b = r.randint(2, 30), r.randint(2, 30)
    return f"{n} has {a} {item} and gets {b} more. How many {item} does {n} have now?", a + b


def _sub(r: random.Random) -> tuple[str, int]:
    n, item = r.choice(NAMES), r.choice(ITEMS)
    a = r.randint(10, 60)
    b = r.randint(1, a - 1)
    return f"{n} had {a} {item} and gave away {b}. How many {item} are left?", a - b


def _mul(r: random.Random) -> tuple[str, int]:
    n, item = r.choice(NAMES), r.choice(ITEMS)
    a, b = r.randint(2, 9), r.randint(2, 12)
    return f"{n} buys {a} boxes with {b} {item} in each box. How many {item} does {n} buy?", a * b


def _two_step(r: random.Random) -> tuple[str, int]:
    n = r.choice(NAMES)
    price, count, paid = r.randint(2, 9), r.randint(2, 6), 0
    paid = price * count + r.randint(1, 20)
    return (
        f"{n} buys {count} notebooks that cost {price} dollars each and pays with {paid} dollars."
        " How many dollars of change does " + n + " get?",
        paid - price * count,
    )


def _linear(r: random.Random) -> tuple[str, int]:
    x, a, b = r.randint(1, 12), r.randint(2, 9), r.randint(1, 20)
    return f"Solve for x: {a}x + {b} = {a * x + b}.", x


def _expr(r: random.Random) -> tuple[str, int]:
    a, b, c = r.randint(2, 20), r.randint(2, 9), r.randint(2, 9)
    return f"What is {a} + {b} * {c}?", a + b * c


KINDS: dict[str, Callable[[random.Random], tuple[str, int]]] = {
    "add": _add,
    "sub": _sub,
    "mul": _mul,
    "two_step": _two_step,
    "linear": _linear,
    "expr": _expr,
}


def generate(n: int, seed: int = 0, kinds: list[str] | None = None) -> list[dict]:
    """n distinct problems, deterministic for a seed."""
    r = random.Random(seed)
    names = kinds or list(KINDS)
    seen: set[str] = set()
    out: list[dict] = []
    attempts = 0
    while len(out) < n:
        attempts += 1
        if attempts > n * 50:
            raise ValueError(f"cannot generate {n} distinct problems of kinds {names}")
        kind = names[len(out) % len(names)]
        problem, answer = KINDS[kind](r)
        if problem in seen:
            continue
        seen.add(problem)
        out.append({"problem": problem, "answer": str(answer), "kind": kind})
    return out


class ProblemsConfig(BaseModel):
    """Seeded built-in problems for offline demos and tests."""

    model_config = ConfigDict(extra="forbid")

    n: int = Field(40, ge=1, description="how many problems")
    seed: int = 0
    eval_fraction: float = Field(
        0.25, ge=0, lt=1, description="share of problems in the eval split"
    )
    kinds: list[str] | None = Field(None, description=f"subset of {sorted(KINDS)}")
    source: str = "tracekit-arith"
    export_eval: str | None = Field(
        None, description="also write the eval split as JSONL (problem, answer) for `tracekit eval`"
    )


def run_problems(store: Store, cfg: ProblemsConfig) -> RunResult:
    problems = generate(cfg.n, cfg.seed, cfg.kinds)
    n_eval = round(cfg.n * cfg.eval_fraction)
    # evenly spaced, so both splits see every kind of problem
    eval_idx = {round(k * cfg.n / n_eval) for k in range(n_eval)} if n_eval else set()
    with store.run("problems", cfg) as run:
        rows = []
        for i, p in enumerate(problems):
            rows.append(
                {
                    "prompt_id": prompt_id(p["problem"]),
                    "source": cfg.source,
                    "source_ref": f"{cfg.seed}:{i}",
                    "problem": p["problem"],
                    "reference_answer": p["answer"],
                    "domain": "math",
                    "split": "eval" if i in eval_idx else "train",
                    "meta": f'{{"kind": "{p["kind"]}"}}',
                    "run_id": run.run_id,
                }
            )
        with store.transaction():
            run.add("prompts_added", store.insert_rows("prompts", rows))
        run.add("prompts", len(rows))
        run.add("eval", sum(r["split"] == "eval" for r in rows))
        if cfg.export_eval:
            import json
            from pathlib import Path

            out = Path(cfg.export_eval)
            out.parent.mkdir(parents=True, exist_ok=True)
            with out.open("w") as f:
                for r in rows:
                    if r["split"] == "eval":
                        f.write(
                            json.dumps({"problem": r["problem"], "answer": r["reference_answer"]})
                            + "\n"
                        )
    return run.result
