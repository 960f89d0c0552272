"""Blind regions: what a mask hides, what it shows instead, networks blind by construction, and
the config that asks for them (``data.mask.shape``, ``mask: auto``, a conv's ``blind``)."""

from __future__ import annotations

import json
import logging
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import yaml

from geocnn.config import load_config
from geocnn.errors import ConfigError
from geocnn.model import parse_model
from geocnn.model.blind import blind_over, unseen
from geocnn.model.network import build
from geocnn.runs.metrics_log import read as read_metrics
from geocnn.runs.writer import outcome_line
from geocnn.selfsup.blindspots import BlindShape, hide_regions, nearest_seen, region_mask, spot_count
from geocnn.selfsup.masking import hide_samples
from geocnn.summary import summarize
from geocnn.train import train
from geocnn.yamlsource import Source
from tests import trainkit

AXES = ("crossline", "sample")


def position_patch(shape=(32, 64)) -> np.ndarray:
    """(1, *shape) patch whose value encodes its position: 1000 × crossline + sample."""
    i, j = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    return (1000.0 * i + j)[None].astype(np.float32)


def where_from(values: np.ndarray) -> np.ndarray:
    """(n, 2) positions a position patch's values came from."""
    return np.stack([values // 1000, values % 1000], axis=-1).astype(int)


# ----------------------------------------------------------------------------- masks

def test_one_region_hides_exactly_the_asked_box_and_shows_values_from_outside_it():
    x = position_patch()
    shape = BlindShape.parse([3, 9])
    masked, scored = hide_regions(x, shape, 1 / (32 * 64), "neighbour", np.random.default_rng(0))
    (ci, cj), = np.argwhere(scored)  # one blind spot
    changed = masked[0] != x[0]
    box = np.zeros((32, 64), bool)
    box[max(0, ci - 1):ci + 2, max(0, cj - 4):cj + 5] = True
    assert np.array_equal(changed, box)  # every sample of the box replaced, nothing else
    sources = where_from(masked[0][box])
    assert not box[sources[:, 0], sources[:, 1]].any()  # each shown value comes from outside the box


def test_a_whole_axis_region_makes_every_sample_of_the_line_a_blind_spot():
    x = position_patch()
    shape = BlindShape.parse([3, "all"])
    masked, scored = hide_regions(x, shape, None, "neighbour", np.random.default_rng(1))
    lines = np.flatnonzero(scored.all(axis=1))
    assert len(lines) == spot_count(shape, (32, 64), None) == 3  # 3 × 3 of 32 traces ≈ a quarter hidden
    assert scored.sum() == 3 * 64 and (scored.any(axis=1) == scored.all(axis=1)).all()
    hidden = region_mask(shape, (32, 64), lines[:, None])
    assert np.array_equal(masked[0] != x[0], hidden)
    sources = where_from(masked[0][hidden])
    assert not hidden[sources[:, 0], sources[:, 1]].any()  # from outside every region of the patch


def test_zero_replacement_and_ratio():
    x = position_patch() + 1.0
    masked, scored = hide_regions(x, BlindShape.parse([1, 5]), 0.01, "zero", np.random.default_rng(2))
    assert scored.sum() == round(0.01 * 32 * 64)
    assert (masked[0][masked[0] != x[0]] == 0).all()


def test_hide_samples_takes_the_shape_from_the_mask():
    mask = SimpleNamespace(ratio=None, radius=2, replace="neighbour", axis=None, length=5, gap=1, shape=(3, "all"))
    masked, scored = hide_samples(position_patch(), mask, AXES, np.random.default_rng(3))
    assert scored.sum() == 3 * 64


@pytest.mark.parametrize("given, problem", [
    ([4, "all"], "must be an odd number"),
    ([3], "has 1 sizes but the patch spans 2 axes"),
    ([33, 1], "longer than the patch"),
    (["all", "all"], "hides the whole"),
])
def test_shapes_that_cannot_work_are_refused(given, problem):
    with pytest.raises(ValueError, match=problem):
        BlindShape.parse(given).check((32, 64), AXES)


def test_the_trivial_blind_prediction_is_the_nearest_trace_read():
    x = position_patch((8, 4))
    near = nearest_seen(x, BlindShape.parse([3, "all"]))
    assert near[0, 0, 1] == 2000 + 1 and near[0, 7, 3] == 5000 + 3  # 2 traces on (reflected at the edge)


# ----------------------------------------------------------------------------- blind networks

BLIND = """
dims: 2
in_channels: 1
axes: [crossline, sample]
layers:
  - conv: {out: 6, kernel: [7, 5], padding: same, blind: [3, all]}
  - relu
  - conv: {out: 6, kernel: %s, padding: same}
  - relu
  - conv: {out: 1, kernel: 1}
"""


def spec_of(text: str):
    return parse_model(yaml.safe_load(text), Source("blind.yaml"))


def test_a_blind_first_conv_with_time_only_layers_never_reads_the_region():
    spec = spec_of(BLIND % "[1, 5]")
    zero = unseen(spec, (16, 32))
    assert zero[7:10].all() and not zero[6].all() and not zero[10].all()  # traces 7-9 of centre 8
    assert blind_over(spec, (16, 32), BlindShape.parse([3, "all"])) == (True, None)
    blind, at = blind_over(spec, (16, 32), BlindShape.parse([5, "all"]))
    assert not blind and at[0] == -2  # the nearest trace it reads


def test_a_later_lateral_kernel_breaks_the_blindness():
    blind, at = blind_over(spec_of(BLIND % "3"), (16, 32), BlindShape.parse([3, "all"]))
    assert not blind and abs(at[0]) <= 1


def test_blind_taps_stay_zero_and_are_counted_as_parameters():
    spec = spec_of(BLIND % "[1, 5]")
    model, _ = build(spec, (16, 32))
    conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))  # the blind one comes first
    opt = torch.optim.Adam(model.parameters(), 0.1)
    model(torch.randn(2, 1, 16, 32)).square().mean().backward()
    opt.step()
    assert (conv.weight[:, :, 2:5, :] == 0).all() and (conv.weight[:, :, :2, :] != 0).any()
    rows = summarize(spec, (1, 16, 32), 1)
    assert rows.total_params == sum(p.numel() for p in model.parameters())
    assert "blind centre 3×5" in rows.records[0].note


@pytest.mark.parametrize("blind, problem", [("[4, all]", "blind 4 along crossline is not a centred part of kernel 7"),
                                            ("[all, all]", "blind covers the whole kernel"),
                                            ("[3]", "blind has 1 sizes for a 2-D kernel")])
def test_a_blind_centre_must_fit_the_kernel(blind, problem):
    spec = spec_of(BLIND.replace("blind: [3, all]", f"blind: {blind}") % "[1, 5]")
    assert problem in summarize(spec, (1, 16, 32), 1).error.problem


# ----------------------------------------------------------------------------- config and training

def blind_config(tmp_path, mask_cfg, model: str = BLIND % "[1, 5]"):
    data = trainkit.write_regression(tmp_path, shape=(16, 24, 48))
    data = {"inputs": data["inputs"], "clean": "clean.npy"}
    return trainkit.write_config(tmp_path, "denoise_self", data, model, patch=[16, 32], section="inline",
                                 mask=mask_cfg)


def test_mask_auto_is_mask_shape_auto(tmp_path):
    cfg = load_config(blind_config(tmp_path, "auto"))
    assert cfg.data.mask.shape == "auto" and cfg.data.mask.ratio is None


@pytest.mark.parametrize("mask_cfg, message", [
    ({"shape": [4, "all"]}, "must be an odd number"),
    ({"shape": [3, 1, 1]}, "has 3 sizes"),
    ({"shape": [3, "all"], "axis": "sample"}, "give mask.shape or mask.axis"),
    ({"shape": "everything"}, "shape"),
])
def test_mask_shape_mistakes_name_the_yaml_line(tmp_path, mask_cfg, message):
    path = blind_config(tmp_path, mask_cfg)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert message in str(err.value) and f"{path}:" in str(err.value)


def test_mask_shape_is_refused_for_trace_reconstruction(tmp_path):
    data = trainkit.write_regression(tmp_path)
    path = trainkit.write_config(tmp_path, "reconstruct_traces", {"inputs": data["inputs"]},
                                 trainkit.SMALL_2D % {"out": 1}, patch=[8, 16], section="inline",
                                 mask={"shape": [3, "all"]})
    with pytest.raises(ConfigError, match="mask.shape does not apply to task reconstruct_traces"):
        load_config(path)


def test_a_network_that_reads_inside_the_region_is_refused_before_training(tmp_path):
    path = blind_config(tmp_path, {"shape": [3, "all"]}, BLIND % "3")
    with pytest.raises(ConfigError, match="reads the input at"):
        train(load_config(path, ["train.max_steps=1"]), tmp_path / "run")


def test_auto_measures_the_noise_logs_the_choice_and_trains_on_every_sample(tmp_path, caplog):
    path = blind_config(tmp_path, "auto")
    with caplog.at_level(logging.INFO):
        run = train(load_config(path, ["train.epochs=1"]), tmp_path / "run")
    text = caplog.text
    assert "noise correlation measured on the inputs" in text and "crossline: " in text
    assert "blind region (mask: auto): " in text
    assert "nothing is hidden in the input and every sample is scored" in text
    val = read_metrics(run)[-1].val.scores
    assert val["classical"]["method"] == "f-x deconvolution" and np.isfinite(val["classical"]["clean_snr_db"])
    assert "f-x deconvolution" in outcome_line(run)
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["data"]["mask"]["shape"] == "auto"  # measured again on resume, the same way
    assert json.loads(json.dumps(val)) == val


def test_three_d_regions_hide_a_column_of_traces():
    x = np.arange(8 * 10 * 16, dtype=np.float32).reshape(1, 8, 10, 16)  # value = flat position
    shape = BlindShape.parse([3, 3, "all"])
    masked, scored = hide_regions(x, shape, 1 / 80, "neighbour", np.random.default_rng(4))
    (ci, cj), = np.argwhere(scored.all(axis=2))  # one blind trace, scored over its whole length
    hidden = np.zeros((8, 10, 16), bool)
    hidden[max(0, ci - 1):ci + 2, max(0, cj - 1):cj + 2] = True
    assert np.array_equal(masked[0] != x[0], hidden) and scored.sum() == 16
    sources = masked[0][hidden].astype(int)
    assert not hidden.reshape(-1)[sources].any()
