"""Phase picks → label traces on the records' own time axis: exact samples, stations by name, training.

Records of two stations at 100 Hz starting at T0; a pick at T0 + s seconds is sample 100·s, so every
expected label is written as sample numbers.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

obspy = pytest.importorskip("obspy")
from obspy import UTCDateTime  # noqa: E402
from obspy.core.event import Catalog, Event, Pick, WaveformStreamID  # noqa: E402

from geocnn.config import load_config  # noqa: E402
from geocnn.errors import ConfigError, DataError  # noqa: E402
from geocnn.grids.grid import open_grid  # noqa: E402
from geocnn.grids.picks import Picks, pick_target  # noqa: E402
from geocnn.tasks import hard_labels  # noqa: E402
from geocnn.train import train  # noqa: E402
from tests.recordkit import write_silent_records  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
T0 = UTCDateTime("2024-03-01T10:00:00")
N = 1000  # 10 s at 100 Hz


@pytest.fixture(scope="module")
def records(tmp_path_factory) -> Path:
    return write_silent_records(tmp_path_factory.mktemp("records"), N, T0)


def picks_csv(path: Path, rows: list[tuple[str, str, float]]) -> str:
    lines = [f"{sta},{phase},{(T0 + sec).isoformat()}Z" for sta, phase, sec in rows]
    path.write_text("station,phase,time\n" + "\n".join(lines) + "\n")
    return str(path)


def labels(records: Path, picks: str, **kw) -> np.ndarray:
    grid = open_grid(records)
    target = pick_target(grid, Picks.parse({"path": picks, **kw}))
    assert target.shape == grid.shape == (2, N) and target.channels == 1
    return target.read((slice(0, 2), slice(0, N)))[0]


def spans(row: np.ndarray) -> list[tuple[int, int, int]]:
    """(first, last, class) of each run of non-noise labels."""
    out, k = [], 0
    while k < len(row):
        if row[k]:
            j = k
            while j + 1 < len(row) and row[j + 1] == row[k]:
                j += 1
            out.append((k, j, int(row[k])))
            k = j + 1
        else:
            k += 1
    return out


def test_phase_boxes_land_on_the_exact_samples(records, tmp_path):
    # width 0.2 s: 10 samples either side; Pg is a P, Lg is not labelled; NET.STA and STA name stations
    path = picks_csv(tmp_path / "p.csv", [("XX.AAA", "P", 2.0), ("AAA", "S", 3.505), ("XX.BBB.", "Pg", 1.0),
                                          ("BBB", "Lg", 5.0), ("BBB", "S", 9.95)])
    y = labels(records, path)
    assert spans(y[0]) == [(190, 210, 1), (341, 360, 2)]  # 350.5 ± 10 → 340.5..360.5
    assert spans(y[1]) == [(90, 110, 1), (985, 999, 2)]  # cut at the records' end
    # a window reads the same labels as the whole
    grid = open_grid(records)
    target = pick_target(grid, Picks.parse({"path": path}))
    np.testing.assert_array_equal(target.read((slice(1, 2), slice(95, 400)))[0], y[1:2, 95:400])


def soft_labels(records: Path, picks: str, **kw) -> np.ndarray:
    grid = open_grid(records)
    target = pick_target(grid, Picks.parse({"path": picks, "shape": "gaussian", **kw}))
    assert target.shape == grid.shape == (2, N) and target.channel_names == ("noise", "P", "S")
    return target.read((slice(0, 2), slice(0, N)))  # (class, station, sample)


def test_gaussian_labels_are_class_probabilities_around_each_pick(records, tmp_path):
    # sigma 0.1 s = 10 samples: 1 on the pick, e^-1/2 at ±10 samples, e^-2 at ±20, 0 beyond ±30
    path = picks_csv(tmp_path / "g.csv", [("AAA", "P", 2.0), ("BBB", "S", 5.0), ("BBB", "P", 8.0), ("BBB", "S", 8.1)])
    y = soft_labels(records, path)
    p, s = y[1, 0], y[2, 1]
    assert p[200] == 1 and y[0, 0, 200] == 0 and s[500] == 1
    np.testing.assert_allclose([p[190], p[180], p[170], p[169]], [np.exp(-0.5), np.exp(-2), np.exp(-4.5), 0], rtol=1e-6)
    np.testing.assert_allclose([s[490], s[510], s[530], s[531]], [np.exp(-0.5), np.exp(-0.5), np.exp(-4.5), 0],
                               rtol=1e-6)
    np.testing.assert_allclose(y[0], 1 - y[1] - y[2], atol=1e-7)  # noise = 1 − P − S everywhere
    assert y[:, 0, 400:].tolist() == [[1] * 600, [0] * 600, [0] * 600]
    # P at 800 and S at 810 overlap: at 805 both are e^-1/8, scaled to 1/2 each, noise 0
    np.testing.assert_allclose(y[:, 1, 805], [0, 0.5, 0.5], atol=1e-7)
    a, b = np.exp(-0.5 * 0.4**2), np.exp(-0.5 * 0.6**2)  # at 806: 0.6 σ from P, 0.4 σ from S
    np.testing.assert_allclose(y[:, 1, 806], [0, b / (a + b), a / (a + b)], rtol=1e-6)
    # at 790: P e^-1/2, S e^-2, sum below 1: kept, noise the rest
    np.testing.assert_allclose(y[:, 1, 790], [1 - np.exp(-0.5) - np.exp(-2), np.exp(-0.5), np.exp(-2)], rtol=1e-6)
    # a window reads the same probabilities as the whole; metrics and class counts take the most probable
    target = pick_target(open_grid(records), Picks.parse({"path": path, "shape": "gaussian"}))
    np.testing.assert_array_equal(target.read((slice(1, 2), slice(95, 900))), y[:, 1:2, 95:900])
    hard = hard_labels(y, axis=0)  # alone, a pick's class beats noise (above 1/2) within σ·√(2 ln 2) = 11.8 samples
    assert spans(hard[0]) == [(189, 211, 1)]
    # side by side, 12 samples out P (0.487) beats noise (0.424: S adds 0.089); a tie (805) goes to the first
    assert spans(hard[1]) == [(489, 511, 2), (788, 805, 1), (806, 822, 2)]


def test_gaussian_labels_take_every_loss_of_their_classes_and_need_phases(records, tmp_path):
    path = ROOT / "configs" / "picking.yaml"
    for kind in ("cross_entropy", "focal", "dice"):
        weights = [] if kind != "dice" else ["train.loss.class_weights=none"]  # dice would ignore the config's
        assert load_config(path, ["data.picks.shape=gaussian", f"train.loss.kind={kind}", *weights]
                           ).train.loss.kind == kind
    # bce_balanced scores one class against class 0: refused for noise, P and S, box or gaussian
    for shape in ("gaussian", "box"):
        with pytest.raises(ConfigError) as err:
            load_config(path, [f"data.picks.shape={shape}", "train.loss.kind=bce_balanced"])
        assert str(err.value) == ("--set train.loss.kind: loss bce_balanced scores two classes, but data.picks labels "
                                  "3 (noise, P, S) — use train.loss.kind: cross_entropy, focal or dice, or "
                                  "data.picks.phases with one phase")
    one = load_config(path, ["data.picks.shape=gaussian", "data.picks.phases=[P]", "train.loss.kind=bce_balanced",
                             "train.loss.class_weights=none"])
    assert one.data.picks.classes == 2
    with pytest.raises(DataError, match="detection labels are boxes"):
        soft_labels(records, picks_csv(tmp_path / "d.csv", [("AAA", "P", 1.0)]), labels="detection")


def test_detection_runs_from_p_to_s_plus_coda(records, tmp_path):
    path = picks_csv(tmp_path / "d.csv", [("AAA", "P", 1.0), ("AAA", "S", 2.0), ("BBB", "P", 4.0)])
    y = labels(records, path, labels="detection", coda=1.4)
    assert spans(y[0]) == [(100, 340, 1)]  # S + 1.4 × (S − P) = 3.4 s
    assert spans(y[1]) == [(400, 420, 1)]  # no S: the width after P


def test_quakeml_catalog_gives_the_csv_labels(records, tmp_path):
    rows = [("AAA", "P", 2.0), ("BBB", "S", 4.0)]
    event = Event(picks=[Pick(time=T0 + sec, phase_hint=ph, waveform_id=WaveformStreamID("XX", sta, "", "HHZ"))
                         for sta, ph, sec in rows])
    Catalog([event]).write(str(tmp_path / "cat.xml"), format="QUAKEML")
    np.testing.assert_array_equal(labels(records, str(tmp_path / "cat.xml")),
                                  labels(records, picks_csv(tmp_path / "c.csv", rows)))


def test_unknown_station_bad_time_and_other_inputs_are_one_error(records, tmp_path):
    with pytest.raises(DataError, match=r"u.csv:2: station 'AAB' of the pick list is not in the records — valid: XX.AAA., XX.BBB."):
        labels(records, picks_csv(tmp_path / "u.csv", [("AAB", "P", 1.0)]))
    (tmp_path / "t.csv").write_text("station,phase,time\nAAA,P,yesterday\n")
    with pytest.raises(DataError, match=r"t.csv:2: time 'yesterday' is not a UTC time"):
        labels(records, str(tmp_path / "t.csv"))
    (tmp_path / "h.csv").write_text("sta,phase,time\n")
    with pytest.raises(DataError, match="the pick list has no station column"):
        labels(records, str(tmp_path / "h.csv"))
    np.save(tmp_path / "a.npy", np.zeros((2, 10), np.float32))
    with pytest.raises(DataError, match="data.picks labels earthquake records, but the inputs are npy"):
        pick_target(open_grid(tmp_path / "a.npy"), Picks.parse({"path": str(tmp_path / "u.csv")}))


def test_picks_are_for_segmentation_and_not_with_a_target():
    path = ROOT / "configs" / "picking.yaml"
    with pytest.raises(ConfigError, match="picks label each sample for segmentation, not regression"):
        load_config(path, ["task=regression"])
    with pytest.raises(ConfigError, match="give data.target or data.picks, not both"):
        load_config(path, ["data.target=../data_samples/faults.npy"])


@pytest.mark.parametrize("shape, loss", [("box", "cross_entropy"), ("gaussian", "cross_entropy"),
                                         # the soft focal and dice forms have their numbers and gradients
                                         # checked in test_losses; here they train end to end (slow step)
                                         pytest.param("gaussian", "focal", marks=pytest.mark.slow),
                                         pytest.param("gaussian", "dice", marks=pytest.mark.slow)])
def test_sample_records_train_a_few_steps(tmp_path, shape, loss):
    few = ["train.max_steps=3", "train.batch_size=4", "data.sampling.patches_per_epoch=12",
           "data.sampling.val_patches=4", "train.examples=1", "train.threads=1", f"data.picks.shape={shape}",
           f"train.loss.kind={loss}", *(["train.loss.class_weights=none"] if loss == "dice" else [])]
    run = train(load_config(ROOT / "configs" / "picking.yaml", few), tmp_path / "run")
    line = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert line["step"] == 3 and np.isfinite(line["val_loss"]) and 0 <= line["val"]["miou"] <= 1
    assert np.sum(line["val"]["confusion"]) == 4 * 512 and len(line["val"]["confusion"]) == 3  # noise, P, S
    # picks scored per phase beside STA/LTA's P picks, the first phase's F1 heading the run
    assert {f"pick_{f}_{p}" for f in ("precision", "recall", "f1", "residual_mean", "residual_std")
            for p in "PS"} <= set(line["val"])
    assert line["val"]["classical"]["method"] == "STA/LTA (0.5/5 s, on 3, off 1.5)"
    assert "pick_recall_P" in line["val"]["classical"] and "pick_f1_S" not in line["val"]["classical"]
    assert line["best"]["headline"] == "pick_f1_P"
    split = json.loads((run / "split.json").read_text())
    assert split["axis"] == "station" and split["train"] == [0, 4] and split["validation"] == [4, 6]


@pytest.mark.slow  # ~1 minute on 2 cores: the example's whole training
def test_the_example_beats_sta_lta_on_held_out_stations(tmp_path):
    run = train(load_config(ROOT / "configs" / "picking.yaml", ["train.seed=0", "train.threads=1"]), tmp_path / "run")
    val = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])["val"]
    # the last epoch's validation windows (held-out stations XG.AB05, XG.AB06), picks at 0.1 s (P) and 0.2 s (S):
    # P 0.73 vs STA/LTA's 0.08, S 0.76 (2026-12-07; settings chosen on AB01–AB04: benchmarks/picking_settings.py)
    assert val["pick_f1_P"] > val["classical"]["pick_f1_P"] + 0.3
    assert val["pick_f1_S"] > 0.5 and abs(val["pick_residual_mean_P"]) < 0.05
    # docs/waveforms.md's walk-through on the trained example: every pick written is a peak of its phase's
    # probability trace — the trace of the recorded stretch (between gaps) that holds the pick's time
    import csv

    import obspy

    from geocnn.predict import predict

    predict(run, [str(ROOT / "data_samples" / "records" / "*.mseed")], tmp_path / "probs.mseed",
            picks=tmp_path / "picks.csv", threads=1, pictures=False)
    probs = obspy.read(str(tmp_path / "probs.mseed"))
    assert len(probs) > 6 * 3  # a trace per station and phase, and one more per stretch after a gap
    picks = list(csv.DictReader((tmp_path / "picks.csv").read_text().splitlines()))
    assert len(picks) > 50
    for row in picks:
        net, sta, loc = row["station"].split(".")
        t = UTCDateTime(row["time"])
        tr, = [tr for tr in probs.select(network=net, station=sta, location=loc, channel="XX" + row["phase"])
               if tr.stats.starttime <= t <= tr.stats.endtime]
        i = round((t - tr.stats.starttime) * tr.stats.sampling_rate)
        assert tr.data[i] == tr.data[max(i - 1, 0):i + 2].max() and tr.data[i] >= 0.5
        assert abs(tr.data[i] - float(row["probability"])) <= 5e-5


def test_best_metric_may_be_a_pick_figure_of_the_runs_phases(tmp_path):
    path = ROOT / "configs" / "picking.yaml"
    assert load_config(path, ["train.best_metric=pick_f1_S"]).train.best_metric == "pick_f1_S"
    with pytest.raises(ConfigError, match="best_metric 'pick_f1_X' is not a validation metric of task "
                                          "segmentation.*did you mean 'pick_f1_S'"):
        load_config(path, ["train.best_metric=pick_f1_X"])
    with pytest.raises(ConfigError, match="best_metric 'pick_f1_P' is not a validation metric"):
        load_config(path, ["data.picks.labels=detection", "train.best_metric=pick_f1_P"])
    few = ["train.epochs=3", "train.batch_size=8", "data.sampling.patches_per_epoch=64",
           "data.sampling.val_patches=32", "train.examples=1", "train.threads=1", "train.best_metric=pick_f1_P"]
    run = train(load_config(path, few), tmp_path / "run")
    ends = [x for x in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if "best" in x]
    f1 = [x["val"]["pick_f1_P"] for x in ends]
    assert len(f1) == 3 and all(0 <= v <= 1 for v in f1)
    # best.pt holds the first epoch of the highest F1, and the checkpoint says so
    assert [x["best"]["metric"] for x in ends] == ["pick_f1_P"] * 3
    assert ends[-1]["best"]["epoch"] == 1 + f1.index(max(f1)) and ends[-1]["best"]["value"] == max(f1)
