"""``metrics.jsonl``: one :class:`EpochRecord` per epoch of a run.

A line holds the epoch's training loss, the validation loss and the task's validation metrics next
to their baselines (:class:`Validation`), the learning rate, speed, the share of step time spent
waiting on data, the per-step losses behind ``loss.png`` (:class:`StepLosses`), the epoch
``best.pt`` holds (:class:`Best`), early stopping's counter (:class:`EarlyStopState`) and what a
resume changed (:class:`Resumed`). Training builds the record; the log line, ``loss.png``,
TensorBoard and the run's last line read its fields — no one digs in a dict by string key.

Lines are strict JSON: a number that is not finite (a perfect baseline has an infinite SNR) is
written as ``null`` with a ``<name>_reason`` beside it (:func:`strict_json`), and read back as the
number it was (:func:`loose_json`). Lines of earlier versions (no per-step losses, no headline)
read back with those fields empty, and write back as they were.

The validation metric set is the task's and stays open: :class:`Validation` holds what the task's
accumulator computed (:mod:`geocnn.metrics`), in its order — metric name → number, or a list for
per-class values and the confusion matrix — and, each under its own name, a mapping of the scores
of a method the task compares with (``baseline``: the trivial prediction; ``classical``: the
field's own method, named by its ``method`` entry, e.g. f-x deconvolution). A task adds a metric
or a compared method by computing it; nothing here changes.

Standard library and NumPy only: pictures and TensorBoard read records without torch.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from geocnn import atomic

FILE = "metrics.jsonl"
BASELINE = "baseline"  # the trivial prediction's scores, under this name in a validation mapping
MAX_STEP_POINTS = 200  # per-step losses kept per epoch (means of equal bins)

_NONFINITE = {math.inf: "infinite", -math.inf: "minus infinite"}
_FROM_REASON = {"infinite": math.inf, "minus infinite": -math.inf, "not a number": math.nan}


# ----------------------------------------------------------------------------- strict JSON

def strict_json(obj: Any) -> Any:
    """``obj`` with arrays/tensors as lists and every non-finite number as null, next to a
    ``<key>_reason`` saying what it was (a perfect baseline has an infinite SNR)."""
    if hasattr(obj, "tolist"):
        obj = obj.tolist()
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if isinstance(v, float) and not math.isfinite(v):
                out[k], out[f"{k}_reason"] = None, _NONFINITE.get(v, "not a number")
            else:
                out[k] = strict_json(v)
        return out
    if isinstance(obj, (list, tuple)):
        return [None if isinstance(v, float) and not math.isfinite(v) else strict_json(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    return str(obj)


def loose_json(obj: Any) -> Any:
    """Inverse of :func:`strict_json` on mappings: ``null`` with a ``<key>_reason`` is the number it
    was, and the reason goes (a non-finite value in a list was written without one: it stays null)."""
    if isinstance(obj, list):
        return [loose_json(v) for v in obj]
    if not isinstance(obj, dict):
        return obj
    restored = {k: _FROM_REASON[obj.get(f"{k}_reason")] for k, v in obj.items()
                if v is None and obj.get(f"{k}_reason") in _FROM_REASON}
    reasons = {f"{k}_reason" for k in restored}
    return {k: restored[k] if k in restored else loose_json(v) for k, v in obj.items() if k not in reasons}


def _number(value: Any) -> float | None:
    """A metric's value as a float (None for lists, text and nothing)."""
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


# ----------------------------------------------------------------------------- the parts of a line

@dataclass(frozen=True)
class Validation:
    """One epoch's validation scores: the task's metrics and, under their own names, the scores of
    the methods it compares with (:data:`BASELINE` ...), in the order the task computed them.

    Examples
    --------
    >>> v = Validation({"f1": 0.4, "confusion": [[3, 1], [0, 2]], "baseline": {"f1": 0.0}})
    >>> v.value("f1"), v.baseline("f1"), v.value("miou"), v.names
    (0.4, 0.0, None, ('f1',))
    """

    scores: Mapping[str, Any] = field(default_factory=dict)

    def __bool__(self) -> bool:
        """Whether the epoch was validated (a run without a validation block has no scores)."""
        return bool(self.scores)

    @property
    def names(self) -> tuple[str, ...]:
        """The metrics with a number (lists such as the confusion matrix and the baselines left out)."""
        return tuple(k for k, v in self.scores.items() if _number(v) is not None)

    def value(self, name: str) -> float | None:
        """The metric ``name``, or None when the task did not compute it."""
        return _number(self.scores.get(name))

    @property
    def baselines(self) -> dict[str, Mapping[str, Any]]:
        """Every compared method's scores by its name (``baseline`` first when the task put it first)."""
        return {k: v for k, v in self.scores.items() if isinstance(v, Mapping)}

    def baseline(self, name: str, method: str = BASELINE) -> float | None:
        """What ``method`` scored on the metric ``name`` (None when it was not scored)."""
        return _number(self.baselines.get(method, {}).get(name))

    def label(self, method: str) -> str:
        """How a compared method is called: its scores' ``method`` entry (``classical``: "f-x
        deconvolution"), else its name."""
        named = self.baselines.get(method, {}).get("method")
        return named if isinstance(named, str) else method

    @property
    def confusion(self) -> list[list[int]] | None:
        """The confusion matrix of a classifying task (rows: truth, columns: prediction)."""
        matrix = self.scores.get("confusion")
        return matrix if isinstance(matrix, list) else None

    def to_dict(self) -> dict:
        return {k: dict(v) if isinstance(v, Mapping) else v for k, v in self.scores.items()}


@dataclass(frozen=True)
class StepLosses:
    """Per-step training losses of one epoch: every step, or the means of equal bins (each at its
    bin's last step) so a long epoch stays a short line."""

    steps: tuple[int, ...]
    loss: tuple[float, ...]

    @classmethod
    def thinned(cls, first_step: int, losses: Sequence[float], max_points: int = MAX_STEP_POINTS) -> StepLosses:
        """The losses of steps ``first_step``, ``first_step + 1``, ... kept at most ``max_points``
        (6 significant digits: the picture needs no more)."""
        v = np.asarray(losses, dtype=np.float64)
        steps = first_step + np.arange(len(v))
        if len(v) > max_points:
            bins = np.array_split(np.arange(len(v)), max_points)
            steps = np.array([steps[b[-1]] for b in bins])
            v = np.array([v[b].mean() for b in bins])
        return cls(tuple(int(s) for s in steps), tuple(float(f"{x:.6g}") for x in v))

    def to_dict(self) -> dict:
        return {"steps": list(self.steps), "loss": list(self.loss)}


@dataclass(frozen=True)
class Best:
    """The epoch ``best.pt`` holds so far, by ``train.best_metric`` (epoch 0: the weights of
    ``train.init_from`` before any step); ``headline``: the task's headline metric."""

    metric: str
    value: float | None
    epoch: int | None
    headline: str | None = None  # absent from lines of early versions

    def to_dict(self) -> dict:
        out = {"metric": self.metric, "value": self.value, "epoch": self.epoch}
        return out if self.headline is None else {**out, "headline": self.headline}


@dataclass(frozen=True)
class EarlyStopState:
    """``train.early_stop``'s counter after an epoch (see :class:`geocnn.runs.early_stop.EarlyStopping`)."""

    best: float | None
    best_epoch: int | None
    waited: int
    patience: int
    min_delta: float

    def to_dict(self) -> dict:
        return {"best": self.best, "best_epoch": self.best_epoch, "waited": self.waited,
                "patience": self.patience, "min_delta": self.min_delta}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> EarlyStopState:
        return cls(d["best"], d["best_epoch"], d["waited"], d["patience"], d["min_delta"])


@dataclass(frozen=True)
class Resumed:
    """The first epoch after ``--resume``: the step it resumed after, and the config keys it changed
    (key → [old, new])."""

    step: int
    changed: Mapping[str, list] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"step": self.step, **({"changed": dict(self.changed)} if self.changed else {})}


# ----------------------------------------------------------------------------- the line

@dataclass(frozen=True)
class EpochRecord:
    """One line of ``metrics.jsonl``: what one epoch did.

    ``partial``: the epoch was cut short by ``--max-steps`` (its line covers the steps done; the
    next invocation finishes it). ``stopped_early`` and ``early_stop`` are there only with
    ``train.early_stop``.

    Examples
    --------
    >>> line = ('{"epoch": 1, "step": 4, "train_loss": 0.5, "val_loss": 0.4, "val": {"snr_db": 6.0, '
    ...         '"baseline": {"snr_db": null, "snr_db_reason": "infinite"}}, "lr": 0.01}')
    >>> r = EpochRecord.from_json(line)
    >>> r.val.value("snr_db"), r.val.baseline("snr_db"), r.step_loss
    (6.0, inf, None)
    """

    epoch: int
    step: int
    train_loss: float | None
    val_loss: float | None = None
    val: Validation = field(default_factory=Validation)
    step_loss: StepLosses | None = None
    lr: float | None = None
    patches_per_s: float | None = None
    data_wait_fraction: float | None = None
    time_s: float | None = None
    best: Best | None = None
    partial: bool = False
    resumed: Resumed | None = None
    stopped_early: bool | None = None
    early_stop: EarlyStopState | None = None

    def to_dict(self) -> dict:
        """The line as plain data, numbers as they are (non-finite included: TensorBoard takes them)."""
        out: dict[str, Any] = {"epoch": self.epoch, "step": self.step}
        if self.partial:
            out["partial"] = True
        if self.resumed is not None:
            out["resumed"] = self.resumed.to_dict()
        out.update(train_loss=self.train_loss, val_loss=self.val_loss, val=self.val.to_dict())
        if self.step_loss is not None:
            out["step_loss"] = self.step_loss.to_dict()
        out.update(lr=self.lr, patches_per_s=self.patches_per_s, data_wait_fraction=self.data_wait_fraction,
                   time_s=self.time_s)
        if self.best is not None:
            out["best"] = self.best.to_dict()
        if self.stopped_early is not None:
            out["stopped_early"] = self.stopped_early
        if self.early_stop is not None:
            out["early_stop"] = self.early_stop.to_dict()
        return out

    def to_json(self) -> str:
        """The line as written: strict JSON, no newline."""
        return json.dumps(strict_json(self.to_dict()), allow_nan=False)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> EpochRecord:
        """A line read back (strict or not); fields a line of an earlier version lacks are empty."""
        d = loose_json(dict(d))
        best, trace, resumed, stop = d.get("best"), d.get("step_loss"), d.get("resumed"), d.get("early_stop")
        return cls(
            epoch=d["epoch"], step=d.get("step", d["epoch"]), train_loss=d.get("train_loss"),
            val_loss=d.get("val_loss"), val=Validation(d.get("val") or {}),
            step_loss=StepLosses(tuple(trace["steps"]), tuple(trace["loss"])) if trace else None,
            lr=d.get("lr"), patches_per_s=d.get("patches_per_s"), data_wait_fraction=d.get("data_wait_fraction"),
            time_s=d.get("time_s"),
            best=Best(best["metric"], best["value"], best["epoch"], best.get("headline")) if best else None,
            partial=bool(d.get("partial", False)),
            resumed=Resumed(resumed["step"], resumed.get("changed", {})) if resumed is not None else None,
            stopped_early=d.get("stopped_early"),
            early_stop=EarlyStopState.from_dict(stop) if stop is not None else None)

    @classmethod
    def from_json(cls, line: str) -> EpochRecord:
        return cls.from_dict(json.loads(line))


# ----------------------------------------------------------------------------- the file

def append(run: Path, record: EpochRecord) -> None:
    """Append one epoch's line to ``metrics.jsonl`` (rewritten atomically, so a crash never tears it)."""
    path = run / FILE
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    atomic.write_text(path, old + record.to_json() + "\n")


def _lines(run: Path) -> list[str]:
    path = run / FILE
    if not path.exists():
        return []
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def read(run: Path) -> list[EpochRecord]:
    """Every line of a run's ``metrics.jsonl`` (none when it has none yet)."""
    return [EpochRecord.from_json(line) for line in _lines(run)]


def truncate(run: Path, epochs_done: int) -> None:
    """On resume, drop the lines of epochs after the checkpoint (they will be run again); the kept
    lines stay as they were written."""
    kept = [line for line in _lines(run) if EpochRecord.from_json(line).epoch <= epochs_done]
    atomic.write_text(run / FILE, "".join(line + "\n" for line in kept))
