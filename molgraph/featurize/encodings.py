"""Feature specs and their vectorised encoding.

A featurizer is a tuple of features, each reading one raw integer or float property per
item (an atom, a bond) and writing either a one-hot block or one scaled value. Encoding
runs over the raw property matrix of many items at once, so its cost is a handful of
numpy calls per chunk of molecules, not per atom.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class OneHot:
    """One-hot over ``choices``, plus a final "unknown" bucket when ``unknown`` is set.

    Without the bucket, a value outside ``choices`` encodes as all zeros (DGL-LifeSci's
    convention, kept for its presets).
    """

    prop: str
    choices: tuple[int, ...]
    unknown: bool = True

    @property
    def width(self) -> int:
        return len(self.choices) + int(self.unknown)


@dataclass(frozen=True)
class Scaled:
    """The raw value times ``scale`` in a single column (booleans give 0/1)."""

    prop: str
    scale: float = 1.0

    @property
    def width(self) -> int:
        return 1


Feature = OneHot | Scaled


def feature_to_dict(feature: Feature) -> dict[str, Any]:
    if isinstance(feature, OneHot):
        return {
            "one_hot": feature.prop,
            "choices": list(feature.choices),
            "unknown": feature.unknown,
        }
    return {"scaled": feature.prop, "scale": feature.scale}


def feature_from_dict(d: dict[str, Any]) -> Feature:
    if "one_hot" in d:
        return OneHot(d["one_hot"], tuple(int(c) for c in d["choices"]), bool(d["unknown"]))
    return Scaled(d["scaled"], float(d["scale"]))


class Encoder:
    """Encodes a raw property matrix ``[n, len(props)]`` into features ``[n, width]``.

    Every one-hot feature gets a lookup table over ``[min(choices) - 1, max(choices) + 1]``
    (values outside are clipped onto the ends, which map to "unknown"); the tables are
    concatenated so that all one-hot columns of all items are found by one fancy index.
    """

    def __init__(self, features: Sequence[Feature], props: Sequence[str]) -> None:
        column = {p: i for i, p in enumerate(props)}
        for f in features:
            if f.prop not in column:
                raise ValueError(f"unknown property {f.prop!r}; known: {', '.join(props)}")
        self.width = sum(f.width for f in features)
        lookup: list[np.ndarray] = []
        onehot_cols, lows, highs, bases = [], [], [], []
        scaled_cols, scaled_out, scales = [], [], []
        offset = base = 0
        for f in features:
            if isinstance(f, OneHot):
                lo, hi = min(f.choices) - 1, max(f.choices) + 1
                # unmatched values go to the unknown column, or to a scratch column past
                # the end (index self.width) that is cut off after encoding
                table = np.full(hi - lo + 1, offset + len(f.choices) if f.unknown else self.width)
                for position, choice in enumerate(f.choices):
                    table[choice - lo] = offset + position
                lookup.append(table)
                onehot_cols.append(column[f.prop])
                lows.append(lo)
                highs.append(hi)
                bases.append(base - lo)
                base += len(table)
            else:
                scaled_cols.append(column[f.prop])
                scaled_out.append(offset)
                scales.append(f.scale)
            offset += f.width
        self._lookup = np.concatenate(lookup) if lookup else np.zeros(0, np.int64)
        self._onehot_cols = np.array(onehot_cols, dtype=np.int64)
        self._lows, self._highs = np.array(lows), np.array(highs)
        self._bases = np.array(bases, dtype=np.int64)
        self._scaled_cols = np.array(scaled_cols, dtype=np.int64)
        self._scaled_out = np.array(scaled_out, dtype=np.int64)
        self._scales = np.array(scales, dtype=np.float32)

    def __call__(self, raw: np.ndarray) -> np.ndarray:
        """Encode ``raw`` (float64 ``[n, n_props]``) into float32 ``[n, width]``."""
        n = raw.shape[0]
        # one flat buffer: row-major features plus one scratch cell at the very end, so
        # the result is a contiguous view and no column is copied afterwards
        flat = np.zeros(n * self.width + 1, dtype=np.float32)
        if len(self._onehot_cols):
            values = raw[:, self._onehot_cols].astype(np.int64)
            np.clip(values, self._lows, self._highs, out=values)
            columns = self._lookup[values + self._bases]
            cells = np.arange(n)[:, None] * self.width + columns
            cells[columns == self.width] = n * self.width  # unmatched, no unknown bucket
            flat[cells] = 1.0
        out = flat[:-1].reshape(n, self.width)
        if len(self._scaled_cols):
            out[:, self._scaled_out] = raw[:, self._scaled_cols] * self._scales
        return out
