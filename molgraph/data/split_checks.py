"""A dataset's split as training uses it: identical items in one part, and a validation
part that can be scored, checked before any training."""

from __future__ import annotations

import logging

import numpy as np

from molgraph.data.dataset import GraphDataset
from molgraph.data.duplicates import identity_keys, keep_together, report_duplicates
from molgraph.data.splits import SplitIndices, Splitter
from molgraph.errors import ConfigError
from molgraph.types import task_kinds

log = logging.getLogger(__name__)


def split_dataset(splitter: Splitter, dataset: GraphDataset) -> SplitIndices:
    """``splitter``'s split of ``dataset`` with identical items (same canonical SMILES or
    sequence) moved into one part, after a warning that counts duplicates and conflicting
    targets; the validation part is checked (:func:`check_scorable`)."""
    y = dataset.y.numpy()
    groups = identity_keys(dataset.items, dataset.item_name)
    report_duplicates(groups, y, dataset.items, dataset.row_ids)
    split = splitter(dataset.items, y, dataset.row_ids, table=dataset.table)
    split, moved = keep_together(split, groups)
    if moved:
        log.warning("split: %d item(s) moved to the part holding their identical items", moved)
    check_scorable(split, y, dataset)
    return split


def check_scorable(split: SplitIndices, y: np.ndarray, dataset: GraphDataset) -> None:
    """Refuse a validation part on which the monitored metric is undefined for every
    target (fewer than 2 labelled items, or one class for classification); warn about
    the targets it cannot score when others can be.

    Raises
    ------
    ConfigError
        Naming the part sizes and, per target, why it cannot be scored.
    """
    names = dataset.target_names
    kinds = task_kinds(dataset.task, names)
    val = y[split.val]
    reasons = {}
    for t, (name, kind) in enumerate(zip(names, kinds, strict=True)):
        labels = val[~np.isnan(val[:, t]), t]
        if len(labels) < 2:
            reasons[name] = f"{len(labels)} labelled item(s)"
        elif kind == "classification" and len(np.unique(labels)) < 2:
            reasons[name] = f"one class only ({len(labels)} items labelled {labels[0]:g})"
    monitored = set(kinds) if len(set(kinds)) > 1 else {kinds[0]}
    scorable = [n for n, k in zip(names, kinds, strict=True) if k in monitored and n not in reasons]
    sizes = f"train {len(split.train)}, val {len(split.val)}, test {len(split.test)} items"
    detail = "; ".join(f"{name!r}: {why}" for name, why in reasons.items())
    if not scorable:
        raise ConfigError(
            f"the validation part cannot be scored ({sizes}): {detail}; it needs at least "
            "2 labelled items per target and both classes for classification (more data, "
            "a larger val fraction, or split=stratified)"
        )
    if reasons:
        log.warning("validation part (%s) cannot score %s", sizes, detail)
