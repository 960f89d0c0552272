"""The parts of ``geocnn.predict`` on their own: the request record, the window plans (score maps
with their stride), the pending-output interface a new format implements, the kept input rows."""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from geocnn import atomic
from geocnn.errors import ConfigError
from geocnn.grids import writer
from geocnn.grids.formats import FORMATS, Format
from geocnn.grids.pending import OutputSpec, PendingOutput, fit_window
from geocnn.patches import PatchGeometry, plan_windows
from geocnn.predict import PredictRequest, predict
from geocnn.predict.fill import KeptRows
from geocnn.predict.plan import map_plan, map_steps
from tests import trainkit

CUBE = ("inline", "crossline", "sample")


# ----------------------------------------------------------------------------- the request

def test_a_request_holds_every_option_checked_once():
    r = PredictRequest("run", ["a.sgy"], "p.npy", stride=[2, 4, 8], window=[64, 64], axes={"trace": "crossline"})
    assert (r.inputs, r.stride, r.window, r.axes) == (("a.sgy",), (2, 4, 8), (64, 64), {"trace": "crossline"})
    assert (r.overlap, r.blend, r.output, r.format.name) == (0.25, "gaussian", "auto", "npy")
    assert PredictRequest("run", ["a"], "p.npy", stride={"inline": 2}).stride == {"inline": 2}


@pytest.mark.parametrize("options, message", [
    ({"overlap": 1.0}, r"--overlap must be in \[0, 1\), got 1.0"),
    ({"blend": "cosine"}, "--blend must be one of gaussian, linear, none, got cosine"),
    ({"output": "label"}, "unknown --output 'label'"),
    ({"out": "p.txt"}, "cannot tell the output format from the name"),
    ({"stride": {"inline": 0}}, "--stride steps must be at least 1, got 0"),
    ({"stride": [1, -2]}, "--stride steps must be at least 1, got 1,-2"),
    ({"batch_size": 0}, "--batch-size must be at least 1, got 0"),
    ({"window": (0, 16)}, "--window sizes must be at least 1, got 0,16"),
    ({"inputs": ()}, "no input file given"),
])
def test_each_bad_option_is_refused_before_any_work(options, message):
    args = {"run": "no/such/run", "inputs": ("a.sgy",), "out": "p.npy", **options}
    with pytest.raises(Exception, match=message) as err:
        PredictRequest(**args)
    assert type(err.value).__name__ in ("ConfigError", "DataError")


def test_an_output_below_a_regular_file_is_refused_before_the_model_is_loaded(tmp_path):
    (tmp_path / "results").write_text("a file\n")
    with pytest.raises(ConfigError, match="results' is a file, so no folder can be made there"):
        PredictRequest(tmp_path / "no-such-run", ("a.sgy",), tmp_path / "results" / "pred.npy")


# ----------------------------------------------------------------------------- plans

# (grid shape, patch axes, patch size, overlap, --stride) → (steps, starts) as geocnn 0.x's map_plan gave them
MAP_PLANS = [
    (((5, 40, 100), (1, 2), (16, 64)), 0.0, {"inline": 2, "crossline": 8, "sample": 12},
     (2, 8, 12), ((0, 2, 4), (0, 8, 16, 24), (0, 12, 24, 36))),
    (((12, 24, 48), (1, 2), (8, 16)), 0.25, None, (1, 6, 12), (tuple(range(12)), (0, 6, 12), (0, 12, 24))),
    (((12, 24, 48), (1, 2), (8, 16)), 0.5, 3, (3, 3, 3), ((0, 3, 6, 9), tuple(range(0, 17, 3)), tuple(range(0, 33, 3)))),
    (((12, 24, 16), (1, 2), (8, 16)), 0.25, 1, (1, 1, 1), (tuple(range(12)), tuple(range(17)), (0,))),
    (((12, 24, 48), (0, 1, 2), (4, 8, 16)), 0.3, [2, 5, 7], (2, 5, 7),
     ((0, 2, 4, 6, 8), (0, 5, 10, 15), (0, 7, 14, 21, 28))),
]


@pytest.mark.parametrize("geometry, overlap, stride, steps, starts", MAP_PLANS)
def test_map_plans_with_stride_equal_the_previous_map_plan(geometry, overlap, stride, steps, starts):
    shape, axes, size = geometry
    geom = PatchGeometry(CUBE, shape, axes, size)
    plan = map_plan(geom, overlap, stride)
    assert (plan.stride, plan.starts) == (steps, starts)
    assert plan.shape == tuple(len(s) for s in starts)
    assert plan.centres[2] == [s + size[-1] // 2 for s in starts[2]]


def test_a_gather_map_keeps_the_offset_step_of_its_single_window():
    geom = PatchGeometry(("inline", "crossline", "offset", "sample"), (4, 6, 3, 32), (2, 3), (3, 16))
    plan = map_plan(geom, 0.25, {"sample": 8})
    assert plan.stride == (1, 1, 2, 8) and plan.starts[2:] == ((0,), (0, 8, 16))  # step 2, one window of 3


def test_stride_is_a_planning_parameter_of_plan_windows():
    geom = PatchGeometry(("inline", "sample"), (5, 11), (1,), (4,))
    tiling, regular = plan_windows(geom, overlap=0.25), plan_windows(geom, stride=(2, 3))
    assert tiling.starts == ((0, 1, 2, 3, 4), (0, 3, 6, 7)) and tiling.stride is None  # the last aligned to the end
    assert regular.starts == ((0, 2, 4), (0, 3, 6)) and regular.stride == (2, 3)  # evenly spaced, none moved
    # weight sums count the windows each sample is under: windows at 0, 3, 6 leave sample 10 under none
    np.testing.assert_array_equal(regular.sums[1], [1, 1, 1, 2, 1, 1, 2, 1, 1, 1, 0])
    np.testing.assert_array_equal(regular.sums[0], [1, 0, 1, 0, 1])


def test_stride_names_and_counts_are_checked_against_the_input():
    geom = PatchGeometry(CUBE, (12, 24, 48), (1, 2), (8, 16))
    with pytest.raises(ConfigError, match=r"--stride names depth, not an axis of the input \(inline, crossline"):
        map_steps(geom, 0.25, {"depth": 2})
    with pytest.raises(ConfigError, match=r"--stride needs one step, or one per input axis .* got 2"):
        map_steps(geom, 0.25, (2, 4))


# ----------------------------------------------------------------------------- a new output format

@dataclass(frozen=True, eq=False)
class RawOutput(PendingOutput):
    """A format that is not geocnn's: raw float32, C order (channels, *shape), no header."""

    path: str
    tmp: str
    shape: tuple[int, ...]
    channels: int
    force: bool = False

    @classmethod
    def prepare(cls, spec: OutputSpec, attach: str | None = None) -> RawOutput:
        final = atomic.check_new(spec.path, spec.force) if attach is None else Path(spec.path)
        tmp = Path(attach) if attach is not None else atomic.temp_path(final)
        if attach is None:
            with open(tmp, "wb") as fh:
                fh.truncate(4 * int(np.prod(spec.stored_shape)))
        return cls(str(final), str(tmp), spec.shape, spec.channels, spec.force)

    def write(self, window: tuple[slice, ...], values: np.ndarray) -> None:
        window, values = fit_window(self.shape, self.channels, window, values)
        mm = np.memmap(self.tmp, np.float32, "r+", shape=(self.channels, *self.shape))
        mm[(slice(None), *window)] = values
        mm.flush()

    def commit(self) -> Path:
        os.replace(self.tmp, self.path)
        return Path(self.path)

    def abort(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.tmp)


def test_every_writable_format_has_its_output_class():
    assert set(writer.OUTPUT_CLASSES) == {f.name for f in FORMATS.values() if f.output}


def test_a_new_output_format_is_one_class_and_one_record(tmp_path, monkeypatch, identity_run):
    monkeypatch.setitem(FORMATS, "raw", Format("raw", (".f32",), "raw float32", output=True))
    monkeypatch.setitem(writer.OUTPUT_CLASSES, "raw", RawOutput)
    run = identity_run(tmp_path)
    volume = trainkit.layered_volume((9, 12, 37), seed=2)
    np.save(tmp_path / "vol.npy", volume)
    report = predict(run, [tmp_path / "vol.npy"], tmp_path / "pred.f32", overlap=0.5, pictures=False)
    assert report.outputs == [tmp_path / "pred.f32"]
    np.testing.assert_allclose(np.fromfile(tmp_path / "pred.f32", np.float32).reshape(volume.shape), volume,
                               rtol=1e-5, atol=1e-5)
    assert sorted(p.name for p in tmp_path.glob("pred*")) == ["pred.f32"]  # the temporary file renamed


# ----------------------------------------------------------------------------- the kept input

def test_kept_rows_come_back_as_read_through_the_ring():
    # a 7 × 3 × 2 grid, value = 100 × row + 10 × column + sample; windows of 3 rows at 0, 2 and 5 (its
    # third row is padding); a ring of 3 rows: row r in slot r % 3, so rows 2..4 and 5..6 wrap
    grid = (100 * np.arange(7)[:, None, None] + 10 * np.arange(3)[None, :, None] + np.arange(2)).astype(np.float32)
    padded = np.concatenate([grid, grid[5:6]])[None]
    kept = KeptRows(grid.shape, 1, ring_rows=3, base=0)
    kept.put((0, 0, 0), padded[:, 0:3])
    first = kept.take(0, 2)  # rows 0, 1: released before the window at 2 is added
    kept.put((2, 0, 0), padded[:, 2:5])
    second = kept.take(2, 3)
    kept.put((5, 0, 0), padded[:, 5:8])
    third = kept.take(5, 2)
    np.testing.assert_array_equal(np.concatenate([first, second, third], axis=1)[0], grid)


def test_predict_says_which_checkpoint_it_loaded(tmp_path, caplog, identity_run):
    run = identity_run(tmp_path)
    with caplog.at_level(logging.INFO, logger="geocnn.predict.api"):
        predict(run, [tmp_path / "noisy.npy"], tmp_path / "o.npy", pictures=False)
    # one training step (max_steps: 1): saved inside the first epoch
    assert f"model from {run / 'checkpoints' / 'best.pt'} (the best epoch's weights: step 1, inside epoch 1, " \
           "val_loss " in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="geocnn.predict.api"):
        predict(run / "checkpoints" / "last.pt", [tmp_path / "noisy.npy"], tmp_path / "o2.npy", pictures=False)
    assert "last.pt (the last epoch's weights: step 1, inside epoch 1" in caplog.text
