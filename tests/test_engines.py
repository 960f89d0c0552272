"""Prediction engines (issue 19 §1): ``--engine torch|onnxruntime|auto`` change only the model call —
ONNX Runtime's results equal PyTorch's within 1e-4 of the output's scale, ``auto`` measures the
candidates, says which won with the figures, and caches both the graph and the choice."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import get_args

import numpy as np
import pytest
import yaml

from geocnn.config import EngineName, load_config
from geocnn.errors import ConfigError
from geocnn.graph import TOLERANCE
from geocnn.predict import engines, predict
from geocnn.predict.engines import ENGINES, cache_folder, check_engine
from geocnn.predict.trained import load_trained
from geocnn.train import train
from tests import trainkit

pytest.importorskip("onnxruntime")

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """A denoiser (values) and a 3-class U-Net (probabilities, labels), one optimizer step each."""
    return trainkit.values_and_classes(tmp_path_factory.mktemp("engines"), max_steps=1)


def both(run: Path, inputs: list[Path], folder: Path, output: str, **options) -> tuple[np.ndarray, np.ndarray]:
    """The prediction of the torch and the onnxruntime engines."""
    out = {}
    for engine in ("torch", "onnxruntime"):
        predict(run, inputs, folder / f"{engine}.npy", output=output, engine=engine, pictures=False, force=True,
                **options)
        out[engine] = np.load(folder / f"{engine}.npy")
    return out["torch"], out["onnxruntime"]


def test_onnxruntime_values_equal_pytorch_within_the_tolerance(runs, tmp_path):
    torch_out, ort_out = both(runs["values"], [runs["tmp"] / "noisy.npy"], tmp_path, "values")
    scale = max(1.0, float(np.max(np.abs(torch_out))))
    assert ort_out.shape == torch_out.shape == (16, 12, 48)
    assert float(np.max(np.abs(ort_out - torch_out))) <= TOLERANCE * scale
    assert not np.array_equal(ort_out, np.zeros_like(ort_out))


def test_onnxruntime_probabilities_and_labels_equal_pytorch(runs, tmp_path):
    p_torch, p_ort = both(runs["seg"], [runs["tmp"] / "seis.npy"], tmp_path, "probabilities")
    assert float(np.max(np.abs(p_ort - p_torch))) <= TOLERANCE
    (tmp_path / "labels").mkdir()
    l_torch, l_ort = both(runs["seg"], [runs["tmp"] / "seis.npy"], tmp_path / "labels", "labels")
    top2 = np.sort(p_torch, axis=0)[-2:]
    near_tie = (top2[1] - top2[0]) <= TOLERANCE
    assert np.array_equal(l_ort[~near_tie], l_torch[~near_tie])


def test_auto_measures_says_which_and_caches_the_graph_and_the_choice(runs, tmp_path, caplog):
    run = runs["seg"]
    folder = cache_folder(load_trained(run))
    with caplog.at_level(logging.INFO, logger="geocnn.predict.engines"):
        predict(run, [runs["tmp"] / "seis.npy"], tmp_path / "a.npy", engine="auto", pictures=False)
    line = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("engine auto:"))
    for name in ("torch", "torch channels_last", "onnxruntime"):
        assert f"{name} " in line and " ms" in line
    graphs = sorted(folder.glob("*.onnx"))
    assert len(graphs) == 1 and "-8x16-torch" in graphs[0].name
    choices = json.loads((folder / "choices.json").read_text())
    (key, choice), = choices.items()
    assert "8x16|batch 4|threads" in key
    assert choice["engine"] in ("torch", "torch channels_last", "onnxruntime")
    assert set(choice["ms_per_batch"]) == {"torch", "torch channels_last", "onnxruntime"}
    stamp = graphs[0].stat().st_mtime_ns
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="geocnn.predict.engines"):
        predict(run, [runs["tmp"] / "seis.npy"], tmp_path / "b.npy", engine="auto", pictures=False)
    assert any("measured before on this machine" in r.getMessage() for r in caplog.records)
    assert graphs[0].stat().st_mtime_ns == stamp  # the cached graph, not traced again
    np.testing.assert_allclose(np.load(tmp_path / "b.npy"), np.load(tmp_path / "a.npy"), atol=TOLERANCE)


def test_a_cached_choice_of_pytorch_builds_no_onnxruntime_session(runs, tmp_path, caplog, monkeypatch):
    trainkit.copy_into(runs["values"].parent, tmp_path)  # a run of its own: its cache is written here
    run = tmp_path / "reg"
    predict(run, [tmp_path / "noisy.npy"], tmp_path / "a.npy", engine="auto", pictures=False)
    choices_file = cache_folder(load_trained(run)) / "choices.json"
    choices = json.loads(choices_file.read_text())
    (key, choice), = choices.items()
    choices_file.write_text(json.dumps({key: {**choice, "engine": "torch"}}))
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # any import of onnxruntime would fail: none is made
    with caplog.at_level(logging.INFO, logger="geocnn.predict.engines"):
        predict(run, [tmp_path / "noisy.npy"], tmp_path / "b.npy", engine="auto", pictures=False)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("engine auto:")]
    assert len(lines) == 1 and lines[0].startswith("engine auto: torch (measured before on this machine: ")
    assert not any("left out" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(("ort_ms", "chosen"), [(9.2, "torch channels_last"), (8.9, "onnxruntime")])
def test_auto_leaves_the_runs_pytorch_only_for_a_clear_win(ort_ms, chosen, runs, tmp_path, monkeypatch, caplog):
    trainkit.copy_into(runs["values"].parent, tmp_path)  # a run of its own: nothing cached yet
    times = {"torch channels_last": 10.0, "torch": 12.0, "onnxruntime": ort_ms}  # channels_last: the run's layout
    monkeypatch.setattr(engines, "_times", lambda candidates, ctx: {c.name: times[c.name] for c in candidates})
    with caplog.at_level(logging.INFO, logger="geocnn.predict.engines"):
        predict(tmp_path / "reg", [tmp_path / "noisy.npy"], tmp_path / "a.npy", engine="auto", pictures=False)
    assert any(r.getMessage().startswith(f"engine auto: {chosen} (") for r in caplog.records)
    assert engines.MARGIN == 1.10  # 9.2 ms is within 10 % of 10 ms: not worth leaving PyTorch; 8.9 ms is


def test_a_damaged_cached_graph_is_left_out_by_auto_and_refused_by_onnxruntime(runs, tmp_path, caplog):
    trainkit.copy_into(runs["values"].parent, tmp_path)  # a run of its own: its cache is damaged here
    run = tmp_path / "reg"
    predict(run, [tmp_path / "noisy.npy"], tmp_path / "a.npy", engine="onnxruntime", pictures=False)
    (graph,) = cache_folder(load_trained(run)).glob("*.onnx")
    graph.write_bytes(b"not an onnx graph")
    (cache_folder(load_trained(run)) / "choices.json").unlink(missing_ok=True)
    with caplog.at_level(logging.INFO, logger="geocnn.predict.engines"):
        predict(run, [tmp_path / "noisy.npy"], tmp_path / "b.npy", engine="auto", pictures=False)
    assert any("ONNX Runtime left out" in r.getMessage() and graph.name in r.getMessage() for r in caplog.records)
    with pytest.raises(ConfigError, match="--engine onnxruntime cannot run: ONNX Runtime cannot run the cached graph"):
        predict(run, [tmp_path / "noisy.npy"], tmp_path / "c.npy", engine="onnxruntime", pictures=False)


def test_onnxruntime_missing_is_one_line_naming_the_extra(runs, tmp_path, monkeypatch, cli):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime → ImportError
    result = cli("predict", runs["values"], runs["tmp"] / "noisy.npy", "--out", tmp_path / "p.npy",
                 "--engine", "onnxruntime")
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "--engine onnxruntime cannot run: the package 'onnxruntime' is not installed" in result.stderr
    assert "pip install 'geocnn[export]'" in result.stderr
    assert not (tmp_path / "p.npy").exists()


@pytest.mark.parametrize("name", ["onnx", "TORCH", "openvino", ""])
def test_unknown_engines_are_refused_before_any_work(name, runs, tmp_path, cli):
    with pytest.raises(ConfigError, match="--engine must be one of torch, onnxruntime, auto"):
        check_engine(name)
    result = cli("predict", runs["values"], runs["tmp"] / "noisy.npy", "--out", tmp_path / "p.npy", "--engine", name)
    assert result.exit_code == 2 and "--engine must be one of" in result.stderr


def test_the_cli_help_names_every_engine(cli):
    text = " ".join(cli("predict", "--help").output.split())
    assert " | ".join(ENGINES) in text


def test_the_config_and_the_registry_name_the_same_engines():
    assert tuple(ENGINES) == get_args(EngineName)


def test_predict_engine_in_the_config_is_the_default_and_engine_overrides_it(runs, tmp_path, cli):
    cfg = trainkit.regression_config(tmp_path, max_steps=1)
    run = train(load_config(cfg, ["predict.engine=onnxruntime"]), tmp_path / "run")
    assert yaml.safe_load((run / "config.yaml").read_text())["predict"] == {"engine": "onnxruntime", "precision": "auto"}
    assert load_trained(run).cfg.predict.engine == "onnxruntime"
    graphs = cache_folder(load_trained(run))
    result = cli("predict", run, tmp_path / "noisy.npy", "--out", tmp_path / "t.npy", "--engine", "torch")
    assert result.exit_code == 0 and not graphs.exists()  # --engine torch wins: no graph traced
    result = cli("predict", run, tmp_path / "noisy.npy", "--out", tmp_path / "o.npy")
    assert result.exit_code == 0 and len(list(graphs.glob("*.onnx"))) == 1  # the run's onnxruntime
    scale = max(1.0, float(np.max(np.abs(np.load(tmp_path / "t.npy")))))
    assert float(np.max(np.abs(np.load(tmp_path / "o.npy") - np.load(tmp_path / "t.npy")))) <= TOLERANCE * scale


def test_a_config_that_leaves_predict_out_predicts_with_torch(runs):
    trained = load_trained(runs["values"])
    assert trained.cfg.predict.engine == "torch" and trained.cfg.raw["predict"] == {"engine": "torch", "precision": "auto"}


def test_an_unknown_predict_engine_fails_when_the_config_is_read(tmp_path):
    cfg = trainkit.regression_config(tmp_path, max_steps=1)
    with pytest.raises(ConfigError, match="engine: unknown value 'onnx'"):
        load_config(cfg, ["predict.engine=onnx"])


@pytest.mark.slow
@pytest.mark.parametrize("config", sorted(p.name for p in (ROOT / "configs").glob("*.yaml")))
def test_every_example_config_gives_the_same_prediction_with_onnxruntime(config, tmp_path):
    """One optimizer step of every example config, then its validation block predicted by both engines."""
    path = ROOT / "configs" / config
    cfg = load_config(path, ["train.max_steps=1", "train.examples=0", "train.workers=0",
                             "data.sampling.val_patches=4", *trainkit.synth_overrides(path, tmp_path)])
    if cfg.train.init_from is not None:
        pytest.skip("fine-tunes another run's weights: its base config is tested on its own")
    run = train(cfg, tmp_path / "run")
    inputs = [spec.path for spec in cfg.inputs]
    output = "probabilities" if cfg.task.classifies else "values"
    torch_out, ort_out = both(run, inputs, tmp_path, output, threads=1)
    scale = max(1.0, float(np.max(np.abs(torch_out))))
    assert float(np.max(np.abs(ort_out - torch_out))) <= TOLERANCE * scale
