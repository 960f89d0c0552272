"""The noise correlation measured from noisy data alone, against the noise's known correlation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from geocnn.classical.noisecorr import (
    CORRELATED,
    MAX_SAMPLES,
    MAX_TRACES,
    measure_grid,
    measure_lines,
    read_lines,
)
from geocnn.grids.grid import open_grid
from geocnn.grids.inspect import inspect_inputs
from geocnn.selfsup.blindspots import auto_shape
from geocnn.synth.faults import FaultCubeSpec, fault_cube
from geocnn.synth.noise import FieldNoise, field_noise, theoretical_correlation

SAMPLES = Path(__file__).resolve().parents[1] / "data_samples"
THEORY = theoretical_correlation(128, 0.004, FieldNoise(), lags=8)  # lateral 0.5, 0.25; samples 0.68, 0.04, −0.38, −0.34


def lines_of(cube: np.ndarray) -> dict[str, np.ndarray]:
    """Every line along the inlines and along the crosslines of an (inline, crossline, sample) cube."""
    return {"inline": np.moveaxis(cube, 0, 1), "crossline": cube}


def assert_near_theory(m, lateral_tol: float, sample_tol: float) -> None:
    for axis, values in m.lateral.items():
        np.testing.assert_allclose(values[1:3], THEORY["trace"][1:3], atol=lateral_tol, err_msg=axis)
    np.testing.assert_allclose(m.samples[1:5], THEORY["sample"][1:5], atol=sample_tol)


@pytest.mark.slow  # about 4-6 s: the quick suite stays under 4 minutes on 2 cores
def test_the_sample_survey_noise_is_measured_from_the_noisy_file_alone():
    m = measure_grid(open_grid(SAMPLES / "seismic_noisy.sgy"))
    assert m.lines == 48 + 64  # every crossline and every inline: fewer than MAX_LINES
    assert_near_theory(m, lateral_tol=0.04, sample_tol=0.06)  # measured: 0.035, 0.053
    assert (m.extent("inline"), m.extent("crossline"), m.extent("sample")) == (1, 1, 4)


@pytest.mark.slow
def test_a_differently_generated_cube_is_measured_as_well():
    cube = fault_cube(FaultCubeSpec(shape=(48, 48, 128), snr_db=(2.0, 2.0)), np.random.default_rng(2024))
    m = measure_lines(lines_of(cube.noisy))
    assert_near_theory(m, lateral_tol=0.06, sample_tol=0.11)  # measured: 0.053, 0.107
    shape, why = auto_shape(m, ("crossline", "sample"))
    assert shape.to_config() == [3, "all"]
    assert why[0].startswith("crossline: noise correlated over 1 trace")


def test_white_noise_is_uncorrelated_everywhere():
    noise = np.random.default_rng(0).standard_normal((16, 48, 100))
    m = measure_lines({"trace": noise})
    assert max(abs(c) for c in m.lateral["trace"][1:]) < 0.02
    assert max(abs(c) for c in m.samples[1:]) < 0.02
    assert auto_shape(m, ("trace", "sample"))[0].to_config() == [1, 1]


@pytest.mark.slow
def test_noise_without_signal_reads_low_across_traces():
    """The far-trace prediction also fits some noise: with no signal to fit, lag 1 reads 0.37 for 0.5
    (with signal, 0.47): still above the 1/3 that hides a trace on each side."""
    noise = field_noise((48, 48, 128), 0.004, np.random.default_rng(3))
    m = measure_lines(lines_of(noise))
    assert m.lateral["crossline"][1] == pytest.approx(0.37, abs=0.03)
    assert m.extent("crossline") == 1 and m.lateral["crossline"][1] > CORRELATED
    np.testing.assert_allclose(m.samples[1:5], THEORY["sample"][1:5], atol=0.08)  # measured: 0.076


def test_reading_is_bounded_whatever_the_survey(tmp_path):
    big = np.zeros((4, 300, 700), np.float32)
    np.save(tmp_path / "big.npy", big)
    lines = read_lines(open_grid(tmp_path / "big.npy"), 1, max_lines=3, seed=0)
    assert lines.shape == (3, MAX_TRACES, MAX_SAMPLES)


def test_too_few_traces_are_not_measured(tmp_path):
    np.save(tmp_path / "narrow.npy", np.random.default_rng(0).standard_normal((3, 5, 64)).astype(np.float32))
    assert measure_grid(open_grid(tmp_path / "narrow.npy")) is None
    shape, why = auto_shape(None, ("crossline", "sample"))
    assert shape.to_config() == [1, 1] and "not measured" in why[0]


@pytest.mark.slow
def test_inspect_shows_the_noise_correlation_of_seismic_but_not_of_labels(cli):
    noisy, faults = inspect_inputs([SAMPLES / "seismic_noisy.sgy", SAMPLES / "faults.npy"])
    axes = noisy["noise"]["axes"]
    assert {a: axes[a]["extent"] for a in axes} == {"inline": 1, "crossline": 1, "sample": 4}
    assert axes["crossline"]["correlation"][:3] == pytest.approx([1.0, 0.47, 0.22], abs=0.01)
    assert "noise" not in faults
    shown = cli("inspect", SAMPLES / "seismic_noisy.sgy").stdout
    assert "noise correlation" in shown and "crossline: 0.47 0.22" in shown
