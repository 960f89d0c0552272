"""Probability traces as miniSEED, what ObsPy, SeisBench and a locator read: one trace per station and class.

A prediction on earthquake records (:class:`~geocnn.grids.waveforms.WaveformSource`, a grid
``(station, sample)`` with the components as channels) is written as one float32 trace per station and
written channel (class), carrying the input's network, station and location codes, its start time
(sample 0 of the grid) and sampling rate. The channel code marks the class, as SeisBench's ``annotate``
does, but within SEED's three letters (:func:`channel_codes`): ``XX`` and the class name's first letter,
upper case (noise, P, S → ``XXN``, ``XXP``, ``XXS``); when two class names share a first letter, or the
run has none, ``XX`` and the class number (``XX0``, ``XX1`` ...). Noise is written too: the probabilities
of a sample sum to one over the traces of its station. The input's gaps stay gaps: where no component of a
station was recorded (:meth:`~geocnn.grids.waveforms.WaveformSource.recorded`) nothing is written, so a
station's traces are one per recorded stretch, as SeisBench's annotate gives them.

miniSEED is a sequence of independent records, so a file made of several written one after the other is
one miniSEED file. Each station's traces are encoded as soon as its row is written and appended to the
temporary file beside the output (an exclusive ``flock`` around the append, so torchrun ranks may write
their own stations); the commit renames it into place. Memory is one station row; rows are whole
(every sample), which is how dense prediction writes them.

:class:`WrittenTraces` reads a window of such a file back (the preview picture's): ObsPy's ``read`` with a
start and end time decodes only the records that touch it.
"""

from __future__ import annotations

import fcntl
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from geocnn import atomic
from geocnn.errors import DataError
from geocnn.grids.pending import FileOutput, OutputSpec, check_present, fit_window
from geocnn.grids.waveforms import MAX_SAMPLES, WaveformSource, require_obspy

MINISEED_SUFFIXES = (".mseed", ".miniseed", ".ms")
PREFIX = "XX"  # band and instrument letters of every written channel: not a sensor
MAX_NUMBERED = 10  # class numbers 0-9 fit SEED's third channel letter


def channel_codes(class_names: tuple[str, ...] | list[str], classes: tuple[int, ...]) -> tuple[str, ...]:
    """The SEED channel code of each written class (see the module docstring for the rule).

    >>> channel_codes(("noise", "P", "S"), (0, 1, 2))
    ('XXN', 'XXP', 'XXS')
    >>> channel_codes(("noise", "event"), (1,))
    ('XXE',)
    >>> channel_codes(("P", "Pn"), (0, 1))
    ('XX0', 'XX1')
    """
    letters = [n[:1].upper() for n in class_names]
    if class_names and len(set(letters)) == len(letters) and all(c.isalnum() for c in letters):
        return tuple(PREFIX + letters[k] for k in classes)
    if max(classes) >= MAX_NUMBERED:
        raise DataError(f"{max(classes) + 1} classes do not fit a one-letter SEED channel mark (at most {MAX_NUMBERED})",
                        fix="give the classes names with distinct first letters (data.class_names), or write .npy")
    return tuple(f"{PREFIX}{k}" for k in classes)


def _records(like_inputs: tuple[Any, ...], where: str) -> WaveformSource:
    """The one earthquake-record input a miniSEED output lines up with; DataError otherwise."""
    found = [s for s in like_inputs if isinstance(s, WaveformSource)]
    if len(found) != 1 or len(like_inputs) != 1:
        raise DataError("a miniSEED output holds traces lined up with one input of earthquake records "
                        "(miniSEED, SAC ... read through ObsPy)", where=where, fix="write a .npy output instead")
    return found[0]


def _written_classes(spec: OutputSpec) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """Class names of the run and the class each written channel holds: every class, or P(class 1) of two."""
    names = tuple(spec.class_names)
    k = len(names)
    if spec.channels == 1 and k == 2:
        return names, (1,)
    if k and spec.channels != k:
        raise DataError(f"{spec.channels} channel(s) written for {k} classes: a miniSEED output holds every class "
                        "probability of a station as its own trace", where=spec.path,
                        fix="leave --split-classes out (and write --output probabilities)")
    return names, tuple(range(spec.channels))


@dataclass(frozen=True, eq=False)
class SeismoOutput(FileOutput):
    """A miniSEED file being written: rows are stations, channels the written classes (one trace each)."""

    codes: tuple[str, ...]  # channel code of each written channel
    records: WaveformSource  # the input: its stations' codes, time axis and rate; nothing written where it has none

    @classmethod
    def prepare(cls, spec: OutputSpec, attach: str | None = None) -> SeismoOutput:
        final = atomic.check_new(spec.path, spec.force) if attach is None else Path(spec.path)
        if not final.name.lower().endswith(MINISEED_SUFFIXES):
            raise DataError("geocnn writes earthquake-record outputs as miniSEED (one SAC or GSE2 file holds "
                            "one trace)", where=spec.path, fix=f"name the output {' or '.join(MINISEED_SUFFIXES)}")
        src = _records(spec.like.inputs, spec.path)
        if tuple(spec.shape) != (len(src.stations), src.shape[-1]) or spec.interval_us != src.meta.sample_interval_us:
            raise DataError(f"a miniSEED output holds one trace per station at the records' rate; this output is "
                            f"shaped {tuple(spec.shape)}", where=spec.path, fix="write a .npy output instead")
        names, classes = _written_classes(spec)
        codes = channel_codes(names, classes)
        tmp = attach if attach is not None else str(atomic.temp_path(final))
        return cls(str(final), tmp, tuple(spec.shape), spec.channels, "float32", spec.force, codes, src)

    def write(self, window: tuple[slice, ...], values: np.ndarray) -> None:
        """Append whole station rows (``(channels, stations, samples)``) to the file, one station at a time."""
        check_present(self.tmp)
        window, values = fit_window(self.shape, self.channels, window, values)
        if (window[1].start, window[1].stop) != (0, self.shape[1]):
            raise ValueError(f"a miniSEED output is written in whole station rows; got samples "
                             f"{window[1].start}:{window[1].stop} of {self.shape[1]}")
        rows = range(window[0].start, window[0].stop)
        recorded = self.records.recorded(rows)
        for i, row in enumerate(rows):
            self._append(self._encode(row, values[:, i], recorded[i]))

    def _encode(self, row: int, traces: np.ndarray, recorded: np.ndarray) -> bytes:
        """One station's traces ``(channels, samples)`` as miniSEED records (float32), one trace per
        recorded stretch: the input's gaps stay gaps (an empty bytes when nothing was recorded)."""
        obspy = require_obspy()
        net, sta, loc = self.records.stations[row].split(".")
        stream = obspy.Stream()
        for lo, hi in runs(recorded):
            start = obspy.UTCDateTime(ns=self.records.time_of(lo))
            stream.extend([obspy.Trace(np.ascontiguousarray(trace[lo:hi], dtype=np.float32),
                                       header={"network": net, "station": sta, "location": loc, "channel": code,
                                               "starttime": start, "sampling_rate": self.records.rate})
                           for code, trace in zip(self.codes, traces)])
        if not len(stream):
            return b""
        buf = io.BytesIO()
        stream.write(buf, format="MSEED", encoding="FLOAT32")
        return buf.getvalue()

    def _append(self, data: bytes) -> None:
        with open(self.tmp, "ab") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)  # torchrun ranks append whole stations, one at a time
            fh.write(data)


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """``(start, stop)`` of each stretch of True in a 1D mask.

    >>> runs(np.array([0, 1, 1, 0, 1], bool))
    [(1, 3), (4, 5)]
    """
    edges = np.flatnonzero(np.diff(np.concatenate(([0], mask.astype(np.int8), [0]))))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2])]


@dataclass(frozen=True)
class WrittenTraces:
    """A written miniSEED output read back window by window, as ``(channels, stations, samples)`` on the
    records' time axis (a sample no trace covers is NaN)."""

    path: str
    codes: tuple[str, ...]  # channel code of each written channel
    records: WaveformSource  # the input: its stations' codes (one row each) and time axis

    @classmethod
    def of(cls, spec: OutputSpec) -> WrittenTraces:
        """The traces a prediction of ``spec`` wrote (its input's stations and time axis, its channel codes)."""
        names, classes = _written_classes(spec)
        return cls(str(spec.path), channel_codes(names, classes), _records(spec.like.inputs, spec.path))

    def read(self, window: tuple[slice, slice]) -> np.ndarray:
        """The values of a (station, sample) window; only the records that touch it are decoded."""
        stations = self.records.stations
        rows, samples = (range(*w.indices(n)) for w, n in zip(window, (len(stations), MAX_SAMPLES)))
        out = np.full((len(self.codes), len(rows), len(samples)), np.nan, dtype=np.float32)
        obspy = require_obspy()
        t0 = obspy.UTCDateTime(ns=self.records.time_of(samples.start))
        stream = obspy.read(self.path, format="MSEED", starttime=t0,
                            endtime=t0 + (len(samples) - 1) / self.records.rate)
        index = {st: i for i, st in enumerate(stations)}
        for tr in stream:
            row, code = index.get(tr.id.rsplit(".", 1)[0]), tr.stats.channel
            if row not in rows or code not in self.codes:
                continue
            first = self.records.sample_of(tr.stats.starttime.ns) - samples.start
            lo, hi = max(first, 0), min(first + tr.stats.npts, len(samples))
            if hi > lo:
                out[self.codes.index(code), row - rows.start, lo:hi] = tr.data[lo - first:hi - first]
        return out
