"""Faulted synthetic cubes (geocnn.synth.faults): geometry checked against the fault's own numbers."""

import numpy as np
import pytest

from geocnn.synth.faults import (
    FaultCubeSpec,
    apply_fault,
    fault_cube,
    fault_frame,
    layered_trace,
    ricker,
    rotate_phase,
    trilinear,
)

SMALL = FaultCubeSpec(shape=(32, 28, 48), faults=(1, 3), throw=(2.0, 5.0))


def _flat_fault(throw: float, reverse: bool = False) -> dict:
    return {"centre": [20.0, 20.0, 30.0], "strike_deg": 0.0, "dip_deg": 70.0, "throw": throw,
            "length": 1e6, "height": 1e6, "reverse": reverse}  # huge extent: the same throw everywhere


@pytest.mark.parametrize("reverse", [False, True])
def test_hanging_wall_slips_by_the_throw_along_the_dip(reverse):
    shape = (40, 40, 60)
    tau = np.broadcast_to(np.arange(60, dtype=np.float64), shape).copy()  # flat layers: τ = sample
    p = _flat_fault(6.0, reverse)
    moved, labels = apply_fault(tau, np.zeros(shape, np.uint8), p, min_throw=1.0)
    normal, _, down_dip = fault_frame(p)
    # strike along inline → the fault plane's normal has no inline part; the hanging wall is +dist
    assert abs(normal[0]) < 1e-12 and normal @ down_dip == pytest.approx(0, abs=1e-12)
    vertical = 6.0 * down_dip[2] * (-1 if reverse else 1)
    foot, hang = moved[5, 2, 30], moved[5, 37, 30]  # far from the plane on either side
    assert foot == pytest.approx(30.0)
    assert hang == pytest.approx(30.0 - vertical)  # normal fault: older (shallower τ) material above
    # the label is the plane: one voxel thick across it, on every inline
    on_plane = labels.sum(axis=1)
    assert on_plane.min() >= 1 and on_plane.max() <= 2


def test_no_slip_no_label_below_min_throw():
    shape = (20, 20, 30)
    tau = np.broadcast_to(np.arange(30, dtype=np.float64), shape).copy()
    moved, labels = apply_fault(tau, np.zeros(shape, np.uint8), _flat_fault(0.5), min_throw=1.0)
    assert labels.sum() == 0
    assert np.abs(moved - tau).max() <= 0.5 + 1e-9


def test_trilinear_is_exact_on_a_linear_field():
    i, j, k = np.meshgrid(np.arange(5.0), np.arange(6.0), np.arange(7.0), indexing="ij")
    field = 2 * i - 3 * j + 0.5 * k + 1
    pos = np.random.default_rng(0).uniform(0, [4, 5, 6], size=(200, 3))
    np.testing.assert_allclose(trilinear(field, pos), 2 * pos[:, 0] - 3 * pos[:, 1] + 0.5 * pos[:, 2] + 1)


def test_phase_rotation_keeps_the_spectrum_and_90_degrees_is_the_quadrature():
    w = ricker(30.0, 0.001)
    r = rotate_phase(w, 90.0)
    np.testing.assert_allclose(np.abs(np.fft.rfft(r)), np.abs(np.fft.rfft(w)), atol=1e-6)  # DC: the truncated Ricker's tiny mean is dropped
    assert abs(np.dot(w, r)) < 1e-6 * np.dot(w, w)  # orthogonal to the zero-phase wavelet
    np.testing.assert_allclose(rotate_phase(w, 0.0), w, atol=1e-12)


def test_cubes_are_seeded_labelled_and_normalised():
    a = fault_cube(SMALL, np.random.default_rng(7))
    b = fault_cube(SMALL, np.random.default_rng(7))
    np.testing.assert_array_equal(a.noisy, b.noisy)
    np.testing.assert_array_equal(a.faults, b.faults)
    assert a.clean.shape == a.noisy.shape == a.faults.shape == SMALL.shape
    assert a.clean.dtype == np.float32 and a.faults.dtype == np.uint8
    assert a.clean.std() == pytest.approx(1.0, rel=1e-4)
    assert 1 <= len(a.info["faults"]) <= 3 and 0 < a.faults.mean() < 0.2
    snr = 10 * np.log10(np.sum(a.clean.astype(float) ** 2) / np.sum((a.noisy - a.clean).astype(float) ** 2))
    assert snr == pytest.approx(a.info["snr_db"], abs=0.01)
    c = fault_cube(SMALL, np.random.default_rng(8))
    assert not np.array_equal(a.clean, c.clean)


def test_layered_trace_is_band_limited_by_the_wavelet():
    trace = layered_trace(200, ricker(30.0, 0.001), np.random.default_rng(0))
    spec = np.abs(np.fft.rfft(trace)) ** 2
    f = np.fft.rfftfreq(len(trace), 0.001)
    assert spec[f > 120].sum() < 0.01 * spec.sum()
