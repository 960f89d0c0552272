"""The Bayesian use of the centre: what a blind denoiser's prediction and the noisy samples it
never read say together about the signal.

A network blind over a region (:mod:`geocnn.model.blind`) predicts each sample ``p`` from its
surroundings only, so it never sees the sample itself, nor its nearest traces — the noise there
would be learned, but so is much of the signal lost. Laine et al. (2019) and Krull et al. (2020,
PN2V) combine the blind prediction (a prior on the signal) with the noisy value (its likelihood);
here the noise is correlated across traces and along the trace, so the combination is the linear
minimum-mean-square-error (Wiener) estimate from the residuals ``r = x − p`` around each sample:

    ŝ(c) = p(c) + Σ_o h(o) r(c + o),   o over the ``posterior`` layer's kernel

with taps ``h`` solving the normal equations Σ_o' h(o') C_r(o' − o) = b(o), where, for signal s
and noise n (x = s + n), s − p = r − n:

- C_r(δ) = E[r(c) r(c + δ)], measured on the network's residuals on training patches;
- b(o) = E[r(c + o) (r(c) − n(c))] = C_r(o) − σ² K(o) + σ² Σ_Δ J(Δ) K(o + Δ), with σ² the noise
  power and K the noise correlation, both measured from the noisy input alone
  (:mod:`geocnn.classical.noisecorr`: the far-trace f-x residual's power and correlation per
  axis, as a separable model), and J(Δ) = E[∂p(c)/∂x(c + Δ)] the network's mean response to its
  input (autograd). The last term is the noise the blind prediction still carries from the traces
  it reads (correlated with the centre's): the posterior takes it out again.

Where the noise is strong the taps shrink toward p; where the signal is hard to predict they
lean on the sample. A NumPy-only fit of a handful of numbers, redone after every epoch
(:func:`geocnn.selfsup.blindplan.fit_posterior` reads the network; this module only solves).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from geocnn.classical.noisecorr import NoiseCorrelation


@dataclass(frozen=True)
class PosteriorFit:
    """The taps of one fit and the figures they came from (model units)."""

    taps: np.ndarray  # the posterior layer's kernel shape
    noise_var: float  # σ²: the noise power in the model's units
    residual_var: float  # C_r(0): the blind prediction's mean squared residual
    leak: float  # Σ_Δ J(Δ) K(Δ): the share of the centre's noise the blind prediction carries

    def describe(self) -> str:
        """One line for the log."""
        centre = float(self.taps[tuple(k // 2 for k in self.taps.shape)])
        return (f"posterior taps {' '.join(f'{t:+.3f}' for t in self.taps.ravel())} (centre {centre:+.3f}): "
                f"noise power {self.noise_var:.3f}, blind residual {self.residual_var:.3f}, "
                f"the blind prediction carries {100 * self.leak:.0f} % of the sample's noise")


def kernel_offsets(kernel: Sequence[int]) -> np.ndarray:
    """(taps, dims) offsets of a centred odd kernel, in C order (the taps' own order)."""
    grids = np.meshgrid(*[np.arange(k) - k // 2 for k in kernel], indexing="ij")
    return np.stack([g.ravel() for g in grids], axis=1)


def residual_covariance(r: np.ndarray, shifts: np.ndarray, margin: Sequence[int]) -> np.ndarray:
    """C_r(δ) = mean r(c) r(c + δ) for each shift δ (rows of ``shifts``), over residual patches
    ``r`` (N, *patch) with ``margin`` samples left out at each patch edge per axis (where the
    network read padding, not data)."""
    inner = r[(slice(None), *[slice(m, n - m) for m, n in zip(margin, r.shape[1:])])]
    out = np.empty(len(shifts))
    for i, delta in enumerate(shifts):
        a = [slice(max(0, -d), n - max(0, d)) for d, n in zip(delta, inner.shape[1:])]
        b = [slice(max(0, d), n - max(0, -d)) for d, n in zip(delta, inner.shape[1:])]
        out[i] = float(np.mean(inner[(slice(None), *a)] * inner[(slice(None), *b)]))
    return out


def carried_noise(jacobian: np.ndarray, noise: NoiseCorrelation, axes: Sequence[str], offsets: np.ndarray
                  ) -> np.ndarray:
    """Σ_Δ J(Δ) K(o + Δ) for each offset o: how much of the noise at a sample the blind prediction
    ``o`` away carries (per unit noise power). ``jacobian`` (*patch): the mean ∂p(centre)/∂x, the
    centre at patch // 2."""
    centre = [n // 2 for n in jacobian.shape]
    out = np.empty(len(offsets))
    for i, o in enumerate(offsets):
        lags = [np.arange(n).reshape([-1 if a == k else 1 for k in range(jacobian.ndim)]) - c + d
                for a, (n, c, d) in enumerate(zip(jacobian.shape, centre, o))]
        out[i] = float(np.sum(jacobian * noise.correlation(axes, lags)))
    return out


def solve(cov: dict[tuple[int, ...], float], noise_var: float, noise: NoiseCorrelation, carried: np.ndarray,
          axes: Sequence[str], kernel: Sequence[int]) -> PosteriorFit:
    """The taps: the normal equations above, from the residual covariance ``cov`` (every difference
    of two kernel offsets → C_r), the noise power and correlation, and ``carried`` (per offset)."""
    offs = kernel_offsets(kernel)
    a = np.array([[cov[tuple(int(v) for v in q - o)] for q in offs] for o in offs])
    k = np.array([float(noise.correlation(axes, [np.array(v) for v in o])) for o in offs])
    b = np.array([cov[tuple(int(v) for v in o)] for o in offs]) - noise_var * k + noise_var * carried
    taps = np.linalg.solve(a + 1e-9 * np.trace(a) * np.eye(len(offs)), b)
    centre = len(offs) // 2
    return PosteriorFit(taps.reshape(tuple(kernel)), float(noise_var), float(cov[(0,) * len(kernel)]),
                        float(carried[centre]))


def differences(kernel: Sequence[int]) -> np.ndarray:
    """Every difference of two offsets of the kernel: the shifts whose residual covariance
    :func:`solve` reads."""
    offs = kernel_offsets(kernel)
    return np.unique((offs[:, None, :] - offs[None, :, :]).reshape(-1, len(kernel)), axis=0)
