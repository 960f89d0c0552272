"""The task registry: each task's losses, headline metric and direction, and scores → labels."""

from __future__ import annotations

import math
from typing import get_args

import numpy as np
import pytest
import torch

from geocnn import plots
from geocnn.config import load_config
from geocnn.errors import ConfigError
from geocnn.grids.normalize import Normalization
from geocnn.metric_names import METRICS
from geocnn.metrics import ACCUMULATORS
from geocnn.outputs import class_labels
from geocnn.tasks import TASKS, AccumulatorName, PictureSet, class_probabilities, get_task
from tests import trainkit


def test_the_six_tasks_and_their_losses():
    assert list(TASKS) == ["regression", "segmentation", "classification", "scalar", "denoise_self",
                           "reconstruct_traces"]
    assert {n: (t.dense, t.classifies, t.self_supervised) for n, t in TASKS.items()} == {
        "regression": (True, False, False), "segmentation": (True, True, False),
        "classification": (False, True, False), "scalar": (False, False, False),
        "denoise_self": (True, False, True), "reconstruct_traces": (True, False, True)}
    assert {n: t.losses for n, t in TASKS.items()} == {
        "regression": ("mse", "l1", "huber"), "segmentation": ("cross_entropy", "bce_balanced", "dice", "focal"),
        "classification": ("cross_entropy", "focal"), "scalar": ("mse", "l1", "huber"),
        "denoise_self": ("mse", "l1", "huber"), "reconstruct_traces": ("mse", "l1", "huber")}
    assert {n: t.default_loss for n, t in TASKS.items()} == {
        "regression": "mse", "segmentation": "cross_entropy", "classification": "cross_entropy", "scalar": "mse",
        "denoise_self": "mse", "reconstruct_traces": "mse"}


@pytest.mark.parametrize("task, classes, name", [
    ("regression", None, "snr_db"), ("scalar", None, "r2"), ("denoise_self", None, "snr_db"),
    ("reconstruct_traces", None, "snr_db"),
    ("segmentation", 2, "f1"), ("segmentation", 6, "miou"),
    ("classification", 2, "f1"), ("classification", 4, "accuracy"),
])
def test_headline_metric_and_its_direction(task, classes, name):
    headline = TASKS[task].headline(classes)
    assert headline.name == name and headline.higher_is_better
    assert headline.better(0.6, 0.5) and not headline.better(0.5, 0.6) and headline.better(-1e9, None)


@pytest.mark.parametrize("task, name", [("denoise_self", "clean_snr_db"), ("reconstruct_traces", "clean_snr_db"),
                                        ("regression", "snr_db")])
def test_with_a_clean_twin_the_score_against_it_heads_the_run(task, name):
    headline = TASKS[task].headline(None, clean=True)
    assert headline.name == name and headline.higher_is_better and headline.better(8.6, 2.5)


def test_the_clean_twin_never_picks_the_checkpoint(tmp_path):
    """clean_snr_db heads the log, but the clean twin is for evaluation only: no best_metric."""
    data = trainkit.write_regression(tmp_path)
    path = trainkit.write_config(tmp_path, "denoise_self", {"inputs": data["inputs"], "clean": "clean.npy"},
                                 trainkit.SMALL_2D % {"out": 1}, {"best_metric": "clean_snr_db"}, patch=[8, 16],
                                 section="inline")
    with pytest.raises(ConfigError, match="best_metric 'clean_snr_db' is not a validation metric of task "
                                          "denoise_self") as err:
        load_config(path)
    assert "(valid: mse, snr_db, val_loss)" in err.value.message


def test_losses_and_errors_are_lower_is_better():
    for name in ("val_loss", "mse", "mae"):
        assert not METRICS[name].higher_is_better
        assert METRICS[name].better(0.5, 0.7) and not METRICS[name].better(0.7, 0.5)


def _computed_names(task, classes):
    """Scalar metric names an accumulator of ``task`` really reports (one tiny batch)."""
    acc = ACCUMULATORS[TASKS[task].accumulator](classes, 0, None, 0.0)
    if TASKS[task].classifies:
        acc.update(torch.tensor([0, 1, 1, 0]) % classes, torch.tensor([0, 1, 0, 1]) % classes)
    else:
        acc.update(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([1.5, 2.0, 2.5]), torch.tensor([1.0, 1.0, 1.0]))
    return {k for k, v in acc.compute().items() if isinstance(v, float)}


@pytest.mark.parametrize("task", list(TASKS))
def test_metric_names_are_what_the_accumulators_report(task):
    """best_metric is checked against metric_names: they must be exactly what validation reports."""
    counts = (2, 3) if TASKS[task].classifies else (None,)
    assert set().union(*(_computed_names(task, k) for k in counts)) == set(TASKS[task].metric_names)
    assert set(TASKS[task].metric_names) <= set(METRICS)


def test_tasks_name_accumulators_and_picture_sets_that_exist():
    """A task holds names (no torch, no matplotlib in the records); each registry has exactly those names."""
    assert set(ACCUMULATORS) == set(get_args(AccumulatorName)) >= {t.accumulator for t in TASKS.values()}
    assert set(plots.PICTURES) == set(get_args(PictureSet)) >= {t.pictures for t in TASKS.values()}
    assert {n: (t.accumulator, t.pictures) for n, t in TASKS.items()} == {
        "regression": ("values", "dense_values"), "segmentation": ("dense_classes", "dense_classes"),
        "classification": ("patch_classes", "patch_scores"), "scalar": ("scalar", "patch_scores"),
        "denoise_self": ("hidden", "blind_spots"), "reconstruct_traces": ("hidden", "trace_fill")}


def test_logits_to_probabilities():
    p = class_probabilities(torch.tensor([[0.0], [math.log(3)]]))
    assert p[:, 0].tolist() == pytest.approx([0.5, 0.75])
    p = class_probabilities(torch.tensor([[0.0, math.log(3)]]))
    assert p[0].tolist() == pytest.approx([0.25, 0.75])


@pytest.mark.parametrize("z", [-1.0, -1e-3, 0.0, 1e-3, 2.0])
def test_one_channel_and_two_channels_give_the_same_labels(z):
    """Logit z of class 1 alone, or logits [0, z]: one label, a tie (z = 0) going to class 0."""
    one = class_labels(class_probabilities(torch.tensor([[z]])))
    two = class_labels(class_probabilities(torch.tensor([[0.0, z]])))
    assert one.tolist() == two.tolist() == [int(z > 0)]
    # the same rule on blended NumPy probabilities, channels first (what predict writes)
    p1 = 1 / (1 + math.exp(-z))
    assert class_labels(np.array([[p1]]), axis=0).tolist() == [int(z > 0)]
    assert class_labels(np.array([[1 - p1], [p1]]), axis=0).tolist() == [int(z > 0)]


def test_predictions_and_targets_in_target_units():
    seg, scalar = TASKS["segmentation"], TASKS["scalar"]
    assert seg.predictions(torch.tensor([[[-1.0, 0.0, 2.0]]]), None).tolist() == [[0, 0, 1]]
    assert seg.scores(torch.tensor([[[0.0]]])).tolist() == [[[0.5]]]
    norm = Normalization("standard", (10.0,), (4.0,))
    assert scalar.predictions(torch.tensor([[0.5], [-1.0]]), norm).tolist() == [12.0, 6.0]
    assert scalar.read_target(14.0, norm).tolist() == 1.0
    assert TASKS["classification"].read_target(2.0, None).dtype == np.int64
    block = np.array([[[0.0, 1.0], [2.0, 1.0]]], np.float32)
    assert seg.read_target(block, None).tolist() == [[0, 1], [2, 1]]
    assert TASKS["regression"].read_target(block, norm).tolist() == [[[-2.5, -2.25], [-2.0, -2.25]]]


def test_an_unknown_task_lists_the_valid_ones():
    with pytest.raises(ConfigError, match="unknown task 'segmentaton' — did you mean 'segmentation'"):
        get_task("segmentaton")


def test_a_misspelt_best_metric_fails_at_config_load(tmp_path):
    path = trainkit.regression_config(tmp_path, best_metric="snr")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    line = next(i for i, t in enumerate(path.read_text().splitlines(), 1) if "best_metric" in t)
    assert err.value.where.startswith(f"{path}:{line}:")
    assert "best_metric 'snr' is not a validation metric of task regression" in err.value.message
    assert "did you mean 'snr_db'? (valid: mse, snr_db, val_loss)" in err.value.message


def test_best_metric_of_another_task_is_refused(tmp_path):
    path = trainkit.regression_config(tmp_path, best_metric="miou")
    with pytest.raises(ConfigError, match="best_metric 'miou' is not a validation metric of task regression"):
        load_config(path)


def test_records_pickle_by_name():
    """DataLoader workers started with spawn receive the config, and with it the task record."""
    import pickle

    for task in TASKS.values():
        assert pickle.loads(pickle.dumps(task)) is task


def test_soft_segmentation_targets_are_scored_as_their_most_probable_class():
    seg = get_task("segmentation")
    soft = np.array([[0.7, 0.2, 0.4, 0.0], [0.3, 0.1, 0.1, 0.0], [0.0, 0.7, 0.5, 0.0]], np.float32)  # (K, samples)
    valid = np.array([True, True, False, True])
    assert seg.read_target(soft, None).dtype == np.float32  # several channels: probabilities, kept
    assert seg.read_target(soft[:1] * 0 + 2, None).tolist() == [2, 2, 2, 2]  # one channel: class indices
    dead = seg.dead(soft, valid)  # a missing sample: no class at all
    np.testing.assert_array_equal(dead[:, 2], [0, 0, 0])
    # batches (B, K, samples) as validation scores them: the argmax, DEAD_LABEL where no class is given
    labels = seg.units(torch.from_numpy(dead)[None], None)
    assert labels.tolist() == [[0, 2, -100, -100]]
    hard = torch.tensor([[1, 0, 2]])
    assert seg.units(hard, None) is hard  # class indices pass through
