"""Validation metrics on tiny inputs whose values are worked out by hand in the comments."""

from __future__ import annotations

import math

import pytest
import torch

from geocnn.metrics import ConfusionMetrics, RegressionMetrics, ScalarMetrics


def _confusion(k: int, pairs: list[tuple[int, int]], majority: int = 0, per_patch: bool = False,
               ignore_index: int | None = None) -> ConfusionMetrics:
    """Metrics fed with (truth, prediction) pairs, as two 1D tensors."""
    m = ConfusionMetrics(k, majority, per_patch, ignore_index)
    m.update(torch.tensor([p for _, p in pairs]), torch.tensor([t for t, _ in pairs]))
    return m


# Four classes, nine samples; rows are the truth, columns the prediction:
#            pred 0  1  2  3
#   truth 0:      4  1  0  0     (5 samples of class 0)
#   truth 1:      1  2  1  0     (4 samples of class 1)
#   truth 2:      0  0  0  0     (class 2 never true, but predicted once)
#   truth 3:      0  0  0  0     (class 3 neither true nor predicted)
FACIES = [(0, 0)] * 4 + [(0, 1)] + [(1, 0)] + [(1, 1)] * 2 + [(1, 2)]


def test_facies_confusion_matrix_is_built_rows_truth_columns_prediction():
    m = _confusion(4, FACIES)
    assert m.confusion.tolist() == [[4, 1, 0, 0], [1, 2, 1, 0], [0, 0, 0, 0], [0, 0, 0, 0]]


def test_facies_benchmark_metrics_by_hand():
    out = _confusion(4, FACIES).compute()
    # pixel accuracy = diagonal / total = (4 + 2) / 9
    assert out["pixel_accuracy"] == pytest.approx(6 / 9)
    # class accuracy = recall per class = tp / truth count: 4/5, 2/4, and 0 for the absent classes
    assert out["class_accuracy"] == pytest.approx([0.8, 0.5, 0.0, 0.0])
    # mean class accuracy over the classes in the truth (0 and 1): (0.8 + 0.5) / 2
    assert out["mean_class_accuracy"] == pytest.approx(0.65)
    # IoU = tp / (truth + predicted − tp): class 0: 4 / (5 + 5 − 4) = 2/3; class 1: 2 / (4 + 3 − 2) = 2/5;
    # class 2: 0 / (0 + 1 − 0) = 0; class 3: 0/0, left out.
    # FW-IoU = Σ (truth share) · IoU = 5/9 · 2/3 + 4/9 · 2/5 = 10/27 + 8/45 = 74/135
    assert out["fw_iou"] == pytest.approx(74 / 135)
    # mIoU (facies benchmark): classes in the truth OR the prediction: (2/3 + 2/5 + 0) / 3 = 16/45.
    # Averaging over truth classes only would give (2/3 + 2/5) / 2 = 8/15.
    assert out["miou"] == pytest.approx(16 / 45)


def test_miou_leaves_out_classes_absent_from_both_truth_and_prediction():
    # Three classes, class 2 never seen: IoU of 0 = 2 / (2 + 2 − 2) = 1, class 1 = 1 → mIoU 1, not 2/3.
    out = _confusion(3, [(0, 0), (0, 0), (1, 1)]).compute()
    assert out["miou"] == pytest.approx(1.0)


def test_majority_baseline_by_hand():
    # Baseline: every sample predicted as class 0 → column 0 holds the row sums [5, 4, 0, 0].
    # accuracy 5/9; IoU of class 0 = 5 / (5 + 9 − 5) = 5/9, class 1 = 0 / (4 + 0 − 0) = 0;
    # mIoU over classes in truth or (baseline) prediction = (5/9 + 0) / 2 = 5/18
    base = _confusion(4, FACIES, majority=0).compute()["baseline"]
    assert base["pixel_accuracy"] == pytest.approx(5 / 9)
    assert base["miou"] == pytest.approx(5 / 18)
    assert base["mean_class_accuracy"] == pytest.approx((1.0 + 0.0) / 2)
    assert "confusion" not in base


# Binary: 11 samples; truth 0: 5 true negatives, 1 false positive; truth 1: 2 false negatives, 3 true positives.
BINARY = [(0, 0)] * 5 + [(0, 1)] + [(1, 0)] * 2 + [(1, 1)] * 3


def test_binary_precision_recall_f1_iou_by_hand():
    out = _confusion(2, BINARY, per_patch=True).compute()
    # precision = TP / (TP + FP) = 3 / 4; recall = TP / (TP + FN) = 3 / 5
    assert out["precision"] == pytest.approx(0.75)
    assert out["recall"] == pytest.approx(0.6)
    # F1 = 2·P·R / (P + R) = 2 · 0.75 · 0.6 / 1.35 = 2/3; IoU = 3 / (3 + 1 + 2) = 1/2
    assert out["f1"] == pytest.approx(2 / 3)
    assert out["iou"] == pytest.approx(0.5)
    assert out["accuracy"] == pytest.approx(8 / 11)
    assert out["confusion"] == [[5, 1], [2, 3]]


def test_macro_scores_of_a_multiclass_classifier_by_hand():
    # per patch, 4 classes (FACIES): precision = tp / predicted = [4/5, 2/3, 0, 0], recall = [4/5, 2/4, 0, 0];
    # macro means over the classes in the truth (0, 1): precision (0.8 + 2/3) / 2, recall (0.8 + 0.5) / 2;
    # F1 per class: 0.8 and 2·(2/3)·0.5 / (2/3 + 0.5) = 4/7 → macro (0.8 + 4/7) / 2
    out = _confusion(4, FACIES, per_patch=True).compute()
    assert out["precision_macro"] == pytest.approx((0.8 + 2 / 3) / 2)
    assert out["recall_macro"] == pytest.approx(0.65)
    assert out["f1_macro"] == pytest.approx((0.8 + 4 / 7) / 2)


def test_ignore_index_and_out_of_range_truth_are_not_counted():
    # truth 255 is ignored, truth 7 is outside 0..1: only (1, 1) and (0, 1) count
    m = _confusion(2, [(255, 0), (7, 0), (1, 1), (0, 1)], ignore_index=255, per_patch=True)
    assert m.confusion.tolist() == [[0, 1], [0, 1]]


def test_regression_mse_and_snr_by_hand():
    # target [3, 4]: Σ t² = 25; prediction [3.5, 4]: Σ e² = 0.25 → MSE 0.125, SNR = 10·log10(25 / 0.25) = 20 dB;
    # baseline (input) [3, 3]: Σ e² = 1 → MSE 0.5, SNR = 10·log10(25) dB
    m = RegressionMetrics()
    m.update(torch.tensor([3.5, 4.0]), torch.tensor([3.0, 4.0]), torch.tensor([3.0, 3.0]))
    out = m.compute()
    assert out["mse"] == pytest.approx(0.125)
    assert out["snr_db"] == pytest.approx(20.0)
    assert out["baseline"] == pytest.approx({"mse": 0.5, "snr_db": 10 * math.log10(25)})


def test_regression_sums_over_batches_not_averages_of_batch_averages():
    # the same four samples in batches of 1 and 3: Σ e² = 1 + 0 + 0 + 0 → MSE 1/4 either way
    one, two = RegressionMetrics(), RegressionMetrics()
    one.update(torch.tensor([1.0, 2, 3, 4]), torch.tensor([0.0, 2, 3, 4]), None)
    two.update(torch.tensor([1.0]), torch.tensor([0.0]), None)
    two.update(torch.tensor([2.0, 3, 4]), torch.tensor([2.0, 3, 4]), None)
    assert one.compute() == two.compute()
    assert two.compute()["mse"] == pytest.approx(0.25)
    assert "baseline" not in two.compute()


def test_scalar_mse_mae_r2_by_hand():
    # y = [1, 2, 3, 4]: mean 2.5, Σ (y − ȳ)² = 2.25 + 0.25 + 0.25 + 2.25 = 5
    # ŷ = [1, 2, 3, 5]: Σ e² = 1, Σ |e| = 1 → MSE 0.25, MAE 0.25, R² = 1 − 1/5 = 0.8
    # baseline = training mean 2: e = [1, 0, −1, −2] → Σ e² = 6, Σ |e| = 4 → MSE 1.5, MAE 1, R² = 1 − 6/5 = −0.2
    m = ScalarMetrics(train_mean=2.0)
    m.update(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.0]))
    m.update(torch.tensor([3.0, 5.0]), torch.tensor([3.0, 4.0]))
    out = m.compute()
    assert out["mse"] == pytest.approx(0.25)
    assert out["mae"] == pytest.approx(0.25)
    assert out["r2"] == pytest.approx(0.8)
    assert out["baseline"] == pytest.approx({"mse": 1.5, "mae": 1.0, "r2": -0.2})
