"""Sweep reports: every run's metrics and overrides in one table, mean ± sd over seeds.

A sweep directory holds run directories (``molgraph train -m ...``): each has
``.hydra/overrides.yaml`` and either ``metrics.json`` (finished) or ``failed.json`` (the
exception it died on, written by :func:`record_failure`). A run trained with
``replicates=k`` keeps one sub-directory per seed under the run directory, each a run of
its own; their overrides are the parent's. A configuration is named by the overrides that
vary between runs, the seed left out; its row in the report averages the seeds that
finished.
"""

from __future__ import annotations

import json
import math
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from matplotlib.figure import Figure

from molgraph.errors import MolgraphError
from molgraph.models.tasks import Task
from molgraph.resume import RUNNING, unfinished

FAILED = "failed.json"
#: Overrides that repeat one configuration (averaged over, not told apart).
_REPEATS = ("seed", "split.fold")
METRICS = "metrics.json"

#: The metric each task kind monitors, and whether lower is better (from :class:`Task`).
LOWER_IS_BETTER = {
    Task(kind, ()).monitor.removeprefix("val/"): Task(kind, ()).mode == "min"
    for kind in ("regression", "classification")
}


class ReportError(MolgraphError, ValueError):
    """A sweep directory that cannot be reported (no runs, unreadable run files)."""


def record_failure(run_dir: Path, error: BaseException) -> Path:
    """Write ``failed.json`` (exception type, message, traceback) into ``run_dir``."""
    run_dir.mkdir(parents=True, exist_ok=True)
    record = {
        "error": f"{type(error).__name__}: {error}",
        "traceback": "".join(traceback.format_exception(error)),
    }
    path = run_dir / FAILED
    path.write_text(json.dumps(record, indent=2))
    return path


@dataclass(frozen=True)
class Run:
    """One run of a sweep: where it is, its overrides, and its outcome."""

    path: Path
    overrides: tuple[str, ...]
    seed: int | None
    metrics: dict[str, dict[str, float]] | None = None
    error: str | None = None

    @property
    def swept(self) -> tuple[str, ...]:
        """The overrides other than the seed and the cross-validation fold."""
        return tuple(o for o in self.overrides if _key(o) not in _REPEATS)

    @property
    def metric(self) -> str | None:
        """The monitored metric's name, from the metrics the run wrote."""
        if self.metrics is None:
            return None
        return next((m for m in LOWER_IS_BETTER if m in self.metrics["val"]), None)


def _key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def _read_overrides(run_dir: Path, root: Path) -> tuple[str, ...]:
    """``.hydra/overrides.yaml`` of the run or of the nearest parent run (replicates)."""
    for folder in (run_dir, *run_dir.parents):
        path = folder / ".hydra" / "overrides.yaml"
        if path.is_file():
            return tuple(str(o) for o in (yaml.safe_load(path.read_text()) or []))
        if folder == root:
            break
    return ()


def _read_seed(run_dir: Path, overrides: Sequence[str]) -> int | None:
    config = run_dir / "config.yaml"
    if config.is_file():
        seed = (yaml.safe_load(config.read_text()) or {}).get("seed")
        if seed is not None:
            return int(seed)
    for override in overrides:
        if _key(override) == "seed":
            return int(override.split("=", 1)[1])
    return None


def collect_runs(sweep_dir: Path) -> list[Run]:
    """Every finished or failed run under ``sweep_dir``, in path order."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise ReportError(f"{sweep_dir}: not a directory")
    found = {p.parent for name in (METRICS, FAILED, RUNNING) for p in sweep_dir.rglob(name)}
    # an ensemble's members (member<i>/) belong to the run above them
    folders = {f for f in found if not any(parent in found for parent in f.parents)}
    runs = []
    for folder in sorted(folders):
        overrides = _read_overrides(folder, sweep_dir)
        seed = _read_seed(folder, overrides)
        try:
            done = (folder / METRICS).is_file() or (folder / FAILED).is_file()
            if unfinished(folder) and not done:
                error = f"did not finish ({RUNNING} marker: killed, or still training)"
                runs.append(Run(folder, overrides, seed, error=error))
            elif (folder / FAILED).is_file():
                error = json.loads((folder / FAILED).read_text())["error"]
                runs.append(Run(folder, overrides, seed, error=error))
            else:
                metrics = _numbers(json.loads((folder / METRICS).read_text()))
                runs.append(Run(folder, overrides, seed, metrics=metrics))
        except (json.JSONDecodeError, KeyError) as exc:
            raise ReportError(f"{folder}: unreadable run record ({exc})") from None
    if not runs:
        raise ReportError(f"{sweep_dir}: no run directory with {METRICS} or {FAILED}")
    return runs


def _numbers(metrics: dict) -> dict[str, dict[str, float]]:
    """A ``metrics.json``'s parts with ``null`` (an undefined metric) read as NaN."""
    return {part: {k: math.nan if v is None else v for k, v in metrics[part].items()}
            for part in ("val", "test")}  # fmt: skip


def _mean_sd(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (NaN for fewer than two values)."""
    array = np.asarray(values, dtype=float)
    if len(array) == 0:
        return math.nan, math.nan
    return float(array.mean()), float(array.std(ddof=1)) if len(array) > 1 else math.nan


def varying_keys(runs: Sequence[Run]) -> list[str]:
    """Override keys (other than the seed) whose values differ between runs, in order."""
    values: dict[str, set[str]] = {}
    for run in runs:
        for override in run.swept:
            values.setdefault(_key(override), set()).add(override)
    return [
        k
        for k, v in values.items()
        if len(v) > 1 or any(k not in {_key(o) for o in run.swept} for run in runs)
    ]


def configuration(run: Run, keys: Sequence[str]) -> str:
    """The run's overrides of ``keys``, space-separated ("(all runs)" if none: a sweep
    over seeds only)."""
    return " ".join(o for o in run.swept if _key(o) in keys) or "(all runs)"


def summarize(runs: Sequence[Run]) -> pd.DataFrame:
    """One row per (configuration, metric): seeds, mean and sd of the validation and test
    metric, best validation first (per metric, in its direction), configurations without
    a finished run last. A configuration is named by the overrides that vary in the sweep.

    Columns: ``configuration``, ``metric``, ``n_runs`` (finished), ``n_failed``, ``seeds``,
    ``val_mean``, ``val_sd``, ``test_mean``, ``test_sd``, then one per varying override.
    """
    keys = varying_keys(runs)
    groups: dict[str, list[Run]] = {}
    for run in runs:
        groups.setdefault(configuration(run, keys), []).append(run)
    rows = []
    for name, members in groups.items():
        done = [r for r in members if r.metrics is not None]
        for metric in sorted({r.metric for r in done if r.metric}) or [""]:
            scored = [r for r in done if r.metric == metric]
            val = _mean_sd([r.metrics["val"][metric] for r in scored])
            test = _mean_sd([r.metrics["test"][metric] for r in scored])
            row = {
                "configuration": name,
                "metric": metric,
                "n_runs": len(scored),
                "n_failed": len(members) - len(done),
                "seeds": " ".join(str(r.seed) for r in scored),
                "val_mean": val[0],
                "val_sd": val[1],
                "test_mean": test[0],
                "test_sd": test[1],
            }
            swept = dict(o.split("=", 1) for o in members[0].swept if "=" in o)
            row.update({k: swept.get(k, "") for k in keys})
            rows.append(row)

    def rank(row: dict) -> tuple:
        value = row["val_mean"] if LOWER_IS_BETTER.get(row["metric"], True) else -row["val_mean"]
        return (row["n_runs"] == 0, row["metric"], math.inf if math.isnan(value) else value)

    return pd.DataFrame(sorted(rows, key=rank))


def _mean_sd_text(mean: float, sd: float) -> str:
    if math.isnan(mean):
        return "—"
    return f"{mean:.3f}" if math.isnan(sd) else f"{mean:.3f} ± {sd:.3f}"


def to_markdown(table: pd.DataFrame, runs: Sequence[Run], sweep_dir: Path) -> str:
    """The summary as a Markdown table (best validation metric first), the overrides all
    runs share, then the failed runs with their errors."""
    keys = varying_keys(runs)
    fixed = [o for o in runs[0].swept if _key(o) not in keys]
    lines = [
        f"# Sweep report: {sweep_dir.name}",
        "",
        f"{len(runs)} runs. Mean ± sd over seeds; rows sorted by the validation metric "
        "(↓ lower is better, ↑ higher is better).",
        "",
        f"Overrides shared by every run: `{' '.join(fixed)}`" if fixed else "",
        "",
        "| rank | configuration | metric | seeds | val | test | failed |",
        "|---:|---|---|---|---|---|---:|",
    ]
    for rank, row in enumerate(table.itertuples(index=False), start=1):
        arrow = "↓" if LOWER_IS_BETTER.get(str(row.metric), True) else "↑"
        metric = f"{row.metric} {arrow}" if row.metric else "—"
        lines.append(
            f"| {rank} | `{row.configuration}` | {metric} | {row.seeds or '—'} | "
            f"{_mean_sd_text(row.val_mean, row.val_sd)} | "
            f"{_mean_sd_text(row.test_mean, row.test_sd)} | {row.n_failed} |"
        )
    failed = [r for r in runs if r.error is not None]
    if failed:
        lines += ["", f"## Failed runs ({len(failed)} of {len(runs)})", ""]
        for run in failed:
            where = run.path.relative_to(sweep_dir)
            error = " ".join((run.error or "").split())  # one line: wrapped errors span several
            name = configuration(run, keys)
            lines.append(f"- `{where}` (`{name}`, seed {run.seed}): {_shorten(error, 400)}")
    return "\n".join(lines) + "\n"


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def plot_summary(table: pd.DataFrame, out_png: Path) -> Path:
    """Dot and interval per configuration (validation and test: mean, whiskers ± sd over
    seeds), one panel per metric, best validation at the top. Built on a
    ``matplotlib.figure.Figure``: the caller's pyplot backend is left alone."""
    scored = table[table["n_runs"] > 0]
    metrics = list(dict.fromkeys(scored["metric"]))
    heights = [len(scored[scored["metric"] == m]) for m in metrics]
    fig = Figure(figsize=(8, 1.2 + 0.5 * sum(heights) + 0.8 * len(metrics)), layout="tight")
    axes = fig.subplots(len(metrics), 1, gridspec_kw={"height_ratios": heights}, squeeze=False)
    for ax, metric in zip(axes[:, 0], metrics, strict=True):
        rows = scored[scored["metric"] == metric]
        y = np.arange(len(rows))[::-1]  # best (first row) at the top
        for offset, part, colour in ((0.15, "val", "tab:blue"), (-0.15, "test", "tab:orange")):
            ax.errorbar(
                rows[f"{part}_mean"], y + offset, xerr=np.nan_to_num(rows[f"{part}_sd"].to_numpy()),
                fmt="o", color=colour, capsize=3, label=part,
            )  # fmt: skip
        labels = [
            f"{c} (n={n})" for c, n in zip(rows["configuration"], rows["n_runs"], strict=True)
        ]
        ax.set_yticks(y, labels)
        ax.set_ylim(-0.6, len(rows) - 0.4)
        better = "lower" if LOWER_IS_BETTER.get(metric, True) else "higher"
        ax.set_xlabel(f"{metric} ({better} is better; dot: mean, whiskers: ± sd over seeds)")
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small")
        ax.grid(axis="x", alpha=0.3)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=120)
    return out_png


def runs_table(runs: Sequence[Run]) -> pd.DataFrame:
    """One row per run: path, configuration, seed, status, val and test metric, error."""
    keys = varying_keys(runs)
    rows = []
    for run in runs:
        metric = run.metric
        rows.append(
            {
                "run": str(run.path),
                "configuration": configuration(run, keys),
                "seed": run.seed,
                "status": "failed" if run.error is not None else "finished",
                "metric": metric,
                "val": run.metrics["val"][metric] if metric else math.nan,
                "test": run.metrics["test"][metric] if metric else math.nan,
                "error": run.error or "",
            }
        )
    return pd.DataFrame(rows)


def write_report(sweep_dir: Path, out_dir: Path | None = None) -> dict[str, Path]:
    """Write ``report.csv`` (one row per configuration), ``report.md``, ``report.png`` and
    ``runs.csv`` (one row per run) into ``out_dir`` (default: ``sweep_dir``)."""
    sweep_dir = Path(sweep_dir)
    out_dir = Path(out_dir) if out_dir is not None else sweep_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    runs = collect_runs(sweep_dir)
    table = summarize(runs)
    paths = {
        "csv": out_dir / "report.csv",
        "markdown": out_dir / "report.md",
        "runs": out_dir / "runs.csv",
    }
    table.to_csv(paths["csv"], index=False)
    paths["markdown"].write_text(to_markdown(table, runs, sweep_dir))
    listing = runs_table(runs)
    listing["run"] = [str(Path(p).relative_to(sweep_dir)) for p in listing["run"]]
    listing.to_csv(paths["runs"], index=False)
    if (table["n_runs"] > 0).any():
        paths["plot"] = plot_summary(table, out_dir / "report.png")
    return paths
