"""Survey coordinates of a grid's axes: inline/crossline/offset numbers, sample times in ms.

What :meth:`geocnn.grids.grid.Grid.to_xarray` labels its dimensions with, read from what the file
says (SEG-Y trace headers, a MDIO store's coordinates, a geocnn ``.npy`` sidecar's number ranges);
an axis the file says nothing about is numbered by index. The other way, :func:`numbers_of` takes a
coordinate back to inline/crossline/offset numbers when it holds integers, so an array given in
memory carries them into the output's sidecar. NumPy only (no xarray: the caller holds it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from geocnn.grids.sources import GridMeta

# axis -> the GridMeta field and sidecar key holding its numbers
NUMBERED = {"inline": "ilines", "crossline": "xlines", "offset": "offsets"}
SAMPLE = "sample"


@dataclass(frozen=True)
class Coordinate:
    """One axis's coordinate values, with the units and long name a plot labels it with."""

    axis: str
    values: np.ndarray
    units: str = ""
    long_name: str = ""

    @property
    def attrs(self) -> dict[str, str]:
        """xarray/CF attributes: ``units`` and ``long_name`` (only those known)."""
        return {k: v for k, v in (("units", self.units), ("long_name", self.long_name)) if v}


def from_range(r: Mapping | None, count: int) -> np.ndarray | None:
    """The numbers of a sidecar's ``{"first", "last", "step", "count"}`` range, when evenly spaced
    and as many as the axis has (a score map's coarser axis keeps its index)."""
    if not isinstance(r, Mapping) or r.get("step") is None or r.get("count") != count:
        return None
    return int(r["first"]) + int(r["step"]) * np.arange(count, dtype=np.int64)


def coordinates(axes: tuple[str, ...], shape: tuple[int, ...], meta: GridMeta,
                described: Mapping | None = None) -> tuple[Coordinate, ...]:
    """One :class:`Coordinate` per axis, from ``meta`` and else the ``described`` sidecar/attributes.

    Examples
    --------
    >>> meta = GridMeta("post-stack", "segy", sample_interval_us=4000, sample_start_ms=100.0,
    ...                 ilines=np.array([10, 11]), xlines=np.array([20, 22, 24]))
    >>> [(c.axis, c.values.tolist(), c.units) for c in coordinates(("inline", "crossline", "sample"), (2, 3, 3), meta)]
    [('inline', [10, 11], ''), ('crossline', [20, 22, 24], ''), ('sample', [100.0, 104.0, 108.0], 'ms')]
    """
    return tuple(_coordinate(a, n, meta, described or {}) for a, n in zip(axes, shape))


def _coordinate(axis: str, n: int, meta: GridMeta, described: Mapping) -> Coordinate:
    if axis in NUMBERED:
        known = getattr(meta, NUMBERED[axis])
        values = np.asarray(known) if known is not None and len(known) == n else \
            from_range(described.get(NUMBERED[axis]), n)
        if values is not None:
            return Coordinate(axis, values, long_name=f"{axis} number")
    if axis == SAMPLE and meta.sample_interval_us:
        step = meta.sample_interval_us / 1000.0
        return Coordinate(axis, meta.sample_start_ms + step * np.arange(n), "ms", "time")
    return Coordinate(axis, np.arange(n), long_name=f"{axis} index")


def numbers_of(values: np.ndarray) -> np.ndarray | None:
    """A coordinate as integer inline/crossline/offset numbers, None when it holds other values."""
    v = np.asarray(values)
    if v.ndim != 1 or v.size == 0 or v.dtype.kind not in "iuf" or not np.all(np.isfinite(v)):
        return None
    return v.astype(np.int64) if np.all(v == np.round(v)) else None


def sample_axis_of(values: np.ndarray) -> tuple[float, float] | None:
    """(interval in µs, start in ms) of evenly spaced sample times in ms; None otherwise."""
    v = np.asarray(values, dtype=np.float64) if np.asarray(values).dtype.kind in "iuf" else None
    if v is None or v.ndim != 1 or len(v) < 2:
        return None
    steps = np.diff(v)
    if not np.allclose(steps, steps[0], rtol=1e-6, atol=1e-9) or steps[0] <= 0:
        return None
    return float(steps[0]) * 1000.0, float(v[0])
