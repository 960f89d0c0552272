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
from obspy import Stream, Trace, UTCDateTime  # noqa: E402
from obspy.core.event import Catalog, Event, Pick, WaveformStreamID  # noqa: E402

from geocnn.config import load_config  # noqa: E402
from geocnn.errors import ConfigError, DataError  # noqa: E402
from geocnn.grids.grid import open_grid  # noqa: E402
from geocnn.grids.picks import Picks, pick_target  # noqa: E402
from geocnn.train import train  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
T0 = UTCDateTime("2024-03-01T10:00:00")
N = 1000  # 10 s at 100 Hz


@pytest.fixture(scope="module")
def records(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("records")
    for sta in ("AAA", "BBB"):
        Stream([Trace(np.zeros(N, np.int32), header={"network": "XX", "station": sta, "channel": "HH" + c,
                                                      "starttime": T0, "sampling_rate": 100.0})
                for c in "ZNE"]).write(str(folder / f"{sta}.mseed"), format="MSEED")
    return folder


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


def test_sample_records_train_a_few_steps(tmp_path):
    few = ["train.max_steps=3", "train.batch_size=4", "data.sampling.patches_per_epoch=12",
           "data.sampling.val_patches=4", "train.examples=1", "train.threads=1"]
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
    # the last epoch's validation windows (held-out stations XG.AB05, XG.AB06), picks at 0.1 s (P) and 0.2 s (S)
    assert val["pick_f1_P"] > val["classical"]["pick_f1_P"] + 0.3
    assert val["pick_f1_S"] > 0.5 and abs(val["pick_residual_mean_P"]) < 0.05
