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
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from geocnn import atomic
from geocnn.errors import ConfigError, DataError
from geocnn.grids.picks import QUAKEML_SUFFIXES
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

    ``phases`` names the phase each written channel holds (None: noise, not picked).
    """

    source: WaveformSource
    phases: tuple[str | None, ...]
    threshold: dict[str, float]
    min_separation: float  # seconds
    picks: list[Pick] = field(default_factory=list)

    def add(self, first: int, values: np.ndarray) -> None:
        """Pick every phase channel of stations ``first ..`` (whole rows)."""
        distance = max(1, int(round(self.min_separation * self.source.rate)))
        for c, phase in enumerate(self.phases):
            if phase is None:
                continue
            for r in range(values.shape[1]):
                prob = values[c, r]
                for i in peaks(prob, self.threshold[phase], distance):
                    t = self.source.start_ns + int(round(int(i) * NS / self.source.rate))
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
    def precision(self) -> float:
        return self.true_positives / self.predicted if self.predicted else math.nan

    @property
    def recall(self) -> float:
        return self.true_positives / self.reference if self.reference else math.nan

    @property
    def f1(self) -> float:
        tp, n = self.true_positives, self.predicted + self.reference
        return 2 * tp / n if n else math.nan

    @property
    def residual_mean(self) -> float:
        return float(np.mean(self.residuals)) if self.residuals else math.nan

    @property
    def residual_std(self) -> float:
        return float(np.std(self.residuals)) if self.residuals else math.nan


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
