"""Optional TensorBoard logging: the numbers of metrics.jsonl and the example pictures under <run>/tb/."""

from __future__ import annotations

import json
import sys

import pytest

from geocnn.config import load_config
from geocnn.errors import ConfigError
from geocnn.runs.tensorboard import scalars
from geocnn.train import train
from tests import trainkit


def test_scalars_flatten_a_metrics_line_by_hand():
    record = {"epoch": 2, "step": 8, "partial": True, "train_loss": 0.5, "val_loss": None,
              "val": {"f1": 0.25, "confusion": [[1, 2], [3, 4]], "baseline": {"f1": 0.0}}, "lr": 1e-3}
    assert dict(scalars(record)) == {"epoch": 2.0, "train_loss": 0.5, "val/f1": 0.25, "val/baseline/f1": 0.0,
                                     "lr": 1e-3}


def test_event_files_hold_the_metrics_and_examples(tmp_path):
    pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg = trainkit.regression_config(tmp_path, epochs=2, tensorboard=True)
    run = train(load_config(cfg), tmp_path / "run")
    events = EventAccumulator(str(run / "tb"), size_guidance={"images": 0, "scalars": 0})
    events.Reload()
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    expected = dict(scalars(lines[0]))
    assert {"train_loss", "val_loss", "val/mse", "val/snr_db", "val/baseline/mse", "lr", "epoch"} <= set(expected)
    assert set(events.Tags()["scalars"]) == set(expected)
    for tag in expected:
        logged = [(e.step, e.value) for e in events.Scalars(tag)]
        assert logged == [(line["step"], pytest.approx(dict(scalars(line))[tag], rel=1e-6)) for line in lines]
    assert events.Tags()["images"] == ["examples"]
    assert [e.step for e in events.Images("examples")] == [lines[0]["step"], lines[1]["step"]]


def test_missing_package_is_one_line_naming_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # import tensorboard → ImportError
    cfg = trainkit.regression_config(tmp_path, tensorboard=True)
    with pytest.raises(ConfigError, match=r"pip install 'geocnn\[tensorboard\]'"):
        train(load_config(cfg), tmp_path / "run")
    assert not (tmp_path / "run").exists()  # refused before any work


def test_cli_flag_turns_it_on(cli, tmp_path):
    pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed")
    cfg = trainkit.regression_config(tmp_path, max_steps=1)
    result = cli("train", cfg, "--out", tmp_path / "run", "--tensorboard")
    assert result.exit_code == 0, result.stderr
    assert list((tmp_path / "run" / "tb").glob("events.out.tfevents.*"))
    assert "tensorboard: true" in (tmp_path / "run" / "config.yaml").read_text()


def test_resume_keeps_the_events_before_the_checkpoint(tmp_path):
    pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg = trainkit.regression_config(tmp_path, epochs=2, tensorboard=True)  # 16 patches / batch 4: 4 steps/epoch
    train(load_config(cfg, ["train.max_steps=4"]), tmp_path / "run")
    train(load_config(cfg), tmp_path / "run", resume=True)
    events = EventAccumulator(str(tmp_path / "run" / "tb"))
    events.Reload()
    assert [(e.step, e.value) for e in events.Scalars("epoch")] == [(4, 1.0), (8, 2.0)]
