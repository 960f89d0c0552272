"""The classic STA/LTA trigger (ObsPy's), the picks a seismologist gets without a network.

The ratio of the short-term to the long-term average of the squared Z component
(:func:`obspy.signal.trigger.classic_sta_lta`) switches a trigger on where it rises above ``on`` and off
where it falls below ``off`` (:func:`obspy.signal.trigger.trigger_onset`); each trigger's onset is a P pick.
The defaults are the textbook settings (STA 0.5 s, LTA 5 s, on 3, off 1.5), not tuned on any data: the
baseline geocnn's P picks stand beside in validation and in ``benchmarks/field_picking.py``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

import numpy as np

from geocnn.grids.waveforms import require_obspy


@dataclass(frozen=True)
class StaLta:
    """Classic STA/LTA settings (seconds, ratios)."""

    sta_s: float = 0.5
    lta_s: float = 5.0
    on: float = 3.0
    off: float = 1.5

    @property
    def name(self) -> str:
        """How the logs and pictures call it: ``STA/LTA (0.5/5 s, on 3, off 1.5)``."""
        return f"STA/LTA ({self.sta_s:g}/{self.lta_s:g} s, on {self.on:g}, off {self.off:g})"

    def context(self, rate: float) -> int:
        """Samples the ratio needs before its first defined value (the long window)."""
        return int(round(self.lta_s * rate))

    def onsets(self, z: np.ndarray, rate: float, first: int = 0) -> np.ndarray:
        """Samples of the trigger onsets of trace ``z`` at ``first`` or later (earlier samples only feed
        the averages: give :meth:`context` samples before the span to be picked).

        >>> z = np.r_[np.full(1000, 0.1), np.full(200, 5.0)] * np.tile([1, -1], 600)
        >>> StaLta().onsets(z, 100.0).tolist()
        [1000]
        """
        require_obspy()  # one line naming the extra when ObsPy is missing
        trigger = importlib.import_module("obspy.signal.trigger")
        z = np.nan_to_num(np.asarray(z, dtype=np.float64))
        sta, lta = int(round(self.sta_s * rate)), self.context(rate)
        if len(z) <= lta:
            return np.zeros(0, dtype=np.int64)
        on = trigger.trigger_onset(trigger.classic_sta_lta(z, sta, lta), self.on, self.off)
        starts = np.asarray([int(a) for a, _ in on], dtype=np.int64)
        return starts[starts >= first]
