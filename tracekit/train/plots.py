"""The loss-curve PNG written beside each trained student (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path

from tracekit.train.trainlog import read_log


def plot_loss_curve(log_path: Path, png_path: Path, title: str) -> Path | None:
    """Training loss per step; for pair methods a second panel shows the chosen and rejected mean
    log-probs, whose divergence is what REDI and DPO are for. Returns None when nothing was logged."""
    rows = [r for r in read_log(log_path) if r.get("loss") is not None]
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pair_rows = [r for r in rows if r.get("logps/chosen") is not None]
    ncols = 2 if pair_rows else 1
    fig, axes = plt.subplots(1, ncols, figsize=(6 * ncols, 4), squeeze=False)
    ax = axes[0][0]
    ax.plot(
        [r["step"] for r in rows], [r["loss"] for r in rows], marker="." if len(rows) < 50 else None
    )
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if pair_rows:
        ax2 = axes[0][1]
        steps = [r["step"] for r in pair_rows]
        ax2.plot(steps, [r["logps/chosen"] for r in pair_rows], label="chosen")
        ax2.plot(steps, [r["logps/rejected"] for r in pair_rows], label="rejected")
        ax2.set_xlabel("step")
        ax2.set_ylabel("log-prob (mean per token)" if "redi_loss" in pair_rows[0] else "log-prob")
        ax2.legend()
        ax2.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(png_path, dpi=100)
    plt.close(fig)
    return png_path
