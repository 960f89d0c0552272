"""Earthquake and microseismic records through ObsPy: any file ObsPy reads as a grid ``(station, component, sample)``.

* **What is read**: a file, a folder (every file in it) or a glob of files in any format ObsPy reads
  (miniSEED, SAC, GSE2, ...). Traces are grouped by station (``NET.STA.LOC``, in sorted order) and by
  component, the last letter of the channel code: ``Z, N, E``, with ``1 → N`` and ``2 → E`` (horizontal
  components of unknown orientation, the usual reading of SEED's numbered channels; the mapping is
  logged when used). Components are the grid's channels, so a 1D model sees ``(3, samples)`` per station.
* **Time**: the sample axis starts at the earliest sample of all records (:attr:`WaveformSource.starttime`,
  UTC) and runs at one sampling rate. Records at another rate are refused naming both, unless the
  input gives ``sampling_rate:``: then every trace is resampled with ObsPy's own ``Trace.resample``
  (its anti-alias filter on when going down). A record starting between two samples of the grid is
  placed at the nearest one.
* **Gaps and missing components** read as zeros; :meth:`WaveformSource.coverage` says per sample which
  values came from a record, :meth:`WaveformSource.live` marks a station/component without any
  record dead, and :meth:`WaveformSource.valid` marks the samples no component recorded dead sample
  by sample (from the headers), as a GeoTIFF's nodata is.
* **Bounded memory**: opening reads headers only (``headonly``); a window is read with ObsPy's
  ``read(starttime=, endtime=)`` per file it touches. miniSEED files are memory-mapped by ObsPy and only
  the records in the window are decoded; other formats (SAC, GSE2) are read whole per window and
  trimmed, so their memory is one file's, never the archive's.

ObsPy is the extra ``geocnn[seismo]``, imported when such a file is first opened.
"""

from __future__ import annotations

import glob
import importlib
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from geocnn.errors import DataError, GeocnnError
from geocnn.grids.sources import GridMeta, Source
from geocnn.grids.spec import InputSpec

log = logging.getLogger(__name__)

COMPONENTS = ("Z", "N", "E")
# the last letter of a channel code → a component; 1/2 are horizontals of unknown orientation
COMPONENT_OF = {"Z": "Z", "N": "N", "E": "E", "1": "N", "2": "E"}
GLOB_CHARS = re.compile(r"[*?\[]")
MAX_FILES = 1 << 16
MAX_SAMPLES = 1 << 34  # samples per trace a grid may span (a year at 500 Hz is 1.6e10)
NS = 1_000_000_000
INTEGER_ENCODINGS = ("INT16", "INT24", "INT32", "STEIM1", "STEIM2")  # miniSEED encodings of integer counts
RESAMPLE_MARGIN_S = 2.0  # read this much beyond a window when resampling, so its edges are not the filter's


class MissingObspy(GeocnnError):
    """ObsPy is needed for earthquake records and is not installed."""


def require_obspy() -> Any:
    """Import ObsPy, or say which extra installs it (one line)."""
    try:
        return importlib.import_module("obspy")
    except ImportError:
        raise MissingObspy("earthquake records need the Python package 'obspy', which is not installed",
                           fix="install the extra: pip install 'geocnn[seismo]'") from None


def record_files(path: str | os.PathLike) -> list[str]:
    """The files of a single file, a folder (its files, not hidden) or a glob, sorted; DataError when none."""
    p = os.fspath(path)
    if os.path.isdir(p):
        names = [os.path.join(p, n) for n in os.listdir(p) if not n.startswith(".")]
        names = [n for n in names if os.path.isfile(n)]
    elif GLOB_CHARS.search(os.path.basename(p)):
        names = [n for n in glob.glob(p) if os.path.isfile(n)]
    elif os.path.isfile(p):
        return [p]
    else:
        raise DataError("file not found", where=p, fix="check the path")
    if not names:
        raise DataError("no record files found", where=p, fix="give a folder of records or a glob such as 'day/*.mseed'")
    if len(names) > MAX_FILES:
        raise DataError(f"{len(names):,} files is more than geocnn reads as one input ({MAX_FILES:,})", where=p)
    return sorted(names)


@dataclass(frozen=True)
class Segment:
    """One contiguous trace of one file (times in integer nanoseconds since 1970, UTC)."""

    path: str
    seed_id: str  # NET.STA.LOC.CHA
    start_ns: int
    end_ns: int  # time of the last sample
    rate: float
    integer: bool  # counts stored as integers (no NaN or inf possible)


def _station(seed_id: str) -> str:
    return seed_id.rsplit(".", 1)[0]


def _component(seed_id: str) -> str | None:
    return COMPONENT_OF.get(seed_id.rsplit(".", 1)[1][-1:].upper())


def _headers(obspy: Any, path: str) -> list[Segment]:
    """Every trace of a file from its headers alone; a file ObsPy cannot read is one DataError."""
    try:
        stream = obspy.read(path, headonly=True)
    except Exception as exc:  # noqa: BLE001 - ObsPy's readers raise anything on a damaged file
        raise DataError(f"not a record ObsPy reads ({type(exc).__name__}: {str(exc)[:160]})", where=path,
                        fix="check the file is complete, or remove it from the folder/glob") from None
    segments = []
    for tr in stream:
        s = tr.stats
        if s.npts < 1 or not s.sampling_rate > 0:
            continue
        integer = getattr(s.get("mseed"), "encoding", "") in INTEGER_ENCODINGS
        segments.append(Segment(path, tr.id, s.starttime.ns, s.endtime.ns, float(s.sampling_rate), integer))
    if not segments:
        raise DataError("the file holds no samples", where=path, fix="remove it from the folder/glob")
    return segments


def _common_rate(segments: list[Segment], wanted: float | None, where: str) -> float:
    """The grid's rate: ``sampling_rate`` when given, else the one rate of all records (DataError naming two)."""
    if wanted is not None:
        return float(wanted)
    first = segments[0]
    other = next((s for s in segments if s.rate != first.rate), None)
    if other is not None:
        raise DataError(f"records have two sampling rates: {first.rate:g} Hz ({first.seed_id} in "
                        f"{Path(first.path).name}) and {other.rate:g} Hz ({other.seed_id} in {Path(other.path).name})",
                        where=where, fix=f"give sampling_rate: {max(first.rate, other.rate):g} (or the rate you want) "
                                         "for this input to resample them with ObsPy")
    return first.rate


class WaveformSource(Source):
    """Records ObsPy reads as ``(station, component, sample)`` (see the module docstring)."""

    def __init__(self, spec: InputSpec) -> None:
        self.path, self.spec = spec.path, spec
        obspy = require_obspy()
        self.files = record_files(spec.path)
        segments = [seg for f in self.files for seg in _headers(obspy, f)]
        self.rate = _common_rate(segments, spec.sampling_rate, spec.path)
        self.resampled = spec.sampling_rate is not None and any(s.rate != self.rate for s in segments)
        self.segments = self._known(segments)
        self.stations = tuple(sorted({_station(s.seed_id) for s in self.segments}))
        self.channel_codes = self._channel_codes()
        self.start_ns = min(s.start_ns for s in self.segments)
        end_ns = max(s.end_ns for s in self.segments)
        n = int(round((end_ns - self.start_ns) * self.rate / NS)) + 1
        if n > MAX_SAMPLES:
            raise DataError(f"the records span {n:,} samples at {self.rate:g} Hz, more than geocnn reads as one "
                            f"input ({MAX_SAMPLES:,})", where=spec.path, fix="give fewer files (a day, a week)")
        integer = all(s.integer for s in self.segments) and not self.resampled
        self.axes = ("station", "component", "sample")
        self.shape = (len(self.stations), len(COMPONENTS), n)
        self.channel_axis = "component"
        self.meta = GridMeta(kind="records", format="seismo", sample_interval_us=1e6 / self.rate,
                             sample_format="int32" if integer else "ObsPy", endian="n/a", n_traces=len(self.stations),
                             dead_traces=0)
        self._spans = self._recorded_spans()

    # --- the index
    def _known(self, segments: list[Segment]) -> list[Segment]:
        """Segments with a component geocnn reads; the others are logged and left out."""
        unknown = sorted({s.seed_id for s in segments if _component(s.seed_id) is None})
        if unknown:
            log.info("%s: channels without a Z/N/E/1/2 component are not read: %s", self.path, ", ".join(unknown[:8]))
        numbered = sorted({s.seed_id for s in segments if s.seed_id[-1:] in "12"})
        if numbered:
            log.info("%s: channels ending in 1/2 are read as N/E (1 → N, 2 → E): %s", self.path, ", ".join(numbered[:8]))
        known = [s for s in segments if _component(s.seed_id) is not None]
        if not known:
            raise DataError(f"no channel with a Z, N, E, 1 or 2 component (channels: {', '.join(unknown[:8])})",
                            where=self.path, fix="give records of seismometer channels (e.g. HHZ, HHN, HHE)")
        return known

    def _recorded_spans(self) -> list[list[tuple[int, int]]]:
        """Per station, the merged sample ranges ``[lo, hi)`` that some component's record covers (from
        the headers: no sample is read)."""
        index, n = {st: i for i, st in enumerate(self.stations)}, self.shape[-1]
        spans: list[list[tuple[int, int]]] = [[] for _ in self.stations]
        for s in sorted(self.segments, key=lambda s: s.start_ns):
            lo, hi = max(self.sample_of(s.start_ns), 0), min(self.sample_of(s.end_ns) + 1, n)
            row = spans[index[_station(s.seed_id)]]
            if row and lo <= row[-1][1]:
                row[-1] = (row[-1][0], max(row[-1][1], hi))
            elif hi > lo:
                row.append((lo, hi))
        return spans

    def _channel_codes(self) -> dict[str, tuple[str, ...]]:
        """Per station, the channel code giving each component; two channels for one component are refused."""
        codes: dict[str, list[str | None]] = {st: [None] * len(COMPONENTS) for st in self.stations}
        for s in self.segments:
            st, cha = _station(s.seed_id), s.seed_id.rsplit(".", 1)[1]
            c = COMPONENTS.index(_component(s.seed_id))
            if codes[st][c] not in (None, cha):
                raise DataError(f"station {st} has two channels for component {COMPONENTS[c]}: {codes[st][c]} and {cha}",
                                where=self.path, fix="give the records of one instrument per station (select files with a glob)")
            codes[st][c] = cha
        return {st: tuple(c or "" for c in cs) for st, cs in codes.items()}

    @property
    def starttime(self) -> str:
        """UTC time of sample 0, ISO 8601 (the sample axis' origin)."""
        return require_obspy().UTCDateTime(ns=self.start_ns).isoformat() + "Z"

    def sample_of(self, ns: int) -> int:
        """The grid sample nearest a time (integer nanoseconds)."""
        return int(round((ns - self.start_ns) * self.rate / NS))

    def time_of(self, sample: int) -> int:
        """The time of a grid sample (integer nanoseconds, UTC): the inverse of :meth:`sample_of`."""
        return self.start_ns + int(round(sample * NS / self.rate))

    # --- reading
    def _touching(self, stations: range, start: int, stop: int) -> dict[str, list[Segment]]:
        t0 = self.start_ns + int(start * NS / self.rate)
        t1 = self.start_ns + int((stop - 1) * NS / self.rate)
        names = {self.stations[i] for i in stations}
        out: dict[str, list[Segment]] = {}
        for s in self.segments:
            if _station(s.seed_id) in names and s.start_ns <= t1 + NS / self.rate and s.end_ns >= t0 - NS / self.rate:
                out.setdefault(s.path, []).append(s)
        return out

    def _fill(self, window: tuple[slice, ...], values: np.ndarray | None, covered: np.ndarray) -> None:
        """Read the window's records into ``values`` (and mark ``covered``) over (station, component, sample)."""
        obspy = require_obspy()
        st_r, c_r, s_r = (range(*w.indices(n)) for w, n in zip(window, self.shape))
        if not len(st_r) or not len(c_r) or not len(s_r):
            return
        margin = RESAMPLE_MARGIN_S if self.resampled else 2.0 / self.rate
        t0 = obspy.UTCDateTime(ns=self.start_ns + int(s_r.start * NS / self.rate)) - margin
        t1 = obspy.UTCDateTime(ns=self.start_ns + int((s_r.stop - 1) * NS / self.rate)) + margin
        index = {st: i for i, st in enumerate(self.stations)}
        for path in self._touching(st_r, s_r.start, s_r.stop):
            for tr in self._read(obspy, path, t0, t1):
                c = _component(tr.id)
                st = index.get(_station(tr.id))
                if c is None or st not in st_r or COMPONENTS.index(c) not in c_r or tr.stats.npts == 0:
                    continue
                self._place(tr, st - st_r.start, COMPONENTS.index(c) - c_r.start, s_r, values, covered)

    def _read(self, obspy: Any, path: str, t0: Any, t1: Any) -> Any:
        try:
            stream = obspy.read(path, starttime=t0, endtime=t1)
        except Exception as exc:  # noqa: BLE001 - ObsPy's readers raise anything on a damaged file
            raise DataError(f"not a record ObsPy reads ({type(exc).__name__}: {str(exc)[:160]})", where=path,
                            fix="check the file is complete") from None
        if self.resampled:
            for tr in stream:
                if tr.stats.sampling_rate != self.rate:
                    tr.data = tr.data.astype(np.float64)
                    tr.resample(self.rate, no_filter=tr.stats.sampling_rate < self.rate)
        return stream

    def _place(self, tr: Any, st: int, c: int, s_r: range, values: np.ndarray | None, covered: np.ndarray) -> None:
        first = self.sample_of(tr.stats.starttime.ns)
        lo, hi = max(first, s_r.start), min(first + tr.stats.npts, s_r.stop)
        if hi <= lo:
            return
        if values is not None:
            values[st, c, lo - s_r.start:hi - s_r.start] = tr.data[lo - first:hi - first]
        covered[st, c, lo - s_r.start:hi - s_r.start] = True

    def _window_shape(self, window: tuple[slice, ...]) -> tuple[int, ...]:
        return tuple(len(range(*w.indices(n))) for w, n in zip(window, self.shape))

    def read(self, window: tuple[slice, ...]) -> np.ndarray:
        shape = self._window_shape(window)
        values = np.zeros(shape, dtype=np.float32)
        self._fill(window, values, np.zeros(shape, dtype=bool))
        return values

    def coverage(self, window: tuple[slice, ...]) -> np.ndarray:
        """bool ``(station, component, sample)`` of a window: True where a record gave the value (False in gaps)."""
        covered = np.zeros(self._window_shape(window), dtype=bool)
        self._fill(window, None, covered)
        return covered

    @property
    def masked(self) -> bool:
        """Some station has a gap in all its components, or starts or ends inside the grid's time axis."""
        return any(row != [(0, self.shape[-1])] for row in self._spans)

    def valid(self, window: tuple[slice, ...]) -> np.ndarray | None:
        """bool ``(station, sample)`` of a window: True where any component was recorded (a gap in every
        component is dead sample by sample: never a patch centre, never scored); from the headers."""
        if not self.masked:
            return None
        stations, samples = (range(*w.indices(n)) for w, n in zip(window, (self.shape[0], self.shape[-1])))
        out = np.zeros((len(stations), len(samples)), dtype=bool)
        for i, st in enumerate(stations):
            for lo, hi in self._spans[st]:
                a, b = max(lo, samples.start), min(hi, samples.stop)
                if b > a:
                    out[i, a - samples.start:b - samples.start] = True
        return out

    def recorded(self, stations: range) -> np.ndarray:
        """:meth:`valid` of whole station rows (all True when nothing is missing).

        A prediction there is the model's on data; in a gap of every component it is the model's on the
        zeros a gap reads as, which a miniSEED output leaves out and ``--picks`` never picks."""
        mask = self.valid((slice(stations.start, stations.stop), slice(None)))
        return np.ones((len(stations), self.shape[-1]), dtype=bool) if mask is None else mask

    def read_traces(self, index: tuple[np.ndarray, ...]) -> np.ndarray:
        out = np.empty((len(index[0]), self.shape[-1]), dtype=np.float32)
        for k, (st, c) in enumerate(zip(*index)):
            out[k] = self.read((slice(int(st), int(st) + 1), slice(int(c), int(c) + 1), slice(None)))[0, 0]
        return out

    def live(self, window: tuple[slice, ...]) -> np.ndarray | None:
        mask = np.array([[bool(code) for code in self.channel_codes[st]] for st in self.stations], dtype=bool)
        mask = mask[window] if window else mask
        return None if mask.all() else mask

    def channel_label(self, axis: str, index: int) -> str:
        return COMPONENTS[index] if axis == "component" else f"{axis} {index}"

    def spacing(self) -> dict[str, tuple[float, str]]:
        return {"sample": (1000.0 / self.rate, "ms")}

    def geometry(self) -> dict:
        channels = "; ".join(f"{st}: {' '.join(c for c in cs if c)}" for st, cs in self.channel_codes.items())
        return {"start_time": self.starttime, "sampling_rate_hz": self.rate, "stations": len(self.stations),
                "channels": channels, "files": len(self.files), "resampled": self.resampled}
