"""Sanity checks with numbers: warnings (logged, and shown by the CLI), never errors.

Each check reads a bounded, seeded sample of traces, so it costs the same on any survey size,
and each message says both numbers it compared, so the user can judge it:

- :func:`check_input` (``geocnn predict``): an input channel whose amplitude scale, measured
  the way the run normalised its training data, is more than :data:`SCALE_RATIO` times larger or
  smaller than the training data's (wrong file, units or gain: the model sees amplitudes it never
  learned); an input whose sampled values are a few integers (a label grid given as seismic).
- :func:`check_target` (``geocnn train``): a regression target that is one of the input files,
  or equals an input channel on every sampled trace (the model would learn the identity).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from geocnn.grids.grid import Grid
from geocnn.grids.normalize import Normalization, sample_positions, statistics

log = logging.getLogger(__name__)

SCALE_RATIO = 3.0  # warn above this ratio of amplitude scales (or below its inverse)
CLASS_LIKE_VALUES = 16  # at most this many distinct integer values looks like labels
MAX_TRACES = 256  # traces sampled per check


def class_like(values: np.ndarray) -> list[float] | None:
    """The distinct values when they are a few (2..16) integers, else None."""
    finite = values[np.isfinite(values)]
    if finite.size == 0 or not np.array_equal(finite, np.round(finite)):
        return None
    distinct = np.unique(finite)
    if not 2 <= len(distinct) <= CLASS_LIKE_VALUES:
        return None
    return [float(v) for v in distinct]


def check_input(grid: Grid, norm: Normalization, max_traces: int = MAX_TRACES, seed: int = 0) -> list[str]:
    """Warnings about an input to predict against the run's training statistics (logged, returned)."""
    positions = sample_positions(grid, max_traces, seed)
    values = grid.read_traces(positions)  # (C, n, samples)
    found = []
    for c, name in enumerate(grid.channel_names):
        v = values[c]
        labels = class_like(v)
        if labels is not None:
            shown = ", ".join(f"{x:g}" for x in labels[:8]) + (" ..." if len(labels) > 8 else "")
            found.append(f"input {name}: the {len(positions)} sampled traces hold only {len(labels)} distinct integer "
                         f"values ({shown}) — this looks like a label grid, not seismic; check the input file")
        if norm.method == "none" or not norm.scale:
            continue
        trained = norm.scale[min(c, len(norm.scale) - 1)]
        _, (scale,) = statistics(v[None], norm.method)
        ratio = scale / trained
        if ratio > SCALE_RATIO or ratio < 1 / SCALE_RATIO:
            found.append(f"input {name}: amplitude scale {scale:.4g} ({norm.method}, {len(positions)} sampled traces) "
                         f"is {ratio:.3g}× the training data's {trained:.4g} — outside [1/{SCALE_RATIO:g}, "
                         f"{SCALE_RATIO:g}]; the model sees amplitudes it never learned (check units, gain or file, or pass "
                         f"--normalize input to use the input's own statistics)")
    for message in found:
        log.warning(message)
    return found


def check_target(inputs: Grid, target: Grid, target_path: str, max_traces: int = MAX_TRACES,
                 seed: int = 0) -> list[str]:
    """Warnings when a regression target is an input (same file, or equal samples on sampled traces)."""
    found = []
    key = target.inputs[0].spec.key  # one file may hold the input and the target as two members (npz, netCDF)
    same = [s.path for s in inputs.inputs if _same_file(s.path, target_path) and s.spec.key == key]
    if same:
        found.append(f"the target {target_path} is the input file {same[0]}: the model would learn to copy its input")
    else:
        positions = sample_positions(inputs, max_traces, seed)
        x, y = inputs.read_traces(positions), target.read_traces(positions)
        for c in range(y.shape[0]):
            equal = [inputs.channel_names[k] for k in range(x.shape[0]) if np.array_equal(x[k], y[c])]
            if equal:
                found.append(f"the target {target_path} equals input {equal[0]} on all {len(positions)} sampled "
                             f"traces ({y.shape[2]} samples each): the model would learn to copy its input")
                break
    for message in found:
        log.warning(message)
    return found


def _same_file(a: str, b: str) -> bool:
    try:
        return Path(a).resolve() == Path(b).resolve() or Path(a).samefile(b)
    except OSError:
        return False
