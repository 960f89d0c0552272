"""Which windows a prediction computes: every set of windows comes from :func:`geocnn.patches.plan_windows`.

Dense models (regression, segmentation): windows tile the grid with the requested overlap (the
last window of each axis is aligned to the end, so every sample is covered; a grid smaller than
the window is reflect-padded), one plan per orientation (``--both-orientations``: inline and
crossline sections of a 3D volume). Patch/trace models: one regular plan whose windows start
every ``stride`` samples/lines of each axis (``--stride``; default 1 along axes the patch does not
span, the overlap's step along those it does), so a score map's spacing is stride × the input's.

Windows are visited in order of their first-axis start (what the mergers' ring buffer needs);
under torchrun each process takes a contiguous range of first-axis rows (:func:`rank_rows`).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Mapping, Sequence

import numpy as np

from geocnn import device
from geocnn.errors import ConfigError, DataError
from geocnn.grids.grid import Grid
from geocnn.patches import PatchGeometry, WindowPlan, default_stride, patch_geometry, plan_windows
from geocnn.predict.request import Stride

SWAP = {"crossline": "inline", "inline": "crossline"}  # the other orientation of a 2D section


def geometry(grid: Grid, size: tuple[int, ...], patch_axes: tuple[str, ...], dense: bool) -> PatchGeometry:
    """Windows along the (input-named) patch axes; dense models pad a grid smaller than the window."""
    small = [f"{a} {grid.shape[grid.axes.index(a)]} < {n}" for a, n in zip(patch_axes, size)
             if grid.shape[grid.axes.index(a)] < n]
    if small and not dense:
        raise DataError(f"the grid is smaller than the model's patch ({', '.join(small)})", where=grid.sources[0],
                        fix="a patch/trace classifier needs whole patches")
    idx = tuple(grid.axes.index(a) for a in patch_axes)
    return PatchGeometry(grid.axes, grid.shape, idx, tuple(size))


def orientations(geom: PatchGeometry, trained_axes: tuple[str, ...], dims: int, both: bool) -> list[PatchGeometry]:
    """The geometry, and with ``both`` the same sections in the other orientation (inline ↔ crossline)."""
    if not both:
        return [geom]
    if dims != 2 or not (set(trained_axes) & set(SWAP)) or any(a not in geom.grid_axes for a in SWAP):
        raise ConfigError("--both-orientations is for 2D models trained on inline or crossline sections of a 3D volume")
    other = tuple(SWAP.get(a, a) for a in trained_axes)
    return [geom, patch_geometry(geom.grid_axes, geom.grid_shape, geom.size, other, None)]


def dense_plans(geoms: Sequence[PatchGeometry], overlap: float, blend: str) -> list[WindowPlan]:
    """The tiling of each orientation, with its blend weights."""
    return [plan_windows(g, overlap=overlap, blend=blend) for g in geoms]


def map_plan(geom: PatchGeometry, overlap: float = 0.0, stride: Stride | None = None) -> WindowPlan:
    """The regular windows of a score map: every step of :func:`map_steps` along each axis, while they fit.

    Examples
    --------
    >>> geom = PatchGeometry(("inline", "crossline", "sample"), (5, 40, 100), (1, 2), (16, 64))
    >>> plan = map_plan(geom, stride={"inline": 2, "crossline": 8, "sample": 12})
    >>> plan.stride, plan.shape, plan.centres[1]
    ((2, 8, 12), (3, 4, 4), [8, 16, 24, 32])
    """
    return plan_windows(geom, overlap=overlap, stride=map_steps(geom, overlap, stride))


def map_steps(geom: PatchGeometry, overlap: float, stride: Stride | None) -> tuple[int, ...]:
    """``--stride`` resolved per grid axis; default 1 off the patch, the overlap's step along it."""
    axes, default = geom.grid_axes, default_stride(geom, overlap)
    if stride is None:
        return default
    if isinstance(stride, int):
        return (stride,) * len(axes)
    if isinstance(stride, Mapping):
        unknown = [a for a in stride if a not in axes]
        if unknown:
            raise ConfigError(f"--stride names {', '.join(unknown)}, not an axis of the input ({', '.join(axes)})",
                              fix="use the input's axis names, e.g. --stride inline=2,crossline=4")
        return tuple(stride.get(a, d) for a, d in zip(axes, default))
    if len(stride) != len(axes):
        raise ConfigError(f"--stride needs one step, or one per input axis ({', '.join(axes)}), got {len(stride)}",
                          fix=f"e.g. --stride {','.join(map(str, default))}")
    return tuple(stride)


def merged_windows(plans: Sequence[WindowPlan], rows: tuple[int, int]) -> Iterator[tuple[int, tuple[int, ...]]]:
    """(plan index, origin) of the windows of all plans touching ``rows``, in order of their first-axis start."""
    def tagged(p: int, plan: WindowPlan) -> Iterator[tuple[int, int, tuple[int, ...]]]:
        for origin in plan.windows(rows):
            yield origin[0], p, origin

    iters = [tagged(p, plan) for p, plan in enumerate(plans)]
    for _, p, origin in heapq.merge(*iters, key=lambda t: (t[0], t[1])):
        yield p, origin


def rank_rows(n: int, rt: device.Runtime, block: int = 1) -> tuple[int, int]:
    """This process's first-axis rows, in multiples of the output's chunk rows (``block``), so that
    processes writing a chunked store never share a chunk."""
    blocks = -(-n // block)
    per = -(-blocks // rt.world_size) * block
    return min(rt.rank * per, n), min((rt.rank + 1) * per, n)


def ahead(plans: Sequence[WindowPlan], batch: int) -> int:
    """Batches the reader may run ahead: one slab of rows (the windows sharing a first-axis start)."""
    per_slab = max(int(np.prod(p.shape[1:], dtype=np.int64)) for p in plans)
    return max(2, -(-per_slab // batch))
