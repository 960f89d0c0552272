"""Losses of the four tasks, selected in YAML (``train.loss``).

Dense and patch outputs share one convention: class scores are logits with the class axis at 1
— K ≥ 2 channels for K classes, or a single channel for a binary problem (the score of class 1).
Targets are class indices (int64), class probabilities (float32 ``(B, K, ...)``: soft labels such as
Gaussian picks; every class loss takes them, and a one-hot target scores as its class index) or
values (float32).

- ``mse``, ``l1``, ``huber``: regression of values (dense or one per patch).
- ``cross_entropy``: with optional class weights (``auto`` = median-frequency balancing from the
  training labels) and an ``ignore_index``; on class probabilities y, Σ −w_k·y_k·log p_k over samples
  divided by Σ w_k·y_k (:func:`soft_cross_entropy`).
- ``bce_balanced``: FaultSeg3D's class-balanced binary cross-entropy, β = share of negatives in the
  batch, so the rare fault class is not drowned; two classes only (:func:`soft_balanced_bce`).
- ``dice``: 1 − mean soft Dice over classes (:func:`soft_dice`).
- ``focal``: (1 − p_t)^γ-weighted cross-entropy, class weights scaling each sample's term; on probabilities
  Σ_k −w_k·y_k·(1 − p_k)^γ·ln p_k (:func:`soft_focal`).
- self-supervised tasks wrap the value losses in :class:`HiddenLoss`: scored on hidden samples only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from geocnn.tasks import DEAD_LABEL

if TYPE_CHECKING:
    from geocnn.config import Loss


def class_weights_from_frequencies(freq: np.ndarray) -> list[float]:
    """Median-frequency balancing: w_k = median(f) / f_k (absent classes get the largest weight)."""
    freq = np.asarray(freq, dtype=np.float64)
    present = freq > 0
    if not present.any():
        return [1.0] * len(freq)
    w = np.zeros_like(freq)
    w[present] = np.median(freq[present]) / freq[present]
    w[~present] = w[present].max()
    return [float(v) for v in w]


def _two_class_logits(out: torch.Tensor) -> torch.Tensor:
    """(B, 1, ...) binary logits → (B, 2, ...) so softmax-based losses treat both cases alike."""
    return torch.cat([torch.zeros_like(out), out], dim=1) if out.shape[1] == 1 else out


def soft_cross_entropy(logits: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    """Cross-entropy against class probabilities ``target`` (B, K, ...), weighted per class.

    Normalised by the summed weight of the targets, Σ w_k·y_k, as torch normalises index targets by
    Σ w_{y}: so a one-hot target scores exactly as its class index, and samples whose probabilities
    are all 0 (missing) add nothing. (torch's own mean over probabilities divides by the sample count
    instead, which changes the loss's scale with the weights.)
    """
    w = _class_axis(weights, logits)
    total = F.cross_entropy(logits, target, weight=w.reshape(-1), reduction="sum")
    return total / (target * w).sum().clamp(min=torch.finfo(logits.dtype).tiny)


def soft_focal(logits: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None, gamma: float) -> torch.Tensor:
    """Focal loss against class probabilities ``target`` (B, K, ...): Σ_k −w_k·y_k·(1 − p_k)^γ·ln p_k per
    sample, averaged over the scored samples (those whose probabilities are not all 0).

    The categorical focal loss with the one-hot target replaced by y (as cross-entropy's soft form): a
    one-hot y gives −w_t·(1 − p_t)^γ·ln p_t, the class-index form, and the mean stays over the sample
    count (class weights scale terms, not the divisor). 1 − p is kept ≥ the smallest normal float so
    that γ < 1 gives no infinite gradient on a class the network is sure of.
    """
    logp = F.log_softmax(logits, dim=1)
    rest = (-torch.expm1(logp)).clamp(min=torch.finfo(logp.dtype).tiny)  # 1 − p, accurately near p = 1
    per_sample = -(_class_axis(weights, logits) * target * rest**gamma * logp).sum(1)
    return per_sample.sum() / _scored(target).sum().clamp(min=1)


def soft_dice(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 − the mean over classes of the smoothed soft Dice (2·Σp·y + 1) / (Σp + Σy + 1) against class
    probabilities ``target`` (B, K, ...): the Dice of the probabilities with y in place of the one-hot
    labels (V-Net's form), unscored samples (probabilities all 0) left out of both sums."""
    prob = torch.softmax(logits, dim=1) * _scored(target).unsqueeze(1)
    dims = (0, *range(2, logits.ndim))
    inter = (prob * target).sum(dims)
    denom = prob.sum(dims) + target.sum(dims)
    return 1 - ((2 * inter + 1.0) / (denom + 1.0)).mean()


def soft_balanced_bce(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """FaultSeg3D's class-balanced binary cross-entropy against two class probabilities ``target``
    (B, 2, ...): −[β·y₁·ln σ(x) + (1 − β)·y₀·ln σ(−x)] averaged over the scored samples, β = the share
    of class 0 among them (Σy₀ / count), x the score of class 1. One-hot y gives the class-index form."""
    logit = out[:, 0] if out.shape[1] == 1 else out[:, 1] - out[:, 0]
    neg, pos = target[:, 0], target[:, 1]
    count = _scored(target).sum().clamp(min=1)
    beta = neg.sum() / count
    loss = -(beta * pos * F.logsigmoid(logit) + (1 - beta) * neg * F.logsigmoid(-logit))
    return loss.sum() / count


def _class_axis(weights: torch.Tensor | None, logits: torch.Tensor) -> torch.Tensor:
    """Class weights (K,) shaped (1, K, 1, ...) to scale (B, K, ...) terms; all 1 when not given."""
    w = torch.ones(logits.shape[1], device=logits.device) if weights is None else weights
    return w.reshape(1, -1, *([1] * (logits.ndim - 2)))


def _scored(target: torch.Tensor) -> torch.Tensor:
    """(B, ...) True where a sample's class probabilities (B, K, ...) are not all 0 (missing, ignored)."""
    return target.sum(1) > 0


def one_hot(target: torch.Tensor, classes: int, ignore_index: int | None) -> torch.Tensor:
    """Class indices (B, ...) → one-hot probabilities float32 (B, K, ...), all 0 on ``ignore_index`` and
    missing samples: how focal, dice and balanced BCE score class indices (one code for both kinds)."""
    valid = (target != DEAD_LABEL) & (target != (DEAD_LABEL if ignore_index is None else ignore_index))
    t = torch.where(valid, target, torch.zeros_like(target))
    return F.one_hot(t, classes).movedim(-1, 1).to(torch.float32) * valid.unsqueeze(1)


class ClassLoss(nn.Module):
    """Cross-entropy, focal or dice on class scores; ``bce_balanced`` for binary problems.

    Targets are class indices or class probabilities (soft labels); every kind takes both, and a
    one-hot probability target scores exactly as its class index. Index targets go through
    :func:`one_hot` into the probability forms (cross-entropy keeps torch's index form, the same number).
    """

    def __init__(self, kind: str, weights: list[float] | None, ignore_index: int | None, gamma: float) -> None:
        super().__init__()
        self.kind, self.ignore_index, self.gamma = kind, ignore_index, gamma
        self.register_buffer("weights", torch.tensor(weights, dtype=torch.float32) if weights else None)

    def forward(self, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        out = out.float()
        logits = _two_class_logits(out)
        if self.kind == "cross_entropy" and not target.is_floating_point():
            return self._index_cross_entropy(logits, target)
        y = target.float() if target.is_floating_point() else one_hot(target, logits.shape[1], self.ignore_index)
        if self.kind == "bce_balanced":
            return soft_balanced_bce(out, y)
        if self.kind == "cross_entropy":
            return soft_cross_entropy(logits, y, self.weights)
        if self.kind == "focal":
            return soft_focal(logits, y, self.weights, self.gamma)
        return soft_dice(logits, y)

    def _index_cross_entropy(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        ignore = DEAD_LABEL if self.ignore_index is None else self.ignore_index
        if self.ignore_index is not None:  # missing samples are ignored as the user's ignored class is
            target = torch.where(target == DEAD_LABEL, torch.full_like(target, ignore), target)
        return F.cross_entropy(logits, target, weight=self.weights, ignore_index=ignore)


class ValueLoss(nn.Module):
    """mse, l1 or huber on values (dense maps or one value per patch); with ``masked`` (inputs with
    nodata), NaN targets mark missing samples and are left out."""

    def __init__(self, kind: str, delta: float, masked: bool = False) -> None:
        super().__init__()
        self.kind, self.delta, self.masked = kind, delta, masked

    def forward(self, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        pred = out.float().reshape(target.shape)
        if self.masked:
            keep = ~torch.isnan(target)
            if not keep.any():
                return pred.sum() * 0.0
            pred, target = pred[keep], target[keep]
        return self.score(pred, target)

    def score(self, pred: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
        """The value loss of ``pred`` against ``truth`` (same shape): the one mse/l1/huber switch."""
        if self.kind == "mse":
            return F.mse_loss(pred, truth)
        if self.kind == "l1":
            return F.l1_loss(pred, truth)
        return F.huber_loss(pred, truth, delta=self.delta)


class HiddenLoss(ValueLoss):
    """A value loss on the hidden samples only (self-supervised tasks).

    The target is (B, C + 1 [+ C], ...): the C unmasked input channels, then the hidden mask
    (1 where a sample was hidden); clean channels after that (validation) are not read. Visible
    samples get no gradient, so the network cannot learn the identity.
    """

    def forward(self, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        c = out.shape[1]
        hidden = (target[:, c:c + 1] > 0.5).expand_as(out)
        pred, truth = out.float()[hidden], target[:, :c].float()[hidden]
        if pred.numel() == 0:
            return out.float().sum() * 0.0
        return self.score(pred, truth)


def make_loss(classifies: bool, cfg: Loss, class_freq: np.ndarray | None = None,
              hidden_only: bool = False, masked: bool = False) -> nn.Module:
    """The loss of ``train.loss``: on class scores when the task ``classifies``, else on values
    (on hidden samples only for a self-supervised task, ``hidden_only``; NaN targets left out when
    the inputs have missing samples, ``masked``); ``class_freq`` feeds ``class_weights: auto``."""
    if hidden_only:
        return HiddenLoss(cfg.kind, cfg.delta)
    if not classifies:
        return ValueLoss(cfg.kind, cfg.delta, masked)
    weights = cfg.class_weights
    if weights == "auto":
        weights = class_weights_from_frequencies(class_freq) if class_freq is not None else None
    elif weights == "none":
        weights = None
    return ClassLoss(cfg.kind, list(weights) if weights is not None else None, cfg.ignore_index, cfg.gamma)
