"""How far the noise of a survey is correlated, measured from the noisy data alone (no clean twin).

A blind-spot denoiser must not see the samples whose noise is correlated with the one it
predicts (:mod:`geocnn.selfsup.blindspots`), so it needs the noise's correlation along every axis. The
data hold signal too, and the signal is far more correlated than the noise; it has to go first:

1. every trace is divided by its robust level (1.4826 × the median absolute deviation) and
   clipped at ±4, so bad traces, a level trend and spikes do not dominate the sums;
2. along each lateral axis, every line is predicted by f-x prediction (:mod:`geocnn.classical.fx`,
   in small overlapping windows of ``WINDOW`` traces × samples, so the filters follow the local
   dips) from traces ``GAP + 1`` and more away on both sides. Seismic signal (locally plane events) is
   predicted; noise is predicted only through those far traces, whose noise is nearly independent
   of the predicted trace's. The residual is the noise plus a little unpredicted signal, and a
   sum of independent noise copies keeps the noise's correlation shape;
3. the residuals' normalised autocorrelation at lags 1..``LAGS_TRACES`` along the line (in
   traces) and 1..``LAGS_SAMPLES`` along the samples (averaged over every lateral axis);
4. the noise's share of the data's power: the same prediction's residual on the lines as read
   (not scaled per trace: bad traces count with their real level) over the lines' power. A blind
   denoiser's posterior (:mod:`geocnn.selfsup.posterior`) needs this level, and it gives an SNR estimate.

On :mod:`geocnn.synth.noise`'s field-like noise (band-limited in time, AR(1) 0.5 across traces)
added to the sample survey and to a :mod:`geocnn.synth.faults` cube at SNR 2 dB, the estimate is
within 0.06 of :func:`geocnn.synth.noise.theoretical_correlation` at lateral lags 1-2 and within
0.11 at sample lags 1-4 (tests/test_noisecorr.py). It reads low rather than high: the prediction
fits a little of the noise too (noise with no signal at all reads 0.37 at lateral lag 1 for 0.5),
and the predicting traces pull lag ``GAP + 1`` below zero. The noise share reads 3-12 % low on
those cubes (the small windows fit a little noise; tests/test_noisecorr.py); where the signal is
not locally plane it reads high instead (unpredicted signal counts as noise). NumPy only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from geocnn.classical.fx import FxParams, fx_decon

if TYPE_CHECKING:
    from geocnn.grids.grid import Grid

GAP = 3  # traces skipped on each side of the predicted trace
LAGS_TRACES = 4
LAGS_SAMPLES = 8
CORRELATED = 1 / 3  # |correlation| from which two samples' noise counts as correlated
MAX_LINES = 64  # lines read per lateral axis (a bounded, seeded sample)
MAX_TRACES = 96  # traces read per line
MAX_SAMPLES = 256  # samples read per trace
WINDOW = (16, 10)  # traces × samples of a prediction window: short, so the filters follow local dips
# the residual is computed in sample units (dt = 1), so window_s counts samples; every frequency is predicted
PREDICTION = FxParams(window_traces=WINDOW[0], filter_len=4, window_s=WINDOW[1], fmin_hz=0.0, fmax_fraction=1.0,
                      gap=GAP)


@dataclass(frozen=True)
class NoiseCorrelation:
    """The measured noise correlation: lags 0.. along each lateral axis and along the samples."""

    lateral: dict[str, tuple[float, ...]]  # axis → correlation at lags 0..LAGS_TRACES (lag 0 = 1)
    samples: tuple[float, ...]  # along the trace, lags 0..LAGS_SAMPLES
    sample_axis: str
    lines: int  # lines the measurement used
    share: float = float("nan")  # the noise's share of the data's power (residual / lines, as read)

    def snr_db(self) -> float:
        """The signal-to-noise ratio the noise share implies, 10 log10((1 − share) / share)."""
        return float(10 * np.log10(max(1 - self.share, 1e-12) / max(self.share, 1e-12)))

    def along(self, axis: str, lags: np.ndarray) -> np.ndarray:
        """The measured correlation along ``axis`` at integer ``lags`` (either sign): 0 beyond the
        measured lags, and beyond lag 0 on an axis that was not measured (counted as uncorrelated)."""
        values = np.asarray(self.samples if axis == self.sample_axis else self.lateral.get(axis, (1.0,)))
        k = np.abs(np.asarray(lags))
        return np.where(k < len(values), values[np.minimum(k, len(values) - 1)], 0.0)

    def correlation(self, axes: Sequence[str], offsets: Sequence[np.ndarray]) -> np.ndarray:
        """The noise's correlation between samples ``offsets`` apart (one array of lags per axis of
        ``axes``, broadcast together): the product of the correlation along each axis (a separable
        model of the measured lags)."""
        out = np.ones(())
        for axis, lags in zip(axes, offsets):
            out = out * self.along(axis, lags)
        return out

    def extent(self, axis: str) -> int:
        """The largest lag (traces, or samples along the sample axis) whose |correlation| ≥ CORRELATED;
        0 when the noise is uncorrelated along ``axis`` (beyond the measured lags: the last one)."""
        values = self.samples if axis == self.sample_axis else self.lateral[axis]
        strong = [k for k, c in enumerate(values) if k and abs(c) >= CORRELATED]
        return max(strong, default=0)

    def lines_text(self) -> list[str]:
        """One line per axis, e.g. ``crossline: 0.52 0.27 0.08 -0.10 (lags 1-4): correlated over 1 trace``."""
        out = []
        for axis, values in (*self.lateral.items(), (self.sample_axis, self.samples)):
            unit = "sample" if axis == self.sample_axis else "trace"
            k = self.extent(axis)
            what = f"correlated over {k} {unit}{'s' if k != 1 else ''}" if k else "uncorrelated"
            out.append(f"{axis}: {' '.join(f'{c:.2f}' for c in values[1:])} (lags 1-{len(values) - 1}): {what}")
        if np.isfinite(self.share):
            out.append(f"level: {100 * self.share:.0f} % of the data's power (SNR ≈ {self.snr_db():.1f} dB)")
        return out

    def to_dict(self) -> dict:
        """JSON-able: correlations per axis and the extent, in traces or samples."""
        axes = {**self.lateral, self.sample_axis: self.samples}
        return {"method": f"f-x prediction residual from traces beyond ±{GAP}, robust per-trace level",
                "threshold": CORRELATED, "lines": self.lines, "noise_share": round(float(self.share), 4),
                "snr_db": round(self.snr_db(), 2),
                "axes": {a: {"correlation": [round(float(c), 4) for c in v], "extent": self.extent(a)}
                         for a, v in axes.items()}}


def robust_traces(lines: np.ndarray) -> np.ndarray:
    """``lines`` (..., traces, samples) with every trace divided by 1.4826 × its median absolute
    deviation and clipped at ±4 (a dead trace stays zero)."""
    x = lines - np.median(lines, axis=-1, keepdims=True)
    level = 1.4826 * np.median(np.abs(x), axis=-1, keepdims=True)
    return np.clip(x / np.where(level > 0, level, 1.0), -4.0, 4.0)


def residual(line: np.ndarray) -> np.ndarray:
    """What far-trace f-x prediction leaves of one (traces, samples) line: the noise estimate
    (every frequency is predicted, so the sample interval does not matter)."""
    return line - fx_decon(line, 1.0, PREDICTION)


def autocorrelation(r: np.ndarray, axis: int, lags: int) -> np.ndarray:
    """Σ r[i] r[i + k] / Σ r² along ``axis`` for k = 0..lags (every other axis summed over)."""
    r = np.moveaxis(r, axis, -1)
    n = r.shape[-1]
    power = float(np.sum(r * r))
    if power == 0:
        return np.zeros(lags + 1)
    return np.array([float(np.sum(r[..., :n - k] * r[..., k:])) / power for k in range(min(lags, n - 1) + 1)])


def measure_lines(lines_by_axis: dict[str, np.ndarray], sample_axis: str = "sample") -> NoiseCorrelation:
    """The noise correlation from lines along each lateral axis: ``{axis: (lines, traces, samples)}``.

    Example
    -------
    >>> rng = np.random.default_rng(0)
    >>> white = {"trace": rng.standard_normal((16, 48, 100))}
    >>> m = measure_lines(white)
    >>> m.extent("trace"), m.extent("sample")
    (0, 0)
    """
    lateral, products, count, power = {}, np.zeros(LAGS_SAMPLES + 1), 0, np.zeros(2)
    for axis, lines in lines_by_axis.items():
        lines = np.asarray(lines, np.float64)
        res = np.stack([residual(line) for line in robust_traces(lines)])
        lateral[axis] = tuple(autocorrelation(res, 1, LAGS_TRACES))
        # along the samples: sums of products over every axis's residuals, normalised once
        products += _padded(autocorrelation(res, 2, LAGS_SAMPLES), LAGS_SAMPLES) * float(np.sum(res * res))
        count += len(lines)
        power += noise_power(lines)
    share = float(power[0] / power[1]) if power[1] > 0 else float("nan")
    return NoiseCorrelation(lateral, tuple(products / (products[0] or 1.0)), sample_axis, count, share)


def noise_power(lines: np.ndarray) -> np.ndarray:
    """[Σ residual², Σ (line − its mean)²] of lines as read (lines, traces, samples): the far-trace
    prediction residual's power beside the data's, for the noise share."""
    centred = lines - lines.mean(axis=(1, 2), keepdims=True)
    res = np.stack([residual(line) for line in centred])
    return np.array([float(np.sum(res * res)), float(np.sum(centred * centred))])


def _padded(values: np.ndarray, lags: int) -> np.ndarray:
    return np.concatenate([values, np.zeros(lags + 1 - len(values))])


def min_traces() -> int:
    """Traces a line needs for a measurement: a prediction from both sides of one trace."""
    return 2 * (GAP + PREDICTION.filter_len) + 1


def read_lines(grid: Grid, axis: int, max_lines: int, seed: int) -> np.ndarray:
    """(lines × channels, traces, samples): up to ``max_lines`` segments of lines of ``grid`` along
    lateral ``axis`` (at most MAX_TRACES traces × MAX_SAMPLES samples each, so memory is bounded
    whatever the survey) at seeded random positions."""
    rng = np.random.default_rng([seed, axis])
    others = [a for a in range(grid.ndim - 1) if a != axis]
    count = int(np.prod([grid.shape[a] for a in others])) if others else 1
    picks = np.sort(rng.choice(count, min(count, max_lines), replace=False))
    n, nt = grid.shape[axis], grid.shape[-1]
    out = []
    for flat in picks:
        at = np.unravel_index(flat, [grid.shape[a] for a in others]) if others else ()
        window = [slice(int(i), int(i) + 1) for i in at]
        start = int(rng.integers(0, n - min(n, MAX_TRACES) + 1))
        t0 = int(rng.integers(0, nt - min(nt, MAX_SAMPLES) + 1))
        window.insert(axis, slice(start, start + min(n, MAX_TRACES)))
        window.append(slice(t0, t0 + min(nt, MAX_SAMPLES)))
        block = grid.read(tuple(window))
        out.append(block.reshape(grid.channels, min(n, MAX_TRACES), min(nt, MAX_SAMPLES)))
    return np.concatenate(out)


def measure_grid(grid: Grid, max_lines: int = MAX_LINES, seed: int = 0) -> NoiseCorrelation | None:
    """The noise correlation of ``grid`` (lateral axes, samples last) from a bounded sample of lines
    (``max_lines`` per lateral axis); None when no lateral axis has ``min_traces()`` traces."""
    lines = {grid.axes[a]: read_lines(grid, a, max_lines, seed) for a in range(grid.ndim - 1)
             if grid.shape[a] >= min_traces()}
    if not lines:
        return None
    return measure_lines(lines, grid.axes[-1])
