"""Missing samples of a raster (a GeoTIFF's nodata or internal mask) in training.

A pixel without data is never a patch centre, never scored (loss and validation metrics), and never
counted in the normalisation statistics. Each claim is checked on numbers: the sampled origins, the loss
and gradients with the values under the mask changed, the statistics against NumPy's of the valid pixels.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from geocnn import data as data_mod
from geocnn.config import load_config
from geocnn.losses import make_loss
from geocnn.metrics import ConfusionMetrics, RegressionMetrics
from geocnn.model.network import build as build_model
from geocnn.tasks import DEAD_LABEL
from tests.trainkit import SMALL_2D, write_config

rasterio = pytest.importorskip("rasterio", reason="the geocnn[geo] extra (rasterio) is not installed")
from rasterio.transform import from_origin  # noqa: E402

ROWS, COLS = 80, 96
HOLE = (slice(20, 50), slice(30, 70))  # the masked block (rows, columns)
PATCH = [16, 16]


def _scene(path, values: np.ndarray, valid: np.ndarray) -> None:
    """One float32 band with an internal mask (values under it are whatever ``values`` holds)."""
    profile = dict(driver="GTiff", width=COLS, height=ROWS, count=1, dtype="float32", crs="EPSG:32631",
                   transform=from_origin(500000.0, 4000000.0, 10.0, 10.0), tiled=True, blockxsize=32, blockysize=32)
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True), rasterio.open(path, "w", **profile) as ds:
        ds.write(values[None])
        ds.write_mask(valid.astype(np.uint8) * 255)


def _valid() -> np.ndarray:
    valid = np.ones((ROWS, COLS), bool)
    valid[HOLE] = False
    return valid


def _values(under: float) -> tuple[np.ndarray, np.ndarray]:
    """A smooth scene and its two-class labels; ``under`` is what the masked block holds."""
    y, x = np.mgrid[:ROWS, :COLS]
    values = (np.sin(y / 6.0) + np.cos(x / 9.0) + 3.0).astype(np.float32)
    labels = (values > 3.2).astype(np.uint8)
    values[HOLE] = under
    labels[HOLE] = 1 if under > 0 else 0
    return values, labels


def _data(folder, task: str, under: float, masked: bool = True, **sampling) -> data_mod.TrainingData:
    folder.mkdir(exist_ok=True)
    values, labels = _values(under)
    _scene(folder / "scene.tif", values, _valid() if masked else np.ones((ROWS, COLS), bool))
    target = labels if task == "segmentation" else values * 2.0
    np.save(folder / "target.npy", target)
    out = 2 if task == "segmentation" else 1
    cfg = write_config(folder, task, {"inputs": ["scene.tif"], "target": "target.npy"}, SMALL_2D % {"out": out},
                       patch=PATCH, sampling={"patches_per_epoch": 64, "val_patches": 16, **sampling},
                       split={"axis": "x", "fraction": 0.25, "gap": 0}, normalize={"method": "standard"})
    return data_mod.build(load_config(cfg))


def _centres_in_hole(d: data_mod.TrainingData, origins: np.ndarray) -> int:
    centres = origins + np.array(d.geom.extent) // 2
    return int((~_valid()[centres[:, 0], centres[:, 1]]).sum())


def test_no_patch_is_centred_on_a_masked_pixel(tmp_path):
    kw = {"min_live": 0.0}  # the centre rule alone
    plain = _data(tmp_path / "plain", "segmentation", 5.0, masked=False, **kw)
    assert _centres_in_hole(plain, plain.epoch_origins(0)) > 0  # the block is where windows fall without a mask
    d = _data(tmp_path / "masked", "segmentation", 5.0, **kw)
    for epoch in range(3):
        origins = d.epoch_origins(epoch)
        assert len(origins) == 64 and _centres_in_hole(d, origins) == 0
    assert len(d.val_origins) == 16 and _centres_in_hole(d, d.val_origins) == 0


def test_most_masked_windows_are_drawn_again(tmp_path):
    """With min_live (share of samples holding data), windows mostly inside the block are refused too."""
    d = _data(tmp_path, "segmentation", 5.0, min_live=0.8)
    valid = _valid()
    for o in d.epoch_origins(0):
        assert valid[o[0]:o[0] + 16, o[1]:o[1] + 16].mean() >= 0.8


def test_normalisation_counts_only_valid_pixels(tmp_path):
    d = _data(tmp_path, "segmentation", 1000.0)
    values, _ = _values(1000.0)
    kept = values[_valid()].astype(np.float64)
    assert d.norm.center[0] == pytest.approx(kept.mean(), rel=1e-9)
    assert d.norm.scale[0] == pytest.approx(kept.std(), rel=1e-9)
    assert d.norm.traces == ROWS


def _loss_and_grads(d: data_mod.TrainingData) -> tuple[float, list[torch.Tensor], torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    model, _ = build_model(d.cfg.model, tuple(d.geom.size))
    items = [d.training_set()[(0, i)] for i in range(8)]
    x, y = torch.stack([i[0] for i in items]), torch.stack([i[1] for i in items])
    loss = make_loss(d.task.classifies, d.cfg.train.loss, d.class_freq, masked=d.masked)(model(x), y)
    loss.backward()
    return float(loss.detach()), [p.grad.clone() for p in model.parameters()], x, y


@pytest.mark.parametrize("task", ["segmentation", "regression"])
def test_values_under_the_mask_change_neither_loss_nor_gradients(tmp_path, task):
    a = _data(tmp_path / "a", task, 5.0)
    b = _data(tmp_path / "b", task, -3.0)
    loss_a, grads_a, x_a, y_a = _loss_and_grads(a)
    loss_b, grads_b, x_b, y_b = _loss_and_grads(b)
    assert np.isfinite(loss_a) and loss_a == loss_b
    for ga, gb in zip(grads_a, grads_b):
        torch.testing.assert_close(ga, gb, rtol=0, atol=0)
    dead = torch.isnan(y_a) if task == "regression" else y_a == DEAD_LABEL
    assert dead.any() and torch.equal(dead, torch.isnan(y_b) if task == "regression" else y_b == DEAD_LABEL)
    plain = _data(tmp_path / "p", task, 5.0, masked=False)
    # without the mask, the sampled windows differ and the block's values are scored: the losses differ
    assert _loss_and_grads(plain)[0] != loss_a


def test_ignore_index_and_missing_samples_are_both_left_out():
    logits = torch.tensor([[[2.0, -1.0, 0.5, 3.0]], [[-2.0, 1.0, 0.5, -3.0]]]).permute(1, 0, 2)  # (1, 2, 4)
    target = torch.tensor([[0, 1, DEAD_LABEL, 7]])
    for kind in ("cross_entropy", "focal", "dice", "bce_balanced"):
        cfg = type("L", (), {"kind": kind, "class_weights": "none", "ignore_index": 7, "gamma": 2.0, "delta": 1.0})
        full = make_loss(True, cfg)(logits, target)
        kept = make_loss(True, cfg)(logits[..., :2], target[:, :2])
        torch.testing.assert_close(full, kept, msg=kind)


def test_metrics_leave_missing_samples_out():
    pred = torch.tensor([0, 1, 1, 0, 1])
    truth = torch.tensor([0, 1, DEAD_LABEL, DEAD_LABEL, 0])
    m = ConfusionMetrics(2, 0, per_patch=False)
    m.update(pred, truth)
    assert m.confusion.tolist() == [[1, 1], [0, 1]]
    values = torch.tensor([1.0, 2.0, 3.0, 4.0])
    target = torch.tensor([1.5, float("nan"), 2.0, float("nan")])
    r, ref = RegressionMetrics(), RegressionMetrics()
    r.update(values, target, values * 0)
    ref.update(values[[0, 2]], target[[0, 2]], values[[0, 2]] * 0)
    assert torch.equal(r.sums, ref.sums) and r.compute()["mse"] == pytest.approx((0.25 + 1.0) / 2)


def test_a_label_rasters_nodata_is_neither_counted_nor_scored(tmp_path):
    """Labels as a GeoTIFF with nodata 255 over the block: the class counts (for class weights) hold the
    valid pixels only, and the targets mark the block missing although the input has no mask there."""
    values, labels = _values(5.0)
    _scene(tmp_path / "scene.tif", values, np.ones((ROWS, COLS), bool))
    labels[HOLE] = 255
    profile = dict(driver="GTiff", width=COLS, height=ROWS, count=1, dtype="uint8", crs="EPSG:32631", nodata=255,
                   transform=from_origin(500000.0, 4000000.0, 10.0, 10.0))
    with rasterio.open(tmp_path / "labels.tif", "w", **profile) as ds:
        ds.write(labels[None])
    cfg = write_config(tmp_path, "segmentation", {"inputs": ["scene.tif"], "target": "labels.tif"},
                       SMALL_2D % {"out": 2}, patch=PATCH, sampling={"patches_per_epoch": 32, "val_patches": 8},
                       split={"axis": "x", "fraction": 0.25, "gap": 0})
    d = data_mod.build(load_config(cfg))
    kept = labels[_valid()]
    assert d.masked and d.class_freq.tolist() == [float((kept == 0).sum()), float((kept == 1).sum())]
    assert _centres_in_hole(d, d.epoch_origins(0)) == 0
    origin = np.array([HOLE[0].start - 4, HOLE[1].start - 4])  # a window over the block's corner
    y = d.task.dead(d.task.read_target(d.geom.read(d.target, origin), None), d.valid_patch(origin))
    assert (y[4:, 4:] == DEAD_LABEL).all() and (y[:4] != DEAD_LABEL).all()
