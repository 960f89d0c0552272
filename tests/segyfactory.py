"""Small SEG-Y files for tests, written with segyio, whose values say where they come from.

Default sample values encode their position (like segyio's ``small.sgy``)::

    value = inline + crossline / 100 + sample / 10_000 + 100 * offset_index

so inline 3, crossline 21, sample 7 reads ``3.2107``; a wrong trace or sample is obvious from the
assertion. Integer formats get distinct integers instead (the position's flat index).

Every writer returns a :class:`Survey` whose ``values`` are in geocnn's grid order: inline,
crossline, [offset,] sample, numbers ascending, zeros where a trace is missing.

Example
-------
>>> s = write_segy(tmp_path / "cube.sgy", ilines=range(1, 4), xlines=range(10, 14), n_samples=20)
>>> s.values.shape
(3, 4, 20)
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import segyio

INT_FORMATS = {2: np.int32, 3: np.int16, 8: np.int8, 9: np.int64, 10: np.uint32, 11: np.uint16, 12: np.uint64,
               16: np.uint8}
SAMPLE_TYPES = {**INT_FORMATS, 1: np.float32, 5: np.float32, 6: np.float64}  # what segyio is handed
COORD_SCALAR = -100  # coordinates stored in centimetres
INLINE_SPACING = 25.0  # metres between inlines (along x)
XLINE_SPACING = 12.5  # metres between crosslines (along y)


@dataclass
class Survey:
    """What a factory wrote: the file and the values geocnn should read from it."""

    path: Path
    values: np.ndarray  # float32, grid order (ascending numbers), zeros where traces are missing
    ilines: np.ndarray | None = None
    xlines: np.ndarray | None = None
    offsets: np.ndarray | None = None
    live: np.ndarray | None = None  # bool over trace axes; None when every position has a trace


def position_values(ilines: Sequence[int], xlines: Sequence[int], n_samples: int,
                    offsets: Sequence[int] | None = None) -> np.ndarray:
    """float32 ``(il, xl, [off,] sample)``: ``il + xl/100 + sample/1e4 + 100*offset_index``."""
    il = np.asarray(ilines, dtype=np.float64)[:, None, None, None]
    xl = np.asarray(xlines, dtype=np.float64)[None, :, None, None]
    noff = 1 if offsets is None else len(offsets)
    k = np.arange(noff, dtype=np.float64)[None, None, :, None]
    t = np.arange(n_samples, dtype=np.float64)[None, None, None, :]
    v = (il + xl / 100 + t / 1e4 + 100 * k).astype(np.float32)
    return v[:, :, 0] if offsets is None else v


def write_traces(path: str | Path, values: np.ndarray, headers: Mapping[int, Iterable[int]], *,
                 format: int = 5, endian: str = "big", interval_us: int = 4000, delay_ms: int = 0,
                 ext_headers: int = 0, text: str | None = None) -> Path:
    """Write traces ``values`` (n, ns) in file order with the given trace header words.

    ``headers`` maps a trace header byte (segyio field number, e.g. 189) to one value per trace.
    The sample count, interval and delay are set in every trace header and the binary header.
    """
    values = np.asarray(values)
    n, ns = values.shape
    spec = segyio.spec()
    spec.format = format
    spec.samples = np.arange(ns) * interval_us / 1000.0 + delay_ms
    spec.tracecount = n
    spec.endian = endian
    spec.ext_headers = ext_headers
    spec.iline, spec.xline = 189, 193
    columns = {int(k): np.asarray(list(v), dtype=np.int64) for k, v in headers.items()}
    with segyio.create(str(path), spec) as f:
        if text is not None:
            f.text[0] = text
        for t in range(n):
            words = {segyio.TraceField.TRACE_SAMPLE_COUNT: ns, segyio.TraceField.TRACE_SAMPLE_INTERVAL: interval_us,
                     segyio.TraceField.DelayRecordingTime: delay_ms}
            words.update({k: int(v[t]) for k, v in columns.items()})
            f.header[t] = words
        # segyio converts the array it is given in place for some formats: hand it a copy.
        f.trace = np.array(values, dtype=values.dtype, copy=True)
        f.bin.update(mfeet=1)
    return Path(path)


def write_segy(path: str | Path, ilines: Sequence[int] = range(1, 6), xlines: Sequence[int] = range(20, 25),
               n_samples: int = 50, *, offsets: Sequence[int] | None = None, sorting: str = "inline",
               format: int = 5, endian: str = "big", interval_us: int = 4000, delay_ms: int = 0,
               missing: Iterable[tuple[int, int]] = (), iline: int = 189, xline: int = 193, offset: int = 37,
               ext_headers: int = 0, values: np.ndarray | None = None) -> Survey:
    """A post-stack (or, with ``offsets``, pre-stack) survey.

    Parameters
    ----------
    ilines, xlines, offsets
        Numbers in file order (give a descending range to write descending numbers).
    sorting
        ``inline`` (crosslines vary fastest) or ``crossline`` (inlines vary fastest).
    format, endian
        SEG-Y sample format code (1 IBM, 5 IEEE, 2/3/8 integers...) and byte order.
    missing
        (inline, crossline) pairs with no trace: an irregular survey.
    iline, xline, offset
        Trace header bytes the numbers are written to.
    values
        Sample values in grid order (ascending numbers); default :func:`position_values`
        (distinct integers for integer formats).
    """
    ilines, xlines = np.asarray(ilines), np.asarray(xlines)
    offs = np.asarray(offsets) if offsets is not None else np.array([0])
    il_sorted, xl_sorted, off_sorted = np.sort(ilines), np.sort(xlines), np.sort(offs)
    shape = (len(ilines), len(xlines), len(offs), n_samples)
    if values is None:
        if format in INT_FORMATS:
            info = np.iinfo(INT_FORMATS[format])
            values = (np.arange(np.prod(shape)) % min(info.max, 2**24)).reshape(shape)
        else:
            values = position_values(il_sorted, xl_sorted, n_samples, off_sorted)[:, :, :, :]
            values = values.reshape(shape)
    values = np.asarray(values, dtype=np.float32).reshape(shape)
    gone = set(map(tuple, missing))
    traces, words = [], {iline: [], xline: [], offset: [], 181: [], 185: [], 71: []}
    outer, inner = (ilines, xlines) if sorting == "inline" else (xlines, ilines)
    for a in outer:
        for b in inner:
            il, xl = (a, b) if sorting == "inline" else (b, a)
            if (int(il), int(xl)) in gone:
                continue
            i, j = int(np.searchsorted(il_sorted, il)), int(np.searchsorted(xl_sorted, xl))
            for off in offs:
                k = int(np.searchsorted(off_sorted, off))
                traces.append(values[i, j, k])
                for byte, v in ((iline, il), (xline, xl), (offset, off)):
                    words[byte].append(int(v))
                words[181].append(int(round((1000 + i * INLINE_SPACING) * 100)))
                words[185].append(int(round((5000 + j * XLINE_SPACING) * 100)))
                words[71].append(COORD_SCALAR)
    dtype = SAMPLE_TYPES[format]
    write_traces(path, np.array(traces, dtype=dtype), words, format=format, endian=endian,
                 interval_us=interval_us, delay_ms=delay_ms, ext_headers=ext_headers)
    live = np.ones(shape[:3], dtype=bool)
    for il, xl in gone:
        live[np.searchsorted(il_sorted, il), np.searchsorted(xl_sorted, xl)] = False
    values = values * live[..., None]
    if offsets is None:
        values, live = values[:, :, 0], live[:, :, 0]
    return Survey(Path(path), values, il_sorted, xl_sorted, off_sorted if offsets is not None else None,
                  live if gone else None)


def write_shot_gather(path: str | Path, n_shots: int = 2, n_receivers: int = 12, n_samples: int = 30, *,
                      format: int = 5, interval_us: int = 2000) -> Survey:
    """Unstructured traces: shots (byte 9) × receivers (byte 13), inline/crossline words all 0.

    ``values`` are (trace, sample) in file order: ``shot + receiver / 100 + sample / 1e4``.
    """
    shot = np.repeat(np.arange(1, n_shots + 1), n_receivers)
    receiver = np.tile(np.arange(1, n_receivers + 1), n_shots)
    t = np.arange(n_samples)[None, :]
    values = (shot[:, None] + receiver[:, None] / 100 + t / 1e4).astype(np.float32)
    headers = {9: shot, 13: receiver, 37: (receiver - n_receivers // 2) * 25, 189: 0 * shot, 193: 0 * shot}
    write_traces(path, values, headers, format=format, interval_us=interval_us)
    return Survey(Path(path), values)


def truncate(src: str | Path, dst: str | Path, n_bytes: int) -> Path:
    """Copy the first ``n_bytes`` of ``src`` to ``dst`` (a truncated file)."""
    Path(dst).write_bytes(Path(src).read_bytes()[:n_bytes])
    return Path(dst)


def with_trace_extensions(src: str | Path, dst: str | Path, n_samples: int, sample_bytes: int = 4,
                          extensions: int = 1) -> Path:
    """A SEG-Y rev 2 copy of ``src`` whose traces each carry ``extensions`` extra 240-byte headers."""
    raw = Path(src).read_bytes()
    head = bytearray(raw[:3600])
    head[3500:3502] = bytes([2, 0])  # rev 2.0 (major, minor bytes)
    head[3506:3510] = int(extensions).to_bytes(4, "big")  # max additional trace headers
    trace = 240 + n_samples * sample_bytes
    out = [bytes(head)]
    for t in range(3600, len(raw), trace):
        out += [raw[t:t + 240], b"\0" * 240 * extensions, raw[t + 240:t + trace]]
    Path(dst).write_bytes(b"".join(out))
    return Path(dst)


def flip_bytes(src: str | Path, dst: str | Path, positions: Iterable[int]) -> Path:
    """A copy of ``src`` with the bytes at ``positions`` inverted (bit flips: damaged media)."""
    data = bytearray(Path(src).read_bytes())
    for p in positions:
        data[p] ^= 0xFF
    Path(dst).write_bytes(bytes(data))
    return Path(dst)


def set_binary_word(path: str | Path, byte: int, value: int, endian: str = "big") -> Path:
    """Overwrite a 2-byte binary header word (1-based SEG-Y byte, e.g. 3221 = samples per trace)."""
    with open(path, "rb+") as fh:
        fh.seek(byte - 1)
        fh.write(int(value).to_bytes(2, endian, signed=False))
    return Path(path)


def read_with_segyio(path: str | Path, endian: str = "big") -> np.ndarray:
    """Every trace (n, ns) as segyio returns it, cast to float32: the reference values."""
    with segyio.open(str(path), ignore_geometry=True, endian=endian) as f:
        return np.asarray(f.trace.raw[:]).astype(np.float32)


def file_bytes(path: str | Path) -> bytes:
    return Path(path).read_bytes()


def trace_headers(path: str | Path, n_samples: int, sample_bytes: int = 4, data_offset: int = 3600) -> np.ndarray:
    """Raw 240-byte trace headers (n, 240) as uint8, for byte-for-byte comparisons."""
    raw = np.frombuffer(file_bytes(path), dtype=np.uint8, offset=data_offset)
    return raw.reshape(-1, 240 + n_samples * sample_bytes)[:, :240]


def mapped_resident_bytes(path: str | Path) -> int | None:
    """Bytes of ``path`` resident in this process's memory maps (Linux ``/proc/self/smaps``).

    Counts only pages this process has faulted in (plus the kernel's read-around), not the
    page cache: a lazy reader that touched a small window shows a small number. None when
    ``/proc`` is not available.
    """
    smaps = Path("/proc/self/smaps")
    if not smaps.exists():
        return None
    target = str(Path(path).resolve())
    total, inside = 0, False
    for line in smaps.read_text().splitlines():
        parts = line.split()
        if parts and "-" in parts[0] and len(parts) >= 5 and not parts[0].endswith(":"):
            inside = len(parts) >= 6 and parts[-1] == target
        elif inside and parts[0] == "Rss:":
            total += int(parts[1]) * 1024
    return total


def write_big_cube(path: str | Path, n_il: int = 60, n_xl: int = 60, n_samples: int = 1000,
                   format: int = 5) -> Survey:
    """A larger IEEE/IBM cube (default 60 × 60 × 1000, ~15 MB) for laziness and memory tests."""
    return write_segy(path, range(1, n_il + 1), range(1, n_xl + 1), n_samples, format=format)


@contextlib.contextmanager
def captured_logs(caplog, level: int = logging.INFO) -> Iterator:
    """Route geocnn's log records to pytest's ``caplog`` (even after a CLI test turned off
    propagation of the ``geocnn`` logger)."""
    logger = logging.getLogger("geocnn")
    old = logger.level
    logger.addHandler(caplog.handler)
    logger.setLevel(level)
    try:
        yield caplog
    finally:
        logger.removeHandler(caplog.handler)
        logger.setLevel(old)
