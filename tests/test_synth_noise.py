"""Field-like noise (geocnn.synth.noise): each part measured against its definition."""

import numpy as np
import pytest

from geocnn.synth.noise import FieldNoise, add_field_noise, band_filter, field_noise, theoretical_correlation

DT = 0.004
STATIONARY = FieldNoise(spikes=0, bad_traces=0, trend=0)


def _corr(a: np.ndarray, axis: int, lag: int) -> float:
    a = np.moveaxis(a, axis, -1)
    return float(np.mean(a[..., lag:] * a[..., :-lag]) / np.mean(a * a)) if lag else 1.0


def test_stationary_noise_has_the_band_and_lateral_correlation_asked_for():
    noise = field_noise((40, 50, 200), DT, np.random.default_rng(0), STATIONARY)
    truth = theoretical_correlation(200, DT, STATIONARY, lags=4)
    for lag in range(1, 5):
        assert _corr(noise, 2, lag) == pytest.approx(truth["sample"][lag], abs=0.03)
        for axis in (0, 1):
            assert _corr(noise, axis, lag) == pytest.approx(0.5 ** lag, abs=0.03)
    assert noise.std() == pytest.approx(1.0)


def test_energy_stays_in_the_pass_band():
    noise = field_noise((30, 30, 256), DT, np.random.default_rng(1), STATIONARY)
    power = np.mean(np.abs(np.fft.rfft(noise, axis=-1)) ** 2, axis=(0, 1))
    f = np.fft.rfftfreq(256, DT)
    inside = power[(f >= 10) & (f <= 45)].sum()
    outside = power[(f < 4) | (f > 66)].sum()
    assert outside < 0.01 * inside  # what leaks is the cut of a longer filtered record
    assert band_filter(256, DT, (5, 10, 45, 65))[(f >= 10) & (f <= 45)].min() == 1.0


def test_bad_traces_spikes_and_trend_are_there():
    spec = FieldNoise(trend=0, spikes=0.002, spike_amp=20.0, bad_traces=0.05, bad_gain=5.0)
    noise = field_noise((60, 60, 200), DT, np.random.default_rng(2), spec)
    trace_std = noise.std(axis=-1).ravel()
    loud = trace_std > 2.5 * np.median(trace_std)
    assert 0.03 < loud.mean() < 0.07  # 5 % of the traces, 5× louder
    assert (np.abs(noise) > 8 * np.median(trace_std)).mean() > 0.001  # spikes far above the noise
    level = field_noise((200, 400), DT, np.random.default_rng(3), FieldNoise(spikes=0, bad_traces=0, trend=0.4))
    block_std = level.reshape(10, 20, 20, 20).std(axis=(1, 3))
    assert block_std.max() / block_std.min() > 1.5  # the level changes over the survey


def test_add_field_noise_hits_the_snr_and_is_seeded():
    rng = np.random.default_rng(4)
    clean = rng.standard_normal((20, 20, 100)).astype(np.float32) * 300
    noisy = add_field_noise(clean, DT, 3.0, np.random.default_rng(5))
    snr = 10 * np.log10(np.sum(clean.astype(float) ** 2) / np.sum((noisy - clean).astype(float) ** 2))
    assert snr == pytest.approx(3.0, abs=0.01)
    assert noisy.dtype == np.float32
    np.testing.assert_array_equal(noisy, add_field_noise(clean, DT, 3.0, np.random.default_rng(5)))


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="band corners"):
        band_filter(64, DT, (10, 5, 40, 60))
    with pytest.raises(ValueError, match="lateral correlation"):
        field_noise((4, 64), DT, np.random.default_rng(0), FieldNoise(lateral_corr=1.0))
