"""Picks from known probability traces are exact; pick lists round-trip through CSV and QuakeML; scores count.

Records of two stations at 100 Hz start at T0, so sample i is T0 + i/100 s and every expected pick is
written as sample numbers.
"""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest

obspy = pytest.importorskip("obspy")
from obspy import Stream, Trace, UTCDateTime  # noqa: E402

from geocnn.classical.stalta import StaLta  # noqa: E402
from geocnn.errors import ConfigError, DataError  # noqa: E402
from geocnn.grids.grid import open_grid  # noqa: E402
from geocnn.grids.picks import Picks, pick_target  # noqa: E402
from geocnn.grids.waveforms import WaveformSource  # noqa: E402
from geocnn.metric_names import Metric, metric, pick_metric  # noqa: E402
from geocnn.picking import (  # noqa: E402
    LabelSpan,
    Pick,
    Picker,
    PickValidation,
    figures,
    label_spans,
    peaks,
    record_view,
    score,
    tally,
    thresholds,
)
from tests.recordkit import write_silent_records  # noqa: E402

T0 = UTCDateTime("2024-03-01T10:00:00")
N = 2000


def bump(n: int, centre: int, height: float, sigma: float = 5.0) -> np.ndarray:
    return height * np.exp(-0.5 * ((np.arange(n) - centre) / sigma) ** 2)


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> WaveformSource:
    (src,) = open_grid(write_silent_records(tmp_path_factory.mktemp("records"), N, T0)).inputs
    return src


def test_peaks_of_a_known_trace():
    p = bump(N, 300, 0.9) + bump(N, 330, 0.7) + bump(N, 800, 0.45) + bump(N, 1200, 0.6)
    assert peaks(p, 0.5, 50).tolist() == [300, 1200]  # 330 is within 0.5 s of a higher one; 800 is below
    assert peaks(p, 0.5, 10).tolist() == [300, 330, 1200]
    assert peaks(p, 0.4, 50).tolist() == [300, 800, 1200]
    plateau = np.zeros(50)
    plateau[10:14] = 0.8
    plateau[30] = 0.8
    assert peaks(plateau, 0.5, 25).tolist() == [10]  # a plateau's first sample; the earlier one on a tie
    assert peaks(np.zeros(0), 0.5, 5).tolist() == []


def test_picker_writes_exact_times_as_csv_and_quakeml(source, tmp_path):
    probs = np.zeros((3, 2, N), np.float32)  # noise, P, S
    probs[1, 0] = bump(N, 250, 0.95)
    probs[2, 0] = bump(N, 437, 0.8)
    probs[1, 1] = bump(N, 1999, 0.7, 1)  # the last sample
    probs[0] = 1 - probs[1] - probs[2]  # noise is never picked
    picker = Picker(source, (None, "P", "S"), thresholds(0.5, ["P", "S"]), 0.5)
    picker.add(0, probs[:, :1])
    picker.add(1, probs[:, 1:])
    rows = list(csv.DictReader(picker.write(tmp_path / "picks.csv").open()))
    assert [(r["station"], r["phase"], r["time"], r["probability"]) for r in rows] == [
        ("XX.AAA.", "P", "2024-03-01T10:00:02.500000Z", "0.9500"),
        ("XX.AAA.", "S", "2024-03-01T10:00:04.370000Z", "0.8000"),
        ("XX.BBB.", "P", "2024-03-01T10:00:19.990000Z", "0.7000")]
    cat = obspy.read_events(str(picker.write(tmp_path / "picks.xml")))
    got = sorted((p.waveform_id.station_code, p.phase_hint, p.time) for p in cat[0].picks)
    assert got == [("AAA", "P", T0 + 2.5), ("AAA", "S", T0 + 4.37), ("BBB", "P", T0 + 19.99)]


def test_thresholds_per_phase():
    assert thresholds(0.3, ["P", "S"]) == {"P": 0.3, "S": 0.3}
    assert thresholds({"S": 0.4, "P": 0.6}, ["P", "S"]) == {"P": 0.6, "S": 0.4}
    with pytest.raises(ConfigError, match="the model's phases are P, S"):
        thresholds({"P": 0.5}, ["P", "S"])
    with pytest.raises(ConfigError, match=r"in \(0, 1\]"):
        thresholds(1.5, ["P"])


def test_scores_match_nearest_first_within_the_tolerance():
    ns = 1_000_000_000
    ref = [Pick("A", "P", 10 * ns), Pick("A", "P", 20 * ns), Pick("B", "P", 10 * ns), Pick("A", "S", 15 * ns)]
    pred = [Pick("A", "P", 10 * ns + ns // 10), Pick("A", "P", 10 * ns - ns // 20),  # two near one reference
            Pick("A", "P", 21 * ns),  # outside 0.5 s
            Pick("C", "P", 10 * ns)]  # another station
    s = score(pred, ref, "P", 0.5)
    assert (s.true_positives, s.predicted, s.reference) == (1, 4, 3)
    assert s.residuals == (-0.05,)  # the nearer one
    assert (s.precision, s.recall) == (0.25, 1 / 3) and s.f1 == pytest.approx(2 / 7)
    assert s.residual_mean == -0.05 and s.residual_std == 0.0
    assert s.figures is s.figures and s == score(pred, ref, "P", 0.5)  # computed once; the cache is no field
    empty = score([], ref, "S", 0.5)
    assert (empty.recall, empty.f1) == (0.0, 0.0) and math.isnan(empty.precision) and math.isnan(empty.residual_mean)
    with pytest.raises(DataError, match="tolerance must be positive"):
        score(pred, ref, "P", 0)


def test_figures_of_summed_tallies():
    a = tally(np.array([102.0, 300.0]), np.array([100.0]), 100.0, 0.1)  # +0.02 s, and a false pick
    b = tally(np.array([495.0]), np.array([500.0, 900.0]), 100.0, 0.1)  # −0.05 s, and a missed pick
    np.testing.assert_allclose(a, [1, 2, 1, 0.02, 0.0004])
    np.testing.assert_allclose(b, [1, 1, 2, -0.05, 0.0025])
    f = figures(a + b)
    assert (f["precision"], f["recall"], f["f1"]) == (2 / 3, 2 / 3, 4 / 6)
    assert f["residual_mean"] == pytest.approx(-0.015) and f["residual_std"] == pytest.approx(0.035)
    assert np.isnan(figures(np.zeros(5))["f1"]) and figures(np.array([0, 0, 3, 0, 0]))["f1"] == 0.0
    assert (pick_metric("f1", "P"), metric("pick_residual_std_S").higher_is_better) == (
        Metric("pick_f1_P", True), False)


def burst_records(folder, onset: int = 1200) -> WaveformSource:
    """One station, 20 s at 100 Hz: ±10 counts on every component, ±1000 on Z for 1 s from ``onset``."""
    z = np.tile(np.array([10, -10], np.int32), N // 2)
    z[onset:onset + 100] *= 100
    Stream([Trace(z if c == "Z" else np.tile(np.array([10, -10], np.int32), N // 2),
                  header={"network": "XX", "station": "AAA", "channel": "HH" + c, "starttime": T0,
                          "sampling_rate": 100.0}) for c in "ZNE"]).write(str(folder / "AAA.mseed"), format="MSEED")
    return open_grid(folder)


def test_sta_lta_triggers_at_the_burst():
    z = np.tile([10.0, -10.0], N // 2)
    z[1200:1300] *= 100
    assert StaLta().onsets(z, 100.0).tolist() == [1200]
    assert StaLta().onsets(z, 100.0, first=1201).tolist() == []  # only onsets from `first` on
    assert StaLta().onsets(z[:400], 100.0).tolist() == []  # shorter than the long window: none
    assert StaLta().name == "STA/LTA (0.5/5 s, on 3, off 1.5)"


def test_validation_windows_score_network_and_sta_lta_picks(tmp_path):
    grid = burst_records(tmp_path)
    (tmp_path / "p.csv").write_text("station,phase,time\nAAA,P,2024-03-01T10:00:12Z\nAAA,S,2024-03-01T10:00:15Z\n"
                                    "AAA,P,2024-03-01T10:00:19.5Z\n")  # the last outside the window
    v = PickValidation(pick_target(grid, Picks.parse({"path": str(tmp_path / "p.csv")})).inputs[0], grid)
    probs = np.zeros((3, 1024))  # the window of samples 800 .. 1823
    probs[1] = bump(1024, 402, 0.9) + bump(1024, 700, 0.6)  # P: +0.02 s, and a false pick
    probs[2] = bump(1024, 715, 0.8)  # S: +0.15 s, inside S's 0.2 s
    t = v.tally(probs, 0, 800)
    np.testing.assert_allclose(t[0], [[1, 2, 1, 0.02, 0.0004], [1, 1, 1, 0.15, 0.0225]])
    np.testing.assert_allclose(t[1], [[1, 1, 1, 0, 0], [0, 0, 0, 0, 0]])  # STA/LTA: P at its onset, no S
    s = v.scores(t)
    assert (s["pick_f1_P"], s["pick_recall_S"], s["pick_residual_mean_S"]) == (2 / 3, 1.0, pytest.approx(0.15))
    assert s["classical"] == {"method": "STA/LTA (0.5/5 s, on 3, off 1.5)", "pick_precision_P": 1.0,
                              "pick_recall_P": 1.0, "pick_f1_P": 1.0, "pick_residual_mean_P": 0.0,
                              "pick_residual_std_P": 0.0}
    probs[2] = bump(1024, 725, 0.8)  # +0.25 s: outside S's tolerance; set it to 0.3 s and it matches
    assert v.tally(probs, 0, 800)[0, 1, 0] == 0
    wide = PickValidation(pick_target(grid, Picks.parse({"path": str(tmp_path / "p.csv"), "tolerance": [0.1, 0.3]}))
                          .inputs[0], grid)
    assert wide.tally(probs, 0, 800)[0, 1, 0] == 1 and wide.tolerance(5) == 0.3


@pytest.fixture(scope="module")
def long_source(tmp_path_factory) -> WaveformSource:
    """Five stations of 120 s at 100 Hz (12,000 samples), all starting at T0."""
    folder = tmp_path_factory.mktemp("long")
    for sta in ("AAA", "BBB", "CCC", "DDD", "EEE"):
        Stream([Trace(np.zeros(12_000, np.int32), header={"network": "XX", "station": sta, "channel": "HH" + c,
                                                           "starttime": T0, "sampling_rate": 100.0})
                for c in "ZNE"]).write(str(folder / f"{sta}.mseed"), format="MSEED")
    (src,) = open_grid(folder).inputs
    return src


def at(station: str, phase: str, seconds: float, probability: float) -> Pick:
    return Pick(f"XX.{station}.", phase, T0.ns + int(round(seconds * 1e9)), probability)


def test_record_view_centres_a_minute_on_the_most_probable_pick(long_source):
    picks = [at("AAA", "P", 40.0, 0.7), at("BBB", "S", 50.25, 0.9), at("AAA", "S", 85.0, 0.6),
             at("EEE", "P", 30.0, 0.99)]  # EEE is the fifth station: not shown, not the centre
    view = record_view(long_source, picks)
    assert view.stations == ("XX.AAA.", "XX.BBB.", "XX.CCC.", "XX.DDD.")
    assert (view.first, view.stop) == (5025 - 3000, 5025 + 3000)  # BBB's S at sample 5025, ±30 s
    assert view.start_ns == (T0 + 20.25).ns and view.time_label == "seconds after 2024-03-01T10:00:20.25Z"
    # AAA's S at 85 s is past the window's end (80.25 s)
    assert [(ln.row, ln.phase, ln.seconds, ln.probability) for ln in view.lines] == [
        (0, "P", 40.0 - 20.25, 0.7), (1, "S", 50.25 - 20.25, 0.9)]
    assert view.window == (slice(0, 4), slice(2025, 8025)) and view.seconds[-1] == pytest.approx(59.99)


def test_record_view_stays_inside_the_records_and_bounded(long_source):
    late = record_view(long_source, [at("CCC", "P", 110.0, 0.8)])
    assert (late.first, late.stop) == (6000, 12_000)  # pushed back inside the 120 s
    assert late.time_label == "seconds after 2024-03-01T10:01:00Z" and late.lines[0].seconds == 50.0
    none = record_view(long_source, [])
    assert (none.first, none.stop, none.lines) == (0, 6000, ())  # no picks: the first minute
    short = record_view(long_source, [at("AAA", "P", 40.0, 0.7)], stations=2, samples=1000)  # at most 1000 samples
    assert short.stations == ("XX.AAA.", "XX.BBB.") and (short.first, short.stop) == (3500, 4500)
    assert [ln.seconds for ln in short.lines] == [5.0]


def test_label_spans_are_the_runs_of_each_phase_in_seconds():
    # at 100 Hz, a run of samples a..b−1 spans a/100..b/100 s: touching P and S share 0.80 s, a one-sample S
    # spans one interval; noise (0) is never a span; 255 (a class beyond uint8's wrap) starts a row alike
    labels = np.zeros((3, 100), np.uint8)
    labels[0, 50:80], labels[0, 80:90], labels[0, 95] = 1, 2, 2
    labels[1, :3], labels[1, 98:] = 1, 1
    labels[2, 0] = 255
    assert label_spans(labels, 100.0) == (
        LabelSpan(0, 1, 0.5, 0.8), LabelSpan(0, 2, 0.8, 0.9), LabelSpan(0, 2, 0.95, 0.96),
        LabelSpan(1, 1, 0.0, 0.03), LabelSpan(1, 1, 0.98, 1.0), LabelSpan(2, 255, 0.0, 0.01))
    assert label_spans(np.zeros((2, 40), np.uint8), 50.0) == ()
