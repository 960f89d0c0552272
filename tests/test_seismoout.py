"""miniSEED probability traces: read back by ObsPy with the input's codes, start time and rate, values equal
to the ``.npy`` prediction of the same run; the channel code rule; what a miniSEED output refuses.

A picking model trained a few steps on the sample records predicts two stations written here by ObsPy:
``XX.AAA.00`` starting at T0 and ``XX.BBB.`` starting 0.5 s later (the grid's sample 0 is T0).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from matplotlib.colors import to_hex

obspy = pytest.importorskip("obspy")
from obspy import Stream, Trace, UTCDateTime  # noqa: E402

from geocnn.config import load_config  # noqa: E402
from geocnn.errors import DataError  # noqa: E402
from geocnn.grids.grid import open_grid  # noqa: E402
from geocnn.grids.seismoout import WrittenTraces, channel_codes  # noqa: E402
from geocnn.grids.writer import prepare  # noqa: E402
from geocnn.picking import PickLine, RecordView, label_spans, peaks, record_view  # noqa: E402
from geocnn.plots import DPI, labels_figure, records_figure  # noqa: E402
from geocnn.predict.api import predict  # noqa: E402
from geocnn.train import train  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
T0 = UTCDateTime("2024-03-01T10:00:00")
N = 1200


@pytest.fixture(scope="module")
def picking_run(tmp_path_factory) -> Path:
    few = ["train.max_steps=2", "train.batch_size=4", "data.sampling.patches_per_epoch=8",
           "data.sampling.val_patches=4", "train.examples=0", "train.threads=1"]
    return train(load_config(ROOT / "configs" / "picking.yaml", few), tmp_path_factory.mktemp("run") / "run")


@pytest.fixture(scope="module")
def records(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("records")
    rng = np.random.default_rng(0)
    for sta, loc, delay in (("AAA", "00", 0.0), ("BBB", "", 0.5)):
        Stream([Trace(rng.normal(0, 100, N).astype(np.int32),
                      header={"network": "XX", "station": sta, "location": loc, "channel": "HH" + c,
                              "starttime": T0 + delay, "sampling_rate": 100.0})
                for c in "ZNE"]).write(str(folder / f"{sta}.mseed"), format="MSEED")
    return folder


@pytest.fixture(scope="module")
def predicted(picking_run, records, tmp_path_factory) -> tuple[Path, Path]:
    out = tmp_path_factory.mktemp("out")
    kw = {"device_name": "cpu", "threads": 1}
    npy = predict(picking_run, [records], out / "probs.npy", output="probabilities", **kw).output
    mseed = predict(picking_run, [records], out / "probs.mseed", **kw).output  # auto: probabilities
    return npy, mseed


def test_traces_carry_the_input_codes_start_and_rate(predicted):
    _, mseed = predicted
    stream = obspy.read(str(mseed))
    assert sorted(tr.id for tr in stream) == sorted(f"XX.{sta}.{ch}" for sta in ("AAA.00", "BBB.")
                                                    for ch in ("XXN", "XXP", "XXS"))
    for tr in stream:  # the grid spans T0 to BBB's end; each station's traces span its own records
        delay = 0.5 if tr.stats.station == "BBB" else 0.0
        assert tr.stats.starttime == T0 + delay and tr.stats.sampling_rate == 100.0
        assert tr.stats.npts == N and tr.data.dtype == np.float32
        assert tr.stats.mseed.encoding == "FLOAT32"
    assert not list(mseed.parent.glob(".*geocnn-tmp*"))  # nothing left beside it


def test_values_equal_the_npy_prediction(predicted):
    npy, mseed = predicted
    probs = np.load(npy)  # (class, station, sample)
    assert probs.shape == (3, 2, N + 50)
    stream = obspy.read(str(mseed))
    for s, sta in enumerate(("AAA", "BBB")):
        for k, ch in enumerate(("XXN", "XXP", "XXS")):
            (tr,) = stream.select(station=sta, channel=ch)
            np.testing.assert_array_equal(tr.data, probs[k, s, 50 * s:50 * s + N])  # BBB's starts 0.5 s later
        total = sum(tr.data.astype(np.float64) for tr in stream.select(station=sta))
        np.testing.assert_allclose(total, 1.0, atol=1e-5)  # noise, P and S of a sample sum to one


def test_channel_code_rule():
    assert channel_codes(("noise", "P", "S"), (0, 1, 2)) == ("XXN", "XXP", "XXS")
    assert channel_codes(("noise", "event"), (1,)) == ("XXE",)
    assert channel_codes(("P", "Pn", "S"), (0, 1, 2)) == ("XX0", "XX1", "XX2")  # first letters clash
    assert channel_codes((), (0, 1)) == ("XX0", "XX1")
    with pytest.raises(DataError, match="11 classes"):
        channel_codes(tuple(f"p{k}" for k in range(11)), tuple(range(11)))


@pytest.mark.parametrize("name, options, message", [
    ("probs.sac", {}, "one SAC or GSE2 file holds one trace"),
    ("probs.mseed", {"output": "labels"}, "holds probabilities, not labels"),
    ("probs.mseed", {"split_classes": True}, "leave --split-classes out"),
])
def test_what_a_miniseed_output_refuses(picking_run, records, tmp_path, name, options, message):
    with pytest.raises(DataError, match=message):
        predict(picking_run, [records], tmp_path / name, device_name="cpu", threads=1, **options)
    assert not list(tmp_path.iterdir())


def test_a_grid_that_is_not_records_is_refused(tmp_path):
    np.save(tmp_path / "g.npy", np.zeros((2, 3, 8), np.float32))
    with pytest.raises(DataError, match="lined up with one input of earthquake records"):
        prepare(tmp_path / "p.mseed", open_grid(tmp_path / "g.npy"), channels=1)


def test_predict_writes_picks_at_the_probability_peaks(picking_run, records, predicted, cli, tmp_path):
    npy, _ = predicted
    probs = np.load(npy)
    # a model trained two steps is not confident: thresholds its top half-percent of samples passes
    thr = {ph: round(float(np.quantile(probs[k], 0.995)), 3) for ph, k in (("P", 1), ("S", 2))}
    result = cli("predict", picking_run, records, "--out", tmp_path / "p.mseed", "--picks", tmp_path / "picks.csv",
                 "--threshold", f"P={thr['P']},S={thr['S']}", "--min-separation", "0.3", "--threads", "1",
                 "--device", "cpu")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader((tmp_path / "picks.csv").open()))
    phases = {"P": 1, "S": 2}
    recorded = np.ones(probs.shape[1:], bool)
    recorded[0, N:], recorded[1, :50] = False, False  # AAA ends 0.5 s before BBB, which starts 0.5 s late
    expected = sorted((f"XX.{sta}", ph, int(i)) for s, sta in enumerate(("AAA.00", "BBB."))
                      for ph, k in phases.items() for i in peaks(np.where(recorded[s], probs[k, s], 0), thr[ph], 30))
    got = sorted((r["station"], r["phase"], int(round((UTCDateTime(r["time"]) - T0) * 100))) for r in rows)
    assert got == expected and len(got) > 0
    assert (tmp_path / "p.preview.png").stat().st_size > 10_000  # the records, probabilities and these picks
    for r in rows:  # each pick's probability is the trace's value at its sample
        s, k = ("AAA.00", "BBB.").index(r["station"][3:]), phases[r["phase"]]
        i = int(round((UTCDateTime(r["time"]) - T0) * 100))
        assert float(r["probability"]) == pytest.approx(probs[k, s, i], abs=5e-5) and probs[k, s, i] >= thr[r["phase"]]


@pytest.mark.parametrize("args, message", [
    (["--threshold", "Q=0.5"], "the model's phases are P, S"),
    (["--threshold", "high"], "--threshold must be a number or phase=number pairs"),
    (["--min-separation", "0"], "--min-separation must be positive"),
    (["--output", "labels"], "--picks finds the peaks of class probabilities"),
])
def test_bad_pick_options_are_one_line(picking_run, records, cli, tmp_path, args, message):
    result = cli("predict", picking_run, records, "--out", tmp_path / "p.npy", "--picks", tmp_path / "picks.csv",
                 "--threads", "1", *args)
    assert result.exit_code == 2 and message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "picks.csv").exists() and not (tmp_path / "p.npy").exists()


def test_written_traces_read_a_window_back(predicted, records):
    npy, mseed = predicted
    probs = np.load(npy)
    (source,) = open_grid(records).inputs  # the time axis the traces are read on: sample 0 at T0, 100 Hz
    assert (source.stations, source.time_of(0), source.time_of(100)) == (("XX.AAA.00", "XX.BBB."), T0.ns, (T0 + 1).ns)
    traces = WrittenTraces(str(mseed), ("XXN", "XXP", "XXS"), source)
    np.testing.assert_array_equal(traces.read((slice(0, 2), slice(300, 700))), probs[:, :, 300:700])
    np.testing.assert_array_equal(traces.read((slice(1, 2), slice(1200, 1250))), probs[:, 1:, 1200:1250])
    assert np.isnan(traces.read((slice(0, 1), slice(1240, 1260)))[:, :, 10:]).all()  # past the traces' end
    assert (mseed.parent / "probs.preview.png").exists()  # no picks: the first minute (here all 12.5 s)


def test_records_figure_draws_each_pick_at_its_time():
    view = RecordView(("XX.AAA.00", "XX.BBB."), 200, 500, (T0 + 2).ns, 100.0,
                      (PickLine(0, "P", 0.5, 0.9), PickLine(1, "S", 2.25, 0.6)))
    rng = np.random.default_rng(1)
    records = rng.normal(0, 1, (3, 2, 300)) * np.array([1, 10, 100])[:, None, None]
    records[:, 0, 100:150] = np.nan  # a gap of AAA: drawn as a gap, the scaling taken from the rest
    records[:, 1, :] = np.nan  # BBB recorded nothing in the window
    probs = np.stack([np.full((2, 300), 0.25), np.full((2, 300), 0.5)])
    fig = records_figure(view, records, probs, ("Z", "N", "E"), ("P", "S"))
    axes = fig.axes
    assert [ax.get_title() for ax in axes[::2]] == ["XX.AAA.00", "XX.BBB."]
    assert axes[-1].get_xlabel() == "seconds after 2024-03-01T10:00:02Z"
    for ax, want in zip(axes, ([0.5], [0.5], [2.25], [2.25])):  # on the records and the probabilities
        picks = [ln for ln in ax.get_lines() if ln.get_label().endswith("pick")]
        assert [ln.get_xdata()[0] for ln in picks] == want
    top = axes[0].get_lines()[:3]  # Z, N, E of AAA, each scaled to its own largest |amplitude|
    for c, ln in enumerate(top):
        assert np.nanmax(np.abs(ln.get_ydata() + 2.2 * c)) == pytest.approx(1.0)
        assert np.isnan(ln.get_ydata()[100:150]).all() and np.isfinite(ln.get_ydata()[:100]).all()
    assert all(np.isnan(ln.get_ydata()).all() for ln in axes[2].get_lines()[:3])
    p, s = axes[1].get_lines()[:2]
    assert p.get_ydata()[0] == 0.25 and s.get_ydata()[0] == 0.5 and axes[1].get_ylim() == (-0.02, 1.02)
    assert p.get_color() != s.get_color()
    assert ([ln.get_color() for ln in axes[1].get_lines() if ln.get_label() == "P pick"]
            == [p.get_color()])  # a pick's colour is its phase's


def test_labels_figure_shades_each_labelled_stretch_in_its_phase_colour():
    view = RecordView(("XX.AAA.00", "XX.BBB."), 200, 500, (T0 + 2).ns, 100.0, ())
    labels = np.zeros((2, 300), np.uint8)
    labels[0, 50:80], labels[0, 80:90], labels[1, 200] = 1, 2, 2  # P 0.5–0.8 s, S 0.8–0.9 s; S 2.00–2.01 s
    records = np.random.default_rng(2).normal(0, 1, (3, 2, 300))
    fig = labels_figure(view, records, label_spans(labels, 100.0), ("Z", "N", "E"), ("P", "S"))
    axes = fig.axes
    assert [ax.get_title() for ax in axes[::2]] == ["XX.AAA.00", "XX.BBB."]
    assert axes[-1].get_xlabel() == "seconds after 2024-03-01T10:00:02Z"
    assert fig.get_suptitle() == "prediction preview: labels, 3 labelled stretch(es), 0.41 s"
    p_color, s_color = "C0", "C1"  # as the probability preview draws P and S
    shaded = [[(round(r.get_x(), 6), round(r.get_x() + r.get_width(), 6), to_hex(r.get_facecolor()[:3]))
               for r in ax.patches] for ax in axes[::2]]
    assert shaded == [[(0.5, 0.8, to_hex(p_color)), (0.8, 0.9, to_hex(s_color))], [(2.0, 2.01, to_hex(s_color))]]
    # the strip: a lane per phase (P on top), each stretch a bar in its lane
    for strip, want in zip(axes[1::2], ([(0.5, 0.8, 1), (0.8, 0.9, 0)], [(2.0, 2.01, 0)])):
        assert [t.get_text() for t in strip.get_yticklabels()] == ["P", "S"]
        bars = [(round(v[:, 0].min(), 6), round(v[:, 0].max(), 6), int(v[:, 1].min()))
                for c in strip.collections for v in (path.vertices for path in c.get_paths())]
        assert bars == want
    top = axes[0].get_lines()  # the components as in the probability preview
    assert len(top) == 3 and np.nanmax(np.abs(top[0].get_ydata())) == pytest.approx(1.0)


def test_predicted_labels_of_records_get_a_records_preview(picking_run, records, tmp_path):
    """``--output labels`` on records: the preview is the records over their labelled stretches (2 stations,
    the records' first minute: here all of them), not a section picture."""
    out = predict(picking_run, [records], tmp_path / "labels.npy", output="labels", device_name="cpu",
                  threads=1)
    labels = np.load(out.output)
    assert labels.shape == (2, N + 50) and labels.dtype == np.uint8
    png = tmp_path / "labels.preview.png"
    assert out.pictures == [png]
    head = png.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    assert (width, height) == (9 * DPI, round(0.52 * 4 * 2 * DPI))  # two stations of 3 + 1 panel heights
    view = record_view(open_grid(records).inputs[0], ())
    assert view.window == (slice(0, 2), slice(0, N + 50))  # what the picture drew: every sample's label
    spans = label_spans(labels[:, view.first:view.stop], 100.0)
    assert sum(s.stop - s.start for s in spans) == pytest.approx(np.count_nonzero(labels) / 100.0)


def test_a_gap_in_every_component_stays_a_gap_and_is_never_picked(picking_run, tmp_path):
    """Records of one station with a 2 s gap (samples 400-599) in all three components: the output holds
    two stretches per class, on the records' own samples, and a pick list with the lowest threshold
    has no pick in the gap (the model's output there is on the zeros a gap reads as)."""
    rng = np.random.default_rng(3)
    header = {"network": "XX", "station": "GAP", "location": "", "sampling_rate": 100.0}
    Stream([Trace(rng.normal(0, 100, n).astype(np.int32), header={**header, "channel": "HH" + c, "starttime": T0 + t})
            for c in "ZNE" for t, n in ((0.0, 400), (6.0, 600))]).write(str(tmp_path / "gap.mseed"), format="MSEED")
    valid = open_grid(tmp_path / "gap.mseed").valid()  # from the headers: dead sample by sample in training too
    assert valid.shape == (1, 1200) and valid[0, :400].all() and not valid[0, 400:600].any() and valid[0, 600:].all()
    kw = {"device_name": "cpu", "threads": 1}
    probs = np.load(predict(picking_run, [tmp_path / "gap.mseed"], tmp_path / "p.npy", output="probabilities",
                            **kw).output)
    predict(picking_run, [tmp_path / "gap.mseed"], tmp_path / "p.mseed", picks=tmp_path / "picks.csv",
            threshold=1e-6, min_separation=0.01, **kw)
    stream = obspy.read(str(tmp_path / "p.mseed")).sort(["channel", "starttime"])
    assert [(tr.stats.channel, tr.stats.starttime - T0, tr.stats.npts) for tr in stream] == [
        (ch, t, n) for ch in ("XXN", "XXP", "XXS") for t, n in ((0.0, 400), (6.0, 600))]
    for tr in stream:
        first = int(round((tr.stats.starttime - T0) * 100))
        k = ("XXN", "XXP", "XXS").index(tr.stats.channel)
        np.testing.assert_array_equal(tr.data, probs[k, 0, first:first + tr.stats.npts])
    samples = [int(round((UTCDateTime(r["time"]) - T0) * 100)) for r in csv.DictReader((tmp_path / "picks.csv").open())]
    assert samples and not any(400 <= i < 600 for i in samples)
