"""Validation metric names and their directions: what a config check, early stopping and the choice
of ``best.pt`` need to know about a metric, without computing one.

Each name is defined here once for all tasks (a task lists the names it reports, see
:mod:`geocnn.tasks`); the accumulators that compute them are torch code in :mod:`geocnn.metrics`.

Example
-------
>>> metric("f1").better(0.6, 0.5), metric("mse").better(0.6, 0.5)
(True, False)
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Metric:
    """A validation metric's name and direction (defined here once for all tasks)."""

    name: str
    higher_is_better: bool

    def better(self, value: float, best: float | None) -> bool:
        """Whether ``value`` beats ``best`` (anything beats no value yet)."""
        if best is None:
            return True
        return value > best if self.higher_is_better else value < best


# clean_snr_db can head a run's figures but is no task's metric_names: never a best_metric (evaluation only)
HIGHER_IS_BETTER = ("snr_db", "clean_snr_db", "accuracy", "pixel_accuracy", "precision", "recall", "f1", "iou",
                    "miou", "fw_iou", "mean_class_accuracy", "r2", "f1_macro", "precision_macro", "recall_macro")
LOWER_IS_BETTER = ("val_loss", "mse", "mae")
METRICS: dict[str, Metric] = {**{n: Metric(n, True) for n in HIGHER_IS_BETTER},
                              **{n: Metric(n, False) for n in LOWER_IS_BETTER}}


# pick scores, one per phase (``pick_f1_P``: geocnn.picking.PickValidation); the residuals' mean has no direction
PICK_FIGURES: dict[str, bool] = {"precision": True, "recall": True, "f1": True, "residual_std": False}


def pick_metric(figure: str, phase: str) -> Metric:
    """The record of a phase's pick figure, e.g. ``pick_f1_P``.

    >>> pick_metric("f1", "P")
    Metric(name='pick_f1_P', higher_is_better=True)
    """
    return Metric(f"pick_{figure}_{phase}", PICK_FIGURES[figure])


def pick_metric_names(phases: tuple[str, ...]) -> tuple[str, ...]:
    """The pick figures a run labelled by phases may choose ``best.pt`` by (``train.best_metric``).

    >>> pick_metric_names(("P", "S"))[:3]
    ('pick_precision_P', 'pick_precision_S', 'pick_recall_P')
    """
    return tuple(pick_metric(f, p).name for f in PICK_FIGURES for p in phases)


def metric(name: str) -> Metric:
    """The record of a metric name, a phase's pick figure included (a KeyError here is a bug: names are
    checked at config load)."""
    if name in METRICS:
        return METRICS[name]
    figure = next((f for f in PICK_FIGURES if name.startswith(f"pick_{f}_")), None)
    if figure is None:
        raise KeyError(name)
    return pick_metric(figure, name[len(f"pick_{figure}_"):])
