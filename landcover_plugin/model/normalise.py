"""The one input normalisation, shared by training and inference (and written into exported graphs'
metadata): raw band values → ``((x - low) / (high - low) - mean) / std`` per band, float32."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray


class Normaliser:
    """``Normaliser(value_range, mean, std)(x)``: raw ``(B, C, H, W)`` (any real dtype) → float32 network
    input. ``value_range`` ``(low, high)`` raw values map onto [0, 1]; ``mean``/``std`` (C floats or
    ``None`` for 0 and 1) then standardise per band. One new array per call, the operations done in
    place in the order above (so training and inference round alike)."""

    def __init__(self, value_range: Sequence[float], mean: Sequence[float] | None, std: Sequence[float] | None,
                 bands: int | None = None):
        self.low, self.high = (float(v) for v in value_range)
        n = bands or len(mean or std or [0.0])
        self.mean = np.asarray(mean if mean is not None else [0.0] * n, np.float32)[:, None, None]
        self.std = np.asarray(std if std is not None else [1.0] * n, np.float32)[:, None, None]
        self._identity = mean is None and std is None

    def __call__(self, x: NDArray[Any]) -> NDArray[np.float32]:
        out = np.subtract(x, self.low, dtype=np.float32)
        out /= self.high - self.low
        if not self._identity:
            out -= self.mean
            out /= self.std
        return out


def normalise(x: NDArray[Any], value_range: Sequence[float], mean: Sequence[float] | None = None,
              std: Sequence[float] | None = None) -> NDArray[np.float32]:
    """``Normaliser(value_range, mean, std)(x)``, for one-off calls."""
    return Normaliser(value_range, mean, std, x.shape[-3])(x)
