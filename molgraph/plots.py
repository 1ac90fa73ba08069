"""Figures for a finished run: training curves, parity plots and ROC curves.

Figures are built as ``matplotlib.figure.Figure`` objects, never through ``pyplot``, so
no global figure state is touched, nothing needs closing and no display backend is
needed (rendering goes through the Agg canvas that ``Figure.savefig`` attaches).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from torchmetrics.functional import auroc, roc

DPI = 120
PANEL_INCHES = 4.0

# Lightning logs an epoch-level mean as "<name>_epoch" when a value is logged with
# on_step=True and on_epoch=True, and as "<name>" when logged per epoch only.
#: The largest axis limit: matplotlib's transforms overflow near the float64 maximum.
_AXIS_LIMIT = 1e300
TRAIN_LOSS_COLUMNS = ("train/loss_epoch", "train/loss")
VAL_LOSS_COLUMN = "val/loss"


def plot_training_curves(metrics_csv: Path, out_png: Path, monitor: str) -> Path:
    """Plot the losses and the monitored metric per epoch from a Lightning CSV log.

    Parameters
    ----------
    metrics_csv
        ``metrics.csv`` written by Lightning's ``CSVLogger``: columns ``epoch``,
        ``step`` and one per logged key; each row fills only the keys logged together.
    out_png
        Where the figure is written (parent folders are created).
    monitor
        Logged key of the monitored metric, e.g. ``"val/rmse"`` or ``"val/roc_auc"``.

    Returns
    -------
    Path
        ``out_png``.

    Raises
    ------
    ValueError
        If the file holds no row with an epoch.

    Notes
    -----
    Values are averaged per epoch, so a key logged at every step becomes its epoch
    mean. A key that was never logged is left out of its panel, not an error.
    """
    per_epoch = read_epoch_metrics(metrics_csv)
    fig, (loss_ax, metric_ax) = _panel_grid(2, ncols=2)
    train_col = next((c for c in TRAIN_LOSS_COLUMNS if c in per_epoch), None)
    for column, label in ((train_col, "train"), (VAL_LOSS_COLUMN, "val")):
        _plot_epoch_series(loss_ax, per_epoch, column, label)
    _label(loss_ax, "Loss", "epoch", "loss")
    _plot_epoch_series(metric_ax, per_epoch, monitor, monitor)
    _label(metric_ax, f"Monitored: {monitor}", "epoch", monitor)
    for ax in (loss_ax, metric_ax):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if ax.lines:
            ax.legend()
        else:
            _note(ax, "not logged")
    return _save(fig, out_png)


def read_epoch_metrics(metrics_csv: Path) -> pd.DataFrame:
    """Collapse a sparse Lightning ``metrics.csv`` into one row per epoch.

    Parameters
    ----------
    metrics_csv
        ``CSVLogger`` output.

    Returns
    -------
    pandas.DataFrame
        Indexed by integer epoch, one column per logged key (mean of the values logged
        during that epoch; NaN where the key was not logged that epoch).

    Raises
    ------
    ValueError
        If the file is empty or holds no row with an epoch.
    """
    try:
        log = pd.read_csv(metrics_csv)
    except pd.errors.EmptyDataError:
        log = pd.DataFrame()
    if "epoch" not in log or log["epoch"].isna().all():
        raise ValueError(f"{metrics_csv}: no epochs logged, nothing to plot")
    log = log.dropna(subset=["epoch"]).astype({"epoch": int})
    return log.drop(columns="step", errors="ignore").groupby("epoch").mean()


def plot_parity(
    y_true: np.ndarray, y_pred: np.ndarray, task_names: Sequence[str], out_png: Path
) -> Path:
    """Plot predicted against true values, one panel per regression task.

    Parameters
    ----------
    y_true
        Labels, shape ``[n, T]``; NaN marks a missing label (masked out of that task).
    y_pred
        Predictions, shape ``[n, T]``.
    task_names
        ``T`` task names, used as panel titles.
    out_png
        Where the figure is written (parent folders are created).

    Returns
    -------
    Path
        ``out_png``.
    """
    y_true, y_pred = _check_task_arrays(y_true, y_pred, task_names)
    fig, axes = _panel_grid(len(task_names))
    for t, (ax, name) in enumerate(zip(axes, task_names, strict=True)):
        true, pred = masked_pair(y_true[:, t], y_pred[:, t])
        _label(ax, name, "true", "predicted")
        if true.size == 0:
            _note(ax, "no labels")
            continue
        rmse, r2 = regression_scores(true, pred)
        ax.set_title(f"{name}\nRMSE {rmse:.3g}   R² {r2:.3f}  (n={true.size})")
        ax.scatter(true, pred, s=12, alpha=0.6, edgecolors="none")
        low, high = _padded_range(np.concatenate([true, pred]))
        ax.plot([low, high], [low, high], color="black", linewidth=1, label="y = x")
        ax.set_xlim(low, high)
        ax.set_ylim(low, high)
        ax.set_aspect("equal")
        ax.legend(loc="upper left")
    return _save(fig, out_png)


def plot_roc(
    y_true: np.ndarray, y_prob: np.ndarray, task_names: Sequence[str], out_png: Path
) -> Path:
    """Plot a ROC curve per binary task, with its AUC in the legend.

    Parameters
    ----------
    y_true
        Binary labels (0 or 1), shape ``[n, T]``; NaN marks a missing label.
    y_prob
        Predicted probabilities (or logits: ROC is unchanged by a monotone map),
        shape ``[n, T]``.
    task_names
        ``T`` task names, used as panel titles.
    out_png
        Where the figure is written (parent folders are created).

    Returns
    -------
    Path
        ``out_png``.

    Notes
    -----
    A task whose present labels are all one class has no ROC curve; its panel says so.
    """
    y_true, y_prob = _check_task_arrays(y_true, y_prob, task_names)
    fig, axes = _panel_grid(len(task_names))
    for t, (ax, name) in enumerate(zip(axes, task_names, strict=True)):
        labels, probs = masked_pair(y_true[:, t], y_prob[:, t])
        _label(ax, name, "false positive rate", "true positive rate")
        classes = np.unique(labels)
        if classes.size < 2:
            found = "no labels" if classes.size == 0 else f"all labels are {classes[0]:g}"
            _note(ax, f"ROC undefined:\n{found}")
            continue
        preds = torch.as_tensor(probs, dtype=torch.float64)
        target = torch.as_tensor(labels).long()
        fpr, tpr, _ = roc(preds, target, task="binary")
        auc = auroc(preds, target, task="binary").item()
        ax.plot(fpr.numpy(), tpr.numpy(), label=f"AUC = {auc:.3f}  (n={labels.size})")
        ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="chance")
        ax.set_xlim(-0.01, 1.01)  # keeps a curve along the frame visible
        ax.set_ylim(-0.01, 1.01)
        ax.set_aspect("equal")
        ax.legend(loc="lower right")
    return _save(fig, out_png)


def masked_pair(y_true: np.ndarray, y_other: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Keep the entries where both the label and the prediction are present.

    Parameters
    ----------
    y_true, y_other
        One task's labels and predictions, shape ``[n]``; NaN marks a missing value (an
        infinite one is left out too).

    Returns
    -------
    tuple of numpy.ndarray
        Both arrays restricted to the present, finite entries, shape ``[m]`` with ``m <= n``.
    """
    keep = np.isfinite(y_true) & np.isfinite(y_other)
    return y_true[keep], y_other[keep]


def regression_scores(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[float, float]:
    """RMSE and coefficient of determination of one task.

    Parameters
    ----------
    y_true, y_pred
        Labels and predictions without missing values, shape ``[m]``, ``m >= 1``.

    Returns
    -------
    tuple of float
        ``(rmse, r2)``; ``r2`` is NaN when the labels have no variance (fewer than two
        distinct values), where it is undefined.
    """
    with np.errstate(over="ignore", invalid="ignore"):  # huge values give inf, not a warning
        residual = np.sum((y_true - y_pred) ** 2)
        total = np.sum((y_true - y_true.mean()) ** 2)
        rmse = math.sqrt(residual / y_true.size)
        r2 = 1.0 - residual / total if total > 0 and math.isfinite(total) else math.nan
    return rmse, float(r2)


def _check_task_arrays(
    y_true: np.ndarray, y_other: np.ndarray, task_names: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Return both arrays as float ``[n, T]``, checking they agree with ``task_names``."""
    y_true = np.asarray(y_true, dtype=float)
    y_other = np.asarray(y_other, dtype=float)
    if y_true.ndim != 2 or y_true.shape != y_other.shape:
        raise ValueError(
            f"labels {y_true.shape} and predictions {y_other.shape}: need the same [n, T] shape"
        )
    if y_true.shape[1] != len(task_names):
        raise ValueError(
            f"{len(task_names)} task names {list(task_names)} for {y_true.shape[1]} task columns"
        )
    return y_true, y_other


def _panel_grid(n_panels: int, ncols: int | None = None) -> tuple[Figure, list[Axes]]:
    """A near-square grid of ``n_panels`` axes; unused cells of the grid are hidden."""
    ncols = ncols or math.ceil(math.sqrt(n_panels))
    nrows = math.ceil(n_panels / ncols)
    fig = Figure(figsize=(PANEL_INCHES * ncols, PANEL_INCHES * nrows), layout="constrained")
    axes = list(fig.subplots(nrows, ncols, squeeze=False).ravel())
    for ax in axes[n_panels:]:
        ax.set_visible(False)
    return fig, axes[:n_panels]


def _plot_epoch_series(ax: Axes, per_epoch: pd.DataFrame, column: str | None, label: str) -> None:
    """Plot one per-epoch column as a line; absent or never-logged columns are skipped."""
    if column is None or column not in per_epoch:
        return
    series = per_epoch[column].dropna()
    if not series.empty:
        ax.plot(series.index, series.to_numpy(), marker="o", markersize=3, label=label)


def _padded_range(values: np.ndarray) -> tuple[float, float]:
    """Bounds of the finite ``values`` widened by 5 % (or by 1 when all values are
    equal), kept within ±1e300 so that no axis computation overflows (any finite value
    plots, even 1e308)."""
    finite = values[np.isfinite(values)]
    if not finite.size:
        return -1.0, 1.0
    low, high = float(finite.min()), float(finite.max())
    pad = (0.05 * high - 0.05 * low) or 1.0  # two halves: high - low may overflow
    return max(low - pad, -_AXIS_LIMIT), min(high + pad, _AXIS_LIMIT)


def _label(ax: Axes, title: str, xlabel: str, ylabel: str) -> None:
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)


def _note(ax: Axes, text: str) -> None:
    """Write a message in the middle of an empty panel, whose ticks would mean nothing."""
    ax.set_xticks([])
    ax.set_yticks([])
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=11)


def _save(fig: Figure, out_png: Path) -> Path:
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=DPI)
    return out_png
