"""The bundled sample data: committed files, their geometry and labels, and reproducibility.

The values asserted here are what ``data_samples/README.md`` documents; if the generator changes
on purpose, regenerate the files, update the README and these numbers together.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import segyio

SAMPLES = Path(__file__).resolve().parents[1] / "data_samples"
TIFF_FILES = ("scene.tif", "landcover.tif", "ct.ome.tif", "pores.ome.tif")
FILES = (
    "seismic_clean.sgy",
    "seismic_noisy.sgy",
    "faults.npy",
    "facies.npy",
    "impedance.npy",
    "angles.sgy",
    "gas.npy",
    "traces3c.npy",
    "traces3c_labels.npy",
    "traces3c_labels.csv",
    "model.nc",
    *(f"records/AB0{k}.mseed" for k in range(1, 7)),
    "picks.csv",
    *TIFF_FILES,
)
ILINES = np.arange(1000, 1064)
XLINES = np.arange(2000, 2048)
SUB_ILINES = np.arange(1016, 1048)
SUB_XLINES = np.arange(2012, 2036)
SAMPLE_TIMES = np.arange(100) * 4.0
SUB_AREA = np.s_[16:48, 12:36]
F = segyio.TraceField


def load(name: str) -> np.ndarray:
    return np.load(SAMPLES / name, allow_pickle=False)


@pytest.fixture(scope="module")
def clean() -> np.ndarray:
    return segyio.tools.cube(str(SAMPLES / "seismic_clean.sgy"))


@pytest.fixture(scope="module")
def angles() -> np.ndarray:
    return segyio.tools.cube(str(SAMPLES / "angles.sgy"))


def test_all_files_are_committed_and_small():
    sizes = {name: (SAMPLES / name).stat().st_size for name in FILES}
    assert sum(sizes.values()) < 10 * 2**20, sizes


@pytest.mark.parametrize(
    ("name", "fmt", "ilines", "xlines", "offsets"),
    [
        ("seismic_clean.sgy", 1, ILINES, XLINES, [0]),
        ("seismic_noisy.sgy", 5, ILINES, XLINES, [0]),
        ("angles.sgy", 5, SUB_ILINES, SUB_XLINES, [5, 15, 25]),
    ],
)
def test_segy_geometry(name, fmt, ilines, xlines, offsets):
    with segyio.open(str(SAMPLES / name)) as f:
        assert f.sorting == segyio.TraceSortingFormat.INLINE_SORTING
        np.testing.assert_array_equal(f.ilines, ilines)
        np.testing.assert_array_equal(f.xlines, xlines)
        np.testing.assert_array_equal(f.offsets, offsets)
        np.testing.assert_array_equal(f.samples, SAMPLE_TIMES)
        assert segyio.tools.dt(f) == 4000
        assert f.tracecount == len(ilines) * len(xlines) * len(offsets)
        assert f.bin[segyio.BinField.Format] == fmt
        assert f.bin[segyio.BinField.Interval] == 4000
        assert f.bin[segyio.BinField.Samples] == 100
        assert f.bin[segyio.BinField.MeasurementSystem] == 1
        assert f.bin[segyio.BinField.SEGYRevision] == 1
        assert f.bin[segyio.BinField.TraceFlag] == 1
    # Big-endian: the format code sits in the low byte of bytes 3225-3226.
    assert (SAMPLES / name).read_bytes()[3224:3226] == bytes([0, fmt])


@pytest.mark.parametrize("name", ["seismic_clean.sgy", "seismic_noisy.sgy", "angles.sgy"])
def test_textual_header(name):
    with segyio.open(str(SAMPLES / name)) as f:
        text = bytes(f.text[0]).decode("ascii")
    lines = [text[n : n + 80] for n in range(0, 3200, 80)]
    assert [line[:4] for line in lines] == [f"C{n:02d} " for n in range(1, 41)]
    assert "geocnn synthetic" in lines[0]
    assert lines[38].startswith("C39 SEG Y REV1")
    assert lines[39].startswith("C40 END TEXTUAL HEADER")


def test_trace_headers_of_the_last_trace():
    with segyio.open(str(SAMPLES / "seismic_clean.sgy")) as f:
        h = f.header[-1]
    assert h[F.INLINE_3D] == h[F.FieldRecord] == 1063
    assert h[F.CROSSLINE_3D] == h[F.TraceNumber] == 2047
    assert h[F.TRACE_SEQUENCE_LINE] == 48
    assert h[F.TRACE_SEQUENCE_FILE] == h[F.CDP] == 3072
    assert h[F.offset] == h[F.DelayRecordingTime] == 0
    assert h[F.SourceGroupScalar] == -100
    assert h[F.TRACE_SAMPLE_COUNT] == 100
    assert h[F.TRACE_SAMPLE_INTERVAL] == 4000


def test_coordinates_lie_on_a_25_m_grid():
    with segyio.open(str(SAMPLES / "seismic_clean.sgy")) as f:
        x = f.attributes(F.CDP_X)[:].reshape(64, 48) / 100.0
        y = f.attributes(F.CDP_Y)[:].reshape(64, 48) / 100.0
    along_inline = np.hypot(np.diff(x, axis=1), np.diff(y, axis=1))
    along_xline = np.hypot(np.diff(x, axis=0), np.diff(y, axis=0))
    np.testing.assert_allclose(along_inline, 25.0, atol=0.02)
    np.testing.assert_allclose(along_xline, 25.0, atol=0.02)
    assert (x[0, 0], y[0, 0]) == (431250.0, 6521800.0)


def test_noisy_file_has_the_clean_file_trace_headers():
    fields = [F.INLINE_3D, F.CROSSLINE_3D, F.CDP, F.CDP_X, F.CDP_Y, F.TRACE_SEQUENCE_FILE, F.offset]
    with (
        segyio.open(str(SAMPLES / "seismic_clean.sgy")) as c,
        segyio.open(str(SAMPLES / "seismic_noisy.sgy")) as n,
    ):
        for field in fields:
            np.testing.assert_array_equal(c.attributes(field)[:], n.attributes(field)[:])


def test_angle_traces_hold_the_angle_and_the_full_survey_cdp():
    with segyio.open(str(SAMPLES / "angles.sgy")) as f:
        h = f.header[4]  # inline 1016, crossline 2013, second angle
        assert (h[F.INLINE_3D], h[F.CROSSLINE_3D], h[F.offset], h[F.CDP_TRACE]) == (1016, 2013, 15, 2)
        assert h[F.CDP] == 16 * 48 + 13 + 1


def test_noisy_snr(clean):
    noisy = segyio.tools.cube(str(SAMPLES / "seismic_noisy.sgy"))
    noise = (noisy - clean).astype(np.float64)
    snr_db = 10 * np.log10(np.sum(clean.astype(np.float64) ** 2) / np.sum(noise**2))
    assert snr_db == pytest.approx(2.00, abs=0.01)
    held_out = 10 * np.log10(np.sum(clean[51:].astype(np.float64) ** 2) / np.sum(noise[51:] ** 2))
    assert held_out == pytest.approx(1.34, abs=0.01)  # the README's figures are on these inlines
    assert noisy.std() == pytest.approx(832, abs=1) and noise.std() == pytest.approx(517, abs=1)


def test_noise_is_field_like(clean):
    """Band-limited (correlated along the trace), correlated across traces, bad traces and spikes."""
    noise = (segyio.tools.cube(str(SAMPLES / "seismic_noisy.sgy")) - clean).astype(np.float64)

    def lag(axis: int, k: int) -> float:
        x = np.moveaxis(noise, axis, -1)
        return float(np.sum(x[..., :-k] * x[..., k:]) / np.sum(x * x))

    assert lag(1, 1) == pytest.approx(0.41, abs=0.01)  # crossline (AR(1) 0.5, diluted by bad traces)
    assert lag(0, 1) == pytest.approx(0.41, abs=0.01)  # inline
    assert (lag(2, 1), lag(2, 3)) == pytest.approx((0.66, -0.36), abs=0.01)  # along the trace
    rms = np.sqrt(np.mean(noise**2, axis=-1))
    assert np.sum(rms > 2.5 * np.median(rms)) == 61  # bad traces (2 %, 4 × the noise)
    assert np.sum(np.abs(noise) > 6 * noise.std()) == 631  # spikes


@pytest.mark.parametrize(
    ("name", "dtype", "shape"),
    [
        ("faults.npy", np.uint8, (64, 48, 100)),
        ("facies.npy", np.uint8, (64, 48, 100)),
        ("impedance.npy", np.float32, (64, 48, 100)),
        ("gas.npy", np.uint8, (32, 24, 100)),
        ("traces3c.npy", np.float32, (300, 3, 256)),
        ("traces3c_labels.npy", np.int64, (300,)),
    ],
)
def test_array_dtype_and_shape(name, dtype, shape):
    array = load(name)
    assert array.dtype == dtype
    assert array.shape == shape


def test_fault_labels_are_a_rare_binary_class():
    faults = load("faults.npy")
    assert set(np.unique(faults)) == {0, 1}
    assert 0.02 < faults.mean() < 0.08


def test_facies_has_five_classes_ordered_by_depth():
    facies = load("facies.npy")
    shares = np.bincount(facies.ravel(), minlength=5) / facies.size
    assert len(shares) == 5 and shares.min() > 0.10
    # Units stack in order: the top sample is facies 0 everywhere, the bottom never is.
    assert (facies[:, :, 0] == 0).all()
    assert (facies[:, :, -1] != 0).all()


def test_impedance_is_positive_and_separates_the_carbonate():
    impedance, facies = load("impedance.npy"), load("facies.npy")
    assert impedance.min() > 2500 and impedance.max() < 9000
    assert impedance[facies == 4].mean() > impedance[facies == 0].mean() + 1500


def test_gas_sits_in_the_reservoir_unit_on_the_dome():
    gas = load("gas.npy").astype(bool)
    facies = load("facies.npy")[SUB_AREA]
    assert 0.01 < gas.mean() < 0.03
    assert set(np.unique(facies[gas])) == {3}
    inlines = SUB_ILINES[gas.any(axis=(1, 2))]
    assert (inlines.min(), inlines.max()) == (1018, 1043)


def test_gas_brightens_with_angle_and_decoys_do_not(angles):
    gas = load("gas.npy").astype(bool)
    decoys = (load("facies.npy")[SUB_AREA] == 3) & ~gas

    def far_over_near(mask):
        near, far = angles[:, :, 0][mask], angles[:, :, 2][mask]
        return np.sqrt((far**2).mean() / (near**2).mean())

    assert far_over_near(gas) > 1.25
    assert far_over_near(decoys) < 0.9


def test_near_angle_matches_the_post_stack_volume(angles, clean):
    corr = np.corrcoef(angles[:, :, 0].ravel(), clean[SUB_AREA].ravel())[0, 1]
    assert corr > 0.95


def test_microseismic_labels_are_balanced_and_match_the_csv():
    labels = load("traces3c_labels.npy")
    assert labels.sum() == 150
    rows = (SAMPLES / "traces3c_labels.csv").read_text().splitlines()
    assert rows[0] == "trace,label"
    assert rows[1:] == [f"{n},{label}" for n, label in enumerate(labels)]


def test_events_carry_more_energy_than_noise_records():
    records, labels = load("traces3c.npy"), load("traces3c_labels.npy")
    peak = np.abs(records).max(axis=(1, 2))
    assert np.median(peak[labels == 1]) > 1.5 * np.median(peak[labels == 0])


def _same_segy(a: Path, b: Path) -> None:
    """Headers byte for byte; samples equal to float32 rounding (another numpy may differ in the last bit)."""
    raw_a, raw_b = a.read_bytes(), b.read_bytes()
    assert len(raw_a) == len(raw_b)
    with segyio.open(a, ignore_geometry=True) as fa, segyio.open(b, ignore_geometry=True) as fb:
        trace_bytes = 240 + 4 * len(fa.samples)
        for t in range(fa.tracecount):
            start = 3600 + t * trace_bytes
            assert raw_a[start:start + 240] == raw_b[start:start + 240], (a.name, t)
        np.testing.assert_allclose(fb.trace.raw[:], fa.trace.raw[:], rtol=1e-5, atol=1e-3)
    assert raw_a[:3600] == raw_b[:3600]


@pytest.mark.slow  # about 4-6 s: the quick suite stays under 4 minutes on 2 cores
def test_script_reproduces_the_committed_files(tmp_path):
    subprocess.run(
        [sys.executable, str(SAMPLES / "make_samples.py"), "--out", str(tmp_path)],
        check=True,
        timeout=120,
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted({name.split("/")[0] for name in FILES})
    for name in FILES:
        new, old = tmp_path / name, SAMPLES / name
        if name.endswith(".sgy"):
            _same_segy(old, new)
        elif name in TIFF_FILES:
            _same_tiff(old, new)
        elif name.endswith(".nc"):  # HDF5 bytes carry library versions: compare what xarray reads
            import xarray as xr

            with xr.open_dataset(new) as a, xr.open_dataset(old) as b:
                xr.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-3)
                assert a.attrs == b.attrs and all(a[d].attrs == b[d].attrs for d in a.coords)
        elif name.endswith(".npy") and load(name).dtype.kind == "f":
            np.testing.assert_allclose(np.load(new), load(name), rtol=1e-5, atol=1e-3, err_msg=name)
        elif name.endswith(".mseed"):  # counts rounded from floats: equal to ±1 count on any platform
            obspy = pytest.importorskip("obspy")
            for a, b in zip(obspy.read(str(new)), obspy.read(str(old)), strict=True):
                assert a.id == b.id and a.stats.starttime == b.stats.starttime, name
                np.testing.assert_allclose(a.data, b.data, atol=1, err_msg=name)
        else:  # labels: exactly
            assert new.read_bytes() == old.read_bytes(), name


def _same_tiff(a: Path, b: Path) -> None:
    """Pixels exactly, and the georeferencing or voxel size (an OME-TIFF's UUID is new on every run, and
    compressed bytes may differ between zlib builds)."""
    tifffile = pytest.importorskip("tifffile")
    with tifffile.TiffFile(a) as ta, tifffile.TiffFile(b) as tb:
        np.testing.assert_array_equal(ta.asarray(), tb.asarray(), err_msg=a.name)
        if ta.is_ome:
            pixels = [tifffile.xml2dict(t.ome_metadata)["OME"]["Image"]["Pixels"] for t in (ta, tb)]
            assert pixels[0] == pixels[1], a.name
        assert ta.pages.first.geotiff_tags == tb.pages.first.geotiff_tags


def test_tiff_samples_scene_and_plug():
    rasterio = pytest.importorskip("rasterio")
    tifffile = pytest.importorskip("tifffile")
    with rasterio.open(SAMPLES / "scene.tif") as scene, rasterio.open(SAMPLES / "landcover.tif") as labels:
        assert scene.crs.to_epsg() == 32633 and scene.res == (10.0, 10.0) and scene.nodata == 0
        assert scene.descriptions == ("blue", "green", "red", "nir") and scene.transform == labels.transform
        valid, classes = scene.dataset_mask() > 0, labels.read(1)
    assert round(1 - valid.mean(), 3) == 0.147 and (classes[~valid] == 255).all()
    shares = np.bincount(classes[valid], minlength=4) / valid.sum()
    np.testing.assert_allclose(shares, [0.091, 0.307, 0.353, 0.249], atol=5e-4)
    with tifffile.TiffFile(SAMPLES / "ct.ome.tif") as ct:
        pixels = tifffile.xml2dict(ct.ome_metadata)["OME"]["Image"]["Pixels"]
        assert ct.series[0].shape == (48, 80, 80) and pixels["PhysicalSizeX"] == 2.5 == pixels["PhysicalSizeZ"]
    assert round(float(tifffile.imread(SAMPLES / "pores.ome.tif").mean()), 3) == 0.291


def test_earthquake_records_and_picks():
    pytest.importorskip("obspy")
    from geocnn.grids.grid import open_grid

    grid = open_grid(str(SAMPLES / "records" / "*.mseed"))
    src = grid.inputs[0]
    assert grid.shape == (6, 24000) and grid.channel_names == ("Z", "N", "E") and src.rate == 100.0
    assert src.starttime == "2024-03-01T10:00:00Z" and src.stations[0] == "XG.AB01."
    assert src.channel_codes["XG.AB06."] == ("HHZ", "HH1", "HH2")  # 1 → N, 2 → E
    gap = src.coverage((slice(2, 3), slice(0, 3), slice(0, 24000)))[0]
    assert (~gap).sum(axis=1).tolist() == [800, 800, 800]  # AB03: 8 s missing on every component
    rows = (SAMPLES / "picks.csv").read_text().splitlines()
    assert rows[0] == "station,phase,time" and len(rows) == 169  # 14 events × 6 stations × P, S
