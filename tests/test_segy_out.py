"""A SEG-Y out for every task and input layout (issue 11 §4): stacked pre-stack outputs, score maps
with their own geometry, one file per class, section models on 2D lines, sanity warnings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import segyio

from geocnn.config import load_config
from geocnn.grids.grid import open_grid
from geocnn.grids.spec import InputSpec
from geocnn.grids.writer import write_array
from geocnn.predict import predict
from geocnn.train import train
from tests import segyfactory, trainkit
from tests.segyfactory import trace_headers

SAMPLES = Path(__file__).resolve().parents[1] / "data_samples"


def _headers_without_offset(headers: np.ndarray) -> np.ndarray:
    """Trace headers with bytes 37–40 (offset) zeroed."""
    out = headers.copy()
    out[:, 36:40] = 0
    return out


# ----------------------------------------------------------------------------- pre-stack → post-stack

def test_one_channel_from_offset_channels_is_a_post_stack_cube_with_near_offset_headers(tmp_path):
    s = segyfactory.write_segy(tmp_path / "g.sgy", range(1, 4), range(10, 14), 6, offsets=[30, 10, 20])
    grid = open_grid(InputSpec(str(s.path), channels_from="offset"))
    values = np.arange(3 * 4 * 6, dtype=np.float32).reshape(1, 3, 4, 6)
    out = write_array(tmp_path / "stack.sgy", grid, values)
    with segyio.open(out) as f:
        assert list(f.ilines) == [1, 2, 3] and list(f.xlines) == [10, 11, 12, 13]
        assert list(f.offsets) == [0] and f.tracecount == 12 and len(f.samples) == 6
        assert f.bin[segyio.BinField.EnsembleFold] == 1 and f.bin[segyio.BinField.Traces] == 1
        np.testing.assert_array_equal(segyio.tools.cube(f), values[0])
    # file order: per bin, offsets 30, 10, 20 → the nearest (10) is trace 3·bin + 1
    src = trace_headers(s.path, 6)
    np.testing.assert_array_equal(trace_headers(out, 6), _headers_without_offset(src[1::3]))
    assert (src[1::3, 36:40] != 0).any()  # the source did hold offsets there


def test_angle_stack_sample_writes_a_post_stack_cube(tmp_path):
    angles = SAMPLES / "angles.sgy"
    grid = open_grid(InputSpec(str(angles), channels_from="offset"))
    out = write_array(tmp_path / "gas.sgy", grid, np.ones((1, *grid.shape), np.float32))
    with segyio.open(angles) as a, segyio.open(out) as b:
        assert list(b.ilines) == list(a.ilines) and list(b.xlines) == list(a.xlines)
        assert list(b.offsets) == [0] and list(b.samples) == list(a.samples)
        assert b.tracecount == len(a.ilines) * len(a.xlines)
        near = [i for i in range(a.tracecount) if a.header[i][segyio.TraceField.offset] == 5]
        for k in (0, 7, b.tracecount - 1):
            expected = dict(a.header[near[k]])
            expected[segyio.TraceField.offset] = 0
            assert dict(b.header[k]) == expected


def test_predict_with_angle_stacks_as_channels_writes_post_stack_segy(tmp_path):
    data = {"inputs": [{"path": str(SAMPLES / "angles.sgy"), "channels_from": "offset"}],
            "target": str(SAMPLES / "gas.npy")}
    model = trainkit.SMALL_2D.replace("in_channels: 1", "in_channels: 3") % {"out": 2}
    path = trainkit.write_config(tmp_path, "segmentation", data, model, {"max_steps": 1}, patch=[8, 16],
                                 section="inline")
    run = train(load_config(path), tmp_path / "gas")
    report = predict(run, [SAMPLES / "angles.sgy"], tmp_path / "gas.sgy", pictures=False)
    with segyio.open(report.output) as f:
        assert (len(f.ilines), len(f.xlines), list(f.offsets), len(f.samples)) == (32, 24, [0], 100)
        probs = segyio.tools.cube(f)
    assert ((probs >= 0) & (probs <= 1)).all() and probs.std() > 0
