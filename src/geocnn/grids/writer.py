"""Outputs: SEG-Y with the source's headers, or ``.npy`` with a JSON sidecar, written in parts.

Writing is split in three steps so that prediction can write slab by slab, and several processes
(torchrun ranks) can fill disjoint parts of one output:

1. :func:`prepare` (one process, e.g. rank 0) creates the complete output as a temporary file in the
   destination folder and returns a small, picklable :class:`PendingOutput` (send it to the other
   ranks, e.g. with ``torch.distributed.broadcast_object_list``);
2. any process calls :meth:`PendingOutput.open` and :meth:`OutputWriter.write` for its windows;
3. :meth:`PendingOutput.commit` (one process, after a barrier) renames the file into place;
   :meth:`PendingOutput.abort` removes it instead.

SEG-Y outputs copy the source's textual, binary (and extended textual) headers, and every trace
header in bulk (NumPy copies of the 240-byte header column, 16 MB of file at a time — never
one header at a time in Python); samples are zero until written, as IEEE float (format code 5)
in the source's byte order. When the sample count or interval differs from the source, the
binary header and every trace header say so (one vectorised assignment per chunk).

Outputs that do not line up trace for trace with the source take a :class:`TraceSelection`:
which source trace's headers each output trace carries, in output order.

- Pre-stack input read with offsets (angles) as channels, one output channel: a post-stack
  output, one trace per bin, carrying the headers of the bin's **nearest-offset live trace**
  (smallest ``|offset|``; the near angle stack for angle gathers). The offset field (bytes
  37–40) and the offset byte the input was read with are zeroed, and the binary header's
  traces-per-ensemble (3213) and ensemble fold (3227) say 1, so segyio and interpretation
  software open it as a regular post-stack cube. Every other header byte is the chosen trace's.
- Score maps (patch classifiers, scalar models): one trace per map cell, carrying the headers
  of the trace at the cell's centre (see :mod:`geocnn.predict`).

Values are converted with an explicit ``astype('>f4')`` (or ``'<f4'``) into a new array and
written through a memory map, never through segyio: segyio writing into an IBM-float file
converts the caller's array in place, a trap this path cannot fall into.

Example
-------
>>> pending = prepare("pred.sgy", like=grid, force=True)     # doctest: +SKIP
>>> with pending.open() as out:                               # doctest: +SKIP
...     out.write((slice(0, 10), slice(None), slice(None)), values)
>>> pending.commit()                                          # doctest: +SKIP
"""

from __future__ import annotations

import abc
import contextlib
import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from segyio import BinField, TraceField

from geocnn import atomic
from geocnn.errors import DataError, OutputExistsError
from geocnn.grids import storeout
from geocnn.grids.formats import FORMATS
from geocnn.grids.formats import output_format as output_format
from geocnn.grids.grid import Grid
from geocnn.grids.segy import (
    BIN_FORMAT,
    BIN_INTERVAL,
    BIN_SAMPLES,
    HEADER_BYTES,
    TR_DELAY,
    TR_INTERVAL,
    TR_SAMPLES,
    Geometry,
    SegyFile,
)
from geocnn.grids.sidecar import make as make_sidecar
from geocnn.grids.sidecar import path_for as sidecar_path
from geocnn.grids.sources import SegySource

log = logging.getLogger(__name__)

CHUNK_BYTES = 16 << 20  # file span mapped per bulk header copy (bounds resident memory)
OFFSET_FIELD = int(TraceField.offset)
BIN_TRACES_PER_ENSEMBLE = int(BinField.Traces) - 1
BIN_ENSEMBLE_FOLD = int(BinField.EnsembleFold) - 1
_FIELD_STARTS = sorted({int(v) for v in TraceField.enums()} | {HEADER_BYTES + 1})


@dataclass(frozen=True, eq=False)
class TraceSelection:
    """Which source trace's headers each output trace carries (stacked outputs, score maps).

    ``numbers`` are source trace numbers shaped like the output's trace axes (``-1``: no trace
    there — nothing is written for it); output traces follow them in C order. ``clear`` lists
    trace header fields (segyio byte numbers) zeroed in every output trace; ``one_fold`` sets the
    binary header's traces per ensemble and ensemble fold to 1 (a post-stack output).
    """

    numbers: np.ndarray
    clear: tuple[int, ...] = ()
    one_fold: bool = False

    def geometry(self) -> Geometry:
        """Output trace numbers per output position: C order over the live positions."""
        live = self.numbers >= 0
        table = np.where(live, np.cumsum(live.reshape(-1)).reshape(live.shape) - 1, -1)
        axes = tuple(f"axis{a}" for a in range(self.numbers.ndim))
        return Geometry("selection", axes, tuple(self.numbers.shape), table=table.astype(np.int64))


def _offset_bytes(like: Grid) -> tuple[int, ...]:
    """The offset field and the offset byte the SEG-Y input was read with (zeroed when stacking)."""
    spec = next(s.spec for s in like.inputs if isinstance(s, SegySource))
    return tuple(sorted({OFFSET_FIELD, int(spec.offset)}))


def trace_selection(like: Grid, positions: tuple[np.ndarray, ...] | None = None,
                    clear_offsets: bool = False) -> TraceSelection:
    """Source traces for output traces at grid trace positions (default: every position).

    ``positions`` holds one integer index array per grid trace axis (all but ``sample``), all of
    the output's trace shape. On a pre-stack input read with offsets as channels, each position
    takes the live trace of smallest ``|offset|`` in its bin and the offset fields are cleared;
    ``clear_offsets`` clears them for other inputs too (a map collapsing an offset axis).
    """
    template = like.segy_template()
    if template is None:
        raise DataError("a SEG-Y output takes its headers from a SEG-Y input, and this input has none",
                        where=like.sources[0], fix="write a .npy output instead")
    src, channel_axis_name = template
    if positions is None:
        positions = tuple(np.indices(like.shape[:-1]))
    positions = tuple(np.asarray(p, dtype=np.int64) for p in positions)
    geo = src.geometry
    if channel_axis_name is None:
        numbers = geo.numbers_at(positions)
        return TraceSelection(numbers, _offset_bytes(like) if clear_offsets else ())
    axis = geo.axes.index(channel_axis_name)
    order = np.argsort(np.abs(geo.offsets), kind="stable") if geo.offsets is not None else \
        np.arange(geo.shape[axis])
    numbers = np.full(positions[0].shape, -1, dtype=np.int64)
    for k in order:  # nearest offset first; a dead trace leaves the bin to the next offset
        at = list(positions)
        at.insert(axis, np.full(positions[0].shape, k, dtype=np.int64))
        candidate = geo.numbers_at(tuple(at))
        numbers = np.where(numbers < 0, candidate, numbers)
    return TraceSelection(numbers, _offset_bytes(like), one_fold=True)


@dataclass(frozen=True, eq=False)
class PendingOutput:
    """An output being written: a complete temporary file beside its final ``path``.

    Small and picklable (paths, shapes, the SEG-Y trace geometry), so it can be sent to other
    processes, which :meth:`open` it to write their parts.
    """

    path: str
    tmp: str
    kind: str  # segy | npy
    axes: tuple[str, ...]  # spatial axes of the output
    shape: tuple[int, ...]  # spatial shape (sample axis may differ from the source's)
    channels: int
    dtype: str  # NumPy dtype of the stored values ('>f4'/'<f4' for SEG-Y)
    force: bool = False
    # SEG-Y only: where traces are and which trace each position writes.
    data_offset: int = 0
    n_traces: int = 0
    geometry: Geometry | None = None
    channel_axis: int | None = None  # trace axis the channels are written along (offsets)
    sidecar: dict = field(default_factory=dict)

    @property
    def row_block(self) -> int:
        """Processes split first-axis rows in multiples of this: any split writes disjoint bytes of a file."""
        return 1

    def open(self) -> OutputWriter:
        """A writer for this output, usable in any process (each maps only what it writes)."""
        if not Path(self.tmp).exists():
            raise DataError("temporary output is gone (committed, aborted or removed)", where=self.tmp)
        return SegyWriter(self) if self.kind == "segy" else NpyWriter(self)

    def commit(self) -> Path:
        """Flush and rename the temporary file onto :attr:`path` (and write the sidecar)."""
        final = atomic.check_new(self.path, self.force)
        with open(self.tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        if self.kind == "npy":
            atomic.write_json(sidecar_path(final), self.sidecar, force=True)
        os.replace(self.tmp, final)
        log.info("wrote %s", final)
        return final

    def abort(self) -> None:
        """Remove the temporary file; the final path is untouched."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.tmp)


def class_paths(out: str | os.PathLike, classes: Sequence[int]) -> list[Path]:
    """One output name per class: ``pred.sgy`` → ``pred.class-0.sgy``, ``pred.class-1.sgy`` ..."""
    out = Path(out)
    return [out.with_name(f"{out.stem}.class-{k}{out.suffix}") for k in classes]


@dataclass(frozen=True, eq=False)
class PendingSet:
    """Several outputs written and committed together, channel ``c`` into ``parts[c]`` (one file per
    class). All or none: a failed commit removes the files already renamed into place."""

    parts: tuple[PendingOutput, ...]

    @property
    def path(self) -> str:
        return self.parts[0].path

    @property
    def paths(self) -> list[Path]:
        return [Path(p.path) for p in self.parts]

    @property
    def row_block(self) -> int:
        """Rows split between processes in multiples of every part's block."""
        return math.lcm(*(p.row_block for p in self.parts))

    @property
    def tmp(self) -> str:
        """The temporary files, one a line (what other torchrun ranks attach to)."""
        return "\n".join(p.tmp for p in self.parts)

    def open(self) -> OutputWriter:
        return SetWriter(self)

    def commit(self) -> Path:
        done: list[Path] = []
        try:
            for p in self.parts:  # every name is checked before any file is renamed
                atomic.check_new(p.path, p.force)
            for p in self.parts:
                done.append(p.commit())
        except BaseException:
            for path in done:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                    sidecar_path(path).unlink()
            self.abort()
            raise
        return Path(self.path)

    def abort(self) -> None:
        for p in self.parts:
            p.abort()


def prepare_set(outs: Sequence[str | os.PathLike], like: Grid, dtype: str = "float32", force: bool = False,
                attach: str | None = None, **options: Any) -> PendingSet:
    """One one-channel output per name (see :func:`prepare` for ``options``); ``attach`` is another
    process's :attr:`PendingSet.tmp`."""
    tmps = attach.split("\n") if attach is not None else [None] * len(outs)
    parts: list[PendingOutput] = []
    try:
        for out, tmp in zip(outs, tmps):
            parts.append(prepare(out, like, 1, dtype, force, attach=tmp, **options))
    except BaseException:
        if attach is None:
            for p in parts:
                p.abort()
        raise
    return PendingSet(tuple(parts))


class OutputWriter(abc.ABC):
    """Writes windows of values into a :class:`PendingOutput`."""

    def __init__(self, pending: PendingOutput) -> None:
        self.pending = pending

    def __enter__(self) -> OutputWriter:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Nothing stays mapped between writes; kept for symmetry and future buffering."""
        return None  # a default: writers that keep nothing mapped have nothing to close

    def _check(self, window: tuple[slice, ...], values: np.ndarray) -> tuple[tuple[slice, ...], np.ndarray]:
        return storeout.fit_window(self.pending.shape, self.pending.channels, window, values)

    @abc.abstractmethod
    def write(self, window: tuple[slice, ...], values: np.ndarray) -> None:
        """Write ``values`` shaped ``(channels, *window sizes)`` (or the window's shape for one channel)."""


class NpyWriter(OutputWriter):
    """Maps just the rows a write touches (per channel), so memory stays at the window's size."""

    def __init__(self, pending: PendingOutput) -> None:
        super().__init__(pending)
        with open(pending.tmp, "rb") as fh:
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                np.lib.format.read_array_header_1_0(fh)
            else:
                np.lib.format.read_array_header_2_0(fh)
            self.offset = fh.tell()  # where the values start
        self.dtype = np.dtype(pending.dtype)

    def write(self, window: tuple[slice, ...], values: np.ndarray) -> None:
        window, values = self._check(window, values)
        p = self.pending
        rows = window[0]
        if rows.stop <= rows.start:
            return
        row_items = int(np.prod(p.shape[1:], dtype=np.int64))
        for c in range(p.channels):
            first_row = c * p.shape[0] + rows.start
            block = np.memmap(p.tmp, dtype=self.dtype, mode="r+",
                              offset=self.offset + first_row * row_items * self.dtype.itemsize,
                              shape=(rows.stop - rows.start, *p.shape[1:]))
            block[(slice(None), *window[1:])] = values[c].astype(self.dtype, copy=False)
            del block


class SegyWriter(OutputWriter):
    """Writes samples of the traces at the window's positions, as IEEE float."""

    def __init__(self, pending: PendingOutput) -> None:
        super().__init__(pending)
        self.dtype = np.dtype(pending.dtype)
        ns = pending.shape[-1]
        self.record = np.dtype([("header", np.uint8, (HEADER_BYTES,)), ("samples", self.dtype, (ns,))])

    def write(self, window: tuple[slice, ...], values: np.ndarray) -> None:
        window, values = self._check(window, values)
        p = self.pending
        for c in range(p.channels):
            trace_window = list(window[:-1])
            if p.channel_axis is not None:
                trace_window.insert(p.channel_axis, slice(c, c + 1))
            numbers = p.geometry.trace_numbers(tuple(trace_window)).reshape(-1)
            block = values[c].reshape(len(numbers), -1)
            live = numbers >= 0
            if not live.any():
                continue
            # A new big/little-endian float32 array: the caller's values are never converted in place.
            self._write_traces(numbers[live], window[-1], block[live].astype(self.dtype))

    def _write_traces(self, numbers: np.ndarray, samples: slice, block: np.ndarray) -> None:
        p = self.pending
        lo, hi = int(numbers.min()), int(numbers.max())
        mm = np.memmap(p.tmp, dtype=self.record, mode="r+", offset=p.data_offset + lo * self.record.itemsize,
                       shape=(hi - lo + 1,))
        mm["samples"][numbers - lo, samples] = block
        del mm


class SetWriter(OutputWriter):
    """Channel ``c`` of each write goes to the set's ``c``-th output."""

    def __init__(self, pending: PendingSet) -> None:
        self.pending = pending
        self.writers = [p.open() for p in pending.parts]

    def write(self, window: tuple[slice, ...], values: np.ndarray) -> None:
        values = np.asarray(values)
        if values.shape[0] != len(self.writers):
            raise ValueError(f"values with {values.shape[0]} channels for {len(self.writers)} outputs")
        for c, w in enumerate(self.writers):
            w.write(window, values[c:c + 1])


# --------------------------------------------------------------------------------------------
# prepare
# --------------------------------------------------------------------------------------------

def prepare(out: str | os.PathLike, like: Grid, channels: int = 1, dtype: str = "float32",
            force: bool = False, *, n_samples: int | None = None, sample_interval_us: float | None = None,
            sample_start_ms: float | None = None, channel_names: tuple[str, ...] | None = None,
            shape: tuple[int, ...] | None = None, sidecar_extra: dict | None = None,
            traces: TraceSelection | None = None, attach: str | None = None) -> PendingOutput | storeout.StoreOutput:
    """Create the complete output for a grid shaped like ``like`` in a temporary file.

    Parameters
    ----------
    out
        Final path: ``.sgy``/``.segy`` (needs a SEG-Y input in ``like`` for its headers), ``.npy``, or a
        ``.mdio``/``.zarr`` store (:mod:`geocnn.grids.storeout`).
    like
        The grid the output lines up with (its axes, shape, geometry, metadata).
    channels
        Output channels. SEG-Y takes one, or one per offset when ``like`` used offsets as channels.
    dtype
        ``.npy`` value type (``float32``, ``uint8`` for labels...). SEG-Y is always IEEE float32.
    force
        Replace an existing output (checked now and again at :meth:`PendingOutput.commit`).
    n_samples, sample_interval_us, sample_start_ms
        Output sample axis when it differs from the input's (the headers are rewritten).
    shape
        A spatial shape other than ``like``'s (e.g. a map of window scores); its axes keep
        ``like``'s names and ``sidecar_extra`` says how positions map back. A SEG-Y output of
        another trace shape needs ``traces``.
    traces
        SEG-Y only: the source trace whose headers each output trace carries (see
        :func:`trace_selection`). Default: trace for trace, or — one channel from a pre-stack
        input read with offsets as channels — one trace per bin (nearest offset, offsets zeroed).
    attach
        The temporary file another process already prepared: describe it without creating
        anything (torchrun ranks writing parts of one output).

    Returns
    -------
    PendingOutput
        Call ``.open().write(window, values)`` (any process), then ``.commit()``.
    """
    fmt = output_format(out)
    if FORMATS[fmt].store:
        shape = tuple(shape) if shape is not None else (*like.shape[:-1], n_samples or like.shape[-1])
        return storeout.prepare(out, like, fmt, shape, channels, dtype, force, sample_interval_us=sample_interval_us,
                                sample_start_ms=sample_start_ms, channel_names=channel_names,
                                extra=sidecar_extra or {}, attach=attach)
    final = atomic.check_new(out, force) if attach is None else Path(out)
    trace_shape = tuple(traces.numbers.shape) if traces is not None else like.shape[:-1]
    if shape is not None and fmt == "segy" and tuple(shape[:-1]) != trace_shape:
        raise DataError(f"an output of shape {'×'.join(map(str, shape))} does not line up trace for trace with "
                        f"the input ({'×'.join(map(str, like.shape))})", where=str(out),
                        fix="write a .npy output (its sidecar says where each value sits)")
    shape = tuple(shape) if shape is not None else (*like.shape[:-1], n_samples or like.shape[-1])
    if fmt == "npy":
        return _prepare_npy(final, like, shape, channels, dtype, force, sample_interval_us, channel_names,
                            sidecar_extra or {}, attach)
    return _prepare_segy(final, like, shape, channels, force, sample_interval_us, sample_start_ms, traces, attach)


def _temp(final: Path) -> Path:
    return atomic.temp_path(final)


def _prepare_npy(final: Path, like: Grid, shape: tuple[int, ...], channels: int, dtype: str, force: bool,
                 sample_interval_us: float | None, channel_names: tuple[str, ...] | None, extra: dict,
                 attach: str | None) -> PendingOutput:
    side = sidecar_path(final)
    if side.exists() and not force and attach is None:
        raise OutputExistsError("the output's JSON sidecar already exists", where=str(side),
                                fix="choose another output name or pass --force")
    axes = like.axes if channels == 1 else ("channel", *like.axes)
    interval = sample_interval_us if sample_interval_us is not None else like.meta.sample_interval_us
    m = like.meta
    names = list(channel_names) if channel_names else [f"channel {c}" for c in range(channels)]
    side_dict = make_sidecar(
        axes=axes, shape=shape if channels == 1 else (channels, *shape), dtype=dtype, channel_names=names,
        sample_interval_us=interval, sample_start_ms=m.sample_start_ms, kind=m.kind, sources=list(like.sources),
        ilines=m.ilines, xlines=m.xlines, offsets=m.offsets, extra=extra)
    if attach is not None:
        return PendingOutput(str(final), attach, "npy", like.axes, shape, channels, str(np.dtype(dtype)), force,
                             sidecar=side_dict)
    tmp = _temp(final)
    try:
        stored = shape if channels == 1 else (channels, *shape)
        created = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.dtype(dtype), shape=stored)
        del created  # header written, values zero (sparse); writers map what they write
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return PendingOutput(str(final), str(tmp), "npy", like.axes, shape, channels, str(np.dtype(dtype)), force,
                         sidecar=side_dict)


def _prepare_segy(final: Path, like: Grid, shape: tuple[int, ...], channels: int, force: bool,
                  sample_interval_us: float | None, sample_start_ms: float | None,
                  traces: TraceSelection | None, attach: str | None) -> PendingOutput:
    template = like.segy_template()
    if template is None:
        raise DataError("a SEG-Y output takes its headers from a SEG-Y input, and this input has none",
                        where=str(final), fix="write a .npy output instead")
    src, channel_axis_name = template
    channel_axis = None
    if traces is None and channel_axis_name is not None:
        wanted = src.geometry.shape[src.geometry.axes.index(channel_axis_name)]
        if channels == 1:  # one value per bin: a post-stack output
            traces = trace_selection(like)
            log.info("%s: one trace per bin from a pre-stack input: headers of each bin's nearest-offset trace, "
                     "offset fields zeroed", final)
        elif channels == wanted:
            channel_axis = src.geometry.axes.index(channel_axis_name)
        else:
            raise DataError(f"a SEG-Y output of this pre-stack input holds one channel per offset ({wanted}) or "
                            f"one trace per bin (one channel), not {channels} channels", where=str(final),
                            fix="write a .npy output, or one SEG-Y per class with --split-classes")
    if channel_axis is None and channels != 1:
        raise DataError(f"a SEG-Y output holds one value per sample, but there are {channels} channels",
                        where=str(final), fix="write a .npy output, or one SEG-Y per class with --split-classes")
    if shape[-1] > 65535:
        raise DataError(f"{shape[-1]} samples per trace do not fit the SEG-Y sample count field (≤ 65535)",
                        where=str(final))
    geometry = src.geometry if traces is None else traces.geometry()
    n_traces = src.layout.n_traces if traces is None else geometry.n_live
    if attach is not None:
        tmp = Path(attach)
    else:
        tmp = _temp(final)
        try:
            _copy_headers(src, tmp, shape[-1], sample_interval_us, sample_start_ms, traces)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    order = ">" if src.layout.endian == "big" else "<"
    return PendingOutput(str(final), str(tmp), "segy", like.axes, shape, channels, order + "f4", force,
                         data_offset=src.layout.data_offset, n_traces=n_traces,
                         geometry=geometry, channel_axis=channel_axis)


def _copy_headers(src: SegyFile, tmp: Path, n_samples: int, sample_interval_us: float | None,
                  sample_start_ms: float | None = None, traces: TraceSelection | None = None) -> None:
    """Textual/binary headers byte for byte, trace headers in bulk, zero samples, IEEE format code.

    With ``traces``, output trace ``i`` carries the header of the ``i``-th selected source trace
    (C order), with the selection's fields zeroed.
    """
    layout = src.layout
    order = ">" if layout.endian == "big" else "<"
    out_trace = HEADER_BYTES + 4 * n_samples
    picked = None if traces is None else traces.numbers[traces.numbers >= 0].reshape(-1)
    n_out = layout.n_traces if picked is None else len(picked)
    with open(src.path, "rb") as fin, open(tmp, "wb") as fout:
        fout.write(fin.read(layout.data_offset))  # textual, binary and extended textual headers
        fout.truncate(layout.data_offset + n_out * out_trace)  # sparse zeros
    resized = n_samples != layout.n_samples
    interval = None
    if sample_interval_us is not None and sample_interval_us != src.sample_interval_us:
        interval = int(round(sample_interval_us))
        if not 0 < interval <= 32767:  # segyio and most readers read the field as signed
            raise DataError(f"sample interval {sample_interval_us:g} µs does not fit the SEG-Y field (at most "
                            "32767 µs as readers read it)", where=str(tmp),
                            fix="use a smaller --stride along the sample axis, or write a .npy output")
    delay = None
    if sample_start_ms is not None and sample_start_ms != src.sample_start_ms:
        delay = int(round(sample_start_ms))
        if not -32768 <= delay <= 32767:
            raise DataError(f"first sample time {sample_start_ms} ms does not fit the SEG-Y field", where=str(tmp))
    with open(tmp, "rb+") as fh:  # binary header: IEEE float, and the new sample axis
        _put(fh, BIN_FORMAT, 5, order)
        if resized:
            _put(fh, BIN_SAMPLES, n_samples, order)
        if interval is not None:
            _put(fh, BIN_INTERVAL, interval, order)
        if traces is not None and traces.one_fold:
            _put(fh, BIN_TRACES_PER_ENSEMBLE, 1, order)
            _put(fh, BIN_ENSEMBLE_FOLD, 1, order)
    clear = traces.clear if traces is not None else ()
    out_record = np.dtype([("header", np.uint8, (HEADER_BYTES,)), ("samples", order + "f4", (n_samples,))])
    chunk = max(1, CHUNK_BYTES // max(layout.trace_bytes, out_trace))
    for a in range(0, n_out, chunk):
        b = min(a + chunk, n_out)
        out_part = np.memmap(tmp, dtype=out_record, mode="r+", offset=layout.data_offset + a * out_trace,
                             shape=(b - a,))
        out_part["header"] = _source_headers(src, a, b, picked)
        if resized or interval is not None or delay is not None or clear:
            raw = out_part["header"]  # (traces, 240) bytes
            if resized:
                raw[:, TR_SAMPLES:TR_SAMPLES + 2] = _word(n_samples, order)
            if interval is not None:
                raw[:, TR_INTERVAL:TR_INTERVAL + 2] = _word(interval, order)
            if delay is not None:
                raw[:, TR_DELAY:TR_DELAY + 2] = _word(delay, order, signed=True)
            for byte in clear:
                raw[:, byte - 1:byte - 1 + _field_width(byte)] = 0
        del out_part


def _source_headers(src: SegyFile, a: int, b: int, picked: np.ndarray | None) -> np.ndarray:
    """(b - a, 240) header bytes of output traces a..b: the same source traces, or the picked ones."""
    layout = src.layout
    lo, hi = (a, b) if picked is None else (int(picked[a:b].min()), int(picked[a:b].max()) + 1)
    part = np.memmap(src.path, dtype=layout.record_dtype, mode="r", offset=layout.data_offset + lo * layout.trace_bytes,
                     shape=(hi - lo,))
    headers = np.array(part["header"] if picked is None else part["header"][picked[a:b] - lo])
    del part
    return headers


def _field_width(byte: int) -> int:
    """Bytes of the trace header field starting at ``byte`` (segyio numbering, 1-based)."""
    i = _FIELD_STARTS.index(byte)
    return _FIELD_STARTS[i + 1] - byte


def _word(value: int, order: str, signed: bool = False) -> np.ndarray:
    """A 2-byte header word as bytes, in the file's byte order."""
    return np.frombuffer(np.array(value, order + ("i2" if signed else "u2")).tobytes(), dtype=np.uint8)


def _put(fh: Any, pos: int, value: int, order: str) -> None:
    fh.seek(pos)
    fh.write(_word(value, order).tobytes())


def write_array(out: str | os.PathLike, like: Grid, values: np.ndarray, *, force: bool = False,
                dtype: str = "float32", channel_names: tuple[str, ...] | None = None) -> Path:
    """Write a whole in-memory array shaped like ``like`` (``(C, *shape)`` or ``shape``) in one go."""
    values = np.asarray(values)
    channels = 1 if values.shape == like.shape else values.shape[0]
    pending = prepare(out, like, channels, dtype, force, n_samples=values.shape[-1],
                      channel_names=channel_names)
    try:
        with pending.open() as w:
            w.write(tuple(slice(0, n) for n in pending.shape), values)
        return pending.commit()
    except BaseException:
        pending.abort()
        raise
