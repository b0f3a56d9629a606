"""Training throughput, as ratios against baselines measured in the same run.

1. REDI step time vs TRL DPOTrainer step time on the same pairs, model, LoRA config and batch.
   REDI needs no reference forward pass, so the goal is <= 0.75x DPO's time per step.
2. SFT through tracekit (run_sft) vs TRL SFTTrainer called directly with the same config:
   goal >= 0.95x its samples/s (the wrapper costs nothing measurable).

Step times exclude the first (warm-up) steps: a callback records the wall time of each optimizer
step. Usage:
  .venv/bin/python bench/bench_train.py --quick          # tiny random Llama, seconds
  .venv/bin/python bench/bench_train.py                  # the embedded SmolLM2-135M, LoRA
  .venv/bin/python bench/bench_train.py --model hf:PATH  # any local model (GPU: bf16 automatically)
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRACEKIT_QUIET", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from transformers import TrainerCallback  # noqa: E402


class StepTimer(TrainerCallback):
    def __init__(self) -> None:
        self.times: list[float] = []
        self._t = 0.0

    def on_step_begin(self, args, state, control, **kw):
        self._t = time.perf_counter()

    def on_step_end(self, args, state, control, **kw):
        self.times.append(time.perf_counter() - self._t)


def tiny_model(root: Path) -> str:
    from tracekit.models import build_tiny_random_llama

    return str(build_tiny_random_llama(root / "tiny", hidden_size=128, layers=4))


def gsm8k_data(root: Path, n: int) -> tuple[str, str]:
    """SFT rows and pairs from real GSM8K model solutions when ../shared/data is present, else
    synthetic rows of similar length."""
    import json

    import datasets

    src = (
        Path(__file__).resolve().parent.parent.parent
        / "shared"
        / "data"
        / "gsm8k"
        / "example_model_solutions.jsonl"
    )
    sft, pairs = [], []
    if src.exists():
        cols = ["175b_verification", "175b_finetuning", "6b_verification", "6b_finetuning"]
        for line in src.read_text().splitlines():
            rec = json.loads(line)
            good = [rec[c]["solution"] for c in cols if rec[c]["is_correct"]]
            bad = [rec[c]["solution"] for c in cols if not rec[c]["is_correct"]]
            if good and bad:
                p = [{"role": "user", "content": rec["question"]}]
                sft.append({"prompt": p, "completion": [{"role": "assistant", "content": good[0]}]})
                pairs.append(
                    {
                        "prompt": p,
                        "chosen": [{"role": "assistant", "content": good[0]}],
                        "rejected": [{"role": "assistant", "content": bad[0]}],
                    }
                )
            if len(pairs) >= n:
                break
    else:
        for i in range(n):
            p = [{"role": "user", "content": f"What is {i} times {i + 3}? " * 3}]
            sft.append(
                {
                    "prompt": p,
                    "completion": [
                        {"role": "assistant", "content": f"{i}*{i + 3}={i * (i + 3)}. " * 8}
                    ],
                }
            )
            pairs.append(
                {
                    "prompt": p,
                    "chosen": sft[-1]["completion"],
                    "rejected": [{"role": "assistant", "content": "I think 7. " * 8}],
                }
            )
    paths = []
    for name, rows in (("sft", sft), ("pairs", pairs)):
        path = root / name
        datasets.DatasetDict(train=datasets.Dataset.from_list(rows)).save_to_disk(str(path))
        paths.append(str(path))
    return paths[0], paths[1]


def steady(times: list[float], warmup: int) -> float:
    rest = times[warmup:] or times
    return statistics.median(rest)


def bench_pairs(
    model: str, pairs: str, steps: int, batch: int, max_length: int, root: Path
) -> dict[str, float]:
    from tracekit.store import Store
    from tracekit.train.config import DPOTrainConfig, REDITrainConfig
    from tracekit.train.runner import run_dpo, run_redi

    out = {}
    common = dict(
        dataset=pairs,
        model=model,
        max_steps=steps,
        batch_size=batch,
        grad_accum=1,
        max_length=max_length,
        save_steps=10_000,
        plot=False,
        lr=1e-5,
    )
    with Store(root / "bench.duckdb") as s:
        for name, cls, fn in (
            ("redi", REDITrainConfig, run_redi),
            ("dpo", DPOTrainConfig, run_dpo),
        ):
            timer = StepTimer()
            fn(s, cls(output=str(root / name), **common), callbacks=[timer])
            out[name] = steady(timer.times, 2)
    return out


def bench_sft(
    model: str, sft: str, steps: int, batch: int, max_length: int, root: Path
) -> dict[str, float]:
    """samples/s of tracekit's run_sft vs SFTTrainer built directly with the same arguments."""
    from trl import SFTConfig, SFTTrainer

    from tracekit.store import Store
    from tracekit.train.config import SFTTrainConfig
    from tracekit.train.data import load_training_data
    from tracekit.train.runner import _device, load_model, lora_config, trainer_args

    cfg = SFTTrainConfig(
        dataset=sft,
        model=model,
        max_steps=steps,
        batch_size=batch,
        grad_accum=1,
        max_length=max_length,
        save_steps=10_000,
        plot=False,
        output=str(root / "sft-tk"),
    )
    res = {}
    # direct TRL: the same model, LoRA and TrainingArguments, no tracekit around it
    with Store(root / "bench.duckdb") as s:
        data = load_training_data(s, sft, "train", pairs=False)
    device = _device(cfg)
    model_obj, tok, _ = load_model(model, device, full=False, trainable_adapter=False)
    args = trainer_args(cfg, root / "sft-direct", device)
    timer = StepTimer()
    trainer = SFTTrainer(
        model=model_obj,
        args=SFTConfig(**args, max_length=cfg.max_length, completion_only_loss=True, packing=False),
        train_dataset=data.dataset,
        processing_class=tok,
        peft_config=lora_config(cfg),
        callbacks=[timer],
    )
    trainer.train()
    res["trl_direct"] = batch / steady(timer.times, 2)
    del trainer, model_obj
    from tracekit.train.runner import run_sft

    timer = StepTimer()
    with Store(root / "bench.duckdb") as s:
        run_sft(s, cfg, callbacks=[timer])
    res["tracekit"] = batch / steady(timer.times, 2)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny random Llama (seconds)")
    ap.add_argument("--model", default=None, help="model SPEC (default: the embedded SmolLM2-135M)")
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--max-length", type=int, default=384)
    a = ap.parse_args()
    import torch

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        model = a.model or (tiny_model(root) if a.quick else "default")
        steps = a.steps or (8 if a.quick else 6)
        sft, pairs = gsm8k_data(root, steps * a.batch_size)
        device = (
            "cuda " + torch.cuda.get_device_name(0)
            if torch.cuda.is_available()
            else f"cpu ({torch.get_num_threads()} threads)"
        )
        print(
            f"model={model} device={device} batch={a.batch_size} steps={steps} max_length={a.max_length}"
        )
        p = bench_pairs(model, pairs, steps, a.batch_size, a.max_length, root)
        print(
            f"REDI step {p['redi']:.3f}s   DPO step {p['dpo']:.3f}s   ratio REDI/DPO = {p['redi'] / p['dpo']:.2f}x (goal <= 0.75x)"
        )
        s = bench_sft(model, sft, steps, a.batch_size, a.max_length, root)
        print(
            f"SFT samples/s: tracekit {s['tracekit']:.2f}   TRL direct {s['trl_direct']:.2f}"
            f"   ratio = {s['tracekit'] / s['trl_direct']:.2f}x (goal >= 0.95x)"
        )


if __name__ == "__main__":
    main()
