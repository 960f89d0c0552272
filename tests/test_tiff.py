"""TIFF inputs and outputs: GeoTIFF through rasterio, stacks (multi-page, OME, ImageJ, folders of slices) through tifffile.

Every file here is written by rasterio or tifffile themselves, and every value read is compared with
what that library reads, bit for bit. Values encode their position (band·10⁶ + row·1000 + column), so a
wrong window shows in the assertion.
"""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from geocnn.errors import DataError, OutputExistsError
from geocnn.grids import writer
from geocnn.grids.convert import convert
from geocnn.grids.grid import open_grid, open_stack
from geocnn.grids.inspect import inspect_inputs
from geocnn.grids.tiff import MissingExtra, family, natural_key
from geocnn.predict import predict
from tests import trainkit

rasterio = pytest.importorskip("rasterio", reason="the geocnn[geo] extra (rasterio) is not installed")
tifffile = pytest.importorskip("tifffile", reason="the geocnn[tiff] extra (tifffile) is not installed")
from rasterio.transform import from_origin  # noqa: E402
from rasterio.windows import Window  # noqa: E402

UTM = "EPSG:32631"
TRANSFORM = from_origin(500000.0, 4000000.0, 10.0, 10.0)


def coded(bands: int, rows: int, cols: int, dtype: str = "int32") -> np.ndarray:
    b, r, c = np.meshgrid(np.arange(bands), np.arange(rows), np.arange(cols), indexing="ij")
    return (b * 1_000_000 + r * 1000 + c).astype(dtype)


def scene(path, values, *, crs=UTM, transform=TRANSFORM, nodata=None, block=64, compress=None, names=()):
    profile = dict(driver="GTiff", width=values.shape[2], height=values.shape[1], count=values.shape[0],
                   dtype=values.dtype.name, crs=crs, transform=transform, nodata=nodata, tiled=True,
                   blockxsize=block, blockysize=block)
    if compress:
        profile["compress"] = compress
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(values)
        for k, name in enumerate(names):
            ds.set_band_description(k + 1, name)
    return path


def whole(grid):
    return grid.read(tuple(slice(0, n) for n in grid.shape))


# ---------------------------------------------------------------- GeoTIFF

def test_geotiff_bands_are_channels_equal_to_rasterio(tmp_path):
    path = scene(tmp_path / "s.tif", coded(3, 130, 150), names=("red", "green", ""))
    grid = open_grid(path)
    assert grid.axes == ("y", "x") and grid.shape == (130, 150) and grid.channels == 3
    assert grid.channel_names == ("red", "green", "band 3")
    assert grid.spacing() == {"x": (10.0, "m"), "y": (10.0, "m")}
    with rasterio.open(path) as ds:
        expected = ds.read(window=Window(17, 40, 90, 33)).astype(np.float32)
        bounds = ds.bounds
    np.testing.assert_array_equal(grid.read((slice(40, 73), slice(17, 107))), expected)
    info = inspect_inputs([path])[0]
    assert info["geometry"]["crs"] == UTM
    assert info["geometry"]["bounds"] == {"left": bounds.left, "bottom": bounds.bottom, "right": bounds.right,
                                          "top": bounds.top}
    assert info["spacing"] == {"x": {"value": 10.0, "unit": "m"}, "y": {"value": 10.0, "unit": "m"}}


def test_windowed_read_touches_only_its_tiles(tmp_path):
    """Every tile the window does not touch is overwritten with garbage: the window still reads right,
    and a window one pixel wider (into a damaged tile) fails naming the file."""
    values = coded(1, 256, 256)
    path = scene(tmp_path / "t.tif", values, block=64, compress="deflate")
    y, x = slice(70, 120), slice(130, 190)  # tiles rows 1, columns 2
    with tifffile.TiffFile(path) as tif:
        page = tif.pages.first
        offsets, counts = page.dataoffsets, page.databytecounts
    per_row = 256 // 64
    raw = bytearray(path.read_bytes())
    kept = 0
    for k, (off, n) in enumerate(zip(offsets, counts)):
        row, col = divmod(k, per_row)
        if row == 1 and col == 2:
            kept += 1
            continue
        raw[off:off + n] = b"\xff" * n
    assert kept == 1
    path.write_bytes(bytes(raw))
    grid = open_grid(path)
    np.testing.assert_array_equal(grid.read((y, x))[0], values[0, y, x])
    with pytest.raises(DataError, match="block cannot be read"):
        open_grid(path).read((y, slice(130, 193)))


def test_nodata_is_dead_reads_zero_and_is_written_as_nodata(tmp_path):
    values = coded(2, 100, 120, "float32")
    values[:, 10:20, 30:50] = -9999.0
    path = scene(tmp_path / "n.tif", values, nodata=-9999.0)
    grid = open_grid(path)
    source = grid.inputs[0]
    valid = source.valid((slice(0, 100), slice(0, 120)))
    np.testing.assert_array_equal(grid.valid(), valid)
    assert valid.sum() == 100 * 120 - 10 * 20 and not valid[10:20, 30:50].any()
    read = whole(grid)
    assert (read[:, 10:20, 30:50] == 0).all() and read[1, 0, 0] == values[1, 0, 0]
    for dtype, dead in (("float32", None), ("uint8", 255)):
        out = tmp_path / f"pred-{dtype}.tif"
        pending = writer.prepare(out, grid, 1, dtype, channel_names=("facies",))
        pending.write_rows(0, np.ones((1, 100, 120), dtype))
        pending.commit()
        with rasterio.open(out) as ds:
            band = ds.read(1)
            assert ds.crs == rasterio.crs.CRS.from_string(UTM) and ds.transform == TRANSFORM
            assert ds.profile["tiled"] and ds.profile["compress"] == "deflate"
            assert ds.descriptions == ("facies",) and ds.dtypes == (dtype,)
            assert (ds.read_masks(1)[10:20, 30:50] == 0).all() and ds.read_masks(1).sum() == 255 * (12000 - 200)
            if dead is None:
                assert np.isnan(band[10:20, 30:50]).all() and np.isnan(ds.nodata)
            else:
                assert (band[10:20, 30:50] == dead).all() and ds.nodata == dead
            assert (band[0:10] == 1).all()


def test_geotiff_output_round_trips_values_crs_and_bounds(tmp_path):
    values = coded(4, 300, 270, "float32")
    path = scene(tmp_path / "in.tif", values, names=("b", "g", "r", "nir"))
    grid = open_grid(path)
    out = tmp_path / "out.tif"
    pending = writer.prepare(out, grid, 4, channel_names=grid.channel_names)
    for start in (256, 0):  # rows in any order, in blocks
        stop = min(start + 256, 300)
        pending.write_rows(start, whole(grid)[:, start:stop])
    assert not out.exists()
    pending.commit()
    with rasterio.open(path) as a, rasterio.open(out) as b:
        assert (a.crs, a.transform, a.bounds, a.shape) == (b.crs, b.transform, b.bounds, b.shape)
        np.testing.assert_array_equal(a.read(), b.read())
        assert b.descriptions == ("b", "g", "r", "nir") and b.tags()["channel_names"] == "b,g,r,nir"


def test_stacked_rasters_must_share_crs_and_transform(tmp_path):
    a = scene(tmp_path / "a.tif", coded(1, 40, 50))
    b = scene(tmp_path / "b.tif", coded(2, 40, 50), names=("x", "y"))
    assert open_stack([a, b]).channel_names == ("band 1", "x", "y")
    moved = scene(tmp_path / "moved.tif", coded(1, 40, 50), transform=from_origin(500010.0, 4000000.0, 10.0, 10.0))
    with pytest.raises(DataError, match="moved.tif.*transform .* differs from a.tif"):
        open_stack([a, moved])
    other = scene(tmp_path / "wgs.tif", coded(1, 40, 50), crs="EPSG:4326", transform=from_origin(3, 40, 0.001, 0.001))
    with pytest.raises(DataError, match="CRS differs from a.tif"):
        open_stack([a, other])


def test_convert_geotiff_to_npy_and_back_onto_the_scene(tmp_path):
    values = coded(3, 64, 80, "float32")
    path = scene(tmp_path / "s.tif", values)
    convert(path, tmp_path / "s.npy")
    np.testing.assert_array_equal(np.load(tmp_path / "s.npy"), values)
    convert(tmp_path / "s.npy", tmp_path / "back.tif", template=path)
    with rasterio.open(tmp_path / "back.tif") as ds:
        assert ds.transform == TRANSFORM and ds.crs.to_string() == UTM
        np.testing.assert_array_equal(ds.read(), values)
    with pytest.raises(DataError, match="no trace headers"):
        convert(path, tmp_path / "s.sgy")


@pytest.mark.parametrize("between", ["npy", "zarr"])
def test_crs_and_transform_survive_an_array_without_a_template(tmp_path, between):
    pytest.importorskip("zarr")
    values = coded(3, 40, 50, "float32")
    moved = from_origin(612345.0, 4100000.0, 20.0, 30.0)  # not the default: the output must take the file's
    path = scene(tmp_path / "s.tif", values, transform=moved, names=("b", "g", "r"))
    convert(path, tmp_path / f"s.{between}")
    mid = open_grid(tmp_path / f"s.{between}")
    assert mid.spacing() == {"x": (20.0, "m"), "y": (30.0, "m")} and mid.channel_names == ("b", "g", "r")
    convert(tmp_path / f"s.{between}", tmp_path / "back.tif")
    with rasterio.open(path) as a, rasterio.open(tmp_path / "back.tif") as b:
        assert (b.crs, b.transform, b.bounds) == (a.crs, a.transform, a.bounds)
        assert b.descriptions == ("b", "g", "r")
        np.testing.assert_array_equal(b.read(), values)


# ---------------------------------------------------------------- stacks

def test_ome_tiff_volume_and_voxel_size(tmp_path):
    vol = coded(1, 12, 30, "uint16")[0][None].repeat(7, 0) + np.arange(7, dtype=np.uint16)[:, None, None] * 100
    tifffile.imwrite(tmp_path / "ct.ome.tif", vol, ome=True,
                     metadata={"axes": "ZYX", "PhysicalSizeX": 0.65, "PhysicalSizeY": 0.65, "PhysicalSizeZ": 2.0})
    grid = open_grid(tmp_path / "ct.ome.tif")
    assert grid.axes == ("z", "y", "x") and grid.shape == (7, 12, 30) and grid.channels == 1
    assert grid.spacing() == {"x": (0.65, "µm"), "y": (0.65, "µm"), "z": (2.0, "µm")}
    assert grid.inputs[0].contiguous  # memory-mapped
    np.testing.assert_array_equal(grid.read((slice(2, 6), slice(3, 9), slice(0, 30)))[0],
                                  tifffile.imread(tmp_path / "ct.ome.tif")[2:6, 3:9])


def test_compressed_imagej_stack_reads_only_the_pages_a_window_touches(tmp_path, monkeypatch):
    vol = np.random.default_rng(1).random((9, 20, 25)).astype(np.float32)
    tifffile.imwrite(tmp_path / "ij.tif", vol, imagej=True, compression="zlib", resolution=(4.0, 4.0),
                     metadata={"spacing": 1.5, "unit": "um", "axes": "ZYX"})
    grid = open_grid(tmp_path / "ij.tif")
    source = grid.inputs[0]
    assert not source.contiguous and grid.spacing() == {"x": (0.25, "µm"), "y": (0.25, "µm"), "z": (1.5, "µm")}
    pages = []
    original = type(source)._page
    monkeypatch.setattr(type(source), "_page", lambda self, at: pages.append(at) or original(self, at))
    np.testing.assert_array_equal(grid.read((slice(3, 6), slice(0, 20), slice(4, 9)))[0], vol[3:6, :, 4:9])
    assert pages == [(3,), (4,), (5,)]


def test_a_window_of_a_folder_of_slices_opens_only_its_slices(tmp_path, monkeypatch):
    for z in range(12):
        tifffile.imwrite(tmp_path / f"s{z}.tif", np.full((6, 8), z, np.uint16))
    grid = open_grid(tmp_path)
    source = grid.inputs[0]
    opened = []
    original = type(source)._open
    monkeypatch.setattr(type(source), "_open", lambda self, k: opened.append(k) or original(self, k))
    np.testing.assert_array_equal(grid.read((slice(9, 11), slice(1, 3), slice(0, 8)))[0, :, 0, 0], [9, 10])
    assert opened == [9, 10]


def test_folder_and_glob_of_slices_in_natural_order(tmp_path):
    folder = tmp_path / "slices"
    folder.mkdir()
    for z in range(12):
        tifffile.imwrite(folder / f"slice_{z}.tif", np.full((6, 8), z, np.uint8))
    assert sorted(["s_10", "s_2", "s_1"], key=natural_key) == ["s_1", "s_2", "s_10"]
    for path in (folder, str(folder / "slice_*.tif")):
        grid = open_grid(path)
        assert grid.shape == (12, 6, 8) and family(path) == "stack"
        np.testing.assert_array_equal(whole(grid)[0, :, 0, 0], np.arange(12))


def test_channel_axis_becomes_channels(tmp_path):
    vol = coded(2, 5, 7, "uint16")[:, None].repeat(3, 1)  # C, Z, Y, X
    tifffile.imwrite(tmp_path / "c.ome.tif", vol, ome=True, metadata={"axes": "CZYX"})
    grid = open_grid(tmp_path / "c.ome.tif")
    assert grid.axes == ("z", "y", "x") and grid.channels == 2
    np.testing.assert_array_equal(whole(grid), vol.astype(np.float32))


def test_stack_output_is_ome_tiff_with_the_voxel_size(tmp_path):
    vol = np.arange(4 * 10 * 12, dtype=np.uint16).reshape(4, 10, 12)
    tifffile.imwrite(tmp_path / "v.ome.tif", vol, ome=True,
                     metadata={"axes": "ZYX", "PhysicalSizeX": 0.5, "PhysicalSizeY": 0.5, "PhysicalSizeZ": 3.0})
    grid = open_grid(tmp_path / "v.ome.tif")
    labels = (vol % 3).astype(np.uint8)
    pending = writer.prepare(tmp_path / "pores.tif", grid, 1, "uint8")
    pending.write_rows(2, labels[None, 2:])
    pending.write_rows(0, labels[None, :2])
    pending.commit()
    with tifffile.TiffFile(tmp_path / "pores.tif") as tif:
        assert tif.is_ome and len(tif.pages) == 4
        np.testing.assert_array_equal(tif.asarray(), labels)
    assert open_grid(tmp_path / "pores.tif").spacing() == grid.spacing()
    probs = writer.prepare(tmp_path / "probs.tif", grid, 2, channel_names=("grain", "pore"))
    probs.write_rows(0, np.stack([vol, -vol.astype(np.float32)]).astype(np.float32))
    probs.commit()
    back = open_grid(tmp_path / "probs.tif")
    assert back.channels == 2 and back.spacing() == grid.spacing()
    np.testing.assert_array_equal(whole(back)[1], -vol.astype(np.float32))


def test_a_folder_of_slices_output_holds_the_voxel_size_and_reads_back_as_the_volume(tmp_path):
    vol = np.random.default_rng(4).random((11, 6, 7)).astype(np.float32)
    tifffile.imwrite(tmp_path / "ct.ome.tif", vol, ome=True,
                     metadata={"axes": "ZYX", "PhysicalSizeX": 0.65, "PhysicalSizeY": 0.7, "PhysicalSizeZ": 2.0})
    result = convert(tmp_path / "ct.ome.tif", tmp_path / "ct_slices" / "slice_{:04d}.tif")
    folder = tmp_path / "ct_slices"
    assert Path(result.output) == folder
    assert sorted(f.name for f in folder.iterdir()) == [f"slice_{z:04d}.tif" for z in range(11)]  # nothing else
    with tifffile.TiffFile(folder / "slice_0010.tif") as tif:  # each slice says its voxel size itself
        assert tif.is_imagej and tif.imagej_metadata["spacing"] == 2.0 and tif.imagej_metadata["unit"] == "micron"
        num, den = tif.pages.first.tags["XResolution"].value
        assert den / num == pytest.approx(0.65)
        np.testing.assert_array_equal(tif.asarray(), vol[10])
    back = open_grid(folder)
    np.testing.assert_array_equal(whole(back)[0], vol)
    assert back.spacing() == {"z": (2.0, "µm"), "y": (pytest.approx(0.7), "µm"), "x": (pytest.approx(0.65), "µm")}


def test_slice_names_without_padding_read_back_in_natural_order_and_channels_are_pages(tmp_path):
    vol = np.arange(12 * 3 * 4, dtype=np.float32).reshape(12, 3, 4)
    tifffile.imwrite(tmp_path / "v.tif", vol, photometric="minisblack")
    grid = open_grid(tmp_path / "v.tif")
    pending = writer.prepare(tmp_path / "probs" / "p{}.tif", grid, 2, channel_names=("grain", "pore"))
    pending.write_rows(5, np.stack([vol[5:], -vol[5:]]))
    assert not (tmp_path / "probs").exists()  # a temporary sibling folder until commit
    pending.write_rows(0, np.stack([vol[:5], -vol[:5]]))
    pending.write((slice(0, 1), slice(1, 2), slice(0, 4)), np.full((2, 1, 1, 4), 7.0, np.float32))  # part of a slice
    pending.commit()
    assert (tmp_path / "probs" / "p10.tif").exists() and not (tmp_path / "probs" / "p0010.tif").exists()
    back = open_grid(tmp_path / "probs")
    expected = np.stack([vol, -vol])
    expected[:, 0, 1] = 7.0
    assert back.shape == (12, 3, 4) and back.channels == 2
    np.testing.assert_array_equal(whole(back), expected)  # p10 after p9, not after p1


def test_predict_writes_a_folder_of_slices_and_its_preview(tmp_path, identity_run):
    run = identity_run(tmp_path)
    volume = trainkit.layered_volume((5, 13, 37), seed=5)
    np.save(tmp_path / "vol.npy", volume)
    report = predict(run, [tmp_path / "vol.npy"], tmp_path / "pred" / "slice_{:04d}.tif", overlap=0.25)
    assert report.output == tmp_path / "pred" and len(list((tmp_path / "pred").iterdir())) == 5
    np.testing.assert_allclose(whole(open_grid(tmp_path / "pred"))[0], volume, rtol=1e-5, atol=1e-5)
    assert (tmp_path / "pred.preview.png").stat().st_size > 10_000  # drawn from the folder read back


def test_a_folder_of_slices_is_atomic_and_refuses_what_it_cannot_hold(tmp_path):
    vol = np.zeros((3, 4, 5), np.uint8)
    tifffile.imwrite(tmp_path / "v.tif", vol, photometric="minisblack")
    grid = open_grid(tmp_path / "v.tif")
    pending = writer.prepare(tmp_path / "out" / "s_{:03d}.tif", grid, 1, "uint8")
    pending.write_rows(0, vol[None])
    pending.abort()
    assert list(tmp_path.iterdir()) == [tmp_path / "v.tif"]  # no folder, no temporary one
    (tmp_path / "out").mkdir()
    with pytest.raises(OutputExistsError, match="already exists"):
        writer.prepare(tmp_path / "out" / "s_{:03d}.tif", grid, 1, "uint8")
    with pytest.raises(DataError, match="one number field"):
        writer.prepare(tmp_path / "out" / "s_{z}.tif", grid, 1, "uint8")
    tifffile.imwrite(tmp_path / "flat.tif", np.zeros((4, 5), np.uint8))
    with pytest.raises(DataError, match=r"\(z, y, x\) volume, not 2 axes"):
        writer.prepare(tmp_path / "o2" / "s_{}.tif", open_grid(tmp_path / "flat.tif"), 1, "uint8")


def test_an_ome_output_of_a_volume_in_metres_says_metres_and_reads_back_in_microns(tmp_path):
    xr = pytest.importorskip("xarray")
    pytest.importorskip("h5netcdf")
    values = np.arange(3 * 4 * 5, dtype=np.float32).reshape(3, 4, 5)
    xr.Dataset({"vp": (("z", "y", "x"), values)},
               coords={"z": ("z", 5.0 * np.arange(3), {"units": "m"}), "y": ("y", 25.0 * np.arange(4), {"units": "m"}),
                       "x": ("x", 12.5 * np.arange(5), {"units": "m"})}).to_netcdf(tmp_path / "m.nc", engine="h5netcdf")
    convert(tmp_path / "m.nc", tmp_path / "m.ome.tif")
    with tifffile.TiffFile(tmp_path / "m.ome.tif") as tif:
        assert 'PhysicalSizeZ="5.0" PhysicalSizeZUnit="m"' in tif.ome_metadata
    assert open_grid(tmp_path / "m.ome.tif").spacing() == {"z": (5e6, "µm"), "y": (25e6, "µm"), "x": (12.5e6, "µm")}


# ---------------------------------------------------------------- damaged files and extras

def test_damaged_and_huge_tiffs_are_one_error(tmp_path):
    (tmp_path / "text.tif").write_text("not a tiff")
    with pytest.raises(DataError, match="not a TIFF file"):
        open_grid(tmp_path / "text.tif")
    tifffile.imwrite(tmp_path / "v.tif", np.zeros((3, 50, 50), np.uint16), photometric="minisblack")
    raw = (tmp_path / "v.tif").read_bytes()
    (tmp_path / "cut.tif").write_bytes(raw[:2000])
    with pytest.raises(DataError, match="cut.tif"):
        whole(open_grid(tmp_path / "cut.tif"))
    # a classic TIFF declaring a 2³⁰ × 2³⁰ image: refused before anything is allocated
    entries = [(256, 4, 1, 1 << 30), (257, 4, 1, 1 << 30), (258, 3, 1, 8), (273, 4, 1, 8), (279, 4, 1, 1)]
    ifd = struct.pack("<H", len(entries)) + b"".join(struct.pack("<HHII", *e) for e in entries) + b"\0" * 4
    (tmp_path / "huge.tif").write_bytes(b"II*\0" + struct.pack("<I", 8) + ifd)
    with pytest.raises(DataError, match="declares 1,073,741,824 pixels along one axis"):
        open_grid(tmp_path / "huge.tif")
    tifffile.imwrite(tmp_path / "complex.tif", np.zeros((4, 4), np.complex64))
    with pytest.raises(DataError, match="complex"):
        open_grid(tmp_path / "complex.tif")


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_damaged_and_huge_geotiffs_are_one_line_exit_2(tmp_path, cli):
    path = scene(tmp_path / "s.tif", coded(1, 256, 256, "float32"), compress="deflate")
    raw = path.read_bytes()
    cut = tmp_path / "cut.tif"
    cut.write_bytes(raw[:len(raw) // 2])  # header and tags whole, the later tiles gone
    grid = open_grid(cut)
    assert family(cut) == "geotiff" and grid.shape == (256, 256)
    with pytest.raises(DataError, match="cut.tif: a block cannot be read"):
        grid.read((slice(192, 256), slice(192, 256)))
    # a GeoTIFF (GeoKeyDirectory tag) declaring 2³⁰ × 2³⁰ pixels: refused before anything is allocated
    entries = [(256, 4, 1, 1 << 30), (257, 4, 1, 1 << 30), (258, 3, 1, 8), (273, 4, 1, 8), (279, 4, 1, 1),
               (34735, 3, 4, 0)]
    ifd = struct.pack("<H", len(entries)) + b"".join(struct.pack("<HHII", *e) for e in entries) + b"\0" * 4
    huge = tmp_path / "huge.tif"
    huge.write_bytes(b"II*\0" + struct.pack("<I", 8) + ifd)
    assert family(huge) == "geotiff"
    for bad in (huge, tmp_path / "text.tif"):
        if bad.name == "text.tif":
            bad.write_bytes(b"II*\0garbage")
        result = cli("inspect", bad)
        assert result.exit_code == 2 and "Traceback" not in result.output
        assert len(result.output.strip().splitlines()) == 1 and str(bad.name) in result.output


def test_grids_import_neither_library_and_a_missing_extra_is_one_line(tmp_path):
    code = ("import sys, geocnn.grids.writer, geocnn.grids.convert, geocnn.grids.inspect; "
            "print([m for m in ('rasterio', 'tifffile', 'torch') if m in sys.modules])")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "[]"
    path = scene(tmp_path / "s.tif", coded(1, 10, 10))
    tifffile.imwrite(tmp_path / "v.tif", np.zeros((2, 5, 5), np.uint8))
    code = ("import sys; sys.modules['{m}'] = None; from geocnn.cli import main; sys.argv = ['geocnn', 'inspect', '{p}']; "
            "main()")
    for module, file, extra in (("rasterio", path, "geo"), ("tifffile", tmp_path / "v.tif", "tiff")):
        run = subprocess.run([sys.executable, "-c", code.format(m=module, p=file)], capture_output=True, text=True)
        assert f"geocnn[{extra}]" in run.stdout + run.stderr, run.stderr
    assert issubclass(MissingExtra, Exception)


@pytest.mark.parametrize("between", ["npy", "zarr"])
def test_voxel_size_survives_an_array(tmp_path, between):
    pytest.importorskip("zarr")
    vol = np.arange(5 * 6 * 7, dtype=np.uint16).reshape(5, 6, 7)
    tifffile.imwrite(tmp_path / "ct.ome.tif", vol, ome=True,
                     metadata={"axes": "ZYX", "PhysicalSizeX": 0.65, "PhysicalSizeY": 0.7, "PhysicalSizeZ": 2.0})
    convert(tmp_path / "ct.ome.tif", tmp_path / f"x.{between}")
    voxel = {"x": (0.65, "µm"), "y": (0.7, "µm"), "z": (2.0, "µm")}
    assert open_grid(tmp_path / f"x.{between}").spacing() == voxel
    convert(tmp_path / f"x.{between}", tmp_path / "y.ome.tif")
    with tifffile.TiffFile(tmp_path / "y.ome.tif") as tif:
        px = tifffile.xml2dict(tif.ome_metadata)["OME"]["Image"]["Pixels"]
        np.testing.assert_array_equal(tif.asarray(), vol.astype(np.float32))
    assert (px["PhysicalSizeX"], px["PhysicalSizeY"], px["PhysicalSizeZ"], px["PhysicalSizeXUnit"]) == \
        (0.65, 0.7, 2.0, "µm")


def test_a_score_map_keeps_no_spacing_along_its_strided_axes(tmp_path):
    vol = np.zeros((4, 10, 12), np.uint16)
    tifffile.imwrite(tmp_path / "v.ome.tif", vol, ome=True,
                     metadata={"axes": "ZYX", "PhysicalSizeX": 0.5, "PhysicalSizeY": 0.5, "PhysicalSizeZ": 3.0})
    grid = open_grid(tmp_path / "v.ome.tif")
    pending = writer.prepare(tmp_path / "map.npy", grid, shape=(4, 5, 12))
    pending.commit()
    assert open_grid(tmp_path / "map.npy").spacing() == {"z": (3.0, "µm"), "x": (0.5, "µm")}
