"""metrics.jsonl as typed records: lines written by geocnn before the record read back and write
back byte for byte, non-finite values survive strict JSON, and a task's metric set stays open."""

from __future__ import annotations

import json
import math

import pytest

from geocnn.config import load_config
from geocnn.runs import metrics_log
from geocnn.runs.checkpoint import load_checkpoint
from geocnn.runs.metrics_log import Best, EarlyStopState, EpochRecord, Resumed, StepLosses, Validation
from geocnn.runs.writer import epoch_line, outcome_line, with_baselines
from geocnn.train import train
from tests import trainkit

# Lines written by geocnn train before metrics.jsonl became a record (dict-built), copied from runs.
RESUMED = (
    '{"epoch": 2, "step": 8, "resumed": {"step": 6, "changed": {"train.epochs": [2, 3], "train.lr": [0.01, 0.004]}}, '
    '"train_loss": 0.6786317676305771, "val_loss": 0.6139264106750488, "val": {"mse": 0.4841411805348863, '
    '"snr_db": 0.3579907067985088, "baseline": {"mse": 0.24310825515804896, "snr_db": 3.3497138921127467}}, '
    '"step_loss": {"steps": [7, 8], "loss": [0.659324, 0.638069]}, "lr": 0.0010600000000000006, '
    '"patches_per_s": 839.1889490565173, "data_wait_fraction": 0.6632180546367923, "time_s": 0.00953301399999873, '
    '"best": {"metric": "val_loss", "value": 0.6139264106750488, "epoch": 2, "headline": "snr_db"}}')
STOPPED = (
    '{"epoch": 2, "step": 8, "train_loss": 0.0855594202876091, "val_loss": 0.05602957122027874, "val": '
    '{"accuracy": 0.8037109375, "precision": 0.39457831325301207, "recall": 1.0, "f1": 0.5658747300215983, '
    '"class_accuracy": [0.77491601343785, 1.0], "confusion": [[692, 201], [0, 131]], "baseline": {"accuracy": '
    '0.8720703125, "f1": 0.0, "class_accuracy": [1.0, 0.0]}}, "step_loss": {"steps": [5, 6, 7, 8], "loss": '
    '[0.0994928, 0.0792068, 0.0878898, 0.0756483]}, "lr": 0.03307091636218622, "patches_per_s": 1291.3027210636487, '
    '"data_wait_fraction": 0.2446172046091655, "time_s": 0.012390588000016578, "best": {"metric": "f1", "value": '
    '0.5833333333333334, "epoch": 1, "headline": "f1"}, "stopped_early": true, "early_stop": {"best": '
    '0.5833333333333334, "best_epoch": 1, "waited": 1, "patience": 1, "min_delta": 0.01}}')
# self-supervised with a clean twin: the task put clean_snr_db after its baseline
HIDDEN = (
    '{"epoch": 1, "step": 4, "train_loss": 1.3348807990550995, "val_loss": 1.0240320265293121, "val": {"mse": '
    '0.8075497159248118, "snr_db": -0.2826002618201707, "baseline": {"mse": 1.2543820760630335, "snr_db": '
    '-2.195205972118847, "clean_snr_db": 3.3497138921127467}, "clean_snr_db": -0.5700990588146266}, "step_loss": '
    '{"steps": [1, 2, 3, 4], "loss": [1.40978, 1.55657, 1.08035, 1.29283]}, "lr": 0.0051, "patches_per_s": '
    '385.39395451801363, "data_wait_fraction": 0.4099362028480311, "time_s": 0.04151595999996971, "best": '
    '{"metric": "val_loss", "value": 1.0240320265293121, "epoch": 1, "headline": "snr_db"}}')
# a partial epoch whose baseline is perfect (the input is the target): an infinite SNR
PERFECT = (
    '{"epoch": 1, "step": 1, "partial": true, "train_loss": 1.6355305910110474, "val_loss": 1.4749016165733337, '
    '"val": {"mse": 1.1631046359009036, "snr_db": -1.7245193347549017, "baseline": {"mse": 0.0, "snr_db": null, '
    '"snr_db_reason": "infinite"}}, "step_loss": {"steps": [1], "loss": [1.63553]}, "lr": 0.009627009709305306, '
    '"patches_per_s": 1346.9600794397047, "data_wait_fraction": 0.38973111309866815, "time_s": 0.0029696500000682136, '
    '"best": {"metric": "val_loss", "value": 1.4749016165733337, "epoch": 1, "headline": "snr_db"}}')
# an early version's line: no per-step losses, no headline
EARLY = ('{"epoch": 1, "step": 4, "train_loss": 0.9, "val_loss": 0.8, "val": {}, "lr": 0.01, "patches_per_s": 100.0, '
         '"data_wait_fraction": 0.1, "time_s": 0.5, "best": {"metric": "val_loss", "value": 0.8, "epoch": 1}}')


@pytest.mark.parametrize("line", [RESUMED, STOPPED, HIDDEN, PERFECT, EARLY])
def test_lines_of_today_read_back_and_write_back_byte_for_byte(line):
    assert EpochRecord.from_json(line).to_json() == line


def test_fields_of_a_line_are_typed():
    r = EpochRecord.from_json(RESUMED)
    assert (r.epoch, r.step, r.partial, r.lr) == (2, 8, False, 0.0010600000000000006)
    assert r.resumed == Resumed(6, {"train.epochs": [2, 3], "train.lr": [0.01, 0.004]})
    assert r.step_loss == StepLosses((7, 8), (0.659324, 0.638069))
    assert r.best == Best("val_loss", 0.6139264106750488, 2, "snr_db")
    assert r.val.value("snr_db") == 0.3579907067985088 and r.val.baseline("snr_db") == 3.3497138921127467
    assert r.val.names == ("mse", "snr_db") and r.stopped_early is None and r.early_stop is None
    s = EpochRecord.from_json(STOPPED)
    assert s.stopped_early is True and s.early_stop == EarlyStopState(0.5833333333333334, 1, 1, 1, 0.01)
    assert s.val.confusion == [[692, 201], [0, 131]] and s.val.value("class_accuracy") is None  # a list
    assert s.val.baseline("f1") == 0.0 and "confusion" not in s.val.names
    early = EpochRecord.from_json(EARLY)
    assert early.step_loss is None and early.best.headline is None and not early.val


def test_non_finite_values_are_null_with_a_reason_and_come_back():
    r = EpochRecord.from_json(PERFECT)
    assert r.partial and r.val.baseline("snr_db") == math.inf and r.val.baseline("mse") == 0.0
    made = EpochRecord(3, 12, train_loss=0.5, val_loss=math.nan,
                       val=Validation({"snr_db": -math.inf, "class_accuracy": [0.5, math.inf], "baseline": {"snr_db": math.inf}}))
    text = made.to_json()

    def refuse(name):
        raise ValueError(f"not strict JSON: {name}")

    stored = json.loads(text, parse_constant=refuse)  # no Infinity or NaN in the file
    assert stored["val_loss"] is None and stored["val_loss_reason"] == "not a number"
    assert stored["val"] == {"snr_db": None, "snr_db_reason": "minus infinite", "class_accuracy": [0.5, None],
                             "baseline": {"snr_db": None, "snr_db_reason": "infinite"}}
    back = EpochRecord.from_json(text)
    assert math.isnan(back.val_loss) and back.val.value("snr_db") == -math.inf and back.val.baseline("snr_db") == math.inf
    assert back.val.scores["class_accuracy"] == [0.5, None]  # in a list the value is gone, as before
    assert back.to_json() == text


def test_a_task_may_add_metrics_and_compared_methods():
    # a self-supervised task's f-x deconvolution beside its trivial baseline, and a method of a future task
    val = Validation({"snr_db": 3.5, "clean_snr_db": 8.6, "baseline": {"clean_snr_db": 2.5},
                      "classical": {"method": "f-x deconvolution", "clean_snr_db": 5.1}, "pocs": {"snr_db": 1.0}})
    assert val.names == ("snr_db", "clean_snr_db") and list(val.baselines) == ["baseline", "classical", "pocs"]
    assert val.baseline("clean_snr_db", "classical") == 5.1 and val.baseline("snr_db") is None
    assert [val.label(m) for m in val.baselines] == ["baseline", "f-x deconvolution", "pocs"]
    assert with_baselines(val, "clean_snr_db", 8.6) == "clean_snr_db 8.6 (baseline 2.5, f-x deconvolution 5.1)"
    assert with_baselines(val, "snr_db", 3.5) == "snr_db 3.5 (pocs 1)"
    r = EpochRecord(1, 4, 0.5, 0.4, val, lr=0.01, patches_per_s=10.0, data_wait_fraction=0.25, time_s=1.0)
    assert EpochRecord.from_json(r.to_json()) == r
    assert epoch_line(r, "clean_snr_db") == ("train loss 0.5, val loss 0.4, clean_snr_db 8.6 (baseline 2.5, "
                                             "f-x deconvolution 5.1), 10 patches/s, waiting on data 25%")


def test_truncate_keeps_the_lines_it_keeps_as_written(tmp_path):
    assert metrics_log.read(tmp_path) == []
    (tmp_path / "metrics.jsonl").write_text("\n".join([EARLY, RESUMED, STOPPED.replace('"epoch": 2', '"epoch": 3')]) + "\n")
    metrics_log.truncate(tmp_path, 2)
    assert (tmp_path / "metrics.jsonl").read_text() == EARLY + "\n" + RESUMED + "\n"
    metrics_log.append(tmp_path, EpochRecord.from_json(PERFECT))
    assert [r.epoch for r in metrics_log.read(tmp_path)] == [1, 2, 1]
    assert (tmp_path / "metrics.jsonl").read_text().splitlines()[-1] == PERFECT


def test_a_run_resumes_over_lines_of_an_earlier_version(tmp_path):
    path = trainkit.regression_config(tmp_path, epochs=2)
    run = train(load_config(path, ["train.max_steps=4"]), tmp_path / "run")
    first = json.loads((run / "metrics.jsonl").read_text())
    del first["step_loss"], first["best"]["headline"]  # as an early version wrote it
    old = json.dumps(first)
    (run / "metrics.jsonl").write_text(old + "\n")
    train(load_config(path), run, resume=True)
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert lines[0] == old and json.loads(lines[1])["epoch"] == 2
    records = metrics_log.read(run)
    assert records[0].step_loss is None and records[1].step_loss.steps == (5, 6, 7, 8)
    assert (run / "loss.png").read_bytes()[:4] == b"\x89PNG"
    epoch = load_checkpoint(run / "checkpoints" / "best.pt").epoch
    assert outcome_line(run).startswith(f"best epoch {epoch} of 2: val_loss {records[epoch - 1].val_loss:.4g}")
