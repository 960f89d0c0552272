"""The closed registry of what a prediction writes: one :class:`Output` record per ``--output`` value.

Each record says how many channels it writes for a model's score channels and in which dtype,
how blended scores become it, how a preview draws it, and which output formats can hold it.
Prediction, the task records and the pictures ask the record; the name is read only where the
command line is parsed (:func:`get_output`).

Class scores arrive as probabilities with the class axis first (``(K, ...)``; one channel holds
P(class 1) of a binary model). They become labels here and nowhere else (:func:`class_labels`):
a tie (probability exactly 0.5, or equal probabilities) goes to the lower class.

NumPy arrays and torch tensors alike (on a GPU the scores are blended on the device); the module
imports neither torch nor matplotlib.

Example
-------
>>> OUTPUTS["probabilities"].channels(2), OUTPUTS["labels"].dtype
(1, 'uint8')
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from geocnn.errors import ConfigError, DataError
from geocnn.grids.formats import Format
from geocnn.schema import suggest

# ----------------------------------------------------------------------------- scores → outputs

def class_labels(probs: Any, axis: int = 1) -> Any:
    """Probabilities (NumPy or torch, channels on ``axis``) → class indices, channel axis removed.

    One channel: class 1 where P(class 1) > 0.5; K channels: the most probable class. Both send a
    tie to the lower class, so one channel and two channels of the same logits agree.
    """
    if probs.shape[axis] == 1:
        return (probs.squeeze(axis) > 0.5) * 1
    return probs.argmax(axis)


def positive_probability(probs: Any, axis: int = 1) -> Any:
    """What a probability map shows: P(class 1) for a binary problem (one channel), else every class."""
    if probs.shape[axis] == 2:
        return probs[(slice(None),) * axis + (slice(1, 2),)]
    return probs


def _float32(values: Any) -> Any:
    """A float32 copy of a NumPy array, or of a tensor (``Tensor.float``)."""
    return values.astype(np.float32) if isinstance(values, np.ndarray) else values.float()


def _uint8(values: Any) -> Any:
    """A uint8 copy of a NumPy array, or of a tensor (``Tensor.byte``)."""
    return values.astype(np.uint8) if isinstance(values, np.ndarray) else values.byte()


def _values(scores: Any, target_norm: Any) -> Any:
    """Model values → target units (the training targets' normalisation undone)."""
    return scores if target_norm is None else _float32(target_norm.invert(scores))


def _probabilities(scores: Any, target_norm: Any) -> Any:
    return _float32(positive_probability(scores, axis=0))


def _labels(scores: Any, target_norm: Any) -> Any:
    return _uint8(class_labels(scores, axis=0))[None]


def _all_channels(scores: int) -> int:
    return scores


def _class_channels(scores: int) -> int:
    """One channel for a binary model (P(class 1)), one per class otherwise."""
    return 1 if scores <= 2 else scores


def _one_channel(scores: int) -> int:
    return 1


# ----------------------------------------------------------------------------- the record

@dataclass(frozen=True)
class Output:
    """One ``--output`` kind: what it is, how it is made, drawn and stored."""

    name: str
    help: str
    of_classes: bool  # made from class probabilities (classifying tasks); else from values
    dtype: str  # NumPy dtype written
    channels: Callable[[int], int]  # model score channels → channels written
    convert: Callable[[Any, Any], Any]  # (blended scores (K, ...), target normalisation) → what is written
    label: str  # what a preview calls one value
    categorical: bool = False  # previews: a class palette with a legend of class names
    probability: bool = False  # previews: 0..1, one map per class written, titled P(class)
    per_class: bool = False  # one channel per class: --split-classes, and only formats with channels hold several

    def class_numbers(self, channels: int) -> tuple[int, ...]:
        """The class each written channel holds (one file each with --split-classes): a single channel
        is P(class 1) of a binary model."""
        return tuple(range(channels)) if channels > 1 else (1,)

    def band_names(self, class_names: tuple[str, ...] | None, channels: int) -> tuple[str, ...] | None:
        """What each written channel is called in the output (GeoTIFF band descriptions, OME channel names,
        netCDF/``.npy`` channel names): ``labels`` for labels, the class of each probability channel; None
        for values or when the classes are not named (the formats' own defaults then)."""
        if not self.of_classes or not class_names:
            return None
        if not self.per_class:
            return ("labels",)
        numbers = self.class_numbers(channels)
        if max(numbers) >= len(class_names):
            return None
        return tuple(str(class_names[k]) for k in numbers)

    def check_format(self, fmt: Format, channels: int, where: str) -> None:
        """Several classes per position fit only a format with channels (not one SEG-Y, even a pre-stack one);
        a format holding only some kinds (miniSEED: probability traces) refuses the others."""
        if fmt.outputs and self.name not in fmt.outputs:
            raise DataError(f"this output format ({fmt.help}) holds {' or '.join(fmt.outputs)}, not {self.name}",
                            where=where, fix=f"pass --output {fmt.outputs[0]}, or write a .npy output")
        if self.per_class and channels > 1 and not fmt.channels:
            raise DataError(f"{channels} class {self.name} per sample do not fit one {fmt.help}", where=where,
                            fix=f"pass --split-classes for one {fmt.help} per class (NAME.class-K{fmt.suffixes[0]}), "
                                "or write a .npy output")


VALUES = Output("values", "the model's values in the training targets' units", of_classes=False, dtype="float32",
                channels=_all_channels, convert=_values, label="predicted value")
PROBABILITIES = Output("probabilities", "class probabilities (P(class 1) alone for two classes)", of_classes=True,
                       dtype="float32", channels=_class_channels, convert=_probabilities, label="probability",
                       probability=True, per_class=True)
LABELS = Output("labels", "the most probable class (uint8)", of_classes=True, dtype="uint8",
                channels=_one_channel, convert=_labels, label="predicted class", categorical=True)

OUTPUTS: dict[str, Output] = {o.name: o for o in (PROBABILITIES, LABELS, VALUES)}
AUTO = "auto"  # --output's default: the task picks (Task.output)


def get_output(name: str) -> Output:
    """The record of ``name``; an unknown name is a ConfigError listing the valid ones."""
    if name not in OUTPUTS:
        raise ConfigError(f"unknown --output {name!r}", fix=suggest(name, [AUTO, *OUTPUTS]))
    return OUTPUTS[name]


def outputs_of(classifies: bool) -> tuple[Output, ...]:
    """The outputs a task can write: from class probabilities, or from values."""
    return tuple(o for o in OUTPUTS.values() if o.of_classes == classifies)
