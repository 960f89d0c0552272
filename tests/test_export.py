"""``geocnn export``: ONNX and .pt2 files that run on other batch and spatial sizes, with metadata."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from geocnn.config import load_config
from geocnn.errors import ConfigError, DataError, OutputExistsError
from geocnn.export import axis_sizes, export, load_trained, read_metadata, run_exported
from geocnn.graph import _arithmetic
from geocnn.model.network import build
from geocnn.train import train
from tests import trainkit

onnxruntime = pytest.importorskip("onnxruntime", reason="ONNX checks need onnxruntime (the test extra)")

# U-Net-like: two poolings (sizes must be multiples of 4), transposed convs back up, skips by concat.
UNET_2D = """
dims: 2
in_channels: 1
axes: [crossline, sample]
spacing: ["25 m", "4 ms"]
layers:
  - conv: {out: 4, kernel: 3, padding: same, name: enc1}
  - norm: batch
  - relu
  - pool: max
  - conv: {out: 8, kernel: 3, padding: same, name: enc2}
  - relu
  - pool: max
  - conv: {out: 8, kernel: 3, padding: same}
  - conv_transpose: {out: 8, kernel: 2, stride: 2}
  - concat: enc2
  - conv: {out: 4, kernel: 3, padding: same}
  - conv_transpose: {out: 4, kernel: 2, stride: 2}
  - concat: enc1
  - conv: {out: 3, kernel: 1}
"""

# 1D: strided "same" conv, pooling, global pooling, dense head: lengths 3, 4, 7, 8, … work.
EVENTS_1D = """
dims: 1
in_channels: 3
axes: [sample]
layers:
  - conv: {out: 4, kernel: 5, stride: 2, padding: same}
  - relu
  - pool: {size: 2}
  - global_pool: max
  - dense: 2
"""

# Flatten + dense: the spatial size is fixed by the dense layer's weights (no axes given: "length").
FLAT_1D = """
dims: 1
in_channels: 3
layers:
  - conv: {out: 2, kernel: 3, padding: same}
  - flatten
  - dense: 2
"""


@pytest.mark.parametrize(("valid", "size", "expected"), [
    (list(range(4, 193, 4)), 8, (4, 4)),  # two poolings: multiples of 4
    ([n for n in range(1, 193) if n % 4 in (0, 3)], 64, (4, 4)),  # 3, 4, 7, 8, …: the sequence through 64
    ([n for n in range(1, 193) if n % 4 in (0, 3)], 63, (7, 4)),  # through 63: 3 + 4k, from 7 (k ≥ 1 traced)
    (list(range(1, 193)), 10, (2, 1)),  # any size; sizes 0 and 1 are never kept symbolic
    ([64], 64, (64, None)),  # one size only: fixed
])
def test_accepted_sizes_as_one_linear_form(valid, size, expected):
    sizes = _arithmetic("sample", valid, size, 192, has_flatten=False)
    assert (sizes.minimum, sizes.step) == expected


@pytest.fixture(scope="module")
def unet_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("unet")
    data = trainkit.write_segmentation(tmp, classes=3)
    path = trainkit.write_config(tmp, "segmentation", data, UNET_2D, {"max_steps": 1}, patch=[8, 16],
                                 section="inline", classes=3)
    return train(load_config(path), tmp / "run")


@pytest.fixture(scope="module")
def events_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("events")
    return _traces_run(tmp, EVENTS_1D)


def _traces_run(tmp, model):
    data = trainkit.write_traces(tmp)
    path = trainkit.write_config(tmp, "classification", data, model, {"max_steps": 1}, patch=[64],
                                 split={"axis": "trace", "fraction": 0.25})
    return train(load_config(path), tmp / "run")


def _pytorch(run, x: np.ndarray) -> np.ndarray:
    trained = load_trained(run)
    model, _ = build(trained.cfg.model, trained.cfg.patch)
    model.load_state_dict(trained.state)
    with torch.no_grad():
        return model.eval()(torch.from_numpy(x)).numpy()


@pytest.fixture(scope="module")
def unet_exports(unet_run, tmp_path_factory):
    """The U-Net run exported once per format (with the check), for every test of this module."""
    folder = tmp_path_factory.mktemp("unet-exports")
    return {suffix: (folder / f"unet{suffix}", export(unet_run, folder / f"unet{suffix}")) for suffix in (".onnx", ".pt2")}


@pytest.mark.parametrize("suffix", [".onnx", ".pt2"])
def test_unet_runs_on_another_batch_and_size(unet_run, unet_exports, suffix):
    path, report = unet_exports[suffix]
    assert [(s.axis, s.minimum, s.step) for s in report.sizes] == [("crossline", 4, 4), ("sample", 4, 4)]
    assert report.checked_shape == (3, 1, 16, 20)  # traced on 2 × 1 × 12 × 16 (k ≥ 2), checked one step larger
    x = np.random.default_rng(3).standard_normal((5, 1, 12, 28)).astype(np.float32)
    got = run_exported(path, x)
    assert got.shape == (5, 3, 12, 28)
    np.testing.assert_allclose(got, _pytorch(unet_run, x), atol=1e-4)


def test_unet_metadata_round_trips(unet_run, unet_exports):
    path = unet_exports[".onnx"][0]
    meta = read_metadata(path)
    ckpt_norm = load_trained(unet_run).norm.to_dict()
    assert meta["task"] == "segmentation"
    assert json.loads(meta["axes"]) == ["crossline", "sample"]
    assert json.loads(meta["layout"]) == ["batch", "channel", "crossline", "sample"]
    assert json.loads(meta["spacing"]) == [{"value": 25.0, "unit": "m"}, {"value": 4.0, "unit": "ms"}]
    assert json.loads(meta["patch_size"]) == [8, 16]
    assert json.loads(meta["classes"]) == 3
    assert json.loads(meta["class_names"]) == ["0", "1", "2"]
    assert json.loads(meta["input_channels"]) == ["seis"]
    norm = json.loads(meta["input_normalization"])
    assert norm["center"] == ckpt_norm["center"] and norm["scale"] == ckpt_norm["scale"]
    assert json.loads(meta["spatial_sizes"])[1] == {"axis": "sample", "min": 4, "step": 4, "fixed": False}
    import onnx

    graph = onnx.load(str(path)).graph
    assert [d.dim_param or d.dim_value for d in graph.input[0].type.tensor_type.shape.dim] == \
        ["batch", 1, "crossline", "sample"]


def test_1d_onnx_any_length(events_run, tmp_path):
    report = export(events_run, tmp_path / "events.onnx")
    assert [(s.minimum, s.step) for s in report.sizes] == [(4, 4)]  # 3, 4, 7, 8, …: the run of 64
    assert report.checked_shape == (3, 3, 68)  # traced on 2 × 3 × 64, checked one step longer
    x = np.random.default_rng(4).standard_normal((7, 3, 100)).astype(np.float32)
    got = run_exported(tmp_path / "events.onnx", x)
    assert got.shape == (7, 2)
    np.testing.assert_allclose(got, _pytorch(events_run, x), atol=1e-4)
    meta = read_metadata(tmp_path / "events.onnx")
    assert json.loads(meta["input_channels"]) == ["component 0", "component 1", "component 2"]
    assert meta["task"] == "classification" and json.loads(meta["dense"]) is False


def test_1d_pt2_runs_and_keeps_metadata(events_run, tmp_path):
    export(events_run, tmp_path / "events.pt2")
    x = np.random.default_rng(5).standard_normal((4, 3, 92)).astype(np.float32)
    np.testing.assert_allclose(run_exported(tmp_path / "events.pt2", x), _pytorch(events_run, x), atol=1e-4)
    assert read_metadata(tmp_path / "events.pt2")["task"] == "classification"


def test_dense_head_after_flatten_fixes_the_size(tmp_path):
    run = _traces_run(tmp_path, FLAT_1D)
    sizes = axis_sizes(load_trained(run).cfg, (64,))
    assert sizes[0].describe() == "length = 64 (a dense layer after flatten has a fixed input size)"
    export(run, tmp_path / "flat.onnx")
    x = np.random.default_rng(6).standard_normal((6, 3, 64)).astype(np.float32)  # other batch, same length
    np.testing.assert_allclose(run_exported(tmp_path / "flat.onnx", x), _pytorch(run, x), atol=1e-4)
    assert json.loads(read_metadata(tmp_path / "flat.onnx")["spatial_sizes"])[0]["fixed"] is True


def test_existing_output_needs_force(events_run, tmp_path):
    out = tmp_path / "m.onnx"
    out.write_bytes(b"old")
    with pytest.raises(OutputExistsError):
        export(events_run, out)
    assert out.read_bytes() == b"old"
    export(events_run, out, force=True, check=False)
    assert out.stat().st_size > 1000 and not list(tmp_path.glob(".m.tmp-*"))


def test_unknown_suffix_and_format(events_run, tmp_path):
    with pytest.raises(ConfigError, match="--format onnx"):
        export(events_run, tmp_path / "m.bin")
    with pytest.raises(ConfigError, match="unknown export format 'tflite'"):
        export(events_run, tmp_path / "m.onnx", fmt="tflite")


def test_cli_bad_checkpoint_is_one_line(cli, tmp_path):
    result = cli("export", tmp_path / "missing.pt", tmp_path / "m.onnx")
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "missing.pt: checkpoint not found" in lines[0]
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    result = cli("export", tmp_path / "junk.pt", tmp_path / "m.onnx")
    assert result.exit_code == 2 and "cannot read checkpoint" in result.stderr
    assert not (tmp_path / "m.onnx").exists()


def test_cli_writes_and_refuses_to_overwrite(cli, events_run, tmp_path):
    result = cli("export", events_run, tmp_path / "m.onnx", "--no-check")
    assert result.exit_code == 0, result.stderr
    assert "any batch, sample 4 + 4k" in result.stdout
    result = cli("export", events_run, tmp_path / "m.onnx")
    assert result.exit_code == 2 and "--force" in result.stderr
    with pytest.raises(DataError):
        load_trained(tmp_path / "m.onnx")
