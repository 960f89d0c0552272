"""The closed registry of tasks: one :class:`Task` record per ``task:`` value of a config.

Each record says what the rest of geocnn needs to know about a task — whether the model answers
per sample (dense) or per patch, whether its scores are class logits or values, which losses fit
(the first is the default), how a training target is read, which validation metrics it reports
and which one heads the log (with its direction), its trivial baseline, and which outputs
(:mod:`geocnn.outputs`) ``geocnn predict`` can write for it. Config, data, training, prediction,
losses and pictures ask the record; the task's name is read only where YAML is parsed.

Class scores follow one convention (see :mod:`geocnn.losses`): logits with the class axis at 1,
K ≥ 2 channels for K classes or one channel holding the logit of class 1. Logits become
probabilities here (:func:`class_probabilities`) and nowhere else; probabilities become labels in
:func:`geocnn.outputs.class_labels`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, get_args

import numpy as np

from geocnn.errors import ConfigError
from geocnn.grids.formats import Format
from geocnn.metric_names import Metric, metric
from geocnn.outputs import AUTO, LABELS, PROBABILITIES, VALUES, Output, class_labels, outputs_of
from geocnn.schema import suggest
from geocnn.selfsup.masking import SAMPLES, TRACES, Masking

if TYPE_CHECKING:
    import torch

# What a task names and another module implements, keyed by these names — so the records (and the
# config checks that read them) need neither torch nor matplotlib:
# the losses geocnn has (geocnn.losses); each task picks those that fit it
LossKind = Literal["bce_balanced", "cross_entropy", "dice", "focal", "huber", "l1", "mse"]
# the class losses that score one positive class against class 0, so take two classes only (indices
# or probabilities); the others take any number of classes, as indices or as probabilities
TWO_CLASS_LOSSES: frozenset[str] = frozenset({"bce_balanced"})
# the class losses that take train.loss.class_weights (dice averages classes equally, bce_balanced
# balances its two classes itself from each batch: weights given to them would be ignored)
CLASS_WEIGHTED_LOSSES: frozenset[str] = frozenset({"cross_entropy", "focal"})
# the validation accumulators (geocnn.metrics.ACCUMULATORS)
AccumulatorName = Literal["values", "dense_classes", "patch_classes", "scalar", "hidden"]
# the validation examples and prediction preview of a kind of answer (geocnn.plots.PICTURES)
PictureSet = Literal["dense_values", "blind_spots", "trace_fill", "dense_classes", "patch_scores"]


# ----------------------------------------------------------------------------- scores

def class_probabilities(logits: torch.Tensor, axis: int = 1) -> torch.Tensor:
    """Class logits → probabilities: sigmoid of a single channel (P(class 1)), else softmax."""
    logits = logits.float()
    return logits.sigmoid() if logits.shape[axis] == 1 else logits.softmax(dim=axis)


# ----------------------------------------------------------------------------- targets

def _dense_values(block: np.ndarray, norm: Any) -> np.ndarray:
    """Regression: the target window (C, ...), in the normalised units the model predicts."""
    return norm.apply(block) if norm is not None else block


def _dense_labels(block: np.ndarray, norm: Any) -> np.ndarray:
    """Segmentation: the label window's one channel as class indices, or several channels (one per
    class: soft labels, e.g. Gaussian picks) as class probabilities (K, ...)."""
    return block[0].astype(np.int64) if len(block) == 1 else block.astype(np.float32)


def hard_labels(target: Any, axis: int = 1) -> Any:
    """Class labels of segmentation targets: indices unchanged; class probabilities (a float array or
    tensor with the class axis at ``axis``) → their most probable class, :data:`DEAD_LABEL` where
    every probability is 0 (a missing sample). What metrics, class counts and pictures score — the
    soft targets themselves only feed the loss. Array methods only: NumPy and torch alike."""
    soft = target.is_floating_point() if hasattr(target, "is_floating_point") else target.dtype.kind == "f"
    if not soft:
        return target
    scored = target.sum(axis) > 0
    return target.argmax(axis) * scored + DEAD_LABEL * ~scored


def _class_labels(target: Any, norm: Any) -> Any:
    """Segmentation: targets as class labels (soft targets' most probable class)."""
    return hard_labels(target)


def _patch_label(value: float, norm: Any) -> np.ndarray:
    """Classification: the patch's label (a class index)."""
    return np.asarray(int(value), dtype=np.int64)


def _patch_value(value: float, norm: Any) -> np.ndarray:
    """Scalar: the patch's value, standardised with the training targets' mean and std."""
    return np.asarray((value - norm.center[0]) / norm.scale[0], dtype=np.float32)


def _grid_units(values: torch.Tensor, norm: Any) -> torch.Tensor:
    """Regression: model-space values (B, C, ...) → target units."""
    return norm.invert(values, channel_axis=1) if norm is not None else values


def _scalar_units(values: torch.Tensor, norm: Any) -> torch.Tensor:
    """Scalar: standardised values (B,) or (B, 1) → target units, one per patch."""
    return values * norm.scale[0] + norm.center[0]


def _same(values: Any, norm: Any) -> Any:
    return values


# ----------------------------------------------------------------------------- missing samples

DEAD_LABEL = -100  # the class index of a sample that holds no data (nodata): never scored (torch's ignore default)


def _dead_labels(target: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Segmentation: class indices (...) with missing samples (``valid`` False) marked :data:`DEAD_LABEL`;
    class probabilities (K, ...) all 0 there (no class: the loss and :func:`hard_labels` skip them)."""
    if target.ndim > valid.ndim:
        return np.where(valid[None], target, 0).astype(target.dtype)
    return np.where(valid, target, DEAD_LABEL).astype(target.dtype)


def _dead_values(target: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Regression: values (C, ...) with missing samples NaN, which the loss and the metrics leave out."""
    return np.where(valid[None], target, np.float32("nan")).astype(target.dtype)


def _patch_target(target: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """One answer per patch: its centre holds data (patches are never centred on missing samples)."""
    return target


# ----------------------------------------------------------------------------- the record

@dataclass(frozen=True)
class Task:
    """One task of the YAML grammar (``task: regression`` ...)."""

    name: str
    help: str
    dense: bool  # one answer per sample (the patch size back), else one per patch
    classifies: bool  # scores are class logits; else values
    losses: tuple[LossKind, ...]  # the first is the default
    metric_names: tuple[str, ...]  # every validation metric it may report (best_metric choices)
    headlines: tuple[str, str]  # headline metric for two classes (or values), for more classes
    baseline: str  # the trivial prediction its metrics are compared with
    read_target: Callable[[Any, Any], np.ndarray]  # (window or patch value, target norm) → target
    units: Callable[[Any, Any], Any]  # (model-space values or targets, target norm) → target units
    accumulator: AccumulatorName  # computes its validation metrics (geocnn.metrics.ACCUMULATORS)
    pictures: PictureSet  # its validation examples and prediction preview (geocnn.plots.PICTURES)
    dead: Callable[[np.ndarray, np.ndarray], np.ndarray] = _patch_target  # (target, valid mask) → target unscored there
    masking: Masking | None = None  # self-supervised: how samples are hidden (the target is the input)
    clean_headline: str | None = None  # with a clean twin (data.clean): the metric against it heads instead

    @property
    def self_supervised(self) -> bool:
        """It learns from the inputs alone: no data.target, a data.mask, loss on hidden samples."""
        return self.masking is not None

    @property
    def default_loss(self) -> str:
        return self.losses[0]

    @property
    def target_dtype(self) -> type:
        """dtype of training targets: class indices or float values."""
        return np.int64 if self.classifies else np.float32

    @property
    def grid_target(self) -> bool:
        """The target is a grid of values with the model's output channels (regression); else every
        target grid holds one channel (labels, or values read under each patch)."""
        return self.dense and not self.classifies

    @property
    def raw_scores(self) -> bool:
        """Its loss takes the model's raw scores (logits, standardised values): no final sigmoid/softmax."""
        return not self.grid_target

    @property
    def input_baseline(self) -> bool:
        """Its baseline is the input itself (when in the target's units)."""
        return self.grid_target

    def __reduce__(self) -> tuple:
        """Pickled by name (DataLoader workers under spawn receive the config): one record per task."""
        return get_task, (self.name,)

    def headline(self, classes: int | None, clean: bool = False) -> Metric:
        """The metric the epoch line, the loss picture and the run's last line lead with: with a
        clean twin (``clean``), the score against it — the figure a geophysicist wants, where the
        score on the hidden noisy samples rewards a network for predicting noise too."""
        if clean and self.clean_headline is not None:
            return metric(self.clean_headline)
        return metric(self.headlines[0] if classes in (None, 2) else self.headlines[1])

    # --- predict's outputs
    @property
    def outputs(self) -> tuple[Output, ...]:
        """The ``--output`` kinds that fit: class probabilities or labels, else values."""
        return outputs_of(self.classifies)

    def output(self, requested: str, classes: int | None, fmt: Format | None = None,
               probabilities: bool = False) -> Output:
        """``--output`` resolved: auto → the output format's first kind that fits (miniSEED: probabilities),
        else values, or probabilities (two classes, or when ``probabilities`` is asked for: picks) / labels."""
        if requested == AUTO:
            held = [o for name in (fmt.outputs if fmt is not None else ()) for o in self.outputs if o.name == name]
            if held:
                return held[0]
            if not self.classifies:
                return VALUES
            return PROBABILITIES if classes == 2 or probabilities else LABELS
        fitting = {o.name: o for o in self.outputs}
        if requested not in fitting:
            raise ConfigError(f"--output {requested} does not fit a {self.name} model",
                              fix=f"use {' or '.join(fitting)}")
        return fitting[requested]

    def scores(self, out: torch.Tensor) -> torch.Tensor:
        """Model output (B, K, ...) → what prediction blends: probabilities, or the values."""
        return class_probabilities(out) if self.classifies else out.float()

    def predictions(self, out: torch.Tensor, target_norm: Any) -> torch.Tensor:
        """Model output of a batch → class labels (B, ...), or values in target units."""
        if self.classifies:
            return class_labels(class_probabilities(out)).long()
        values = out.float()
        return self.units(values if self.dense else values.reshape(-1), target_norm)


TASKS: dict[str, Task] = {t.name: t for t in (
    Task("regression", "a grid of values per sample (e.g. denoising): input → clean data",
         dense=True, classifies=False, losses=("mse", "l1", "huber"), metric_names=("mse", "snr_db"),
         headlines=("snr_db", "snr_db"), baseline="the input itself", read_target=_dense_values,
         units=_grid_units, accumulator="values", pictures="dense_values", dead=_dead_values),
    Task("segmentation", "a class per sample (e.g. faults, facies)",
         dense=True, classifies=True, losses=("cross_entropy", "bce_balanced", "dice", "focal"),
         metric_names=("accuracy", "precision", "recall", "f1", "iou", "pixel_accuracy", "mean_class_accuracy",
                       "fw_iou", "miou"),
         headlines=("f1", "miou"), baseline="every sample the training majority class", read_target=_dense_labels,
         units=_class_labels, accumulator="dense_classes", pictures="dense_classes", dead=_dead_labels),
    Task("classification", "a class per patch or trace",
         dense=False, classifies=True, losses=("cross_entropy", "focal"),
         metric_names=("accuracy", "precision", "recall", "f1", "iou", "pixel_accuracy", "mean_class_accuracy",
                       "fw_iou", "miou", "precision_macro", "recall_macro", "f1_macro"),
         headlines=("f1", "accuracy"), baseline="the training majority class", read_target=_patch_label,
         units=_same, accumulator="patch_classes", pictures="patch_scores"),
    Task("scalar", "a value per patch or trace",
         dense=False, classifies=False, losses=("mse", "l1", "huber"), metric_names=("mse", "mae", "r2"),
         headlines=("r2", "r2"), baseline="the training mean", read_target=_patch_value,
         units=_scalar_units, accumulator="scalar", pictures="patch_scores"),
    Task("denoise_self", "self-supervised denoising (Noise2Void / StructN2V blind spots): noisy input only",
         dense=True, classifies=False, losses=("mse", "l1", "huber"), metric_names=("mse", "snr_db"),
         headlines=("snr_db", "snr_db"), baseline=SAMPLES.baseline_help, read_target=_dense_values,
         units=_grid_units, accumulator="hidden", masking=SAMPLES, clean_headline="clean_snr_db",
         pictures="blind_spots"),
    Task("reconstruct_traces", "self-supervised trace reconstruction: hidden traces predicted from their "
         "neighbours; predict fills missing traces", dense=True, classifies=False, losses=("mse", "l1", "huber"),
         metric_names=("mse", "snr_db"), headlines=("snr_db", "snr_db"), baseline=TRACES.baseline_help,
         read_target=_dense_values, units=_grid_units, accumulator="hidden", masking=TRACES,
         clean_headline="clean_snr_db", pictures="trace_fill"),
)}

LOSS_KINDS: tuple[str, ...] = get_args(LossKind)


def get_task(name: str) -> Task:
    """The record of ``name``; an unknown name is a ConfigError listing the valid ones."""
    if name not in TASKS:
        raise ConfigError(f"unknown task {name!r}", fix=suggest(name, list(TASKS)))
    return TASKS[name]


def best_metric_names(task: Task) -> tuple[str, ...]:
    """What ``train.best_metric`` may name for ``task``: the validation loss or one of its metrics."""
    return ("val_loss", *task.metric_names)
