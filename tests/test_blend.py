"""The prediction mergers: window weights, the ring buffer over first-axis rows (NumPy and torch,
the same bits), and ``--both-orientations`` with a model that is not orientation-symmetric."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from geocnn.config import load_config
from geocnn.patches import PatchGeometry, axis_weights, plan_windows
from geocnn.predict import predict
from geocnn.predict.blend import Merger, NumpyMerger, TorchMerger
from geocnn.runs.checkpoint import load_checkpoint, save_checkpoint
from geocnn.train import train
from tests import trainkit


def _plan_1d(n: int, size: int, overlap: float, blend: str):
    return plan_windows(PatchGeometry(("sample",), (n,), (0,), (size,)), overlap=overlap, blend=blend)


def blend_weights(extent: list[int], blend: str) -> np.ndarray:
    """A window's weight as the planner builds it: the outer product of the per-axis weights."""
    geom = PatchGeometry(tuple(f"a{i}" for i in range(len(extent))), tuple(extent), tuple(range(len(extent))),
                         tuple(extent))
    return plan_windows(geom, blend=blend).weight


def test_window_weights_by_hand():
    # linear (tent), size 4: x = (−1.5, −0.5, 0.5, 1.5), w = 1 − |x|/2.5 = (0.4, 0.8, 0.8, 0.4), / max → (0.5, 1, 1, 0.5)
    np.testing.assert_allclose(blend_weights([4], "linear"), [0.5, 1, 1, 0.5], rtol=1e-6)
    # gaussian, size 4: σ = 0.5, w = exp(−x²/(2σ²)) = exp(−2x²) → (e^−4.5, e^−0.5, …) / e^−0.5
    np.testing.assert_allclose(blend_weights([4], "gaussian"), [np.exp(-4), 1, 1, np.exp(-4)], rtol=1e-6)
    np.testing.assert_allclose(blend_weights([3], "none"), [1, 1, 1])
    # 2D: the outer product of the axes
    np.testing.assert_allclose(blend_weights([2, 4], "linear"), np.outer([1, 1], [0.5, 1, 1, 0.5]), rtol=1e-6)


def test_plan_starts_and_weight_sums_by_hand():
    # n = 10, windows of 4, overlap 0.25 → step round(4·0.75) = 3: starts 0, 3, 6 (6 = 10 − 4 ends on the grid)
    plan = _plan_1d(10, 4, 0.25, "linear")
    assert plan.starts == ((0, 3, 6),)
    np.testing.assert_allclose(axis_weights(4, "linear"), [0.5, 1, 1, 0.5], rtol=1e-6)
    # weight sums: window 0 gives (.5, 1, 1, .5) on 0..3, window 3 on 3..6, window 6 on 6..9
    np.testing.assert_allclose(plan.sums[0], [0.5, 1, 1, 1, 1, 1, 1, 1, 1, 0.5])


MERGERS = {"numpy": NumpyMerger, "torch": lambda *a, **k: TorchMerger(*a, **k, device=torch.device("cpu"))}


@pytest.fixture(params=list(MERGERS))
def merger(request):
    """Each merger implementation (NumPy, and tensors on the CPU standing in for a GPU's)."""
    return MERGERS[request.param]


def _host(values) -> np.ndarray:
    return values if isinstance(values, np.ndarray) else values.cpu().numpy()


def _stream(m: Merger, windows, whole: bool = False) -> np.ndarray:
    """Feed (plan, origin, values) windows in first-axis order, releasing finished rows before each one
    as prediction does (``whole``: every row released by ``finalize`` at the end); the released rows
    assembled, NaN where nothing was released."""
    out = np.full((m.buf.shape[1], *m.shape), np.nan, np.float32)

    def take(released):
        if released is not None:
            first, rows = released
            rows = _host(rows)
            out[:, first:first + rows.shape[1]] = rows

    for p, origin, values in windows:
        if not whole:
            take(m.release(origin[0]))
        m.aggregate(p, origin, m.batch(torch.from_numpy(values)))
    take(m.finalize())
    return out


def test_blender_weighted_mean_through_a_ring_that_wraps(merger):
    # Windows of 4 at 0, 3, 6 over 10 samples, tent weights (.5, 1, 1, .5); window values 10, 20 and 40.
    # The ring holds 4 rows: window 3 lands on ring slots 3, 0, 1, 2 and window 6 on 2, 3, 0, 1 (both wrap).
    #   samples 0–2: only window 0                       → 10
    #   sample 3: (.5·10 + .5·20) / (.5 + .5)            → 15
    #   samples 4–5: only window 3                       → 20
    #   sample 6: (.5·20 + .5·40) / 1                    → 30
    #   samples 7–9: only window 6                       → 40
    plan = _plan_1d(10, 4, 0.25, "linear")
    m = merger((10,), 1, [plan])
    assert m.cap == 4
    windows = [(0, (s,), np.full((1, 4), v, np.float32)) for s, v in ((0, 10), (3, 20), (6, 40))]
    out = _stream(m, windows)
    np.testing.assert_allclose(out[0], [10, 10, 10, 15, 20, 20, 30, 40, 40, 40], rtol=1e-6)
    assert not _host(m.buf).any()  # released rows are cleared for the next turn of the ring


def test_blender_position_dependent_values_through_the_wrap(merger):
    # values encode their sample: windows 0 and 6 hold i, window 3 holds i + 1000 (a wrong row shows at once):
    #   sample 3 = (.5·3 + .5·1003) / 1 = 503; samples 4, 5 = 1004, 1005; sample 6 = (.5·1006 + .5·6) / 1 = 506
    plan = _plan_1d(10, 4, 0.25, "linear")
    windows = [(0, (s,), (np.arange(s, s + 4) + (1000.0 if s == 3 else 0.0))[None].astype(np.float32))
               for s in (0, 3, 6)]
    out = _stream(merger((10,), 1, [plan]), windows)
    np.testing.assert_allclose(out[0], [0, 1, 2, 503, 1004, 1005, 506, 7, 8, 9], rtol=1e-6)


def test_blender_skips_rows_owned_by_another_process(merger):
    # this process owns rows 2..9: window 0's rows 0 and 1 are skipped, rows 2 and 3 kept
    plan = _plan_1d(10, 4, 0.25, "linear")
    windows = [(0, (s,), np.full((1, 4), v, np.float32)) for s, v in ((0, 10), (3, 20), (6, 40))]
    out = _stream(merger((10,), 1, [plan], rows=(2, 10)), windows)
    assert np.isnan(out[0, :2]).all()
    np.testing.assert_allclose(out[0, 2:], [10, 15, 20, 20, 30, 40, 40, 40], rtol=1e-6)
    # and a process owning rows 0..5 releases nothing past them, even after its last window
    out = _stream(merger((10,), 1, [plan], rows=(0, 6)), windows)
    np.testing.assert_allclose(out[0, :6], [10, 10, 10, 15, 20, 20], rtol=1e-6)
    assert np.isnan(out[0, 6:]).all()


def test_blender_averages_two_plans_each_normalised_by_its_own_weights(merger):
    # plan A: one window of 10 (uniform weights) holding 1; plan B: windows of 4 at 0, 3, 6 (tent) holding 10, 20, 40.
    # output = (A + B) / 2 = (1 + [10, 10, 10, 15, 20, 20, 30, 40, 40, 40]) / 2
    a, b = _plan_1d(10, 10, 0.0, "none"), _plan_1d(10, 4, 0.25, "linear")
    m = merger((10,), 1, [a, b])
    assert m.cap == 10
    windows = [(1, (0,), np.full((1, 4), 10, np.float32)), (0, (0,), np.ones((1, 10), np.float32)),
               (1, (3,), np.full((1, 4), 20, np.float32)), (1, (6,), np.full((1, 4), 40, np.float32))]
    out = _stream(m, windows)
    np.testing.assert_allclose(out[0], (1 + np.array([10, 10, 10, 15, 20, 20, 30, 40, 40, 40])) / 2, rtol=1e-6)


def _random_windows(plans, seed: int = 11):
    """(plan, origin, values) of every window of ``plans`` over a 23 × 5 grid, in first-axis order."""
    rng = np.random.default_rng(seed)
    return sorted(((p, o, rng.standard_normal((2, *plans[p].geom.extent)).astype(np.float32))
                   for p in range(len(plans)) for o in plans[p].windows((0, 23))), key=lambda w: (w[1][0], w[0]))


def _two_plans():
    geom = PatchGeometry(("inline", "sample"), (23, 5), (0, 1), (6, 5))
    return [plan_windows(geom, overlap=0.5, blend="gaussian"),
            plan_windows(PatchGeometry(("inline", "sample"), (23, 5), (0, 1), (4, 5)), overlap=0.25, blend="linear")]


@pytest.mark.parametrize("chunk", [1, 2, 3, 100])
def test_release_in_chunks_gives_the_bits_of_one_pass(merger, chunk):
    """Rows are released a few at a time (and split where they wrap around the ring): any chunk
    size gives the bits of dividing the whole span at once, for one plan and for two."""
    plans = _two_plans()
    windows = _random_windows(plans)
    for used in ([plans[0]], plans):
        picked = [(used.index(plans[p]), o, v) for p, o, v in windows if plans[p] in used]
        got = _stream(merger((23, 5), 2, used, chunk_rows=chunk), picked)
        # the reference: a ring as long as the grid (nothing wraps), every row divided in one pass
        reference = _stream(merger((23, 5), 2, used, ring_rows=23, chunk_rows=10**6), picked, whole=True)
        np.testing.assert_array_equal(got.view(np.uint32), reference.view(np.uint32))
        assert not np.isnan(got).any()


def test_numpy_and_torch_mergers_give_the_same_bits():
    """The merger protocol (aggregate, release, finalize) on the same windows: NumPy's and torch's
    float32 arithmetic agree bit for bit, released row for row, with their default chunking."""
    plans = _two_plans()
    windows = _random_windows(plans, seed=3)
    got = {}
    for name, make in MERGERS.items():
        m = make((23, 5), 2, plans, rows=(1, 23))
        released = []
        for p, origin, values in windows:
            step = m.release(origin[0])
            if step is not None:
                released.append((step[0], _host(step[1]).copy()))
            m.aggregate(p, origin, m.grid_layout(plans[p].geom, m.batch(torch.from_numpy(values))))
        first, rows = m.finalize()
        released.append((first, _host(rows).copy()))
        got[name] = released
        assert m.nbytes == 2 * 2 * 6 * 5 * 4  # plans × channels × ring rows (the tallest window) × rest × float32
    assert [f for f, _ in got["numpy"]] == [f for f, _ in got["torch"]]
    assert sum(r.shape[1] for _, r in got["numpy"]) == 22  # rows 1..22, each released once
    for (_, a), (_, b) in zip(got["numpy"], got["torch"]):
        np.testing.assert_array_equal(a.view(np.uint32), b.view(np.uint32))


def test_merger_adapters_dead_traces_and_layout(merger):
    m = merger((3, 4, 2), 2, [plan_windows(PatchGeometry(("inline", "crossline", "sample"), (3, 4, 2), (1, 2),
                                                         (4, 2)))])
    values = m.batch(torch.arange(2 * 3 * 4 * 2, dtype=torch.float32).reshape(2, 3, 4, 2))
    live = np.array([[True, False, True, True], [True] * 4, [False] * 4])
    zeroed = _host(m.zero_dead(values, live))
    assert (zeroed[:, ~live] == 0).all() and (zeroed[:, live] == _host(values)[:, live]).all()
    geom = PatchGeometry(("inline", "crossline", "sample"), (3, 4, 2), (2, 1), (2, 4))  # model axes (sample, xl)
    patch = m.batch(torch.arange(16, dtype=torch.float32).reshape(2, 2, 4))
    np.testing.assert_array_equal(_host(m.grid_layout(geom, patch)), geom.to_grid(_host(patch)))
    assert isinstance(m.host(values), np.ndarray)


def test_blender_2d_windows_across_the_second_axis(merger):
    # grid 4 × 6, windows 4 × 4 at (0, 0) and (0, 2), uniform weights: columns 2–3 are covered twice
    plan = plan_windows(PatchGeometry(("inline", "sample"), (4, 6), (0, 1), (4, 4)), overlap=0.5, blend="none")
    assert plan.starts == ((0,), (0, 2))
    m = merger((4, 6), 1, [plan])
    m.aggregate(0, (0, 0), m.batch(torch.full((1, 4, 4), 2.0)))
    m.aggregate(0, (0, 2), m.batch(torch.full((1, 4, 4), 6.0)))
    first, rows = m.release(4)
    # columns 0–1: 2; columns 2–3: (2 + 6) / 2 = 4; columns 4–5: 6
    assert first == 0
    np.testing.assert_allclose(_host(rows)[0], np.tile([2, 2, 4, 4, 6, 6], (4, 1)))
    assert m.finalize() is None  # nothing left


# ----------------------------------------------------------------------------- --both-orientations

SHIFT = """
dims: 2
in_channels: 1
layers: [{conv: {out: 1, kernel: [3, 1], padding: same, padding_mode: replicate}}]
"""


def _shift_run(tmp_path, section: str):
    """A run whose model reads the next sample along its FIRST axis: out[i, j] = x[min(i + 1, n − 1), j].

    Trained on inline sections (crossline × sample) it shifts along crosslines; on crossline sections
    (inline × sample) along inlines — not orientation-symmetric.
    """
    data = trainkit.write_regression(tmp_path, shape=(24, 12, 48))  # room for a split along either axis
    path = trainkit.write_config(tmp_path, "regression", data, SHIFT, {"max_steps": 1}, name=f"{section}.yaml",
                                 patch=[8, 16], section=section)
    run = train(load_config(path), tmp_path / section)
    for which in ("best", "last"):
        ckpt = load_checkpoint(run / "checkpoints" / f"{which}.pt")
        state = ckpt.model_state
        for key, value in state.items():
            # cross-correlation over (i − 1, i, i + 1) with weights (0, 0, 1) → x[i + 1]; bias 0
            state[key] = torch.tensor([0.0, 0.0, 1.0]).reshape(value.shape) if key.endswith("weight") \
                else torch.zeros_like(value)
        save_checkpoint(run / "checkpoints" / f"{which}.pt", ckpt)
    return run


def _next(volume: np.ndarray, axis: int) -> np.ndarray:
    """x[i + 1] along ``axis``, the last sample repeated (replicate padding)."""
    idx = np.minimum(np.arange(volume.shape[axis]) + 1, volume.shape[axis] - 1)
    return np.take(volume, idx, axis=axis)


def test_both_orientations_averages_the_inline_and_crossline_passes(tmp_path):
    # grid 8 × 8 × 16 = one 8 × 16 window per section in both orientations, so each pass is the exact shift:
    # inline sections shift along crosslines (axis 1), crossline sections along inlines (axis 0)
    run = _shift_run(tmp_path, "inline")
    volume = trainkit.layered_volume((8, 8, 16), seed=7)
    np.save(tmp_path / "vol.npy", volume)
    single = np.load(predict(run, [tmp_path / "vol.npy"], tmp_path / "one.npy", pictures=False).output)
    both = np.load(predict(run, [tmp_path / "vol.npy"], tmp_path / "both.npy", both_orientations=True,
                           pictures=False).output)
    along_xl, along_il = _next(volume, 1), _next(volume, 0)
    np.testing.assert_allclose(single, along_xl, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(both, (along_xl + along_il) / 2, rtol=1e-4, atol=1e-4)
    # the two passes differ, so the average is not the single pass (the test fails with the feature off)
    assert np.abs(both - single).max() > 0.1


def test_both_orientations_from_a_crossline_model(tmp_path):
    run = _shift_run(tmp_path, "crossline")
    volume = trainkit.layered_volume((8, 8, 16), seed=8)
    np.save(tmp_path / "vol.npy", volume)
    both = np.load(predict(run, [tmp_path / "vol.npy"], tmp_path / "both.npy", both_orientations=True,
                           pictures=False).output)
    np.testing.assert_allclose(both, (_next(volume, 0) + _next(volume, 1)) / 2, rtol=1e-4, atol=1e-4)
