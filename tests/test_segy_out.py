"""A SEG-Y out for every task and input layout (issue 11 §4): stacked pre-stack outputs, score maps
with their own geometry, one file per class, section models on 2D lines, sanity warnings."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import segyio
import yaml

from geocnn import data as data_mod
from geocnn.config import load_config
from geocnn.errors import ConfigError, DataError, OutputExistsError
from geocnn.grids import writer
from geocnn.grids.grid import open_grid
from geocnn.grids.spec import InputSpec
from geocnn.grids.writer import write_array
from geocnn.predict import predict
from geocnn.runs.checkpoint import load_checkpoint
from geocnn.train import train
from tests import segyfactory, trainkit
from tests.segyfactory import trace_headers

SAMPLES = Path(__file__).resolve().parents[1] / "data_samples"


def _headers_without_offset(headers: np.ndarray) -> np.ndarray:
    """Trace headers with bytes 37–40 (offset) zeroed."""
    out = headers.copy()
    out[:, 36:40] = 0
    return out


# ----------------------------------------------------------------------------- pre-stack → post-stack

def test_one_channel_from_offset_channels_is_a_post_stack_cube_with_near_offset_headers(tmp_path):
    s = segyfactory.write_segy(tmp_path / "g.sgy", range(1, 4), range(10, 14), 6, offsets=[30, 10, 20])
    grid = open_grid(InputSpec(str(s.path), channels_from="offset"))
    values = np.arange(3 * 4 * 6, dtype=np.float32).reshape(1, 3, 4, 6)
    out = write_array(tmp_path / "stack.sgy", grid, values)
    with segyio.open(out) as f:
        assert list(f.ilines) == [1, 2, 3] and list(f.xlines) == [10, 11, 12, 13]
        assert list(f.offsets) == [0] and f.tracecount == 12 and len(f.samples) == 6
        assert f.bin[segyio.BinField.EnsembleFold] == 1 and f.bin[segyio.BinField.Traces] == 1
        np.testing.assert_array_equal(segyio.tools.cube(f), values[0])
    # file order: per bin, offsets 30, 10, 20 → the nearest (10) is trace 3·bin + 1
    src = trace_headers(s.path, 6)
    np.testing.assert_array_equal(trace_headers(out, 6), _headers_without_offset(src[1::3]))
    assert (src[1::3, 36:40] != 0).any()  # the source did hold offsets there


def test_angle_stack_sample_writes_a_post_stack_cube(tmp_path):
    angles = SAMPLES / "angles.sgy"
    grid = open_grid(InputSpec(str(angles), channels_from="offset"))
    out = write_array(tmp_path / "gas.sgy", grid, np.ones((1, *grid.shape), np.float32))
    with segyio.open(angles) as a, segyio.open(out) as b:
        assert list(b.ilines) == list(a.ilines) and list(b.xlines) == list(a.xlines)
        assert list(b.offsets) == [0] and list(b.samples) == list(a.samples)
        assert b.tracecount == len(a.ilines) * len(a.xlines)
        near = [i for i in range(a.tracecount) if a.header[i][segyio.TraceField.offset] == 5]
        for k in (0, 7, b.tracecount - 1):
            expected = dict(a.header[near[k]])
            expected[segyio.TraceField.offset] = 0
            assert dict(b.header[k]) == expected


def test_predict_with_angle_stacks_as_channels_writes_post_stack_segy(tmp_path):
    data = {"inputs": [{"path": str(SAMPLES / "angles.sgy"), "channels_from": "offset"}],
            "target": str(SAMPLES / "gas.npy")}
    model = trainkit.SMALL_2D.replace("in_channels: 1", "in_channels: 3") % {"out": 2}
    path = trainkit.write_config(tmp_path, "segmentation", data, model, {"max_steps": 1}, patch=[8, 16],
                                 section="inline")
    run = train(load_config(path), tmp_path / "gas")
    report = predict(run, [SAMPLES / "angles.sgy"], tmp_path / "gas.sgy", pictures=False)
    with segyio.open(report.output) as f:
        assert (len(f.ilines), len(f.xlines), list(f.offsets), len(f.samples)) == (32, 24, [0], 100)
        probs = segyio.tools.cube(f)
    assert ((probs >= 0) & (probs <= 1)).all() and probs.std() > 0


# ----------------------------------------------------------------------------- score maps

CLASSIFIER_2D = """
dims: 2
in_channels: 1
layers:
  - conv: {out: 4, kernel: 3, padding: same}
  - relu
  - global_pool: mean
  - dense: 3
"""


@pytest.fixture(scope="module")
def patch_run(tmp_path_factory):
    """A 3-class patch classifier (8 crosslines × 16 samples on inline sections) and its SEG-Y cube:
    inlines 100, 102 ... 122, crosslines 20 ... 43, 48 samples of 4 ms."""
    tmp = tmp_path_factory.mktemp("patch")
    values = trainkit.layered_volume((12, 24, 48))
    cube = segyfactory.write_segy(tmp / "cube.sgy", range(100, 124, 2), range(20, 44), 48, values=values)
    labels = np.digitize(values, [-0.5, 0.5]).astype(np.uint8)
    np.save(tmp / "labels.npy", labels)
    path = trainkit.write_config(tmp, "classification", {"inputs": [str(cube.path)], "target": "labels.npy"},
                                 CLASSIFIER_2D, {"max_steps": 1}, patch=[8, 16], section="inline")
    return train(load_config(path), tmp / "run"), cube


def test_strided_npy_map_has_the_cells_line_numbers_and_its_own_spacing(patch_run, tmp_path):
    run, cube = patch_run
    report = predict(run, [cube.path], tmp_path / "map.npy", stride={"inline": 2, "crossline": 4, "sample": 8},
                     output="probabilities", pictures=False)
    probs = np.load(report.output)
    # inline starts 0, 2 .. 10 (6); crossline starts 0, 4 .. 16 (5, window 8); sample starts 0, 8 .. 32 (5, window 16)
    assert probs.shape == (3, 6, 5, 5)
    np.testing.assert_allclose(probs.sum(axis=0), 1.0, atol=1e-5)
    side = json.loads((tmp_path / "map.json").read_text())
    assert side["map"]["ilines"] == [100, 104, 108, 112, 116, 120]  # centres 0, 2 .. 10 → every 2nd line of step 2
    assert side["map"]["xlines"] == [24, 28, 32, 36, 40]  # centres 4, 8 .. 20 → crossline 20 + centre
    assert side["map"]["centres"]["sample"] == [8, 16, 24, 32, 40]
    assert side["map"]["stride"] == {"inline": 2, "crossline": 4, "sample": 8}
    assert side["ilines"] == {"first": 100, "last": 120, "step": 4, "count": 6}
    assert side["spacing"] == {"inline": {"value": 50.0, "unit": "m"}, "crossline": {"value": 50.0, "unit": "m"},
                               "sample": {"value": 32.0, "unit": "ms"}}  # 2 × 25 m, 4 × 12.5 m, 8 × 4 ms
    assert side["sample_interval_us"] == 32000 and side["sample_start_ms"] == 32.0
    assert open_grid(report.output).spacing() == {"inline": (50.0, "m"), "crossline": (50.0, "m"),
                                                  "sample": (32.0, "ms")}  # the map's own, read back


def test_segy_map_has_one_trace_per_cell_with_the_centre_trace_headers(patch_run, tmp_path):
    run, cube = patch_run
    report = predict(run, [cube.path], tmp_path / "labels.sgy", stride=[2, 4, 8], output="labels", pictures=False)
    source = trace_headers(cube.path, 48)
    with segyio.open(report.output) as f:
        assert list(f.ilines) == [100, 104, 108, 112, 116, 120] and list(f.xlines) == [24, 28, 32, 36, 40]
        assert list(f.samples) == [32.0, 64.0, 96.0, 128.0, 160.0]  # centres 8 .. 40 × 4 ms, every 32 ms
        labels = segyio.tools.cube(f)
        headers = trace_headers(report.output, 5)
    assert labels.shape == (6, 5, 5) and set(np.unique(labels)) <= {0.0, 1.0, 2.0}
    centre = (np.array([0, 2, 4, 6, 8, 10])[:, None] * 24 + np.array([4, 8, 12, 16, 20])[None]).reshape(-1)
    keep = np.r_[0:108, 110:114, 118:240]  # all but the delay (109-110) and sample count/interval (115-118)
    np.testing.assert_array_equal(headers[:, keep], source[centre][:, keep])


def test_segy_map_with_one_cell_along_time_holds_the_class_probabilities_as_samples(patch_run, tmp_path):
    run, cube = patch_run
    short = segyfactory.write_segy(tmp_path / "short.sgy", range(100, 124, 2), range(20, 44), 16,
                                   values=trainkit.layered_volume((12, 24, 16)))
    report = predict(run, [short.path], tmp_path / "p.sgy", stride=1, output="probabilities", pictures=False)
    as_npy = predict(run, [short.path], tmp_path / "p.npy", stride=1, output="probabilities", pictures=False)
    with segyio.open(report.output) as f:
        assert len(f.ilines) == 12 and len(f.xlines) == 17 and len(f.samples) == 3  # 24 − 8 + 1 windows
        values = segyio.tools.cube(f)
    np.testing.assert_allclose(values, np.moveaxis(np.load(as_npy.output)[..., 0], 0, -1), atol=1e-6)


# ----------------------------------------------------------------------------- one file per class

def test_split_classes_writes_one_segy_per_class(patch_run, tmp_path, cli):
    run, cube = patch_run
    with pytest.raises(DataError, match="3 class probabilities per sample do not fit one SEG-Y.*--split-classes"):
        predict(run, [cube.path], tmp_path / "p.sgy", stride=[2, 4, 8], output="probabilities", pictures=False)
    result = cli("predict", run, cube.path, "--out", tmp_path / "p.sgy", "--stride", "2,4,8", "--output",
                 "probabilities", "--split-classes")
    assert result.exit_code == 0, result.output
    names = [tmp_path / f"p.class-{k}.sgy" for k in range(3)]
    assert sorted(p.name for p in tmp_path.glob("p*.sgy")) == [p.name for p in names]
    cubes = []
    for name in names:
        with segyio.open(name) as f:
            cubes.append(segyio.tools.cube(f))
    assert cubes[0].shape == (6, 5, 5)
    np.testing.assert_allclose(sum(cubes), 1.0, atol=1e-5)


def test_a_class_set_is_committed_all_or_none(tmp_path):
    s = segyfactory.write_segy(tmp_path / "in.sgy", range(1, 4), range(1, 5), 6)
    grid = open_grid(s.path)
    outs = writer.class_paths(tmp_path / "p.sgy", range(3))
    pending = writer.prepare(tmp_path / "p.sgy", grid, split=(0, 1, 2))
    assert pending.paths == outs
    pending.write_rows(0, np.ones((3, 3, 4, 6), np.float32))
    outs[2].write_bytes(b"someone else's file")
    with pytest.raises(OutputExistsError):
        pending.commit()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.sgy", "p.class-2.sgy"]  # no class 0/1, no temp


# ----------------------------------------------------------------------------- section models on 2D lines

def test_section_model_runs_along_a_2d_line_with_an_axis_mapping(tmp_path, cli):
    run = train(load_config(trainkit.regression_config(tmp_path, max_steps=1)), tmp_path / "run")  # 3×3 convs
    section = trainkit.layered_volume((1, 30, 40), seed=3)
    line = segyfactory.write_segy(tmp_path / "line.sgy", [7], range(1, 31), 40, values=section)
    assert open_grid(line.path).axes == ("trace", "sample")
    np.save(tmp_path / "section.npy", section)  # the same traces as one inline: (inline, crossline, sample)
    as_section = predict(run, [tmp_path / "section.npy"], tmp_path / "section_out.npy", pictures=False)
    along = predict(run, [line.path], tmp_path / "line_out.npy", axes={"trace": "crossline"}, pictures=False)
    expected = np.load(as_section.output)[0]
    assert expected.std() > 0 and not np.allclose(expected, section[0], atol=1e-2)  # not an identity
    np.testing.assert_allclose(np.load(along.output), expected, rtol=1e-5, atol=1e-6)
    refused = cli("predict", run, line.path, "--out", tmp_path / "x.npy")
    assert refused.exit_code == 2 and "--axes trace=crossline" in refused.stderr
    bad = cli("predict", run, line.path, "--out", tmp_path / "x.npy", "--axes", "trace=inline")
    assert bad.exit_code == 2 and "'inline' is not one of the model's patch axes (crossline, sample)" in bad.stderr


# ----------------------------------------------------------------------------- sanity warnings

@pytest.fixture(scope="module")
def regression_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("reg")
    return train(load_config(trainkit.regression_config(tmp, max_steps=1)), tmp / "run"), tmp


def test_no_warning_on_data_like_the_training_data(regression_run, tmp_path):
    run, data = regression_run
    report = predict(run, [data / "noisy.npy"], tmp_path / "o.npy", pictures=False)
    assert report.warnings == []


def test_amplitudes_far_from_training_give_a_warning_with_both_numbers(regression_run, tmp_path, cli, caplog):
    run, data = regression_run
    noisy = np.load(data / "noisy.npy")
    np.save(tmp_path / "loud.npy", noisy * 100)
    report = predict(run, [tmp_path / "loud.npy"], tmp_path / "o.npy", pictures=False)
    trained = load_checkpoint(run / "checkpoints" / "best.pt").normalization.scale[0]
    measured = float(noisy.std() * 100)  # every trace is sampled (192 < 256)
    assert len(report.warnings) == 1
    assert f"amplitude scale {measured:.4g} (standard, 192 sampled traces) is {measured / trained:.3g}× the " \
           f"training data's {trained:.4g}" in report.warnings[0]
    result = cli("predict", run, tmp_path / "loud.npy", "--out", tmp_path / "o2.npy")
    assert result.exit_code == 0 and "amplitude scale" in result.stderr


def test_integer_class_values_into_a_seismic_model_give_a_warning(regression_run, tmp_path):
    run, data = regression_run
    labels = (np.load(data / "clean.npy") > 0).astype(np.float32)  # 0/1: std 0.5, close to the training scale
    np.save(tmp_path / "labels.npy", labels)
    report = predict(run, [tmp_path / "labels.npy"], tmp_path / "o.npy", pictures=False)
    assert len(report.warnings) == 1
    assert "hold only 2 distinct integer values (0, 1) — this looks like a label grid" in report.warnings[0]


def test_a_target_equal_to_the_input_gives_a_training_warning(tmp_path, caplog):
    data_cfg = trainkit.regression_config(tmp_path)
    with caplog.at_level(logging.WARNING, logger="geocnn.sanity"):
        data_mod.build(load_config(data_cfg))
    assert caplog.records == []  # noisy → clean: fine
    cfg = yaml.safe_load(data_cfg.read_text())
    for target, message in (("noisy.npy", f"is the input file {tmp_path / 'noisy.npy'}"),
                            ("copy.npy", "equals input noisy on all 192 sampled traces (48 samples each)")):
        np.save(tmp_path / "copy.npy", np.load(tmp_path / "noisy.npy"))
        cfg["data"]["target"] = target
        (tmp_path / "same.yaml").write_text(yaml.safe_dump(cfg))
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="geocnn.sanity"):
            data_mod.build(load_config(tmp_path / "same.yaml"))
        assert [r.getMessage() for r in caplog.records if message in r.getMessage()], caplog.text


def test_gather_classifier_map_over_an_offset_axis_is_post_stack(tmp_path):
    """A model over (offset, sample) gathers: one cell along offset, so one trace per bin (the
    middle offset's headers, offset zeroed)."""
    gathers = segyfactory.write_segy(tmp_path / "g.sgy", range(1, 5), range(1, 7), 32, offsets=[10, 20, 30])
    assert open_grid(gathers.path).axes == ("inline", "crossline", "offset", "sample")
    np.save(tmp_path / "labels.npy", (gathers.values > 3).astype(np.uint8))
    path = trainkit.write_config(tmp_path, "classification", {"inputs": [str(gathers.path)], "target": {
                                     "path": "labels.npy", "axes": ["inline", "crossline", "offset", "sample"]}},
                                 CLASSIFIER_2D.replace("dense: 3", "dense: 2"), {"max_steps": 1}, patch=[3, 16],
                                 patch_axes=["offset", "sample"])
    run = train(load_config(path), tmp_path / "run")
    with pytest.raises(DataError, match="sample interval 64000 µs does not fit the SEG-Y field"):
        predict(run, [gathers.path], tmp_path / "map.sgy", stride={"sample": 16}, output="labels", pictures=False)
    report = predict(run, [gathers.path], tmp_path / "map.sgy", stride={"sample": 8}, output="labels",
                     pictures=False)
    with segyio.open(report.output) as f:
        assert list(f.ilines) == [1, 2, 3, 4] and list(f.xlines) == list(range(1, 7)) and list(f.offsets) == [0]
        assert list(f.samples) == [32.0, 64.0, 96.0]  # centres 8, 16, 24 × 4 ms
    source = trace_headers(gathers.path, 32)
    keep = np.r_[0:36, 40:108, 110:114, 118:240]  # not the offset, delay, sample count/interval
    np.testing.assert_array_equal(trace_headers(report.output, 3)[:, keep], source[1::3][:, keep])
    assert (trace_headers(report.output, 3)[:, 36:40] == 0).all()


def test_dense_multi_class_probabilities_split_into_one_npy_per_class(tmp_path):
    data = trainkit.write_segmentation(tmp_path, classes=3)
    path = trainkit.write_config(tmp_path, "segmentation", data, trainkit.SMALL_2D % {"out": 3}, {"max_steps": 1},
                                 patch=[8, 16], section="inline")
    run = train(load_config(path), tmp_path / "seg")
    whole = predict(run, [tmp_path / "seis.npy"], tmp_path / "p.npy", output="probabilities", pictures=False)
    split = predict(run, [tmp_path / "seis.npy"], tmp_path / "s.npy", output="probabilities", split_classes=True,
                    pictures=False)
    assert split.outputs == [tmp_path / f"s.class-{k}.npy" for k in range(3)]
    for k, name in enumerate(split.outputs):
        np.testing.assert_array_equal(np.load(name), np.load(whole.output)[k])
        assert json.loads(name.with_suffix(".json").read_text())["shape"] == [16, 12, 48]
    with pytest.raises(ConfigError, match="--split-classes writes one file of probabilities per class"):
        predict(run, [tmp_path / "seis.npy"], tmp_path / "l.npy", output="labels", split_classes=True)
