"""Make geocnn's bundled synthetic sample data.

One layered, folded and faulted earth model (two-way time, 4 ms samples) drives every file:
post-stack seismic (clean and noisy), fault, facies and impedance volumes, a small angle-gather
set with a class-III gas sand, a gridded P-velocity model in netCDF (clean and noisy, with
northing/easting/depth coordinates), and a separate set of three-component microseismic records.
Everything is seeded, so every run writes the same bytes.

Usage::

    python data_samples/make_samples.py [--out DIR]

Needs numpy, segyio, xarray with h5netcdf (``geocnn[xarray]``) and geocnn (its ``geocnn.synth.noise``
makes the field-like noise). See
``data_samples/README.md`` for what each file holds.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import segyio

from geocnn.synth.noise import FieldNoise, add_field_noise

# ---------------------------------------------------------------------------------------------
# Survey geometry
ILINES = np.arange(1000, 1064)
XLINES = np.arange(2000, 2048)
N_SAMPLES = 100
DT_US = 4000
BIN_M = 25.0
ORIGIN_XY = (431250.0, 6521800.0)  # CDP of inline 1000, crossline 2000 (metres, UTM-like)
XLINE_AZIMUTH = 30.0  # degrees from grid north of the direction in which crossline numbers grow
COORD_SCALAR = -100  # SEG-Y byte 71: stored coordinates are centimetres

SUB_ILINES = np.arange(1016, 1048)
SUB_XLINES = np.arange(2012, 2036)
# The angle sub-area as a slice of the full (inline, crossline) grid.
SUB_AREA = np.s_[
    SUB_ILINES[0] - ILINES[0] : SUB_ILINES[-1] - ILINES[0] + 1,
    SUB_XLINES[0] - XLINES[0] : SUB_XLINES[-1] - XLINES[0] + 1,
]
ANGLES = (5, 15, 25)  # incidence angles in degrees, stored in the offset header (byte 37)

# The model is evaluated at 1 ms so that dipping and faulted interfaces fall between samples,
# and PAD samples beyond both ends of the window so that the wavelet has full support there.
OVERSAMPLE = 4
PAD = 12

RICKER_HZ = 28.0
ANGLE_RICKER_HZ = (28.0, 27.0, 25.0)  # far angles lose a little bandwidth (NMO stretch)
GAIN = 1.0e4  # reflection coefficient to trace amplitude
NOISY_SNR_DB = 2.0  # 10 log10(Σ clean² / Σ noise²) of seismic_noisy.sgy
ANGLE_NOISE_TO_SIGNAL = 0.12

SEED_GEOLOGY = 20240603
SEED_NOISE = 20240604
SEED_ANGLE_NOISE = 20240605
SEED_MICROSEISMIC = 20240606
SEED_MODEL_NOISE = 20240607
MODEL_DZ_M = 6.0  # depth step of the netCDF velocity model (one 4 ms sample at ~3000 m/s, two-way)
MODEL_NOISE_MS = 150.0  # m/s: the noisy model's error (a tomographic update's scatter)
SEED_QUAKES = 20240607

# ---------------------------------------------------------------------------------------------
# Structure: a four-way dome over the angle sub-area on a gentle regional dip, plus a low ripple.
# Units are grid traces laterally and 4 ms samples vertically.
CREST = (31.5, 23.5)
DOME_RELIEF = 12.0
DOME_WIDTH = (10.5, 9.0)
REGIONAL_DIP = (0.10, -0.05)  # samples per trace along (inline, crossline)
# Structure grows with burial: relief at relative time tau is (GROWTH_A + GROWTH_B * tau) times
# the map above, so layers thin onto the crest like a growing anticline.
GROWTH_A = 0.5
GROWTH_B = 0.006

# Rock catalogue relative to the shale trend at the same burial:
# (Vp scale, Vp/Vs, density offset in g/cm3).
ROCKS = {
    "shale": (1.00, 2.40, 0.00),
    "silty shale": (1.07, 2.25, 0.04),
    "brine sand": (1.00, 2.05, -0.08),
    "soft sand": (0.90, 2.15, -0.12),
    "gas sand": (0.90, 1.62, -0.20),
    "coal": (0.80, 2.10, -0.85),
    "limestone": (1.13, 1.90, 0.10),
    "marl": (1.06, 2.15, 0.05),
}
ROCK_NAMES = tuple(ROCKS)
GAS_COLUMN = 6.0  # samples from the crest of the gas sand down to the gas-water contact


@dataclass(frozen=True)
class Unit:
    """A depositional unit: one facies class, its top in relative time and its layers.

    Layers alternate ``rocks`` with thicknesses drawn from ``thickness`` (samples) unless
    ``layers`` lays them out by hand as (rock, thickness) pairs.
    """

    facies: int
    name: str
    top: float
    thickness: tuple[float, float] = (0.0, 0.0)
    rocks: tuple[str, str] = ("shale", "shale")
    vp_jitter: float = 0.01
    layers: tuple[tuple[str, float], ...] = ()


# The reservoir unit holds the gas sand (top at tau 69.5, 8 samples = 32 ms thick) between a
# soft brine sand and two thin coals: bright soft events that do not brighten with angle.
RESERVOIR = (
    ("shale", 2.5),
    ("coal", 0.6),
    ("shale", 3.0),
    ("soft sand", 3.0),
    ("shale", 2.4),
    ("gas sand", 8.0),
    ("shale", 2.0),
    ("coal", 0.7),
    ("shale", 1.8),
)
UNITS = (
    Unit(0, "shallow clay-rich", -60.0, (3.0, 7.0), ("shale", "silty shale"), 0.03),
    Unit(1, "sand-shale interbeds", 20.0, (1.5, 3.5), ("brine sand", "shale"), 0.08),
    Unit(2, "marine shale", 42.0, (4.0, 8.0), ("shale", "shale"), 0.025),
    Unit(3, "reservoir sands and coals", 58.0, layers=RESERVOIR),
    Unit(4, "carbonate platform", 82.0, (2.5, 6.0), ("limestone", "marl"), 0.03),
)
MODEL_BASE = 180.0


@dataclass(frozen=True)
class Fault:
    """A planar normal fault, in grid units (traces, samples)."""

    name: str
    origin: tuple[float, float]  # (inline index, crossline index) where the plane meets sample 0
    azimuth: float  # degrees from the inline-index axis toward the crossline axis; the dip direction
    dip: float  # lateral shift of the plane per sample of depth, traces
    throw: float  # vertical throw at the centre of the fault, at mid-window, samples
    half_length: float  # along-strike distance from the centre at which the throw dies out, traces


# Oldest first. F1 and F2 form a crestal graben over the dome; F3 dies out inside the survey.
FAULTS = (
    Fault("F3", (12.0, 16.0), 165.0, 0.09, 6.0, 26.0),
    Fault("F1", (30.0, 24.0), 8.0, 0.13, 7.0, 60.0),
    Fault("F2", (52.0, 24.0), 185.0, 0.11, 5.0, 70.0),
)
THROW_GROWTH = (0.7, 0.6)  # throw scales by (a + b * sample / N_SAMPLES): growth faults


# ---------------------------------------------------------------------------------------------
# Layer column


@dataclass(frozen=True)
class Column:
    """Layers in relative time, shallowest first: tops, rock index, facies, Vp jitter, lateral field."""

    tops: np.ndarray
    rock: np.ndarray
    facies: np.ndarray
    vp_jitter: np.ndarray
    wave: np.ndarray  # (n_layers, 3): wavenumbers along inline/crossline and phase of a mild lateral trend
    gas_layer: int


def unit_layers(unit: Unit, base: float, rng: np.random.Generator) -> list[tuple[str, float]]:
    """Alternate the unit's two rocks with random thicknesses from its top down to ``base``."""
    if unit.layers:
        return list(unit.layers)
    layers, depth = [], unit.top
    while depth < base:
        thickness = min(rng.uniform(*unit.thickness), base - depth)
        layers.append((unit.rocks[len(layers) % 2], thickness))
        depth += thickness
    return layers


def layer_column(rng: np.random.Generator) -> Column:
    """Build the layer column of all units, with a per-layer Vp jitter and lateral trend."""
    tops, rock, facies, jitter = [], [], [], []
    bases = [u.top for u in UNITS[1:]] + [MODEL_BASE]
    for unit, base in zip(UNITS, bases, strict=True):
        depth = unit.top
        for name, thickness in unit_layers(unit, base, rng):
            tops.append(depth)
            rock.append(ROCK_NAMES.index(name))
            facies.append(unit.facies)
            jitter.append(1.0 + rng.uniform(-unit.vp_jitter, unit.vp_jitter))
            depth += thickness
    n = len(tops)
    wave = np.column_stack([rng.uniform(-0.12, 0.12, (n, 2)), rng.uniform(0, 2 * np.pi, n)])
    gas = rock.index(ROCK_NAMES.index("gas sand"))
    rock[gas] = ROCK_NAMES.index("brine sand")  # gas only above the contact; see gas_mask
    return Column(np.array(tops), np.array(rock), np.array(facies), np.array(jitter), wave, gas)


# ---------------------------------------------------------------------------------------------
# Structure and faults


def structure(i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Depth (samples, positive down) of the structural map at grid position (i, j)."""
    di, dj = i - CREST[0], j - CREST[1]
    dome = -DOME_RELIEF * np.exp(-0.5 * ((di / DOME_WIDTH[0]) ** 2 + (dj / DOME_WIDTH[1]) ** 2))
    tilt = REGIONAL_DIP[0] * di + REGIONAL_DIP[1] * dj
    ripple = 0.8 * np.sin(2 * np.pi * (0.6 * i + 0.8 * j) / 23.0 + 0.7)
    return dome + tilt + ripple


def relative_time(i: np.ndarray, j: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Unfolded depositional time tau of the point (i, j, k) before faulting.

    Folding maps tau to k = tau + s (A + B tau); this inverts it.
    """
    s = structure(i, j)
    return (k - GROWTH_A * s) / (1.0 + GROWTH_B * s)


def fault_frame(fault: Fault) -> tuple[np.ndarray, np.ndarray]:
    """Unit normal (pointing to the hanging wall) and unit strike vector of a fault, in (i, j)."""
    a = np.deg2rad(fault.azimuth)
    return np.array([np.cos(a), np.sin(a)]), np.array([-np.sin(a), np.cos(a)])


def fault_throw(fault: Fault, i: np.ndarray, j: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Throw in samples: elliptical along strike, growing with depth."""
    _, strike = fault_frame(fault)
    along = strike[0] * (i - fault.origin[0]) + strike[1] * (j - fault.origin[1])
    profile = np.sqrt(np.clip(1.0 - (along / fault.half_length) ** 2, 0.0, 1.0))
    growth = THROW_GROWTH[0] + THROW_GROWTH[1] * k / N_SAMPLES
    return fault.throw * profile * growth


def unfault(i, j, k):
    """Undo the faults, youngest first.

    Returns the pre-faulting position of every point, a mask of points on a fault surface and
    a fault-block code (bit n set: in the hanging wall of the n-th youngest fault).
    A hanging-wall point slid down the plane, so it came from ``throw`` samples shallower and
    ``dip * throw`` traces toward the footwall.
    """
    i, j, k = np.broadcast_arrays(i, j, k)
    on_fault = np.zeros(i.shape, dtype=bool)
    block = np.zeros(i.shape, dtype=np.int64)
    for n, fault in enumerate(reversed(FAULTS)):
        normal, _ = fault_frame(fault)
        d = normal[0] * (i - fault.origin[0]) + normal[1] * (j - fault.origin[1]) - fault.dip * k
        throw = fault_throw(fault, i, j, k)
        # A half-width of (|n_i| + |n_j|) / 2 traces gives a gap-free surface 1-2 traces thick.
        on_fault |= (np.abs(d) <= 0.5 * np.abs(normal).sum()) & (throw >= 1.0)
        block |= ((d > 0) & (throw > 0)).astype(np.int64) << n
        slip = np.where(d > 0, throw, 0.0)
        i, j, k = i - slip * fault.dip * normal[0], j - slip * fault.dip * normal[1], k - slip
    return i, j, k, on_fault, block


# ---------------------------------------------------------------------------------------------
# Earth model on the fine grid


@dataclass(frozen=True)
class Model:
    """Elastic model and labels on the fine time grid, arrays (inline, crossline, fine sample)."""

    vp: np.ndarray  # m/s
    vs: np.ndarray  # m/s
    rho: np.ndarray  # g/cm3
    facies: np.ndarray
    on_fault: np.ndarray
    gas: np.ndarray


def fine_samples() -> np.ndarray:
    """Fine-grid times in 4 ms samples, PAD samples beyond both ends of the window."""
    n = (N_SAMPLES + 2 * PAD) * OVERSAMPLE
    return -PAD + np.arange(n) / OVERSAMPLE


def window(fine: np.ndarray) -> np.ndarray:
    """The output window's samples of a fine-grid array (last axis)."""
    start = PAD * OVERSAMPLE
    return fine[..., start : start + N_SAMPLES * OVERSAMPLE : OVERSAMPLE]


def gas_mask(layer: np.ndarray, k: np.ndarray, block: np.ndarray, gas_layer: int) -> np.ndarray:
    """Gas in the gas sand of the fault blocks on the dome, each down to its own flat contact.

    Gas migrated up into the dome, so only blocks whose sand culminates within one dome width
    of the crest hold it; the faults seal, so each has a contact GAS_COLUMN samples below its
    own culmination. Arrays share the shape (inline, crossline, fine sample).
    """
    sand = layer == gas_layer
    gas = np.zeros_like(sand)
    for code in np.unique(block[sand]):
        in_block = sand & (block == code)
        crest = np.unravel_index(np.argmin(np.where(in_block, k, np.inf)), k.shape)
        offset = (crest[0] - CREST[0]) / DOME_WIDTH[0], (crest[1] - CREST[1]) / DOME_WIDTH[1]
        if np.hypot(*offset) <= 1.0:
            gas |= in_block & (k < k[crest] + GAS_COLUMN)
    return gas


def elastic(column: Column, layer, tau, i0, j0, gas):
    """Vp, Vs (m/s) and density (g/cm3) from the shale trend, the rock catalogue and the gas."""
    table = np.array([ROCKS[name] for name in ROCK_NAMES])
    rock = np.where(gas, ROCK_NAMES.index("gas sand"), column.rock[layer])
    kx, ky, phase = np.moveaxis(column.wave[layer], -1, 0)
    lateral = 1.0 + 0.015 * np.sin(kx * i0 + ky * j0 + phase)
    trend = 2300.0 + 6.5 * tau  # shale Vp grows with burial
    vp = trend * table[rock, 0] * column.vp_jitter[layer] * lateral
    rho = 0.31 * trend**0.25 + table[rock, 2]  # Gardner on the shale trend, then the rock's offset
    return vp, vp / table[rock, 1], rho


def earth_model(column: Column) -> Model:
    """Evaluate the folded, faulted model on the fine grid."""
    i = np.arange(len(ILINES), dtype=float)[:, None, None]
    j = np.arange(len(XLINES), dtype=float)[None, :, None]
    k = fine_samples()[None, None, :]
    i0, j0, k0, on_fault, block = unfault(i, j, k)
    tau = relative_time(i0, j0, k0)
    layer = np.searchsorted(column.tops, tau, side="right") - 1
    gas = gas_mask(layer, np.broadcast_to(k, layer.shape), block, column.gas_layer)
    vp, vs, rho = elastic(column, layer, tau, i0, j0, gas)
    return Model(vp, vs, rho, column.facies[layer], on_fault, gas)


# ---------------------------------------------------------------------------------------------
# Reflectivity and wavelets


def ricker(freq_hz: float, dt_s: float, half_length_s: float = 0.064) -> np.ndarray:
    """Zero-phase Ricker wavelet with peak frequency ``freq_hz``, unit peak."""
    t = np.arange(-half_length_s, half_length_s + dt_s / 2, dt_s)
    a = (np.pi * freq_hz * t) ** 2
    return (1.0 - 2.0 * a) * np.exp(-a)


def convolve_time(x: np.ndarray, wavelet: np.ndarray) -> np.ndarray:
    """Convolve every trace (last axis) with a centred, odd-length wavelet."""
    n = x.shape[-1] + len(wavelet) - 1
    y = np.fft.irfft(np.fft.rfft(x, n) * np.fft.rfft(wavelet, n), n)
    h = len(wavelet) // 2
    return y[..., h : h + x.shape[-1]]


def normal_incidence(z: np.ndarray) -> np.ndarray:
    """Reflection coefficients of impedance z; r[n] belongs to the interface above sample n."""
    r = np.zeros_like(z)
    r[..., 1:] = (z[..., 1:] - z[..., :-1]) / (z[..., 1:] + z[..., :-1])
    return r


def aki_richards(vp, vs, rho, angle_deg: float) -> np.ndarray:
    """P-P reflection coefficients at incidence angle, three-term Aki-Richards (Shuey's form).

    R = A + B sin^2(theta) + C (tan^2(theta) - sin^2(theta)) with
    A = (dVp/Vp + drho/rho) / 2, B = dVp/(2 Vp) - 4 (Vs/Vp)^2 dVs/Vs - 2 (Vs/Vp)^2 drho/rho,
    C = dVp/(2 Vp); contrasts over interface means.
    """

    def contrast(m):
        return (m[..., 1:] - m[..., :-1]) / (0.5 * (m[..., 1:] + m[..., :-1]))

    dvp, dvs, drho = contrast(vp), contrast(vs), contrast(rho)
    ratio = ((vs[..., 1:] + vs[..., :-1]) / (vp[..., 1:] + vp[..., :-1])) ** 2
    s2 = np.sin(np.deg2rad(angle_deg)) ** 2
    t2 = np.tan(np.deg2rad(angle_deg)) ** 2
    a, c = 0.5 * (dvp + drho), 0.5 * dvp
    b = c - 4.0 * ratio * dvs - 2.0 * ratio * drho
    r = np.zeros_like(vp)
    r[..., 1:] = a + b * s2 + c * (t2 - s2)
    return r


def synthetic(reflectivity: np.ndarray, freq_hz: float) -> np.ndarray:
    """Band-limit fine-grid reflectivity with a Ricker wavelet and keep the 4 ms window."""
    wavelet = ricker(freq_hz, DT_US * 1e-6 / OVERSAMPLE)
    return GAIN * window(convolve_time(reflectivity, wavelet))


def band_limited_noise(rng: np.random.Generator, shape: tuple[int, ...], freq_hz: float) -> np.ndarray:
    """Gaussian noise shaped by a Ricker spectrum on the 4 ms grid, unit standard deviation."""
    white = rng.standard_normal(shape[:-1] + (shape[-1] + 2 * PAD,))
    noise = convolve_time(white, ricker(freq_hz, DT_US * 1e-6))[..., PAD:-PAD]
    return noise / noise.std()


def add_noise(clean: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Field-like noise at NOISY_SNR_DB (geocnn.synth.noise's defaults): band-limited in time,
    correlated across neighbouring traces, spikes, bad traces and a smooth level trend."""
    return add_field_noise(clean, DT_US * 1e-6, NOISY_SNR_DB, rng, FieldNoise())


# ---------------------------------------------------------------------------------------------
# SEG-Y writing


def cdp_xy(il: np.ndarray, xl: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Map coordinates (metres) of the bin centres on the rotated 25 m grid."""
    az_xl = np.deg2rad(XLINE_AZIMUTH)
    az_il = az_xl + np.pi / 2  # inline numbers grow 90 degrees clockwise of crossline numbers
    dxl, dil = (xl - XLINES[0]) * BIN_M, (il - ILINES[0]) * BIN_M
    x = ORIGIN_XY[0] + dxl * np.sin(az_xl) + dil * np.sin(az_il)
    y = ORIGIN_XY[1] + dxl * np.cos(az_xl) + dil * np.cos(az_il)
    return x, y


def text_header(content: list[str], ilines: np.ndarray, xlines: np.ndarray, fmt: int, offsets: str) -> bytes:
    """SEG-Y rev 1 textual header (40 lines C01..C40): survey, content, geometry, header bytes used."""
    x0, y0 = cdp_xy(ilines[0], xlines[0])
    fmt_name = {1: "FORMAT 1 IBM FLOAT", 5: "FORMAT 5 IEEE FLOAT"}[fmt]
    lines = [
        "SURVEY: geocnn synthetic      AREA: none (synthetic)      CRS: local, metres",
        *content,
        "MADE BY data_samples/make_samples.py (geocnn), deterministic, fixed seeds",
        f"INLINES {ilines[0]}-{ilines[-1]} ({len(ilines)})  CROSSLINES {xlines[0]}-{xlines[-1]} "
        f"({len(xlines)})  BIN 25 X 25 M",
        f"GRID ORIGIN IL {ilines[0]} XL {xlines[0]} AT X {x0:.2f} Y {y0:.2f}",
        f"CROSSLINE NUMBERS GROW TOWARD AZIMUTH {XLINE_AZIMUTH:.0f}, INLINES TOWARD "
        f"{XLINE_AZIMUTH + 90:.0f} DEG",
        f"{N_SAMPLES} SAMPLES AT {DT_US // 1000} MS, 0-{(N_SAMPLES - 1) * DT_US // 1000} MS TWT, "
        f"{fmt_name}, BIG-ENDIAN",
        "TRACE HEADER BYTES: 1 SEQ IN LINE, 5 SEQ IN FILE, 9 FFID (=INLINE),",
        "  13 TRACE NO (=CROSSLINE), 21 CDP, 25 TRACE IN CDP, 29 TRACE ID (1),",
        f"  37 OFFSET ({offsets}), 71 COORD SCALAR (-100), 89 COORD UNITS (1),",
        "  109 DELAY (0), 115 SAMPLES, 117 INTERVAL (US), 181 CDP X, 185 CDP Y (CM),",
        "  189 INLINE, 193 CROSSLINE",
        "BINARY HEADER: 3213 TRACES/ENSEMBLE, 3217 INTERVAL, 3221 SAMPLES,",
        "  3225 FORMAT, 3227 FOLD, 3229 SORTING, 3255 UNITS (1=M), 3501 REV (1.0),",
        "  3503 FIXED LENGTH (1)",
    ]
    lines += [""] * (38 - len(lines)) + ["SEG Y REV1", "END TEXTUAL HEADER"]
    too_long = [line for line in lines if len(line) > 76]
    if too_long:
        raise ValueError(f"textual header lines longer than 76 characters: {too_long}")
    return "".join(f"C{n:02d} {line:<76}" for n, line in enumerate(lines, start=1)).encode("ascii")


CLEAN_TEXT = [
    "3D POST-STACK TIME, NOISE-FREE CONVOLUTIONAL SYNTHETIC",
    "LAYERED, FOLDED (DOME + REGIONAL DIP) EARTH MODEL WITH 3 NORMAL FAULTS",
    "NORMAL-INCIDENCE REFLECTIVITY OF ACOUSTIC IMPEDANCE, 28 HZ ZERO-PHASE RICKER",
]
NOISY_TEXT = [
    "3D POST-STACK TIME, SEISMIC_CLEAN PLUS FIELD-LIKE NOISE, SNR 2 DB",
    "SAME GEOMETRY AND TRACE HEADERS AS SEISMIC_CLEAN.SGY",
    "NOISE 5-10-45-65 HZ, AR(1) ACROSS TRACES 0.5, SPIKES, 2% BAD TRACES, TREND",
]
ANGLE_TEXT = [
    "3D PRE-STACK ANGLE GATHERS 5/15/25 DEG, AKI-RICHARDS CONVOLUTIONAL",
    "SUB-AREA OF SEISMIC_CLEAN.SGY; OFFSET BYTE 37 HOLDS THE INCIDENCE ANGLE",
    "3-TERM AKI-RICHARDS FROM VP/VS/DENSITY; CLASS-III GAS SAND ON THE DOME CREST",
]


def trace_headers(ilines, xlines, offsets) -> list[dict]:
    """Trace headers in file order (inline, crossline, offset)."""
    il, xl, off = (a.ravel() for a in np.meshgrid(ilines, xlines, offsets, indexing="ij"))
    x, y = cdp_xy(il, xl)
    per_line = len(xlines) * len(offsets)
    cdp = (il - ILINES[0]) * len(XLINES) + (xl - XLINES[0]) + 1  # numbered on the full survey
    F = segyio.TraceField
    return [
        {
            F.TRACE_SEQUENCE_LINE: int(n % per_line) + 1,
            F.TRACE_SEQUENCE_FILE: int(n) + 1,
            F.FieldRecord: int(il[n]),
            F.TraceNumber: int(xl[n]),
            F.CDP: int(cdp[n]),
            F.CDP_TRACE: int(n % len(offsets)) + 1,
            F.TraceIdentificationCode: 1,
            F.NStackedTraces: 1,
            F.offset: int(off[n]),
            F.SourceGroupScalar: COORD_SCALAR,
            F.CoordinateUnits: 1,
            F.DelayRecordingTime: 0,
            F.TRACE_SAMPLE_COUNT: N_SAMPLES,
            F.TRACE_SAMPLE_INTERVAL: DT_US,
            F.CDP_X: int(round(x[n] * 100)),
            F.CDP_Y: int(round(y[n] * 100)),
            F.INLINE_3D: int(il[n]),
            F.CROSSLINE_3D: int(xl[n]),
        }
        for n in range(il.size)
    ]


def write_segy(path: Path, data: np.ndarray, text: bytes, fmt: int, ilines, xlines, offsets=(0,)) -> None:
    """Write a (inline, crossline, sample) or (inline, crossline, offset, sample) cube, inline sorted."""
    spec = segyio.spec()
    spec.iline, spec.xline, spec.format = segyio.su.iline, segyio.su.xline, fmt
    spec.sorting = segyio.TraceSortingFormat.INLINE_SORTING
    spec.ilines, spec.xlines, spec.offsets = ilines, xlines, list(offsets)
    spec.samples = np.arange(N_SAMPLES) * DT_US / 1000.0
    prestack = len(offsets) > 1
    with segyio.create(str(path), spec) as f:
        f.text[0] = text
        f.bin.update(
            {
                segyio.BinField.Traces: len(offsets),
                segyio.BinField.AuxTraces: 0,
                segyio.BinField.EnsembleFold: len(offsets),
                segyio.BinField.SortingCode: 2 if prestack else 4,  # CDP ensemble / stacked
                segyio.BinField.MeasurementSystem: 1,
                segyio.BinField.SEGYRevision: 1,
                segyio.BinField.SEGYRevisionMinor: 0,
                segyio.BinField.TraceFlag: 1,
            }
        )
        f.header = trace_headers(ilines, xlines, offsets)
        # segyio converts IBM-float data in place, so hand it a private float32 copy.
        f.trace = np.array(data, dtype=np.float32).reshape(-1, N_SAMPLES)


# ---------------------------------------------------------------------------------------------
# Three-component microseismic records

N_RECORDS = 300
N_EVENTS = 150
MICRO_SAMPLES = 256
MICRO_DT = 0.002


def arrival(t: np.ndarray, onset: float, freq: float, cycles: float) -> np.ndarray:
    """Causal damped sinusoid starting at ``onset`` seconds, unit peak."""
    tt = np.clip(t - onset, 0.0, None)
    pulse = np.sin(2 * np.pi * freq * tt) * np.exp(-tt * freq / cycles) * (1 - np.exp(-tt * freq * 8))
    return pulse / np.abs(pulse).max()


def polarisations(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """P (along the ray) and S (perpendicular, SV/SH mix) unit vectors in (Z, N, E)."""
    back_az, incidence = rng.uniform(0, 2 * np.pi), rng.uniform(np.deg2rad(10), np.deg2rad(60))
    ci, si, cb, sb = np.cos(incidence), np.sin(incidence), np.cos(back_az), np.sin(back_az)
    p = np.array([ci, si * cb, si * sb])
    sv, sh = np.array([-si, ci * cb, ci * sb]), np.array([0.0, -sb, cb])
    mix = rng.uniform(0, 2 * np.pi)
    return p, np.cos(mix) * sv + np.sin(mix) * sh


def event(rng: np.random.Generator, t: np.ndarray) -> np.ndarray:
    """One P-then-S event, (3, samples); P amplitude 0.6-10 times the noise, S 2-4 times P."""
    p_dir, s_dir = polarisations(rng)
    t_p = rng.uniform(0.04, 0.28)
    t_s = t_p + rng.uniform(0.03, 0.16)
    amp_p = np.exp(rng.uniform(np.log(0.6), np.log(10.0)))
    amp_s = amp_p * rng.uniform(2.0, 4.0)
    p = amp_p * arrival(t, t_p, rng.uniform(40.0, 90.0), 2.0)
    s = amp_s * arrival(t, t_s, rng.uniform(20.0, 45.0), 3.0)
    coda = rng.standard_normal((3, t.size)) * np.exp(-np.clip(t - t_s, 0, None) / 0.05) * (t > t_s)
    return p_dir[:, None] * p + s_dir[:, None] * s + 0.15 * amp_s * coda


def glitch(rng: np.random.Generator, n: int) -> np.ndarray:
    """An instrument spike on one component: a nuisance that is not an event, (3, samples)."""
    out = np.zeros((3, n))
    start = rng.integers(10, n - 20)
    out[rng.integers(3), start : start + 3] = (
        rng.choice([-1, 1]) * rng.uniform(4, 12) * np.array([1, -0.6, 0.3])
    )
    return out


def microseismic(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Records (trace, component, sample) and labels; half contain an event, all are noisy."""
    t = np.arange(MICRO_SAMPLES) * MICRO_DT
    labels = np.zeros(N_RECORDS, dtype=np.int64)
    labels[rng.permutation(N_RECORDS)[:N_EVENTS]] = 1
    white = rng.standard_normal((N_RECORDS, 3, MICRO_SAMPLES + 8))
    noise = convolve_time(white, np.array([0.25, 0.5, 0.25]))[..., 4:-4] / np.sqrt(0.375)
    noise *= rng.uniform(0.8, 1.25, (N_RECORDS, 1, 1))
    swell = np.sin(
        2 * np.pi * rng.uniform(2, 6, (N_RECORDS, 3, 1)) * t + rng.uniform(0, 6.3, (N_RECORDS, 3, 1))
    )
    records = noise + rng.uniform(0.2, 0.8, (N_RECORDS, 3, 1)) * swell
    for n in range(N_RECORDS):
        if labels[n]:
            records[n] += event(rng, t)
        elif rng.random() < 0.15:
            records[n] += glitch(rng, MICRO_SAMPLES)
    return records.astype(np.float32), labels


# ---------------------------------------------------------------------------------------------


def angle_gathers(model: Model, rng: np.random.Generator) -> np.ndarray:
    """Angle gathers (inline, crossline, angle, sample) over the sub-area, with mild noise."""
    vp, vs, rho = model.vp[SUB_AREA], model.vs[SUB_AREA], model.rho[SUB_AREA]
    stacks = [
        synthetic(aki_richards(vp, vs, rho, a), f) for a, f in zip(ANGLES, ANGLE_RICKER_HZ, strict=True)
    ]
    gathers = np.stack(stacks, axis=2)
    noise = band_limited_noise(rng, gathers.shape, RICKER_HZ)
    return gathers + ANGLE_NOISE_TO_SIGNAL * stacks[0].std() * noise


# ---------------------------------------------------------------------------------------------
# Continuous earthquake records (miniSEED through ObsPy) with a pick list

QUAKE_RATE = 100.0  # Hz
QUAKE_SECONDS = 240
QUAKE_START = "2024-03-01T10:00:00"
QUAKE_STATIONS = ("AB01", "AB02", "AB03", "AB04", "AB05", "AB06")
QUAKE_EVENTS = 14
VP, VS = 6.0, 3.5  # km/s
GAP_STATION, GAP_SECONDS = 2, (150.0, 158.0)  # AB03 loses 8 s of data
NUMBERED_STATION = 5  # AB06 records HH1/HH2 instead of HHN/HHE


def quake_noise(rng: np.random.Generator, n: int) -> np.ndarray:
    """Coloured noise (3, n): microseism swell near 0.2-0.4 Hz, a 1/f-ish background and cultural hum bursts."""
    t = np.arange(n) / QUAKE_RATE
    white = rng.standard_normal((3, n + 64))
    brown = np.cumsum(white, axis=1)
    brown -= convolve_time(brown, np.ones(65) / 65)
    background = brown[:, 32:-32] / brown[:, 32:-32].std()
    swell = 3.0 * np.sin(2 * np.pi * rng.uniform(0.2, 0.4, (3, 1)) * t + rng.uniform(0, 6.3, (3, 1)))
    hum = np.sin(2 * np.pi * rng.uniform(8, 12) * t) * (np.sin(2 * np.pi * t / rng.uniform(20, 60)) > 0.7)
    return background + swell + 0.8 * rng.uniform(0.2, 1.0, (3, 1)) * hum


def quake_arrivals(rng: np.random.Generator, n: int, positions: np.ndarray) -> tuple[np.ndarray, list[tuple[int, str, float]]]:
    """Events at random times and places: (stations, 3, n) signal and the (station, phase, seconds) picks."""
    t = np.arange(n) / QUAKE_RATE
    signal = np.zeros((len(positions), 3, n))
    picks = []
    for origin in np.sort(rng.uniform(5.0, QUAKE_SECONDS - 25.0, QUAKE_EVENTS)):
        source = np.array([*rng.uniform(-25, 25, 2), rng.uniform(3, 15)])
        size = np.exp(rng.uniform(np.log(2.0), np.log(40.0)))
        for k, xy in enumerate(positions):
            dist = np.linalg.norm(source - np.array([*xy, 0.0]))
            t_p, t_s = origin + dist / VP, origin + dist / VS
            amp = size * 10.0 / dist
            p_dir, s_dir = polarisations(rng)
            p = amp * arrival(t, t_p, rng.uniform(6.0, 14.0), 2.5)
            s = 2.5 * amp * arrival(t, t_s, rng.uniform(3.0, 7.0), 3.0)
            coda = rng.standard_normal((3, n)) * np.exp(-np.clip(t - t_s, 0, None) / 2.0) * (t > t_s)
            signal[k] += p_dir[:, None] * p + s_dir[:, None] * s + 0.3 * amp * coda
            picks += [(k, "P", t_p), (k, "S", t_s)]
    return signal, sorted(picks, key=lambda p: (p[2], p[0]))


def write_quakes(out: Path, rng: np.random.Generator) -> None:
    """``records/AB0k.mseed`` (one file per station, int32 counts, Steim-2) and ``picks.csv`` (station,phase,time)."""
    from obspy import Stream, Trace, UTCDateTime  # the seismo extra: only this part of the script needs it

    n = int(QUAKE_SECONDS * QUAKE_RATE)
    positions = rng.uniform(-20, 20, (len(QUAKE_STATIONS), 2))
    signal, picks = quake_arrivals(rng, n, positions)
    start = UTCDateTime(QUAKE_START)
    (out / "records").mkdir(parents=True, exist_ok=True)
    for k, station in enumerate(QUAKE_STATIONS):
        counts = np.round(200.0 * (quake_noise(rng, n) + signal[k])).astype(np.int32)
        components = "Z12" if k == NUMBERED_STATION else "ZNE"
        traces = []
        for c, comp in enumerate(components):
            header = {"network": "XG", "station": station, "location": "", "channel": "HH" + comp,
                      "sampling_rate": QUAKE_RATE, "starttime": start}
            if k == GAP_STATION:
                a, b = (int(s * QUAKE_RATE) for s in GAP_SECONDS)
                traces += [Trace(counts[c, :a].copy(), header=header),
                           Trace(counts[c, b:].copy(), header={**header, "starttime": start + b / QUAKE_RATE})]
            else:
                traces.append(Trace(counts[c].copy(), header=header))
        Stream(traces).write(str(out / "records" / f"{station}.mseed"), format="MSEED", encoding="STEIM2", reclen=512)
    rows = [f"XG.{QUAKE_STATIONS[k]},{phase},{(start + sec).isoformat()}Z" for k, phase, sec in picks
            if sec < QUAKE_SECONDS]
    (out / "picks.csv").write_text("station,phase,time\n" + "\n".join(rows) + "\n", encoding="ascii", newline="\n")



def write_npy(path: Path, array: np.ndarray) -> None:
    """Save an array as .npy."""
    np.save(path, array, allow_pickle=False)


def write_labels_csv(path: Path, labels: np.ndarray) -> None:
    """The event labels as CSV with a ``trace,label`` header."""
    rows = [f"{n},{label}" for n, label in enumerate(labels)]
    path.write_text("trace,label\n" + "\n".join(rows) + "\n", encoding="ascii", newline="\n")


def velocity_model(vp: np.ndarray, rng: np.random.Generator):
    """The P-velocity of the angle sub-area as a CF-style netCDF model: ``vp`` and a noisy ``vp_noisy``
    (white scatter plus a smooth error along depth), dims (y, x, z) with metre coordinates."""
    import xarray as xr  # the geocnn[xarray] extra, needed for this file only

    ny, nx, nz = vp.shape
    scatter = rng.normal(0.0, MODEL_NOISE_MS, vp.shape)
    drift = np.cumsum(rng.normal(0.0, MODEL_NOISE_MS / 8, vp.shape), axis=-1)
    drift -= drift.mean(axis=-1, keepdims=True)
    noisy = vp + scatter + drift
    coords = {
        "y": ("y", ORIGIN_XY[1] + BIN_M * np.arange(ny), {"units": "m", "standard_name": "projection_y_coordinate"}),
        "x": ("x", ORIGIN_XY[0] + BIN_M * np.arange(nx), {"units": "m", "standard_name": "projection_x_coordinate"}),
        "z": ("z", MODEL_DZ_M * np.arange(nz), {"units": "m", "positive": "down", "long_name": "depth"}),
    }
    attrs = {"units": "m/s", "long_name": "P-wave velocity"}
    return xr.Dataset({"vp": (("y", "x", "z"), vp.astype(np.float32), attrs),
                       "vp_noisy": (("y", "x", "z"), noisy.astype(np.float32), {**attrs, "long_name": "P-wave velocity, noisy"})},
                      coords=coords, attrs={"title": "geocnn sample velocity model", "Conventions": "CF-1.8",
                                            "source": "data_samples/make_samples.py"})


def make_samples(out: Path) -> None:
    """Write every sample file into ``out``.

    Parameters
    ----------
    out
        Destination folder, created if missing.

    Examples
    --------
    >>> make_samples(Path("/tmp/geocnn-samples"))  # doctest: +SKIP
    """
    out.mkdir(parents=True, exist_ok=True)
    model = earth_model(layer_column(np.random.default_rng(SEED_GEOLOGY)))
    impedance = model.vp * model.rho
    clean = synthetic(normal_incidence(impedance), RICKER_HZ)
    noisy = add_noise(clean, np.random.default_rng(SEED_NOISE))
    full, sub = (ILINES, XLINES), (SUB_ILINES, SUB_XLINES)
    write_segy(out / "seismic_clean.sgy", clean, text_header(CLEAN_TEXT, *full, 1, "0"), 1, *full)
    write_segy(out / "seismic_noisy.sgy", noisy, text_header(NOISY_TEXT, *full, 5, "0"), 5, *full)
    write_npy(out / "faults.npy", window(model.on_fault).astype(np.uint8))
    write_npy(out / "facies.npy", window(model.facies).astype(np.uint8))
    write_npy(out / "impedance.npy", window(impedance).astype(np.float32))

    gathers = angle_gathers(model, np.random.default_rng(SEED_ANGLE_NOISE))
    text = text_header(ANGLE_TEXT, *sub, 5, "ANGLE, DEG")
    write_segy(out / "angles.sgy", gathers, text, 5, *sub, offsets=ANGLES)
    write_npy(out / "gas.npy", window(model.gas[SUB_AREA]).astype(np.uint8))

    model_nc = velocity_model(window(model.vp[SUB_AREA]), np.random.default_rng(SEED_MODEL_NOISE))
    model_nc.to_netcdf(out / "model.nc", engine="h5netcdf",
                       encoding={v: {"zlib": True, "complevel": 4, "chunksizes": (8, 24, 100)} for v in model_nc.data_vars})

    records, labels = microseismic(np.random.default_rng(SEED_MICROSEISMIC))
    write_npy(out / "traces3c.npy", records)
    write_npy(out / "traces3c_labels.npy", labels)
    write_labels_csv(out / "traces3c_labels.csv", labels)
    write_quakes(out, np.random.default_rng(SEED_QUAKES))
    make_tiff_samples(out)


# ---------------------------------------------------------------------------------------------
# TIFF families: a satellite scene (GeoTIFF) and a micro-CT volume (OME-TIFF), apart from the survey

SEED_SCENE = 61
SEED_CT = 71
SCENE_SHAPE = (192, 256)  # rows (north to south) × columns, 10 m pixels
SCENE_ORIGIN = (500000.0, 4650000.0)  # upper-left corner, UTM zone 33N (EPSG:32633)
SCENE_PIXEL = 10.0
SCENE_NODATA = 0  # uint16 reflectance 0: outside the swath
LANDCOVER = ("water", "forest", "cropland", "bare soil")
# surface reflectance × 10 000 in blue, green, red, near infrared (Sentinel-2-like), per land-cover class
SPECTRA = np.array([[600, 700, 500, 300], [400, 700, 450, 3000], [700, 1000, 1100, 2500], [1300, 1500, 1800, 2300]])
LABEL_NODATA = 255
CT_SHAPE = (48, 80, 80)  # slices × rows × columns
CT_VOXEL_UM = 2.5


def smooth_field(rng: np.random.Generator, shape: tuple[int, ...], scale: float) -> np.ndarray:
    """Gaussian-filtered white noise (FFT), unit standard deviation: patches about ``scale`` pixels across."""
    freqs = np.meshgrid(*[np.fft.fftfreq(n) for n in shape], indexing="ij")
    k2 = sum(f * f for f in freqs)
    field = np.real(np.fft.ifftn(np.fft.fftn(rng.standard_normal(shape)) * np.exp(-2 * (np.pi * scale) ** 2 * k2 / 4)))
    return (field - field.mean()) / field.std()


def landcover_scene(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """uint16 (4, rows, cols) reflectance and uint8 land-cover classes; a swath edge is nodata.

    Classes come from two smooth fields (a wet lowland with water, then forest, cropland and bare
    soil by the second); cropland is cut into rectangular fields with their own crop stage, so its
    red and NIR overlap forest's and bare soil's and a pixel's context matters.
    """
    rows, cols = SCENE_SHAPE
    wet, dry = smooth_field(rng, SCENE_SHAPE, 18.0), smooth_field(rng, SCENE_SHAPE, 10.0)
    classes = np.where(dry < -0.4, 1, np.where(dry < 0.6, 2, 3)).astype(np.uint8)
    classes[wet > 1.3] = 0
    stage = np.zeros(SCENE_SHAPE)
    for r0 in range(0, rows, 24):
        for c0 in range(0, cols, 32):
            stage[r0:r0 + 24, c0:c0 + 32] = rng.uniform(-0.6, 0.6)
    spectra = SPECTRA[classes].astype(np.float64).transpose(2, 0, 1)  # (band, rows, cols)
    crop = classes == 2
    spectra[2][crop] *= 1 - 0.5 * stage[crop]  # a greener crop: less red, more NIR
    spectra[3][crop] *= 1 + 0.3 * stage[crop]
    texture = 1 + 0.15 * smooth_field(rng, SCENE_SHAPE, 2.0)
    haze = 1 + 0.25 * np.linspace(0, 1, cols)[None, :]  # brighter to the east
    noisy = spectra * texture * haze + rng.normal(0, 150, (4, *SCENE_SHAPE))
    scene = np.clip(np.round(noisy), 1, 10000).astype(np.uint16)
    r, c = np.mgrid[:rows, :cols]
    outside = c + 0.5 * r > cols + 10  # the swath's eastern edge
    scene[:, outside] = SCENE_NODATA
    labels = np.where(outside, LABEL_NODATA, classes).astype(np.uint8)
    return scene, labels


def write_geotiff(path: Path, values: np.ndarray, nodata: float, names: tuple[str, ...] = ()) -> None:
    """A tiled, deflate-compressed GeoTIFF on the sample scene's grid (rasterio)."""
    import rasterio  # the geocnn[geo] extra, needed for these files only
    from rasterio.transform import from_origin

    profile = dict(driver="GTiff", width=values.shape[2], height=values.shape[1], count=values.shape[0],
                   dtype=values.dtype.name, crs="EPSG:32633", transform=from_origin(*SCENE_ORIGIN, SCENE_PIXEL,
                                                                                   SCENE_PIXEL),
                   nodata=nodata, tiled=True, blockxsize=64, blockysize=64, compress="deflate")
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(values)
        for k, name in enumerate(names):
            ds.set_band_description(k + 1, name)


def micro_ct(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """uint16 (z, y, x) micro-CT of a sandstone plug and uint8 pore labels (1 = pore).

    Grains are overlapping ellipsoids; the reconstruction blurs them (a small point-spread
    function), adds noise and a beam-hardening "cup" (brighter toward the plug's rim), so a global
    threshold mislabels the rim and the centre.
    """
    shape = CT_SHAPE
    z, y, x = np.meshgrid(*[np.arange(n, dtype=np.float64) for n in shape], indexing="ij")
    solid = np.zeros(shape, bool)
    for _ in range(380):
        cz, cy, cx = rng.uniform(0, shape[0]), rng.uniform(0, shape[1]), rng.uniform(0, shape[2])
        a, b, c = rng.uniform(4.0, 9.0, 3)
        solid |= ((z - cz) / a) ** 2 + ((y - cy) / b) ** 2 + ((x - cx) / c) ** 2 <= 1
    pores = ~solid
    density = np.where(solid, 1.0, 0.12)
    freqs = np.meshgrid(*[np.fft.fftfreq(n) for n in shape], indexing="ij")
    psf = np.exp(-2 * (np.pi * 1.0) ** 2 * sum(f * f for f in freqs))  # Gaussian blur, σ = 1 voxel
    blurred = np.real(np.fft.ifftn(np.fft.fftn(density) * psf))
    radius = np.hypot(y - shape[1] / 2, x - shape[2] / 2) / (shape[1] / 2)
    cup = 1 + 0.6 * radius ** 2  # beam hardening: the rim reads denser than the core
    ct = 9000 * blurred * cup + 2000 + rng.normal(0, 1500, shape)
    return np.clip(np.round(ct), 0, 65535).astype(np.uint16), pores.astype(np.uint8)


def write_ome(path: Path, volume: np.ndarray) -> None:
    """A zlib-compressed OME-TIFF with the voxel size in µm (tifffile)."""
    import tifffile  # the geocnn[tiff] extra, needed for these files only

    tifffile.imwrite(path, volume, ome=True, compression="zlib", metadata={
        "axes": "ZYX", "PhysicalSizeX": CT_VOXEL_UM, "PhysicalSizeY": CT_VOXEL_UM, "PhysicalSizeZ": CT_VOXEL_UM,
        "PhysicalSizeXUnit": "µm", "PhysicalSizeYUnit": "µm", "PhysicalSizeZUnit": "µm"})


def make_tiff_samples(out: Path) -> None:
    """The satellite scene (``scene.tif``, ``landcover.tif``) and the micro-CT plug (``ct.ome.tif``, ``pores.ome.tif``)."""
    scene, labels = landcover_scene(np.random.default_rng(SEED_SCENE))
    write_geotiff(out / "scene.tif", scene, SCENE_NODATA, ("blue", "green", "red", "nir"))
    write_geotiff(out / "landcover.tif", labels[None], LABEL_NODATA, ("landcover",))
    ct, pores = micro_ct(np.random.default_rng(SEED_CT))
    write_ome(out / "ct.ome.tif", ct)
    write_ome(out / "pores.ome.tif", pores)


def main(argv: list[str] | None = None) -> None:
    """Command line: ``python data_samples/make_samples.py [--out DIR]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(__file__).resolve().parent,
        help="folder to write the files into (default: this script's folder)",
    )
    make_samples(parser.parse_args(argv).out)


if __name__ == "__main__":
    main()
