"""The torch decoder of raw SEG-Y words (run on the CPU here) against the NumPy one, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from geocnn import gpu_decode
from geocnn.grids.grid import open_grid
from geocnn.grids.ibm import ibm_to_float32
from geocnn.grids.segy import decode, open_segy
from tests.segyfactory import write_segy

# zero, negative zero, denormal-range words (below float32's normal range → 0), the first normal
# one, the largest that fits and the first that does not (→ ±max bits), unnormalised mantissas,
# every top-3-bit mantissa pattern, the extreme exponents 0 and 127 with both signs.
EDGE_WORDS = [0x00000000, 0x80000000, 0x00000001, 0x80000001, 0x21100000, 0x211FFFFF, 0x21200000, 0xA1200000,
              0x611FFFFF, 0xE11FFFFF, 0x61200000, 0xE1200000, 0x7FFFFFFF, 0xFFFFFFFF, 0x7F000000, 0x00FFFFFF,
              0x41000000, 0x40100000, 0xC276A000, 0x42640000, 0x3F000001, 0x22100000, 0x60FFFFFF, 0x41100000,
              0x41200000, 0x41300000, 0x41400000, 0x41600000, 0x41800000, 0x41E00000, 0x40000001, 0x4000000F]


def _words() -> np.ndarray:
    rng = np.random.default_rng(11)
    random = rng.integers(0, 2**32, size=200_000, dtype=np.uint64).astype(np.uint32)
    return np.concatenate([np.array(EDGE_WORDS, np.uint32), random])


@pytest.mark.parametrize("endian", [">", "<"])
def test_ibm_words_decode_bit_for_bit_as_numpy(endian):
    words = _words()
    stored = words.astype(endian + "u4")
    ours = gpu_decode.decode(gpu_decode.as_bytes(stored), 1, endian, words.shape).numpy()
    reference = ibm_to_float32(words)
    assert np.array_equal(ours.view(np.uint32), reference.view(np.uint32)), \
        f"{np.count_nonzero(ours.view(np.uint32) != reference.view(np.uint32))} words differ"
    # hand-checked values: IBM -118.625, 0 for a denormal-range word, the overflow sentinel
    assert ours[EDGE_WORDS.index(0xC276A000)] == np.float32(-118.625)
    assert ours[EDGE_WORDS.index(0x00000001)] == 0.0
    assert ours[EDGE_WORDS.index(0x61200000)].view(np.uint32) == 0x7FFFFFFF


@pytest.mark.parametrize("endian", [">", "<"])
@pytest.mark.parametrize("fmt, kind", [(2, "i4"), (3, "i2"), (8, "i1"), (10, "u4"), (11, "u2"), (16, "u1")])
def test_integers_decode_as_numpy_astype(fmt, kind, endian):
    info = np.iinfo(kind)
    rng = np.random.default_rng(fmt)
    values = rng.integers(info.min, info.max, size=50_000, endpoint=True, dtype=np.int64)
    values[:4] = [info.min, info.max, 0, -1 if info.min < 0 else 1]
    if kind in ("i4", "u4"):  # values float32 must round (ties to even): 2**24 + 1, 2**24 + 3
        values[4:6] = [2**24 + 1, 2**24 + 3]
    stored = values.astype(endian + kind)
    ours = gpu_decode.decode(gpu_decode.as_bytes(stored), fmt, endian, stored.shape).numpy()
    np.testing.assert_array_equal(ours, decode(stored, fmt))
    assert ours[0] == np.float32(info.min) and ours[1] == np.float32(info.max)
    if kind in ("i4", "u4"):
        assert ours[4] == 2**24 and ours[5] == 2**24 + 4


def test_ieee_floats_are_not_taken():
    with pytest.raises(ValueError, match="format 5"):
        gpu_decode.decode(gpu_decode.as_bytes(np.zeros(2, ">f4")), 5, ">", (2,))
    assert not gpu_decode.supported(5) and gpu_decode.supported(1)


@pytest.mark.parametrize("fmt", [1, 3])
def test_raw_window_of_a_file_decodes_to_what_read_gives(tmp_path, fmt):
    s = write_segy(tmp_path / "c.sgy", range(1, 5), range(20, 25), 9, format=fmt, endian="little",
                   missing=[(1, 20), (3, 22)])
    grid = open_grid(s.path)
    assert grid.raw_format() == (fmt, "<")
    window = (slice(0, 3), slice(1, 5), slice(2, 8))
    raw = grid.read_raw(window)
    assert raw.shape == (1, 3, 4, 6) and raw.dtype == np.dtype("<" + ("u4" if fmt == 1 else "i2"))
    assert not raw[0, 2, 1].any() and raw[0, 2, 0].all()  # the dead trace (3, 22) is zero words
    ours = gpu_decode.decode(gpu_decode.as_bytes(raw), fmt, "<", raw.shape).numpy()
    np.testing.assert_array_equal(ours, grid.read(window))
    np.testing.assert_array_equal(open_segy(s.path).read_raw(window).view(np.uint8), raw[0].view(np.uint8))


def test_ieee_and_npy_grids_have_no_raw_words(tmp_path):
    s = write_segy(tmp_path / "f.sgy", range(1, 3), range(1, 3), 5, format=5)
    assert open_grid(s.path).raw_format() is None
    np.save(tmp_path / "v.npy", np.zeros((2, 3, 4), np.float32))
    assert open_grid(tmp_path / "v.npy").raw_format() is None
    with pytest.raises(ValueError, match="raw_format"):
        open_grid(tmp_path / "v.npy").read_raw((slice(0, 1), slice(0, 1), slice(0, 1)))
