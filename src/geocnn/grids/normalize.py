"""Per-channel normalisation, estimated from a bounded random sample of traces.

The statistics are computed once (training) from at most ``max_traces`` live traces drawn with a
fixed seed (of a raster with nodata, only their valid samples: :meth:`~geocnn.grids.grid.Grid.valid`),
and stored as plain numbers in the checkpoint (:meth:`Normalization.to_dict`), so
prediction applies exactly the same numbers.

Methods
-------
``standard``
    center = mean, scale = standard deviation.
``robust``
    center = median, scale = (p99 − p1) / 2 — half the 1st-99th percentile spread, insensitive
    to spikes and dead traces' zeros; for Gaussian data it is about 2.33 standard deviations.
``none``
    center 0, scale 1.

Example
-------
>>> norm = estimate(grid, "robust")            # doctest: +SKIP
>>> x = norm.apply(grid.read(window))          # doctest: +SKIP
>>> Normalization.from_dict(norm.to_dict()) == norm   # doctest: +SKIP
True
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal, get_args

import numpy as np

from geocnn.errors import DataError
from geocnn.grids.grid import Grid

log = logging.getLogger(__name__)

NormalizationMethod = Literal["standard", "robust", "none"]
METHODS: tuple[str, ...] = get_args(NormalizationMethod)
MAX_TRACES = 2000


@dataclass(frozen=True)
class Normalization:
    """``(x - center) / scale`` per channel."""

    method: str
    center: tuple[float, ...]
    scale: tuple[float, ...]
    traces: int = 0  # how many traces the numbers came from
    seed: int = 0

    @property
    def channels(self) -> int:
        return len(self.center)

    def _per_channel(self, values: tuple[float, ...], x: Any, channel_axis: int) -> Any:
        """``values`` shaped to broadcast over ``x`` (NumPy array or torch tensor)."""
        if x.shape[channel_axis] != self.channels:
            raise DataError(f"data has {x.shape[channel_axis]} channels but the normalisation has "
                            f"{self.channels}", fix="use inputs with the channels the model was trained on")
        shape = [1] * x.ndim
        shape[channel_axis] = self.channels
        v = np.asarray(values, dtype=np.float32).reshape(shape)
        # A tensor makes its own copy on its device and dtype: this module stays free of torch.
        return v if isinstance(x, np.ndarray) else x.new_tensor(v)

    def apply(self, x: Any, channel_axis: int = 0) -> Any:
        """Normalised copy of ``x`` shaped ``(C, ...)`` (or channels on ``channel_axis``)."""
        center = self._per_channel(self.center, x, channel_axis)
        return (x - center) / self._per_channel(self.scale, x, channel_axis)

    def invert(self, x: Any, channel_axis: int = 0) -> Any:
        """Undo :meth:`apply`: values back in the data's units."""
        scale = self._per_channel(self.scale, x, channel_axis)
        return x * scale + self._per_channel(self.center, x, channel_axis)

    def to_dict(self) -> dict:
        """Plain str/int/float/list dict (safe for ``torch.load(weights_only=True)``)."""
        return {"method": self.method, "center": [float(v) for v in self.center],
                "scale": [float(v) for v in self.scale], "traces": int(self.traces), "seed": int(self.seed)}

    @classmethod
    def from_dict(cls, d: Any) -> Normalization:
        """Inverse of :meth:`to_dict`; a malformed dict is a DataError."""
        try:
            center = tuple(float(v) for v in d["center"])
            scale = tuple(float(v) for v in d["scale"])
            method = str(d["method"])
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"stored normalisation is malformed ({exc!r})",
                            fix="retrain, or check the checkpoint file") from None
        if method not in METHODS or len(center) != len(scale) or not all(s > 0 for s in scale):
            raise DataError(f"stored normalisation is inconsistent: method {method!r}, "
                            f"{len(center)} centers, {len(scale)} scales")
        return cls(method, center, scale, int(d.get("traces", 0)), int(d.get("seed", 0)))


def sample_positions(grid: Grid, max_traces: int = MAX_TRACES, seed: int = 0) -> np.ndarray:
    """Up to ``max_traces`` distinct live trace positions (flat, C order), sorted, reproducible."""
    rng = np.random.default_rng(seed)
    live = grid.live()
    if live is not None:
        candidates = np.flatnonzero(live)
        if len(candidates) > max_traces:
            candidates = rng.choice(candidates, size=max_traces, replace=False)
        return np.sort(candidates)
    total = int(np.prod(grid.shape[:-1], dtype=np.int64))
    if total <= max_traces:
        return np.arange(total)
    return np.sort(rng.choice(total, size=max_traces, replace=False))


def sample_traces(grid: Grid, max_traces: int = MAX_TRACES, seed: int = 0) -> np.ndarray:
    """float32 ``(channels, n, n_samples)``: a bounded, seeded random sample of live traces."""
    return grid.read_traces(sample_positions(grid, max_traces, seed))


def statistics(values: np.ndarray, method: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel (center, scale) of ``values`` shaped ``(C, ...)``; a zero scale becomes 1."""
    if method not in METHODS:
        raise ValueError(f"unknown normalisation method {method!r}; valid: {', '.join(METHODS)}")
    flat = values.reshape(values.shape[0], -1).astype(np.float64)
    if method == "none" or flat.shape[1] == 0:
        return (0.0,) * flat.shape[0], (1.0,) * flat.shape[0]
    if method == "standard":
        center, scale = flat.mean(axis=1), flat.std(axis=1)
    else:
        p1, p50, p99 = np.percentile(flat, [1, 50, 99], axis=1)
        center, scale = p50, (p99 - p1) / 2
    constant = ~(scale > 0) | ~np.isfinite(scale)
    if constant.any():
        log.warning("channel(s) %s are constant in the sampled traces: scale set to 1",
                    ", ".join(map(str, np.flatnonzero(constant))))
        scale = np.where(constant, 1.0, scale)
    return tuple(float(v) for v in center), tuple(float(v) for v in scale)


def estimate(grid: Grid, method: str = "standard", max_traces: int = MAX_TRACES, seed: int = 0
             ) -> Normalization:
    """Estimate per-channel statistics from at most ``max_traces`` random live traces.

    Parameters
    ----------
    grid
        The (stacked) input grid.
    method
        ``standard`` (mean/std), ``robust`` (median, (p99 − p1)/2) or ``none``.
    max_traces, seed
        Size and seed of the trace sample; memory is ``channels × max_traces × n_samples`` floats.
    """
    positions = sample_positions(grid, max_traces, seed) if method != "none" else np.arange(0)
    values = grid.read_traces(positions) if len(positions) else np.zeros((grid.channels, 0), np.float32)
    valid = grid.valid_traces(positions) if len(positions) else None
    if valid is not None:  # a GeoTIFF's nodata pixels read as zeros: they are no data to learn the scale from
        values = values[:, valid]
    center, scale = statistics(values, method)
    return Normalization(method, center, scale, len(positions), seed)
