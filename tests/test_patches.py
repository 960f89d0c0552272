"""The window planner: hand-computed origins, grid → windows → grid round trips, a split with a gap."""

from __future__ import annotations

import numpy as np
import pytest

from geocnn.errors import ConfigError
from geocnn.patches import (
    PatchGeometry,
    axis_starts,
    fitting_centres,
    fixed_origins,
    make_split,
    patch_geometry,
    plan_windows,
    sample_origins,
)

AXES = ("inline", "crossline", "sample")


def position_grid(shape: tuple[int, ...]) -> np.ndarray:
    """(1, *shape) float64 whose values encode their address: inline·10⁴ + crossline·10² + sample."""
    idx = np.indices(shape)
    return sum(i * 100.0 ** (len(shape) - 1 - a) for a, i in enumerate(idx))[None]


class ArrayGrid:
    """Just enough of a Grid for PatchGeometry.read: an in-memory (C, *shape) array."""

    def __init__(self, values: np.ndarray) -> None:
        self.values = values

    def read(self, window: tuple[slice, ...]) -> np.ndarray:
        return self.values[(slice(None), *window)]


# ----------------------------------------------------------------------------- hand-computed origins

@pytest.mark.parametrize(("n", "size", "overlap", "starts"), [
    (10, 4, 0.5, [0, 2, 4, 6]),      # step 2, the last window ends at 10
    (10, 4, 0.25, [0, 3, 6]),        # step round(3.0) = 3; 6 + 4 = 10
    (11, 4, 0.25, [0, 3, 6, 7]),     # 6 + 4 = 10 < 11: one more window aligned to the end
    (8, 8, 0.5, [0]),                # one window fits exactly
    (3, 4, 0.0, [0]),                # grid smaller than the window: one (padded) window
    (9, 4, 0.9, [0, 1, 2, 3, 4, 5]),  # step round(0.4) = 0 → at least 1
])
def test_axis_starts_by_hand(n, size, overlap, starts):
    assert axis_starts(n, size, overlap) == starts


def test_plan_of_inline_sections_by_hand():
    # 2D sections (crossline × sample) of a 3 × 10 × 11 cube, window 4 × 4, overlap 0.25
    geom = patch_geometry(AXES, (3, 10, 11), (4, 4), section="inline")
    plan = plan_windows(geom, overlap=0.25)
    assert geom.extent == (1, 4, 4)
    assert plan.starts == ((0, 1, 2), (0, 3, 6), (0, 3, 6, 7))
    assert plan.shape == (3, 3, 4)
    assert plan.count() == 36
    assert plan.centres == [[0, 1, 2], [2, 5, 8], [2, 5, 8, 9]]
    assert plan.origin((2, 1, 3)) == (2, 3, 7)
    origins = list(plan.windows())
    assert origins[:5] == [(0, 0, 0), (0, 0, 3), (0, 0, 6), (0, 0, 7), (0, 3, 0)]
    assert origins[-1] == (2, 6, 7)
    # windows touching rows [1, 2) are those of inline 1 only
    assert {o[0] for o in plan.windows((1, 2))} == {1}
    assert plan.count((1, 2)) == 12


def test_plan_inside_a_region_by_hand():
    # rows 2..9 of an axis of 12, window 4, no overlap: starts 2 and 5 (5 + 4 = 9, aligned to the end)
    geom = PatchGeometry(("inline", "sample"), (12, 6), (0, 1), (4, 6))
    plan = plan_windows(geom, ((2, 9), (0, 6)))
    assert plan.starts == ((2, 5), (0,))
    lo, hi = plan.bounds
    assert lo.tolist() == [2, 0] and hi.tolist() == [5, 0]
    # no blending: sums count the windows covering each sample (0 outside the region)
    assert plan.sums[0].tolist() == [0, 0, 1, 1, 1, 2, 1, 1, 1, 0, 0, 0]


def test_linear_weights_and_sums_by_hand():
    geom = PatchGeometry(("sample",), (6,), (0,), (4,))
    plan = plan_windows(geom, overlap=0.5, blend="linear")
    # tent over 4 samples: 1 − |x| / 2.5 at x = ±1.5, ±0.5 → 0.4, 0.8, 0.8, 0.4, normalised by 0.8
    np.testing.assert_allclose(plan.weights[0], [0.5, 1.0, 1.0, 0.5], rtol=1e-6)
    assert plan.starts == ((0, 2),)
    np.testing.assert_allclose(plan.sums[0], [0.5, 1.0, 1.5, 1.5, 1.0, 0.5], rtol=1e-6)


# ----------------------------------------------------------------------------- round trip

def blend_back(plan, grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """grid → weighted windows → grid, as dense prediction does with an identity model (no ring
    buffer): returns the blended grid and the normalised weight sum (1 where covered)."""
    geom, shape = plan.geom, grid.shape[1:]
    acc = np.zeros(grid.shape, np.float64)
    wsum = np.zeros(shape, np.float64)
    for origin in plan.windows():
        window = tuple(slice(o, min(o + e, n)) for o, e, n in zip(origin, geom.extent, shape))
        clip = tuple(slice(0, w.stop - w.start) for w in window)
        patch = geom.read(ArrayGrid(grid), origin)  # (C, *size) in model order
        acc[(slice(None), *window)] += (geom.to_grid(patch) * plan.weight)[(slice(None), *clip)]
        wsum[window] += plan.weight[clip]
    total = plan.sums[0]
    for s in plan.sums[1:]:
        total = np.multiply.outer(total, s)
    np.testing.assert_allclose(wsum, total, rtol=1e-6)  # the separable sums are the real ones
    return acc / total, wsum / total


@pytest.mark.parametrize("blend", ["gaussian", "linear", "none"])
@pytest.mark.parametrize("overlap", [0.0, 0.25, 0.5, 0.8])
@pytest.mark.parametrize(("shape", "section", "size"), [
    ((4, 13, 37), "inline", (8, 16)),     # no size a multiple of the window
    ((9, 5, 20), "crossline", (4, 7)),
    ((6, 10, 12), "time", (6, 5)),
])
def test_sections_round_trip(shape, section, size, overlap, blend):
    grid = position_grid(shape)
    geom = patch_geometry(AXES, shape, size, section=section)
    out, weight = blend_back(plan_windows(geom, overlap=overlap, blend=blend), grid)
    np.testing.assert_allclose(weight, 1.0, rtol=1e-6)  # every sample covered, weights sum to 1
    np.testing.assert_allclose(out, grid, rtol=1e-6)  # float32 weights


@pytest.mark.parametrize("overlap", [0.0, 0.3, 0.6])
def test_cubes_and_traces_round_trip(overlap):
    grid = position_grid((11, 7, 19))
    cube = PatchGeometry(AXES, (11, 7, 19), (0, 1, 2), (4, 4, 8))
    out, weight = blend_back(plan_windows(cube, overlap=overlap, blend="gaussian"), grid)
    np.testing.assert_allclose(weight, 1.0, rtol=1e-6)
    np.testing.assert_allclose(out, grid, rtol=1e-6)  # float32 weights
    traces = patch_geometry(AXES, (11, 7, 19), (8,))  # windows 0, 8 (or closer), 11 along sample
    out, _ = blend_back(plan_windows(traces, overlap=overlap, blend="linear"), grid)
    np.testing.assert_allclose(out, grid, rtol=1e-6)  # float32 weights


def test_the_streaming_blender_reproduces_the_grid():
    from geocnn.predict.blend import NumpyMerger

    shape = (10, 6, 23)
    grid = position_grid(shape).astype(np.float32)
    geom = patch_geometry(AXES, shape, (4, 8), section="inline")
    plan = plan_windows(geom, overlap=0.4, blend="gaussian")
    merger = NumpyMerger(shape, 1, [plan])
    out = np.zeros_like(grid)
    for origin in plan.windows():  # first-axis order: each row is final once the next starts
        released = merger.release(origin[0])
        if released is not None:
            first, values = released
            out[:, first:first + values.shape[1]] = values
        merger.aggregate(0, origin, geom.to_grid(geom.read(ArrayGrid(grid), origin)))
    first, values = merger.finalize()
    out[:, first:] = values
    np.testing.assert_allclose(out, grid, rtol=1e-5)


# ----------------------------------------------------------------------------- split with a gap

def test_split_along_a_spanned_axis_keeps_a_gap():
    # crossline × sample sections of a 6 × 40 × 30 cube, split along crossline, patch 8 × 16:
    # 10 validation crosslines (25%), gap = patch width 8, 22 training crosslines
    geom = patch_geometry(AXES, (6, 40, 30), (8, 16), section="inline")
    split = make_split(geom, "crossline", 0.25, "auto")
    assert (split.axis, split.train, split.val, split.gap) == (1, (0, 22), (30, 40), 8)
    train, val = split.plan(geom, "train"), split.plan(geom, "val")
    assert train.starts[1] == (0, 8, 14)  # tiling of the training block: the last window ends at 22
    assert val.starts[1] == (30, 32)
    # rare-class centres all inside the validation block are never drawn: every window is uniform
    centres = np.array([[3, 35, 15], [0, 39, 0]])
    origins = sample_origins(train, 2000, np.random.default_rng(0), centres=centres, centred_share=0.5)
    assert origins[:, 1].min() == 0 and origins[:, 1].max() + 8 == 22  # reaches the edge, never past it
    assert np.array_equal(origins, sample_origins(train, 2000, np.random.default_rng(0)))
    assert max(o[1] for o in train.windows()) + 8 == 22
    held = fixed_origins(val, 50, seed=1)
    assert held[:, 1].min() >= 30 and held[:, 1].max() + 8 <= 40
    assert np.array_equal(held, fixed_origins(val, 50, seed=1))  # the same every epoch


def test_split_of_sections_along_the_held_axis():
    # inline sections split along inline: gap auto = one inline; 20 inlines → 5 val, 1 gap, 14 train
    geom = patch_geometry(AXES, (20, 12, 30), (8, 16), section="inline")
    split = make_split(geom, None, 0.25, "auto")
    assert (split.train, split.val, split.gap) == ((0, 14), (15, 20), 1)
    origins = sample_origins(split.plan(geom, "train"), 500, np.random.default_rng(2))
    assert set(origins[:, 0].tolist()) == set(range(14))  # inline 14 (the gap) never drawn
    assert set(split.plan(geom, "val").starts[0]) == {15, 16, 17, 18, 19}


def test_split_too_small_names_the_numbers():
    geom = patch_geometry(AXES, (6, 20, 30), (8, 16), section="inline")
    with pytest.raises(ConfigError, match="20 samples along crossline.*at least 8, a gap of 8"):
        make_split(geom, "crossline", 0.25, "auto")


# ----------------------------------------------------------------------------- balanced draws

def test_fitting_centres_keeps_those_a_training_window_can_be_centred_on():
    # inline × sample grid 40 × 16, patch 8 × 16, 10 validation inlines, gap 4: training inlines 0-25,
    # window starts 0..18 along inline, so a centre (start + 4) lies on inline 4..22 and sample 8 only
    geom = PatchGeometry(("inline", "sample"), (40, 16), (0, 1), (8, 16))
    train = make_split(geom, "inline", 0.25, 4).plan(geom, "train")
    assert train.region == ((0, 26), (0, 16))
    centres = np.array([[3, 8], [4, 8], [22, 8], [23, 8], [30, 8], [10, 7], [10, 9]])
    assert fitting_centres(train, centres).tolist() == [[4, 8], [22, 8]]


def test_balanced_draws_stay_in_the_training_block_without_an_edge_pile_up():
    geom = PatchGeometry(("inline", "sample"), (40, 16), (0, 1), (8, 16))
    train = make_split(geom, "inline", 0.25, 4).plan(geom, "train")
    # the rare class on every inline of the grid (training block, gap and validation block alike)
    centres = np.array([[i, 8] for i in range(40)])
    origins = sample_origins(train, 19_000, np.random.default_rng(0), centres=centres, centred_share=1.0)
    # every window is centred on a rare-class sample inside the training block
    assert set((origins[:, 0] + 4).tolist()) == set(range(4, 23)) and (origins[:, 1] == 0).all()
    # 19 possible starts (0..18): uniform share 1/19 ≈ 5.3 %; clipping the 18 centres on inlines 22-39
    # to the last start put 45 % there
    share = np.bincount(origins[:, 0], minlength=19) / len(origins)
    assert share[18] < 2 / 19 and share.max() < 2 / 19
