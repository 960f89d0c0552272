"""``geocnn convert`` between every readable and every writable format (issue 20 §4), table-driven.

One tiny file of each input kind, written by its own library (segyio, NumPy, rasterio, tifffile, xarray;
Zarr and MDIO by geocnn from the NumPy file), is converted to every output kind. Values come back equal,
bit for bit, and the geometry is kept wherever both formats hold it: the spacing of each axis, and a
GeoTIFF's CRS and transform. A pair that cannot work (a SEG-Y output without trace headers to copy) is
one line naming why and what to do, never a traceback.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from geocnn.errors import DataError
from geocnn.grids.convert import convert
from geocnn.grids.grid import open_grid
from geocnn.grids.tiff import georef_of
from tests.segyfactory import write_segy

rasterio = pytest.importorskip("rasterio")
tifffile = pytest.importorskip("tifffile")
xr = pytest.importorskip("xarray")
pytest.importorskip("zarr")
pytest.importorskip("h5netcdf")
from rasterio.transform import from_origin  # noqa: E402

INPUTS = ("in.sgy", "in.npy", "in.zarr", "in.mdio", "in.tif", "in.ome.tif", "in.nc")
OUTPUTS = ("npy", "sgy", "zarr", "mdio", "tif", "nc")
TRANSFORM = from_origin(612000.0, 4100000.0, 10.0, 20.0)
VOXEL = {"PhysicalSizeX": 0.5, "PhysicalSizeY": 0.75, "PhysicalSizeZ": 2.0}

# Pairs that cannot work, and the one line that says so.
REFUSED = {("in.tif", "sgy"): "a TIFF has no trace headers", ("in.ome.tif", "sgy"): "a TIFF has no trace headers",
           **{(i, "sgy"): "holds no SEG-Y trace headers.*--template" for i in ("in.npy", "in.zarr", "in.mdio", "in.nc")}}


def coded(*shape: int) -> np.ndarray:
    """Values that encode their position (100·i + 10·j + k)."""
    grids = np.meshgrid(*(np.arange(n) for n in shape), indexing="ij")
    return sum(g * 10 ** (len(shape) - 1 - k) for k, g in enumerate(grids)).astype(np.float32)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    d = tmp_path_factory.mktemp("inputs")
    write_segy(d / "in.sgy", range(1, 6), range(20, 26), 30, interval_us=2000)  # mdio's import needs 5 × 6 × 30
    np.save(d / "in.npy", coded(3, 4, 6))
    convert(d / "in.npy", d / "in.zarr")
    convert(d / "in.npy", d / "in.mdio")
    with rasterio.open(d / "in.tif", "w", driver="GTiff", width=5, height=4, count=2, dtype="float32",
                       crs="EPSG:32633", transform=TRANSFORM) as ds:
        ds.write(np.stack([coded(4, 5), -coded(4, 5)]))
    tifffile.imwrite(d / "in.ome.tif", coded(3, 4, 5).astype(np.uint16), ome=True, metadata={"axes": "ZYX", **VOXEL})
    coords = {"z": ("z", 5.0 * np.arange(3), {"units": "m"}), "y": ("y", 25.0 * np.arange(4), {"units": "m"}),
              "x": ("x", 10.0 * np.arange(5), {"units": "m"})}
    xr.Dataset({"vp": (("z", "y", "x"), coded(3, 4, 5))}, coords=coords).to_netcdf(d / "in.nc", engine="h5netcdf")
    return d


def everything(grid) -> np.ndarray:
    return grid.read(tuple(slice(0, n) for n in grid.shape))


def kept_spacing(src: str, dst: str) -> bool:
    """Does ``dst`` hold ``src``'s spacing? Arrays and stores record it; netCDF as coordinates (a SEG-Y's
    inline/crossline numbers replace its metres there, and mdio's own import keeps only the sample
    interval); an OME-TIFF holds a voxel size in µm only."""
    if (src, dst) == ("in.sgy", "mdio"):
        return False
    if dst in ("npy", "zarr", "mdio") or (src, dst) == ("in.sgy", "sgy"):
        return True
    if dst == "nc":
        return src != "in.sgy"
    return dst == "tif" and src in ("in.tif", "in.ome.tif")


def steps(grid) -> list[tuple[float, str] | None]:
    """Spacing in axis order, sign dropped (a netCDF's northing coordinate falls where a GeoTIFF's rows rise)."""
    spacing = grid.spacing()
    return [(abs(spacing[a][0]), spacing[a][1]) if a in spacing else None for a in grid.axes]


def same_spacing(a, b) -> bool:
    """Every axis ``a`` knows the spacing of has it in ``b`` too (``b`` may know more: netCDF index coordinates)."""
    return all(x is None or x == y for x, y in zip(steps(a), steps(b)))


# SEG-Y -> MDIO is mdio's own converter (a process pool, about 9 s): slow.
PAIRS = [pytest.param(i, o, marks=pytest.mark.slow) if (i, o) == ("in.sgy", "mdio") else (i, o)
         for i in INPUTS for o in OUTPUTS]


@pytest.mark.parametrize(("src", "dst"), PAIRS)
def test_convert_pair(inputs, tmp_path, monkeypatch, src, dst):
    monkeypatch.setenv("MDIO__IMPORT__CPU_COUNT", "1")  # SEG-Y -> MDIO is mdio's own converter
    out = tmp_path / f"out.{dst}"
    if (src, dst) in REFUSED:
        with pytest.raises(DataError, match=REFUSED[src, dst]) as err:
            convert(inputs / src, out)
        assert "\n" not in str(err.value) and not out.exists()
        return
    convert(inputs / src, out)
    a, b = open_grid(inputs / src), open_grid(out)
    assert b.channels == a.channels and b.shape == a.shape
    np.testing.assert_array_equal(everything(b), everything(a))
    if kept_spacing(src, dst):
        assert same_spacing(a, b)
    if src == "in.tif" and dst != "nc":
        assert georef_of(b).transform == georef_of(a).transform and georef_of(b).crs == georef_of(a).crs
    if src == "in.tif" and dst == "tif":
        with rasterio.open(inputs / src) as x, rasterio.open(out) as y:
            assert (y.crs, y.transform, y.bounds) == (x.crs, x.transform, x.bounds)


def test_geotiff_to_netcdf_carries_map_coordinates_and_the_crs(inputs, tmp_path):
    convert(inputs / "in.tif", tmp_path / "scene.nc")
    ds = xr.open_dataset(tmp_path / "scene.nc")
    np.testing.assert_array_equal(ds["x"].values, 612000.0 + 10.0 * (np.arange(5) + 0.5))  # pixel centres
    np.testing.assert_array_equal(ds["y"].values, 4100000.0 - 20.0 * (np.arange(4) + 0.5))
    assert ds["x"].attrs["standard_name"] == "projection_x_coordinate" and ds["x"].attrs["units"] == "m"
    assert ds["prediction"].attrs["grid_mapping"] == "spatial_ref"
    with rasterio.open(inputs / "in.tif") as src:
        assert rasterio.crs.CRS.from_wkt(ds["spatial_ref"].attrs["crs_wkt"]) == src.crs
    side = json.loads(ds["prediction"].attrs["geocnn_sidecar"])
    assert side["georef"]["transform"] == list(TRANSFORM)[:6]


@pytest.mark.parametrize("src", ["in.nc", "in.ome.tif"])
def test_a_pair_that_cannot_work_is_one_line_on_the_command_line(inputs, tmp_path, cli, src):
    result = cli("convert", inputs / src, tmp_path / "out.sgy")
    assert result.exit_code == 2 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "SEG-Y" in result.stderr
