"""Phase picks → per-sample label traces over earthquake records (PhaseNet's labels).

``data.picks`` names a pick list — a CSV with ``station``, ``phase`` and ``time`` (UTC, ISO 8601) columns,
or a QuakeML catalog ObsPy reads — and :func:`pick_target` turns it into a label grid ``(station, sample)``
on the records' own time axis (:class:`~geocnn.grids.waveforms.WaveformSource`), computed per window
when training reads it (nothing is held per sample):

* ``labels: phases`` — class 0 is noise, class k the k-th of ``phases`` (``[P, S]``: noise, P, S), as
  ``shape`` says:

  - ``box`` (class indices, one channel): each pick marks ``width`` seconds centred on it with its class;
    where boxes overlap, the later phase wins.
  - ``gaussian`` (class probabilities, one channel per class — soft targets, PhaseNet's form): phase k at
    sample t is ``exp(-(t − p)² / 2σ²)`` of its nearest pick p (``sigma`` seconds; 1 on the pick, e^-½ at
    ±σ, 0 beyond ±3σ), and noise is ``1 − Σ phases``; where picks of different phases overlap so the
    phases sum above 1, they are scaled to sum 1 (noise 0). Every class loss scores them in its soft
    form (:mod:`geocnn.losses`); segmentation metrics take their most probable class; pick
    scores always use the picks' own times.
* ``labels: detection`` — class 1 (event) from each P pick to its S pick plus ``coda`` times S − P
  (EQTransformer's detection label), class 0 elsewhere; a P pick without an S pick marks ``width``.

A station is named as the records name it (``NET.STA.LOC``), or by ``NET.STA`` or ``STA`` when that names
one station; an unknown station is one error listing the known ones. Phases match case-insensitively,
else by their first letter (``Pg``, ``Pn`` → ``P``); picks of other phases and picks outside the records
are left out, and the log says how many.
"""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from geocnn import schema
from geocnn.errors import DataError
from geocnn.grids.grid import Grid, single_source_grid
from geocnn.grids.sources import GridMeta, Source
from geocnn.grids.spec import InputSpec
from geocnn.grids.waveforms import NS, WaveformSource, require_obspy
from geocnn.schema import Section, setting

log = logging.getLogger(__name__)

QUAKEML_SUFFIXES = (".xml", ".quakeml", ".qml")
CSV_COLUMNS = ("station", "phase", "time")
REACH = 3.0  # a Gaussian label is cut beyond ± this many sigma (below 0.011)


class Picks(Section, title="picks", shorthand="path"):
    """``data.picks``: phase picks as the segmentation target of earthquake records (instead of data.target)."""

    path: str = setting("pick list: CSV with station, phase and time (UTC) columns, or a QuakeML catalog (.xml)")
    labels: Literal["phases", "detection"] = setting(
        "phases: noise plus a class per phase; detection: event (P pick to S + coda·(S−P)) or noise",
        default="phases")
    phases: tuple[str, ...] = setting("phases, classes 1, 2, ... in this order (class 0 is noise)",
                                      default=("P", "S"), min_len=1)
    shape: Literal["box", "gaussian"] = setting(
        "phases: box (each pick marks width seconds with its class) or gaussian (per-sample class "
        "probabilities, each pick a Gaussian of sigma seconds, noise = 1 − the phases: PhaseNet's soft labels)",
        default="box")
    width: float = setting("box, and detection without S: seconds each pick marks, centred on it", default=0.2,
                           min=0, exclusive_min=True)
    sigma: float = setting("gaussian: standard deviation in seconds of each pick's Gaussian (cut at ±3 sigma)",
                           default=0.1, min=0, exclusive_min=True)
    coda: float = setting("detection: the event lasts this many S−P times after the S pick", default=1.4, min=0)
    tolerance: tuple[float, ...] = setting(
        "validation: seconds within which a pick matches a true one, per phase in phases order (the last "
        "value for further phases)", default=(0.1, 0.2), min=0, exclusive_min=True, min_len=1)
    threshold: float = setting("validation: least probability of a pick (as predict --threshold)", default=0.5,
                               min=0, exclusive_min=True, max=1)
    min_separation: float = setting("validation: seconds between two picks of a phase (as predict --min-separation)",
                                    default=0.5, min=0, exclusive_min=True)

    @property
    def classes(self) -> int:
        """Classes the labels hold (noise included)."""
        return 2 if self.labels == "detection" else 1 + len(self.phases)

    @property
    def class_names(self) -> tuple[str, ...]:
        return ("noise", "event") if self.labels == "detection" else ("noise", *self.phases)

    @property
    def soft(self) -> bool:
        """The labels are class probabilities (one channel per class), not class indices."""
        return self.labels == "phases" and self.shape == "gaussian"


@dataclass(frozen=True)
class Pick:
    """One pick: a station as the list names it, a phase, a UTC time in integer nanoseconds."""

    station: str
    phase: str
    time_ns: int
    where: str  # file and line, for errors


def read_picks(path: str) -> list[Pick]:
    """The picks of a CSV or QuakeML file; DataError naming the file (and line) when it cannot be read."""
    if not Path(path).is_file():
        raise DataError("pick list not found", where=path, fix="check data.picks.path")
    if Path(path).suffix.lower() in QUAKEML_SUFFIXES:
        return _quakeml(path)
    return _csv(path)


def _csv(path: str) -> list[Pick]:
    obspy = require_obspy()
    with open(path, newline="", encoding="utf-8") as fh:
        rows = csv.DictReader(fh)
        names = {n.strip().lower(): n for n in rows.fieldnames or []}
        missing = [c for c in CSV_COLUMNS if c not in names]
        if missing:
            raise DataError(f"the pick list has no {', '.join(missing)} column (columns: {', '.join(names) or 'none'})",
                            where=path, fix="give a CSV with a header: station,phase,time")
        picks = []
        for line, row in enumerate(rows, start=2):
            where = f"{path}:{line}"
            try:
                ns = obspy.UTCDateTime(row[names["time"]].strip()).ns
            except (TypeError, ValueError, AttributeError):
                raise DataError(f"time {row[names['time']]!r} is not a UTC time", where=where,
                                fix="write times as ISO 8601, e.g. 2024-03-01T10:00:05.120Z") from None
            picks.append(Pick(row[names["station"]].strip(), row[names["phase"]].strip(), ns, where))
    return picks


def _quakeml(path: str) -> list[Pick]:
    obspy = require_obspy()
    try:
        catalog = obspy.read_events(path)
    except Exception as exc:  # noqa: BLE001 - ObsPy's readers raise anything on a damaged file
        raise DataError(f"not a catalog ObsPy reads ({type(exc).__name__}: {str(exc)[:160]})", where=path) from None
    picks = []
    for event in catalog:
        for p in event.picks:
            w = p.waveform_id
            station = f"{w.network_code or ''}.{w.station_code or ''}.{w.location_code or ''}"
            picks.append(Pick(station, p.phase_hint or "", p.time.ns, f"{path}: pick {p.resource_id}"))
    return picks


def station_index(name: str, stations: tuple[str, ...], where: str) -> int:
    """The index of the station a pick names (``NET.STA.LOC``, or ``NET.STA``/``STA`` naming one)."""
    if name in stations:
        return stations.index(name)
    found = [i for i, s in enumerate(stations) if name in (s.split(".")[1], s.rsplit(".", 1)[0])]
    if len(found) == 1:
        return found[0]
    problem = f"station {name!r} of the pick list is {'ambiguous' if found else 'not in the records'}"
    raise DataError(problem, where=where, fix=schema.suggest(name, list(stations)))


def phase_class(phase: str, phases: tuple[str, ...]) -> int | None:
    """1 + the index of the phase a pick names (exactly, ignoring case, else by its first letter); None: not labelled."""
    upper = [p.upper() for p in phases]
    for key in (phase.upper(), phase[:1].upper()):
        if key in upper:
            return 1 + upper.index(key)
    return None


class PickLabels(Source):
    """Label traces from picks on a :class:`WaveformSource`'s time axis (module docstring): ``(station,
    sample)`` class indices, or with soft labels ``(class, station, sample)`` probabilities."""

    def __init__(self, records: WaveformSource, picks: list[Pick], spec: Picks) -> None:
        self.path, self.config = spec.path, spec
        self.spec = InputSpec(spec.path)
        self.stations, self.samples = records.shape[0], records.shape[-1]
        self.axes, self.shape = ("station", "sample"), (self.stations, self.samples)
        if spec.soft:
            self.axes, self.shape = ("class", *self.axes), (spec.classes, *self.shape)
        self.rate = records.rate
        self.meta = GridMeta(kind="picks", format="picks", sample_interval_us=1e6 / self.rate, n_traces=self.stations)
        self.half = spec.width * self.rate / 2  # samples on each side of a pick
        self.sigma = spec.sigma * self.rate  # the Gaussian's σ in samples
        # per station and class (1..K): pick positions in (fractional) samples, sorted
        self.at: list[list[np.ndarray]] = [[np.zeros(0)] * (1 + len(spec.phases)) for _ in range(self.stations)]
        counts = {"labelled": 0, "other phase": 0, "outside the records": 0}
        found: dict[tuple[int, int], list[float]] = {}
        for p in picks:
            st = station_index(p.station, records.stations, p.where)
            k = phase_class(p.phase, spec.phases)
            pos = (p.time_ns - records.start_ns) * self.rate / NS
            key = "other phase" if k is None else "outside the records" if not 0 <= pos < self.samples else "labelled"
            counts[key] += 1
            if key == "labelled":
                found.setdefault((st, k), []).append(pos)
        for (st, k), positions in found.items():
            self.at[st][k] = np.sort(np.asarray(positions))
        log.info("%s: %d picks labelled, %d of other phases, %d outside the records", spec.path, *counts.values())
        self.counts = counts

    def picks_in(self, station: int, k: int, lo: float, hi: float) -> np.ndarray:
        """Positions (fractional samples) of class ``k``'s picks of a station in samples ``lo .. hi - 1``."""
        at = self.at[station][k]
        return at[(at >= lo) & (at < hi)]

    def read(self, window: tuple[slice, ...]) -> np.ndarray:
        if self.config.soft:
            k_r, st_r, s_r = (range(*w.indices(n)) for w, n in zip(window, self.shape))
            return np.stack([self._probabilities(st, s_r) for st in st_r], axis=1)[list(k_r)]
        st_r, s_r = (range(*w.indices(n)) for w, n in zip(window, self.shape))
        out = np.zeros((len(st_r), len(s_r)), dtype=np.float32)
        for row, st in enumerate(st_r):
            for lo, hi, k in self._spans(st):
                a, b = max(int(np.ceil(lo)), s_r.start), min(int(np.floor(hi)) + 1, s_r.stop)
                if b > a:
                    out[row, a - s_r.start:b - s_r.start] = k
        return out

    def _probabilities(self, st: int, s_r: range) -> np.ndarray:
        """float32 (classes, samples) of a station over ``s_r``: each phase its nearest pick's Gaussian,
        phases scaled to sum at most 1, noise the rest."""
        t = np.arange(s_r.start, s_r.stop, dtype=np.float64)
        reach = REACH * self.sigma
        out = np.zeros((len(self.at[st]), len(t)))
        for k in range(1, len(self.at[st])):
            for p in self.picks_in(st, k, s_r.start - reach, s_r.stop + reach):
                near = np.abs(t - p) <= reach
                out[k, near] = np.maximum(out[k, near], np.exp(-0.5 * ((t[near] - p) / self.sigma) ** 2))
        total = out[1:].sum(axis=0)
        out[1:] /= np.maximum(total, 1.0)  # overlapping phases: scaled to sum 1
        out[0] = 1.0 - out[1:].sum(axis=0)
        return out.astype(np.float32)

    def _spans(self, st: int) -> list[tuple[float, float, int]]:
        """(first, last sample, class) of each labelled span of a station, later classes over earlier ones."""
        if self.config.labels == "phases":
            return [(p - self.half, p + self.half, k) for k in range(1, len(self.at[st])) for p in self.at[st][k]]
        p_picks, s_picks = self.at[st][1], self.at[st][2] if len(self.at[st]) > 2 else np.zeros(0)
        spans = []
        for i, p in enumerate(p_picks):
            nxt = p_picks[i + 1] if i + 1 < len(p_picks) else np.inf
            s = s_picks[(s_picks > p) & (s_picks < nxt)]
            end = s[0] + self.config.coda * (s[0] - p) if len(s) else p + 2 * self.half
            spans.append((p, end, 1))
        return spans

    def read_traces(self, index: tuple[np.ndarray, ...]) -> np.ndarray:
        whole = slice(None)
        if self.config.soft:  # index: (class, station)
            return np.stack([self.read((whole, slice(int(st), int(st) + 1), whole))[int(k), 0]
                             for k, st in zip(*index)])
        return np.stack([self.read((slice(int(st), int(st) + 1), whole))[0] for st in index[0]])

    def label(self) -> str:
        return "labels"


def pick_target(grid: Grid, spec: Picks) -> Grid:
    """The label grid of ``spec``'s picks over ``grid``, which must be earthquake records (one input)."""
    records = [s for s in grid.inputs if isinstance(s, WaveformSource)]
    if len(grid.inputs) != 1 or not records:
        raise DataError("data.picks labels earthquake records, but the inputs are "
                        f"{', '.join(s.meta.format for s in grid.inputs)}", where=spec.path,
                        fix="give one input of records ObsPy reads (a file, folder or glob), or use data.target")
    if spec.labels == "detection" and phase_class("P", spec.phases) != 1:
        raise DataError(f"detection labels run from the P pick: phases must start with P, not {spec.phases[0]}",
                        where=spec.path, fix="use phases: [P, S]")
    if spec.labels == "detection" and spec.shape == "gaussian":
        raise DataError("detection labels are boxes (an event from P to S + coda); shape: gaussian is for phases",
                        where=spec.path, fix="use labels: phases, or shape: box")
    labels = PickLabels(records[0], read_picks(spec.path), spec)
    return single_source_grid(labels, spec.class_names if spec.soft else None)
