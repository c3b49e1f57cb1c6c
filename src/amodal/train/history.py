"""A phase's loss history and the curve of both phases' losses (``loss.png``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

TITLES = {"vae": "autoencoder: L1 + KL", "unet": "inpainting UNet: noise MSE"}


@dataclass
class History:
    loss: list[tuple[int, float]] = field(default_factory=list)
    validation: list[tuple[int, float]] = field(default_factory=list)
    seconds: float = 0.0


def plot_losses(histories: dict[str, History], path: Path) -> None:
    """Each phase's training loss (light: per step; dark: a 100-step moving mean) and the validation loss
    at the checkpoints; matplotlib's ``Figure`` alone, so the caller's backend is left as it is."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 3.8))
    axes = fig.subplots(1, 2)
    for ax, (phase, history) in zip(axes, histories.items(), strict=True):
        ax.set_title(TITLES[phase])
        ax.set_xlabel("step")
        if not history.loss:
            continue
        steps, values = np.array(history.loss).T
        ax.plot(steps, values, color="tab:blue", alpha=0.25, linewidth=0.6, label="train (step)")
        if len(values) >= 100:
            mean = np.convolve(values, np.ones(100) / 100, mode="valid")
            ax.plot(steps[99:], mean, color="tab:blue", label="train (100-step mean)")
        if history.validation:
            vs, vv = np.array(history.validation).T
            ax.plot(vs, vv, "o-", color="tab:orange", markersize=3, label="validation")
        ax.set_yscale("log")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
