"""The stage registry: one name -> (config model, run function) for the CLI and YAML recipes.

Entries are import strings so that `tracekit --help` and recipe validation stay fast and a stage
whose optional dependency is missing fails only when used.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from tracekit.errors import ConfigError

# name -> ("module:ConfigClass", "module:run_function"); run_function(store, cfg) -> RunResult
REGISTRY: dict[str, tuple[str, str]] = {
    "report": ("tracekit.report.html:ReportConfig", "tracekit.report.html:run_report"),
    "problems": (
        "tracekit.collect.problems:ProblemsConfig",
        "tracekit.collect.problems:run_problems",
    ),
    "import": ("tracekit.collect.importers:ImportConfig", "tracekit.collect.importers:run_import"),
    "verify": ("tracekit.verify:VerifyConfig", "tracekit.verify:run_verify"),
    "collect": ("tracekit.collect.collect:CollectConfig", "tracekit.collect.collect:run_collect"),
    "merge": ("tracekit.collect.merge:MergeConfig", "tracekit.collect.merge:run_merge"),
    "train.sft": ("tracekit.train.config:SFTTrainConfig", "tracekit.train.runner:run_sft"),
    "train.redi": ("tracekit.train.config:REDITrainConfig", "tracekit.train.runner:run_redi"),
    "train.dpo": ("tracekit.train.config:DPOTrainConfig", "tracekit.train.runner:run_dpo"),
    "train.sft-then-redi": (
        "tracekit.train.config:SFTThenREDIConfig",
        "tracekit.train.runner:run_sft_then_redi",
    ),
    "eval": ("tracekit.evaluate.eval:EvalConfig", "tracekit.evaluate.eval:run_eval"),
    "select.sft": ("tracekit.select.sft:SelectSFTConfig", "tracekit.select.sft:run_select_sft"),
    "select.pairs": (
        "tracekit.select.pairs:SelectPairsConfig",
        "tracekit.select.pairs:run_select_pairs",
    ),
    "publish": ("tracekit.publish.publish:PublishConfig", "tracekit.publish.publish:run_publish"),
    "score.perplexity": (
        "tracekit.score.perplexity:PerplexityConfig",
        "tracekit.score.perplexity:run_perplexity",
    ),
    "provenance": (
        "tracekit.score.provenance:ProvenanceConfig",
        "tracekit.score.provenance:run_provenance",
    ),
    "score.length": ("tracekit.score.length:LengthConfig", "tracekit.score.length:run_length"),
    "score.dedup": ("tracekit.score.dedup:DedupConfig", "tracekit.score.dedup:run_dedup"),
    "score.decontam": (
        "tracekit.score.decontam:DecontamConfig",
        "tracekit.score.decontam:run_decontam",
    ),
    "score.behaviors": (
        "tracekit.score.behaviors:BehaviorsConfig",
        "tracekit.score.behaviors:run_behaviors",
    ),
    "score.safety": ("tracekit.score.safety:SafetyConfig", "tracekit.score.safety:run_safety"),
}


def _load(ref: str) -> Any:
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)


def stage(name: str) -> tuple[type[BaseModel], Callable[..., Any]]:
    if name not in REGISTRY:
        known = ", ".join(sorted(REGISTRY))
        raise ConfigError(f"unknown stage {name!r} (known: {known})")
    cfg_ref, fn_ref = REGISTRY[name]
    return _load(cfg_ref), _load(fn_ref)
