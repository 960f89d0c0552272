"""Validation scores of the self-supervised tasks (denoise_self, reconstruct_traces).

The validation set hides samples with fixed masks (see :meth:`geocnn.data.PatchDataset`); a
batch's target is (B, C + 1 [+ C], ...): the unmasked input, the hidden mask, and the clean twin
when ``data.clean`` is given. Scores on the hidden samples compare the prediction and the task's
baseline (:class:`geocnn.masking.Masking`), and its classical method where it has one, with the
noisy values that were hidden; against the clean twin, blind-spot denoising is scored over whole patches from the unmasked input (what
``geocnn predict`` does), trace reconstruction on the hidden traces.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from geocnn.metrics import HiddenMetrics


def unmasked(y: torch.Tensor, channels: int) -> torch.Tensor:
    """The unmasked input channels of a self-supervised target (the values the loss compares with)."""
    return y[:, :channels]


def baseline(x: torch.Tensor, hidden: torch.Tensor, d: Any) -> torch.Tensor:
    """The task's trivial prediction of each patch (normalised units), from the masked input."""
    m, axes, mask = d.task.masking, d.geom.model_axes, d.cfg.data.mask
    fills = [m.baseline(xi, hi[0], axes, mask) for xi, hi in zip(x.numpy(), hidden.numpy())]
    return torch.from_numpy(np.stack(fills).astype(np.float32))


def classical(x: torch.Tensor, hidden: torch.Tensor, d: Any) -> torch.Tensor | None:
    """The field's own method's prediction of each patch (normalised units), or None if the task has none."""
    method, axes, mask = d.task.masking.classical, d.geom.model_axes, d.cfg.data.mask
    if method is None:
        return None
    fills = [method.fill(xi, hi[0], axes, mask) for xi, hi in zip(x.numpy(), hidden.numpy())]
    return torch.from_numpy(np.stack(fills).astype(np.float32))


def score(metric: HiddenMetrics, x: torch.Tensor, y: torch.Tensor, pred: torch.Tensor, d: Any,
          predict: Callable[[torch.Tensor], torch.Tensor]) -> None:
    """Add one validation batch: ``x`` masked input and ``y`` target (CPU, normalised), ``pred`` the
    model's output on ``x`` in target units; ``predict`` runs the model on an unmasked batch."""
    c = x.shape[1]

    def units(t: torch.Tensor) -> torch.Tensor:
        return d.task.units(t, d.target_norm)

    hidden = y[:, c:c + 1] > 0.5
    orig, base = units(unmasked(y, c)), units(baseline(x, hidden, d))
    known = classical(x, hidden, d)
    known = units(known) if known is not None else None
    metric.update(pred, orig, base, hidden, known)
    if y.shape[1] == 2 * c + 1:
        clean = units(y[:, c + 1:])
        if d.task.masking.clean_whole_patch:
            metric.update_clean(predict(unmasked(y, c)), clean, orig)
        else:
            metric.update_clean(pred, clean, base, hidden, known)
