"""SEG-Y headers as a user sees them: the textual header, the binary fields that matter, and a
header-byte scan (like ``segysak scan``) that says which trace header fields vary and how, and
which pairs of fields would place the traces on a regular inline × crossline grid.

Everything here reads headers through segyio (``f.attributes``: one field of many traces in one
call), never samples, and at most ``max_traces`` traces, so a scan costs the same on any file size.

Example
-------
>>> with segyio.open("shots.sgy", ignore_geometry=True) as f:     # doctest: +SKIP
...     scan = scan_headers(f)
...     grid_pairs(scan)[0]
GridPair(iline=9, xline=13, ...)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from segyio import BinField, TraceField

TEXT_LINES = 40
TEXT_COLUMNS = 80
MAX_SCAN_TRACES = 50_000
# A grid emptier than this is no grid (the same rule geometry inference uses).
MIN_FILL = 0.25
# Binary header fields worth showing: what decides how the traces are read and what they mean.
BINARY_FIELDS = (
    ("revision", BinField.SEGYRevision), ("format", BinField.Format), ("samples", BinField.Samples),
    ("interval_us", BinField.Interval), ("fixed_length", BinField.TraceFlag),
    ("extended_textual_headers", BinField.ExtendedHeaders), ("sorting", BinField.SortingCode),
    ("ensemble_fold", BinField.EnsembleFold), ("traces_per_ensemble", BinField.Traces),
    ("measurement_system", BinField.MeasurementSystem),
)
SORTING_CODES = {1: "as recorded", 2: "CDP ensemble", 3: "single fold continuous profile",
                 4: "horizontally stacked", 5: "common source", 6: "common receiver", 7: "common offset",
                 8: "common mid-point", 9: "common conversion point"}
# Pairs users reach for first, ranked ahead of others that fit equally well.
USUAL_PAIRS = ((189, 193), (9, 21), (5, 21), (17, 13), (9, 13), (9, 37), (17, 37))


def textual_header(f: Any) -> list[str]:
    """The 40 lines of the textual header (segyio gives it as ASCII); other bytes shown as ``·``."""
    text = "".join(chr(b) if 32 <= b < 127 else "·" for b in bytes(f.text[0]))  # ASCII, no escape codes
    return [text[i:i + TEXT_COLUMNS].rstrip()
            for i in range(0, min(len(text), TEXT_LINES * TEXT_COLUMNS), TEXT_COLUMNS)]


def revision(f: Any) -> str:
    """The SEG-Y revision as ``major.minor`` (bytes 3501 and 3502: rev 1 is 0x0100, ``1.0``).

    segyio 1.9 reads byte 3501 alone (major) and 3502 as ``SEGYRevisionMinor``; older versions
    read both bytes as one number (256 for rev 1). Both forms give the same text.
    """
    value = int(f.bin[BinField.SEGYRevision])
    if value > 0xFF:  # both bytes in one number
        return f"{value >> 8}.{value & 0xFF}"
    minor = getattr(BinField, "SEGYRevisionMinor", None)
    return f"{value}.{int(f.bin[minor]) if minor is not None else 0}"


def binary_header(f: Any) -> dict[str, Any]:
    """The binary header fields that decide how the file is read, by name."""
    out: dict[str, Any] = {}
    for name, field in BINARY_FIELDS:
        out[name] = revision(f) if name == "revision" else int(f.bin[field])
    out["sorting_name"] = SORTING_CODES.get(out["sorting"], "unknown")
    out["measurement_name"] = {1: "metres", 2: "feet"}.get(out["measurement_system"], "unknown")
    return out


@dataclass(frozen=True)
class FieldScan:
    """How one trace header field varies over the scanned traces."""

    byte: int
    name: str
    min: int
    max: int
    distinct: int
    step: int | None  # the one spacing between sorted distinct values, None when uneven

    def to_dict(self) -> dict:
        return {"byte": self.byte, "name": self.name, "min": self.min, "max": self.max,
                "distinct": self.distinct, "step": self.step}


@dataclass(frozen=True)
class HeaderScan:
    """The trace header fields of the first ``traces`` traces: those that vary, and the constants."""

    traces: int
    total: int
    varying: list[FieldScan]
    constant: dict[str, int]
    values: dict[int, np.ndarray]  # byte -> the scanned values of each varying field

    @property
    def partial(self) -> bool:
        return self.traces < self.total

    def to_dict(self) -> dict:
        return {"traces_scanned": self.traces, "traces": self.total, "partial": self.partial,
                "varying": [v.to_dict() for v in self.varying], "constant": dict(self.constant)}


@dataclass(frozen=True)
class GridPair:
    """Two fields whose value pairs place the scanned traces on a grid without duplicates.

    ``offset`` is a header byte to read offsets from instead of the one given, when the given one
    varies with the pair (e.g. offset = receiver position) and would spread the grid thin.
    """

    iline: int
    xline: int
    shape: tuple[int, int]
    fill: float  # traces / grid positions
    offset: int | None = None

    def option(self) -> str:
        return f"--iline {self.iline} --xline {self.xline}" + (f" --offset {self.offset}" if self.offset else "")

    def describe(self) -> str:
        config = f"iline: {self.iline}, xline: {self.xline}" + (f", offset: {self.offset}" if self.offset else "")
        return f"{self.option()} ({self.shape[0]} × {self.shape[1]}, {100 * self.fill:.0f}% filled; in a config: {config})"

    def to_dict(self) -> dict:
        return {"iline": self.iline, "xline": self.xline, "offset": self.offset, "shape": list(self.shape),
                "fill": round(self.fill, 4)}


def scan_headers(f: Any, max_traces: int = MAX_SCAN_TRACES) -> HeaderScan:
    """Every trace header field of the first ``max_traces`` traces (headers only, via segyio)."""
    total = int(f.tracecount)
    n = min(total, max_traces)
    varying, constant, values = [], {}, {}
    for field in sorted(TraceField.enums(), key=int):
        v = np.asarray(f.attributes(int(field))[0:n], dtype=np.int64)
        distinct = np.unique(v)
        if len(distinct) <= 1:
            constant[str(field)] = int(distinct[0]) if len(distinct) else 0
            continue
        steps = np.unique(np.diff(distinct))
        varying.append(FieldScan(int(field), str(field), int(distinct[0]), int(distinct[-1]), len(distinct),
                                 int(steps[0]) if len(steps) == 1 else None))
        values[int(field)] = v
    return HeaderScan(n, total, varying, constant, values)


def grid_pairs(scan: HeaderScan, offset: int = 37, limit: int = 3) -> list[GridPair]:
    """Field pairs that would grid the scanned traces (no two traces at one position, the grid
    at least :data:`MIN_FILL` full), best first: fullest grid, then the usual pairs, then byte order.

    ``offset`` is the header byte offsets are read from: a pair must grid the traces together with
    it, or else with offsets read from a constant field (then named in the pair).
    """
    n = scan.traces
    fields = [v for v in scan.varying if v.distinct < n]  # a field unique per trace is a counter, not an axis
    off = scan.values.get(offset)
    n_off = len(np.unique(off)) if off is not None else 1
    constant = next((int(getattr(TraceField, name)) for name in scan.constant), None)
    found = []
    for i, a in enumerate(fields):
        for b in fields[i + 1:]:
            size = a.distinct * b.distinct
            if size < n or n / size < MIN_FILL or offset in (a.byte, b.byte):
                continue
            pairs = np.stack([scan.values[a.byte], scan.values[b.byte]], axis=1)
            if len(np.unique(pairs, axis=0)) != n:
                continue
            use = None if n / (size * n_off) >= MIN_FILL else constant  # offsets would spread it thin
            if use is None and n / (size * n_off) < MIN_FILL:
                continue
            found.append(GridPair(a.byte, b.byte, (a.distinct, b.distinct), n / size, use))
    usual = {p: k for k, p in enumerate(USUAL_PAIRS)}
    found.sort(key=lambda g: (-g.fill, g.offset is not None, usual.get((g.iline, g.xline), len(usual)),
                              g.iline, g.xline))
    return found[:limit]


def suggestion(pairs: list[GridPair]) -> str:
    """The fix part of a message: which header bytes would grid the file, or that none would."""
    if not pairs:
        return "no pair of trace header fields places the traces on a grid: read it as unstructured traces"
    return "header bytes that would grid it: " + "; ".join(p.describe() for p in pairs)
