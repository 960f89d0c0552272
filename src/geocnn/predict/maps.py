"""Score maps (classification, scalar models): one score per window position, on a regular map.

The map's axes are the grid's, sampled at the window centres (full resolution along axes the
patch does not span — e.g. one score per trace); windows start every ``stride`` of each axis
(:func:`geocnn.predict.plan.map_plan`), so its spacing is stride × the input's. A window without a
live trace scores zero. Cells are gathered a map row (one first-axis index) at a time and written
as rows.

Layouts: a ``.npy`` (or store) map's sidecar gives the cells' inline/crossline numbers, the map's
``spacing`` and ``stride``, and the window centres. A format without channels (SEG-Y) has one
trace per map cell along the trace axes, carrying the headers of the input trace at the cell's
centre, and its samples are the cells along time when there are several (interval stride × dt,
first sample at the first window's centre) — else the score channels (sample k = channel k, first
sample at the window's centre time).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from geocnn.grids.grid import Grid
from geocnn.grids.pending import OutputSpec, PendingOutput
from geocnn.grids.sidecar import number_range
from geocnn.patches import WindowPlan, live_fraction
from geocnn.predict.job import Job, Report
from geocnn.predict.plan import ahead, map_plan, rank_rows
from geocnn.predict.runner import Runner
from geocnn.predict.shared import shared_output
from geocnn.progress import Reporter


@dataclass(frozen=True)
class MapLayout:
    """Where a map's cells go: the output, and whether one cell along time holds the score
    channels as samples (a format without channels)."""

    spec: OutputSpec
    as_samples: bool = False


def map_layout(job: Job, plan: WindowPlan) -> MapLayout:
    """The output of a score map (see the module docstring for the layouts)."""
    grid, shape, steps = job.grid, plan.shape, plan.stride
    side = map_sidecar(grid, plan)
    dt = grid.meta.sample_interval_us
    if job.request.format.channels:  # an array; its sidecar says where each cell sits
        return MapLayout(job.spec(shape=shape, sidecar_extra=side, sample_interval_us=dt * steps[-1] if dt else None))
    positions = tuple(np.meshgrid(*[np.asarray(c) for c in plan.centres[:-1]], indexing="ij"))
    collapsed = "offset" in grid.axes and shape[grid.axes.index("offset")] == 1 \
        and grid.shape[grid.axes.index("offset")] > 1
    traces = {"positions": positions, "clear_offsets": collapsed, "sample_start_ms": side.get("sample_start_ms")}
    if shape[-1] == 1 and job.channels > 1 and not job.request.split_classes:
        return MapLayout(job.spec(channels=1, shape=(*shape[:-1], job.channels), **traces), as_samples=True)
    return MapLayout(job.spec(shape=shape, sample_interval_us=(dt or 1000.0) * steps[-1], **traces))


def map_sidecar(grid: Grid, plan: WindowPlan) -> dict:
    """What a map's sidecar adds: window, stride, centres, the cells' line numbers, the map's spacing."""
    extent, centres, m, steps = plan.geom.extent, plan.centres, grid.meta, plan.stride
    cells = {"window": list(extent), "stride": dict(zip(grid.axes, steps)),
             "centres": {grid.axes[a]: c for a, c in enumerate(centres) if extent[a] > 1 or steps[a] > 1}}
    side: dict = {}
    for axis, key, numbers in (("inline", "ilines", m.ilines), ("crossline", "xlines", m.xlines),
                               ("offset", "offsets", m.offsets)):
        if axis in grid.axes and numbers is not None:
            at = np.asarray(numbers)[centres[grid.axes.index(axis)]]
            cells[key] = [int(v) for v in at]
            side[key] = number_range(at)
    spacing = grid.spacing()
    side["spacing"] = {a: {"value": spacing[a][0] * s, "unit": spacing[a][1]} for a, s in zip(grid.axes, steps)
                       if a in spacing}
    if "sample" in grid.axes:
        dt = m.sample_interval_us or 1000.0
        side["sample_start_ms"] = m.sample_start_ms + centres[-1][0] * dt / 1000.0
    return {**side, "map": cells}


class MapRows:
    """Cells of one map row gathered, then written as a row (the map's first-axis index)."""

    def __init__(self, job: Job, plan: WindowPlan, pending: PendingOutput, as_samples: bool) -> None:
        self.job, self.plan, self.pending, self.as_samples = job, plan, pending, as_samples
        self.live = job.grid.live()
        self.row = np.zeros((job.channels, 1, *plan.shape[1:]), np.dtype(job.output.dtype))
        self.index: int | None = None

    def put(self, key: tuple[int, ...], scores: np.ndarray) -> None:
        """One window's scores (K,) at map cell ``key``."""
        if self.index is not None and key[0] != self.index:
            self.flush()
        self.index = key[0]
        values = self.job.output.convert(scores.reshape(-1, *([1] * len(key))), self.job.trained.target_norm)
        if self.live is not None and live_fraction(self.job.geom, self.live, np.array([self.plan.origin(key)]))[0] == 0:
            values = values * 0  # a window without a live trace
        self.row[(slice(None), 0, *key[1:])] = values.reshape(-1)

    def flush(self) -> None:
        """Write the gathered row (sample k = channel k when the score channels are samples)."""
        if self.index is None:
            return
        row = np.moveaxis(self.row[..., 0], 0, -1)[None] if self.as_samples else self.row
        self.pending.write_rows(self.index, row)
        self.index = None


def predict_map(job: Job, runner: Runner, reporter: Reporter) -> Report:
    """One score per window position (patch/trace models), on a regular map."""
    plan = map_plan(job.geom, job.request.overlap, job.request.stride)
    layout = map_layout(job, plan)
    geom, raw = job.geom, runner.raw is not None

    def read(key: tuple[int, ...]) -> tuple[np.ndarray, None]:
        window = geom.window(plan.origin(key))
        return geom.to_model(job.grid.read_raw(window) if raw else job.grid.read(window)), None

    with shared_output(layout.spec, job.rt) as pending:
        keys = list(plan.indices(range(*rank_rows(plan.shape[0], job.rt, pending.row_block))))
        cells = MapRows(job, plan, pending, layout.as_samples)
        task = reporter.task("predict", total=len(keys), unit="window")
        try:
            for batch in runner.stream(iter(keys), read, ahead([plan], runner.batch)):
                for key, scores in zip(batch.keys, batch.scores.cpu().numpy()):  # a few numbers per window
                    cells.put(key, scores)
                task.advance(len(batch.keys))
            cells.flush()
        finally:
            task.close()
    return Report(Path(pending.path), len(keys), 0, 0.0, [], pending.paths)
