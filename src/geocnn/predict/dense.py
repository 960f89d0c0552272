"""Dense prediction (regression, segmentation, denoising, trace filling): blended windows, written row by row.

The windows of every orientation (:mod:`geocnn.predict.plan`) go through the model in order of
their first-axis start; a merger (:mod:`geocnn.predict.blend`) accumulates them, and once no later
window can touch a row it is released, turned into the output (:class:`~geocnn.outputs.Output`),
and written. Dead traces are written as zeros, unless a trace-filling model fills them; then the
live traces are the input as the windows read it (:class:`~geocnn.predict.fill.KeptRows`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from geocnn.grids.grid import Grid
from geocnn.grids.pending import PendingOutput
from geocnn.patches import PatchGeometry, WindowPlan
from geocnn.picking import Picker
from geocnn.predict import blend
from geocnn.predict.blend import Merger, Released
from geocnn.predict.fill import KeptRows
from geocnn.predict.job import Job, Report, picker_for
from geocnn.predict.plan import ahead, dense_plans, merged_windows, orientations, rank_rows
from geocnn.predict.runner import Read, Runner
from geocnn.predict.shared import shared_output
from geocnn.progress import Reporter


@dataclass
class RowSink:
    """Released rows → the output's values → the pending output."""

    job: Job
    pending: PendingOutput
    merger: Merger
    live: np.ndarray | None  # dead traces written as zeros (None: none dead, or a fill fills them)
    kept: KeptRows | None  # the input's live traces, written back as read
    picker: Picker | None = None  # --picks: the peaks of the released probability rows

    def keep(self, origin: tuple[int, ...], block: np.ndarray | None) -> None:
        if self.kept is not None and block is not None:
            self.kept.put(origin, block)

    def write(self, released: Released | None) -> bool:
        """Write released rows (True), or nothing was released (False)."""
        if released is None:
            return False
        first, scores = released
        n = scores.shape[1]
        values = self.job.output.convert(scores, self.job.trained.target_norm)
        if self.live is not None:
            values = self.merger.zero_dead(values, self.live[first:first + n])
        values = self.merger.host(values)
        if self.kept is not None:
            values = self.job.fill.compose(first, values, self.kept.take(first, n))
        if self.picker is not None:
            self.picker.add(first, np.asarray(values))
        self.pending.write_rows(first, values)
        return True


def predict_dense(job: Job, runner: Runner, reporter: Reporter) -> Report:
    """Blend the windows of every orientation into the output, one finished slab of rows at a time."""
    req, grid = job.request, job.grid
    geoms = orientations(job.geom, job.trained.patch_axes, job.trained.cfg.model.dims, req.both_orientations)
    plans = dense_plans(geoms, req.overlap, req.blend)
    with shared_output(job.spec(), job.rt) as pending:
        rows = rank_rows(grid.shape[0], job.rt, pending.row_block)
        merger = blend.merger_for(job.rt.device, grid.shape, job.scores, plans, rows)
        sink = RowSink(job, pending, merger, grid.live() if job.fill is None else None, _kept(job, merger),
                       picker_for(job))
        total = sum(p.count(rows) for p in plans)
        task = reporter.task("predict", total=total, unit="window")
        try:
            for batch in runner.stream(merged_windows(plans, rows), _reader(job, plans, runner.raw is not None),
                                       ahead(plans, runner.batch)):
                for (p, origin), scores, kept in zip(batch.keys, merger.batch(batch.scores), batch.carried):
                    if sink.write(merger.release(origin[0])):
                        # Rows before this window are final: let their input pages leave this process
                        # (mapped pages count in its memory; the reader maps the file again).
                        grid.release()
                    merger.aggregate(p, origin, merger.grid_layout(plans[p].geom, scores))
                    sink.keep(origin, kept)
                task.advance(len(batch.keys))
            sink.write(merger.finalize())
        finally:
            task.close()
    picks = sink.picker.write(req.picks, req.force) if sink.picker is not None and job.rt.main else None
    picked = tuple(sink.picker.picks) if sink.picker is not None else ()
    return Report(Path(pending.path), total, merger.nbytes, 0.0, [], pending.paths, picks=picks, picked=picked)


def _kept(job: Job, merger: Merger) -> KeptRows | None:
    """Where a trace-filling model keeps the live input until its rows are written (None: nothing kept)."""
    if job.fill is None or not job.fill.keep_live:
        return None
    return KeptRows(job.grid.shape, job.grid.channels, merger.cap, merger.base)


def _reader(job: Job, plans: list[WindowPlan], raw: bool) -> Read:
    """key (plan index, origin) → (the model's block, the input as read when live traces are kept)."""
    fill = job.fill

    def read(key: tuple[int, tuple[int, ...]]) -> tuple[np.ndarray, Any]:
        p, origin = key
        block = read_window(job.grid, plans[p].geom, origin, raw)
        if fill is None:
            return plans[p].geom.to_model(block), None
        # hidden traces are set in the input's units, before normalisation
        return plans[p].geom.to_model(fill.hide(block, origin)), block if fill.keep_live else None

    return read


def read_window(grid: Grid, geom: PatchGeometry, origin: tuple[int, ...], raw: bool = False) -> np.ndarray:
    """(C, *extent) input window (float32, or the stored words when ``raw``); axes shorter than the
    window are reflect-padded (padding copies values, so raw words pad as their floats would)."""
    ext = geom.extent
    window = tuple(slice(o, min(o + e, n)) for o, e, n in zip(origin, ext, grid.shape))
    block = grid.read_raw(window) if raw else grid.read(window)
    pad = [(0, 0)] + [(0, e - (w.stop - w.start)) for w, e in zip(window, ext)]
    if any(p[1] for p in pad):
        mode = "reflect" if all(block.shape[i + 1] > p[1] for i, p in enumerate(pad[1:]) if p[1]) else "symmetric"
        block = np.pad(block, pad, mode=mode)
    return block
