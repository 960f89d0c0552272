"""Outputs: SEG-Y with the source's headers (byte for byte), .npy + sidecar, slabs, ranks, --force."""

from __future__ import annotations

import json
import multiprocessing
import pickle

import numpy as np
import pytest
import segyio

from geocnn.errors import DataError, OutputExistsError
from geocnn.grids.grid import open_grid
from geocnn.grids.spec import InputSpec
from geocnn.grids.writer import prepare, write_array
from tests.segyfactory import read_with_segyio, trace_headers, write_segy


def _all(shape):
    return tuple(slice(0, n) for n in shape)


def _write_in_slabs(pending, grid, values, rows=2):
    for start in range(0, grid.shape[0], rows):
        pending.write_rows(start, values[:, start:start + rows])
    return pending.commit()


@pytest.mark.parametrize("fmt, endian, sorting", [(5, "big", "inline"), (1, "big", "crossline"),
                                                   (1, "little", "inline"), (3, "big", "inline")])
def test_segy_round_trip_keeps_headers_byte_for_byte_and_values(tmp_path, fmt, endian, sorting):
    s = write_segy(tmp_path / "in.sgy", range(1, 6), range(20, 24), 16, format=fmt, endian=endian, sorting=sorting,
                   ext_headers=1)
    grid = open_grid(s.path)
    values = grid.read(_all(grid.shape))
    original = values.copy()
    out = _write_in_slabs(prepare(tmp_path / "out.sgy", like=grid), grid, values)
    np.testing.assert_array_equal(values, original)  # the caller's array is never converted in place
    src, dst = s.path.read_bytes(), out.read_bytes()
    offset = 3600 + 3200
    itemsize = {1: 4, 3: 2, 5: 4}[fmt]
    assert src[:3224] == dst[:3224] and src[3226:offset] == dst[3226:offset]  # all but the format code
    code = dst[3224:3226]
    assert int.from_bytes(code, endian) == 5
    np.testing.assert_array_equal(trace_headers(out, 16, 4, offset), trace_headers(s.path, 16, itemsize, offset))
    assert len(dst) == offset + 20 * (240 + 16 * 4)
    # values: IEEE float equal to what segyio reads from the input, trace for trace
    np.testing.assert_array_equal(read_with_segyio(out, endian), read_with_segyio(s.path, endian))
    with segyio.open(str(out), endian=endian) as f:
        assert int(f.bin[segyio.BinField.Format]) == 5 and list(f.ilines) == [1, 2, 3, 4, 5]


def test_irregular_output_writes_live_traces_only(tmp_path):
    s = write_segy(tmp_path / "in.sgy", range(1, 4), range(1, 5), 6, missing=[(1, 2), (3, 4)])
    grid = open_grid(s.path)
    values = grid.read(_all(grid.shape)) * 2
    out = write_array(tmp_path / "out.sgy", grid, values)
    np.testing.assert_array_equal(trace_headers(out, 6), trace_headers(s.path, 6))
    np.testing.assert_array_equal(open_grid(out).read(_all(grid.shape)), values)
    assert open_grid(out).meta.dead_traces == 2


def test_new_sample_count_and_interval_rewrite_every_header(tmp_path):
    s = write_segy(tmp_path / "in.sgy", range(1, 4), range(1, 4), 20, format=1)
    grid = open_grid(s.path)
    pending = prepare(tmp_path / "half.sgy", like=grid, n_samples=10, sample_interval_us=8000)
    assert pending.shape == (3, 3, 10)
    values = np.random.default_rng(0).standard_normal((1, 3, 3, 10)).astype(np.float32)
    pending.write(_all(pending.shape), values)
    out = pending.commit()
    with segyio.open(str(out)) as f:
        assert len(f.samples) == 10 and f.bin[segyio.BinField.Samples] == 10
        assert f.bin[segyio.BinField.Interval] == 8000
        assert set(f.attributes(segyio.TraceField.TRACE_SAMPLE_COUNT)[:]) == {10}
        assert set(f.attributes(segyio.TraceField.TRACE_SAMPLE_INTERVAL)[:]) == {8000}
        np.testing.assert_array_equal(segyio.tools.cube(f), values[0])
    # every other header byte is the source's
    a, b = trace_headers(out, 10), trace_headers(s.path, 20)
    keep = np.r_[0:114, 118:240]
    np.testing.assert_array_equal(a[:, keep], b[:, keep])


def test_prestack_channels_go_back_to_their_offsets(tmp_path):
    s = write_segy(tmp_path / "g.sgy", range(1, 3), range(1, 4), 5, offsets=[30, 10, 20])
    grid = open_grid(InputSpec(str(s.path), channels_from="offset"))
    values = grid.read(_all(grid.shape)) + 1000
    out = write_array(tmp_path / "o.sgy", grid, values)
    back = open_grid(InputSpec(str(out), channels_from="offset"))
    np.testing.assert_array_equal(back.read(_all(grid.shape)), values)
    np.testing.assert_array_equal(trace_headers(out, 5), trace_headers(s.path, 5))
    with pytest.raises(DataError, match="one channel per offset \\(3\\) or one trace per bin \\(one channel\\), "
                                        "not 2 channels.*--split-classes"):
        prepare(tmp_path / "x.sgy", like=grid, channels=2)


def test_npy_output_with_sidecar_reads_back_as_a_grid(tmp_path):
    s = write_segy(tmp_path / "in.sgy", range(1, 4), range(1, 5), 6, interval_us=2000)
    grid = open_grid(s.path)
    probs = np.random.default_rng(1).random((3, 3, 4, 6)).astype(np.float32)
    pending = prepare(tmp_path / "probs.npy", like=grid, channels=3, channel_names=("sand", "shale", "salt"))
    out = _write_in_slabs(pending, grid, probs, rows=1)
    np.testing.assert_array_equal(np.load(out), probs)
    side = json.loads((tmp_path / "probs.json").read_text())
    assert side["axes"] == ["channel", "inline", "crossline", "sample"] and side["shape"] == [3, 3, 4, 6]
    assert side["sample_interval_us"] == 2000.0 and side["source"] == [str(s.path)]
    assert side["ilines"] == {"first": 1, "last": 3, "step": 1, "count": 3}
    back = open_grid(out)  # axes, channel names and the survey's spacing from the sidecar
    assert back.axes == grid.axes and back.channel_names == ("sand", "shale", "salt")
    assert back.spacing() == grid.spacing() == {"inline": (25.0, "m"), "crossline": (12.5, "m"), "sample": (2.0, "ms")}
    np.testing.assert_array_equal(back.read(_all(grid.shape)), probs)


def test_labels_as_uint8(tmp_path):
    np.save(tmp_path / "in.npy", np.zeros((4, 5, 6), np.float32))
    grid = open_grid(tmp_path / "in.npy")
    labels = np.arange(120).reshape(4, 5, 6) % 3
    out = write_array(tmp_path / "labels.npy", grid, labels, dtype="uint8")
    a = np.load(out)
    assert a.dtype == np.uint8 and a.shape == (4, 5, 6)
    np.testing.assert_array_equal(a, labels)


def test_existing_output_needs_force_and_failures_leave_nothing(tmp_path):
    np.save(tmp_path / "in.npy", np.ones((2, 3, 4), np.float32))
    grid = open_grid(tmp_path / "in.npy")
    out = tmp_path / "out.npy"
    out.write_bytes(b"keep me")
    with pytest.raises(OutputExistsError, match="out.npy: output already exists"):
        prepare(out, like=grid)
    pending = prepare(out, like=grid, force=True)
    pending.abort()
    assert out.read_bytes() == b"keep me"
    write_array(out, grid, np.full((2, 3, 4), 5.0), force=True)
    assert (np.load(out) == 5).all()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.npy", "out.json", "out.npy"]  # no temp files


def test_segy_output_needs_a_segy_input_and_one_channel(tmp_path):
    np.save(tmp_path / "in.npy", np.ones((2, 3, 4), np.float32))
    with pytest.raises(DataError, match="takes its headers from a SEG-Y input"):
        prepare(tmp_path / "o.sgy", like=open_grid(tmp_path / "in.npy"))
    s = write_segy(tmp_path / "in.sgy", range(1, 3), range(1, 3), 4)
    with pytest.raises(DataError, match="one value per sample, but there are 2 channels"):
        prepare(tmp_path / "o.sgy", like=open_grid(s.path), channels=2)
    with pytest.raises(DataError, match="cannot tell the output format"):
        prepare(tmp_path / "o.txt", like=open_grid(s.path))


def _rank(pending_blob: bytes, rank: int, world: int) -> None:
    """One 'rank': writes every world-th inline of the output (values = inline index * 10 + sample)."""
    pending = pickle.loads(pending_blob)
    ni, nx, ns = pending.shape
    for i in range(rank, ni, world):
        values = (i * 10 + np.arange(ns, dtype=np.float32)) * np.ones((1, 1, nx, ns), np.float32)
        pending.write_rows(i, values)


@pytest.mark.parametrize("suffix", [".sgy", ".npy"])
def test_two_processes_write_disjoint_parts_of_one_output(tmp_path, suffix):
    s = write_segy(tmp_path / "in.sgy", range(1, 7), range(1, 5), 8, sorting="crossline")
    grid = open_grid(s.path)
    pending = prepare(tmp_path / f"out{suffix}", like=grid)
    blob = pickle.dumps(pending)
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_rank, args=(blob, r, 2)) for r in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    out = pending.commit()
    expected = (np.arange(6)[:, None, None] * 10 + np.arange(8)[None, None, :]) * np.ones((6, 4, 8))
    np.testing.assert_array_equal(open_grid(out).read(_all(grid.shape))[0], expected)
