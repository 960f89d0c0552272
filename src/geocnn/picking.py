"""Phase picks from probability traces, written as a pick list; and picks scored against reference picks.

* **Picks** (:func:`peaks`, :class:`Picker`): a pick is a local maximum of a phase's probability at or
  above that phase's threshold; of two maxima closer than the minimum separation the more probable one
  is kept (the earlier one on a tie), as SeisBench and PhaseNet pick. The maximum of a plateau is its
  first sample. Every class but class 0 (noise) is a phase; its name is the class name.
* **Pick lists** (:meth:`Picker.write`): a CSV with ``station, phase, time, probability`` (time in UTC,
  ISO 8601 to the microsecond: the columns ``data.picks`` reads, so a pick list can train the next
  model), or a QuakeML catalog (``.xml``: one event holding every pick, the probability in a comment),
  written atomically.
* **Scores** (:func:`score`): the field's figures — a predicted pick of a station and phase matches a
  reference pick within ``tolerance`` seconds (each reference pick matches at most one, nearest first);
  precision, recall, F1 and the mean and standard deviation of the matched residuals (predicted − reference).
* **What a records preview shows** (:func:`record_view`): the first few stations over a window of at most
  a minute, centred on their most probable pick (else the records' first minute), with the picks in it as
  seconds after the window's start; :mod:`geocnn.plots` draws it, reading only that window. Of a labels
  output (``--output labels``: a class per sample) it draws the stretches each phase labels (:func:`label_spans`).
* **Validation** (:class:`PickValidation`): during training on ``data.picks``, the same picks and scores on
  each validation window, beside the picks of a classic STA/LTA trigger (:mod:`geocnn.classical.stalta`)
  on the window's Z component; counts add up over windows as :func:`tally` rows, read by :func:`figures`.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from geocnn import atomic
from geocnn.classical.stalta import StaLta
from geocnn.errors import ConfigError, DataError
from geocnn.grids.grid import Grid
from geocnn.grids.picks import QUAKEML_SUFFIXES, PickLabels, phase_class
from geocnn.grids.waveforms import NS, WaveformSource, require_obspy


def peaks(prob: np.ndarray, threshold: float, distance: int) -> np.ndarray:
    """Samples of the picks of one probability trace (see the module docstring), in time order.

    >>> peaks(np.array([0, .6, .2, .9, .1, 0, .7, .7, 0]), 0.5, 3).tolist()
    [3, 6]
    """
    p = np.asarray(prob, dtype=np.float64)
    if p.size == 0:
        return np.zeros(0, dtype=np.int64)
    left = np.concatenate(([-np.inf], p[:-1]))
    right = np.concatenate((p[1:], [-np.inf]))
    candidates = np.flatnonzero((p >= threshold) & (p > left) & (p >= right))
    order = candidates[np.lexsort((candidates, -p[candidates]))]  # most probable first, earlier on a tie
    kept: list[int] = []
    for i in order:
        if all(abs(int(i) - k) >= distance for k in kept):
            kept.append(int(i))
    return np.array(sorted(kept), dtype=np.int64)


@dataclass(frozen=True)
class Pick:
    """One phase arrival at one station (time in integer nanoseconds since 1970, UTC)."""

    station: str
    phase: str
    time_ns: int
    probability: float = 1.0

    @property
    def iso(self) -> str:
        """The time as ISO 8601 UTC to the microsecond."""
        return require_obspy().UTCDateTime(ns=self.time_ns).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def thresholds(value: float | Mapping[str, float], phases: Sequence[str]) -> dict[str, float]:
    """Per phase threshold: one number for all, or ``{phase: number}`` naming each phase (ConfigError otherwise)."""
    if not isinstance(value, Mapping):
        value = dict.fromkeys(phases, float(value))
    missing = [p for p in phases if p not in value]
    unknown = [p for p in value if p not in phases]
    if missing or unknown:
        raise ConfigError(f"--threshold names phases {', '.join(value) or 'none'}; the model's phases are "
                          f"{', '.join(phases)}", fix="give one number, or phase=number for each phase, e.g. P=0.5,S=0.4")
    bad = {p: v for p, v in value.items() if not 0 < float(v) <= 1}
    if bad:
        raise ConfigError(f"--threshold must be in (0, 1], got {bad}")
    return {p: float(value[p]) for p in phases}


@dataclass
class Picker:
    """Picks of released rows of probability traces ``(channels, stations, samples)`` on records' time axis.

    ``phases`` names the phase each written channel holds (None: noise, not picked). Where no component
    was recorded (a gap, read as zeros) the probabilities are the model's on nothing: no pick there.
    """

    source: WaveformSource
    phases: tuple[str | None, ...]
    threshold: dict[str, float]
    min_separation: float  # seconds
    picks: list[Pick] = field(default_factory=list)

    def add(self, first: int, values: np.ndarray) -> None:
        """Pick every phase channel of stations ``first ..`` (whole rows)."""
        distance = max(1, int(round(self.min_separation * self.source.rate)))
        recorded = self.source.recorded(range(first, first + values.shape[1]))  # never a pick in a gap
        for c, phase in enumerate(self.phases):
            if phase is None:
                continue
            for r in range(values.shape[1]):
                prob = np.where(recorded[r], values[c, r], 0.0)
                for i in peaks(prob, self.threshold[phase], distance):
                    t = self.source.time_of(int(i))
                    self.picks.append(Pick(self.source.stations[first + r], phase, t, float(prob[i])))

    def write(self, path: str | Path, force: bool = False) -> Path:
        """The picks, sorted by station and time, as CSV or QuakeML (``.xml``), renamed into place."""
        picks = sorted(self.picks, key=lambda p: (p.station, p.time_ns, p.phase))
        if str(path).lower().endswith(QUAKEML_SUFFIXES):
            with atomic.replacing(path, force=force) as tmp:
                quakeml(picks).write(str(tmp), format="QUAKEML")
            return Path(path)
        return atomic.write_text(path, picks_csv(picks), force=force)


def picks_csv(picks: Iterable[Pick]) -> str:
    """The CSV text of a pick list (``station, phase, time, probability``)."""
    buf = io.StringIO()
    out = csv.writer(buf, lineterminator="\n")
    out.writerow(("station", "phase", "time", "probability"))
    for p in picks:
        out.writerow((p.station, p.phase, p.iso, f"{p.probability:.4f}"))
    return buf.getvalue()


def quakeml(picks: Sequence[Pick]) -> object:
    """An ObsPy catalog of one event holding every pick (automatic picks; the probability in a comment)."""
    obspy = require_obspy()
    ev = obspy.core.event
    out = []
    for p in picks:
        net, sta, loc = (p.station.split(".") + ["", ""])[:3]
        out.append(ev.Pick(time=obspy.UTCDateTime(ns=p.time_ns), phase_hint=p.phase, evaluation_mode="automatic",
                           waveform_id=ev.WaveformStreamID(network_code=net, station_code=sta, location_code=loc),
                           comments=[ev.Comment(text=f"probability {p.probability:.4f}")]))
    return ev.Catalog([ev.Event(picks=out)])


# ----------------------------------------------------------------------------- what a preview shows

PREVIEW_STATIONS = 4  # stations drawn, in the records' order
PREVIEW_SECONDS = 60.0  # the window drawn is at most this long ...
PREVIEW_SAMPLES = 6000  # ... and at most this many samples, whatever the records' length and rate


@dataclass(frozen=True)
class PickLine:
    """A pick drawn in a preview: its station's row in the view, and its time in seconds after the view's start."""

    row: int
    phase: str
    seconds: float
    probability: float


@dataclass(frozen=True)
class RecordView:
    """The bounded part of earthquake records a preview draws: stations ``0 .. len(stations)`` of the grid,
    samples ``first .. stop``, and the picks in it."""

    stations: tuple[str, ...]
    first: int  # grid samples
    stop: int
    start_ns: int  # UTC of sample ``first``, nanoseconds since 1970
    rate: float  # Hz
    lines: tuple[PickLine, ...]

    @property
    def window(self) -> tuple[slice, slice]:
        """The (station, sample) window to read from the input grid and the prediction."""
        return slice(0, len(self.stations)), slice(self.first, self.stop)

    @property
    def seconds(self) -> np.ndarray:
        """Each drawn sample's time, seconds after the view's start."""
        return np.arange(self.stop - self.first) / self.rate

    @property
    def time_label(self) -> str:
        """The time axis' label, naming the window's start in UTC (``seconds after 2024-03-01T10:00:30Z``)."""
        t = require_obspy().UTCDateTime(ns=self.start_ns)
        text = t.strftime("%Y-%m-%dT%H:%M:%S.%f").rstrip("0").rstrip(".")
        return f"seconds after {text}Z"


@dataclass(frozen=True)
class LabelSpan:
    """A stretch a labels output gives one phase, as a preview draws it: its station's row in the view, its
    class (1, 2, ...: noise, class 0, is never drawn), and its first sample's start and its last sample's
    end in seconds after the view's start."""

    row: int
    label: int
    start: float
    stop: float


def label_spans(labels: np.ndarray, rate: float) -> tuple[LabelSpan, ...]:
    """The runs of equal non-noise class in ``labels`` (stations, samples: a view's window of a labels
    output), row by row in time order: what the records preview of ``--output labels`` shades.

    A run of samples a .. b−1 spans a/rate .. b/rate seconds: each sample covers one sample interval, so
    a one-sample label stays visible and touching runs of two classes share their boundary.
    """
    spans = []
    for row, classes in enumerate(np.asarray(labels, dtype=np.int64)):  # (uint8 differences would wrap)
        starts = np.flatnonzero(np.diff(classes, prepend=-1))  # where the class changes (0: always a start)
        stops = np.append(starts[1:], len(classes))
        spans += [LabelSpan(row, int(classes[a]), float(a / rate), float(b / rate))
                  for a, b in zip(starts, stops, strict=True) if classes[a] != 0]
    return tuple(spans)


def record_view(source: WaveformSource, picks: Sequence[Pick], stations: int = PREVIEW_STATIONS,
                seconds: float = PREVIEW_SECONDS, samples: int = PREVIEW_SAMPLES) -> RecordView:
    """What a records preview shows (see the module docstring): the window is centred on the most probable
    pick of the stations shown (the earlier one on a tie), kept inside the records; without picks, their start.

    Its size depends on ``seconds`` and ``samples`` only, never on the records' length: memory stays bounded.
    """
    shown = source.stations[:stations]
    n = source.shape[-1]
    length = max(1, min(n, samples, int(round(seconds * source.rate))))
    mine = [p for p in picks if p.station in shown]
    first = 0
    if mine:
        best = min(mine, key=lambda p: (-p.probability, p.time_ns))
        first = min(max(source.sample_of(best.time_ns) - length // 2, 0), n - length)
    start_ns = source.time_of(first)
    stop_ns = source.time_of(first + length)
    lines = tuple(PickLine(shown.index(p.station), p.phase, (p.time_ns - start_ns) / NS, p.probability)
                  for p in sorted(mine, key=lambda p: (shown.index(p.station), p.time_ns, p.phase))
                  if start_ns <= p.time_ns < stop_ns)
    return RecordView(tuple(shown), first, first + length, start_ns, source.rate, lines)


# ----------------------------------------------------------------------------- scoring

@dataclass(frozen=True)
class Score:
    """Predicted picks of one phase against reference picks within a tolerance."""

    phase: str
    tolerance: float  # seconds
    true_positives: int
    predicted: int
    reference: int
    residuals: tuple[float, ...]  # seconds, predicted − reference, of the matched picks

    @property
    def tally(self) -> np.ndarray:
        """The counts :func:`figures` reads (a :data:`TALLY` row)."""
        r = np.asarray(self.residuals, dtype=np.float64)
        return np.array([self.true_positives, self.predicted, self.reference, r.sum(), (r * r).sum()])

    @cached_property
    def figures(self) -> dict[str, float]:
        """Its figures, computed once (the module's :func:`figures` of :attr:`tally`)."""
        return figures(self.tally)  # the module function: a method's body does not see the class's names

    @property
    def precision(self) -> float:
        return self.figures["precision"]

    @property
    def recall(self) -> float:
        return self.figures["recall"]

    @property
    def f1(self) -> float:
        return self.figures["f1"]

    @property
    def residual_mean(self) -> float:
        return self.figures["residual_mean"]

    @property
    def residual_std(self) -> float:
        return self.figures["residual_std"]


TALLY = ("matched", "predicted", "reference", "residual_sum", "residual_squares")
"""What adds up over windows (and processes): matched, predicted and reference picks, Σ r and Σ r² (s, s²)."""


def figures(tally: np.ndarray) -> dict[str, float]:
    """Precision, recall, F1, and the mean and (population) standard deviation of the residuals in seconds,
    of a :data:`TALLY` row (NaN where nothing defines one: no picks, no match).

    >>> f = figures(np.array([2, 4, 2, 0.1, 0.0068]))  # 2 of 4 picks match 2 true ones, at +0.02 and +0.08 s
    >>> round(f["f1"], 3), round(f["residual_mean"], 3), round(f["residual_std"], 3)
    (0.667, 0.05, 0.03)
    """
    tp, predicted, reference, r_sum, r_squares = (float(v) for v in tally)

    def ratio(a: float, b: float) -> float:
        return a / b if b else math.nan

    mean = ratio(r_sum, tp)
    return {"precision": ratio(tp, predicted), "recall": ratio(tp, reference),
            "f1": ratio(2 * tp, predicted + reference), "residual_mean": mean,
            "residual_std": math.sqrt(max(r_squares / tp - mean * mean, 0.0)) if tp else math.nan}


def score(predicted: Sequence[Pick], reference: Sequence[Pick], phase: str, tolerance: float) -> Score:
    """Match ``phase`` picks station by station: closest pairs first, each pick used once, within ``tolerance`` s."""
    if tolerance <= 0:
        raise DataError(f"the pick tolerance must be positive, got {tolerance} s")
    pred = [p for p in predicted if p.phase == phase]
    ref = [p for p in reference if p.phase == phase]
    pairs = sorted((abs(a.time_ns - b.time_ns), i, j) for i, a in enumerate(pred) for j, b in enumerate(ref)
                   if a.station == b.station and abs(a.time_ns - b.time_ns) <= tolerance * NS)
    used_p: set[int] = set()
    used_r: set[int] = set()
    residuals = []
    for _, i, j in pairs:
        if i in used_p or j in used_r:
            continue
        used_p.add(i)
        used_r.add(j)
        residuals.append((pred[i].time_ns - ref[j].time_ns) / NS)
    return Score(phase, tolerance, len(residuals), len(pred), len(ref), tuple(residuals))


def tally(predicted: np.ndarray, reference: np.ndarray, rate: float, tolerance: float) -> np.ndarray:
    """The :data:`TALLY` row of one trace's predicted against reference pick positions of one phase
    (samples, fractional allowed) within ``tolerance`` seconds, matched as :func:`score` matches."""
    def on_trace(positions: np.ndarray) -> list[Pick]:
        return [Pick("", "", int(round(float(p) * NS / rate))) for p in positions]
    return score(on_trace(predicted), on_trace(reference), "", tolerance).tally


# ----------------------------------------------------------------------------- validation during training

METHODS = ("network", "classical")  # the rows of a validation tally: geocnn's picks, then STA/LTA's


@dataclass
class PickValidation:
    """Picks scored on validation windows of earthquake records labelled by ``data.picks`` (``labels: phases``).

    A window's picks are :func:`peaks` of each phase's probability (``data.picks.threshold``,
    ``min_separation``), matched with the window's true picks within the phase's tolerance; STA/LTA picks
    P on the window's Z component, its averages fed from up to its long window before the window (what it
    needs to be defined at the window's start), and its tally of a window is computed once.
    """

    labels: PickLabels
    records: Grid
    stalta: StaLta = field(default_factory=StaLta)
    _classical: dict[tuple[int, int], np.ndarray] = field(default_factory=dict)

    @property
    def phases(self) -> tuple[str, ...]:
        return self.labels.config.phases

    @property
    def shape(self) -> tuple[int, int, int]:
        """(methods, phases, counts) of :meth:`tally`."""
        return len(METHODS), len(self.phases), len(TALLY)

    def tolerance(self, k: int) -> float:
        """Seconds within which a pick of phase ``k`` (0-based) matches: its entry, else the last one."""
        tol = self.labels.config.tolerance
        return tol[min(k, len(tol) - 1)]

    def tally(self, probs: np.ndarray, station: int, first: int) -> np.ndarray:
        """``(methods, phases, counts)`` of the window of ``probs`` (classes, samples) at ``station``, ``first``."""
        cfg, rate, n = self.labels.config, self.labels.rate, probs.shape[-1]
        distance = max(1, int(round(cfg.min_separation * rate)))
        out = np.zeros(self.shape)
        for k in range(len(self.phases)):
            true = self.labels.picks_in(station, k + 1, first, first + n) - first
            out[0, k] = tally(peaks(probs[k + 1], cfg.threshold, distance), true, rate, self.tolerance(k))
        key = (station, first)
        if key not in self._classical:
            self._classical[key] = self._stalta(station, first, n)
        return out + self._classical[key]

    def _stalta(self, station: int, first: int, n: int) -> np.ndarray:
        """STA/LTA's P tally of a window (zeros for the phases it does not pick)."""
        out = np.zeros(self.shape)
        k = phase_class("P", self.phases)
        if k is None:
            return out
        rate = self.labels.rate
        lo = max(0, first - self.stalta.context(rate))
        z = self.records.channel_names.index("Z") if "Z" in self.records.channel_names else 0
        trace = self.records.read((slice(station, station + 1), slice(lo, first + n)))[z, 0]
        onsets = self.stalta.onsets(trace, rate, first - lo) - (first - lo)
        true = self.labels.picks_in(station, k, first, first + n) - first
        out[1, k - 1] = tally(onsets, true, rate, self.tolerance(k - 1))
        return out

    def scores(self, sums: np.ndarray) -> dict:
        """The validation entries of summed tallies: ``pick_<figure>_<phase>`` (residuals in seconds), and
        under ``classical`` STA/LTA's, for the phases it picks."""
        out: dict = {}
        classical: dict = {"method": self.stalta.name}
        for k, phase in enumerate(self.phases):
            out.update({f"pick_{name}_{phase}": v for name, v in figures(sums[0, k]).items()})
            if phase_class("P", self.phases) == k + 1:
                classical.update({f"pick_{name}_{phase}": v for name, v in figures(sums[1, k]).items()})
        return {**out, "classical": classical}
