"""Validation scores of the self-supervised tasks (denoise_self, reconstruct_traces).

The validation set hides samples with fixed masks (see :meth:`geocnn.data.PatchDataset`); a
batch's target is (B, C + 1 [+ C], ...): the unmasked input, the hidden mask, and the clean twin
when ``data.clean`` is given. Scores on the hidden samples compare the prediction and the task's
baseline (:class:`geocnn.selfsup.masking.Masking`) with the noisy values that were hidden; against the
clean twin, blind-spot denoising is scored over whole patches from the unmasked input (what
``geocnn predict`` does), trace reconstruction on the hidden traces — and beside it the field's
own method (f-x deconvolution; POCS interpolation of the masked patch), which only the clean twin
can score fairly. :func:`pictured` gives ``examples.png`` the patches as prediction treats them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from geocnn.metrics import HiddenMetrics
from geocnn.selfsup.blindspots import nearest_seen


def unmasked(y: torch.Tensor, channels: int) -> torch.Tensor:
    """The unmasked input channels of a self-supervised target (the values the loss compares with)."""
    return y[:, :channels]


def hidden_of(y: torch.Tensor, channels: int) -> torch.Tensor:
    """(B, 1, *patch) bool: the samples hidden from the network and scored."""
    return y[:, channels:channels + 1] > 0.5


def clean_of(y: torch.Tensor, channels: int) -> torch.Tensor | None:
    """The clean twin's channels of a target (normalised), None without ``data.clean``."""
    return y[:, channels + 1:] if y.shape[1] == 2 * channels + 1 else None


def baseline(x: torch.Tensor, hidden: torch.Tensor, d: Any) -> torch.Tensor:
    """The task's trivial prediction of each patch (normalised units), from the masked input; for a
    network blind by construction (nothing masked), the nearest sample it reads."""
    m, axes, mask = d.task.masking, d.geom.model_axes, d.cfg.data.mask
    if d.blinding is not None and d.blinding.dense:
        fills = [nearest_seen(xi, d.blinding.shape) for xi in x.numpy()]
    else:
        fills = [m.baseline(xi, hi[0], axes, mask) for xi, hi in zip(x.numpy(), hidden.numpy())]
    return torch.from_numpy(np.stack(fills).astype(np.float32))


def classical(x: torch.Tensor, d: Any) -> torch.Tensor:
    """The field's own method on patches as predict shows them (normalised units): f-x
    deconvolution of unmasked patches, POCS filling the hidden traces of masked ones."""
    dt_s = (d.grid.meta.sample_interval_us or 4000) * 1e-6
    done = [d.task.masking.classical(xi, d.geom.model_axes, dt_s) for xi in x.numpy()]
    return torch.from_numpy(np.stack(done).astype(np.float32))


def score(metric: HiddenMetrics, x: torch.Tensor, y: torch.Tensor, pred: torch.Tensor, d: Any,
          predict: Callable[[torch.Tensor], torch.Tensor]) -> None:
    """Add one validation batch: ``x`` masked input and ``y`` target (CPU, normalised), ``pred`` the
    model's output on ``x`` in target units; ``predict`` runs the model on an unmasked batch."""
    c = x.shape[1]

    def units(t: torch.Tensor) -> torch.Tensor:
        return d.task.units(t, d.target_norm)

    hidden = hidden_of(y, c)
    orig, base = units(unmasked(y, c)), units(baseline(x, hidden, d))
    metric.update(pred, orig, base, hidden)
    clean = clean_of(y, c)
    if clean is not None:
        clean = units(clean)
        if d.task.masking.clean_whole_patch:
            metric.update_clean(predict(unmasked(y, c)), clean, orig)
        else:
            metric.update_clean(pred, clean, base, hidden)
    if d.task.masking.classical is not None and clean is not None:
        # against the clean twin only: against the noisy values, a method that keeps the noise the
        # neighbouring traces share (f-x does) scores better than one that removes it
        where, shown = (None, unmasked(y, c)) if d.task.masking.clean_whole_patch else (hidden, x)
        metric.update_classical(d.task.masking.classical_name, units(classical(shown, d)), clean, where)


@dataclass(frozen=True)
class Pictured:
    """What ``examples.png`` shows of a few validation patches (target units, CPU): the noisy input
    (the training target), what ``geocnn predict`` would write, the hidden samples, the clean twin."""

    target: torch.Tensor  # (B, C, *patch)
    pred: torch.Tensor  # (B, C, *patch)
    hidden: torch.Tensor  # (B, *patch) bool
    clean: torch.Tensor | None  # (B, C, *patch)


def pictured(x: torch.Tensor, y: torch.Tensor, pred: torch.Tensor, d: Any,
             predict: Callable[[torch.Tensor], torch.Tensor]) -> Pictured:
    """The patches as prediction treats them: trace reconstruction fills the hidden traces (its
    prediction there, the input as read elsewhere); blind-spot denoising runs on the unmasked input."""
    c = x.shape[1]
    noisy, hidden, clean = d.task.units(unmasked(y, c), d.target_norm), hidden_of(y, c), clean_of(y, c)
    shown = torch.where(hidden, pred, noisy) if d.task.masking.fills_traces else predict(unmasked(y, c))
    return Pictured(noisy, shown, hidden[:, 0], None if clean is None else d.task.units(clean, d.target_norm))
