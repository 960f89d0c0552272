"""Faulted synthetic cubes (geocnn.synth.faults): geometry checked against the faults' own numbers."""

import numpy as np
import pytest

from geocnn.synth.faults import (
    FaultCubeSpec,
    Folds,
    fault_cube,
    fault_frame,
    fault_tau,
    layered_trace,
    ricker,
    rotate_phase,
    unfault,
    voxel_positions,
)

SMALL = FaultCubeSpec(shape=(32, 28, 48), faults=(1, 3), throw=(2.0, 5.0))
FLAT = Folds(bumps=(), planar=(0.0, 0.0), n_samples=60)  # unfolded: τ = sample index


def _fault(throw: float, strike: float = 0.0, dip: float = 70.0, reverse: bool = False,
           centre=(20.0, 20.0, 30.0)) -> dict:
    return {"centre": list(centre), "strike_deg": strike, "dip_deg": dip, "throw": throw, "growth": 0.0,
            "length": 1e6, "height": 1e6, "reverse": reverse}  # huge extent: the same throw everywhere


@pytest.mark.parametrize("reverse", [False, True])
def test_hanging_wall_slips_by_the_throw_along_the_dip(reverse):
    shape = (40, 40, 60)
    p = _fault(6.0, reverse=reverse)
    tau, labels = fault_tau(shape, FLAT, [p], min_throw=1.0)
    normal, _, down_dip = fault_frame(p)
    # strike along inline → the fault plane's normal has no inline part; the hanging wall is +dist
    assert abs(normal[0]) < 1e-12 and normal @ down_dip == pytest.approx(0, abs=1e-12)
    vertical = 6.0 * down_dip[2] * (-1 if reverse else 1)
    foot, hang = tau[5, 2, 30], tau[5, 37, 30]  # far from the plane on either side
    assert foot == pytest.approx(30.0)
    assert hang == pytest.approx(30.0 - vertical, abs=1e-4)  # normal fault: older (shallower τ) material above
    # the label is the plane: 1-2 voxels across it on every crossline row, on every inline
    across = labels.sum(axis=1)
    assert across.min() >= 1 and across.max() <= 2


def test_no_slip_no_label_below_min_throw():
    tau, labels = fault_tau((20, 20, 30), Folds((), (0.0, 0.0), 30), [_fault(0.5)], min_throw=1.0)
    assert labels.sum() == 0
    assert np.abs(tau - np.arange(30)).max() <= 0.5 + 1e-6


@pytest.mark.parametrize("strike,dip", [(0.0, 85.0), (37.0, 62.0), (90.0, 75.0), (151.0, 88.0)])
def test_labels_are_a_surface_without_holes(strike, dip):
    # every grid line along the lateral axis closest to the plane's normal crosses the label 1-2 times
    shape = (36, 36, 36)
    p = _fault(4.0, strike, dip, centre=(18.0, 18.0, 18.0))
    _, labels = fault_tau(shape, FLAT, [p], min_throw=1.0)
    normal, _, _ = fault_frame(p)
    axis = int(np.argmax(np.abs(normal[:2])))
    counts = np.moveaxis(labels, axis, -1).sum(axis=-1)
    inner = counts[6:-6, 6:-6]  # lines that cross the plane inside the cube, whatever the axis
    assert inner.min() >= 1 and inner.max() <= 2


def test_a_younger_fault_carries_the_older_fault_with_it():
    # old fault: strike along inline (dips toward higher crosslines); young fault: strike along
    # crossline, hanging wall at higher inlines. On the young hanging wall the old fault's trace
    # in a crossline section is shifted down by the young vertical throw t·sin δ, i.e. along
    # crosslines by t·sin δ / tan δ_old.
    shape = (48, 40, 60)
    old = _fault(3.0, strike=0.0, dip=70.0, centre=(24.0, 20.0, 30.0))
    young = _fault(8.0, strike=90.0, dip=80.0, centre=(24.0, 20.0, 30.0))
    _, labels = fault_tau(shape, FLAT, [old, young], min_throw=1.0)

    def old_fault_crossline(i: int, k: int) -> float:
        return float(np.mean(np.flatnonzero(labels[i, :, k])))

    _, _, young_dip = fault_frame(young)
    assert fault_frame(young)[0][0] < 0  # hanging wall (positive normal side) toward lower inlines
    drop = 8.0 * young_dip[2]  # vertical throw of the young fault
    shift = drop / np.tan(np.deg2rad(70.0))  # the old plane moves this far along crosslines
    foot, hang = old_fault_crossline(44, 30), old_fault_crossline(4, 30)
    assert hang - foot == pytest.approx(-shift, abs=0.75)


def test_folds_are_exact_at_any_position():
    folds = Folds(bumps=((3.0, 10.0, 12.0, 6.0),), planar=(0.1, -0.05), n_samples=40)
    q = tuple(np.asarray(v, np.float32) for v in ([2.5, 10.0], [7.25, 12.0], [0.0, 20.0]))
    expected = [q[2][n] + 3.0 * np.exp(-((q[0][n] - 10) ** 2 + (q[1][n] - 12) ** 2) / 72) * (0.5 + q[2][n] / 40)
                + 0.1 * q[0][n] - 0.05 * q[1][n] for n in range(2)]
    np.testing.assert_allclose(folds.tau(q), expected, rtol=1e-6)


def test_unfault_leaves_the_footwall_alone():
    shape = (10, 30, 20)
    q = voxel_positions(shape)
    labels = np.zeros(shape, np.uint8)
    p = _fault(5.0, centre=(5.0, 15.0, 10.0))
    back = unfault(q, labels, p, shape[2], 1.0)
    full = np.broadcast_arrays(*q)
    foot = np.broadcast_to(np.arange(30)[None, :, None] < 12, shape)  # well inside the footwall
    for before, after in zip(full, back):
        np.testing.assert_array_equal(np.broadcast_to(after, shape)[foot], before[foot])


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
    assert a.info["fault_share"] == pytest.approx(a.faults.mean())
    snr = 10 * np.log10(np.sum(a.clean.astype(float) ** 2) / np.sum((a.noisy - a.clean).astype(float) ** 2))
    assert snr == pytest.approx(a.info["snr_db"], abs=0.01)
    c = fault_cube(SMALL, np.random.default_rng(8))
    assert not np.array_equal(a.clean, c.clean)


def test_seismic_is_continuous_away_from_faults_and_breaks_across_them():
    # neighbouring traces agree where no fault separates them and differ across a fault
    spec = FaultCubeSpec(shape=(40, 40, 64), faults=(1, 1), throw=(8.0, 8.0), snr_db=None, fold_relief=(0.0, 0.0),
                         dip_deg=(85.0, 85.0), growth=(0.0, 0.0))
    cube = fault_cube(spec, np.random.default_rng(3))
    lab = cube.faults.astype(bool)
    step = [np.abs(np.diff(cube.clean, axis=a)) for a in (0, 1)]
    crosses = [lab[1:] | lab[:-1], lab[:, 1:] | lab[:, :-1]]
    far = np.mean([s[~c].mean() for s, c in zip(step, crosses)])
    near = np.mean([s[c].mean() for s, c in zip(step, crosses)])
    assert near > 2 * far


def test_spec_refuses_backward_ranges_and_shallow_faults():
    with pytest.raises(ValueError, match="throw"):
        FaultCubeSpec(throw=(5.0, 2.0))
    with pytest.raises(ValueError, match="45"):
        FaultCubeSpec(dip_deg=(30.0, 80.0))


def test_layered_trace_is_band_limited_by_the_wavelet():
    trace = layered_trace(200, ricker(30.0, 0.001), np.random.default_rng(0))
    spec = np.abs(np.fft.rfft(trace)) ** 2
    f = np.fft.rfftfreq(len(trace), 0.001)
    assert spec[f > 120].sum() < 0.01 * spec.sum()
