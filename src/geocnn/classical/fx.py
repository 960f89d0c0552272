"""f-x deconvolution: random-noise attenuation by complex prediction across traces (Canales 1984).

A plane wave (a linear event) is, at each temporal frequency, a complex sinusoid along the
traces, so a short prediction filter along the traces predicts it exactly; random noise cannot
be predicted. For every time window and every window of neighbouring traces, each frequency's
complex values along the traces get a Wiener prediction filter (Gulunay 1986), here solved by
forward-backward least squares with a little prewhitening; the output trace is the average of
its forward prediction (from the traces before it) and its backward prediction (from the traces
after it), so a trace never predicts itself. Overlapping windows are blended with tapers that
sum to one (Galbraith 1991's tutorial recipe).

Parameters are the textbook ones (:class:`FxParams`: Seismic Unix ``sufxdecon`` uses 10-trace
windows and a 4-trace filter; windows of 20 traces give the filter more equations on short
lines); frequencies outside ``[fmin, fmax]`` are passed through unchanged. Arrays are grid order,
traces along ``axis`` and samples last; NumPy only.

Example
-------
>>> import numpy as np
>>> t = np.arange(64) * 0.004
>>> section = np.stack([np.sin(2 * np.pi * 30 * (t - 0.002 * j)) for j in range(24)])
>>> bool(np.allclose(fx_decon(section, 0.004)[:, 8:-8], section[:, 8:-8], atol=0.05))
True
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class FxParams:
    """f-x deconvolution's knobs, at textbook values."""

    window_traces: int = 20  # traces per spatial window (windows overlap by half)
    filter_len: int = 4  # prediction filter length, in traces
    window_s: float = 0.5  # time window length; a shorter trace is one window (windows overlap by half)
    fmin_hz: float = 3.0  # frequencies outside [fmin, fmax] pass unchanged
    fmax_fraction: float = 0.6  # fmax = this × Nyquist (sufxdecon's 0.6/(2 dt))
    prewhitening: float = 0.01  # added to the normal equations' diagonal, × their mean diagonal
    gap: int = 0  # traces skipped next to the predicted one (0: textbook; geocnn.classical.noisecorr
    #               predicts from farther traces, so that noise correlated with the neighbours' is left)


def window_starts(n: int, size: int) -> list[int]:
    """Starts of windows of ``size`` overlapping by half that cover ``n`` (one window if n ≤ size)."""
    if n <= size:
        return [0]
    step = max(1, size // 2)
    starts = list(range(0, n - size + 1, step))
    if starts[-1] != n - size:
        starts.append(n - size)
    return starts


def taper(size: int, first: bool, last: bool) -> np.ndarray:
    """Blending weights of one window: rising over its first half and falling over its last half,
    flat (1) at the survey's edges, so overlapping windows' weights add up to about one."""
    w = np.ones(size)
    half = size // 2
    ramp = np.sin(0.5 * np.pi * (np.arange(half) + 0.5) / half) ** 2 if half else np.ones(0)
    if not first:
        w[:half] = ramp
    if not last:
        w[size - half:] = ramp[::-1]
    return w


def prediction_filters(spec: np.ndarray, length: int, prewhitening: float, gap: int = 0) -> np.ndarray:
    """(F, L) complex filters that predict each trace of ``spec`` (F, traces) from the ``length``
    traces before it (skipping ``gap`` traces next to it), fitted on forward and backward
    equations together (least squares).

    Forward: X[j] ≈ Σ a[l] X[j − gap − l]; backward (the same process read the other way):
    conj(X[j]) ≈ Σ a[l] conj(X[j + gap + l]), l = 1..L.
    """
    f, n = spec.shape
    reach = gap + length  # the farthest trace a prediction reads
    rows = n - reach
    lags = range(gap + 1, reach + 1)
    behind = np.stack([spec[:, reach - q: n - q] for q in lags], axis=-1)  # (F, rows, L)
    ahead = np.stack([np.conj(spec[:, q: q + rows]) for q in lags], axis=-1)
    a = np.concatenate([behind, ahead], axis=1)
    b = np.concatenate([spec[:, reach:], np.conj(spec[:, :rows])], axis=1)
    ah = np.conj(np.swapaxes(a, 1, 2))
    normal = ah @ a  # (F, L, L)
    load = prewhitening * np.real(np.trace(normal, axis1=1, axis2=2)) / length + 1e-30
    normal = normal + load[:, None, None] * np.eye(length)
    return np.linalg.solve(normal, (ah @ b[..., None]))[..., 0]


def predict_traces(spec: np.ndarray, filters: np.ndarray, gap: int = 0) -> np.ndarray:
    """(F, traces): the average of each trace's forward and backward prediction (one where only
    one exists: the first ``gap + L`` traces have no forward prediction, the last no backward one)."""
    f, n = spec.shape
    reach = gap + filters.shape[1]
    forward = np.zeros_like(spec)
    backward = np.zeros_like(spec)
    count = np.zeros(n)
    for i, q in enumerate(range(gap + 1, reach + 1)):
        forward[:, reach:] += filters[:, i:i + 1] * spec[:, reach - q: n - q]
        backward[:, :n - reach] += np.conj(filters[:, i:i + 1]) * spec[:, q: n - reach + q]
    count[reach:] += 1
    count[:n - reach] += 1
    return (forward + backward) / np.maximum(count, 1)


def fx_window(block: np.ndarray, dt_s: float, p: FxParams) -> np.ndarray:
    """f-x deconvolution of one (traces, samples) window."""
    n, nt = block.shape
    if n <= p.gap + p.filter_len:
        return block.copy()  # too few traces to predict any of them
    spec = np.fft.rfft(block, axis=1).T  # (F, traces)
    freqs = np.fft.rfftfreq(nt, dt_s)
    band = (freqs >= p.fmin_hz) & (freqs <= p.fmax_fraction * 0.5 / dt_s)
    out = spec.copy()
    if band.any():
        filters = prediction_filters(spec[band], p.filter_len, p.prewhitening, p.gap)
        out[band] = predict_traces(spec[band], filters, p.gap)
    return np.fft.irfft(out.T, nt, axis=1)


def fx_decon(section: np.ndarray, dt_s: float, params: FxParams = FxParams()) -> np.ndarray:
    """f-x deconvolution of a 2D section (traces, samples), float64 out.

    Parameters
    ----------
    section
        Traces along the first axis, time along the second.
    dt_s
        Sample interval in seconds.
    params
        Window and filter sizes (:class:`FxParams`, textbook defaults).
    """
    x = np.asarray(section, dtype=np.float64)
    n, nt = x.shape
    out = np.zeros_like(x)
    weight = np.zeros_like(x)
    wt = max(8, int(round(params.window_s / dt_s)))
    t_starts, x_starts = window_starts(nt, wt), window_starts(n, params.window_traces)
    for t0 in t_starts:
        tlen = min(wt, nt)
        wtime = taper(tlen, t0 == t_starts[0], t0 == t_starts[-1])
        for j0 in x_starts:
            jlen = min(params.window_traces, n)
            wspace = taper(jlen, j0 == x_starts[0], j0 == x_starts[-1])
            w = wspace[:, None] * wtime[None, :]
            block = x[j0:j0 + jlen, t0:t0 + tlen]
            out[j0:j0 + jlen, t0:t0 + tlen] += w * fx_window(block, dt_s, params)
            weight[j0:j0 + jlen, t0:t0 + tlen] += w
    return out / np.maximum(weight, 1e-12)


def fx_decon_lines(values: np.ndarray, dt_s: float, axis: int = -2, params: FxParams = FxParams()) -> np.ndarray:
    """f-x deconvolution of every 2D line of ``values`` (lateral axes, samples last): each line runs
    along ``axis`` (e.g. the crosslines of every inline of a cube), float64 out."""
    x = np.asarray(values, dtype=np.float64)
    if x.ndim < 2:
        raise ValueError(f"f-x deconvolution needs traces and samples, got an array of shape {x.shape}")
    lines = np.moveaxis(x, axis, -2)
    flat = lines.reshape(-1, *lines.shape[-2:])
    done = np.stack([fx_decon(s, dt_s, params) for s in flat]).reshape(lines.shape)
    return np.moveaxis(done, -2, axis)
