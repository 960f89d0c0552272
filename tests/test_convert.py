"""``convert``: SEG-Y <-> .npy round trips, block by block, bounded memory, template checks."""

from __future__ import annotations

import json
import tracemalloc

import numpy as np
import pytest
import segyio

from geocnn.errors import DataError, OutputExistsError
from geocnn.grids.convert import convert
from geocnn.grids.spec import InputSpec
from tests.segyfactory import read_with_segyio, trace_headers, write_big_cube, write_segy


class _Recorder:
    """A progress reporter that remembers what it was told."""

    def __init__(self):
        self.tasks = []

    def task(self, description, total, unit="it"):
        record = {"description": description, "total": total, "unit": unit, "done": 0, "closed": False}
        self.tasks.append(record)

        class _Task:
            def advance(self, n=1, **fields):
                record["done"] += n

            def close(self):
                record["closed"] = True

        return _Task()


def test_segy_to_npy_in_grid_order_equal_to_segyio(tmp_path):
    s = write_segy(tmp_path / "x.sgy", range(1, 6), range(1, 8), 12, format=1, sorting="crossline",
                   interval_us=2000)
    progress = _Recorder()
    result = convert(s.path, tmp_path / "x.npy", reporter=progress, block_bytes=2 * 7 * 12 * 4)  # 2 inlines a block
    a = np.load(tmp_path / "x.npy")
    assert a.dtype == np.float32 and a.shape == (5, 7, 12)
    with segyio.open(str(s.path)) as f:
        np.testing.assert_array_equal(a, segyio.tools.cube(f).transpose(1, 0, 2))  # file is crossline-sorted
    assert result.axes == ("inline", "crossline", "sample") and result.traces == 35
    assert progress.tasks == [{"description": "convert", "total": 35, "unit": "traces", "done": 35, "closed": True}]
    side = json.loads((tmp_path / "x.json").read_text())
    assert side["axes"] == ["inline", "crossline", "sample"] and side["sample_interval_us"] == 2000.0
    assert side["source"] == [str(s.path)]


def test_npy_back_to_segy_with_template_round_trips(tmp_path):
    s = write_segy(tmp_path / "t.sgy", range(1, 4), range(1, 6), 10, format=1)
    convert(s.path, tmp_path / "t.npy")
    a = np.load(tmp_path / "t.npy")
    np.save(tmp_path / "t2.npy", a * 2)
    convert(tmp_path / "t2.npy", tmp_path / "back.sgy", template=s.path)
    np.testing.assert_array_equal(trace_headers(tmp_path / "back.sgy", 10), trace_headers(s.path, 10))
    np.testing.assert_array_equal(read_with_segyio(tmp_path / "back.sgy"), 2 * read_with_segyio(s.path))


def test_irregular_and_prestack_conversions(tmp_path):
    irr = write_segy(tmp_path / "i.sgy", range(1, 4), range(1, 4), 5, missing=[(2, 2)])
    convert(irr.path, tmp_path / "i.npy")
    np.testing.assert_array_equal(np.load(tmp_path / "i.npy"), irr.values)  # dead trace as zeros
    ps = write_segy(tmp_path / "p.sgy", range(1, 3), range(1, 3), 4, offsets=[10, 20, 30])
    result = convert(ps.path, tmp_path / "p.npy")
    assert result.axes == ("inline", "crossline", "offset", "sample")
    np.testing.assert_array_equal(np.load(tmp_path / "p.npy"), ps.values)
    convert(tmp_path / "p.npy", tmp_path / "p2.sgy", template=ps.path)
    np.testing.assert_array_equal(read_with_segyio(tmp_path / "p2.sgy"), read_with_segyio(ps.path))


def test_segy_to_segy_reencodes_ibm_as_ieee(tmp_path):
    s = write_segy(tmp_path / "ibm.sgy", range(1, 4), range(1, 4), 6, format=1)
    convert(s.path, tmp_path / "ieee.sgy")
    with segyio.open(str(tmp_path / "ieee.sgy")) as f:
        assert int(f.bin[segyio.BinField.Format]) == 5
    np.testing.assert_array_equal(read_with_segyio(tmp_path / "ieee.sgy"), read_with_segyio(s.path))


def test_conversion_memory_is_bounded_by_the_block(tmp_path):
    s = write_big_cube(tmp_path / "big.sgy", 60, 60, 1000)  # 15 MB
    tracemalloc.start()
    try:
        convert(s.path, tmp_path / "big.npy", block_bytes=1 << 20)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 6 << 20, f"peak {peak / 2**20:.1f} MiB for 1 MiB blocks of a 15 MB file"
    np.testing.assert_array_equal(np.load(tmp_path / "big.npy", mmap_mode="r")[::7, ::5], s.values[::7, ::5])


def test_template_geometry_must_match(tmp_path):
    s = write_segy(tmp_path / "t.sgy", range(1, 4), range(1, 6), 10)
    np.save(tmp_path / "wrong.npy", np.zeros((3, 4, 10), np.float32))
    with pytest.raises(DataError) as e:
        convert(tmp_path / "wrong.npy", tmp_path / "o.sgy", template=s.path)
    assert e.value.message.startswith(f"{tmp_path / 'wrong.npy'}: array shape (3, 4, 10) does not match the template "
                                      "t.sgy (3 inline × 5 crossline × 10 sample)")
    np.save(tmp_path / "ok.npy", np.zeros((3, 5, 10), np.float32))
    with pytest.raises(DataError, match="axes \\(crossline, inline, sample\\) differ"):
        convert(tmp_path / "ok.npy", tmp_path / "o.sgy", template=s.path,
                spec=InputSpec("x", axes=("crossline", "inline", "sample")))
    with pytest.raises(DataError, match="a NumPy array holds no SEG-Y trace headers"):
        convert(tmp_path / "ok.npy", tmp_path / "o.sgy")
    convert(tmp_path / "ok.npy", tmp_path / "o2.npy")  # between array formats: no template needed
    assert np.array_equal(np.load(tmp_path / "o2.npy"), np.load(tmp_path / "ok.npy"))
    assert not (tmp_path / "o.sgy").exists()


def test_existing_output_is_kept_without_force(tmp_path):
    s = write_segy(tmp_path / "t.sgy", range(1, 3), range(1, 3), 4)
    convert(s.path, tmp_path / "t.npy")
    with pytest.raises(OutputExistsError):
        convert(s.path, tmp_path / "t.npy")
    convert(s.path, tmp_path / "t.npy", force=True)
