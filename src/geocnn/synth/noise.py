"""Field-like seismic noise: what a denoiser meets on a real survey, not white noise.

Real noise is not independent from sample to sample or trace to trace. This module builds it
from five parts, each a knob of :class:`FieldNoise`:

- **band-limited in time**: white Gaussian noise shaped by a trapezoid pass band ``band_hz``
  (f1-f2 ramp up, f2-f3 flat, f3-f4 ramp down, cosine tapers), so it shares the signal's band
  and is correlated over a few samples along the trace;
- **correlated across traces**: a first-order autoregression along every lateral axis, so the
  correlation between traces ``k`` apart is ``lateral_corr ** k`` (0.5 between neighbours);
- **spikes**: a share ``spikes`` of samples gets an impulse of ``spike_amp`` × the noise level;
- **bad traces**: a share ``bad_traces`` of traces carries ``bad_gain`` × more noise;
- **a smooth level trend**: the noise level varies by ± ``trend`` over the survey and along
  time (e.g. swell noise stronger at one edge).

Arrays are grid order: lateral axes first, samples last. Everything is seeded by the caller's
generator. :func:`theoretical_correlation` gives the correlation the stationary part should
have, so an estimate made from noisy data can be checked against it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class FieldNoise:
    """How field-like noise is made (see the module docstring)."""

    band_hz: tuple[float, float, float, float] = (5.0, 10.0, 45.0, 65.0)
    lateral_corr: float = 0.5  # correlation between neighbouring traces, along every lateral axis
    spikes: float = 5e-4  # share of samples with an impulse
    spike_amp: float = 8.0  # impulse height, × the noise level
    bad_traces: float = 0.02  # share of traces with stronger noise
    bad_gain: float = 4.0  # their noise level, × the others'
    trend: float = 0.3  # the noise level varies smoothly between 1 − trend and 1 + trend


def band_filter(n: int, dt_s: float, band_hz: tuple[float, float, float, float]) -> np.ndarray:
    """Amplitude response (rfft bins of ``n`` samples) of the trapezoid band with cosine tapers."""
    f1, f2, f3, f4 = band_hz
    if not 0 <= f1 <= f2 <= f3 <= f4:
        raise ValueError(f"band corners must rise: {band_hz}")
    f = np.fft.rfftfreq(n, dt_s)
    amp = np.zeros_like(f)
    amp[(f >= f2) & (f <= f3)] = 1.0
    up = (f > f1) & (f < f2)
    amp[up] = 0.5 - 0.5 * np.cos(np.pi * (f[up] - f1) / (f2 - f1))
    down = (f > f3) & (f < f4)
    amp[down] = 0.5 + 0.5 * np.cos(np.pi * (f[down] - f3) / (f4 - f3))
    return amp


def band_limited(shape: tuple[int, ...], dt_s: float, band_hz: tuple[float, float, float, float],
                 rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise of unit variance, band-limited along the last axis (padded, so not periodic)."""
    n = shape[-1]
    pad = n  # a filter applied with the FFT wraps around: filter twice the length, keep the middle
    white = rng.standard_normal((*shape[:-1], n + 2 * pad))
    amp = band_filter(n + 2 * pad, dt_s, band_hz)
    out = np.fft.irfft(np.fft.rfft(white, axis=-1) * amp, n + 2 * pad, axis=-1)[..., pad:pad + n]
    # variance of filtered white noise: mean of |H|² over the full spectrum
    power = (2 * np.sum(amp[1:] ** 2) + amp[0] ** 2 - (amp[-1] ** 2 if (n + 2 * pad) % 2 == 0 else 0.0))
    return out / np.sqrt(max(power / (n + 2 * pad), 1e-12))


def correlate_laterally(x: np.ndarray, rho: float, axis: int) -> np.ndarray:
    """AR(1) along ``axis``: stationary, unit variance in, unit variance out, lag-k correlation rho**k."""
    if rho == 0:
        return x
    if not -1 < rho < 1:
        raise ValueError(f"lateral correlation must lie in (-1, 1), got {rho}")
    x = np.moveaxis(x, axis, 0).copy()
    gain = np.sqrt(1 - rho * rho)
    for k in range(1, x.shape[0]):
        x[k] = rho * x[k - 1] + gain * x[k]
    return np.moveaxis(x, 0, axis)


def smooth_level(shape: tuple[int, ...], trend: float, rng: np.random.Generator) -> np.ndarray:
    """A smooth positive field between 1 − trend and 1 + trend: a random low-order cosine in every axis."""
    if trend == 0:
        return np.ones(shape)
    field = np.zeros(shape)
    for _ in range(3):
        term = np.ones(shape)
        for axis, n in enumerate(shape):
            k = rng.uniform(0.2, 1.2) * np.pi / max(n - 1, 1)
            phase = rng.uniform(0, 2 * np.pi)
            line = np.cos(k * np.arange(n) + phase)
            term = term * line.reshape([-1 if a == axis else 1 for a in range(len(shape))])
        field += term
    field /= max(np.abs(field).max(), 1e-12)
    return 1.0 + trend * field


def field_noise(shape: tuple[int, ...], dt_s: float, rng: np.random.Generator,
                spec: FieldNoise = FieldNoise()) -> np.ndarray:
    """Field-like noise of ``shape`` (lateral axes, samples), float64, normalised to unit std."""
    noise = band_limited(shape, dt_s, spec.band_hz, rng)
    for axis in range(len(shape) - 1):
        noise = correlate_laterally(noise, spec.lateral_corr, axis)
    level = smooth_level(shape, spec.trend, rng)
    traces = shape[:-1]
    bad = rng.random(traces) < spec.bad_traces
    level = level * np.where(bad, spec.bad_gain, 1.0)[..., None]
    noise = noise * level
    spikes = rng.random(shape) < spec.spikes
    noise[spikes] += spec.spike_amp * rng.choice((-1.0, 1.0), int(spikes.sum())) * level[spikes]
    return noise / noise.std()


def add_field_noise(clean: np.ndarray, dt_s: float, snr_db: float, rng: np.random.Generator,
                    spec: FieldNoise = FieldNoise()) -> np.ndarray:
    """``clean`` + field noise scaled so that 10 log10(Σ clean² / Σ noise²) = ``snr_db`` (float32)."""
    noise = field_noise(clean.shape, dt_s, rng, spec)
    scale = np.sqrt(np.mean(np.square(clean, dtype=np.float64)) / 10 ** (snr_db / 10))
    return (clean + scale * noise).astype(np.float32)


def theoretical_correlation(n: int, dt_s: float, spec: FieldNoise = FieldNoise(), lags: int = 8
                            ) -> dict[str, np.ndarray]:
    """Correlation of the stationary part at lags 0..``lags``: ``sample`` (the band's normalised
    autocorrelation) and ``trace`` (rho**k, every lateral axis)."""
    size = 4 * n
    power = band_filter(size, dt_s, spec.band_hz) ** 2
    acf = np.fft.irfft(power, size)
    return {"sample": acf[:lags + 1] / acf[0], "trace": spec.lateral_corr ** np.arange(lags + 1)}
