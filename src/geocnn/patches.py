"""Patches: plan windows over a grid, then read them (training) or tile and blend them (prediction).

A :class:`PatchGeometry` says which grid axes a model patch spans (``patch_axes``, in the model's
axis order) and its size; the other grid axes are held at one position. So a 2D model reads
inline sections (crossline × sample) of a 3D cube, a 1D model reads traces, a 3D model sub-cubes.

Plan, then apply (as PyLops' ``patch2d_design`` → ``Patch2D``): :func:`plan_windows` is the one
place windows are planned — a :class:`WindowPlan` of one geometry inside one block of the grid,
with the regular tiling (window starts per axis) and the separable blend weights per axis.
Training draws its windows inside a plan's bounds (:func:`sample_origins`, :func:`fixed_origins`),
dense prediction accumulates the tiling's weighted windows, score maps give one value per window;
:meth:`PatchGeometry.read` extracts a window.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

import numpy as np

from geocnn.errors import ConfigError, DataError

# The grid axes a 2D section spans, in model-axis order (config's ``data.section`` reads this too).
SectionName = Literal["inline", "crossline", "time"]
SECTION_AXES: dict[SectionName, tuple[str, str]] = {"inline": ("crossline", "sample"), "crossline": ("inline", "sample"),
                "time": ("inline", "crossline")}
BLENDS = ("gaussian", "linear", "none")


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


# ----------------------------------------------------------------------------- the window plan

Region = tuple[tuple[int, int], ...]  # [lo, hi) per grid axis


def axis_step(size: int, overlap: float) -> int:
    """Step between window starts that shares about ``overlap`` (0..1) of each window: at least 1."""
    return max(1, int(round(size * (1 - overlap))))


def axis_starts(n: int, size: int, overlap: float) -> list[int]:
    """Window starts covering [0, n) with about ``overlap`` (0..1) of each window shared.

    The last window is aligned to the end, so every sample is covered; a window larger than
    ``n`` gives one start (readers pad it). E.g. ``axis_starts(11, 4, 0.25)`` → [0, 3, 6, 7].
    """
    if n <= size:
        return [0]
    starts = list(range(0, n - size + 1, axis_step(size, overlap)))
    if starts[-1] != n - size:
        starts.append(n - size)
    return starts


def axis_weights(n: int, blend: str) -> np.ndarray:
    """float32 weights of one window along one axis: ``gaussian`` (σ = n/8, as MONAI), ``linear``
    (tent) or ``none`` (uniform). Peak 1 and strictly positive, so every covered sample gets a weight."""
    x = np.arange(n, dtype=np.float64) - (n - 1) / 2
    if blend == "gaussian":
        w = np.exp(-0.5 * (x / max(n / 8.0, 1e-6)) ** 2)
    elif blend == "linear":
        w = 1.0 - np.abs(x) / (n / 2 + 0.5)
    else:
        w = np.ones(n)
    return np.maximum(w / w.max(), 1e-3).astype(np.float32)


@dataclass(frozen=True, eq=False)
class WindowPlan:
    """The windows of one geometry inside one block of the grid.

    ``starts`` is the regular tiling: window starts per grid axis (every position on axes the
    patch does not span); the windows are their product, visited in first-axis order.
    ``weights`` are the 1D blend weights per grid axis (length = extent); a window's weight is
    their outer product, and ``sums`` — per grid axis, over the whole grid — hold Σ of the 1D
    weights of the windows covering each sample, so the weight sum at any sample is a product
    of 1D sums (separable weights on a product tiling) and needs no buffer. ``stride`` is the step
    per grid axis of a regular plan (a score map's), None for a tiling.
    """

    geom: PatchGeometry
    region: Region
    starts: tuple[tuple[int, ...], ...]
    weights: tuple[np.ndarray, ...]
    sums: tuple[np.ndarray, ...]
    stride: tuple[int, ...] | None = None

    @property
    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Lowest and highest (inclusive) origin per grid axis of a window inside ``region``."""
        lo = np.array([r[0] for r in self.region], dtype=np.int64)
        hi = np.array([r[1] - e for r, e in zip(self.region, self.geom.extent)], dtype=np.int64)
        return lo, hi

    @cached_property
    def weight(self) -> np.ndarray:
        """float32 weight of one window in grid-window layout (``geom.extent``)."""
        out = self.weights[0]
        for w in self.weights[1:]:
            out = np.multiply.outer(out, w)
        return out.astype(np.float32)

    @property
    def shape(self) -> tuple[int, ...]:
        """Windows per grid axis (the shape of a score map: one value per window)."""
        return tuple(len(s) for s in self.starts)

    @property
    def centres(self) -> list[list[int]]:
        """Window centres per grid axis (where a score map's values sit)."""
        return [[s + e // 2 for s in st] for st, e in zip(self.starts, self.geom.extent)]

    def origin(self, index: Sequence[int]) -> tuple[int, ...]:
        """Origin of the window with this index into the tiling (one per grid axis)."""
        return tuple(self.starts[a][k] for a, k in enumerate(index))

    def first(self, rows: tuple[int, int] | None = None) -> list[int]:
        """Indices of the first-axis starts whose windows touch ``rows`` (all when None)."""
        ext0 = self.geom.extent[0]
        return [i for i, s in enumerate(self.starts[0]) if rows is None or (s < rows[1] and s + ext0 > rows[0])]

    def indices(self, first: Sequence[int]) -> Iterator[tuple[int, ...]]:
        """Tiling indices with these first-axis indices, in first-axis order."""
        rest = np.stack(np.meshgrid(*[np.arange(len(s)) for s in self.starts[1:]], indexing="ij"), -1).reshape(
            -1, len(self.starts) - 1) if len(self.starts) > 1 else np.zeros((1, 0), np.int64)
        for i in first:
            for r in rest:
                yield (int(i), *(int(v) for v in r))

    def windows(self, rows: tuple[int, int] | None = None) -> Iterator[tuple[int, ...]]:
        """Origins in first-axis order; only windows touching ``rows`` when given."""
        for index in self.indices(self.first(rows)):
            yield self.origin(index)

    def count(self, rows: tuple[int, int] | None = None) -> int:
        return len(self.first(rows)) * int(np.prod(self.shape[1:], dtype=np.int64))


def plan_windows(geom: PatchGeometry, region: Sequence[tuple[int, int]] | None = None, overlap: float = 0.0,
                 blend: str = "none", stride: Sequence[int] | None = None) -> WindowPlan:
    """Plan the windows of ``geom`` inside ``region`` (default: the whole grid).

    Along axes the patch spans, windows tile the region with about ``overlap`` shared
    (:func:`axis_starts`); along the others there is one window per position. With ``stride``
    (one step per grid axis) windows start every step instead, while they fit — none is moved to
    the end, so a score map's cells are evenly spaced. Numpy only.

    Examples
    --------
    >>> geom = PatchGeometry(("inline", "sample"), (3, 11), (1,), (4,))
    >>> plan_windows(geom, overlap=0.25).starts
    ((0, 1, 2), (0, 3, 6, 7))
    >>> plan_windows(geom, stride=(2, 3)).starts
    ((0, 2), (0, 3, 6))
    """
    region = tuple((0, n) for n in geom.grid_shape) if region is None else tuple(tuple(r) for r in region)
    starts, weights, sums = [], [], []
    for a, (n, e, (lo, hi)) in enumerate(zip(geom.grid_shape, geom.extent, region)):
        if stride is not None:
            st = list(range(lo, hi - e + 1, stride[a]))
        else:
            st = list(range(lo, hi)) if e == 1 else [lo + s for s in axis_starts(hi - lo, e, overlap)]
        w = np.ones(1, np.float32) if e == 1 else axis_weights(e, blend)
        total = np.zeros(max(n, st[-1] + e if st else n), np.float64)
        for s in st:  # Σ of the 1D weights of the windows covering each sample
            total[s:s + e] += w
        starts.append(tuple(st))
        weights.append(w)
        sums.append(total[:n])
    regular = tuple(int(v) for v in stride) if stride is not None else None
    return WindowPlan(geom, region, tuple(starts), tuple(weights), tuple(sums), regular)


def default_stride(geom: PatchGeometry, overlap: float) -> tuple[int, ...]:
    """A score map's step per grid axis when none is asked for: 1 off the patch, the overlap's step along it."""
    return tuple(1 if e == 1 else axis_step(e, overlap) for e in geom.extent)


# ----------------------------------------------------------------------------- split

@dataclass(frozen=True)
class Split:
    """Train and validation blocks along one grid axis, with a gap between them."""

    axis: int
    train: tuple[int, int]
    val: tuple[int, int]
    gap: int

    def region(self, geom: PatchGeometry, which: str) -> Region:
        lo_hi = self.train if which == "train" else self.val
        return tuple(lo_hi if a == self.axis else (0, n) for a, n in enumerate(geom.grid_shape))

    def plan(self, geom: PatchGeometry, which: str) -> WindowPlan:
        """The windows of the ``train`` or ``val`` block."""
        return plan_windows(geom, self.region(geom, which))


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

def live_fraction(geom: PatchGeometry, live: np.ndarray | None, origins: np.ndarray) -> np.ndarray:
    """Share of live traces in each window (1 when every trace exists)."""
    if live is None:
        return np.ones(len(origins))
    ext = geom.extent[: live.ndim]
    out = np.empty(len(origins))
    for i, o in enumerate(origins):
        out[i] = live[tuple(slice(int(s), int(s) + e) for s, e in zip(o[: live.ndim], ext))].mean()
    return out


def fitting_centres(plan: WindowPlan, centres: np.ndarray) -> np.ndarray:
    """The rows of ``centres`` (grid positions) on which a window can be centred inside ``plan``'s region.

    Balanced sampling draws only these: a centre in the validation block or the gap would leak
    it, and one near the region's edge, clipped, would pile windows up on the last start.
    """
    lo, hi = plan.bounds
    start = np.asarray(centres, dtype=np.int64).reshape(-1, len(lo)) - np.array([e // 2 for e in plan.geom.extent])
    return np.asarray(centres).reshape(-1, len(lo))[np.all((start >= lo) & (start <= hi), axis=1)]


ValidWindow = Callable[[tuple[slice, ...]], "np.ndarray | None"]
"""A window of grid slices → its per-sample mask (True = data), or None when every sample holds data."""
CENTRE_TRIES = 1000  # draws of windows whose centre must hold data before the region is taken for empty


def valid_windows(geom: PatchGeometry, valid: ValidWindow, origins: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per window: does its centre sample hold data, and the share of its samples that do."""
    centre_ok, share = np.ones(len(origins), bool), np.ones(len(origins))
    half = tuple(e // 2 for e in geom.extent)
    for i, o in enumerate(origins):
        mask = valid(geom.window(o))
        if mask is not None:
            centre_ok[i], share[i] = bool(mask[half]), float(mask.mean())
    return centre_ok, share


def sample_origins(plan: WindowPlan, n: int, rng: np.random.Generator,
                   live: np.ndarray | None = None, min_live: float = 0.0,
                   centres: np.ndarray | None = None, centred_share: float = 0.0,
                   valid: ValidWindow | None = None) -> np.ndarray:
    """``n`` random window origins inside ``plan``'s region, int64 (n, grid ndim).

    A ``centred_share`` of them are centred on rows of ``centres`` (positions of a rare class)
    whose window fits in the region (:func:`fitting_centres`), the rest uniform. Windows with
    fewer than ``min_live`` live traces (or, with a per-sample mask ``valid``, valid samples) are
    drawn again (up to a bound; then the last draw is kept). A window whose centre sample is
    missing (``valid``) is always drawn again: a missing sample is never a patch centre.
    """
    geom = plan.geom
    lo, hi = plan.bounds
    if np.any(hi < lo):
        raise ConfigError("the patch does not fit in the sampling region", fix="use a smaller patch")
    out = np.empty((n, len(lo)), dtype=np.int64)
    todo = np.arange(n)
    half = np.array([e // 2 for e in geom.extent])
    if centres is not None:
        centres = fitting_centres(plan, centres)
    for attempt in range(CENTRE_TRIES):
        k = len(todo)
        cand = rng.integers(lo, hi + 1, size=(k, len(lo)))
        if centres is not None and len(centres) and centred_share > 0:
            pick = rng.random(k) < centred_share
            if pick.any():
                c = centres[rng.integers(0, len(centres), size=int(pick.sum()))]
                cand[pick] = c - half
        out[todo] = cand
        if (live is None or min_live <= 0) and valid is None:
            return out
        bad = np.zeros(k, bool)
        share_counts = attempt < 20  # the share of live data is a preference, given up after 20 draws
        if share_counts and live is not None and min_live > 0:
            bad |= live_fraction(geom, live, cand) < min_live
        if valid is not None:
            centre_ok, share = valid_windows(geom, valid, cand)
            bad |= ~centre_ok | ((share < min_live) if share_counts else False)
        todo = todo[bad]
        if not len(todo):
            return out
        if valid is None and attempt >= 19:
            return out
    raise DataError(f"no window of the sampling region is centred on data after {CENTRE_TRIES} draws "
                    "(nodata or masked pixels cover almost all of it)",
                    fix="check the input's nodata value, or move data.split so each block holds data")


def fixed_origins(plan: WindowPlan, n: int, seed: int, live: np.ndarray | None = None,
                  min_live: float = 0.0, valid: ValidWindow | None = None) -> np.ndarray:
    """Validation windows: the same ``n`` origins every epoch (and on resume)."""
    return sample_origins(plan, n, np.random.default_rng([seed, 7919]), live, min_live, valid=valid)
