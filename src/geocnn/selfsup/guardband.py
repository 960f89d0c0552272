"""Filling missing traces from traces at least ``guard + 1`` away: how a ``reconstruct_traces`` model
trained with ``data.mask.guard`` predicts.

Field noise is correlated across neighbouring traces (lag-1 correlation ≈ 0.5 on real surveys),
so a network scored against a hidden noisy trace learns to copy the part of its noise that the
live neighbours share. Trained with a guard (:func:`geocnn.selfsup.masking.hide_traces`), it is scored
only on traces whose neighbours within ``guard`` are hidden too, and it learns the signal. At
prediction the neighbours of a missing trace are live, so the missing traces are filled in passes:

- the lateral positions of a window fall into (2·guard + 1)^k classes (k lateral axes), by their
  index modulo 2·guard + 1 along each axis;
- in each pass, the missing traces of one class are the targets; every trace within ``guard`` of
  a target is hidden as well (set to zero, the normalised mean), the network runs, and its output
  is kept on the targets only.

With ``--all`` every trace is a target (the live ones too: the network's denoised estimate of
each trace from traces at least ``guard + 1`` away), in (2·guard + 2)^k passes, so that a pass
leaves live traces between its hidden blocks.

Missing traces are the ones that are zero on every channel and sample of the normalised input:
:class:`geocnn.predict.TraceFill` sets them to the normalisation centre, as training hid them. A
live trace that is exactly the centre value everywhere is taken for a missing one here; its output
is discarded anyway unless ``--all`` is given.
"""

from __future__ import annotations

import itertools
import logging
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from geocnn.selfsup.masking import trace_axes

log = logging.getLogger(__name__)


class GuardBandFill(nn.Module):
    """``model`` run in passes so that no target trace sees a live trace within ``guard``."""

    def __init__(self, model: nn.Module, time_axis: int, guard: int, every_trace: bool) -> None:
        super().__init__()
        self.model, self.time, self.guard, self.every_trace = model, time_axis, guard, every_trace

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, *patch) normalised windows → (B, K, *patch): the targets' outputs from their own pass;
        other traces hold a pass's output with extra traces hidden (predict keeps them from the input)."""
        time = self.time + 2
        missing = ~(x != 0).any(dim=1).any(dim=time - 1)  # (B, *lateral)
        wanted = torch.ones_like(missing) if self.every_trace else missing
        period = 2 * self.guard + (2 if self.every_trace else 1)
        out = None
        for cls in itertools.product(range(period), repeat=missing.ndim - 1):
            targets = wanted & _lattice(missing.shape[1:], cls, period, x.device)
            if out is not None and not targets.any():
                continue
            hide = missing | _spread(targets, self.guard)
            y = self.model(x * (~hide).unsqueeze(1).unsqueeze(time).to(x.dtype))
            keep = targets.unsqueeze(1).unsqueeze(time)
            out = y if out is None else torch.where(keep, y, out)
        return out


def _lattice(lateral: tuple[int, ...], cls: tuple[int, ...], period: int, dev: torch.device) -> torch.Tensor:
    """Bool (*lateral): the positions whose index modulo ``period`` is ``cls`` along every axis."""
    on = torch.ones((), dtype=torch.bool, device=dev)
    for axis, (n, c) in enumerate(zip(lateral, cls)):
        line = (torch.arange(n, device=dev) % period) == c
        on = on & line.reshape([-1 if a == axis else 1 for a in range(len(lateral))])
    return on


def _spread(table: torch.Tensor, guard: int) -> torch.Tensor:
    """Bool (B, *lateral): True within ``guard`` of a True along every lateral axis at once."""
    if guard == 0:
        return table
    pool = (F.max_pool1d, F.max_pool2d, F.max_pool3d)[table.ndim - 2]
    return pool(table.unsqueeze(1).float(), 2 * guard + 1, stride=1, padding=guard)[:, 0] > 0


def wrap(model: nn.Module, mask: Any, axes: tuple[str, ...], every_trace: bool) -> nn.Module:
    """The model predict runs for a trace-filling task: ``model`` itself without a guard, else in passes."""
    if not mask.guard:
        return model
    time, _ = trace_axes(axes, mask.axis)
    lateral = len(axes) - 1
    period = 2 * mask.guard + (2 if every_trace else 1)
    log.info("guard %d: each %strace is predicted from outside its %s block of traces (up to %d passes)",
             mask.guard, "" if every_trace else "missing ", " × ".join([str(2 * mask.guard + 1)] * lateral),
             period ** lateral)
    return GuardBandFill(model, time, mask.guard, every_trace).eval()
