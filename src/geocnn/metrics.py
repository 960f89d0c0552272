"""Validation metrics of each task, each next to the trivial baseline it must beat.

Accumulators hold float64 sums (summed over processes under torchrun), so metrics are exact
over the whole validation set, not averages of batch averages.

- regression: MSE and SNR in dB against the clean target; baseline = the input itself. Missing
  samples (nodata: NaN targets, class :data:`~geocnn.tasks.DEAD_LABEL`) are never scored.
- segmentation, binary: precision, recall, F1, IoU of the positive class (e.g. faults);
  multi-class: the facies benchmark set — pixel accuracy, class accuracy, mean class accuracy,
  frequency-weighted IoU, mean IoU; baseline = every sample the training majority class.
  Mean IoU follows the facies benchmark (Alaudah et al. 2019): the mean over classes present in
  the truth OR the prediction, so a class predicted but absent from the truth counts as IoU 0;
  a class absent from both is left out. Mean class accuracy averages over classes in the truth.
- classification: accuracy, precision/recall/F1 (positive class if binary, else macro), confusion
  matrix; baseline = majority class.
- scalar: MSE, MAE, R²; baseline = the training mean.
- self-supervised (denoise_self, reconstruct_traces): MSE and SNR on the hidden samples only,
  against the noisy values that were hidden; baseline = the task's trivial fill of the same
  samples. With a clean twin (``data.clean``, evaluation only) also ``clean_snr_db``, and beside
  it the field's own method's (``classical``: f-x deconvolution for denoise_self). Against the
  noisy values it is not scored: a method that keeps the noise neighbouring traces share scores
  well there.

With ``data.picks`` (phase labels of earthquake records), segmentation also scores picks on each
validation window (:class:`PickMetrics`, :class:`geocnn.picking.PickValidation`): per phase, precision,
recall, F1 within a tolerance and the residuals' mean and std, beside a classic STA/LTA's (``classical``).

A task names its accumulator (:class:`geocnn.tasks.Task`'s ``accumulator``); :data:`ACCUMULATORS`
makes it under that name. The metric names and directions are :mod:`geocnn.metric_names` (no torch).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch

from geocnn.picking import PickValidation


def _db(signal: float, noise: float) -> float:
    if noise <= 0:
        return float("inf")
    if signal <= 0:
        return float("-inf")
    return 10.0 * math.log10(signal / noise)


class RegressionMetrics:
    """MSE and SNR (dB) of predictions against targets, in target units."""

    def __init__(self) -> None:
        # [Σ target², Σ (pred − target)², Σ (input − target)², n, baseline available]
        self.sums = torch.zeros(5, dtype=torch.float64)

    def update(self, pred: torch.Tensor, target: torch.Tensor, baseline: torch.Tensor | None) -> None:
        """Add a batch; NaN targets mark missing samples (nodata) and are left out."""
        missing = torch.isnan(target)
        if missing.any():
            keep = ~missing
            pred, target = pred.reshape(target.shape)[keep], target[keep]
            baseline = baseline.reshape(keep.shape)[keep] if baseline is not None else None
        t = target.double()
        self.sums[0] += (t * t).sum()
        self.sums[1] += ((pred.double() - t) ** 2).sum()
        self.sums[3] += t.numel()
        if baseline is not None:
            self.sums[2] += ((baseline.double() - t) ** 2).sum()
            self.sums[4] = 1

    def compute(self) -> dict:
        sig, err, base, n, has_base = self.sums.tolist()
        n = max(n, 1)
        out = {"mse": err / n, "snr_db": _db(sig, err)}
        if has_base:
            out["baseline"] = {"mse": base / n, "snr_db": _db(sig, base)}
        return out


class HiddenMetrics:
    """Self-supervised scores: MSE and SNR (dB) on hidden samples only; with a clean twin, SNR against it.

    ``clean_snr_db`` is reported, never used to pick a checkpoint (it is not a ``best_metric``
    choice): the clean twin is for evaluation only.
    """

    def __init__(self) -> None:
        # [Σ t², Σ (p − t)², Σ (b − t)², n | Σ c², Σ (p − c)², Σ (b − c)², n clean, clean available
        #  | Σ (f − c)², classical available]: f = the field's own method (f-x deconvolution)
        self.sums = torch.zeros(11, dtype=torch.float64)
        self.classical_name = ""

    def update(self, pred: torch.Tensor, target: torch.Tensor, baseline: torch.Tensor,
               hidden: torch.Tensor | None = None) -> None:
        """Add a batch: ``hidden`` (bool, broadcast to the values) selects the scored samples (None: all)."""
        hidden = torch.ones_like(target, dtype=torch.bool) if hidden is None else hidden
        self.sums[:4] += _masked_sums(pred, target, baseline, hidden)

    def update_clean(self, pred: torch.Tensor, clean: torch.Tensor, baseline: torch.Tensor,
                     where: torch.Tensor | None = None) -> None:
        """Add a batch scored against the clean twin (over ``where``, or every sample)."""
        where = torch.ones_like(clean, dtype=torch.bool) if where is None else where
        self.sums[4:8] += _masked_sums(pred, clean, baseline, where)
        self.sums[8] = 1

    def update_classical(self, name: str, pred: torch.Tensor, clean: torch.Tensor,
                         where: torch.Tensor | None = None) -> None:
        """Add the classical method's prediction of a batch against the clean twin, over ``where``
        (None: every sample): the same samples as :meth:`update_clean`, whose signal sums it shares."""
        self.classical_name = name
        where = torch.ones_like(clean, dtype=torch.bool) if where is None else where
        self.sums[9] += _masked_sums(pred, clean, pred, where.expand_as(clean))[1]
        self.sums[10] = 1

    def compute(self) -> dict:
        sig, err, base, n, csig, cerr, cbase, _, has_clean, fcerr, has_classical = self.sums.tolist()
        n = max(n, 1)
        out = {"mse": err / n, "snr_db": _db(sig, err)}
        out["baseline"] = {"mse": base / n, "snr_db": _db(sig, base)}
        if has_clean:
            out["clean_snr_db"] = _db(csig, cerr)
            out["baseline"]["clean_snr_db"] = _db(csig, cbase)
        if has_classical and has_clean:
            out["classical"] = {"method": self.classical_name, "clean_snr_db": _db(csig, fcerr)}
        return out


def _masked_sums(pred: torch.Tensor, target: torch.Tensor, baseline: torch.Tensor,
                 where: torch.Tensor) -> torch.Tensor:
    """[Σ t², Σ (p − t)², Σ (b − t)², n] over the samples ``where`` is True."""
    w = where.expand_as(target)
    t, p, b = target.double()[w], pred.double()[w], baseline.double()[w]
    return torch.stack([(t * t).sum(), ((p - t) ** 2).sum(), ((b - t) ** 2).sum(),
                        torch.tensor(float(t.numel()), dtype=torch.float64)])


class ConfusionMetrics:
    """Metrics from a K × K confusion matrix (rows: truth, columns: prediction)."""

    def __init__(self, classes: int, majority: int, per_patch: bool, ignore_index: int | None = None) -> None:
        self.k, self.majority, self.per_patch, self.ignore_index = classes, majority, per_patch, ignore_index
        self.sums = torch.zeros(classes * classes, dtype=torch.float64)

    def update(self, pred: torch.Tensor, target: torch.Tensor, baseline: torch.Tensor | None = None) -> None:
        """Add a batch of predicted and true labels (the baseline is the majority class, not an input)."""
        p, t = pred.reshape(-1).long(), target.reshape(-1).long()
        keep = (t >= 0) & (t < self.k)
        if self.ignore_index is not None:
            keep &= t != self.ignore_index
        idx = t[keep] * self.k + p[keep].clamp(0, self.k - 1)
        self.sums += torch.bincount(idx.cpu(), minlength=self.k * self.k).double()

    @property
    def confusion(self) -> np.ndarray:
        return self.sums.numpy().reshape(self.k, self.k)

    def compute(self) -> dict:
        cm = self.confusion
        out = _scores(cm, self.per_patch)
        base = np.zeros_like(cm)
        base[:, self.majority] = cm.sum(axis=1)
        out["baseline"] = _scores(base, self.per_patch, with_matrix=False)
        return out


def _safe(a: float, b: float) -> float:
    return float(a / b) if b > 0 else 0.0


def _scores(cm: np.ndarray, per_patch: bool, with_matrix: bool = True) -> dict:
    k = cm.shape[0]
    total = cm.sum()
    tp = np.diag(cm)
    truth, predicted = cm.sum(axis=1), cm.sum(axis=0)
    iou = np.array([_safe(tp[i], truth[i] + predicted[i] - tp[i]) for i in range(k)])
    recall = np.array([_safe(tp[i], truth[i]) for i in range(k)])
    precision = np.array([_safe(tp[i], predicted[i]) for i in range(k)])
    f1 = np.array([_safe(2 * p * r, p + r) for p, r in zip(precision, recall)])
    present = truth > 0
    seen = present | (predicted > 0)  # mIoU's classes: in the truth or the prediction (benchmark)
    out: dict = {"accuracy": _safe(tp.sum(), total)}
    if k == 2:
        out.update(precision=float(precision[1]), recall=float(recall[1]), f1=float(f1[1]), iou=float(iou[1]))
    if k > 2 or not per_patch:
        freq = truth / total if total else truth
        out.update(
            pixel_accuracy=out["accuracy"],
            class_accuracy=[float(v) for v in recall],
            mean_class_accuracy=float(recall[present].mean()) if present.any() else 0.0,
            fw_iou=float((freq * iou).sum()),
            miou=float(iou[seen].mean()) if seen.any() else 0.0,
        )
    if per_patch and k > 2:
        out.update(precision_macro=float(precision[present].mean()) if present.any() else 0.0,
                   recall_macro=float(recall[present].mean()) if present.any() else 0.0,
                   f1_macro=float(f1[present].mean()) if present.any() else 0.0)
    if with_matrix:
        out["confusion"] = cm.astype(np.int64).tolist()
    return out


class ScalarMetrics:
    """MSE, MAE and R² of one value per patch; baseline = the training mean."""

    def __init__(self, train_mean: float) -> None:
        self.mean = train_mean
        # [n, Σ y, Σ y², Σ (ŷ − y)², Σ |ŷ − y|, Σ (mean − y)², Σ |mean − y|]
        self.sums = torch.zeros(7, dtype=torch.float64)

    def update(self, pred: torch.Tensor, target: torch.Tensor, baseline: torch.Tensor | None = None) -> None:
        """Add a batch of predicted and true values (the baseline is the training mean, not an input)."""
        y, p = target.double().reshape(-1), pred.double().reshape(-1)
        e, b = p - y, self.mean - y
        self.sums += torch.stack([torch.tensor(float(y.numel()), dtype=torch.float64), y.sum(), (y * y).sum(),
                                  (e * e).sum(), e.abs().sum(), (b * b).sum(), b.abs().sum()])

    def compute(self) -> dict:
        n, sy, syy, see, sae, sbb, sab = self.sums.tolist()
        n = max(n, 1.0)
        var = syy - sy * sy / n
        r2 = 1 - see / var if var > 0 else 0.0
        r2_base = 1 - sbb / var if var > 0 else 0.0
        return {"mse": see / n, "mae": sae / n, "r2": r2,
                "baseline": {"mse": sbb / n, "mae": sab / n, "r2": r2_base}}


class PickMetrics:
    """Pick scores summed over validation windows (see :class:`geocnn.picking.PickValidation`); its
    entries join the task's metrics, STA/LTA's under ``classical``."""

    def __init__(self, picks: PickValidation) -> None:
        self.picks = picks
        self.sums = torch.zeros(picks.shape, dtype=torch.float64)

    def update(self, probs: torch.Tensor, origins: Sequence[np.ndarray]) -> None:
        """Add a batch: class probabilities (B, K, samples) of the windows at ``origins`` (station, sample)."""
        for p, (station, first) in zip(probs.double().cpu().numpy(), origins):
            self.sums += torch.from_numpy(self.picks.tally(p, int(station), int(first)))

    def compute(self) -> dict:
        return self.picks.scores(self.sums.numpy())


# ----------------------------------------------------------------------------- the accumulator of each task
# (classes, majority class, ignore_index, training mean) → the task's validation accumulator

Accumulator = RegressionMetrics | HiddenMetrics | ConfusionMetrics | ScalarMetrics

ACCUMULATORS: dict[str, Callable[[int | None, int, int | None, float | None], Accumulator]] = {
    "values": lambda classes, majority, ignore, mean: RegressionMetrics(),
    "dense_classes": lambda classes, majority, ignore, mean: ConfusionMetrics(classes, majority, per_patch=False,
                                                                              ignore_index=ignore),
    "patch_classes": lambda classes, majority, ignore, mean: ConfusionMetrics(classes, majority, per_patch=True,
                                                                              ignore_index=ignore),
    "scalar": lambda classes, majority, ignore, mean: ScalarMetrics(mean),
    "hidden": lambda classes, majority, ignore, mean: HiddenMetrics(),
}
"""Each accumulator a task may name (:data:`geocnn.tasks.AccumulatorName`), by that name."""
