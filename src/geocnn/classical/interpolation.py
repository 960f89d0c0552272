"""Missing-trace interpolation the way a geophysicist does it without a network.

The trivial method, linear interpolation between the nearest live traces of a line, is
:func:`geocnn.selfsup.masking.fill_linear` (the reconstruction task's first baseline). This module holds
the one a geophysicist would reach for next:

- :func:`pocs_fill`: projection onto convex sets (Abma & Kabir 2006). Seismic events are sparse
  in the Fourier domain (a linear event is a line in f-k), missing traces are not. Starting
  from the data with zeros in the gaps, each iteration keeps the Fourier coefficients above a
  threshold, transforms back, and puts the recorded traces back in place:

      x_{k+1} = d_obs + (1 − S) F⁻¹ T_k F x_k

  with ``S`` the sampling operator (1 on live traces) and ``T_k`` hard thresholding at a level
  that falls exponentially from ``first`` to ``last`` × the largest coefficient (Gao et al. 2010:
  faster than Abma & Kabir's linear decrease). Stopping at a level well above the noise (``last``)
  leaves the random noise out of the filled traces, so POCS also denoises what it fills. The FFT
  runs over every axis given, so a 3D cube is reconstructed in f-k-k (inline and crossline
  neighbours both help).

Live traces are returned exactly as given (bit for bit): only the gaps are written.
Arrays are grid order (lateral axes, then samples); ``missing`` is bool over the lateral axes.
NumPy only.
"""

from __future__ import annotations

import numpy as np

POCS_ITERATIONS = 60
POCS_FIRST = 0.99  # the first threshold, × the largest Fourier amplitude of the data
POCS_LAST = 0.08  # the last threshold: above the noise (see benchmarks/field_reconstruct.py)
POCS_PAD = 8  # traces added on both sides of every lateral axis, unknown, so the FFT does not wrap


def _check(values: np.ndarray, missing: np.ndarray) -> None:
    if missing.shape != values.shape[:missing.ndim] or missing.ndim >= values.ndim:
        raise ValueError(f"missing {missing.shape} must cover the trace axes of values {values.shape}")


def pocs_fill(values: np.ndarray, missing: np.ndarray, iterations: int = POCS_ITERATIONS,
              first: float = POCS_FIRST, last: float = POCS_LAST, pad: int = POCS_PAD) -> np.ndarray:
    """Missing traces filled by POCS over every axis of ``values`` (see the module docstring).

    Parameters
    ----------
    values : (*traces, samples) array; what it holds on missing traces is never read.
    missing : bool (*traces), True where the trace is missing.
    iterations, first, last : the thresholds fall exponentially from ``first`` to ``last`` × the
        largest Fourier amplitude of the data over ``iterations`` steps.
    pad : unknown traces added on both sides of every lateral axis: POCS fills them too, so the
        data does not wrap from one edge to the other in the FFT (events rarely line up there).

    Examples
    --------
    >>> t = np.arange(64)
    >>> x = np.arange(16)[:, None]
    >>> events = np.sin(2 * np.pi * (t - 0.5 * x) / 16).astype(np.float32)  # one dipping event
    >>> gone = np.zeros(16, bool); gone[[5, 9]] = True
    >>> filled = pocs_fill(np.where(gone[:, None], 0, events), gone)
    >>> bool(np.abs(filled[gone] - events[gone]).max() < 0.05)
    True
    """
    _check(values, missing)
    if not 0 < last <= first <= 1 or iterations < 1:
        raise ValueError(f"thresholds must fall within (0, 1]: first {first}, last {last}, iterations {iterations}")
    per_sample = (1,) * (values.ndim - missing.ndim)
    gone = missing.reshape(missing.shape + per_sample)
    widths = [(pad, pad)] * missing.ndim + [(0, 0)] * len(per_sample)
    observed = np.pad(np.where(gone, 0.0, values.astype(np.float64)), widths)
    unknown = np.pad(gone, widths, constant_values=True)
    spectrum = np.fft.rfftn(observed)
    top = float(np.abs(spectrum).max())
    x = observed
    for k in range(iterations):
        level = top * first * (last / first) ** (k / max(iterations - 1, 1))
        if k:
            spectrum = np.fft.rfftn(x)
        spectrum[np.abs(spectrum) < level] = 0
        x = np.where(unknown, np.fft.irfftn(spectrum, observed.shape, axes=range(observed.ndim)), observed)
    inner = tuple(slice(pad, pad + n) for n in missing.shape)
    return np.where(gone, x[inner].astype(values.dtype), values)
