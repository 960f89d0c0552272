"""Early stopping: end a run when its chosen validation metric has stopped improving.

An epoch counts as an improvement when it beats the best value so far by more than
``min_delta`` in the metric's own direction (higher for F1, lower for a loss); after
``patience`` epochs in a row without one, training stops. The state is three numbers, saved in
every checkpoint, so a resumed run stops at the same epoch as an uninterrupted one.

This best value moves only by steps larger than ``min_delta``, so it can differ from the one
that selects ``best.pt`` (any improvement at all).
"""

from __future__ import annotations

from dataclasses import dataclass

from geocnn.metrics import Metric


@dataclass
class EarlyStopping:
    """Patience counter on one metric.

    Examples
    --------
    >>> from geocnn.metrics import METRICS
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

    def to_dict(self) -> dict:
        """What metrics.jsonl and the checkpoint record."""
        return {"best": self.best, "best_epoch": self.best_epoch, "waited": self.waited,
                "patience": self.patience, "min_delta": self.min_delta}

    def restore(self, state: dict) -> None:
        """Continue from a checkpoint's :meth:`to_dict` (empty for a run saved without early stopping)."""
        if state:
            self.best, self.best_epoch, self.waited = state["best"], state["best_epoch"], state["waited"]
