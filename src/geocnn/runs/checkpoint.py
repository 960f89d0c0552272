"""Run folders and checkpoints.

A run folder (``runs/<name>/``) holds ``config.yaml`` (effective config), ``summary.json``,
``split.json``, ``metrics.jsonl`` (one line per epoch: :mod:`geocnn.runs.metrics_log`), ``loss.png``,
``examples.png`` and ``checkpoints/last.pt`` / ``best.pt``.

A checkpoint is one :class:`Checkpoint` record, stored as a plain dict of tensors, numbers,
strings, lists and dicts (:meth:`Checkpoint.to_dict`) — nothing pickled beyond what
``torch.load(..., weights_only=True)`` accepts — holding the config (and so the model spec),
weights, normalisation and channel spec, optimizer/scheduler/scaler state, epoch/step, RNG states
and provenance. Reading it back (:meth:`Checkpoint.from_dict`) checks every field, so a foreign
or damaged file is one line naming the file, not a KeyError. Everything is written to a temporary
file and renamed into place.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from geocnn import __version__, atomic
from geocnn.errors import DataError
from geocnn.grids.normalize import Normalization
from geocnn.runs.folder import CONFIG_FILE
from geocnn.yamlsource import dumps

FORMAT = "geocnn-checkpoint/1"
_FIX = "give a checkpoint written by geocnn train (a run folder or its checkpoints/*.pt)"


@dataclass(frozen=True)
class Checkpoint:
    """Everything a run saves after an epoch: what predict needs, and what an exact resume needs."""

    config: dict  # the effective config (plain data): the model spec, data and training options
    config_hash: str
    model_state: dict  # parameter name → tensor (the bare module's, without compile/DDP wrappers)
    normalization: Normalization  # of the inputs
    target_normalization: Normalization | None
    channel_names: tuple[str, ...]
    channel_sources: tuple[str, ...]
    grid_axes: tuple[str, ...]
    patch_size: tuple[int, ...]
    patch_axes: tuple[str, ...]
    classes: int | None
    class_frequencies: tuple[float, ...] | None
    # training state, for --resume
    epoch: int = 0  # completed epochs
    step: int = 0  # optimizer steps
    batch_in_epoch: int = 0  # batches done in the current (unfinished) epoch
    best_metric: str = "val_loss"
    best_value: float | None = None
    best_epoch: int | None = None
    optimizer_state: dict = field(default_factory=dict)
    scheduler_state: dict = field(default_factory=dict)
    scaler_state: dict = field(default_factory=dict)
    rng: dict = field(default_factory=dict)
    # the unfinished epoch's training-loss sums (all processes), so its metrics.jsonl line covers the whole epoch
    epoch_loss_sum: float = 0.0
    epoch_patches: int = 0
    early_stop: dict = field(default_factory=dict)  # EarlyStopping.to_dict(), empty without train.early_stop
    # provenance, set when saved
    geocnn_version: str = __version__
    torch_version: str = str(torch.__version__)

    def to_dict(self) -> dict:
        """The stored layout (``torch.load(weights_only=True)`` reads it back)."""
        return {
            "format": FORMAT, "geocnn_version": self.geocnn_version, "torch_version": self.torch_version,
            "config": self.config, "config_hash": self.config_hash, "model_state": self.model_state,
            "optimizer_state": self.optimizer_state, "scheduler_state": self.scheduler_state,
            "scaler_state": self.scaler_state,
            "epoch": self.epoch, "step": self.step, "batch_in_epoch": self.batch_in_epoch,
            "best": {"metric": self.best_metric, "value": self.best_value, "epoch": self.best_epoch},
            "rng": self.rng, "early_stop": self.early_stop,
            "epoch_partial": {"loss_sum": self.epoch_loss_sum, "patches": self.epoch_patches},
            "normalization": {"inputs": self.normalization.to_dict(),
                              "target": self.target_normalization.to_dict()
                              if self.target_normalization is not None else None},
            "channels": {"names": list(self.channel_names), "sources": list(self.channel_sources),
                         "grid_axes": list(self.grid_axes)},
            "patch": {"size": list(self.patch_size), "axes": list(self.patch_axes)},
            "classes": self.classes,
            "class_frequencies": list(self.class_frequencies) if self.class_frequencies is not None else None,
        }

    @classmethod
    def from_dict(cls, d: Any, where: str) -> Checkpoint:
        """Inverse of :meth:`to_dict`; a missing or mistyped field is a DataError naming ``where``."""
        r = _Reader(d, where)
        if r.get("format", str) != FORMAT:
            raise DataError("not a geocnn checkpoint", where=where, fix=_FIX)
        norm = r.get("normalization", dict)
        best, channels, patch = r.get("best", dict), r.get("channels", dict), r.get("patch", dict)
        freq = r.get("class_frequencies", list, optional=True)
        # absent from checkpoints of earlier versions: an epoch boundary, or a partial epoch without sums
        partial = d.get("epoch_partial") if isinstance(d, dict) and "epoch_partial" in d else \
            {"loss_sum": 0.0, "patches": 0}
        return cls(
            config=r.get("config", dict), config_hash=r.get("config_hash", str),
            model_state=r.get("model_state", dict),
            normalization=r.norm(norm, "inputs"), target_normalization=r.norm(norm, "target", optional=True),
            channel_names=tuple(r.items(channels, "channels.names", str)),
            channel_sources=tuple(r.items(channels, "channels.sources", str)),
            grid_axes=tuple(r.items(channels, "channels.grid_axes", str)),
            patch_size=tuple(r.items(patch, "patch.size", int)), patch_axes=tuple(r.items(patch, "patch.axes", str)),
            classes=r.get("classes", int, optional=True),
            class_frequencies=tuple(float(v) for v in freq) if freq is not None else None,
            epoch=r.get("epoch", int), step=r.get("step", int), batch_in_epoch=r.get("batch_in_epoch", int),
            best_metric=r.at(best, "best.metric", str), best_value=r.at(best, "best.value", (int, float), True),
            best_epoch=r.at(best, "best.epoch", int, True),
            optimizer_state=r.get("optimizer_state", dict), scheduler_state=r.get("scheduler_state", dict),
            scaler_state=r.get("scaler_state", dict), rng=r.get("rng", dict),
            epoch_loss_sum=float(r.at(r.mapping(partial, "epoch_partial"), "epoch_partial.loss_sum", (int, float))),
            epoch_patches=r.at(partial, "epoch_partial.patches", int),
            early_stop=r.get("early_stop", dict) if "early_stop" in d else {},  # absent before early stopping
            geocnn_version=r.get("geocnn_version", str), torch_version=r.get("torch_version", str),
        )


_TYPE_NAMES = {dict: "a mapping", list: "a list", str: "a string", int: "an integer", (int, float): "a number"}


@dataclass
class _Reader:
    """Typed access to a stored checkpoint dict; every failure names the file and the field."""

    d: Any
    where: str

    def fail(self, key: str, problem: str) -> DataError:
        return DataError(f"checkpoint field '{key}' {problem}", where=self.where,
                         fix=f"{_FIX}; a damaged file cannot be repaired — retrain, or use another checkpoint")

    def at(self, d: dict, key: str, kind: Any, optional: bool = False) -> Any:
        name = key.rsplit(".", 1)[-1]
        if name not in d:
            raise self.fail(key, "is missing")
        value = d[name]
        if value is None and optional:
            return None
        if isinstance(value, bool) or not isinstance(value, kind):
            raise self.fail(key, f"should be {_TYPE_NAMES.get(kind, kind)}, not {type(value).__name__}")
        return value

    def get(self, key: str, kind: Any, optional: bool = False) -> Any:
        if not isinstance(self.d, dict):
            raise DataError("not a geocnn checkpoint", where=self.where, fix=_FIX)
        return self.at(self.d, key, kind, optional)

    def mapping(self, value: Any, key: str) -> dict:
        if not isinstance(value, dict):
            raise self.fail(key, f"should be a mapping, not {type(value).__name__}")
        return value

    def items(self, d: dict, key: str, kind: type) -> list:
        values = self.at(d, key, list)
        if not all(isinstance(v, kind) and not isinstance(v, bool) for v in values):
            raise self.fail(key, f"should list {_TYPE_NAMES[kind].split(' ', 1)[1]}s")
        return values

    def norm(self, d: dict, key: str, optional: bool = False) -> Normalization | None:
        value = self.at(d, f"normalization.{key}", dict, optional)
        if value is None:
            return None
        try:
            return Normalization.from_dict(value)
        except DataError as exc:
            raise self.fail(f"normalization.{key}", exc.problem) from None


def checkpoint_dir(run: Path) -> Path:
    return run / "checkpoints"


def resolve_checkpoint(path: str | Path, which: str = "best") -> Path:
    """A checkpoint file from a run folder (``best.pt``, else ``last.pt``) or a ``.pt`` path."""
    p = Path(path)
    if p.is_dir():
        for name in (f"{which}.pt", "last.pt", "best.pt"):
            for candidate in (checkpoint_dir(p) / name, p / name):
                if candidate.is_file():
                    return candidate
        raise DataError("no checkpoint in this folder (expected checkpoints/best.pt or last.pt)", where=str(p),
                        fix="give a run folder written by geocnn train, or a .pt file")
    if not p.is_file():
        raise DataError("checkpoint not found", where=str(p), fix="give a run folder or a .pt file")
    return p


def save_checkpoint(path: Path, ckpt: Checkpoint) -> None:
    """Atomically write a checkpoint (temp file in the same folder, then rename)."""
    with atomic.replacing(path) as tmp:
        torch.save(ckpt.to_dict(), tmp)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> Checkpoint:
    """Load a checkpoint safely (``weights_only=True``); a foreign, broken or incomplete file is a DataError."""
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"cannot read checkpoint ({first[:160]})", where=str(path),
                        fix="give a checkpoint written by geocnn train") from None
    return Checkpoint.from_dict(state, str(path))


def write_config(run: Path, raw: dict) -> None:
    atomic.write_text(run / CONFIG_FILE, dumps(raw))
