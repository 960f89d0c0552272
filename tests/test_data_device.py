"""``data.on_device``: patches cut, augmented and batched from grids held on the device (the CPU
here) equal the host path's patches for the same keys; the auto/true/false decision."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from geocnn import data as data_mod
from geocnn.config import load_config
from geocnn.errors import ConfigError
from geocnn.train import train
from tests import trainkit

SMALL_3D = """
dims: 3
in_channels: 1
layers:
  - conv: {out: 2, kernel: 3, padding: same}
"""


def _host_batch(dataset, keys):
    items = [dataset[k] for k in keys]
    return torch.stack([x for x, _ in items]), torch.stack([y for _, y in items])


def _compare(cfg_path, epochs=(1, 2)):
    d = data_mod.build(load_config(cfg_path))
    grids = data_mod.DeviceGrids(d, torch.device("cpu"))
    train_set = d.training_set()
    for epoch in epochs:
        keys = [(epoch, i) for i in range(len(train_set))]
        hx, hy = _host_batch(train_set, keys)
        dx, dy = grids.batch(train_set, keys)
        assert dx.dtype == hx.dtype and dy.dtype == hy.dtype and dx.shape == hx.shape and dy.shape == hy.shape
        np.testing.assert_array_equal(dx.numpy(), hx.numpy())
        np.testing.assert_array_equal(dy.numpy(), hy.numpy())
    val = d.validation_set()
    hx, hy = _host_batch(val, list(range(len(val))))
    dx, dy = grids.batch(val, list(range(len(val))))
    np.testing.assert_array_equal(dx.numpy(), hx.numpy())
    np.testing.assert_array_equal(dy.numpy(), hy.numpy())
    return d, hx


def test_regression_sections_with_flips_and_noise(tmp_path):
    data = trainkit.write_regression(tmp_path)
    path = trainkit.write_config(tmp_path, "regression", data, trainkit.SMALL_2D % {"out": 1}, patch=[8, 16],
                                 section="inline", augment={"flip": ["crossline"], "noise": 0.1},
                                 sampling={"patches_per_epoch": 24, "val_patches": 6})
    d, _ = _compare(path)
    flipped = [data_mod.draw_augmentation(d.cfg.data.augment, d.geom, (1, 8, 16),
                                          np.random.default_rng([0, 1, 2, i])).flips for i in range(24)]
    assert 0 < sum(1 for f in flipped if f) < 24  # both kinds of items were in the batch


def test_segmentation_cubes_with_flips_swaps_and_balance(tmp_path):
    data = trainkit.write_segmentation(tmp_path)
    path = trainkit.write_config(tmp_path, "segmentation", data, SMALL_3D, patch=[4, 4, 16],
                                 augment={"flip": ["inline", "crossline"], "transpose": ["inline", "crossline"]},
                                 sampling={"patches_per_epoch": 32, "val_patches": 6, "balance": 0.5})
    _compare(path, epochs=(1, 3))


def test_trace_labels_come_from_the_host(tmp_path):
    data = trainkit.write_traces(tmp_path)
    path = trainkit.write_config(tmp_path, "classification", data, trainkit.SMALL_1D_CLASSIFIER, patch=[64],
                                 split={"axis": "trace", "fraction": 0.25})
    d, hx = _compare(path)
    assert hx.shape == (8, 3, 64)
    t = int(d.val_origins[0][0])  # the grid is (trace, sample) with 3 channels; the patch: one whole trace
    np.testing.assert_array_equal(hx[0].numpy(), d.norm.apply(d.grid.read((slice(t, t + 1), slice(0, 64))))[:, 0])


@pytest.mark.slow
def test_training_on_the_device_equals_training_from_the_loader(tmp_path):
    data = trainkit.write_regression(tmp_path)
    losses = {}
    for on in (False, True):
        path = trainkit.write_config(tmp_path, "regression", data, trainkit.SMALL_2D % {"out": 1}, patch=[8, 16],
                                     section="inline", augment={"flip": ["crossline"]}, name=f"c{on}.yaml",
                                     on_device=on)
        run = train(load_config(path), tmp_path / f"run{on}")
        losses[on] = [json.loads(line)["train_loss"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(losses[True]) == 2 and losses[True] == losses[False]


def test_the_auto_true_false_decision(tmp_path):
    data = trainkit.write_regression(tmp_path)  # 16 × 12 × 48 float32 noisy + clean target: 73,728 bytes
    decisions = {}
    for setting in ("auto", True, False):
        path = trainkit.write_config(tmp_path, "regression", data, trainkit.SMALL_2D % {"out": 1}, patch=[8, 16],
                                     section="inline", on_device=setting, name=f"{setting}.yaml")
        d = data_mod.build(load_config(path))
        assert data_mod.grid_bytes(d) == 2 * 4 * 16 * 12 * 48
        cuda = torch.device("cuda")  # only named: the decision reads no device
        decisions[setting] = (data_mod.keep_on_device(d, torch.device("cpu"), None),
                              data_mod.keep_on_device(d, cuda, 147_456),  # exactly twice the grids: fits
                              data_mod.keep_on_device(d, cuda, 147_455) if setting != True else None)  # noqa: E712
        if setting is True:
            with pytest.raises(ConfigError, match="data.on_device: true, but the grids take"):
                data_mod.keep_on_device(d, cuda, 1000)
    assert decisions == {"auto": (False, True, False), True: (True, True, None), False: (False, False, False)}



def test_gaussian_pick_probabilities_on_the_device_equal_the_host(tmp_path):
    pytest.importorskip("obspy")
    root = Path(__file__).resolve().parents[1]
    cfg = yaml.safe_load((root / "configs" / "picking.yaml").read_text())
    cfg["data"]["inputs"] = [str(root / "data_samples" / "records" / "*.mseed")]
    cfg["data"]["picks"].update(path=str(root / "data_samples" / "picks.csv"), shape="gaussian")
    cfg["data"]["sampling"].update(patches_per_epoch=16, val_patches=8)
    path = tmp_path / "gauss.yaml"
    path.write_text(yaml.safe_dump(cfg))
    d, _ = _compare(path, epochs=(1,))
    assert d.target.channels == 3  # noise, P, S probabilities
