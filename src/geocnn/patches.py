"""Patches: plan windows over a grid, then read them (training) or tile and blend them (prediction).

A :class:`PatchGeometry` says which grid axes a model patch spans (``patch_axes``, in the model's
axis order) and its size; the other grid axes are held at one position. So a 2D model reads
inline sections (crossline × sample) of a 3D cube, a 1D model reads traces, a 3D model sub-cubes.

Plan, then apply: :func:`sample_origins` and :func:`patch_design` return window origins;
:meth:`PatchGeometry.read` extracts them; :func:`blend_weights` gives the per-window weights
that prediction accumulates, so overlapping windows leave no seams.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from geocnn.errors import ConfigError

SECTION_AXES = {"inline": ("crossline", "sample"), "crossline": ("inline", "sample"),
                "time": ("inline", "crossline")}


@dataclass(frozen=True)
class PatchGeometry:
    """Which grid axes a patch spans and how big it is.

    ``patch_axes`` are indices of grid axes in model-axis order; ``size`` one per model axis.
    An origin holds one start per grid axis.
    """

    grid_axes: tuple[str, ...]
    grid_shape: tuple[int, ...]
    patch_axes: tuple[int, ...]
    size: tuple[int, ...]

    @property
    def fixed_axes(self) -> tuple[int, ...]:
        """Grid axes held at one position per patch."""
        return tuple(a for a in range(len(self.grid_shape)) if a not in self.patch_axes)

    @property
    def extent(self) -> tuple[int, ...]:
        """Window size per grid axis (1 on fixed axes)."""
        ext = [1] * len(self.grid_shape)
        for a, n in zip(self.patch_axes, self.size):
            ext[a] = n
        return tuple(ext)

    @property
    def model_axes(self) -> tuple[str, ...]:
        return tuple(self.grid_axes[a] for a in self.patch_axes)

    def window(self, origin: Sequence[int]) -> tuple[slice, ...]:
        return tuple(slice(int(o), int(o) + e) for o, e in zip(origin, self.extent))

    def to_model(self, block: np.ndarray) -> np.ndarray:
        """(C, *grid window) → (C, *patch) in model-axis order (fixed axes dropped)."""
        block = block.reshape((block.shape[0], *[block.shape[1 + a] for a in sorted(self.patch_axes)]))
        order = np.argsort(np.argsort(self.patch_axes))  # rank of each model axis among sorted ones
        return np.ascontiguousarray(np.transpose(block, (0, *(1 + int(i) for i in order))))

    def to_grid(self, block: np.ndarray) -> np.ndarray:
        """(C, *patch) in model order → (C, *grid window) with size-1 fixed axes: for writing back."""
        order = np.argsort(self.patch_axes)
        moved = np.transpose(block, (0, *(1 + int(i) for i in order)))
        return moved.reshape((block.shape[0], *self.extent))

    def read(self, grid, origin: Sequence[int]) -> np.ndarray:
        """float32 (C, *size) patch at ``origin``."""
        return self.to_model(grid.read(self.window(origin)))


def patch_geometry(grid_axes: Sequence[str], grid_shape: Sequence[int], size: Sequence[int],
                   patch_axes: Sequence[str] | None = None, section: str | None = None,
                   where: str | None = None) -> PatchGeometry:
    """Resolve which grid axes a patch spans; errors name the axes and sizes that do not fit."""
    grid_axes, dims = tuple(grid_axes), len(size)
    if section is not None:
        names = SECTION_AXES[section]
        missing = [n for n in names if n not in grid_axes]
        if missing:
            raise ConfigError(f"section {section} needs axes {', '.join(names)} but the grid has "
                              f"{', '.join(grid_axes)}", where=where, fix="use patch_axes with the grid's axis names")
        patch_axes = names
    if patch_axes is None:
        if dims > len(grid_axes):
            raise ConfigError(f"a {dims}D patch cannot come from a grid with {len(grid_axes)} axes "
                              f"({', '.join(grid_axes)})", where=where, fix="use a model with fewer dims")
        patch_axes = grid_axes[-dims:]
    idx = []
    for name in patch_axes:
        if name not in grid_axes:
            raise ConfigError(f"patch axis '{name}' is not an axis of the grid ({', '.join(grid_axes)})",
                              where=where, fix="use the grid's axis names (geocnn inspect shows them)")
        idx.append(grid_axes.index(name))
    if len(set(idx)) != len(idx):
        raise ConfigError(f"patch_axes repeat an axis: {list(patch_axes)}", where=where)
    for a, n in zip(idx, size):
        if n > grid_shape[a]:
            raise ConfigError(f"patch size {n} along {grid_axes[a]} is larger than the grid ({grid_shape[a]})",
                              where=where, fix=f"use a patch of at most {grid_shape[a]} there")
    return PatchGeometry(grid_axes, tuple(grid_shape), tuple(idx), tuple(size))


# ----------------------------------------------------------------------------- split

@dataclass(frozen=True)
class Split:
    """Train and validation blocks along one grid axis, with a gap between them."""

    axis: int
    train: tuple[int, int]
    val: tuple[int, int]
    gap: int

    def region(self, geom: PatchGeometry, which: str) -> tuple[tuple[int, int], ...]:
        lo_hi = self.train if which == "train" else self.val
        return tuple(lo_hi if a == self.axis else (0, n) for a, n in enumerate(geom.grid_shape))


def make_split(geom: PatchGeometry, axis: str | None, fraction: float, gap: int | str,
               where: str | None = None) -> Split:
    """Hold out the last ``fraction`` of ``axis`` for validation, ``gap`` samples away from training.

    ``gap='auto'`` is the window's extent along the axis — the patch size when the patch spans it,
    one line when it does not (2D sections, traces): no training window then touches a
    validation one.
    """
    name = axis or geom.grid_axes[0]
    if name not in geom.grid_axes:
        raise ConfigError(f"split axis '{name}' is not an axis of the grid ({', '.join(geom.grid_axes)})",
                          where=where)
    a = geom.grid_axes.index(name)
    n, extent = geom.grid_shape[a], geom.extent[a]
    if gap == "auto":
        gap = extent
    n_val = int(round(n * fraction))
    if fraction > 0 and n_val < extent:
        n_val = extent
    n_train = n - n_val - (gap if n_val else 0)
    if n_train < extent:
        raise ConfigError(f"the grid has {n} samples along {name}: too few for a training block of at least "
                          f"{extent}, a gap of {gap} and a validation block of {n_val}", where=where,
                          fix="lower split.fraction or split.gap, use a smaller patch, or split along another axis")
    return Split(a, (0, n_train), (n - n_val, n) if n_val else (n, n), gap if n_val else 0)


# ----------------------------------------------------------------------------- sampling

def origin_bounds(geom: PatchGeometry, region: Sequence[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
    """Lowest and highest (inclusive) origin per grid axis for windows inside ``region``."""
    lo = np.array([r[0] for r in region], dtype=np.int64)
    hi = np.array([r[1] - e for r, e in zip(region, geom.extent)], dtype=np.int64)
    return lo, hi


def live_fraction(geom: PatchGeometry, live: np.ndarray | None, origins: np.ndarray) -> np.ndarray:
    """Share of live traces in each window (1 when every trace exists)."""
    if live is None:
        return np.ones(len(origins))
    ext = geom.extent[: live.ndim]
    out = np.empty(len(origins))
    for i, o in enumerate(origins):
        out[i] = live[tuple(slice(int(s), int(s) + e) for s, e in zip(o[: live.ndim], ext))].mean()
    return out


def sample_origins(geom: PatchGeometry, region: Sequence[tuple[int, int]], n: int, rng: np.random.Generator,
                   live: np.ndarray | None = None, min_live: float = 0.0,
                   centres: np.ndarray | None = None, centred_share: float = 0.0) -> np.ndarray:
    """``n`` random window origins inside ``region``, int64 (n, grid ndim).

    A ``centred_share`` of them are centred on rows of ``centres`` (positions of a rare class),
    the rest uniform. Windows with fewer than ``min_live`` live traces are drawn again (up to
    a bound; then the best ones are kept).
    """
    lo, hi = origin_bounds(geom, region)
    if np.any(hi < lo):
        raise ConfigError("the patch does not fit in the sampling region", fix="use a smaller patch")
    out = np.empty((n, len(lo)), dtype=np.int64)
    todo = np.arange(n)
    half = np.array([e // 2 for e in geom.extent])
    for _ in range(20):
        k = len(todo)
        cand = rng.integers(lo, hi + 1, size=(k, len(lo)))
        if centres is not None and len(centres) and centred_share > 0:
            pick = rng.random(k) < centred_share
            if pick.any():
                c = centres[rng.integers(0, len(centres), size=int(pick.sum()))]
                cand[pick] = np.clip(c - half, lo, hi)
        out[todo] = cand
        if live is None or min_live <= 0:
            return out
        bad = live_fraction(geom, live, cand) < min_live
        todo = todo[bad]
        if not len(todo):
            return out
    return out


def fixed_origins(geom: PatchGeometry, region: Sequence[tuple[int, int]], n: int, seed: int,
                  live: np.ndarray | None = None, min_live: float = 0.0) -> np.ndarray:
    """Validation windows: the same ``n`` origins every epoch (and on resume)."""
    return sample_origins(geom, region, n, np.random.default_rng([seed, 7919]), live, min_live)


# ----------------------------------------------------------------------------- tiling (prediction)

def axis_starts(n: int, size: int, overlap: float) -> list[int]:
    """Window starts covering [0, n) with about ``overlap`` (0..1) of each window shared."""
    if n <= size:
        return [0]
    step = max(1, int(round(size * (1 - overlap))))
    starts = list(range(0, n - size + 1, step))
    if starts[-1] != n - size:
        starts.append(n - size)
    return starts


def patch_design(shape: Sequence[int], size: Sequence[int], overlap: float) -> list[tuple[int, ...]]:
    """Every window origin of a regular tiling of ``shape`` by ``size`` (windows may exceed the
    shape only where the shape is smaller than the window; readers pad those)."""
    per_axis = [axis_starts(n, s, overlap) for n, s in zip(shape, size)]
    grid = np.stack(np.meshgrid(*per_axis, indexing="ij"), axis=-1).reshape(-1, len(shape))
    return [tuple(int(v) for v in row) for row in grid]


def blend_weights(size: Sequence[int], blend: str) -> np.ndarray:
    """Per-sample weights of one window: ``gaussian`` (σ = size/8, as MONAI), ``linear`` (tent),
    or ``none`` (uniform). Strictly positive, so every covered sample gets a weight."""
    axes = []
    for n in size:
        x = np.arange(n, dtype=np.float64) - (n - 1) / 2
        if blend == "gaussian":
            w = np.exp(-0.5 * (x / max(n / 8.0, 1e-6)) ** 2)
        elif blend == "linear":
            w = 1.0 - np.abs(x) / (n / 2 + 0.5)
        else:
            w = np.ones(n)
        axes.append(np.maximum(w / w.max(), 1e-3))
    out = axes[0]
    for w in axes[1:]:
        out = np.multiply.outer(out, w)
    return out.astype(np.float32)
