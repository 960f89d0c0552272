"""Trace reconstruction at prediction: which traces are missing, and the live ones kept as read.

A ``reconstruct_traces`` model fills the missing traces only: those the grid's dead-trace mask
(irregular SEG-Y) or a ``--mask`` file marks. They are hidden in the model's input (set to the
normalisation centre, so they are zero once normalised, as hidden traces were in training), and
every other trace is written back exactly as read (``--all`` writes the model's prediction
everywhere instead). The live traces travel with the windows that read them (:class:`KeptRows`),
so the input is read once: files → windows → model → rows written.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from geocnn.errors import ConfigError, DataError
from geocnn.grids import npyfile
from geocnn.grids.grid import Grid
from geocnn.predict.blend import ring_index, window_part
from geocnn.predict.trained import Trained

log = logging.getLogger(__name__)

MASK_KINDS = "biuf"  # bool, integers and floats holding 0/1; not text, complex, objects or records


@dataclass(frozen=True)
class TraceFill:
    """Which traces are missing, and whether live ones are kept."""

    missing: np.ndarray  # bool over the grid's trace axes (all but the last): True = missing
    keep_live: bool  # live traces pass through unchanged (not --all)
    center: np.ndarray  # (C,) the run's normalisation centre: a trace set to it is zero once normalised

    def hide(self, block: np.ndarray, origin: Sequence[int]) -> np.ndarray:
        """A copy of a (C, *window) grid-order block in the input's units with its missing traces set
        to the normalisation centre (padding is never missing)."""
        window = tuple(slice(o, o + n) for o, n in zip(origin, block.shape[1:-1]))
        miss = self.missing[window]
        pad = [(0, n - m) for n, m in zip(block.shape[1:-1], miss.shape)]
        miss = np.pad(miss, pad) if any(p[1] for p in pad) else miss
        block = block.copy()
        block[:, miss] = self.center.astype(block.dtype)[:, None, None]
        return block

    def compose(self, first: int, values: np.ndarray, read: np.ndarray) -> np.ndarray:
        """Rows ``first ..`` of the output: predictions on missing traces, the input as ``read`` elsewhere."""
        miss = self.missing[first:first + values.shape[1]][None, ..., None]
        return np.where(miss, values, read).astype(values.dtype)


class KeptRows:
    """The input's rows as the windows read them, in a ring over first-axis rows like the merger's,
    until their prediction is released (then :meth:`take` hands them over)."""

    def __init__(self, shape: tuple[int, ...], channels: int, ring_rows: int, base: int) -> None:
        self.shape, self.cap, self.base = tuple(shape), ring_rows, base
        self.buf = np.zeros((channels, ring_rows, *shape[1:]), np.float32)

    def put(self, origin: Sequence[int], block: np.ndarray) -> None:
        """Keep a (C, *extent) grid-order window as read (every window of a row holds the same values)."""
        valid, first, rest = window_part(origin, block.shape[1:], self.shape, self.base)
        part = block[(slice(None), *valid)]
        self.buf[(slice(None), ring_index(first, part.shape[1], self.cap), *rest)] = part

    def take(self, first: int, n: int) -> np.ndarray:
        """Rows ``first .. first + n`` (a copy); later rows may reuse their ring rows."""
        self.base = first + n
        return self.buf[:, ring_index(first, n, self.cap)].copy()


def trace_fill(trained: Trained, grid: Grid, mask: str | Path | None, fill_all: bool) -> TraceFill | None:
    """What a reconstruct_traces model fills: the ``--mask`` file (True = missing) or the dead traces."""
    masking = trained.cfg.task.masking
    if masking is None or not masking.fills_traces:
        if mask is not None or fill_all:
            raise ConfigError(f"--mask and --all are for trace-reconstruction models, not {trained.cfg.task.name}",
                              fix="leave them out")
        return None
    shape = grid.shape[:-1]
    if mask is None:
        live = grid.live()
        missing = np.zeros(shape, bool) if live is None else ~live
    else:
        missing = read_mask(mask, shape)
    if not missing.any() and not fill_all:
        log.warning("no trace is missing (no dead traces%s): the output equals the input",
                    "" if mask is None else " in the mask")
    log.info("filling %d of %d traces%s", int(missing.sum()), missing.size,
             "; --all: every trace is the model's prediction" if fill_all else "")
    return TraceFill(missing, keep_live=not fill_all, center=np.asarray(trained.norm.center, np.float32))


def read_mask(path: str | Path, shape: tuple[int, ...]) -> np.ndarray:
    """A --mask file: a .npy of bools (or 0/1) over the grid's trace positions, True = missing.

    The header is checked against the grid first (shape, a bool/number dtype, the bytes it
    declares against the bytes the file holds), so a damaged or foreign header never allocates.
    """
    fix = "give a .npy file of booleans (True = missing trace), one per trace position"
    head = npyfile.read_header(path)
    if head.shape != tuple(shape):
        raise DataError(f"the mask has shape {head.shape} but the grid has {tuple(shape)} trace positions",
                        where=str(path), fix="give one value per trace (all grid axes but the sample axis)")
    if head.dtype.kind not in MASK_KINDS:
        raise DataError(f"the mask holds {head.dtype} values", where=str(path), fix=fix)
    if head.value_bytes != head.declared_bytes():
        state = "truncated" if head.value_bytes < head.declared_bytes() else "longer than its header says"
        raise DataError(f"the mask file is {state}: {head.value_bytes:,} bytes of values, its header declares "
                        f"{head.declared_bytes():,}", where=str(path), fix=fix)
    try:
        mask = np.load(path, allow_pickle=False)
    except npyfile.NPY_ERRORS as exc:
        raise DataError(f"cannot read the mask: {exc}", where=str(path), fix=fix) from None
    if mask.dtype != bool and not np.isin(mask, (0, 1)).all():
        raise DataError("the mask holds values other than 0/1", where=str(path),
                        fix="give booleans: True (1) = missing trace")
    return mask.astype(bool)
