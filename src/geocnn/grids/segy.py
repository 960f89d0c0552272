"""SEG-Y files: layout, geometry and fast, lazy sample access.

segyio parses and validates the headers and infers the geometry; the samples are read through a
raw :class:`numpy.memmap` of the trace table (one record = 240-byte header + ``ns`` samples), so a
64³ patch touches only its own traces and samples, and memory does not grow with the file.

The grid presented is always in the field's axis order, numbers ascending:

========================  =====================================  ===================
file                      trace axes                             ``kind``
========================  =====================================  ===================
post-stack 3D             (inline, crossline)                    ``post-stack``
pre-stack                 (inline, crossline, offset)            ``pre-stack``
2D line (one in/xline)    (trace,)                               ``line``
no usable geometry        (trace,) in file order                 ``unstructured``
========================  =====================================  ===================

followed by the ``sample`` axis. Regular files (every position has one trace) map positions to
trace numbers with an affine rule and are read through strided views; irregular surveys (missing
traces, non-rectangular outlines) are mapped onto the dense inline × crossline grid with a table
of trace numbers (``-1`` = dead trace, read as zeros).

Example
-------
>>> f = open_segy("volume.sgy")                          # doctest: +SKIP
>>> f.axes, f.shape                                       # doctest: +SKIP
(('inline', 'crossline', 'sample'), (5, 5, 50))
>>> f.read((slice(0, 2), slice(0, 5), slice(10, 20))).shape   # doctest: +SKIP
(2, 5, 10)
"""

from __future__ import annotations

import contextlib
import logging
import math
import mmap
import os
import warnings
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import segyio
from segyio import BinField, TraceField

from geocnn.errors import DataError
from geocnn.grids import headers, ibm

log = logging.getLogger(__name__)

TEXT_BYTES = 3200
BINARY_BYTES = 400
HEADER_BYTES = 240
# segyio names header fields by their 1-based byte (the standard's numbering); these are the
# 0-based offsets of the words geocnn reads or rewrites itself: in the file (binary header) and
# in a trace record (trace header).
BIN_INTERVAL = BinField.Interval - 1
BIN_SAMPLES = BinField.Samples - 1
BIN_FORMAT = BinField.Format - 1
BIN_REVISION = BinField.SEGYRevision - 1
# SEG-Y rev 2: maximum number of additional 240-byte trace headers (bytes 3507-3510; segyio has no name).
BIN_TRACE_EXTENSIONS = 3506
TR_SAMPLES = TraceField.TRACE_SAMPLE_COUNT - 1
TR_INTERVAL = TraceField.TRACE_SAMPLE_INTERVAL - 1
TR_DELAY = TraceField.DelayRecordingTime - 1
# Default header bytes of the inline, crossline and offset numbers (1-based).
ILINE_BYTE = int(TraceField.INLINE_3D)
XLINE_BYTE = int(TraceField.CROSSLINE_3D)
OFFSET_BYTE = int(TraceField.offset)

# SEG-Y sample format code -> (name, NumPy type without byte order). IBM floats are read as
# uint32 words and converted by :func:`ibm_to_float32`.
FORMATS: dict[int, tuple[str, str]] = {
    1: ("ibm-float32", "u4"),
    2: ("int32", "i4"),
    3: ("int16", "i2"),
    5: ("ieee-float32", "f4"),
    6: ("ieee-float64", "f8"),
    8: ("int8", "i1"),
    9: ("int64", "i8"),
    10: ("uint32", "u4"),
    11: ("uint16", "u2"),
    12: ("uint64", "u8"),
    16: ("uint8", "u1"),
}
# Formats whose raw words a decoder outside this package may take (``SegyFile.read_raw``):
# IBM floats and integers that fit an int64 exactly.
RAW_FORMATS = frozenset({1, 2, 3, 8, 10, 11, 16})
UNSUPPORTED_FORMATS = {4: "4-byte fixed point with gain", 7: "3-byte integer", 15: "3-byte unsigned integer"}
VALID_HEADER_BYTES = frozenset(int(v) for v in TraceField.enums())

# Dense grids emptier than this are not grids: a file whose "inline/crossline" words hold
# something else (shot and receiver numbers, zeros) would otherwise become a huge dead volume.
MIN_FILL = 0.25
SPOT_CHECKS = 256
HINT_TRACES = 5_000  # traces whose headers are scanned for a grid suggestion (about 0.6 s)
# Reads of more sample bytes than this map their byte range for the call only (SegyFile._buffer).
BIG_READ = 16 << 20
# Reads of at most this many samples (a 64³ patch) are copied, then swapped in place.
GATHER_WORDS = 1 << 18


# --------------------------------------------------------------------------------------------
# Layout
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Layout:
    """Where the traces are in the file and how their samples are stored.

    Every trace has the same length (segyio requires it), so trace ``t`` starts at
    ``data_offset + t * trace_bytes``.
    """

    data_offset: int  # 3600 + 3200 per extended textual header
    n_samples: int
    n_traces: int
    format: int  # SEG-Y sample format code (binary header bytes 3225-3226)
    endian: str  # "big" | "little"
    ext_headers: int = 0

    @property
    def sample_format(self) -> str:
        return FORMATS[self.format][0]

    @cached_property
    def sample_dtype(self) -> np.dtype:
        return np.dtype((">" if self.endian == "big" else "<") + FORMATS[self.format][1])

    @cached_property
    def sample_itemsize(self) -> int:
        return self.sample_dtype.itemsize

    @cached_property
    def trace_bytes(self) -> int:
        return HEADER_BYTES + self.n_samples * self.sample_itemsize

    @cached_property
    def record_dtype(self) -> np.dtype:
        """One trace as a NumPy record: ``header`` (240 raw bytes) and ``samples``."""
        return np.dtype([("header", np.uint8, (HEADER_BYTES,)),
                         ("samples", self.sample_dtype, (self.n_samples,))])

    @property
    def file_size(self) -> int:
        return self.data_offset + self.n_traces * self.trace_bytes


def _binary_words(path: Path) -> dict[str, tuple[int, int]]:
    """(big, little)-endian readings of the binary header's format code and sample count."""
    with open(path, "rb") as fh:
        fh.seek(BIN_SAMPLES)
        raw = fh.read(6)
    out = {}
    for name, pos in (("samples", 0), ("format", 4)):
        word = raw[pos:pos + 2]
        out[name] = (int.from_bytes(word, "big"), int.from_bytes(word, "little"))
    return out


def detect_endian(path: str | Path) -> str:
    """``big`` or ``little``, from the binary header's sample format code.

    Format codes are small numbers (1-16), so a code that only makes sense byte-swapped
    (``0x0100`` read big-endian is 256) gives the byte order away. When the code is rubbish in
    both orders, the sample count decides; big-endian (the standard) wins ties.
    """
    words = _binary_words(Path(path))
    known = set(FORMATS) | set(UNSUPPORTED_FORMATS)
    big_fmt, little_fmt = words["format"]
    if big_fmt in known:
        return "big"
    if little_fmt in known:
        return "little"
    big_ns, little_ns = words["samples"]
    return "little" if 0 < little_ns < big_ns and big_ns > 50000 else "big"


def _size_problem(path: Path, endian: str) -> str:
    """Explain why segyio refused the file's size, with the numbers."""
    size = path.stat().st_size
    words = _binary_words(path)
    ns = words["samples"][0 if endian == "big" else 1]
    code = words["format"][0 if endian == "big" else 1]
    itemsize = np.dtype(FORMATS.get(code, ("", "u4"))[1]).itemsize
    trace_bytes = HEADER_BYTES + ns * itemsize
    traces = (size - TEXT_BYTES - BINARY_BYTES) / trace_bytes
    return (f"file size {size} bytes does not fit whole traces: {ns} samples of {itemsize} bytes "
            f"+ 240-byte header = {trace_bytes} bytes per trace gives {traces:.2f} traces after the "
            "3600-byte headers")


def trace_extensions(path: Path, endian: str) -> int:
    """Additional 240-byte trace headers per trace a SEG-Y rev 2 file declares (0 before rev 2)."""
    with open(path, "rb") as fh:
        fh.seek(BIN_REVISION)
        major = fh.read(1)
        fh.seek(BIN_TRACE_EXTENSIONS)
        word = fh.read(4)
    if len(major) < 1 or len(word) < 4 or major[0] not in (2, 3):
        return 0
    n = int.from_bytes(word, "big" if endian == "big" else "little", signed=True)
    return n if 0 < n < 1000 else 0  # anything else is not a count: unassigned bytes of an older file


def _refuse_trace_extensions(path: Path, endian: str) -> None:
    """A rev 2 file with trace header extensions is neither truncated nor readable by segyio: say so."""
    n = trace_extensions(path, endian)
    if n > 0:
        raise DataError(f"SEG-Y rev 2 file with up to {n} additional 240-byte trace header(s) per trace "
                        f"(binary header bytes {BIN_TRACE_EXTENSIONS + 1}-{BIN_TRACE_EXTENSIONS + 4}): "
                        "geocnn reads traces with the standard 240-byte header only", where=str(path),
                        fix="re-export the file without trace header extensions (SEG-Y rev 1 layout)")


def read_layout(path: str | Path, endian: str = "auto") -> Layout:
    """Open ``path`` with segyio (headers only) and describe its trace table.

    Raises :class:`~geocnn.errors.DataError` naming the file for anything that is not a readable,
    fixed-trace-length SEG-Y file: missing, too short, truncated, a sample count that does not fit
    the file size, no traces, unsupported sample format.
    """
    p = Path(path)
    where = str(path)
    if not p.exists():
        raise DataError("file not found", where=where, fix="check the path")
    if p.is_dir():
        raise DataError("is a folder, not a SEG-Y file", where=where)
    size = p.stat().st_size
    if size < TEXT_BYTES + BINARY_BYTES:
        raise DataError(f"not a SEG-Y file: {size} bytes, shorter than the 3600 bytes of SEG-Y "
                        "textual and binary headers", where=where)
    if size == TEXT_BYTES + BINARY_BYTES:
        raise DataError("no traces after the SEG-Y headers", where=where,
                        fix="the file holds headers only; re-export it with its traces")
    order = detect_endian(p) if endian == "auto" else endian
    # segyio knows nothing of rev 2 trace header extensions: whether the sizes happen to fit or not,
    # it would read the extensions as traces.
    _refuse_trace_extensions(p, order)
    try:
        with warnings.catch_warnings():  # segyio warns about odd format codes: we say it better
            warnings.simplefilter("ignore")
            with segyio.open(str(p), "r", ignore_geometry=True, endian=order) as f:
                metrics = f.xfd.metrics()
    except RuntimeError as exc:
        text = str(exc)
        codes = _binary_words(p)["format"]
        if not any(c in FORMATS or c in UNSUPPORTED_FORMATS for c in codes):
            raise DataError(f"not a SEG-Y file: the binary header's sample format code (bytes 3225-3226) "
                            f"reads {codes[0]}, or {codes[1]} byte-swapped, neither a SEG-Y format",
                            where=where, fix="check this is a SEG-Y file") from None
        if "inconsistent with file size" in text:
            problem = _size_problem(p, order)
            raise DataError(problem, where=where,
                            fix="the file is truncated or its binary header sample count (bytes "
                                "3221-3222) is wrong; re-export it") from None
        if "no data traces" in text:
            raise DataError("no traces after the SEG-Y headers", where=where,
                            fix="the file holds headers only; re-export it with its traces") from None
        raise DataError(f"not a readable SEG-Y file ({text})", where=where) from None
    except (OSError, ValueError, IndexError, KeyError) as exc:
        raise DataError(f"not a readable SEG-Y file ({exc})", where=where) from None
    layout = Layout(data_offset=int(metrics["trace0"]), n_samples=int(metrics["samplecount"]),
                    n_traces=int(metrics["tracecount"]), format=int(metrics["format"]), endian=order,
                    ext_headers=int(metrics["ext_headers"]))
    _check_layout(layout, size, where)
    return layout


def _check_layout(layout: Layout, size: int, where: str) -> None:
    if layout.format in UNSUPPORTED_FORMATS:
        raise DataError(f"sample format {layout.format} ({UNSUPPORTED_FORMATS[layout.format]}) is not "
                        "supported", where=where, fix="convert the file to IEEE or IBM float")
    if layout.format not in FORMATS:
        raise DataError(f"unknown sample format code {layout.format} in the binary header",
                        where=where, fix="check bytes 3225-3226 of the file")
    if layout.n_samples <= 0 or layout.n_traces <= 0:
        raise DataError(f"no samples or no traces ({layout.n_traces} traces of {layout.n_samples} "
                        "samples)", where=where)
    if layout.file_size != size:
        raise DataError(f"file size {size} bytes does not match {layout.n_traces} traces of "
                        f"{layout.trace_bytes} bytes after {layout.data_offset} header bytes",
                        where=where, fix="the file is truncated or has variable-length traces")


# --------------------------------------------------------------------------------------------
# Sample decoding
# --------------------------------------------------------------------------------------------

def _native(raw: np.ndarray) -> np.ndarray:
    """``raw`` (an array we own) in native byte order, swapped in place."""
    if raw.dtype.isnative:
        return raw
    raw.byteswap(inplace=True)
    return raw.view(raw.dtype.newbyteorder("="))


def decode(raw: np.ndarray, format: int, out: np.ndarray | None = None) -> np.ndarray:
    """Samples as stored (a view of the file is fine: it is not modified) -> a new float32 array,
    or ``out`` (C-contiguous float32 of ``raw``'s shape) filled with them.

    IBM words go to :func:`geocnn.grids.ibm.decode`. Others: up to :data:`GATHER_WORDS` samples
    (a 64³ patch) are gathered with one copy and swapped in place — their 256-byte runs lie all
    over the file, and a casting gather over them was 1.6 times slower; bigger reads (slabs: long
    runs, read in order) are gathered, swapped and converted in one ``astype`` pass (2.5 times
    faster than copy, swap, convert).
    """
    if format == 1:
        return ibm.decode(raw, out)
    if out is not None:
        np.copyto(out, raw)  # gather, swap and convert in one pass: the same values as astype
        return out
    if raw.size <= GATHER_WORDS:
        return _decode_owned(raw.copy(), format)
    return raw.astype(np.float32)


def _decode_owned(raw: np.ndarray, format: int) -> np.ndarray:
    """Samples as stored, in an array we own (swapped in place) -> float32 values."""
    if format == 1:
        return ibm.decode(raw)
    if format == 5:
        return _native(raw).view(np.float32)
    return _native(raw).astype(np.float32)


# --------------------------------------------------------------------------------------------
# Geometry
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class Geometry:
    """Which trace sits at each position of the trace axes.

    Regular files use ``trace = base + sum(index[a] * strides[a])`` (negative strides present
    descending numbers in ascending order); irregular ones a ``table`` of trace numbers, ``-1``
    where no trace exists.
    """

    kind: str  # post-stack | pre-stack | line | unstructured
    axes: tuple[str, ...]  # trace axes, e.g. ("inline", "crossline")
    shape: tuple[int, ...]
    ilines: np.ndarray | None = None
    xlines: np.ndarray | None = None
    offsets: np.ndarray | None = None
    sorting: str = "none"  # inline | crossline | irregular | none
    base: int = 0
    strides: tuple[int, ...] | None = None
    table: np.ndarray | None = None

    @property
    def regular(self) -> bool:
        return self.table is None

    @property
    def n_positions(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def n_live(self) -> int:
        return self.n_positions if self.table is None else int(np.count_nonzero(self.table >= 0))

    def trace_numbers(self, window: tuple[slice, ...] | None = None) -> np.ndarray:
        """Trace numbers (int64, ``-1`` = dead) for a window over the trace axes."""
        window = window if window is not None else tuple(slice(0, n) for n in self.shape)
        if self.table is not None:
            return self.table[window].astype(np.int64)
        out = np.full((), self.base, dtype=np.int64)
        for a, (s, stride) in enumerate(zip(window, self.strides)):
            start, stop, _ = s.indices(self.shape[a])
            shape = [1] * len(self.shape)
            shape[a] = max(stop - start, 0)
            out = out + (np.arange(start, stop, dtype=np.int64) * stride).reshape(shape)
        return out

    def numbers_at(self, positions: tuple[np.ndarray, ...]) -> np.ndarray:
        """Trace numbers at integer positions (one index array per trace axis)."""
        if self.table is not None:
            return self.table[positions].astype(np.int64)
        out = np.full(np.shape(positions[0]), self.base, dtype=np.int64)
        for index, stride in zip(positions, self.strides):
            out += np.asarray(index, dtype=np.int64) * stride
        return out

    def live(self, window: tuple[slice, ...] | None = None) -> np.ndarray | None:
        """Boolean mask of positions holding a trace; None when every position does."""
        if self.table is None:
            return None
        window = window if window is not None else (slice(None),) * len(self.shape)
        return self.table[window] >= 0


@contextlib.contextmanager
def _reading_headers(where: str):
    """segyio's errors while reading trace headers, as a DataError naming the file."""
    try:
        yield
    except (RuntimeError, OSError, ValueError, IndexError, KeyError) as exc:
        raise DataError(f"cannot read the trace headers ({exc})", where=where) from None


def _header_ints(f: Any, fields: tuple[int, ...], traces: np.ndarray | None = None) -> list[np.ndarray]:
    """Header words of all traces (segyio's bulk attribute read) or of some."""
    if traces is None:
        return [np.asarray(f.attributes(b)[:], dtype=np.int64) for b in fields]
    return [np.array([f.header[int(t)][b] for t in traces], dtype=np.int64) for b in fields]


def _affine(ilines: np.ndarray, xlines: np.ndarray, offsets: np.ndarray, sorting: int
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, tuple[int, int, int]]:
    """Ascending numbers plus base/strides for segyio's regular file order."""
    nil, nxl, noff = len(ilines), len(xlines), len(offsets)
    if sorting == segyio.TraceSortingFormat.CROSSLINE_SORTING:
        strides = [noff, nil * noff, 1]
    else:
        strides = [nxl * noff, noff, 1]
    numbers = [np.asarray(ilines), np.asarray(xlines), np.asarray(offsets)]
    base = 0
    for a, values in enumerate(numbers):
        if len(values) > 1 and values[0] > values[-1]:  # descending in the file: walk it backwards
            base += (len(values) - 1) * strides[a]
            strides[a] = -strides[a]
            numbers[a] = values[::-1]
    return numbers[0], numbers[1], numbers[2], base, tuple(strides)


def _monotonic(values: np.ndarray) -> bool:
    d = np.diff(values)
    return bool(np.all(d > 0) or np.all(d < 0))


def _segyio_geometry(path: Path, layout: Layout, iline: int, xline: int) -> Geometry | None:
    """segyio's own inference (fast: it reads a few headers), or None when it gives up."""
    try:
        with segyio.open(str(path), "r", iline=iline, xline=xline, strict=False,
                         endian=layout.endian) as f:
            if f.unstructured or f.ilines is None:
                return None
            raw = [np.array(f.ilines), np.array(f.xlines), np.array(f.offsets)]
            sorting = f.sorting
    except (RuntimeError, ValueError, KeyError, IndexError, OSError):
        return None
    if not all(len(v) == 1 or _monotonic(v) for v in raw):
        return None
    ilines, xlines, offsets, base, strides = _affine(*raw, sorting)
    name = "crossline" if sorting == segyio.TraceSortingFormat.CROSSLINE_SORTING else "inline"
    return Geometry("pre-stack", ("inline", "crossline", "offset"), (len(ilines), len(xlines), len(offsets)),
                    ilines, xlines, offsets, name, base, strides)


def _spot_check(path: Path, layout: Layout, geo: Geometry, fields: tuple[int, int, int], seed: int = 0
                ) -> bool:
    """Do the headers of the first, last and some random traces agree with ``geo``?"""
    rng = np.random.default_rng(seed)
    n = geo.n_positions
    flat = np.unique(np.concatenate([[0, n - 1], rng.integers(0, n, size=min(SPOT_CHECKS, n))]))
    pos = np.unravel_index(flat, geo.shape)
    traces = geo.numbers_at(pos)
    with segyio.open(str(path), "r", ignore_geometry=True, endian=layout.endian) as f:
        il, xl, off = _header_ints(f, fields, traces)
    return bool(np.array_equal(il, geo.ilines[pos[0]]) and np.array_equal(xl, geo.xlines[pos[1]])
                and np.array_equal(off, geo.offsets[pos[2]]))


def _scan_geometry(path: Path, layout: Layout, fields: tuple[int, int, int], force: bool) -> Geometry | None:
    """Geometry from every trace's inline/crossline/offset words; None if they are no grid."""
    where = str(path)
    with segyio.open(str(path), "r", ignore_geometry=True, endian=layout.endian) as f:
        il, xl, off = _header_ints(f, fields)
    ilines, i = np.unique(il, return_inverse=True)
    xlines, j = np.unique(xl, return_inverse=True)
    offsets, k = np.unique(off, return_inverse=True)
    shape = (len(ilines), len(xlines), len(offsets))
    flat = (i.astype(np.int64) * shape[1] + j) * shape[2] + k
    size = int(np.prod(shape, dtype=np.int64))
    duplicates = layout.n_traces - len(np.unique(flat))
    if duplicates and force:
        raise DataError(f"{duplicates} traces share an inline/crossline/offset position (header bytes "
                        f"{fields[0]}/{fields[1]}/{fields[2]}), so they cannot be gridded", where=where,
                        fix=f"{_grid_hint(path, layout, fields[2])}; or use structured: auto|no")
    if duplicates:
        log.warning("%s: %d traces share an inline/crossline/offset position (header bytes %d/%d/%d): "
                    "reading it as unstructured (trace, sample); %s", where, duplicates, *fields,
                    _grid_hint(path, layout, fields[2]))
        return None
    if size > layout.n_traces / MIN_FILL and not force:
        log.warning("%s: only %d traces on a %s inline × crossline × offset grid (%.0f%% filled): "
                    "reading it as unstructured (trace, sample); set structured: yes to grid it anyway; %s",
                    where, layout.n_traces, "×".join(map(str, shape)), 100 * layout.n_traces / size,
                    _grid_hint(path, layout, fields[2]))
        return None
    dtype = np.int32 if layout.n_traces < 2**31 else np.int64
    table = np.full(size, -1, dtype=dtype)
    table[flat] = np.arange(layout.n_traces, dtype=dtype)
    table = table.reshape(shape)
    geo = Geometry("pre-stack", ("inline", "crossline", "offset"), shape, ilines, xlines, offsets,
                   "irregular", table=table)
    return _as_affine(geo) or geo


def _grid_hint(path: Path, layout: Layout, offset: int) -> str:
    """Which header byte pairs would grid the file (a bounded header-only scan), in words."""
    with segyio.open(str(path), "r", ignore_geometry=True, endian=layout.endian) as f:
        return headers.suggestion(headers.grid_pairs(headers.scan_headers(f, HINT_TRACES), offset))


def _as_affine(geo: Geometry) -> Geometry | None:
    """The same geometry with an affine rule, when the table is one (no dead traces)."""
    t = geo.table.astype(np.int64)
    if t.min() < 0:
        return None
    base = int(t[(0,) * t.ndim])
    strides = tuple(int(np.take(t, 1, axis=a).flat[0] - base) if t.shape[a] > 1 else 0
                    for a in range(t.ndim))
    regular = Geometry(geo.kind, geo.axes, geo.shape, geo.ilines, geo.xlines, geo.offsets,
                       "none", base, strides)
    if not np.array_equal(regular.trace_numbers(), t):
        return None
    fastest = int(np.argmax([abs(s) if s else -1 for s in strides[:2]]))
    return Geometry(geo.kind, geo.axes, geo.shape, geo.ilines, geo.xlines, geo.offsets,
                    ("inline", "crossline")[fastest], base, strides)


def _unstructured(n_traces: int) -> Geometry:
    return Geometry("unstructured", ("trace",), (n_traces,), strides=(1,))


def _squeeze(geo: Geometry) -> Geometry:
    """Drop the offset axis of post-stack data; a single inline or crossline is a 2D line."""
    if geo.shape[2] != 1:
        return geo
    table = geo.table[:, :, 0] if geo.table is not None else None
    strides = geo.strides[:2] if geo.strides is not None else None
    if geo.shape[0] > 1 and geo.shape[1] > 1:
        return Geometry("post-stack", ("inline", "crossline"), geo.shape[:2], geo.ilines, geo.xlines,
                        None, geo.sorting, geo.base, strides, table)
    along = 1 if geo.shape[0] == 1 else 0  # the axis the line runs along
    table = table.reshape(-1) if table is not None else None
    strides = (strides[along],) if strides is not None else None
    return Geometry("line", ("trace",), (geo.shape[along],), geo.ilines, geo.xlines, None,
                    geo.sorting, geo.base, strides, table)


def infer_geometry(path: str | Path, layout: Layout, *, iline: int = ILINE_BYTE, xline: int = XLINE_BYTE,
                   offset: int = OFFSET_BYTE, structured: str = "auto") -> Geometry:
    """Work out the trace axes of a SEG-Y file.

    segyio's inference is tried first (it reads a handful of headers) and spot-checked against
    the headers of a few hundred traces; when it gives up or disagrees (irregular surveys, custom
    offset byte) every trace's inline/crossline/offset words are read in bulk and the traces are
    placed on the dense grid with a dead-trace mask. Files whose words are no grid (duplicate
    positions, a grid mostly empty) are unstructured, with a warning saying so.
    """
    p = Path(path)
    for name, byte in (("iline", iline), ("xline", xline), ("offset", offset)):
        if byte not in VALID_HEADER_BYTES:
            raise DataError(f"{name} header byte {byte} is not the start of a SEG-Y trace header field",
                            where=str(p), fix="use a field start such as 189, 193, 9, 17, 21 or 37")
    if structured == "no":
        return _unstructured(layout.n_traces)
    fields = (iline, xline, offset)
    geo = _segyio_geometry(p, layout, iline, xline) if offset == OFFSET_BYTE else None
    with _reading_headers(str(p)):
        if geo is not None and not _spot_check(p, layout, geo, fields):
            log.info("%s: segyio's geometry disagrees with some trace headers; reading every header", p)
            geo = None
        if geo is None:
            geo = _scan_geometry(p, layout, fields, force=structured == "yes")
    if geo is None:
        return _unstructured(layout.n_traces)
    if not geo.regular and geo.n_live < geo.n_positions:
        log.info("%s: irregular survey (%d of %d positions have a trace): mapped onto the dense "
                 "inline × crossline grid; missing traces read as zeros and are masked",
                 p, geo.n_live, geo.n_positions)
    elif not geo.regular:
        log.info("%s: traces are in no regular order: reading them through a trace table", p)
    return _squeeze(geo)


# --------------------------------------------------------------------------------------------
# The file
# --------------------------------------------------------------------------------------------

class SegyFile:
    """A SEG-Y file opened for lazy reading: layout, geometry, metadata and sample access.

    No file handle is kept: the file is memory-mapped on first read, and the map is dropped when
    pickled (worker processes map it again), so a ``SegyFile`` is cheap to send anywhere.
    """

    def __init__(self, path: Path, layout: Layout, geometry: Geometry, *,
                 sample_interval_us: float | None, sample_start_ms: float,
                 spacing: dict[str, tuple[float, str]]) -> None:
        self.path = path
        self.layout = layout
        self.geometry = geometry
        self.sample_interval_us = sample_interval_us
        self.sample_start_ms = sample_start_ms
        self.spacing = spacing
        self._map: mmap.mmap | None = None

    # -- shape ------------------------------------------------------------------------------
    @property
    def axes(self) -> tuple[str, ...]:
        return (*self.geometry.axes, "sample")

    @property
    def shape(self) -> tuple[int, ...]:
        return (*self.geometry.shape, self.layout.n_samples)

    # -- raw access ---------------------------------------------------------------------------
    def _mapping(self) -> mmap.mmap:
        """The whole file, mapped read-only (once; small reads share it)."""
        # One read of the attribute: release() may clear it from another thread (prediction's reader).
        mapped = self._map
        if mapped is None:
            try:
                with open(self.path, "rb") as fh:
                    mapped = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
            except (OSError, ValueError) as exc:
                raise DataError(f"cannot map the file ({exc})", where=str(self.path),
                                fix="check the file still exists") from None
            if len(mapped) != self.layout.file_size:
                raise DataError(f"file is {len(mapped)} bytes now, {self.layout.file_size} when opened",
                                where=str(self.path), fix="it changed while in use; open it again")
            self._map = mapped
        return mapped

    def _buffer(self, lo: int, hi: int, n_bytes: int) -> tuple[Any, int]:
        """A buffer holding traces ``lo..hi`` and the byte position of trace ``lo`` in it.

        Small reads (``n_bytes`` of samples: patches) use the persistent map; big reads (slabs,
        conversion) map the span for the call only (unmapped when the views die), so scanning a
        whole survey does not stay resident in this process.
        """
        tb, start = self.layout.trace_bytes, self.layout.data_offset + lo * self.layout.trace_bytes
        if n_bytes <= BIG_READ:
            return self._mapping(), start
        self._mapping()  # same checks as the persistent map
        aligned = start - start % mmap.ALLOCATIONGRANULARITY
        with open(self.path, "rb") as fh:
            span = mmap.mmap(fh.fileno(), self.layout.data_offset + (hi + 1) * tb - aligned, offset=aligned,
                             access=mmap.ACCESS_READ)
        return span, start - aligned

    def release(self) -> None:
        """Drop the file's map (pages read so far leave this process's resident memory once no
        array still views them)."""
        self._map = None

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_map"] = None  # the receiving process maps the file again
        return state

    # -- reading ------------------------------------------------------------------------------
    def read(self, window: tuple[slice, ...], out: np.ndarray | None = None) -> np.ndarray:
        """float32 samples of a window (one step-1 slice per axis of :attr:`axes`); dead traces are 0.

        ``out``: a C-contiguous float32 array of the window's shape to decode into, returned (the
        decoded cache writes straight into its memory map: no slab is allocated and copied).
        """
        window = tuple(slice(*s.indices(n)[:2]) for s, n in zip(window, self.shape))
        sizes = [max(s.stop - s.start, 0) for s in window]
        if out is not None:
            ibm.check_out(out, tuple(sizes))
        geo = self.geometry
        if min(sizes) > 0 and geo.regular:
            return decode(self._view(window, sizes), self.layout.format, out)
        if min(sizes) == 0:
            values = np.zeros(sizes, dtype=np.float32)
        else:
            numbers = geo.trace_numbers(window[:-1])
            values = self.read_traces(numbers.reshape(-1), window[-1]).reshape(sizes)
        if out is None:
            return values
        out[...] = values
        return out

    def read_raw(self, window: tuple[slice, ...]) -> np.ndarray:
        """Samples of a window as stored (file byte order, :attr:`Layout.sample_dtype`), in a new
        array; dead traces are zero words (which every format decodes to 0.0).

        For decoders elsewhere (a GPU): the bytes travel undecoded, a quarter of float64's and
        the same as float32's, and no float array is built on the host.
        """
        window = tuple(slice(*s.indices(n)[:2]) for s, n in zip(window, self.shape))
        sizes = [max(s.stop - s.start, 0) for s in window]
        dtype = self.layout.sample_dtype
        if min(sizes) == 0:
            return np.zeros(sizes, dtype=dtype)
        if self.geometry.regular:
            return self._view(window, sizes).copy()
        traces = self.geometry.trace_numbers(window[:-1]).reshape(-1)
        live = traces >= 0
        if not live.any():
            return np.zeros(sizes, dtype=dtype)
        lo, hi = int(traces[live].min()), int(traces.max())
        layout = self.layout
        buffer, pos = self._buffer(lo, hi, math.prod(sizes) * layout.sample_itemsize)
        table = np.ndarray((hi - lo + 1, layout.n_samples), dtype, buffer=buffer, offset=pos + HEADER_BYTES,
                           strides=(layout.trace_bytes, layout.sample_itemsize))
        raw = table[np.where(live, traces - lo, 0), window[-1]]  # a copy already
        raw[~live] = 0
        return raw.reshape(sizes)

    def _view(self, window: tuple[slice, ...], sizes: list[int]) -> np.ndarray:
        """A regular geometry's window as one strided view of the file (samples as stored)."""
        # One strided view (no index arrays), copied once by the caller. The view's bounds are
        # checked by NumPy against the mapped buffer.
        geo = self.geometry
        lo = last = first = geo.base
        for s, st in zip(window, geo.strides):
            first += s.start * st
            lo += (s.stop - 1 if st < 0 else s.start) * st
            last += (s.start if st < 0 else s.stop - 1) * st
        layout = self.layout
        tb, item = layout.trace_bytes, layout.sample_itemsize
        buffer, pos = self._buffer(lo, last, math.prod(sizes) * layout.sample_itemsize)
        return np.ndarray(sizes, layout.sample_dtype, buffer=buffer,
                          offset=pos + (first - lo) * tb + HEADER_BYTES + window[-1].start * item,
                          strides=(*(st * tb for st in geo.strides), item))

    def read_traces(self, traces: np.ndarray, samples: slice = slice(None)) -> np.ndarray:
        """float32 samples (n, ns) of the given trace numbers; ``-1`` gives a trace of zeros."""
        traces = np.asarray(traces, dtype=np.int64)
        live = traces >= 0
        if not live.any():
            n = len(range(*samples.indices(self.layout.n_samples)))
            return np.zeros((len(traces), n), dtype=np.float32)
        lo, hi = int(traces[live].min()), int(traces.max())
        layout = self.layout
        n_samples = len(range(*samples.indices(layout.n_samples)))
        buffer, pos = self._buffer(lo, hi, len(traces) * n_samples * layout.sample_itemsize)
        table = np.ndarray((hi - lo + 1, layout.n_samples), layout.sample_dtype, buffer=buffer,
                           offset=pos + HEADER_BYTES, strides=(layout.trace_bytes, layout.sample_itemsize))
        values = _decode_owned(table[np.where(live, traces - lo, 0), samples], layout.format)  # a copy already
        if not live.all():
            values[~live] = 0
        return values


def _sample_axis(f: Any) -> tuple[float | None, float]:
    """Sample interval (µs, None when the headers do not say) and time of the first sample (ms)."""
    interval = int(f.bin[BinField.Interval])
    if interval <= 0:
        interval = int(f.header[0][TraceField.TRACE_SAMPLE_INTERVAL])
    return (float(interval) if interval > 0 else None), float(f.samples[0])


def _coordinates(f: Any, traces: np.ndarray) -> np.ndarray:
    """(n, 2) CDP x/y of some traces with the coordinate scalar applied (source x/y if no CDP)."""
    fields = (TraceField.CDP_X, TraceField.CDP_Y, TraceField.SourceX, TraceField.SourceY,
              TraceField.SourceGroupScalar)
    x, y, sx, sy, scalar = _header_ints(f, fields, traces)
    if not (x.any() or y.any()):
        x, y = sx, sy
    scale = np.ones(len(scalar))
    scale[scalar > 0] = scalar[scalar > 0]
    scale[scalar < 0] = -1.0 / scalar[scalar < 0]
    return np.stack([x * scale, y * scale], axis=1).astype(np.float64)


def _spacing(f: Any, geo: Geometry, unit: str) -> dict[str, tuple[float, str]]:
    """Distance between neighbouring positions along each spatial trace axis, from coordinates."""
    out: dict[str, tuple[float, str]] = {}
    live = geo.live()
    for a, name in enumerate(geo.axes):
        if name not in ("inline", "crossline", "trace") or geo.shape[a] < 2 or geo.kind == "unstructured":
            continue
        first = [0] * len(geo.shape)
        if live is not None:  # first position whose neighbour along the axis is also live
            n = geo.shape[a]
            pair = np.take(live, range(n - 1), axis=a) & np.take(live, range(1, n), axis=a)
            hits = np.argwhere(pair)
            if not len(hits):
                continue
            first = list(hits[0])
        second = list(first)
        second[a] += 1
        numbers = geo.numbers_at(tuple(np.array([i, j]) for i, j in zip(first, second)))
        xy = _coordinates(f, numbers)
        d = float(np.hypot(*(xy[1] - xy[0])))
        if d > 0:
            out[name] = (d, unit)
    return out


def open_segy(path: str | Path, *, iline: int = ILINE_BYTE, xline: int = XLINE_BYTE, offset: int = OFFSET_BYTE,
              endian: str = "auto", structured: str = "auto") -> SegyFile:
    """Open a SEG-Y file for lazy reading.

    Parameters
    ----------
    path
        The file.
    iline, xline, offset
        Trace header bytes (1-based, as in the SEG-Y standard) holding the inline, crossline and
        offset numbers.
    endian
        ``auto`` (from the binary header), ``big`` or ``little``.
    structured
        ``auto``, ``yes`` (grid it even when sparse) or ``no`` (read as unstructured traces).

    Raises
    ------
    DataError
        Missing, truncated or otherwise unreadable files, naming the file.

    Example
    -------
    >>> f = open_segy("small.sgy")                        # doctest: +SKIP
    >>> f.geometry.kind, f.axes, f.layout.sample_format   # doctest: +SKIP
    ('post-stack', ('inline', 'crossline', 'sample'), 'ibm-float32')
    """
    p = Path(os.fspath(path))
    layout = read_layout(p, endian)
    geo = infer_geometry(p, layout, iline=iline, xline=xline, offset=offset, structured=structured)
    with _reading_headers(str(p)), segyio.open(str(p), "r", ignore_geometry=True, endian=layout.endian) as f:
        interval, start = _sample_axis(f)
        unit = "ft" if int(f.bin[BinField.MeasurementSystem]) == 2 else "m"
        spacing = _spacing(f, geo, unit)
    if interval is None:
        log.warning("%s: no sample interval in the binary or first trace header", p)
    else:
        spacing["sample"] = (interval / 1000.0, "ms")
    return SegyFile(p, layout, geo, sample_interval_us=interval, sample_start_ms=start, spacing=spacing)
