"""Faulted, folded synthetic cubes with fault labels, in the spirit of FaultSeg3D (Wu et al. 2019).

Every cube is drawn at random from a :class:`FaultCubeSpec` and a seeded generator:

1. **Layers.** A relative geologic time τ starts flat (τ = sample index). A random layered
   impedance column along τ (layers 1-8 samples thick) gives a reflectivity series, convolved at
   4× the sample rate with a Ricker wavelet of random peak frequency, phase-rotated by a random
   angle (field wavelets are rarely zero-phase). The seismic trace of a point is this filtered
   series read at the point's τ, so layers stay continuous wherever τ is.
2. **Folding.** τ is shifted by a sum of Gaussian bumps whose relief grows with depth, plus a
   planar dip: anticlines and synclines over a regional dip.
3. **Faults**, oldest first: planes of random strike, dip and centre; on the hanging-wall side
   every point takes τ (and the labels of older faults) from where it was before the slip, a
   throw along the dip direction that dies out elliptically away from the fault's centre (normal
   or reverse). Later faults displace older ones.
4. **Labels**: 1 on the voxels the fault plane crosses (within half a voxel) where the throw
   exceeds ``min_throw`` samples; 0 elsewhere.
5. **Noise** (optional): :mod:`geocnn.synth.noise`'s field-like noise at a random SNR.

All positions are voxel units (inline, crossline, sample). NumPy only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from geocnn.synth.noise import FieldNoise, add_field_noise

OVERSAMPLE = 4  # reflectivity and wavelet on a 4× finer τ grid, so thin layers and phase are kept


@dataclass(frozen=True)
class FaultCubeSpec:
    """The ranges every cube's parameters are drawn from (uniformly, per cube)."""

    shape: tuple[int, int, int] = (128, 128, 128)  # inline, crossline, sample
    dt_s: float = 0.004
    faults: tuple[int, int] = (2, 6)  # number of faults, inclusive
    throw: tuple[float, float] = (3.0, 12.0)  # largest throw of a fault, samples
    dip_deg: tuple[float, float] = (55.0, 80.0)  # fault dip from the horizontal, voxel units
    reverse: float = 0.2  # share of reverse faults
    min_throw: float = 1.0  # labelled only where the throw is at least this (samples)
    freq_hz: tuple[float, float] = (18.0, 40.0)  # Ricker peak frequency
    phase_deg: tuple[float, float] = (-90.0, 90.0)  # wavelet phase rotation
    fold_relief: tuple[float, float] = (0.0, 14.0)  # largest fold amplitude, samples
    dip_shift: float = 0.15  # largest planar dip, samples per trace
    snr_db: tuple[float, float] | None = (0.0, 10.0)  # None: no noise
    noise: FieldNoise = field(default_factory=FieldNoise)


@dataclass(frozen=True)
class FaultCube:
    """One drawn cube: seismic with and without noise (float32), fault labels (uint8)."""

    clean: np.ndarray
    noisy: np.ndarray
    faults: np.ndarray
    info: dict  # what was drawn: wavelet, SNR, each fault's parameters


def ricker(freq_hz: float, dt_s: float) -> np.ndarray:
    """Ricker wavelet sampled at ``dt_s``, ±1.5 periods."""
    half = int(np.ceil(1.5 / freq_hz / dt_s))
    t = np.arange(-half, half + 1) * dt_s
    a = (np.pi * freq_hz * t) ** 2
    return (1 - 2 * a) * np.exp(-a)


def rotate_phase(w: np.ndarray, degrees: float) -> np.ndarray:
    """Constant phase rotation: cos φ · w − sin φ · H(w) (H: Hilbert transform)."""
    n = len(w)
    spec = np.fft.fft(w)
    h = np.zeros(n)
    h[0] = 1
    h[1:(n + 1) // 2] = 2
    if n % 2 == 0:
        h[n // 2] = 1
    analytic = np.fft.ifft(spec * h)
    phi = np.deg2rad(degrees)
    return np.cos(phi) * analytic.real - np.sin(phi) * analytic.imag


def layered_trace(n_tau: int, wavelet: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The filtered reflectivity on the fine τ grid (``n_tau`` × OVERSAMPLE points)."""
    fine = n_tau * OVERSAMPLE
    log_imp = np.empty(fine)
    pos = 0
    value = rng.normal(0.0, 0.15)
    while pos < fine:
        thick = int(rng.uniform(1.0, 8.0) * OVERSAMPLE)
        log_imp[pos:pos + thick] = value
        value = 0.6 * value + rng.normal(0.0, 0.15)  # neighbouring layers alike, with contrasts
        pos += thick
    refl = np.diff(log_imp, prepend=log_imp[0]) / 2
    return np.convolve(refl, wavelet, mode="same")


def fold_shift(shape: tuple[int, int, int], relief: float, dip: float, rng: np.random.Generator) -> np.ndarray:
    """τ shift (il, xl, sample): Gaussian bumps growing with depth plus a planar dip."""
    ni, nj, nk = shape
    i = np.arange(ni)[:, None]
    j = np.arange(nj)[None, :]
    bumps = np.zeros((ni, nj))
    for _ in range(int(rng.integers(2, 6))):
        ci, cj = rng.uniform(0, ni), rng.uniform(0, nj)
        sigma = rng.uniform(0.15, 0.4) * max(ni, nj)
        bumps += rng.uniform(-1, 1) * np.exp(-((i - ci) ** 2 + (j - cj) ** 2) / (2 * sigma**2))
    bumps *= relief / max(np.abs(bumps).max(), 1e-9)
    planar = rng.uniform(-dip, dip) * i + rng.uniform(-dip, dip) * j
    growth = 0.5 + np.arange(nk) / nk  # deeper layers are more folded
    return bumps[..., None] * growth + planar[..., None]


def trilinear(values: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """``values`` (3D) at fractional positions ``pos`` (n, 3), clamped at the edges."""
    shape = np.array(values.shape)
    pos = np.clip(pos, 0, shape - 1)
    lo = np.minimum(pos.astype(np.int64), shape - 2)  # pos ≥ 0: truncation is the floor
    f = pos - lo
    strides = np.array([shape[1] * shape[2], shape[2], 1])
    base = lo @ strides
    flat = values.ravel()
    weights = [(1 - f[:, a], f[:, a]) for a in range(3)]
    out = np.zeros(len(pos))
    for b0 in (0, 1):
        for b1 in (0, 1):
            w01 = weights[0][b0] * weights[1][b1]
            for b2 in (0, 1):
                out += w01 * weights[2][b2] * flat[base + (b0 * strides[0] + b1 * strides[1] + b2)]
    return out


def nearest(values: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """``values`` (3D) at the nearest voxel of ``pos`` (..., 3), clamped at the edges."""
    idx = np.clip(np.rint(pos).astype(np.int64), 0, np.array(values.shape) - 1)
    return values[idx[..., 0], idx[..., 1], idx[..., 2]]


def fault_params(spec: FaultCubeSpec, rng: np.random.Generator) -> dict:
    """One fault: centre, strike, dip, largest throw, extent along strike and dip, sense."""
    ni, nj, nk = spec.shape
    return {
        "centre": [float(rng.uniform(0.15, 0.85) * ni), float(rng.uniform(0.15, 0.85) * nj),
                   float(rng.uniform(0.3, 0.7) * nk)],
        "strike_deg": float(rng.uniform(0, 180)),
        "dip_deg": float(rng.uniform(*spec.dip_deg)),
        "throw": float(rng.uniform(*spec.throw)),
        "length": float(rng.uniform(0.5, 1.2) * max(ni, nj)),  # extent along strike (radius)
        "height": float(rng.uniform(0.6, 1.5) * nk),  # extent along dip (radius)
        "reverse": bool(rng.random() < spec.reverse),
    }


def fault_frame(p: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(normal, strike, down-dip) unit vectors of a fault plane in (il, xl, sample) voxels."""
    s = np.deg2rad(p["strike_deg"])
    d = np.deg2rad(p["dip_deg"])
    strike = np.array([np.cos(s), np.sin(s), 0.0])
    horizontal = np.array([-np.sin(s), np.cos(s), 0.0])  # toward the hanging wall
    down_dip = np.cos(d) * horizontal + np.array([0.0, 0.0, np.sin(d)])
    normal = np.cross(down_dip, strike)  # points up, into the hanging wall
    return normal / np.linalg.norm(normal), strike, down_dip


def _project(shape: tuple[int, ...], origin: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """(p − origin) · direction for every voxel p, by broadcasting three 1D ramps (no position grid)."""
    ramps = [(np.arange(n, dtype=np.float32) - np.float32(o)) * np.float32(d)
             for n, o, d in zip(shape, origin, direction)]
    return ramps[0][:, None, None] + ramps[1][None, :, None] + ramps[2][None, None, :]


def apply_fault(tau: np.ndarray, labels: np.ndarray, p: dict, min_throw: float) -> tuple[np.ndarray, np.ndarray]:
    """Slip the hanging wall of fault ``p``: τ and older labels moved, this fault's voxels labelled."""
    normal, strike, down_dip = fault_frame(p)
    centre = np.asarray(p["centre"])
    dist = _project(tau.shape, centre, normal)
    r2 = (_project(tau.shape, centre, strike) / p["length"]) ** 2
    r2 += (_project(tau.shape, centre, down_dip) / p["height"]) ** 2
    throw = p["throw"] * np.clip(1 - r2, 0, None) ** 2  # elliptical, dying out smoothly
    moved = np.nonzero((dist > 0) & (throw > 0))  # the hanging wall, where it slipped
    slip = (-1.0 if p["reverse"] else 1.0) * throw[moved]
    source = np.stack(moved, axis=-1) - slip[:, None] * down_dip  # where the material came from
    tau = tau.copy()
    tau[moved] = trilinear(tau, source)
    labels = labels.copy()
    labels[moved] = nearest(labels, source)
    labels[(np.abs(dist) <= 0.5) & (throw >= min_throw)] = 1
    return tau, labels


def fault_cube(spec: FaultCubeSpec, rng: np.random.Generator) -> FaultCube:
    """Draw one cube (see the module docstring)."""
    freq = float(rng.uniform(*spec.freq_hz))
    phase = float(rng.uniform(*spec.phase_deg))
    wavelet = rotate_phase(ricker(freq, spec.dt_s / OVERSAMPLE), phase)
    relief = float(rng.uniform(*spec.fold_relief))
    # Faults are slipped on a grid padded by the largest throw, so that material moved into the
    # cube comes from layers that exist, not from a clamped edge.
    pad = int(np.ceil(spec.throw[1])) + 2
    padded = tuple(n + 2 * pad for n in spec.shape)
    k = np.arange(padded[2], dtype=np.float64) - pad
    tau = k[None, None, :] + fold_shift(padded, relief, spec.dip_shift, rng)
    labels = np.zeros(padded, np.uint8)
    faults = [fault_params(spec, rng) for _ in range(int(rng.integers(spec.faults[0], spec.faults[1] + 1)))]
    for p in faults:
        tau, labels = apply_fault(tau, labels, {**p, "centre": [c + pad for c in p["centre"]]}, spec.min_throw)
    inner = tuple(slice(pad, pad + n) for n in spec.shape)
    tau, labels = tau[inner], labels[inner]
    lo, hi = int(np.floor(tau.min())) - 16, int(np.ceil(tau.max())) + 16
    trace = layered_trace(hi - lo, wavelet, rng)
    fine = lo + np.arange(len(trace)) / OVERSAMPLE
    clean = np.interp(tau, fine, trace)
    clean = (clean / max(clean.std(), 1e-12)).astype(np.float32)
    info = {"freq_hz": freq, "phase_deg": phase, "fold_relief": relief, "faults": faults}
    if spec.snr_db is None:
        noisy = clean.copy()
    else:
        snr = float(rng.uniform(*spec.snr_db))
        noisy = add_field_noise(clean, spec.dt_s, snr, rng, spec.noise)
        info["snr_db"] = snr
    return FaultCube(clean, noisy, np.ascontiguousarray(labels), info)
