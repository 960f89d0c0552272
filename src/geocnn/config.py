"""Config files: a model YAML or a full config (``task``, ``data``, ``model``, ``train``).

Everything a run needs is checked here, in one step, before any data is read or any module is
built; errors name the YAML ``file:line:col`` (or the ``--set`` option that gave the value).
Relative paths in ``data`` are relative to the config file's folder, so a config runs from
anywhere; the effective config written into a run folder holds absolute paths.

A full config::

    name: denoise
    task: regression            # regression | segmentation | classification | scalar | denoise_self | reconstruct_traces
    data:
      inputs: [../data_samples/seismic_noisy.sgy]     # stacked as channels, in order
      target: ../data_samples/seismic_clean.sgy
      patch: [48, 48]
      section: inline           # 2D patches from a 3D volume: inline | crossline | time
    model: {...}                # see geocnn.model.spec
    train: {epochs: 10, batch_size: 16, lr: 0.001, loss: mse}

Self-supervised tasks (``denoise_self``, ``reconstruct_traces``) have no ``data.target``: they hide
part of each input patch as ``data.mask`` says and learn to predict it (see geocnn.masking);
``data.clean`` names an optional clean twin, read for validation scores only.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from geocnn.errors import ConfigError
from geocnn.grids.normalize import METHODS as NORMALIZATION_METHODS
from geocnn.grids.spec import INPUT_SPEC, InputSpec, input_spec
from geocnn.masking import TIME_AXES
from geocnn.model import ModelSpec, parse_model
from geocnn.model.layers import KINDS
from geocnn.model.spec import BLOCK, MODEL, REPEAT_ARGS, RESIDUAL_ARGS, frozen_layers
from geocnn.patches import SECTION_AXES
from geocnn.schema import (
    REQUIRED,
    AnyValue,
    Bool,
    Choice,
    Ctx,
    Field,
    Float,
    Int,
    ListOf,
    OneOf,
    Record,
    Str,
    suggest,
)
from geocnn.tasks import LOSS_KINDS, TASKS, Task, best_metric_names
from geocnn.yamlsource import KeyPath, Source, load
from geocnn.yamlsource import value as yaml_value

NORMALIZE = Record([
    Field("method", Choice(*NORMALIZATION_METHODS), "standard",
          "standard: mean/std; robust: median and (p99 − p1)/2; none"),
    Field("max_traces", Int(min=1), 2000, "traces sampled (seeded) to estimate the statistics"),
], title="normalize", shorthand="method")

SPLIT = Record([
    Field("axis", Str(), None, "grid axis split into train and validation blocks (default: the first)"),
    Field("fraction", Float(min=0, max=0.9), 0.2, "share of the axis held out for validation (at its end)"),
    Field("gap", OneOf(Choice("auto"), Int(min=0)), "auto",
          "samples left out between the blocks; auto = the patch extent along the axis (0 for labelled traces)"),
], title="split")

SAMPLING = Record([
    Field("patches_per_epoch", Int(min=1), 1024, "training patches drawn per epoch (all processes together)"),
    Field("val_patches", Int(min=1), 256, "validation patches, fixed for the whole run"),
    Field("balance", Float(min=0, max=1), 0.0,
          "share of patches centred on a rare-class sample (segmentation) or drawn class-balanced "
          "(classification)"),
    Field("rare_class", Int(min=0), None, "the rare class for balance (default: the least frequent)"),
    Field("min_live", Float(min=0, max=1), 0.8, "least share of live (non-missing) traces in a patch"),
], title="sampling")

AUGMENT = Record([
    Field("flip", ListOf(Str()), [], "patch axes that may be reversed (e.g. crossline; never sample/time)"),
    Field("transpose", ListOf(Str(), min_len=2, max_len=2), None,
          "two patch axes of equal size that may be swapped (e.g. [inline, crossline])"),
    Field("noise", Float(min=0), 0.0, "std of Gaussian noise added to the normalised input"),
], title="augment")

MASK = Record([
    Field("ratio", Float(min=0, max=0.5, exclusive_min=True), None,
          "share hidden in each patch: of the samples (denoise_self, default 0.02) or of the traces "
          "(reconstruct_traces, default 0.15)"),
    Field("radius", Int(min=1, max=16), 2,
          "denoise_self: a blind spot shows a random neighbour's value from within this many samples"),
    Field("replace", Choice("neighbour", "zero"), "neighbour",
          "denoise_self: what a blind spot shows: a random neighbour's value, or zero (the normalised mean)"),
    Field("axis", Str(), None,
          "denoise_self: StructN2V, also hide a line along this patch axis around each blind spot (noise "
          "coherent along it); reconstruct_traces: the lateral axis gaps run along (default: the first)"),
    Field("length", Int(min=1, max=63), 5, "denoise_self with axis: samples on that line (odd), centred on the blind spot"),
    Field("gap", Int(min=1, max=64), 1, "reconstruct_traces: adjacent traces per hidden gap (1: scattered traces)"),
    Field("guard", Int(min=0, max=8), 0,
          "reconstruct_traces: score only hidden traces with no live trace within this many along every lateral "
          "axis (blocks are hidden so there are some): noise correlated over that many traces cannot be copied"),
], title="mask")

# the mask fields only one self-supervised task reads (a field given to the other is an error)
MASK_FIELDS_OF = {"denoise_self": ("ratio", "radius", "replace", "axis", "length"),
                  "reconstruct_traces": ("ratio", "axis", "gap", "guard")}

DATA = Record([
    Field("inputs", ListOf(AnyValue(), min_len=1), REQUIRED,
          "input files stacked as channels, in order: a path, or a mapping (see input)"),
    Field("target", AnyValue(), None,
          "target grid: clean data (regression), class labels (segmentation), or a grid read under "
          "each patch (classification, scalar)"),
    Field("labels", AnyValue(), None,
          "classification/scalar: one label per trace position (.npy, or .csv with a label column)"),
    Field("patch", ListOf(Int(min=1), min_len=1, max_len=3), REQUIRED, "patch size, one per model axis"),
    Field("patch_axes", ListOf(Str(), min_len=1, max_len=3), None,
          "grid axes the patch spans, e.g. [crossline, sample]; default: the last ones"),
    Field("section", Choice(*SECTION_AXES), None,
          "2D models on 3D volumes: inline (crossline × sample), crossline or time slices"),
    Field("target_from_patch", Choice("center", "mean", "max"), "center",
          "classification/scalar with a target grid: the patch's label is the target at its centre, "
          "its mean, or its max (e.g. 'a fault is in this patch')"),
    Field("normalize", NORMALIZE, {}, "per-channel input normalisation"),
    Field("target_normalize", Choice("auto", "input", "own", "none"), "auto",
          "regression targets: input (same numbers as the input: denoising), own, none; "
          "auto = input when channel counts match"),
    Field("split", SPLIT, {}, "train/validation split by spatial blocks"),
    Field("sampling", SAMPLING, {}, "how patches are drawn"),
    Field("augment", AUGMENT, {}, "random flips, transposes and noise (training only)"),
    Field("classes", Int(min=2), None, "number of classes (default: the model's output channels)"),
    Field("class_names", ListOf(Str(), min_len=2), None,
          "names of the classes 0, 1, ... in pictures and confusion matrices (default: class 0, class 1...)"),
    Field("channel_names", ListOf(Str(), min_len=1), None,
          "names of the input channels in pictures, e.g. [Z, N, E] (default: from the files)"),
    Field("on_device", OneOf(Choice("auto"), Bool()), "auto",
          "keep the normalised grids on the GPU and cut, augment and balance patches there; auto: when they "
          "fit half its free memory (else pinned host prefetch), never on the CPU; true: always"),
    Field("mask", MASK, {}, "self-supervised tasks: which samples or traces each patch hides"),
    Field("clean", AnyValue(), None,
          "self-supervised tasks: a clean twin of the inputs, for validation scores only (never trained on)"),
], title="data")

LOSS = Record([
    Field("kind", Choice(*LOSS_KINDS), None,
          "default: mse (regression, scalar), cross_entropy (segmentation, classification)"),
    Field("class_weights", OneOf(Choice("auto", "none"), ListOf(Float(min=0), min_len=2)), "none",
          "cross_entropy/focal: auto = from label frequencies (rare classes weigh more), or one per class"),
    Field("ignore_index", Int(), None, "label value that is not scored (unlabelled samples)"),
    Field("delta", Float(min=0, exclusive_min=True), 1.0, "huber: where the loss turns linear"),
    Field("gamma", Float(min=0), 2.0, "focal: focusing exponent"),
], title="loss", shorthand="kind")

EARLY_STOP = Record([
    Field("patience", Int(min=1), REQUIRED, "epochs without an improvement of best_metric before training stops"),
    Field("min_delta", Float(min=0), 0.0, "least change of best_metric that counts as an improvement"),
], title="early_stop", shorthand="patience")

TRAIN = Record([
    Field("epochs", Int(min=1), 10, "passes over patches_per_epoch patches"),
    Field("batch_size", Int(min=1), 16, "patches per step and process (global batch = batch_size × processes)"),
    Field("lr", Float(min=0, exclusive_min=True), 1e-3, "learning rate"),
    Field("optimizer", Choice("adam", "adamw", "sgd"), "adam", "optimizer"),
    Field("weight_decay", Float(min=0), 0.0, "L2 penalty (decoupled for adamw)"),
    Field("momentum", Float(min=0, max=1), 0.9, "sgd momentum"),
    Field("scheduler", Choice("none", "cosine", "step"), "cosine", "learning-rate schedule over the run"),
    Field("step_epochs", Int(min=1), 10, "step scheduler: epochs between decays"),
    Field("step_gamma", Float(min=0, exclusive_min=True), 0.5, "step scheduler: decay factor"),
    Field("loss", LOSS, {}, "loss function"),
    Field("grad_clip", Float(min=0, exclusive_min=True), None, "clip the gradient norm to this value"),
    Field("best_metric", Str(), "val_loss", "validation metric that selects best.pt (e.g. val_loss, f1, miou, snr_db)"),
    Field("device", Choice("auto", "cpu", "cuda", "mps"), "auto", "auto: cuda, then mps, then cpu"),
    Field("amp", Choice("auto", "fp32", "bf16", "fp16"), "auto",
          "precision on CUDA: auto (bf16 autocast when supported, else fp16), bf16, fp16 (with a grad scaler), fp32"),
    Field("compile", Bool(), False, "torch.compile the model"),
    Field("channels_last", OneOf(Choice("auto"), Bool()), "auto",
          "channels-last memory layout for 2D/3D convolutions (auto: on, except on MPS)"),
    Field("workers", OneOf(Choice("auto"), Int(min=0)), "auto", "DataLoader worker processes"),
    Field("threads", Int(min=1), None, "CPU threads per process for torch (default: one per core); "
          "also used by predict"),
    Field("seed", Int(min=0), 0, "seed of weights, patch draws and augmentation"),
    Field("max_steps", Int(min=1), None, "stop after this many optimizer steps"),
    Field("examples", Int(min=0, max=16), 4, "validation patches drawn in examples.png"),
    Field("tensorboard", Bool(), False, "also log metrics.jsonl's numbers and examples.png to <run>/tb/ "
          "(needs the tensorboard extra)"),
    Field("init_from", Str(), None,
          "start from the weights of a run folder or checkpoint (.pt): layers are matched by name, "
          "those whose shapes differ (e.g. a head with another class count) keep their fresh weights"),
    Field("freeze", ListOf(Str()), [],
          "layers not trained: names as in the model YAML / geocnn summarize, or prefixes "
          "(enc1 = enc1.conv1, enc1.conv2, ...; enc* = every layer whose name starts with enc)"),
    Field("early_stop", EARLY_STOP, None,
          "stop when best_metric has not improved by min_delta for patience epochs"),
], title="train")

# ----------------------------------------------------------------------------- typed sections
# One frozen record per Record above, with the same field names (tests/test_tasks.py checks that
# they agree); built from the checked dict, so code reads ``cfg.train.lr``, not ``cfg.train["lr"]``.

@dataclass(frozen=True)
class Normalize:
    """``data.normalize``: per-channel input normalisation."""

    method: str
    max_traces: int


@dataclass(frozen=True)
class Split:
    """``data.split``: train/validation blocks along one grid axis."""

    axis: str | None
    fraction: float
    gap: str | int


@dataclass(frozen=True)
class Sampling:
    """``data.sampling``: how many patches, and how they are drawn."""

    patches_per_epoch: int
    val_patches: int
    balance: float
    rare_class: int | None
    min_live: float


@dataclass(frozen=True)
class Augment:
    """``data.augment``: random flips, transposes and noise."""

    flip: tuple[str, ...]
    transpose: tuple[str, str] | None
    noise: float


@dataclass(frozen=True)
class Mask:
    """``data.mask``: what a self-supervised task hides in each patch (see geocnn.masking)."""

    ratio: float
    radius: int
    replace: str
    axis: str | None
    length: int
    gap: int
    guard: int


@dataclass(frozen=True)
class Data:
    """The ``data`` section: inputs, targets, patch and how patches are drawn."""

    inputs: tuple[Any, ...]
    target: Any
    labels: Any
    patch: tuple[int, ...]
    patch_axes: tuple[str, ...] | None
    section: str | None
    target_from_patch: str
    normalize: Normalize
    target_normalize: str
    split: Split
    sampling: Sampling
    augment: Augment
    classes: int | None
    class_names: tuple[str, ...] | None
    channel_names: tuple[str, ...] | None
    on_device: str | bool
    mask: Mask
    clean: Any


@dataclass(frozen=True)
class Loss:
    """``train.loss``: the loss kind (default from the task) and its options."""

    kind: str
    class_weights: str | tuple[float, ...]
    ignore_index: int | None
    delta: float
    gamma: float


@dataclass(frozen=True)
class EarlyStop:
    """``train.early_stop``: how long to wait for best_metric to improve."""

    patience: int
    min_delta: float


@dataclass(frozen=True)
class Train:
    """The ``train`` section: optimisation, device and checkpoint selection."""

    epochs: int
    batch_size: int
    lr: float
    optimizer: str
    weight_decay: float
    momentum: float
    scheduler: str
    step_epochs: int
    step_gamma: float
    loss: Loss
    grad_clip: float | None
    best_metric: str
    device: str
    amp: str
    compile: bool
    channels_last: str | bool
    workers: str | int
    threads: int | None
    seed: int
    max_steps: int | None
    examples: int
    tensorboard: bool
    init_from: str | None
    freeze: tuple[str, ...]
    early_stop: EarlyStop | None


SECTIONS_OF = {Normalize: NORMALIZE, Split: SPLIT, Sampling: SAMPLING, Augment: AUGMENT, Mask: MASK, Data: DATA,
               Loss: LOSS, EarlyStop: EARLY_STOP, Train: TRAIN}


def section_record(cls: type, checked: dict) -> Any:
    """A checked section dict as its frozen record (nested sections too; lists become tuples)."""
    hints = typing.get_type_hints(cls)
    values = {}
    for f in dataclasses.fields(cls):
        v = checked[f.name]
        kind = _optional_record(hints[f.name])
        if kind is not None and v is not None:
            v = section_record(kind, v)
        elif isinstance(v, list):
            v = tuple(v)
        values[f.name] = v
    return cls(**values)


def _optional_record(hint: Any) -> type | None:
    """The section record a field holds (``Loss``, or ``EarlyStop`` of ``EarlyStop | None``), if any."""
    if dataclasses.is_dataclass(hint):
        return hint
    records = [a for a in typing.get_args(hint) if dataclasses.is_dataclass(a)]
    return records[0] if records else None


CONFIG = Record([
    Field("name", Str(), None, "run name (default: the config file name); runs/<name>/"),
    Field("task", Choice(*TASKS), REQUIRED, " | ".join(TASKS)),
    Field("data", DATA, REQUIRED, "data section"),
    Field("model", AnyValue(), REQUIRED, "model section"),
    Field("train", TRAIN, {}, "training section"),
], title="geocnn config")


@dataclass
class Config:
    """A validated full config."""

    path: str
    name: str
    task: Task
    data: Data
    model: ModelSpec
    train: Train
    raw: dict  # effective config as plain data (absolute paths), written into the run
    inputs: list[InputSpec]
    target: InputSpec | None
    labels: str | None
    clean: InputSpec | None = None

    @property
    def patch(self) -> tuple[int, ...]:
        return self.data.patch

    @property
    def dense(self) -> bool:
        return self.task.dense

    def hash(self) -> str:
        """Hash of the effective config (provenance in checkpoints)."""
        return config_hash(self.raw)


def config_hash(raw: dict) -> str:
    text = json.dumps(raw, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# ----------------------------------------------------------------------------- overrides

def apply_overrides(data: dict, source: Source, overrides: list[str]) -> None:
    """Apply ``section.key=value`` overrides (values parsed as YAML) in place."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set '{item}' is not key=value", fix="write e.g. --set train.lr=0.0005")
        key, text = item.split("=", 1)
        path = [p for p in key.strip().split(".") if p]
        if not path:
            raise ConfigError(f"--set '{item}' has no key", fix="write e.g. --set train.lr=0.0005")
        value = yaml_value(text, f"--set {key}")
        node = data
        for i, part in enumerate(path[:-1]):
            if not isinstance(node.get(part, {}), dict):
                raise ConfigError(f"--set {key}: '{'.'.join(path[:i + 1])}' is not a section")
            node = node.setdefault(part, {})
        node[path[-1]] = value
        source.labels[tuple(path)] = f"--set {key}"


# ----------------------------------------------------------------------------- loading

def model_section(data: Any, source: Source) -> tuple[Any, KeyPath]:
    """The model mapping of a document and its key path: ``model:`` of a config, or the document."""
    if isinstance(data, dict) and "model" in data:
        return data["model"], ("model",)
    if isinstance(data, dict) and "layers" in data:
        return data, ()
    raise ConfigError("no model found: expected a 'model:' section (or a model file with "
                      "dims, in_channels and layers)", where=source.where(()),
                      fix="see configs/ for examples")


def _resolve_path(value: Any, folder: Path) -> Any:
    """Make the ``path`` of an input entry absolute (relative to the config's folder)."""
    if isinstance(value, str):
        return str((folder / value).resolve()) if not Path(value).is_absolute() else value
    if isinstance(value, dict) and isinstance(value.get("path"), str):
        return {**value, "path": _resolve_path(value["path"], folder)}
    return value


def _absolute(raw: dict, folder: Path) -> None:
    data = raw.get("data")
    if not isinstance(data, dict):
        return
    if isinstance(data.get("inputs"), list):
        data["inputs"] = [_resolve_path(v, folder) for v in data["inputs"]]
    for key in ("target", "labels", "clean"):
        if data.get(key) is not None:
            data[key] = _resolve_path(data[key], folder)
    train = raw.get("train")
    if isinstance(train, dict) and isinstance(train.get("init_from"), str):
        train["init_from"] = _resolve_path(train["init_from"], folder)


def _patch_axes_known(data: dict) -> tuple[str, ...] | None:
    """The patch axes when the config names them (section or patch_axes), else None (the grid decides)."""
    if data["patch_axes"] is not None:
        return tuple(data["patch_axes"])
    return SECTION_AXES[data["section"]] if data["section"] is not None else None


def _check_self_supervised(cfg: dict, ctx: Ctx, given_mask: dict | None) -> None:
    """denoise_self / reconstruct_traces: no target, a mask whose fields fit the task and the patch."""
    task, data = TASKS[cfg["task"]], cfg["data"]
    d, m = ctx.at("data"), ctx.at("data").at("mask")
    if data["target"] is not None:
        raise d.at("target").error(f"task {task.name} learns from the inputs alone; data.target is not read",
                                   "remove data.target (a clean twin for evaluation goes in data.clean)")
    if data["labels"] is not None:
        raise d.at("labels").error(f"task {task.name} learns from the inputs alone; data.labels is not read",
                                   "remove data.labels")
    mask = data["mask"]
    for key, value in (given_mask or {}).items():
        # a saved run's config holds every field at its default: only a changed one is a mistake
        if key in MASK.by_name and key not in MASK_FIELDS_OF[task.name] and value != MASK.by_name[key].default:
            raise m.at(key).error(f"mask.{key} does not apply to task {task.name}",
                                  f"{task.name} reads {', '.join(MASK_FIELDS_OF[task.name])}")
    if mask["ratio"] is None:
        mask["ratio"] = task.masking.default_ratio
    patch = data["patch"]
    if mask["radius"] >= max(patch):
        raise m.at("radius").error(f"radius {mask['radius']} does not fit a {'×'.join(map(str, patch))} patch",
                                   f"use at most {max(patch) - 1}")
    if mask["length"] % 2 == 0:
        raise m.at("length").error(f"length {mask['length']} is even: the line is centred on the blind spot",
                                   f"use {mask['length'] + 1} or {mask['length'] - 1}")
    axes = _patch_axes_known(data)
    if axes is None or len(axes) != len(patch):
        return  # the grid decides the patch axes: checked again when it is open (geocnn.data)
    axis = mask["axis"]
    if axis is not None and axis not in axes:
        raise m.at("axis").error(f"mask axis {axis!r} is not a patch axis ({', '.join(axes)})",
                                 suggest(axis, list(axes)))
    if "gap" in MASK_FIELDS_OF[task.name]:
        lateral = [a for a in axes if a not in TIME_AXES]
        if axis in TIME_AXES:
            raise m.at("axis").error(f"gaps run along a lateral axis, not {axis}", f"use one of {', '.join(lateral)}")
        axis = axis or (lateral[0] if lateral else None)
        along = patch[axes.index(axis)] if axis else 0
        if axis and mask["gap"] > along // 2:
            raise m.at("gap").error(f"gap {mask['gap']} leaves no live trace on both sides in a patch of {along} "
                                    f"along {axis}", f"use at most {along // 2}")
    elif axis is not None and mask["length"] > patch[axes.index(axis)]:
        along = patch[axes.index(axis)]
        raise m.at("length").error(f"length {mask['length']} is longer than the patch along {axis} ({along})",
                                   f"use at most {along - (along % 2 == 0)}")


def _check_task(cfg: dict, spec: ModelSpec, ctx: Ctx, given_mask: dict | None = None) -> None:
    task, data, train = TASKS[cfg["task"]], cfg["data"], cfg["train"]
    d = ctx.at("data")
    if len(data["patch"]) != spec.dims:
        raise d.at("patch").error(f"patch has {len(data['patch'])} sizes but the model has dims {spec.dims}",
                                  f"give {spec.dims} sizes")
    if data["patch_axes"] is not None:
        if len(data["patch_axes"]) != spec.dims:
            raise d.at("patch_axes").error(f"patch_axes names {len(data['patch_axes'])} axes but the model "
                                           f"has dims {spec.dims}")
        if data["section"] is not None:
            raise d.at("section").error("give section or patch_axes, not both")
    if data["section"] is not None and spec.dims != 2:
        raise d.at("section").error(f"section is for 2D models on 3D volumes, but the model has dims {spec.dims}",
                                    "use patch_axes")
    if task.self_supervised:
        _check_self_supervised(cfg, ctx, given_mask)
    elif data["clean"] is not None:
        raise d.at("clean").error(f"data.clean (an evaluation twin) is for self-supervised tasks, not {task.name}",
                                  "use data.target to train on clean data")
    elif any(value != MASK.by_name[key].default for key, value in (given_mask or {}).items() if key in MASK.by_name):
        # (a saved run's config holds the section at its defaults: that is not a mistake)
        raise d.at("mask").error(f"data.mask is for the self-supervised tasks (denoise_self, reconstruct_traces), "
                                 f"not {task.name}", "remove it")
    if task.dense and not task.self_supervised and data["target"] is None:
        raise d.error(f"task {task.name} needs data.target (a grid with the same geometry as the inputs)")
    if not task.dense and (data["target"] is None) == (data["labels"] is None):
        raise d.error(f"task {task.name} needs exactly one of data.target (a grid read under each patch) "
                          "or data.labels (one label per trace position)")
    if data["labels"] is not None and task.dense:
        raise d.at("labels").error(f"labels (one per trace) are for classification/scalar tasks, not {task.name}",
                                   "use data.target")
    _check_names(task, data, spec, d)
    loss = train["loss"]
    if loss["kind"] is None:
        loss["kind"] = task.default_loss
    elif loss["kind"] not in task.losses:
        raise ctx.at("train").at("loss").error(f"loss {loss['kind']} does not fit task {task.name}",
                                               suggest(loss["kind"], list(task.losses)))
    best = train["best_metric"]
    if best not in best_metric_names(task):
        raise ctx.at("train").at("best_metric").error(
            f"best_metric {best!r} is not a validation metric of task {task.name}, so best.pt would never be "
            "written", suggest(best, list(best_metric_names(task))))
    _check_freeze(train["freeze"], spec, ctx.at("train").at("freeze"))
    last = spec.layers[-1]
    if last.kind in ("softmax", "sigmoid") and task.raw_scores:
        raise ConfigError(f"the model ends with {last.kind}, but geocnn's losses take raw scores (logits)",
                          where=last.where, fix=f"remove the final {last.kind}; predict applies it to "
                          "give probabilities")


def _check_names(task: Task, data: dict, spec: ModelSpec, d: Ctx) -> None:
    """Names for pictures must fit what they name: one per input channel, one per class."""
    channels = data["channel_names"]
    if channels is not None and len(channels) != spec.in_channels:
        raise d.at("channel_names").error(f"channel_names gives {len(channels)} names for the model's "
                                          f"{spec.in_channels} input channel(s)", f"give {spec.in_channels} names")
    names = data["class_names"]
    if names is None:
        return
    if not task.classifies:
        raise d.at("class_names").error(f"class_names are for classifying tasks, not {task.name}", "remove it")
    if data["classes"] is not None and len(names) != data["classes"]:
        raise d.at("class_names").error(f"class_names gives {len(names)} names for {data['classes']} classes",
                                        f"give {data['classes']} names")


def _check_freeze(names: list[str], spec: ModelSpec, ctx: Ctx) -> None:
    """Every ``train.freeze`` entry must name at least one layer of the model."""
    layer_names = [node.name for node in spec.nodes()]
    # what may be named: every layer and every dotted prefix of one (enc1 of enc1.conv1)
    options = sorted({".".join(n.split(".")[:k]) for n in layer_names for k in range(1, n.count(".") + 2)})
    for i, name in enumerate(names):
        if not frozen_layers([name], layer_names)[name]:
            raise ctx.at(i).error(f"train.freeze: no layer is named {name!r} or starts with '{name.rstrip('*')}.'",
                                  suggest(name, options))


def parse_config(data: Any, source: Source, overrides: list[str] | None = None) -> Config:
    """Validate a full config document (after ``--set`` overrides)."""
    if not isinstance(data, dict):
        raise ConfigError("a config must be a mapping with task, data, model and train",
                          where=source.where(()), fix="see configs/ for examples")
    data = copy.deepcopy(data)
    apply_overrides(data, source, overrides or [])
    _absolute(data, Path(source.path).resolve().parent)
    ctx = Ctx(source)
    cfg = CONFIG.check(data, ctx)
    spec = parse_model(data["model"], source, ("model",))
    user_data = data.get("data")
    given_mask = user_data.get("mask") if isinstance(user_data, dict) else None
    _check_task(cfg, spec, ctx, given_mask if isinstance(given_mask, dict) else None)
    d = cfg["data"]
    inputs = [input_spec(v, ctx.at("data").at("inputs").at(i)) for i, v in enumerate(d["inputs"])]
    target = input_spec(d["target"], ctx.at("data").at("target")) if d["target"] is not None else None
    labels = None
    if d["labels"] is not None:
        lab = d["labels"]
        labels = lab if isinstance(lab, str) else (lab.get("path") if isinstance(lab, dict) else None)
        if not isinstance(labels, str):
            raise ctx.at("data").at("labels").error("labels must be a file path (.npy or .csv)")
    clean = input_spec(d["clean"], ctx.at("data").at("clean")) if d["clean"] is not None else None
    name = cfg["name"] or Path(source.path).stem
    raw = {"name": name, "task": cfg["task"], "data": d, "model": data["model"], "train": cfg["train"]}
    return Config(source.path, name, TASKS[cfg["task"]], section_record(Data, d), spec,
                  section_record(Train, cfg["train"]), _plain(raw, source), inputs, target, labels, clean)


def _plain(obj: Any, source: Source, keypath: KeyPath = ()) -> Any:
    """The effective config as plain JSON types, so it round-trips through YAML, JSON and
    ``torch.load(weights_only=True)``: tuples → lists. The loader already keeps dates as text and
    refuses ``!!binary``/``!!set``; anything else that is not plain is refused here, not when the
    checkpoint is read back."""
    if isinstance(obj, dict):
        return {k: _plain(v, source, (*keypath, k)) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v, source, (*keypath, i)) for i, v in enumerate(obj)]
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    label = Ctx(source, keypath).label()
    raise ConfigError(f"{label}: {type(obj).__name__} cannot be stored in a run (config values are saved as "
                      "plain text, numbers, lists and mappings)", where=source.where(keypath),
                      fix="write the value as text, a number or a list")


def load_config(path: str | Path, overrides: list[str] | None = None) -> Config:
    """Read and validate a full config file."""
    data, source = load(path)
    if isinstance(data, dict) and "model" not in data and "layers" in data:
        raise ConfigError("this is a model file; training needs a full config with task, data, model and train",
                          where=source.where(()), fix="see configs/ for examples")
    return parse_config(data, source, overrides)


def resolve_model_source(path: str | Path) -> tuple[ModelSpec, tuple[int, ...] | None]:
    """The model of a YAML file, run folder or checkpoint, and its default input shape (C, ...)."""
    p = Path(path)
    if p.is_dir() or p.suffix == ".pt":
        from geocnn.runs import load_checkpoint, resolve_checkpoint

        ckpt = load_checkpoint(resolve_checkpoint(p))
        cfg = parse_config(ckpt.config, Source(str(p)))
        return cfg.model, (cfg.model.in_channels, *cfg.patch)
    data, source = load(p)
    section, base = model_section(data, source)
    spec = parse_model(section, source, base)
    if spec.name is None:
        top = data.get("name") if isinstance(data, dict) and base else None
        spec.name = top if isinstance(top, str) else p.stem
    if spec.input_shape:
        return spec, (spec.in_channels, *spec.input_shape)
    patch = data.get("data", {}).get("patch") if isinstance(data, dict) and isinstance(data.get("data"), dict) else None
    if isinstance(patch, list) and len(patch) == spec.dims and all(isinstance(n, int) and n > 0 for n in patch):
        return spec, (spec.in_channels, *patch)
    return spec, None


def freeze_of(path: str | Path) -> tuple[str, ...]:
    """``train.freeze`` of a full config, run folder or checkpoint (none for a model file), so
    ``summarize`` shows what a run trains."""
    p = Path(path)
    if p.is_dir() or p.suffix == ".pt":
        from geocnn.runs import load_checkpoint, resolve_checkpoint

        data: Any = load_checkpoint(resolve_checkpoint(p)).config
    else:
        data = load(p)[0]
    train = data.get("train") if isinstance(data, dict) and "task" in data else None
    names = train.get("freeze") if isinstance(train, dict) else None
    return tuple(n for n in names if isinstance(n, str)) if isinstance(names, list) else ()


# ----------------------------------------------------------------------------- JSON Schema

def _layer_schema() -> dict:
    """``$defs`` for one layer item and a layer list (recursive through residual and repeat)."""
    ref = {"$ref": "#/$defs/layers"}
    naming = {"name": {"type": "string", "description": "unique name, for skips and merges"},
              "from": {"type": "string", "description": "read this named output instead of the previous one"}}
    bare = sorted(k for k, kind in KINDS.items() if not any(f.required for f in kind.args.fields))
    options: list[dict] = [{"type": "string", "enum": bare, "description": "a layer without arguments"}]
    for name, kind in sorted(KINDS.items()):
        options.append({"type": "object", "title": name, "description": kind.help,
                        "properties": {name: kind.args.json(), **naming}, "required": [name],
                        "additionalProperties": False})
    residual = RESIDUAL_ARGS.json()
    residual["properties"]["body"] = ref
    residual["properties"]["shortcut"] = {"anyOf": [{"type": "string", "enum": ["identity", "auto"]}, ref]}
    repeat = REPEAT_ARGS.json()
    repeat["properties"]["layers"] = ref
    for name, args in (("residual", residual), ("repeat", repeat)):
        options.append({"type": "object", "title": name, "properties": {name: args, **naming},
                        "required": [name], "additionalProperties": False})
    options.append({"type": "object", "title": "block", "minProperties": 1, "maxProperties": 3,
                    "description": "a block declared under model.blocks, with its parameters"})
    return {"layer": {"anyOf": options}, "layers": {"type": "array", "items": {"$ref": "#/$defs/layer"}}}


def model_json_schema() -> dict:
    """JSON Schema of the ``model:`` section."""
    schema = MODEL.json()
    schema["properties"]["layers"] = {"$ref": "#/$defs/layers", "description": "the network, in order"}
    block = BLOCK.json()
    block["properties"]["layers"] = {"$ref": "#/$defs/layers"}
    schema["properties"]["blocks"] = {"type": "object", "additionalProperties": block,
                                      "description": "reusable named blocks with parameters"}
    return schema


def json_schema() -> dict:
    """JSON Schema of a geocnn config file, for editors (validation and completion)."""
    schema = CONFIG.json()
    schema["properties"]["model"] = model_json_schema()
    data = schema["properties"]["data"]
    item = {"anyOf": [{"type": "string", "description": "path"}, INPUT_SPEC.json()]}
    data["properties"]["inputs"] = {"type": "array", "items": item, "minItems": 1,
                                    "description": DATA.by_name["inputs"].help}
    data["properties"]["target"] = {**item, "description": DATA.by_name["target"].help}
    data["properties"]["labels"] = {"type": "string", "description": DATA.by_name["labels"].help}
    data["properties"]["clean"] = {**item, "description": DATA.by_name["clean"].help}
    schema.update({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://geocnn.dev/schema/config.json",
        "$defs": _layer_schema(),
        # a model-only file (what `geocnn summarize` also reads) validates against this too
        "anyOf": [{"required": ["task", "data", "model"]}, {"required": ["model"]}],
    })
    schema.pop("required", None)
    return schema
