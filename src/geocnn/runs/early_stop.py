"""Which epoch ``best.pt`` holds, and early stopping: both judge an epoch by ``train.best_metric``.

:class:`BestTracker` keeps the best value so far: any improvement at all moves ``best.pt`` to that
epoch. The weights of ``train.init_from``, scored before the first step, are a candidate too
(epoch 0), so fine-tuning never hands ``predict`` weights worse than it started from.

:class:`EarlyStopping` ends a run when the metric has stopped improving: an epoch counts as an
improvement when it beats the best value so far by more than ``min_delta`` in the metric's own
direction (higher for F1, lower for a loss); after ``patience`` epochs in a row without one,
training stops. It counts training epochs only (epoch 0 is not one). Its state is three numbers,
saved in every checkpoint, so a resumed run stops at the same epoch as an uninterrupted one. Its
best value moves only by steps larger than ``min_delta``, so it can differ from the one that
selects ``best.pt``.
"""

from __future__ import annotations

from dataclasses import dataclass

from geocnn.metric_names import Metric, metric
from geocnn.runs.metrics_log import Best, EarlyStopState, Validation


@dataclass
class EarlyStopping:
    """Patience counter on one metric.

    Examples
    --------
    >>> from geocnn.metric_names import METRICS
    >>> stop = EarlyStopping(METRICS["f1"], patience=2, min_delta=0.01)
    >>> [stop.update(e, v) for e, v in enumerate([0.5, 0.6, 0.605, 0.59], start=1)]
    [False, False, False, True]
    >>> (stop.best_epoch, stop.waited)
    (2, 2)
    """

    metric: Metric
    patience: int
    min_delta: float = 0.0
    best: float | None = None
    best_epoch: int | None = None
    waited: int = 0  # epochs since best_epoch

    @property
    def stopped(self) -> bool:
        return self.waited >= self.patience

    def improves(self, value: float) -> bool:
        """Whether ``value`` beats the best by more than ``min_delta``."""
        if self.best is None:
            return True
        gain = value - self.best if self.metric.higher_is_better else self.best - value
        return gain > self.min_delta

    def update(self, epoch: int, value: float | None) -> bool:
        """Count ``epoch``'s value (None: no value, counts as no improvement); True when training should stop."""
        if value is not None and self.improves(value):
            self.best, self.best_epoch, self.waited = value, epoch, 0
        else:
            self.waited += 1
        return self.stopped

    def state(self) -> EarlyStopState:
        """What metrics.jsonl records."""
        return EarlyStopState(self.best, self.best_epoch, self.waited, self.patience, self.min_delta)

    def to_dict(self) -> dict:
        """What the checkpoint records."""
        return self.state().to_dict()

    def restore(self, state: dict) -> None:
        """Continue from a checkpoint's :meth:`to_dict` (empty for a run saved without early stopping)."""
        if state:
            self.best, self.best_epoch, self.waited = state["best"], state["best_epoch"], state["waited"]


@dataclass(frozen=True)
class Verdict:
    """What one epoch's scores decided: ``best.pt`` moves to it (``improved``), training stops
    (``stopped_early``: None without early stopping, or for a partial epoch, which it does not count)."""

    improved: bool
    stopped_early: bool | None = None
    early_stop: EarlyStopState | None = None


@dataclass
class BestTracker:
    """The best epoch by ``train.best_metric`` so far, and early stopping on the same metric.

    ``headline`` is the metric every view of the run leads with — the epoch line, ``loss.png``'s
    metric panel, the last line, ``best.headline`` in ``metrics.jsonl`` — decided once by the task
    record (:meth:`geocnn.tasks.Task.headline`: the clean twin's figure when there is one) and read
    from here by all of them.

    Examples
    --------
    >>> t = BestTracker("f1", headline="f1")
    >>> [t.judge(e, 0.3, Validation({"f1": v}), 0.5).improved for e, v in [(0, 0.4), (1, 0.35), (2, 0.5)]]
    [True, False, True]
    >>> t.record()
    Best(metric='f1', value=0.5, epoch=2, headline='f1')
    """

    metric_name: str
    headline: str
    best: float | None = None
    best_epoch: int | None = None
    stopper: EarlyStopping | None = None

    @classmethod
    def of(cls, best_metric: str, headline: str, early_stop=None) -> BestTracker:
        """The tracker of ``train.best_metric``, with ``train.early_stop`` (its section, or None)."""
        stopper = (EarlyStopping(metric(best_metric), early_stop.patience, early_stop.min_delta)
                   if early_stop is not None else None)
        return cls(best_metric, headline, stopper=stopper)

    @property
    def stopped(self) -> bool:
        """Early stopping has ended the run."""
        return self.stopper is not None and self.stopper.stopped

    def score(self, val_loss: float | None, val: Validation, train_loss: float | None) -> float | None:
        """An epoch's value of the metric. Without a validation block ``val_loss`` is the training loss."""
        value = val_loss if self.metric_name == "val_loss" else val.value(self.metric_name)
        if value is None and self.metric_name == "val_loss":
            value = train_loss
        return value

    def judge(self, epoch: int, val_loss: float | None, val: Validation, train_loss: float | None,
              partial: bool = False) -> Verdict:
        """Count ``epoch``: does ``best.pt`` move to it, and does training stop?"""
        value = self.score(val_loss, val, train_loss)
        improved = value is not None and metric(self.metric_name).better(value, self.best)
        if improved:
            self.best, self.best_epoch = value, epoch
        if self.stopper is None or partial or epoch == 0:
            return Verdict(improved)
        return Verdict(improved, self.stopper.update(epoch, value), self.stopper.state())

    def record(self) -> Best:
        """What metrics.jsonl records."""
        return Best(self.metric_name, self.best, self.best_epoch, self.headline)

    def restore(self, best: float | None, best_epoch: int | None, early_stop: dict) -> None:
        """Continue from a checkpoint's best value and epoch and early-stopping state."""
        self.best, self.best_epoch = best, best_epoch
        if self.stopper is not None:
            self.stopper.restore(early_stop)
