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
part of each input patch as ``data.mask`` says and learn to predict it (see geocnn.selfsup.masking);
``data.clean`` names an optional clean twin, read for validation scores only.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from geocnn.errors import ConfigError, GeocnnError
from geocnn.grids.normalize import NormalizationMethod
from geocnn.grids.picks import Picks
from geocnn.grids.spec import INPUT_SPEC, InputSpec, input_spec
from geocnn.metric_names import pick_metric_names
from geocnn.model import ModelSpec, parse_model
from geocnn.model.layers import KINDS
from geocnn.model.spec import BLOCK, MODEL, REPEAT_ARGS, RESIDUAL_ARGS, frozen_layers
from geocnn.patches import SECTION_AXES, SectionName
from geocnn.runs.folder import CONFIG_FILE
from geocnn.schema import (
    REQUIRED,
    AnyValue,
    Choice,
    Ctx,
    Field,
    Record,
    Section,
    Str,
    markdown_table,
    setting,
    suggest,
)
from geocnn.selfsup.blindspots import BlindShape
from geocnn.selfsup.masking import TIME_AXES
from geocnn.tasks import CLASS_WEIGHTED_LOSSES, TASKS, TWO_CLASS_LOSSES, LossKind, Task, best_metric_names
from geocnn.yamlsource import KeyPath, Source, load
from geocnn.yamlsource import value as yaml_value

log = logging.getLogger(__name__)

# ----------------------------------------------------------------------------- sections
# Each field is declared once, as `name: type = setting(doc, default=..., limits...)`: the Record that
# checks the YAML, the JSON Schema, the frozen object code reads (cfg.train.lr) and the docs table
# (the site's reference/config.md) all come from that line. Choices are Literal types, so type checkers see them.

class Normalize(Section, title="normalize", shorthand="method"):
    """``data.normalize``: per-channel input normalisation."""

    method: NormalizationMethod = setting(
        "standard: mean/std; robust: median and (p99 − p1)/2; none", default="standard")
    max_traces: int = setting("traces sampled (seeded) to estimate the statistics", default=2000, min=1)


class Split(Section, title="split"):
    """``data.split``: train/validation blocks along one grid axis."""

    axis: str | None = setting(
        "grid axis split into train and validation blocks (default: the first)", default=None)
    fraction: float = setting(
        "share of the axis held out for validation (at its end)", default=0.2, min=0, max=0.9)
    gap: Literal["auto"] | int = setting(
        "samples left out between the blocks; auto = the patch extent along the axis (0 for labelled traces)",
        default="auto", min=0)


class Sampling(Section, title="sampling"):
    """``data.sampling``: how many patches, and how they are drawn."""

    patches_per_epoch: int = setting(
        "training patches drawn per epoch (all processes together)", default=1024, min=1)
    val_patches: int = setting("validation patches, fixed for the whole run", default=256, min=1)
    balance: float = setting(
        "share of patches centred on a rare-class sample (segmentation) or drawn class-balanced "
        "(classification)", default=0.0, min=0, max=1)
    rare_class: int | None = setting(
        "the rare class for balance (default: the least frequent)", default=None, min=0)
    min_live: float = setting(
        "least share of live (non-missing) traces in a patch", default=0.8, min=0, max=1)


class Augment(Section, title="augment"):
    """``data.augment``: random flips, transposes and noise."""

    flip: tuple[str, ...] = setting(
        "patch axes that may be reversed (e.g. crossline; never sample/time)", default=())
    transpose: tuple[str, str] | None = setting(
        "two patch axes of equal size that may be swapped (e.g. [inline, crossline])", default=None)
    noise: float = setting("std of Gaussian noise added to the normalised input", default=0.0, min=0)


class Mask(Section, title="mask", shorthand="shape"):
    """``data.mask``: what a self-supervised task hides in each patch (see geocnn.selfsup.masking).

    ``tasks=`` names the only task that reads a field: giving it (changed from its default) with
    the other task is an error.
    """

    ratio: float | None = setting(
        "share hidden in each patch: of the samples (denoise_self, default 0.02) or of the traces "
        "(reconstruct_traces, default 0.15)", default=None, min=0, max=0.5, exclusive_min=True)
    radius: int = setting(
        "a blind spot shows a random neighbour's value from within this many samples",
        default=2, min=1, max=16, tasks=("denoise_self",))
    replace: Literal["neighbour", "zero"] = setting(
        "what a blind spot shows: a random neighbour's value, or zero (the normalised mean)",
        default="neighbour", tasks=("denoise_self",))
    axis: str | None = setting(
        "denoise_self: StructN2V, also hide a line along this patch axis around each blind spot (noise "
        "coherent along it); reconstruct_traces: the lateral axis gaps run along (default: the first)",
        default=None)
    length: int = setting(
        "samples on the axis line (odd), centred on the blind spot",
        default=5, min=1, max=63, tasks=("denoise_self",))
    gap: int = setting(
        "adjacent traces per hidden gap (1: scattered traces)",
        default=1, min=1, max=64, tasks=("reconstruct_traces",))
    guard: int = setting(
        "score only hidden traces with no live trace within this many along every lateral axis (blocks are "
        "hidden so there are some): noise correlated over that many traces cannot be copied",
        default=0, min=0, max=8, tasks=("reconstruct_traces",))
    shape: Literal["auto"] | tuple[int | Literal["all"], ...] | None = setting(
        "the blind region hidden around each blind spot: one odd size per patch axis, or all (the whole patch "
        "along it); auto: from the noise correlation measured on the inputs (geocnn.selfsup.blindspots)",
        default=None, min=1, max=255, min_len=1, max_len=3, tasks=("denoise_self",))


class Data(Section, title="data"):
    """The ``data`` section: inputs, targets, patch and how patches are drawn."""

    inputs: tuple[Any, ...] = setting(
        "input files stacked as channels, in order: a path, or a mapping (see input)", min_len=1)
    target: Any = setting(
        "target grid: clean data (regression), class labels (segmentation), or a grid read under each patch "
        "(classification, scalar)", default=None)
    labels: Any = setting(
        "classification/scalar: one label per trace position (.npy, or .csv with a label column)",
        default=None)
    picks: Picks | None = setting(
        "segmentation of earthquake records: phase picks as the target (instead of target)", default=None)
    patch: tuple[int, ...] = setting("patch size, one per model axis", min=1, min_len=1, max_len=3)
    patch_axes: tuple[str, ...] | None = setting(
        "grid axes the patch spans, e.g. [crossline, sample]; default: the last ones",
        default=None, min_len=1, max_len=3)
    section: SectionName | None = setting(
        "2D models on 3D volumes: inline (crossline × sample), crossline or time slices", default=None)
    target_from_patch: Literal["center", "mean", "max"] = setting(
        "classification/scalar with a target grid: the patch's label is the target at its centre, its mean, "
        "or its max (e.g. 'a fault is in this patch')", default="center")
    normalize: Normalize = setting("per-channel input normalisation", default={})
    target_normalize: Literal["auto", "input", "own", "none"] = setting(
        "regression targets: input (same numbers as the input: denoising), own, none; auto = input when "
        "channel counts match", default="auto")
    split: Split = setting("train/validation split by spatial blocks", default={})
    sampling: Sampling = setting("how patches are drawn", default={})
    augment: Augment = setting("random flips, transposes and noise (training only)", default={})
    classes: int | None = setting(
        "number of classes (default: the model's output channels)", default=None, min=2)
    class_names: tuple[str, ...] | None = setting(
        "names of the classes 0, 1, ... in pictures and confusion matrices (default: class 0, class 1...)",
        default=None, min_len=2)
    channel_names: tuple[str, ...] | None = setting(
        "names of the input channels in pictures, e.g. [Z, N, E] (default: from the files)",
        default=None, min_len=1)
    on_device: Literal["auto"] | bool = setting(
        "keep the normalised grids on the GPU and cut, augment and balance patches there; auto: when they "
        "fit half its free memory (else pinned host prefetch), never on the CPU; true: always",
        default="auto")
    mask: Mask = setting("self-supervised tasks: which samples or traces each patch hides", default={})
    clean: Any = setting(
        "self-supervised tasks: a clean twin of the inputs, for validation scores only (never trained on)",
        default=None)


class Loss(Section, title="loss", shorthand="kind"):
    """``train.loss``: the loss kind (default from the task) and its options."""

    kind: LossKind | None = setting(
        "default: mse (regression, scalar), cross_entropy (segmentation, classification)", default=None)
    class_weights: Literal["auto", "none"] | tuple[float, ...] = setting(
        "cross_entropy/focal (refused with dice and bce_balanced, which would ignore them): auto = from label "
        "frequencies (rare classes weigh more), or one per class",
        default="none", min=0, min_len=2)
    ignore_index: int | None = setting("label value that is not scored (unlabelled samples)", default=None)
    delta: float = setting("huber: where the loss turns linear", default=1.0, min=0, exclusive_min=True)
    gamma: float = setting("focal: focusing exponent", default=2.0, min=0)


class EarlyStop(Section, title="early_stop", shorthand="patience"):
    """``train.early_stop``: how long to wait for best_metric to improve."""

    patience: int = setting("epochs without an improvement of best_metric before training stops", min=1)
    min_delta: float = setting(
        "least change of best_metric that counts as an improvement", default=0.0, min=0)


class Train(Section, title="train"):
    """The ``train`` section: optimisation, device and checkpoint selection."""

    epochs: int = setting("passes over patches_per_epoch patches", default=10, min=1)
    batch_size: int = setting(
        "patches per step and process (global batch = batch_size × processes)", default=16, min=1)
    lr: float = setting("learning rate", default=1e-3, min=0, exclusive_min=True)
    optimizer: Literal["adam", "adamw", "sgd"] = setting("optimizer", default="adam")
    weight_decay: float = setting("L2 penalty (decoupled for adamw)", default=0.0, min=0)
    momentum: float = setting("sgd momentum", default=0.9, min=0, max=1)
    scheduler: Literal["none", "cosine", "step"] = setting(
        "learning-rate schedule over the run", default="cosine")
    step_epochs: int = setting("step scheduler: epochs between decays", default=10, min=1)
    step_gamma: float = setting("step scheduler: decay factor", default=0.5, min=0, exclusive_min=True)
    loss: Loss = setting("loss function", default={})
    grad_clip: float | None = setting(
        "clip the gradient norm to this value", default=None, min=0, exclusive_min=True)
    best_metric: str = setting(
        "validation metric that selects best.pt (e.g. val_loss, f1, miou, snr_db)", default="val_loss")
    device: Literal["auto", "cpu", "cuda", "mps"] = setting("auto: cuda, then mps, then cpu", default="auto")
    amp: Literal["auto", "fp32", "bf16", "fp16"] = setting(
        "precision: auto = on CUDA bf16 autocast when supported, else fp16, on the CPU fp32; bf16 (on the CPU "
        "too, for training: fast with avx512_bf16/AMX), fp16 (CUDA, with a grad scaler), fp32; prediction "
        "follows it on CUDA and runs fp32 on the CPU unless predict.precision says bf16", default="auto")
    compile: bool = setting("torch.compile the model", default=False)
    channels_last: Literal["auto"] | bool = setting(
        "channels-last memory layout for 2D/3D convolutions (auto: on, except on MPS)", default="auto")
    workers: Literal["auto"] | int = setting("DataLoader worker processes", default="auto", min=0)
    threads: int | None = setting(
        "CPU threads per process for torch (default: one per core); also used by predict",
        default=None, min=1)
    seed: int = setting("seed of weights, patch draws and augmentation", default=0, min=0)
    max_steps: int | None = setting("stop after this many optimizer steps", default=None, min=1)
    examples: int = setting("validation patches drawn in examples.png", default=4, min=0, max=16)
    tensorboard: bool = setting(
        "also log metrics.jsonl's numbers and examples.png to <run>/tb/ (needs the tensorboard extra)",
        default=False)
    init_from: str | None = setting(
        "start from the weights of a run folder or checkpoint (.pt): layers are matched by name, those whose"
        " shapes differ (e.g. a head with another class count) keep their fresh weights", default=None)
    freeze: tuple[str, ...] = setting(
        "layers not trained: names as in the model YAML / geocnn summarize, or prefixes (enc1 = enc1.conv1, "
        "enc1.conv2, ...; enc* = every layer whose name starts with enc)", default=())
    early_stop: EarlyStop | None = setting(
        "stop when best_metric has not improved by min_delta for patience epochs", default=None)


# What runs the network in ``geocnn predict``; geocnn.predict.engines.ENGINES describes each (its
# names are these, checked by tests/test_engines.py).
EngineName = Literal["torch", "onnxruntime", "auto"]
# The arithmetic of ``geocnn predict`` (geocnn.device.prediction_amp; tests/test_precision.py).
PrecisionName = Literal["auto", "fp32", "bf16"]


class Predict(Section, title="predict"):
    """The ``predict`` section: how ``geocnn predict`` runs this run's model (its options override these)."""

    engine: EngineName = setting(
        "what runs the network: torch (PyTorch in the run's memory layout), onnxruntime (ONNX Runtime's CPU "
        "provider), auto (the fastest of both, measured on the machine and cached); --engine overrides it",
        default="torch")
    precision: PrecisionName = setting(
        "the network's arithmetic: auto (train.amp's on CUDA, fp32 on the CPU), fp32, or bf16 (autocast on any "
        "device; on a CPU with avx512_bf16/AMX about twice as fast on conv stacks, scores within ~1 % of fp32's "
        "scale; ONNX Runtime always runs fp32); --precision overrides it", default="auto")


def mask_fields_of(task: Task) -> tuple[str, ...]:
    """The ``data.mask`` fields ``task`` reads: those declared for it, and those for every task."""
    return tuple(f.name for f in Mask.record.fields if not f.tasks or task.name in f.tasks)


CONFIG = Record([
    Field("name", Str(), None, "run name (default: the config file name); runs/<name>/"),
    Field("task", Choice(*TASKS), REQUIRED, " | ".join(TASKS)),
    Field("data", Data.record, REQUIRED, "data section"),
    Field("model", AnyValue(), REQUIRED, "model section"),
    Field("train", Train.record, {}, "training section"),
    Field("predict", Predict.record, {}, "prediction section: the defaults of geocnn predict for this run"),
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
    predict: Predict = Predict()

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
        node, record = data, CONFIG
        for i, part in enumerate(path[:-1]):
            record = _section(record, part)
            if part in node and not isinstance(node[part], dict) and record is not None and record.shorthand:
                node[part] = {record.shorthand: node[part]}  # `mask: auto` is `mask: {shape: auto}`
            if not isinstance(node.get(part, {}), dict):
                raise ConfigError(f"--set {key}: '{'.'.join(path[:i + 1])}' is not a section")
            node = node.setdefault(part, {})
        node[path[-1]] = value
        source.labels[tuple(path)] = f"--set {key}"


def _section(record: Record | None, name: str) -> Record | None:
    """The section record of field ``name`` of ``record`` (None for a plain value or an unknown key)."""
    if record is None:
        return None
    return next((f.type for f in record.fields if f.name == name and isinstance(f.type, Record)), None)


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
    for key in ("target", "labels", "clean", "picks"):
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
    mask, fields, read = data["mask"], Mask.record.by_name, mask_fields_of(task)
    for key, value in (given_mask or {}).items():
        # a saved run's config holds every field at its default: only a changed one is a mistake
        if key in fields and key not in read and value != fields[key].default:
            raise m.at(key).error(f"mask.{key} does not apply to task {task.name}",
                                  f"{task.name} reads {', '.join(read)}")
    if mask["shape"] is not None and (given_mask or {}).get("axis") is not None:
        raise m.at("axis").error("give mask.shape or mask.axis + length, not both",
                                 "a line of 7 samples along sample is shape [1, 7] on a crossline × sample patch")
    if mask["ratio"] is None and mask["shape"] is None:  # a shaped mask hides about a quarter of each patch
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
    if "gap" in read:
        lateral = [a for a in axes if a not in TIME_AXES]
        if axis in TIME_AXES:
            raise m.at("axis").error(f"gaps run along a lateral axis, not {axis}", f"use one of {', '.join(lateral)}")
        axis = axis or (lateral[0] if lateral else None)
        along = patch[axes.index(axis)] if axis else 0
        if axis and mask["gap"] > along // 2:
            raise m.at("gap").error(f"gap {mask['gap']} leaves no live trace on both sides in a patch of {along} "
                                    f"along {axis}", f"use at most {along // 2}")
    elif isinstance(mask["shape"], (list, tuple)):
        try:
            BlindShape.parse(mask["shape"]).check(patch, axes)
        except ValueError as exc:
            raise m.at("shape").error(str(exc), f"give one odd size or all per patch axis ({', '.join(axes)})") from None
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
    elif any(value != Mask.record.by_name[key].default
             for key, value in (given_mask or {}).items() if key in Mask.record.by_name):
        # (a saved run's config holds the section at its defaults: that is not a mistake)
        raise d.at("mask").error(f"data.mask is for the self-supervised tasks (denoise_self, reconstruct_traces), "
                                 f"not {task.name}", "remove it")
    if data["picks"] is not None and not (task.dense and task.classifies and not task.self_supervised):
        raise d.at("picks").error(f"picks label each sample for segmentation, not {task.name}", "use task: segmentation")
    if data["picks"] is not None and data["target"] is not None:
        raise d.at("picks").error("give data.target or data.picks, not both")
    if task.dense and not task.self_supervised and data["target"] is None and data["picks"] is None:
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
    picks = data["picks"]
    if picks is not None and loss["kind"] in TWO_CLASS_LOSSES:
        _check_two_classes(Picks.parse(picks), loss["kind"], ctx.at("train").at("loss").at("kind"))
    if loss["class_weights"] != "none" and loss["kind"] not in CLASS_WEIGHTED_LOSSES:
        raise ctx.at("train").at("loss").at("class_weights").error(
            f"class_weights weigh {' and '.join(sorted(CLASS_WEIGHTED_LOSSES))} only; loss {loss['kind']} would "
            "ignore them", "remove train.loss.class_weights (dice averages the classes equally, bce_balanced "
            "balances its two from each batch), or use train.loss.kind: cross_entropy or focal")
    best = train["best_metric"]
    allowed = best_metric_names(task)
    if picks is not None and picks["labels"] == "phases":
        allowed += pick_metric_names(tuple(picks["phases"]))
    if best not in allowed:
        raise ctx.at("train").at("best_metric").error(
            f"best_metric {best!r} is not a validation metric of task {task.name}, so best.pt would never be "
            "written", suggest(best, list(allowed)))
    _check_freeze(train["freeze"], spec, ctx.at("train").at("freeze"))
    last = spec.layers[-1]
    if last.kind in ("softmax", "sigmoid") and task.raw_scores:
        raise ConfigError(f"the model ends with {last.kind}, but geocnn's losses take raw scores (logits)",
                          where=last.where, fix=f"remove the final {last.kind}; predict applies it to "
                          "give probabilities")


def _check_two_classes(picks: Picks, loss: str, ctx: Ctx) -> None:
    """A two-class loss (bce_balanced) cannot score the noise, P and S of phase picks (box or gaussian)."""
    if picks.classes > 2:
        raise ctx.error(f"loss {loss} scores two classes, but data.picks labels {picks.classes} "
                        f"({', '.join(picks.class_names)})",
                        "use train.loss.kind: cross_entropy, focal or dice, or data.picks.phases with one phase")


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
    raw = {"name": name, "task": cfg["task"], "data": d, "model": data["model"], "train": cfg["train"],
           "predict": cfg["predict"]}
    return Config(source.path, name, TASKS[cfg["task"]], Data.from_checked(d), spec,
                  Train.from_checked(cfg["train"]), _plain(raw, source), inputs, target, labels, clean,
                  Predict.from_checked(cfg["predict"]))


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
    cfg = parse_config(data, source, overrides)
    _check_validation_block(cfg, Ctx(source))
    return cfg


def _check_validation_block(cfg: Config, ctx: Ctx) -> None:
    """``split.fraction: 0`` leaves no validation block: refuse the settings that would then do
    something else than they say, and say which ones go unused.

    ``train.early_stop`` would count the training loss (``best_metric: val_loss``) or stop after
    ``patience`` epochs whatever happens (any other metric); a ``best_metric`` other than
    ``val_loss`` would never select ``best.pt``. ``data.sampling.val_patches`` only goes unused:
    a warning, so one config serves both the experiment and a final fit on all the data with
    ``--set data.split.fraction=0``. Checked for a config a user gives (here), not for the config
    stored in a run, so runs trained before this check still resume and predict.
    """
    if cfg.data.split.fraction > 0:
        return
    none = "data.split.fraction is 0 and leaves none"
    if cfg.train.early_stop is not None:
        raise ctx.at("train").at("early_stop").error(
            f"train.early_stop needs a validation block, but {none}",
            "set data.split.fraction above 0 (e.g. 0.2), or remove train.early_stop")
    if cfg.train.best_metric != "val_loss":
        raise ctx.at("train").at("best_metric").error(
            f"best_metric {cfg.train.best_metric!r} is scored on the validation block, but {none}: best.pt "
            "would never be written", "set data.split.fraction above 0 (e.g. 0.2), or best_metric: val_loss (the "
            "training loss when there is no validation block)")
    given = cfg.data.sampling.val_patches
    if given != Sampling.record.by_name["val_patches"].default:
        log.warning("%s: data.sampling.val_patches %d is not used: data.split.fraction is 0 and leaves no "
                    "validation block", ctx.at("data").at("sampling").at("val_patches").where(), given)


@dataclass(frozen=True)
class ModelSource:
    """What ``geocnn summarize`` shows: a model, its default input shape (C, ...), its frozen layers."""

    spec: ModelSpec
    input_shape: tuple[int, ...] | None
    freeze: tuple[str, ...] = ()
    config: Config | None = None  # the full config, when there is one: its data may know the spacing


def model_of_run(stored: Any, source: Source) -> ModelSource:
    """The model of a run from its effective config: a run folder's ``config.yaml``
    (:func:`model_of_run_folder`), or the config a checkpoint holds (:func:`geocnn.runs.checkpoint.load_checkpoint`);
    ``source`` names where it was read."""
    cfg = parse_config(stored, source)
    return ModelSource(cfg.model, (cfg.model.in_channels, *cfg.patch), cfg.train.freeze, cfg)


def model_of_run_folder(run: str | Path) -> ModelSource:
    """The model of a run folder, from its ``config.yaml``: the effective config the run trains with
    (``--resume`` reads it too). Its task, data and model never change over a run's life (resume
    refuses that), so it agrees with every checkpoint of the run — and reading it opens no torch file."""
    path = Path(run) / CONFIG_FILE
    if not path.is_file():
        raise ConfigError(f"this folder has no {CONFIG_FILE}, so it is not a run folder", where=str(run),
                          fix="give a run folder written by geocnn train, a checkpoint (.pt) or a config file")
    return model_of_run(*load(path))


def model_of_file(path: str | Path) -> ModelSource:
    """The model of a YAML model file or full config; the input shape is the model's ``input_shape``,
    else the config's training patch, else unknown (None)."""
    p = Path(path)
    data, source = load(p)
    section, base = model_section(data, source)
    spec = parse_model(section, source, base)
    if spec.name is None:
        top = data.get("name") if isinstance(data, dict) and base else None
        spec.name = top if isinstance(top, str) else p.stem
    freeze, cfg = _freeze_in(data), _config_in(data, source)
    if spec.input_shape:
        return ModelSource(spec, (spec.in_channels, *spec.input_shape), freeze, cfg)
    patch = data.get("data", {}).get("patch") if isinstance(data, dict) and isinstance(data.get("data"), dict) else None
    if isinstance(patch, list) and len(patch) == spec.dims and all(isinstance(n, int) and n > 0 for n in patch):
        return ModelSource(spec, (spec.in_channels, *patch), freeze, cfg)
    return ModelSource(spec, None, freeze, cfg)


def _config_in(data: Any, source: Source) -> Config | None:
    """The full config a document is, when it is one and valid (None for a model file): ``summarize``
    shows a model whatever the rest of its config holds, and asks a valid one's data for the spacing."""
    if not (isinstance(data, dict) and "task" in data):
        return None
    try:
        return parse_config(data, source)
    except GeocnnError:
        return None


def _freeze_in(data: Any) -> tuple[str, ...]:
    """``train.freeze`` of a full config document as written (none for a model file), so
    ``summarize`` shows what a run would train."""
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
                                    "description": Data.record.by_name["inputs"].help}
    data["properties"]["target"] = {**item, "description": Data.record.by_name["target"].help}
    data["properties"]["labels"] = {"type": "string", "description": Data.record.by_name["labels"].help}
    data["properties"]["clean"] = {**item, "description": Data.record.by_name["clean"].help}
    schema.update({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://geocnn.dev/schema/config.json",
        "$defs": _layer_schema(),
        # a model-only file (what `geocnn summarize` also reads) validates against this too
        "anyOf": [{"required": ["task", "data", "model"]}, {"required": ["model"]}],
    })
    schema.pop("required", None)
    return schema


# ----------------------------------------------------------------------------- docs

def config_reference() -> str:
    """Every section of a config file as Markdown tables (the site's reference/config.md is this text).

    ``geocnn schema --markdown`` prints it; the tables come from the section declarations, as
    the checks and the JSON Schema do.
    """
    parts = ["# Config reference", "",
             "Every key of a geocnn config file, section by section: its type, default, choices and what it "
             "does. Generated from the declarations in `src/geocnn/config.py` (`geocnn schema --markdown`); "
             "`model:` is described in docs/models.md (Declaring a model) and docs/terms.md.", ""]
    return "\n".join(parts + _section_tables("", CONFIG))


def _section_tables(path: str, record: Record) -> list[str]:
    """The table of one section, then those of the sections inside it (depth first)."""
    lines = [f"## `{path}`" if path else "## top level", "", markdown_table(record)]
    for f in record.fields:
        if isinstance(f.type, Record):
            lines += _section_tables(f"{path}.{f.name}" if path else f.name, f.type)
    return lines
