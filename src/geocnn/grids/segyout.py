"""SEG-Y outputs with the source's headers, written in parts (:class:`~geocnn.grids.pending.PendingOutput`).

:meth:`SegyOutput.prepare` copies the source's textual, binary (and extended textual) headers, and
every trace header in bulk (NumPy copies of the 240-byte header column, 16 MB of file at a time —
never one header at a time in Python); samples are zero until written, as IEEE float (format
code 5) in the source's byte order. When the sample count or interval differs from the source,
the binary header and every trace header say so (one vectorised assignment per chunk).

Outputs that do not line up trace for trace with the source take a :class:`TraceSelection`:
which source trace's headers each output trace carries, in output order.

- Pre-stack input read with offsets (angles) as channels, one output channel: a post-stack
  output, one trace per bin, carrying the headers of the bin's **nearest-offset live trace**
  (smallest ``|offset|``; the near angle stack for angle gathers). The offset field (bytes
  37–40) and the offset byte the input was read with are zeroed, and the binary header's
  traces-per-ensemble (3213) and ensemble fold (3227) say 1, so segyio and interpretation
  software open it as a regular post-stack cube. Every other header byte is the chosen trace's.
- Score maps (patch classifiers, scalar models): one trace per map cell, carrying the headers
  of the trace at the cell's centre (``OutputSpec.positions``; see :mod:`geocnn.predict.maps`).

Values are converted with an explicit ``astype('>f4')`` (or ``'<f4'``) into a new array and
written through a memory map, never through segyio: segyio writing into an IBM-float file
converts the caller's array in place, a trap this path cannot fall into.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from segyio import BinField, TraceField

from geocnn import atomic
from geocnn.errors import DataError
from geocnn.grids.grid import Grid
from geocnn.grids.pending import FileOutput, OutputSpec, check_present, fit_window
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
from geocnn.grids.sources import SegySource

log = logging.getLogger(__name__)

BIN_START = 3200  # the binary header follows the textual one
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
class SegyOutput(FileOutput):
    """A SEG-Y being written: where the traces are, and which trace each output position writes.
    ``shape`` is the spatial shape (the sample axis may differ from the source's); ``dtype`` is ``'>f4'``
    or ``'<f4'``, IEEE float in the source's byte order."""

    data_offset: int
    n_traces: int
    geometry: Geometry
    channel_axis: int | None = None  # trace axis the channels are written along (offsets)

    @classmethod
    def prepare(cls, spec: OutputSpec, attach: str | None = None) -> SegyOutput:
        final = atomic.check_new(spec.path, spec.force) if attach is None else Path(spec.path)
        src, traces, channel_axis = _layout(spec, final)
        geometry = src.geometry if traces is None else traces.geometry()
        n_traces = src.layout.n_traces if traces is None else geometry.n_live
        if attach is not None:
            tmp = Path(attach)
        else:
            tmp = atomic.temp_path(final)
            try:
                _copy_headers(src, tmp, spec.shape[-1], spec.sample_interval_us, spec.sample_start_ms, traces)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
        order = ">" if src.layout.endian == "big" else "<"
        return cls(str(final), str(tmp), spec.shape, spec.channels, order + "f4", spec.force,
                   src.layout.data_offset, n_traces, geometry, channel_axis)

    def write(self, window: tuple[slice, ...], values: np.ndarray) -> None:
        """Write the samples of the traces at the window's positions, as IEEE float."""
        check_present(self.tmp)
        window, values = fit_window(self.shape, self.channels, window, values)
        for c in range(self.channels):
            trace_window = list(window[:-1])
            if self.channel_axis is not None:
                trace_window.insert(self.channel_axis, slice(c, c + 1))
            numbers = self.geometry.trace_numbers(tuple(trace_window)).reshape(-1)
            block = values[c].reshape(len(numbers), -1)
            live = numbers >= 0
            if not live.any():
                continue
            # A new big/little-endian float32 array: the caller's values are never converted in place.
            self._write_traces(numbers[live], window[-1], block[live].astype(self.dtype))

    def _write_traces(self, numbers: np.ndarray, samples: slice, block: np.ndarray) -> None:
        record = np.dtype([("header", np.uint8, (HEADER_BYTES,)), ("samples", self.dtype, (self.shape[-1],))])
        lo, hi = int(numbers.min()), int(numbers.max())
        mm = np.memmap(self.tmp, dtype=record, mode="r+", offset=self.data_offset + lo * record.itemsize,
                       shape=(hi - lo + 1,))
        mm["samples"][numbers - lo, samples] = block
        del mm


def _template(like: Grid, where: str) -> tuple[SegyFile, str | None]:
    """The SEG-Y input whose headers the output copies, and the axis read as channels (or None)."""
    template = like.segy_template()
    if template is None:
        raise DataError("a SEG-Y output takes its headers from a SEG-Y input, and this input has none",
                        where=where, fix="write a .npy output instead")
    return template


def _layout(spec: OutputSpec, final: Path) -> tuple[SegyFile, TraceSelection | None, int | None]:
    """The template file, the trace selection (None: trace for trace) and the trace axis channels
    go along (pre-stack offsets), checked against the spec's shape and channels."""
    src, channel_axis_name = _template(spec.like, str(final))
    traces = None
    if spec.positions is not None:
        traces = trace_selection(spec.like, spec.positions, clear_offsets=spec.clear_offsets)
    trace_shape = tuple(traces.numbers.shape) if traces is not None else spec.like.shape[:-1]
    if tuple(spec.shape[:-1]) != trace_shape:
        raise DataError(f"an output of shape {'×'.join(map(str, spec.shape))} does not line up trace for trace with "
                        f"the input ({'×'.join(map(str, spec.like.shape))})", where=str(spec.path),
                        fix="write a .npy output (its sidecar says where each value sits)")
    channel_axis = None
    if traces is None and channel_axis_name is not None:
        wanted = src.geometry.shape[src.geometry.axes.index(channel_axis_name)]
        if spec.channels == 1:  # one value per bin: a post-stack output
            traces = trace_selection(spec.like)
            log.info("%s: one trace per bin from a pre-stack input: headers of each bin's nearest-offset trace, "
                     "offset fields zeroed", final)
        elif spec.channels == wanted:
            channel_axis = src.geometry.axes.index(channel_axis_name)
        else:
            raise DataError(f"a SEG-Y output of this pre-stack input holds one channel per offset ({wanted}) or "
                            f"one trace per bin (one channel), not {spec.channels} channels", where=str(final),
                            fix="write a .npy output, or one SEG-Y per class with --split-classes")
    if channel_axis is None and spec.channels != 1:
        raise DataError(f"a SEG-Y output holds one value per sample, but there are {spec.channels} channels",
                        where=str(final), fix="write a .npy output, or one SEG-Y per class with --split-classes")
    if spec.shape[-1] > 65535:
        raise DataError(f"{spec.shape[-1]} samples per trace do not fit the SEG-Y sample count field (≤ 65535)",
                        where=str(final))
    return src, traces, channel_axis


@dataclass(frozen=True)
class HeaderEdits:
    """What an output changes in the source's headers: the sample axis (count, interval, first time), the
    format code (IEEE float), fields zeroed in every trace header, and a one-fold binary header.
    Every output that carries the source's headers (SEG-Y, MDIO) takes them through here."""

    order: str  # '>' or '<': the source's byte order
    n_samples: int | None = None  # a new sample count (None: the source's)
    interval: int | None = None  # a new sample interval, µs
    delay: int | None = None  # a new first sample time, ms
    clear: tuple[int, ...] = ()
    one_fold: bool = False

    def binary(self, header: bytes) -> bytes:
        """The output's binary header (400 bytes) from the source's."""
        out = bytearray(header)
        edits = {BIN_FORMAT: 5, BIN_SAMPLES: self.n_samples, BIN_INTERVAL: self.interval}
        if self.one_fold:
            edits.update({BIN_TRACES_PER_ENSEMBLE: 1, BIN_ENSEMBLE_FOLD: 1})
        for pos, value in edits.items():
            if value is not None:
                out[pos - BIN_START:pos - BIN_START + 2] = _word(value, self.order).tobytes()
        return bytes(out)

    def traces(self, raw: np.ndarray) -> None:
        """Edit ``raw`` (traces, 240) header bytes in place."""
        if self.n_samples is not None:
            raw[:, TR_SAMPLES:TR_SAMPLES + 2] = _word(self.n_samples, self.order)
        if self.interval is not None:
            raw[:, TR_INTERVAL:TR_INTERVAL + 2] = _word(self.interval, self.order)
        if self.delay is not None:
            raw[:, TR_DELAY:TR_DELAY + 2] = _word(self.delay, self.order, signed=True)
        for byte in self.clear:
            raw[:, byte - 1:byte - 1 + _field_width(byte)] = 0


def header_edits(src: SegyFile, n_samples: int, sample_interval_us: float | None, sample_start_ms: float | None,
                 traces: TraceSelection | None, where: str) -> HeaderEdits:
    """The edits an output of ``n_samples`` per trace (interval, first time) makes to ``src``'s headers;
    DataError when a value does not fit its SEG-Y field."""
    interval = None
    if sample_interval_us is not None and sample_interval_us != src.sample_interval_us:
        interval = int(round(sample_interval_us))
        if not 0 < interval <= 32767:  # segyio and most readers read the field as signed
            raise DataError(f"sample interval {sample_interval_us:g} µs does not fit the SEG-Y field (at most "
                            "32767 µs as readers read it)", where=where,
                            fix="use a smaller --stride along the sample axis, or write a .npy output")
    delay = None
    if sample_start_ms is not None and sample_start_ms != src.sample_start_ms:
        delay = int(round(sample_start_ms))
        if not -32768 <= delay <= 32767:
            raise DataError(f"first sample time {sample_start_ms} ms does not fit the SEG-Y field", where=where)
    return HeaderEdits(">" if src.layout.endian == "big" else "<",
                       n_samples if n_samples != src.layout.n_samples else None, interval, delay,
                       traces.clear if traces is not None else (), traces is not None and traces.one_fold)


def output_headers(src: SegyFile, a: int, b: int, picked: np.ndarray | None, edits: HeaderEdits) -> np.ndarray:
    """(b - a, 240) header bytes of output traces a..b as the output carries them: the same source
    traces (``picked`` None) or the picked ones, edited."""
    raw = _source_headers(src, a, b, picked)
    edits.traces(raw)
    return raw


def _copy_headers(src: SegyFile, tmp: Path, n_samples: int, sample_interval_us: float | None,
                  sample_start_ms: float | None = None, traces: TraceSelection | None = None) -> None:
    """Textual/binary headers byte for byte, trace headers in bulk, zero samples, IEEE format code.

    With ``traces``, output trace ``i`` carries the header of the ``i``-th selected source trace
    (C order), with the selection's fields zeroed.
    """
    layout = src.layout
    edits = header_edits(src, n_samples, sample_interval_us, sample_start_ms, traces, str(tmp))
    out_trace = HEADER_BYTES + 4 * n_samples
    picked = None if traces is None else traces.numbers[traces.numbers >= 0].reshape(-1)
    n_out = layout.n_traces if picked is None else len(picked)
    with open(src.path, "rb") as fin, open(tmp, "wb") as fout:
        head = fin.read(layout.data_offset)  # textual, binary and extended textual headers
        fout.write(head[:BIN_START] + edits.binary(head[BIN_START:BIN_START + 400]) + head[BIN_START + 400:])
        fout.truncate(layout.data_offset + n_out * out_trace)  # sparse zeros
    out_record = np.dtype([("header", np.uint8, (HEADER_BYTES,)), ("samples", edits.order + "f4", (n_samples,))])
    chunk = max(1, CHUNK_BYTES // max(layout.trace_bytes, out_trace))
    for a in range(0, n_out, chunk):
        b = min(a + chunk, n_out)
        out_part = np.memmap(tmp, dtype=out_record, mode="r+", offset=layout.data_offset + a * out_trace,
                             shape=(b - a,))
        out_part["header"] = output_headers(src, a, b, picked, edits)
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




