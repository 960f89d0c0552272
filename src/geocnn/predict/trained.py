"""What a checkpoint gives prediction (:class:`Trained`), and the checks of new inputs against it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from geocnn.config import Config, parse_config
from geocnn.errors import ConfigError, DataError
from geocnn.grids.grid import Grid
from geocnn.grids.normalize import Normalization
from geocnn.grids.spec import InputSpec
from geocnn.model import accepts, infer, nearest_accepted
from geocnn.runs.checkpoint import Checkpoint, load_checkpoint, resolve_checkpoint
from geocnn.yamlsource import Source

# What a checkpoint's file name says about its weights (anything else is a file the user named).
CHECKPOINT_NAMES = {"best.pt": "the best epoch's weights", "last.pt": "the last epoch's weights"}


@dataclass
class Trained:
    """What a checkpoint gives prediction: config, weights, normalisation, classes."""

    cfg: Config
    state: dict
    norm: Normalization
    target_norm: Normalization | None
    classes: int | None
    patch_axes: tuple[str, ...]
    path: Path
    channel_names: tuple[str, ...] = ()
    epoch: int = 0  # completed epochs when it was saved
    description: str = ""  # which checkpoint, and when it was saved (see describe_checkpoint)

    @property
    def same_units(self) -> bool:
        """Is the prediction in the input's units (denoising), so a preview shows input − prediction?"""
        if not self.cfg.task.input_baseline:
            return False
        if self.target_norm is None:
            return self.norm.method == "none"
        return self.target_norm.to_dict() == self.norm.to_dict()


def load_trained(run_or_checkpoint: str | Path) -> Trained:
    """The checkpoint of a run folder (``best.pt``, else ``last.pt``) or a ``.pt`` file."""
    path = resolve_checkpoint(run_or_checkpoint)
    ckpt = load_checkpoint(path)
    cfg = parse_config(ckpt.config, Source(str(path)))
    return Trained(cfg, ckpt.model_state, ckpt.normalization, ckpt.target_normalization, ckpt.classes,
                   ckpt.patch_axes, path, ckpt.channel_names, ckpt.epoch, describe_checkpoint(path, ckpt))


def describe_checkpoint(path: Path, ckpt: Checkpoint) -> str:
    """``runs/a/checkpoints/best.pt (the best epoch's weights: epoch 3, val_loss 0.0123)``; a checkpoint
    saved inside an epoch (``max_steps``) gives its step; the starting weights of a fine-tuning run
    (epoch 0: no training epoch beat them) say where they came from."""
    score = f", {ckpt.best_metric} {ckpt.best_value:.4g}" if ckpt.best_value is not None else ""
    source = (ckpt.config.get("train") or {}).get("init_from")
    if source and ckpt.epoch == 0 and not ckpt.batch_in_epoch:
        return f"{path} (the starting weights: epoch 0, train.init_from {source}, not beaten by training{score})"
    what = CHECKPOINT_NAMES.get(path.name, "checkpoint file")
    when = f"epoch {ckpt.epoch}" if not ckpt.batch_in_epoch else f"step {ckpt.step}, inside epoch {ckpt.epoch + 1}"
    return f"{path} ({what}: {when}{score})"


def input_specs(trained: Trained, inputs: Sequence[str | Path]) -> list[InputSpec]:
    """The training inputs' options (axes, channels_from, header bytes) on the new files."""
    train_specs = trained.cfg.inputs
    if len(inputs) != len(train_specs):
        names = ", ".join(Path(s.path).name for s in train_specs)
        raise ConfigError(f"the run was trained on {len(train_specs)} input file(s) stacked as channels ({names}), "
                          f"but {len(inputs)} were given", fix="give one file per training input, in the same order")
    return [InputSpec(**{**spec.__dict__, "path": str(p)}) for spec, p in zip(train_specs, inputs)]


def patch_axes_on(trained: Trained, grid: Grid, axis_map: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The training patch axes as the input's axis names: ``axis_map`` (input axis → training axis,
    e.g. ``{"trace": "crossline"}``) lets a section model run along a 2D line's trace axis."""
    axis_map = dict(axis_map or {})
    trained_axes = trained.patch_axes
    for given, meant in axis_map.items():
        if given not in grid.axes:
            raise ConfigError(f"--axes {given}={meant}: '{given}' is not an axis of the input "
                              f"({', '.join(grid.axes)})", fix="name an input axis on the left of '='")
        if meant not in trained_axes:
            raise ConfigError(f"--axes {given}={meant}: '{meant}' is not one of the model's patch axes "
                              f"({', '.join(trained_axes)})", fix="name a training patch axis on the right of '='")
    inverse = {meant: given for given, meant in axis_map.items()}
    if len(inverse) < len(axis_map):
        meant = next(m for m in inverse if list(axis_map.values()).count(m) > 1)
        given = [g for g, m in axis_map.items() if m == meant]
        raise ConfigError(f"--axes maps {' and '.join(given)} onto the one training axis '{meant}'",
                          fix="map one input axis onto each training axis")
    patch_axes = tuple(inverse.get(a, a) for a in trained_axes)
    twice = next((a for a in patch_axes if patch_axes.count(a) > 1), None)
    if twice is not None:
        read_as = [t for t, a in zip(trained_axes, patch_axes) if a == twice]
        mapping = ",".join(f"{g}={m}" for g, m in axis_map.items())
        raise ConfigError(f"--axes {mapping}: the model's patch axes must be distinct input axes, but input axis "
                          f"'{twice}' would be read as both {' and '.join(read_as)}",
                          fix=f"map another input axis onto {read_as[1] if read_as[0] in inverse else read_as[0]} "
                              "too, or leave --axes out")
    return patch_axes


def check_grid(trained: Trained, grid: Grid, patch_axes: tuple[str, ...]) -> None:
    """The input has the model's channels and its patch axes (under their input names)."""
    spec = trained.cfg.model
    if grid.channels != spec.in_channels:
        raise DataError(f"the input gives {grid.channels} channel(s) ({', '.join(grid.channel_names)}) but the "
                        f"model was trained on {spec.in_channels}", where=grid.sources[0],
                        fix="give the same channels as in training (files, channels_from)")
    missing = [a for a in patch_axes if a not in grid.axes]
    if missing:
        extra = [a for a in grid.axes if a not in patch_axes]
        example = f", e.g. --axes {extra[0]}={missing[0]}" if extra else ""
        raise DataError(f"the model was trained on patches along {', '.join(trained.patch_axes)}, but the input's "
                        f"axes are {', '.join(grid.axes)}", where=grid.sources[0],
                        fix=f"give a grid with the training axes (geocnn inspect shows them), or map an input axis "
                            f"onto a training one{example}")


def window_size(trained: Trained, window: Sequence[int] | None) -> tuple[int, ...]:
    """``--window`` checked against the model (dense models only, a size it accepts); default the patch."""
    patch = trained.cfg.patch
    if window is None:
        return patch
    window = tuple(window)
    spec = trained.cfg.model
    if len(window) != spec.dims:
        raise ConfigError(f"--window needs {spec.dims} sizes, got {len(window)}")
    if not trained.cfg.dense and window != patch:
        raise ConfigError("--window applies to dense models only; this model takes "
                          f"{'×'.join(map(str, patch))} patches")
    if not accepts(spec, window):
        near = nearest_accepted(spec, window)
        raise ConfigError(f"the model does not accept windows of {'×'.join(map(str, window))}",
                          fix=f"use {'×'.join(map(str, near))}" if near else "use the training patch size")
    return window


def score_channels(trained: Trained, size: tuple[int, ...]) -> int:
    """Channels of the model's scores for windows of ``size`` (from the spec walk, no module built)."""
    return infer(trained.cfg.model, size, receptive=False).output.channels
