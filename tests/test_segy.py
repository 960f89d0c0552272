"""SEG-Y reading: layout, every sample format and byte order, geometry, laziness, bad files."""

from __future__ import annotations

import logging
import pickle

import numpy as np
import pytest
import segyio

from geocnn.errors import DataError
from geocnn.grids.ibm import ibm_to_float32
from geocnn.grids.segy import open_segy, read_layout
from tests.segyfactory import (
    captured_logs,
    mapped_resident_bytes,
    read_with_segyio,
    set_binary_word,
    truncate,
    write_big_cube,
    write_segy,
    write_shot_gather,
    write_traces,
)


def _full(f):
    return f.read(tuple(slice(0, n) for n in f.shape))


@pytest.mark.parametrize("endian", ["big", "little"])
@pytest.mark.parametrize("fmt", [1, 2, 3, 5, 6, 8, 9, 10, 11, 12, 16])
def test_every_format_and_byte_order_reads_what_segyio_reads(tmp_path, fmt, endian):
    s = write_segy(tmp_path / "c.sgy", range(1, 4), range(10, 14), 12, format=fmt, endian=endian)
    f = open_segy(s.path)
    assert f.layout.endian == endian  # detected from the binary header, not given
    assert f.layout.format == fmt
    values = _full(f)
    assert values.dtype == np.float32 and values.shape == (3, 4, 12)
    reference = read_with_segyio(s.path, endian).reshape(3, 4, 12)  # file is inline-sorted
    np.testing.assert_array_equal(values, reference)
    if fmt != 1:  # IBM cannot hold every float32 exactly; the others hold the factory's values
        np.testing.assert_array_equal(values, s.values)


@pytest.mark.parametrize("fmt", [1, 2, 3, 5, 8, 16])
@pytest.mark.parametrize("layout", [{}, {"endian": "little"}, {"missing": [(2, 11), (3, 13)]}, {"sorting": "crossline"}])
def test_reading_into_a_given_array_gives_the_same_bits(tmp_path, fmt, layout):
    """``read(window, out=...)`` (how the decoded cache is filled) equals ``read(window)``, for every
    format, byte order and geometry, and fills the array it was given; a wrong array is refused."""
    s = write_segy(tmp_path / "c.sgy", range(1, 5), range(10, 15), 16, format=fmt, **layout)
    f = open_segy(s.path)
    for window in [tuple(slice(0, n) for n in f.shape), (slice(1, 3), slice(2, 5), slice(3, 11)),
                   (slice(2, 2), slice(0, 5), slice(0, 16))]:
        expected = f.read(window)
        out = np.full(expected.shape, np.nan, np.float32)
        assert f.read(window, out=out) is out
        np.testing.assert_array_equal(out.view(np.uint32), expected.view(np.uint32))
    with pytest.raises(ValueError, match="C-contiguous float32 shaped"):
        f.read((slice(0, 2), slice(0, 5), slice(0, 16)), out=np.empty((2, 5, 16), np.float64))
    with pytest.raises(ValueError, match="C-contiguous float32 shaped"):
        f.read((slice(0, 2), slice(0, 5), slice(0, 16)), out=np.empty((2, 5, 32), np.float32)[..., ::2])


def test_crossline_sorted_reads_in_inline_crossline_sample_order(tmp_path):
    s = write_segy(tmp_path / "x.sgy", range(1, 5), range(20, 26), 8, sorting="crossline")
    f = open_segy(s.path)
    assert f.axes == ("inline", "crossline", "sample")
    assert f.geometry.sorting == "crossline"
    np.testing.assert_array_equal(f.geometry.ilines, [1, 2, 3, 4])
    np.testing.assert_array_equal(f.geometry.xlines, np.arange(20, 26))
    np.testing.assert_array_equal(_full(f), s.values)
    # inline 3 crossline 22, sample 5 = 3 + 22/100 + 5/1e4
    assert f.read((slice(2, 3), slice(2, 3), slice(5, 6)))[0, 0, 0] == np.float32(3.2205)


def test_little_endian_ibm_crossline_sorted(tmp_path):
    s = write_segy(tmp_path / "l.sgy", range(1, 4), range(1, 6), 10, sorting="crossline", format=1,
                   endian="little")
    f = open_segy(s.path)
    assert (f.layout.endian, f.layout.sample_format, f.geometry.sorting) == ("little", "ibm-float32", "crossline")
    with segyio.open(str(s.path), endian="little") as g:
        cube = segyio.tools.cube(g)  # segyio's cube follows the file: (crossline, inline, sample)
    np.testing.assert_array_equal(_full(f), cube.transpose(1, 0, 2))


def test_descending_numbers_are_presented_ascending(tmp_path):
    s = write_segy(tmp_path / "d.sgy", range(5, 0, -1), range(24, 19, -1), 6)
    f = open_segy(s.path)
    np.testing.assert_array_equal(f.geometry.ilines, [1, 2, 3, 4, 5])
    np.testing.assert_array_equal(f.geometry.xlines, [20, 21, 22, 23, 24])
    assert f.geometry.regular
    np.testing.assert_array_equal(_full(f), s.values)
    np.testing.assert_array_equal(f.read((slice(1, 4), slice(2, 5), slice(1, 3))), s.values[1:4, 2:5, 1:3])


def test_prestack_offsets_ascending_whatever_the_file_order(tmp_path):
    s = write_segy(tmp_path / "p.sgy", range(1, 4), range(1, 3), 5, offsets=[25, 5, 15])
    f = open_segy(s.path)
    assert f.geometry.kind == "pre-stack"
    assert f.axes == ("inline", "crossline", "offset", "sample")
    np.testing.assert_array_equal(f.geometry.offsets, [5, 15, 25])
    values = _full(f)
    np.testing.assert_array_equal(values, s.values)
    # offset index k adds 100*k in the factory: ascending order means 0, 100, 200
    np.testing.assert_array_equal(values[0, 0, :, 0], np.float32([1.01, 101.01, 201.01]))


def test_irregular_survey_dense_grid_live_mask_and_zero_dead_traces(tmp_path):
    missing = [(1, 20), (3, 22), (4, 24)]
    s = write_segy(tmp_path / "i.sgy", range(1, 5), range(20, 25), 7, missing=missing)
    f = open_segy(s.path)
    geo = f.geometry
    assert geo.kind == "post-stack" and not geo.regular
    assert geo.shape == (4, 5) and geo.n_live == 17
    np.testing.assert_array_equal(geo.live(), s.live)
    values = _full(f)
    np.testing.assert_array_equal(values, s.values)
    assert not values[0, 0].any() and not values[2, 2].any()
    window = (slice(2, 4), slice(1, 4), slice(2, 6))
    np.testing.assert_array_equal(f.read(window), s.values[2:4, 1:4, 2:6])
    np.testing.assert_array_equal(geo.live(window[:2]), s.live[2:4, 1:4])


def test_custom_header_bytes(tmp_path):
    s = write_segy(tmp_path / "h.sgy", range(100, 104), range(7, 10), 4, offsets=[1, 2], iline=9, xline=21,
                   offset=13)
    with pytest.raises(DataError):  # the standard bytes hold nothing: no grid there
        f = open_segy(s.path, structured="yes")
    f = open_segy(s.path, iline=9, xline=21, offset=13)
    np.testing.assert_array_equal(f.geometry.ilines, np.arange(100, 104))
    np.testing.assert_array_equal(f.geometry.offsets, [1, 2])
    assert f.geometry.regular  # found by reading the headers, then recognised as regular
    np.testing.assert_array_equal(_full(f), s.values)


def test_extended_textual_headers_move_the_data(tmp_path):
    s = write_segy(tmp_path / "e.sgy", range(1, 3), range(1, 4), 6, ext_headers=2)
    f = open_segy(s.path)
    assert f.layout.data_offset == 3600 + 2 * 3200
    np.testing.assert_array_equal(_full(f), s.values)


def test_shot_gather_is_unstructured_with_a_warning(tmp_path, caplog):
    s = write_shot_gather(tmp_path / "shot.sgy", n_shots=2, n_receivers=6, n_samples=9)
    with captured_logs(caplog, logging.WARNING):
        f = open_segy(s.path)
    assert f.geometry.kind == "unstructured" and f.axes == ("trace", "sample") and f.shape == (12, 9)
    assert "unstructured" in caplog.text and "shot.sgy" in caplog.text
    np.testing.assert_array_equal(_full(f), s.values)
    np.testing.assert_array_equal(f.read((slice(7, 9), slice(0, 2))), s.values[7:9, :2])


def test_structured_no_forces_file_order_traces(tmp_path):
    s = write_segy(tmp_path / "x.sgy", range(1, 3), range(1, 4), 4, sorting="crossline")
    f = open_segy(s.path, structured="no")
    assert f.axes == ("trace", "sample") and f.shape == (6, 4)
    np.testing.assert_array_equal(_full(f), read_with_segyio(s.path))


def test_sparse_grid_is_unstructured_unless_forced(tmp_path, caplog):
    # only the diagonal of a 5 x 5 grid: 20% filled, below the 25% bar
    missing = [(i, j) for i in range(1, 6) for j in range(1, 6) if i != j]
    s = write_segy(tmp_path / "s.sgy", range(1, 6), range(1, 6), 3, missing=missing)
    with captured_logs(caplog, logging.WARNING):
        assert open_segy(s.path).geometry.kind == "unstructured"
    assert "filled" in caplog.text
    forced = open_segy(s.path, structured="yes")
    assert forced.geometry.shape == (5, 5) and forced.geometry.n_live == 5


def test_single_inline_is_a_line(tmp_path):
    s = write_segy(tmp_path / "line.sgy", [7], range(1, 9), 5)
    f = open_segy(s.path)
    assert f.geometry.kind == "line" and f.axes == ("trace", "sample") and f.shape == (8, 5)
    np.testing.assert_array_equal(_full(f), s.values[0])
    assert f.spacing["trace"] == (pytest.approx(12.5), "m")


def test_metadata_interval_delay_and_spacing(tmp_path):
    s = write_segy(tmp_path / "m.sgy", range(1, 4), range(1, 4), 5, interval_us=2000, delay_ms=100)
    f = open_segy(s.path)
    assert f.sample_interval_us == 2000.0
    assert f.sample_start_ms == 100.0
    assert f.spacing == {"inline": (pytest.approx(25.0), "m"), "crossline": (pytest.approx(12.5), "m"),
                         "sample": (2.0, "ms")}


def _ibm_file_with_words(path, words):
    """An IBM file whose sample words are exactly ``words`` (written raw, after segyio made it)."""
    n = len(words) // 100
    write_traces(path, np.zeros((n, 100), np.float32), {189: np.arange(n), 193: np.zeros(n, int)}, format=1)
    raw = np.memmap(path, dtype=[("h", "u1", (240,)), ("s", ">u4", (100,))], mode="r+", offset=3600, shape=(n,))
    raw["s"] = words.reshape(n, 100)
    raw.flush()
    del raw


def test_ibm_conversion_is_bit_equal_to_segyio(tmp_path):
    rng = np.random.default_rng(7)
    words = rng.integers(0, 2**32, size=40_000, dtype=np.uint64).astype(np.uint32)
    words[:16] = [0x00000000, 0x80000000, 0x00000001, 0x21100000, 0x21200000, 0x611FFFFF, 0x61200000,
                  0x7FFFFFFF, 0xFFFFFFFF, 0x41000000, 0x40100000, 0xC276A000, 0x42640000, 0x3F000001,
                  0x22100000, 0x60FFFFFF]
    # and realistic values: normalised words around 1e-3..1e4, both signs
    real = rng.standard_normal(4000) * 10.0 ** rng.integers(-3, 5, 4000)
    _, e2 = np.frexp(np.abs(real))  # |v| = m * 2**e2, m in [0.5, 1)
    e16 = (e2 + 3) // 4  # |v| = f * 16**e16 with f in [1/16, 1)
    mant = np.floor(np.abs(real) / 16.0**e16 * 2**24).astype(np.uint32)
    ibm = (np.where(real < 0, 0x80000000, 0) | ((e16 + 64) << 24) | mant).astype(np.uint32)
    words[-4000:] = ibm
    path = tmp_path / "ibm.sgy"
    _ibm_file_with_words(path, words)
    with segyio.open(str(path), ignore_geometry=True) as f:
        reference = f.trace.raw[:].reshape(-1).view(np.uint32)
    ours = ibm_to_float32(words).view(np.uint32)
    assert np.array_equal(ours, reference), f"{np.count_nonzero(ours != reference)} words differ"
    read = open_segy(path, structured="no").read((slice(0, 400), slice(0, 100)))
    assert np.array_equal(read.reshape(-1).view(np.uint32), reference)
    assert ibm_to_float32(np.array([0xC276A000], np.uint32))[0] == np.float32(-118.625)


def test_window_reads_touch_only_their_traces(tmp_path, monkeypatch):
    import geocnn.grids.segy

    s = write_big_cube(tmp_path / "big.sgy", 100, 50, 1000)  # ~21 MB
    size = s.path.stat().st_size
    f = open_segy(s.path)
    decoded = []
    real_decode = geocnn.grids.segy.decode
    monkeypatch.setattr(geocnn.grids.segy, "decode",
                        lambda raw, fmt, out=None: decoded.append(raw.nbytes) or real_decode(raw, fmt, out))
    window = (slice(70, 71), slice(10, 18), slice(500, 564))
    np.testing.assert_array_equal(f.read(window), s.values[70:71, 10:18, 500:564])
    assert decoded == [8 * 64 * 4]  # exactly the window's samples were copied out of the file
    resident = mapped_resident_bytes(s.path)
    if resident is None:
        pytest.skip("no /proc/self/smaps")
    # 8 neighbouring traces (34 kB); the kernel maps pages around a fault (64 KiB, or a whole
    # page-cache folio of up to 2 MiB), so allow two folios -- still a fraction of the file.
    assert resident <= (4 << 20) + (256 << 10) and resident < size / 4, f"{resident} of {size} bytes resident"


def test_big_reads_do_not_stay_mapped(tmp_path, monkeypatch):
    import geocnn.grids.segy

    monkeypatch.setattr(geocnn.grids.segy, "BIG_READ", 1 << 16)
    s = write_big_cube(tmp_path / "big.sgy", 40, 40, 500)
    f = open_segy(s.path)
    np.testing.assert_array_equal(f.read((slice(0, 40), slice(0, 40), slice(0, 500))), s.values)
    resident = mapped_resident_bytes(s.path)
    if resident is None:
        pytest.skip("no /proc/self/smaps")
    assert resident == 0  # the whole-file read mapped its span for the call only


def test_pickled_file_carries_no_samples(tmp_path):
    s = write_big_cube(tmp_path / "big.sgy", 30, 30, 500)
    f = open_segy(s.path)
    f.read((slice(0, 2), slice(0, 2), slice(0, 10)))  # mapped now
    blob = pickle.dumps(f)
    assert len(blob) < 20_000
    g = pickle.loads(blob)
    np.testing.assert_array_equal(g.read((slice(3, 5), slice(0, 30), slice(7, 9))), s.values[3:5, :, 7:9])


# -- bad files ------------------------------------------------------------------------------

def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="file not found") as e:
        open_segy(tmp_path / "nope.sgy")
    assert "nope.sgy" in e.value.message


def test_too_short_to_be_segy(tmp_path):
    p = tmp_path / "notes.sgy"
    p.write_text("inline 1..5\n")
    with pytest.raises(DataError, match="not a SEG-Y file: 12 bytes"):
        open_segy(p)


def test_truncated_file_explains_the_numbers(tmp_path):
    s = write_segy(tmp_path / "ok.sgy", range(1, 4), range(1, 4), 50)
    bad = truncate(s.path, tmp_path / "cut.sgy", 3600 + 4 * 440 + 100)
    with pytest.raises(DataError) as e:
        open_segy(bad)
    msg = e.value.message
    assert msg.startswith(f"{bad}: file size 5460 bytes does not fit whole traces")
    assert "50 samples" in msg and "4.23 traces" in msg and "truncated" in msg


def test_sample_count_that_does_not_fit_the_file_size(tmp_path):
    s = write_segy(tmp_path / "ns.sgy", range(1, 4), range(1, 4), 50)
    set_binary_word(s.path, 3221, 49)
    with pytest.raises(DataError, match="49 samples of 4 bytes") as e:
        open_segy(s.path)
    assert "sample count (bytes 3221-3222)" in e.value.message


def test_headers_only_file_has_no_traces(tmp_path):
    s = write_segy(tmp_path / "ok.sgy", range(1, 3), range(1, 3), 10)
    empty = truncate(s.path, tmp_path / "empty.sgy", 3600)
    with pytest.raises(DataError, match="no traces") as e:
        open_segy(empty)
    assert "empty.sgy" in e.value.message


def test_unsupported_sample_format(tmp_path):
    s = write_segy(tmp_path / "f4.sgy", range(1, 3), range(1, 3), 10)
    set_binary_word(s.path, 3225, 4)  # fixed point with gain: same 4-byte size, not supported
    with pytest.raises(DataError, match="sample format 4"):
        read_layout(s.path)


def test_header_byte_must_start_a_field(tmp_path):
    s = write_segy(tmp_path / "b.sgy", range(1, 3), range(1, 3), 10)
    with pytest.raises(DataError, match="iline header byte 190"):
        open_segy(s.path, iline=190)
