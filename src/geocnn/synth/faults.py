"""Faulted, folded synthetic cubes with fault labels, in the spirit of FaultSeg3D (Wu et al. 2019).

FaultSeg3D trained a fault U-Net on 200 random 128³ cubes and applied it to field surveys it had
never seen. Its recipe — random reflectivity, folding by Gaussian bumps growing with depth over a
planar dip, several planar faults of random strike, dip and throw, a wavelet of random frequency,
noise — is followed here, with a phase-rotated wavelet and field-like noise
(:mod:`geocnn.synth.noise`) added, because field wavelets are rarely zero-phase and field noise
is neither white nor independent between traces.

Every cube is drawn at random from a :class:`FaultCubeSpec` and a seeded generator:

1. **Layers.** A relative geologic time τ labels every layer. A random layered impedance column
   along τ (layers of random thickness) gives a reflectivity series, convolved at 4× the sample
   rate with a Ricker wavelet of random peak frequency, phase-rotated by a random angle. The
   seismic at a point is this filtered series read at the point's τ.
2. **Folding.** Before faulting, τ of a point (i, j, k) is k shifted by Gaussian bumps whose
   relief grows with depth, plus a planar dip: anticlines and synclines over a regional dip.
   This is a closed-form function of position, so it is evaluated exactly, never interpolated.
3. **Faults**, oldest first: planes of random strike, dip and centre. Each slips its hanging wall
   along the dip by a throw that grows with depth and dies out elliptically away from its centre
   (normal, or with probability ``reverse`` reverse). Later faults displace older ones.
4. **Labels**: 1 within half a trace of each fault plane, measured horizontally across it and
   widened to (|n_i| + |n_j|) / 2 voxels of normal distance for a plane of unit normal n — the
   rule of ``data_samples/faults.npy`` — so the surface has no holes along the inline or
   crossline axis closest to its normal and is 1-2 voxels thick there (for dips steeper than
   45°); where its throw is at least ``min_throw`` samples; 0 elsewhere.
5. **Noise** (optional): field-like noise at a random SNR and trace-to-trace correlation.

How it is computed: instead of moving τ (and the labels) fault by fault, which needs an
interpolation of the whole cube per fault, every output voxel is *traced back* through the
faults, youngest first: on the hanging wall of a fault a point came from ``throw`` voxels up its
dip. What is left after the oldest fault is a position in the folded, unfaulted earth, whose τ is
closed-form (step 2). A fault's label is tested where the point was just after that fault
slipped, so younger faults carry older faults' labels with them. This is a dozen element-wise
operations per fault — a 128³ cube with seven faults takes well under a second (the slow part is
the noise) — and it is exact where interpolation would blur the layers at every fault.

All positions are voxel units (inline, crossline, sample); a dip is measured in voxels too (a
field fault dipping 60° on 25 m bins and 5 m samples dips about 84° in voxels). NumPy only.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from geocnn.synth.noise import FieldNoise, add_field_noise

OVERSAMPLE = 4  # reflectivity and wavelet on a 4× finer τ grid, so thin layers and phase are kept

Positions = tuple[np.ndarray, np.ndarray, np.ndarray]  # (inline, crossline, sample) of every voxel, float32


@dataclass(frozen=True)
class FaultCubeSpec:
    """The ranges every cube's parameters are drawn from (uniformly, per cube)."""

    shape: tuple[int, int, int] = (128, 128, 128)  # inline, crossline, sample
    dt_s: float = 0.004
    faults: tuple[int, int] = (3, 7)  # number of faults, inclusive
    throw: tuple[float, float] = (3.0, 14.0)  # largest slip of a fault along its dip, voxels
    dip_deg: tuple[float, float] = (60.0, 88.0)  # fault dip from the horizontal, voxel units (> 45°)
    reverse: float = 0.2  # share of reverse faults
    growth: tuple[float, float] = (0.0, 0.6)  # throw × (1 − g/2 + g·k/n): growth faults slip more at depth
    min_throw: float = 1.0  # labelled only where the throw is at least this (samples)
    layers: tuple[float, float] = (1.0, 8.0)  # layer thickness, samples
    freq_hz: tuple[float, float] = (18.0, 40.0)  # Ricker peak frequency
    phase_deg: tuple[float, float] = (-90.0, 90.0)  # wavelet phase rotation
    fold_relief: tuple[float, float] = (0.0, 14.0)  # largest fold amplitude, samples
    dip_shift: float = 0.15  # largest planar dip, samples per trace
    snr_db: tuple[float, float] | None = (0.0, 10.0)  # None: no noise
    noise_corr: tuple[float, float] = (0.0, 0.7)  # the noise's correlation between neighbouring traces
    noise: FieldNoise = field(default_factory=FieldNoise)

    def __post_init__(self) -> None:
        for name in ("faults", "throw", "dip_deg", "growth", "layers", "freq_hz", "phase_deg", "fold_relief",
                     "noise_corr"):
            lo, hi = getattr(self, name)
            if lo > hi:
                raise ValueError(f"{name}: the range {lo}..{hi} runs backwards")
        if self.dip_deg[0] <= 45:
            raise ValueError(f"dip_deg {self.dip_deg}: faults must dip more steeply than 45° (labels are measured "
                             "across them horizontally)")
        if min(self.shape) < 2:
            raise ValueError(f"shape {self.shape}: every axis needs at least 2 voxels")


@dataclass(frozen=True)
class FaultCube:
    """One drawn cube: seismic with and without noise (float32), fault labels (uint8)."""

    clean: np.ndarray
    noisy: np.ndarray
    faults: np.ndarray
    info: dict  # what was drawn: wavelet, folds, SNR, each fault's parameters (JSON-ready)


# ----------------------------------------------------------------------------- wavelet and layers

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


def layered_trace(n_tau: int, wavelet: np.ndarray, rng: np.random.Generator,
                  thickness: tuple[float, float] = (1.0, 8.0)) -> np.ndarray:
    """The filtered reflectivity on the fine τ grid (``n_tau`` × OVERSAMPLE points)."""
    fine = n_tau * OVERSAMPLE
    log_imp = np.empty(fine)
    pos = 0
    value = rng.normal(0.0, 0.15)
    while pos < fine:
        thick = max(1, int(rng.uniform(*thickness) * OVERSAMPLE))
        log_imp[pos:pos + thick] = value
        value = 0.6 * value + rng.normal(0.0, 0.15)  # neighbouring layers alike, with contrasts
        pos += thick
    refl = np.diff(log_imp, prepend=log_imp[0]) / 2
    return np.convolve(refl, wavelet, mode="same")


# ----------------------------------------------------------------------------- folding

@dataclass(frozen=True)
class Folds:
    """The τ shift of the unfaulted earth: Gaussian bumps (relief growing with depth) plus a plane."""

    bumps: tuple[tuple[float, float, float, float], ...]  # (amplitude, centre il, centre xl, sigma)
    planar: tuple[float, float]  # samples per inline, per crossline
    n_samples: int

    def tau(self, q: Positions) -> np.ndarray:
        """τ of the unfaulted earth at positions ``q`` (float64 for the later interpolation)."""
        qi, qj, qk = q
        relief = np.zeros(np.broadcast_shapes(qi.shape, qj.shape), np.float32)
        for amp, ci, cj, sigma in self.bumps:
            relief += np.float32(amp) * np.exp(((qi - ci) ** 2 + (qj - cj) ** 2) * np.float32(-0.5 / sigma**2))
        growth = 0.5 + qk / np.float32(self.n_samples)  # deeper layers are more folded
        return (qk + relief * growth + np.float32(self.planar[0]) * qi
                + np.float32(self.planar[1]) * qj).astype(np.float64)


def draw_folds(shape: tuple[int, int, int], relief: float, dip: float, rng: np.random.Generator) -> Folds:
    """2-5 bumps scaled so the largest |relief| over the cube is ``relief``, and a planar dip."""
    ni, nj, nk = shape
    raw = [(rng.uniform(-1, 1), rng.uniform(0, ni), rng.uniform(0, nj), rng.uniform(0.15, 0.4) * max(ni, nj))
           for _ in range(int(rng.integers(2, 6)))]
    i, j = np.arange(ni)[:, None], np.arange(nj)[None, :]
    peak = np.abs(sum(a * np.exp(-((i - ci) ** 2 + (j - cj) ** 2) / (2 * s**2)) for a, ci, cj, s in raw)).max()
    scale = relief / max(peak, 1e-9)
    bumps = tuple((float(a * scale), float(ci), float(cj), float(s)) for a, ci, cj, s in raw)
    return Folds(bumps, (float(rng.uniform(-dip, dip)), float(rng.uniform(-dip, dip))), nk)


# ----------------------------------------------------------------------------- faults

def fault_params(spec: FaultCubeSpec, rng: np.random.Generator) -> dict:
    """One fault: centre, strike, dip, largest throw, growth, extent along strike and dip, sense."""
    ni, nj, nk = spec.shape
    return {
        "centre": [float(rng.uniform(0.1, 0.9) * ni), float(rng.uniform(0.1, 0.9) * nj),
                   float(rng.uniform(0.3, 0.7) * nk)],
        "strike_deg": float(rng.uniform(0, 180)),
        "dip_deg": float(rng.uniform(*spec.dip_deg)),
        "throw": float(rng.uniform(*spec.throw)),
        "growth": float(rng.uniform(*spec.growth)),
        "length": float(rng.uniform(0.5, 1.5) * max(ni, nj)),  # extent along strike (radius)
        "height": float(rng.uniform(0.6, 2.0) * nk),  # extent along dip (radius)
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


def _along(q: Positions, origin: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """(q − origin) · direction at every position (float32)."""
    out = None
    for x, o, d in zip(q, origin, direction):
        if d == 0:
            continue
        term = (x - np.float32(o)) * np.float32(d)
        out = term if out is None else out + term
    return out if out is not None else np.zeros(np.broadcast_shapes(*(x.shape for x in q)), np.float32)


def unfault(q: Positions, labels: np.ndarray, p: dict, n_samples: int, min_throw: float) -> Positions:
    """Trace positions ``q`` (just after fault ``p`` slipped) back to where they were before it;
    label in ``labels`` (in place) the voxels on its plane where it slipped at least ``min_throw``."""
    normal, strike, down_dip = fault_frame(p)
    centre = np.asarray(p["centre"])
    dist = _along(q, centre, normal)
    r2 = ((_along(q, centre, strike) * np.float32(1 / p["length"])) ** 2
          + (_along(q, centre, down_dip) * np.float32(1 / p["height"])) ** 2)
    growth = 1 - p["growth"] / 2 + np.float32(p["growth"] / n_samples) * q[2]  # 1 ± g/2 from top to base
    throw = np.float32(p["throw"]) * np.square(np.clip(1 - r2, 0, None)) * growth
    half_width = 0.5 * float(np.abs(normal[:2]).sum())
    labels |= ((np.abs(dist) <= half_width) & (throw >= min_throw)).astype(np.uint8)
    slip = np.where(dist > 0, throw, np.float32(0)) * np.float32(-1.0 if p["reverse"] else 1.0)
    # the hanging wall slid down the dip by ``slip``: it came from ``slip`` voxels up the dip
    return tuple(x - slip * np.float32(d) if d != 0 else np.broadcast_to(x, slip.shape)
                 for x, d in zip(q, down_dip))


def voxel_positions(shape: tuple[int, int, int]) -> Positions:
    """(inline, crossline, sample) index ramps, broadcastable to ``shape`` (float32)."""
    ni, nj, nk = shape
    return (np.arange(ni, dtype=np.float32)[:, None, None], np.arange(nj, dtype=np.float32)[None, :, None],
            np.arange(nk, dtype=np.float32)[None, None, :])


def fault_tau(shape: tuple[int, int, int], folds: Folds, faults: list[dict],
              min_throw: float) -> tuple[np.ndarray, np.ndarray]:
    """τ (float64) and fault labels (uint8) of every voxel, faults traced back youngest first."""
    q = voxel_positions(shape)
    labels = np.zeros(shape, np.uint8)
    for p in reversed(faults):
        q = unfault(q, labels, p, shape[2], min_throw)
    q = tuple(np.broadcast_to(x, shape) for x in q)
    return folds.tau(q), labels


# ----------------------------------------------------------------------------- one cube

def fault_cube(spec: FaultCubeSpec, rng: np.random.Generator) -> FaultCube:
    """Draw one cube (see the module docstring).

    Examples
    --------
    >>> cube = fault_cube(FaultCubeSpec(shape=(32, 32, 48)), np.random.default_rng(0))
    >>> cube.noisy.shape, cube.faults.dtype, bool(cube.faults.any())
    ((32, 32, 48), dtype('uint8'), True)
    """
    freq = float(rng.uniform(*spec.freq_hz))
    phase = float(rng.uniform(*spec.phase_deg))
    wavelet = rotate_phase(ricker(freq, spec.dt_s / OVERSAMPLE), phase)
    relief = float(rng.uniform(*spec.fold_relief))
    folds = draw_folds(spec.shape, relief, spec.dip_shift, rng)
    faults = [fault_params(spec, rng) for _ in range(int(rng.integers(spec.faults[0], spec.faults[1] + 1)))]
    tau, labels = fault_tau(spec.shape, folds, faults, spec.min_throw)
    lo, hi = int(np.floor(tau.min())) - 16, int(np.ceil(tau.max())) + 16
    trace = layered_trace(hi - lo, wavelet, rng, spec.layers)
    fine = lo + np.arange(len(trace)) / OVERSAMPLE
    clean = np.interp(tau.ravel(), fine, trace).reshape(spec.shape)
    clean = (clean / max(clean.std(), 1e-12)).astype(np.float32)
    info = {"freq_hz": freq, "phase_deg": phase, "fold_relief": relief, "faults": faults,
            "fault_share": float(labels.mean())}
    if spec.snr_db is None:
        noisy = clean.copy()
    else:
        snr = float(rng.uniform(*spec.snr_db))
        corr = float(rng.uniform(*spec.noise_corr))
        noisy = add_field_noise(clean, spec.dt_s, snr, rng, replace(spec.noise, lateral_corr=corr))
        info.update(snr_db=snr, noise_corr=corr)
    return FaultCube(clean, noisy, labels, info)
