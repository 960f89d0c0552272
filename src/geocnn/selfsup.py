"""Validation scores of the self-supervised tasks (denoise_self, reconstruct_traces).

The validation set hides samples with fixed masks (see :meth:`geocnn.data.PatchDataset`); a
batch's target is (B, C + 1 [+ C], ...): the unmasked input, the hidden mask, and the clean twin
when ``data.clean`` is given. Scores on the hidden samples compare the prediction and the task's
baseline (:class:`geocnn.masking.Masking`) with the noisy values that were hidden; against the
clean twin, blind-spot denoising is scored over whole patches from the unmasked input (what
``geocnn predict`` does), trace reconstruction on the hidden traces — and beside it the field's
own method (f-x deconvolution; POCS interpolation of the masked patch), which only the clean twin
can score fairly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from geocnn.blindspots import nearest_seen
from geocnn.metrics import HiddenMetrics


def unmasked(y: torch.Tensor, channels: int) -> torch.Tensor:
    """The unmasked input channels of a self-supervised target (the values the loss compares with)."""
    return y[:, :channels]


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

    hidden = y[:, c:c + 1] > 0.5
    orig, base = units(unmasked(y, c)), units(baseline(x, hidden, d))
    metric.update(pred, orig, base, hidden)
    clean = units(y[:, c + 1:]) if y.shape[1] == 2 * c + 1 else None
    if clean is not None:
        if d.task.masking.clean_whole_patch:
            metric.update_clean(predict(unmasked(y, c)), clean, orig)
        else:
            metric.update_clean(pred, clean, base, hidden)
    if d.task.masking.classical is not None and clean is not None:
        # against the clean twin only: against the noisy values, a method that keeps the noise the
        # neighbouring traces share (f-x does) scores better than one that removes it
        where, shown = (None, unmasked(y, c)) if d.task.masking.clean_whole_patch else (hidden, x)
        metric.update_classical(d.task.masking.classical_name, units(classical(shown, d)), clean, where)
