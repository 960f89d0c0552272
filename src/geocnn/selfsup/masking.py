"""Self-supervised masks: which samples of a patch are hidden, what the network sees in their
place, and the baseline a hidden sample is scored against.

Two kinds, one :class:`Masking` record each (the tasks ``denoise_self`` and ``reconstruct_traces``
point at them):

- **samples** (Noise2Void, Krull et al. 2019): ``ratio`` of the samples become blind spots, each
  replaced by the value of a random neighbour within ``radius`` (or by zero, the normalised
  mean). Random noise cannot be predicted from the neighbours, signal can. With ``axis`` set
  (StructN2V, Broaddus et al. 2020) a line of ``length`` samples along that axis, centred on each
  blind spot, is zeroed too and the replacement neighbour is never taken from that line, so noise
  that is coherent along the axis cannot leak into the prediction. Baseline: the input itself
  (the replaced value).
- **traces**: whole traces are zeroed, ``ratio`` of them, in gaps of ``gap`` adjacent traces along
  ``axis`` (default: the first lateral patch axis). Baselines: linear interpolation along that axis
  between the nearest live traces, and POCS over the patch (:mod:`geocnn.classical.interpolation`).
  Field noise is correlated across neighbouring traces, so a hidden trace's noise can be predicted
  from its live neighbours and a network scored against it learns to copy that noise. With
  ``guard`` > 0, blocks of (2·guard + 1) traces along every lateral axis are hidden too, and only
  the hidden traces with no live trace within ``guard`` are scored: the network learns to predict a
  trace from traces at least guard + 1 away, whose noise is far less correlated with it
  (:mod:`geocnn.selfsup.guardband` predicts the same way).

Only the hidden samples are scored (:class:`geocnn.losses.HiddenLoss`). Arrays here are in model
order, ``x`` (C, *patch) and ``hidden`` (*patch) bool; everything is NumPy, drawn from a
generator the caller seeds per (epoch, index), so a resumed run hides the same samples.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from geocnn.classical.fx import fx_decon_lines
from geocnn.classical.interpolation import pocs_fill
from geocnn.selfsup.blindspots import BlindShape, hide_regions

TIME_AXES = ("sample", "time", "depth", "twt")  # the axis a trace runs along
GUARD_DENSITY = 2.0  # guard blocks cover about this many times mask.ratio of the traces


# ----------------------------------------------------------------------------- blind spots

def blind_spots(shape: tuple[int, ...], ratio: float, rng: np.random.Generator) -> np.ndarray:
    """(k, ndim) distinct positions, k = round(ratio × samples), at least one."""
    n = int(np.prod(shape))
    k = min(n, max(1, round(ratio * n)))
    return np.stack(np.unravel_index(rng.choice(n, k, replace=False), shape), axis=1)


def neighbour_offsets(ndim: int, radius: int, line_axis: int | None = None) -> np.ndarray:
    """(m, ndim) offsets within ``radius`` (a cube), without the centre and, for a structured
    mask, without the offsets along ``line_axis`` (those samples are hidden too)."""
    offs = np.array(list(itertools.product(range(-radius, radius + 1), repeat=ndim)), dtype=np.int64)
    keep = np.any(offs != 0, axis=1)
    if line_axis is not None:
        others = [a for a in range(ndim) if a != line_axis]
        keep &= np.any(offs[:, others] != 0, axis=1) if others else False
    return offs[keep]


def _reflect(pos: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Positions reflected back into the patch (a neighbour beyond the edge mirrors inside)."""
    n = np.asarray(shape) - 1
    pos = np.abs(pos)
    return np.where(pos > n, 2 * n - pos, pos)


def line_positions(spots: np.ndarray, axis: int, length: int, shape: tuple[int, ...]) -> np.ndarray:
    """(j, ndim) positions of the structured line around each blind spot, centre excluded, clipped
    to the patch."""
    half = length // 2
    steps = [t for t in range(-half, length - half) if t != 0]
    if not steps:
        return np.zeros((0, len(shape)), np.int64)
    lines = np.repeat(spots, len(steps), axis=0)
    lines[:, axis] += np.tile(steps, len(spots))
    inside = (lines[:, axis] >= 0) & (lines[:, axis] < shape[axis])
    return lines[inside]


def hide_samples(x: np.ndarray, mask: Any, axes: tuple[str, ...], rng: np.random.Generator
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Noise2Void / StructN2V blind spots: (masked input, hidden) — see the module docstring; with
    ``mask.shape``, blind regions (:mod:`geocnn.selfsup.blindspots`)."""
    if mask.shape is not None:
        return hide_regions(x, BlindShape.parse(mask.shape), mask.ratio, mask.replace, rng)
    shape = x.shape[1:]
    spots = blind_spots(shape, mask.ratio, rng)
    line_axis = axes.index(mask.axis) if mask.axis is not None else None
    masked = x.copy()
    if line_axis is not None:
        line = line_positions(spots, line_axis, mask.length, shape)
        masked[(slice(None), *line.T)] = 0
    if mask.replace == "zero":
        masked[(slice(None), *spots.T)] = 0
    else:
        offs = neighbour_offsets(len(shape), mask.radius, line_axis)
        source = _reflect(spots + offs[rng.integers(len(offs), size=len(spots))], shape)
        masked[(slice(None), *spots.T)] = x[(slice(None), *source.T)]
    hidden = np.zeros(shape, bool)
    hidden[tuple(spots.T)] = True
    return masked, hidden


def input_baseline(masked: np.ndarray, hidden: np.ndarray, axes: tuple[str, ...], mask: Any) -> np.ndarray:
    """Blind spots: what the network was shown there (the input itself) is the trivial prediction."""
    return masked


def fx_axes(axes: tuple[str, ...]) -> tuple[int, int] | None:
    """(sample axis, line axis) of a patch for f-x deconvolution: lines run along the last lateral
    axis (crosslines within an inline, as on a whole cube); None without a sample or lateral axis."""
    time = [i for i, a in enumerate(axes) if a in TIME_AXES]
    lateral = [i for i in range(len(axes)) if i not in time]
    return (time[0], lateral[-1]) if time and lateral else None


def fx_baseline(values: np.ndarray, axes: tuple[str, ...], dt_s: float) -> np.ndarray:
    """Textbook f-x deconvolution of an unmasked patch (C, *patch), each line on its own
    (:func:`fx_axes`); a patch without a sample axis passes unchanged."""
    which = fx_axes(axes)
    if which is None:
        return values
    time, line = which
    x = np.moveaxis(values, time + 1, -1)  # (C, ..., samples)
    done = fx_decon_lines(x, dt_s, axis=line + 1 - (line > time))
    return np.moveaxis(done, -1, time + 1).astype(values.dtype)


# ----------------------------------------------------------------------------- traces

def trace_axes(axes: tuple[str, ...], gap_axis: str | None) -> tuple[int, int]:
    """(time axis, gap axis) of a patch in model order; ValueError names what is missing."""
    time = [i for i, a in enumerate(axes) if a in TIME_AXES]
    if not time:
        raise ValueError(f"the patch spans {', '.join(axes)}: no sample/time axis, so it holds no traces")
    lateral = [i for i in range(len(axes)) if i != time[0]]
    if not lateral:
        raise ValueError("the patch is one trace: there are no neighbouring traces to learn from")
    if gap_axis is None:
        return time[0], lateral[0]
    if gap_axis not in axes or axes.index(gap_axis) == time[0]:
        raise ValueError(f"mask axis {gap_axis!r} is not a lateral axis of the patch "
                         f"({', '.join(axes[i] for i in lateral)})")
    return time[0], axes.index(gap_axis)


def hidden_traces(shape: tuple[int, ...], time: int, gap_axis: int, ratio: float, gap: int,
                  rng: np.random.Generator) -> np.ndarray:
    """Bool (*patch) with whole traces hidden: round(ratio × traces / gap) gaps of ``gap`` adjacent
    traces along ``gap_axis``, never overlapping (slots of ``gap`` from a random offset)."""
    n = shape[gap_axis]
    others = [shape[a] for a in range(len(shape)) if a not in (time, gap_axis)]
    lines = int(np.prod(others)) if others else 1
    slots = n // gap
    k = min(slots * lines, max(1, round(ratio * n * lines / gap)))
    offset = int(rng.integers(0, n - slots * gap + 1))
    chosen = rng.choice(slots * lines, k, replace=False)
    table = np.zeros((n, lines), bool)  # gap axis × the other lateral positions
    for slot, line in zip(chosen // lines, chosen % lines):
        table[offset + slot * gap: offset + (slot + 1) * gap, line] = True
    lateral = [a for a in range(len(shape)) if a != time]
    table = table.reshape((n, *others))
    # table axes: gap axis, then the other lateral axes in order → the patch's lateral order
    order = [gap_axis] + [a for a in lateral if a != gap_axis]
    table = np.transpose(table, np.argsort(order))
    return np.broadcast_to(np.expand_dims(table, time), shape).copy()


def spread_traces(table: np.ndarray, guard: int) -> np.ndarray:
    """Bool over the lateral axes: True within ``guard`` traces of a True along every lateral axis
    at once (a square or cube of 2·guard + 1 traces around each)."""
    out = table.copy()
    n = table.ndim
    for step in itertools.product(range(-guard, guard + 1), repeat=n):
        src = tuple(slice(max(0, -s), m - max(0, s)) for s, m in zip(step, table.shape))
        dst = tuple(slice(max(0, s), m - max(0, -s)) for s, m in zip(step, table.shape))
        out[dst] |= table[src]
    return out


def guard_blocks(shape: tuple[int, ...], time: int, ratio: float, guard: int, rng: np.random.Generator
                 ) -> np.ndarray:
    """Bool (*patch): blocks of 2·guard + 1 traces along every lateral axis around random centres,
    drawn so that the blocks cover about 2 × ``ratio`` of the traces (at least one block)."""
    lateral = tuple(n for a, n in enumerate(shape) if a != time)
    block = (2 * guard + 1) ** len(lateral)
    centres = rng.random(lateral) < GUARD_DENSITY * ratio / block
    if not centres.any():
        centres[tuple(int(rng.integers(n)) for n in lateral)] = True
    return _over_samples(spread_traces(centres, guard), time, shape)


def _over_samples(table: np.ndarray, time: int, shape: tuple[int, ...]) -> np.ndarray:
    """A lateral trace table broadcast along the time axis of the patch."""
    return np.broadcast_to(np.expand_dims(table, time), shape).copy()


def hide_traces(x: np.ndarray, mask: Any, axes: tuple[str, ...], rng: np.random.Generator
                ) -> tuple[np.ndarray, np.ndarray]:
    """Whole traces zeroed in gaps (and guard blocks): (masked input, scored traces)."""
    time, gap_axis = trace_axes(axes, mask.axis)
    shape = x.shape[1:]
    hidden = hidden_traces(shape, time, gap_axis, mask.ratio, mask.gap, rng)
    scored = hidden
    if mask.guard:
        hidden = hidden | guard_blocks(shape, time, mask.ratio, mask.guard, rng)
        live_near = spread_traces(~hidden.any(axis=time), mask.guard)
        scored = hidden & _over_samples(~live_near, time, shape)
    masked = x.copy()
    masked[:, hidden] = 0
    return masked, scored


def unknown_traces(masked: np.ndarray, time: int) -> np.ndarray:
    """Bool (*patch): the traces that read as zero on every channel and sample — hidden ones, and
    dead ones — which a baseline must not treat as recorded."""
    dead = ~np.any(masked != 0, axis=(0, time + 1))
    return _over_samples(dead, time, masked.shape[1:])


def interpolate_traces(masked: np.ndarray, hidden: np.ndarray, axes: tuple[str, ...], mask: Any) -> np.ndarray:
    """Hidden traces filled by linear interpolation along the gap axis between the nearest live
    traces of the same line (the nearest live trace beyond the last one; zero if a line has none)."""
    time, gap_axis = trace_axes(axes, mask.axis)
    return fill_linear(masked, hidden | unknown_traces(masked, time), gap_axis)


def pocs_traces(values: np.ndarray, axes: tuple[str, ...], dt_s: float) -> np.ndarray:
    """POCS over every axis of a masked patch (C, *patch), channel by channel: the traces that read
    as zero (hidden, dead) are filled, the others kept."""
    time, _ = trace_axes(axes, None)
    unknown = unknown_traces(values, time).any(axis=time)
    return np.stack([np.moveaxis(pocs_fill(np.moveaxis(c, time, -1), unknown), -1, time) for c in values])


def fill_linear(values: np.ndarray, hidden: np.ndarray, axis: int) -> np.ndarray:
    """``values`` (C, *shape) with hidden positions replaced by linear interpolation along ``axis``
    (of ``shape``) between the nearest visible positions of the same line."""
    v = np.moveaxis(values, axis + 1, -1)
    h = np.moveaxis(hidden, axis, -1)
    flat_v = v.reshape(v.shape[0], -1, v.shape[-1]).copy()
    flat_h = h.reshape(-1, h.shape[-1])
    index = np.arange(h.shape[-1])
    for row in np.flatnonzero(flat_h.any(axis=1)):
        live = ~flat_h[row]
        gone = flat_h[row]
        for c in range(flat_v.shape[0]):
            line = flat_v[c, row]
            line[gone] = np.interp(index[gone], index[live], line[live]) if live.any() else 0.0
    return np.moveaxis(flat_v.reshape(v.shape), -1, axis + 1)


# ----------------------------------------------------------------------------- the record

@dataclass(frozen=True)
class Masking:
    """How a self-supervised task hides samples and what it is scored against."""

    name: str
    default_ratio: float  # share of samples (or traces) hidden when data.mask.ratio is not given
    hide: Callable[..., tuple[np.ndarray, np.ndarray]]  # (x, mask, axes, rng) → (masked, hidden)
    baseline: Callable[..., np.ndarray]  # (masked, hidden, axes, mask) → the trivial prediction
    clean_whole_patch: bool  # clean-twin SNR over the whole patch from the unmasked input; else hidden only
    baseline_help: str
    check: Callable[..., Any]  # (patch axes, mask, patch) → raises ValueError when the patch cannot be masked so
    fills_traces: bool  # predict fills the missing traces only (live traces pass through); else every sample
    classical: Callable[..., np.ndarray] | None = None  # (patch as predict sees it, axes, dt_s) → the field's own method
    classical_name: str = ""


def _any_patch(axes: tuple[str, ...], mask: Any, patch: tuple[int, ...] | None = None) -> None:
    """Blind spots fit any patch."""


def _trace_patch(axes: tuple[str, ...], mask: Any, patch: tuple[int, ...] | None = None) -> None:
    time, _ = trace_axes(axes, mask.axis)
    if patch is None or not mask.guard:
        return
    narrow = [f"{a} ({n})" for i, (a, n) in enumerate(zip(axes, patch)) if i != time and n < 4 * mask.guard + 2]
    if narrow:
        raise ValueError(f"guard {mask.guard} leaves no live trace around a guard block along {', '.join(narrow)}: "
                         f"the patch needs at least {4 * mask.guard + 2} traces along every lateral axis")


SAMPLES = Masking("samples", 0.02, hide_samples, input_baseline, True,
                  "the input itself (the replaced value on hidden samples; the noisy input against the clean twin)",
                  _any_patch, False, fx_baseline, "f-x deconvolution")
TRACES = Masking("traces", 0.15, hide_traces, interpolate_traces, False,
                 "linear interpolation between the neighbouring live traces, on the same hidden traces", _trace_patch,
                 True, pocs_traces, "POCS")
