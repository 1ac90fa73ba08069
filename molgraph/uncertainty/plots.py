"""Figures of an uncertain prediction: a calibration plot and error against uncertainty."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from molgraph.types import TaskKind
from molgraph.uncertainty.metrics import LEVELS, calibration_curve

DPI = 120
PANEL_INCHES = 4.0


def _panels(n: int) -> tuple[Figure, list]:
    fig = Figure(figsize=(PANEL_INCHES * n, PANEL_INCHES), dpi=DPI)
    return fig, [fig.add_subplot(1, n, i + 1) for i in range(n)]


def _save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path)
    return path


def plot_calibration(
    kind: TaskKind, names: Sequence[str], y: np.ndarray, parts: dict[str, np.ndarray], path: Path
) -> Path:
    """Regression: observed against expected fraction inside the central Gaussian interval;
    classification: observed frequency against mean predicted probability (10 bins)."""
    fig, axes = _panels(len(names))
    for t, (ax, name) in enumerate(zip(axes, names, strict=True)):
        m = ~np.isnan(y[:, t])
        yt, mean, sd = y[m, t], parts["mean"][m, t], parts["sd"][m, t]
        ax.plot([0, 1], [0, 1], "k--", lw=1, label="ideal")
        if kind == "regression":
            ax.plot(LEVELS, calibration_curve(yt, mean, sd), lw=2, label="model")
            ax.set(xlabel="expected proportion in interval", ylabel="observed proportion")
        else:
            edges = np.linspace(0, 1, 11)
            which = np.clip(np.digitize(mean, edges[1:-1]), 0, 9)
            used = [b for b in range(10) if (which == b).any()]
            ax.plot([mean[which == b].mean() for b in used],
                    [yt[which == b].mean() for b in used], "o-", label="model")  # fmt: skip
            ax.set(xlabel="mean predicted probability", ylabel="observed frequency")
        ax.set_title(name, fontsize=9)
        ax.legend(loc="upper left", fontsize=8)
    return _save(fig, path)


def plot_error_vs_uncertainty(
    names: Sequence[str], y: np.ndarray, parts: dict[str, np.ndarray], path: Path
) -> Path:
    """|error| of each test item against its predicted sd."""
    fig, axes = _panels(len(names))
    for t, (ax, name) in enumerate(zip(axes, names, strict=True)):
        m = ~np.isnan(y[:, t])
        error = np.abs(y[m, t] - parts["mean"][m, t])
        ax.scatter(parts["sd"][m, t], error, s=8, alpha=0.6)
        ax.set(xlabel="predicted sd", ylabel="|error|")
        ax.set_title(name, fontsize=9)
    return _save(fig, path)
