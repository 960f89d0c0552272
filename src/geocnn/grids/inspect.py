"""What ``geocnn inspect`` shows: a JSON-able description of each input file."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from geocnn.grids.grid import Grid, open_grid, open_stack, stack_mismatch
from geocnn.grids.normalize import sample_traces
from geocnn.grids.sidecar import number_range
from geocnn.grids.spec import InputSpec

# --------------------------------------------------------------------------------------------
# What `geocnn inspect` shows
# --------------------------------------------------------------------------------------------

def describe(grid: Grid, stats_traces: int = 200, seed: int = 0) -> dict:
    """A JSON-able description of a grid: format, shape, axes, ranges, value statistics."""
    m = grid.meta
    info: dict[str, Any] = {
        "path": grid.sources[0] if len(grid.sources) == 1 else list(grid.sources),
        "format": m.format,
        "kind": m.kind,
        "shape": list(grid.shape),
        "axes": list(grid.axes),
        "channels": grid.channels,
        "channel_names": list(grid.channel_names),
        "sample_interval_us": m.sample_interval_us,
        "sample_start_ms": m.sample_start_ms,
        "n_traces": m.n_traces,
        "dead_traces": m.dead_traces,
        "sample_format": m.sample_format,
        "endian": m.endian,
        "ilines": number_range(m.ilines),
        "xlines": number_range(m.xlines),
        "offsets": number_range(m.offsets),
        "spacing": {a: {"value": v, "unit": u} for a, (v, u) in grid.spacing().items()},
    }
    values = sample_traces(grid, stats_traces, seed)
    if values.size:
        p1, p99 = np.percentile(values, [1, 99])
        info["stats"] = {"traces_sampled": int(values.shape[1]), "min": float(values.min()),
                         "max": float(values.max()), "mean": float(values.mean()),
                         "std": float(values.std()), "p1": float(p1), "p99": float(p99)}
    return info


def inspect_inputs(specs: Sequence[InputSpec | str | os.PathLike], stats_traces: int = 200,
                   stack: bool = False) -> list[dict]:
    """Describe each input; with several, also say whether each stacks with the first.

    With ``stack``, the inputs are opened as one stacked grid, as training does (a geometry
    mismatch is then an error naming the file), and described together.
    """
    if stack:
        return [describe(open_stack(specs), stats_traces)]
    grids = [open_grid(s) for s in specs]
    out = [describe(g, stats_traces) for g in grids]
    if len(grids) > 1:
        for g, info in zip(grids, out):
            problem = stack_mismatch(grids[0], g)
            info["stackable"] = problem is None
            info["stack_problem"] = problem
    return out
