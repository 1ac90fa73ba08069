"""Metrics that are undefined, and why: ``metrics.json`` holds ``null`` and a reason,
never NaN (which most JSON readers refuse)."""

from __future__ import annotations

import math
from collections.abc import Mapping

from torch import Tensor

from molgraph.models.tasks import Task

#: The key of ``metrics.json`` that gives the reason for each ``null``.
UNDEFINED = "undefined"


def undefined_reasons(
    task: Task, part: str, metrics: Mapping[str, float], target: Tensor, mask: Tensor
) -> dict[str, str]:
    """``{"<part>/<metric>[/<target>]": reason}`` for each NaN of ``metrics``, from the
    part's labels ``target`` and ``mask`` (``[n, T]``)."""
    reasons: dict[str, str] = {}
    for key, value in metrics.items():
        if not math.isnan(value):
            continue
        metric, _, name = key.partition("/")
        if not name:
            reasons[f"{part}/{key}"] = f"{metric} is undefined for every target"
            continue
        t = task.names.index(name)
        labels = target[mask[:, t], t]
        classes = labels.unique()
        if len(labels) < 2:
            reason = f"{len(labels)} labelled item(s) of {name!r} in {part}; 2 are needed"
        elif task.kinds[t] == "classification" and len(classes) < 2:
            reason = (f"every one of the {len(labels)} labels of {name!r} in {part} is "
                      f"{float(classes[0]):g}; {metric} needs both classes")  # fmt: skip
        elif len(classes) < 2:
            reason = f"the {len(labels)} labels of {name!r} in {part} are all equal"
        else:
            reason = f"{metric} of {name!r} in {part} is undefined (constant predictions?)"
        reasons[f"{part}/{key}"] = reason
    return reasons


def json_metrics(
    metrics: Mapping[str, Mapping[str, float]], reasons: Mapping[str, str]
) -> dict[str, object]:
    """``metrics`` with each NaN as None (JSON ``null``) and, when there are any, the
    reasons under :data:`UNDEFINED`."""
    out: dict[str, object] = {
        part: {k: None if math.isnan(v) else v for k, v in values.items()}
        for part, values in metrics.items()
    }
    if reasons:
        out[UNDEFINED] = dict(reasons)
    return out
