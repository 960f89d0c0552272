"""The prediction blender: window weights, the ring buffer over first-axis rows, and
``--both-orientations`` with a model that is not orientation-symmetric."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from geocnn.config import load_config
from geocnn.patches import PatchGeometry, axis_weights, plan_windows
from geocnn.predict import Blender, predict
from geocnn.runs import load_checkpoint, save_checkpoint
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


def _stream_adding(blender: Blender, windows) -> np.ndarray:
    """Feed (plan, start, values) windows in first-axis order, releasing finished rows before each one
    as prediction does; the released rows assembled (NaN where nothing was released)."""
    out = np.full((blender.buf.shape[1], blender.shape[0]), np.nan, np.float32)
    for p, start, values in windows:
        released = blender.release(start)
        if released is not None:
            first, rows = released
            out[:, first:first + rows.shape[1]] = rows
        blender.add(p, (start,), values)
    first, rows = blender.release(blender.shape[0])
    out[:, first:first + rows.shape[1]] = rows
    return out


def test_blender_weighted_mean_through_a_ring_that_wraps():
    # Windows of 4 at 0, 3, 6 over 10 samples, tent weights (.5, 1, 1, .5); window values 10, 20 and 40.
    # The ring holds 4 rows: window 3 lands on ring slots 3, 0, 1, 2 and window 6 on 2, 3, 0, 1 (both wrap).
    #   samples 0–2: only window 0                       → 10
    #   sample 3: (.5·10 + .5·20) / (.5 + .5)            → 15
    #   samples 4–5: only window 3                       → 20
    #   sample 6: (.5·20 + .5·40) / 1                    → 30
    #   samples 7–9: only window 6                       → 40
    plan = _plan_1d(10, 4, 0.25, "linear")
    blender = Blender((10,), 1, [plan])
    assert blender.cap == 4
    windows = [(0, s, np.full((1, 4), v, np.float32)) for s, v in ((0, 10), (3, 20), (6, 40))]
    out = _stream_adding(blender, windows)
    np.testing.assert_allclose(out[0], [10, 10, 10, 15, 20, 20, 30, 40, 40, 40], rtol=1e-6)
    assert not blender.buf.any()  # released rows are cleared for the next turn of the ring


def test_blender_position_dependent_values_through_the_wrap():
    # values encode their sample: windows 0 and 6 hold i, window 3 holds i + 1000 (a wrong row shows at once):
    #   sample 3 = (.5·3 + .5·1003) / 1 = 503; samples 4, 5 = 1004, 1005; sample 6 = (.5·1006 + .5·6) / 1 = 506
    plan = _plan_1d(10, 4, 0.25, "linear")
    blender = Blender((10,), 1, [plan])
    windows = [(0, s, (np.arange(s, s + 4) + (1000.0 if s == 3 else 0.0))[None].astype(np.float32))
               for s in (0, 3, 6)]
    out = _stream_adding(blender, windows)
    np.testing.assert_allclose(out[0], [0, 1, 2, 503, 1004, 1005, 506, 7, 8, 9], rtol=1e-6)


def test_blender_skips_rows_owned_by_another_process():
    # this process owns rows 2..9 (base 2): window 0's rows 0 and 1 are skipped, rows 2 and 3 kept
    plan = _plan_1d(10, 4, 0.25, "linear")
    blender = Blender((10,), 1, [plan])
    blender.base = 2
    windows = [(0, s, np.full((1, 4), v, np.float32)) for s, v in ((0, 10), (3, 20), (6, 40))]
    out = _stream_adding(blender, windows)
    assert np.isnan(out[0, :2]).all()
    np.testing.assert_allclose(out[0, 2:], [10, 15, 20, 20, 30, 40, 40, 40], rtol=1e-6)


def test_blender_averages_two_plans_each_normalised_by_its_own_weights():
    # plan A: one window of 10 (uniform weights) holding 1; plan B: windows of 4 at 0, 3, 6 (tent) holding 10, 20, 40.
    # output = (A + B) / 2 = (1 + [10, 10, 10, 15, 20, 20, 30, 40, 40, 40]) / 2
    a, b = _plan_1d(10, 10, 0.0, "none"), _plan_1d(10, 4, 0.25, "linear")
    blender = Blender((10,), 1, [a, b])
    assert blender.cap == 10
    windows = [(1, 0, np.full((1, 4), 10, np.float32)), (0, 0, np.ones((1, 10), np.float32)),
               (1, 3, np.full((1, 4), 20, np.float32)), (1, 6, np.full((1, 4), 40, np.float32))]
    out = _stream_adding(blender, windows)
    np.testing.assert_allclose(out[0], (1 + np.array([10, 10, 10, 15, 20, 20, 30, 40, 40, 40])) / 2, rtol=1e-6)


@pytest.mark.parametrize("chunk", [1, 2, 3, 100])
@pytest.mark.parametrize("device", [None, torch.device("cpu")])
def test_release_in_chunks_gives_the_bits_of_one_pass(monkeypatch, chunk, device):
    """Rows are released a few at a time (and split where they wrap around the ring): any chunk
    size gives the bits of dividing the whole span at once, for one plan and for two."""
    rng = np.random.default_rng(11)
    geom = PatchGeometry(("inline", "sample"), (23, 5), (0, 1), (6, 5))
    plans = [plan_windows(geom, overlap=0.5, blend="gaussian"),
             plan_windows(PatchGeometry(("inline", "sample"), (23, 5), (0, 1), (4, 5)), overlap=0.25, blend="linear")]
    windows = sorted(((p, o[0], rng.standard_normal((2, *plans[p].geom.extent)).astype(np.float32))
                      for p in range(2) for o in plans[p].windows((0, 23))), key=lambda w: (w[1], w[0]))
    for used in ([plans[0]], plans):
        picked = [(used.index(plans[p]), s, v) for p, s, v in windows if plans[p] in used]
        blender = Blender((23, 5), 2, used, device)
        monkeypatch.setattr(Blender, "chunk_rows", property(lambda self: chunk))
        got = _stream_adding_2d(blender, picked)
        # the reference: a ring as long as the grid (nothing wraps), every row divided in one pass
        monkeypatch.setattr(Blender, "chunk_rows", property(lambda self: 10**6))
        whole = Blender((23, 5), 2, used, device)
        whole.cap = 23
        whole.buf = whole.buf.new_zeros((len(used), 2, 23, 5)) if device else np.zeros((len(used), 2, 23, 5), np.float32)
        reference = _stream_adding_2d(whole, picked, whole=True)
        monkeypatch.undo()
        np.testing.assert_array_equal(got.view(np.uint32), reference.view(np.uint32))
        assert not np.isnan(got).any()


def _stream_adding_2d(blender: Blender, windows, whole: bool = False) -> np.ndarray:
    """:func:`_stream_adding` for (C, rows, n) windows; ``whole``: every row released at the end, in one span."""
    out = np.full((blender.buf.shape[1], *blender.shape), np.nan, np.float32)

    def take(released):
        if released is not None:
            first, rows = released
            rows = rows if isinstance(rows, np.ndarray) else rows.cpu().numpy()
            out[:, first:first + rows.shape[1]] = rows

    for p, start, values in windows:
        if not whole:
            take(blender.release(start))
        blender.add(p, (start, 0), values if blender.device is None else torch.from_numpy(values))
    take(blender.release(blender.shape[0]))
    return out


def test_blender_2d_windows_across_the_second_axis():
    # grid 4 × 6, windows 4 × 4 at (0, 0) and (0, 2), uniform weights: columns 2–3 are covered twice
    plan = plan_windows(PatchGeometry(("inline", "sample"), (4, 6), (0, 1), (4, 4)), overlap=0.5, blend="none")
    assert plan.starts == ((0,), (0, 2))
    blender = Blender((4, 6), 1, [plan])
    blender.add(0, (0, 0), np.full((1, 4, 4), 2.0, np.float32))
    blender.add(0, (0, 2), np.full((1, 4, 4), 6.0, np.float32))
    first, rows = blender.release(4)
    # columns 0–1: 2; columns 2–3: (2 + 6) / 2 = 4; columns 4–5: 6
    assert first == 0
    np.testing.assert_allclose(rows[0], np.tile([2, 2, 4, 4, 6, 6], (4, 1)))


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
