"""The public Python API (``import geocnn``): each call against the command line's files, bit for bit;
grids in and out of xarray with their survey coordinates; the optional extras' one-line errors."""

from __future__ import annotations

import builtins
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import geocnn
from geocnn.errors import ConfigError, DataError, GeocnnError
from geocnn.extras import MissingExtra
from geocnn.progress import RichReporter
from geocnn.runs.checkpoint import load_checkpoint
from tests import trainkit
from tests.segyfactory import write_segy

ROOT = Path(__file__).resolve().parents[1]
NOISY = ROOT / "data_samples" / "seismic_noisy.sgy"
xr = pytest.importorskip("xarray")


def _without(monkeypatch, module: str) -> None:
    """Make ``import module`` fail, as on a machine without it."""
    real = builtins.__import__

    def fake(name, *args, **kwargs):
        if name == module or name.startswith(module + "."):
            raise ImportError(f"No module named '{module}'")
        return real(name, *args, **kwargs)

    monkeypatch.delitem(sys.modules, module, raising=False)
    monkeypatch.setattr(builtins, "__import__", fake)


def _weights(run: Path) -> dict:
    return {k: v.numpy() for k, v in load_checkpoint(run / "checkpoints" / "last.pt").model_state.items()}


def _lines(run: Path) -> list[dict]:
    """metrics.jsonl without the fields that measure time."""
    timed = ("time_s", "patches_per_s", "data_wait_fraction")
    return [{k: v for k, v in json.loads(line).items() if k not in timed}
            for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One tiny regression run trained by the CLI (``--set``) and one by the API (nested overrides)."""
    from typer.testing import CliRunner

    from geocnn.cli import app

    folder = tmp_path_factory.mktemp("api-runs")
    config = trainkit.regression_config(folder)
    result = CliRunner().invoke(app, ["train", str(config), "--out", str(folder / "cli"), "--threads", "1",
                                      "--set", "train.max_steps=3", "--set", "train.lr=0.02"])
    assert result.exit_code == 0, result.output
    run = geocnn.train(config, folder / "api", progress=False, train={"threads": 1, "max_steps": 3},
                       **{"train.lr": 0.02})
    # a small survey: inlines 100-108 by 2, crosslines 20-35, 48 samples of 4 ms from 100 ms
    write_segy(folder / "small.sgy", range(100, 110, 2), range(20, 36), 48, delay_ms=100)
    return folder, folder / "cli", run


# ----------------------------------------------------------------------------- the names

def test_every_public_name_is_documented_with_an_example():
    assert set(geocnn.__all__) >= {"open", "predict", "summarize", "train", "Run", "Summary", "Grid", "GeocnnError"}
    for name in geocnn.__all__:
        obj = getattr(geocnn, name)
        if name != "__version__":
            assert obj.__doc__, name
    for name in ("open", "predict", "summarize", "train", "Run"):
        assert "Examples" in getattr(geocnn, name).__doc__, name


def test_train_and_predict_are_the_functions_even_after_their_modules_load():
    import geocnn.predict.api  # noqa: F401 — binds nothing on geocnn
    import geocnn.train  # noqa: F401

    assert geocnn.train is geocnn.api.train and geocnn.predict is geocnn.api.predict
    assert sys.modules["geocnn.train"].__name__ == "geocnn.train"  # the module is still there


def test_import_geocnn_and_open_a_grid_load_neither_torch_nor_matplotlib():
    code = ("import sys, geocnn; g = geocnn.open(sys.argv[1]); geocnn.summarize(sys.argv[2]); "
            "print(g.shape, [m for m in ('torch', 'matplotlib') if m in sys.modules])")
    r = subprocess.run([sys.executable, "-c", code, str(NOISY), str(ROOT / "configs" / "denoise2d.yaml")],
                       capture_output=True, text=True, timeout=120)
    assert r.stdout.strip() == "(64, 48, 100) []", r.stderr


# ----------------------------------------------------------------------------- summarize

def test_summarize_is_the_cli_json(tmp_path, cli):
    config = ROOT / "configs" / "denoise2d.yaml"
    assert cli("summarize", config, "--json", tmp_path / "s.json").exit_code == 0
    s = geocnn.summarize(config)
    assert s.to_json() == json.loads((tmp_path / "s.json").read_text())
    assert s.total_params == 21_385 and s.inference.output_record.receptive_field == [13, 13]  # six 3×3 convs: 1 + 6·2
    assert "21,385" in s._repr_html_() and "<table>" in s._repr_html_()


def test_summarize_keeps_a_shape_error_in_the_summary():
    s = geocnn.summarize(ROOT / "configs" / "denoise2d.yaml", input_shape=(1, 0, 64))
    assert s.error is not None and "error" in s._repr_html_()
    with pytest.raises(ConfigError, match="has 2 channels but the model has in_channels 1"):
        geocnn.summarize(ROOT / "configs" / "denoise2d.yaml", input_shape=(2, 32, 64))


# ----------------------------------------------------------------------------- train

def test_train_is_the_cli_run(runs):
    _, cli_run, run = runs
    assert isinstance(run, geocnn.Run) and run.path.is_dir()
    assert (cli_run / "config.yaml").read_text() != "" and _lines(run.path) == _lines(cli_run)
    a, b = _weights(run.path), _weights(cli_run)
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_run_metrics_are_typed_records(runs):
    _, _, run = runs
    records = run.metrics
    assert [r.epoch for r in records] == [1] and records[0].step == 3 and records[0].partial
    assert run.best is not None and run.best.metric == "val_loss" and run.best.value == records[0].val_loss
    assert run.config.train.lr == 0.02 and run.config.train.max_steps == 3
    assert repr(run).startswith(f"Run('{run.path}', 1 epochs")


def test_run_to_dataframe(runs):
    pd = pytest.importorskip("pandas")
    _, _, run = runs
    df = run.to_dataframe()
    assert isinstance(df, pd.DataFrame) and list(df["epoch"]) == [1]
    assert df["val_loss"][0] == run.metrics[0].val_loss and "baseline_mse" in df


def test_run_to_dataframe_without_pandas_names_it(runs, monkeypatch):
    _, _, run = runs
    _without(monkeypatch, "pandas")
    with pytest.raises(MissingExtra) as exc:
        run.to_dataframe()
    assert exc.value.message == ("run metrics as a DataFrame need the Python package 'pandas', which is not "
                                 "installed — pip install 'geocnn[pandas]'")


def test_train_refuses_what_the_cli_refuses(tmp_path):
    config = trainkit.regression_config(tmp_path)
    with pytest.raises(ConfigError, match="--reset-optimizer is for --resume"):
        geocnn.train(config, reset_optimizer=True)
    with pytest.raises(ConfigError, match=r"train\.lr"):
        geocnn.train(config, tmp_path / "r", progress=False, train={"lr": "fast"})
    with pytest.raises(ConfigError, match="not a finite number"):
        geocnn.train(config, tmp_path / "r", progress=False, train={"lr": float("nan")})
    assert not (tmp_path / "r").exists()


def test_overrides_of_nested_and_set_grammar():
    assert geocnn.api.overrides_of("train.seed=1", {"data": {"patch": (8, 16)}, "train.lr": 1e-3}) == [
        "train.seed=1", "data.patch=[8, 16]", "train.lr=0.001"]


# ----------------------------------------------------------------------------- predict

@pytest.mark.parametrize("suffix", [".npy", ".sgy"])
def test_predict_with_out_writes_the_cli_file(runs, cli, suffix):
    folder, _, run = runs
    source = folder / ("noisy.npy" if suffix == ".npy" else "small.sgy")
    assert cli("predict", run.path, source, "--out", folder / f"cli{suffix}", "--threads", "1").exit_code == 0
    report = geocnn.predict(run, source, folder / f"api{suffix}", threads=1, progress=False)
    assert report.output == folder / f"api{suffix}"
    assert (folder / f"api{suffix}").read_bytes() == (folder / f"cli{suffix}").read_bytes()


def test_predict_in_memory_from_a_file_has_survey_coordinates(runs, cli):
    folder, _, run = runs
    small = folder / "small.sgy"
    assert cli("predict", run.path, small, "--out", folder / "whole.npy", "--threads", "1").exit_code == 0
    da = geocnn.predict(run, small, threads=1, progress=False)
    assert isinstance(da, xr.DataArray) and da.dims == ("inline", "crossline", "sample")
    assert np.array_equal(da.values, np.load(folder / "whole.npy"))
    assert da.inline.values.tolist() == [100, 102, 104, 106, 108] and da.crossline.values.tolist() == list(range(20, 36))
    assert da.sample.values[:3].tolist() == [100.0, 104.0, 108.0] and da.sample.attrs["units"] == "ms"


def test_predict_a_dataarray_keeps_its_coordinates(runs, cli):
    folder, _, run = runs
    section = geocnn.open(folder / "small.sgy").to_xarray().isel(inline=slice(1, 4), sample=slice(8, 40))
    section = section.assign_coords(sample=section.sample + 1000.0)  # a delay: the sample axis moved
    out = geocnn.predict(run, section, threads=1, progress=False)
    assert out.dims == section.dims and out.shape == section.shape
    for dim in section.dims:
        assert np.array_equal(out[dim].values, section[dim].values), dim
    # the same values as the file path: the section written as .npy and predicted by the CLI
    np.save(folder / "section.npy", section.values)
    assert cli("predict", run.path, folder / "section.npy", "--out", folder / "section-out.npy",
               "--threads", "1").exit_code == 0
    assert np.array_equal(out.values, np.load(folder / "section-out.npy"))


def test_predict_a_numpy_array(runs):
    folder, _, run = runs
    cube = np.load(folder / "noisy.npy")
    out = geocnn.predict(run, cube, axes=("inline", "crossline", "sample"), threads=1, progress=False)
    expected = geocnn.predict(run, folder / "noisy.npy", threads=1, progress=False)
    assert np.array_equal(np.asarray(out), expected.values)


def test_predict_in_memory_refuses_past_the_bound_with_the_size(runs):
    folder, _, run = runs
    with pytest.raises(DataError) as exc:
        geocnn.predict(run, folder / "noisy.npy", threads=1, progress=False, max_bytes=1000)
    assert exc.value.message.startswith("the prediction (16 × 12 × 48 float32) is 36.0 KiB, more than the "
                                        "1,000 B allowed in memory")


def test_predict_errors_are_one_line_geocnn_errors(runs):
    folder, _, run = runs
    with pytest.raises(GeocnnError) as exc:
        geocnn.predict(run, np.zeros((4, 5)), axes=("inline",), progress=False)
    assert "\n" not in exc.value.message and "axes names 1" in exc.value.message
    with pytest.raises(ConfigError, match="inputs must be a file"):
        geocnn.predict(run, 3.0, progress=False)


# ----------------------------------------------------------------------------- grids as xarray

def test_to_xarray_of_pre_stack_and_numpy_grids():
    angles = geocnn.open(ROOT / "data_samples" / "angles.sgy").to_xarray()
    assert angles.dims == ("inline", "crossline", "offset", "sample")
    assert angles.offset.values.tolist() == [5, 15, 25] and angles.inline.values[0] == 1016
    traces = geocnn.open(ROOT / "data_samples" / "traces3c.npy", axes=["trace", "component", "sample"],
                         channels_from="component").to_xarray(window=(slice(0, 10), slice(0, 256)))
    assert traces.dims == ("channel", "trace", "sample") and traces.shape == (3, 10, 256)
    assert traces.trace.values.tolist() == list(range(10))


def test_to_xarray_refuses_past_the_bound():
    with pytest.raises(DataError, match=r"the grid window \(1 × 64 × 48 × 100 float32\) is 1.2 MiB"):
        geocnn.open(NOISY).to_xarray(max_bytes=1_000_000)


def test_to_xarray_without_xarray_names_the_extra(monkeypatch):
    grid = geocnn.open(NOISY)
    _without(monkeypatch, "xarray")
    with pytest.raises(MissingExtra) as exc:
        grid.to_xarray()
    assert exc.value.message == ("xarray grids need the Python package 'xarray', which is not installed — "
                                 "pip install 'geocnn[xarray]'")


def test_open_refuses_an_unknown_option():
    with pytest.raises(ConfigError, match="unknown input option axis"):
        geocnn.open(NOISY, axis=["a"])


# ----------------------------------------------------------------------------- notebook manners

def test_progress_bars_off_a_terminal_write_no_escape_codes():
    from rich.console import Console

    text = io.StringIO()
    bars = RichReporter(Console(file=text, force_terminal=False, force_jupyter=False, width=100))
    task = bars.task("predict", total=3, unit="windows")
    task.advance(3)
    task.close()
    bars.stop()
    assert "predict" in text.getvalue() and "3/3" in text.getvalue() and "\x1b[" not in text.getvalue()
