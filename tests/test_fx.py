"""f-x deconvolution on its own: plane waves pass, random noise goes, windows blend to the input."""

from __future__ import annotations

import numpy as np
import pytest

from geocnn.classical.fx import FxParams, fx_decon, fx_decon_lines, taper, window_starts
from geocnn.synth.faults import ricker

DT = 0.004


def plane_waves(events, n_traces=48, n_samples=100) -> np.ndarray:
    """Linear events (t0 samples, dip samples/trace, amplitude) of a 25 Hz Ricker, shifted exactly
    (a phase ramp per frequency), so each is one complex exponential along the traces."""
    f = np.fft.rfftfreq(n_samples, DT)
    w = np.fft.rfft(ricker(25.0, DT), n_samples)
    out = np.zeros((n_traces, n_samples))
    for t0, dip, amp in events:
        for j in range(n_traces):
            out[j] += amp * np.fft.irfft(w * np.exp(-2j * np.pi * f * (t0 + dip * j) * DT), n_samples)
    return out


def snr_db(x: np.ndarray, ref: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(ref**2) / np.sum((x - ref) ** 2)))


@pytest.mark.parametrize(("events", "least_db"), [
    ([(30, 0.5, 1.0)], 50.0),                      # one dipping event: 52 dB
    ([(30, 0.5, 1.0), (60, -0.3, -0.7)], 35.0),    # two crossing events: 37 dB
])
def test_linear_events_pass_unchanged(events, least_db):
    section = plane_waves(events)
    assert snr_db(fx_decon(section, DT), section) > least_db


def test_random_noise_is_removed_by_a_measured_amount():
    section = plane_waves([(30, 0.5, 1.0), (60, -0.3, -0.7)])
    noise = np.random.default_rng(0).standard_normal(section.shape)
    # white noise to Nyquist; f-x works on 3-75 Hz (0.6 × Nyquist), the rest passes
    processed = fx_decon(noise, DT)
    f = np.fft.rfftfreq(section.shape[1], DT)
    band = (f >= 3) & (f <= 75)
    kept = np.abs(np.fft.rfft(processed, axis=1)[:, band]) ** 2
    assert kept.sum() / (np.abs(np.fft.rfft(noise, axis=1)[:, band]) ** 2).sum() == pytest.approx(0.12, abs=0.02)
    np.testing.assert_allclose(np.fft.rfft(processed, axis=1)[:, ~band], np.fft.rfft(noise, axis=1)[:, ~band],
                               atol=1e-9)  # one time window: outside the band, exactly the input
    noisy = section + noise * section.std()
    every = FxParams(fmin_hz=0.0, fmax_fraction=1.0)
    assert snr_db(noisy, section) == pytest.approx(0.0, abs=0.1)
    assert snr_db(fx_decon(noisy, DT, every), section) == pytest.approx(6.3, abs=0.2)  # +6.3 dB


def test_window_weights_add_up_to_one_where_windows_overlap():
    starts = window_starts(48, 20)
    assert starts == [0, 10, 20, 28]
    total = np.zeros(48)
    for s in starts:
        total[s:s + 20] += taper(20, s == starts[0], s == starts[-1])
    np.testing.assert_allclose(total[:28], 1.0, atol=1e-12)  # the regular overlaps (the last window is shifted)
    assert window_starts(12, 20) == [0]


def test_every_line_of_a_cube_is_one_section():
    rng = np.random.default_rng(1)
    cube = rng.standard_normal((3, 24, 64))
    done = fx_decon_lines(cube, DT, axis=1)
    for i in range(3):
        np.testing.assert_allclose(done[i], fx_decon(cube[i], DT))
    along_inlines = fx_decon_lines(cube, DT, axis=0)
    np.testing.assert_allclose(along_inlines[:, 5], fx_decon(cube[:, 5], DT))


def test_too_few_traces_pass_through():
    section = np.random.default_rng(2).standard_normal((4, 64))
    np.testing.assert_array_equal(fx_decon(section, DT), section)
