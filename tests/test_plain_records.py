"""What a run writes is plain JSON: config values in checkpoints, and metrics.jsonl (strict JSON)."""

from __future__ import annotations

import datetime
import json
import math

import numpy as np
import pytest
import yaml

from geocnn.config import load_config
from geocnn.errors import ConfigError
from geocnn.runs import checkpoint as runs
from geocnn.runs import metrics_log
from geocnn.train import train
from tests import trainkit


def test_a_date_in_the_yaml_trains_and_predicts(tmp_path, cli):
    data = trainkit.write_traces(tmp_path)
    data["labels"] = {"path": "labels.csv", "since": "DATE"}
    path = trainkit.write_config(tmp_path, "classification", data, trainkit.SMALL_1D_CLASSIFIER, {"max_steps": 1},
                                 patch=[64], split={"axis": "trace", "fraction": 0.25})
    path.write_text(path.read_text().replace("DATE", "2024-05-01"))
    assert yaml.safe_load(path.read_text())["data"]["labels"]["since"] == datetime.date(2024, 5, 1)
    run = train(load_config(path), tmp_path / "run")
    assert runs.load_checkpoint(run / "checkpoints" / "last.pt").config["data"]["labels"]["since"] == "2024-05-01"
    assert yaml.safe_load((run / "config.yaml").read_text())["data"]["labels"]["since"] == "2024-05-01"
    r = cli("predict", run, tmp_path / "traces.npy", "--out", tmp_path / "p.npy")
    assert r.exit_code == 0, r.output
    assert np.load(tmp_path / "p.npy").shape == (64, 1)


def test_a_binary_value_in_the_yaml_is_refused_at_load(tmp_path):
    data = trainkit.write_traces(tmp_path)
    data["labels"] = {"path": "labels.csv", "note": "BIN"}
    path = trainkit.write_config(tmp_path, "classification", data, trainkit.SMALL_1D_CLASSIFIER, patch=[64])
    path.write_text(path.read_text().replace("BIN", "!!binary aGVsbG8="))
    # refused by the loader, at the value's own position, before anything is stored
    with pytest.raises(ConfigError, match=r"cfg\.yaml:12:11: not valid YAML: a binary value cannot be stored in a run"):
        load_config(path)


def _strict(text: str):
    def refuse(name):
        raise ValueError(f"not strict JSON: {name}")

    return json.loads(text, parse_constant=refuse)


def test_metrics_are_strict_json_when_the_baseline_is_perfect(tmp_path):
    data = trainkit.write_regression(tmp_path)
    data["target"] = data["inputs"][0]  # the input is the answer: the baseline has zero error
    path = trainkit.write_config(tmp_path, "regression", data, trainkit.SMALL_2D % {"out": 1}, {"max_steps": 1},
                                 patch=[8, 16], section="inline")
    run = train(load_config(path), tmp_path / "run")
    line = _strict((run / "metrics.jsonl").read_text().splitlines()[0])
    base = line["val"]["baseline"]
    assert base["mse"] == 0.0 and base["snr_db"] is None and base["snr_db_reason"] == "infinite"
    assert math.isfinite(line["val"]["snr_db"]) and "snr_db_reason" not in line["val"]


def test_strict_json_by_hand():
    out = metrics_log.strict_json({"a": math.inf, "b": [1.0, -math.inf], "c": {"d": math.nan}, "e": np.float32(0.5)})
    assert out == {"a": None, "a_reason": "infinite", "b": [1.0, None], "c": {"d": None, "d_reason": "not a number"},
                   "e": 0.5}
