"""netCDF/HDF5 inputs and outputs: files written by xarray (and h5py) read as xarray reads them, bit for bit;
outputs that xarray opens with the input's coordinates and attributes; errors that name the file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from geocnn.errors import DataError
from geocnn.grids import writer
from geocnn.grids.convert import convert
from geocnn.grids.grid import open_grid
from geocnn.grids.inspect import inspect_inputs
from geocnn.grids.spec import InputSpec
from geocnn.grids.stores import MissingExtra

xr = pytest.importorskip("xarray", reason="the geocnn[xarray] extra is not installed: pip install -e '.[xarray]'")
h5py = pytest.importorskip("h5py")
pytest.importorskip("h5netcdf")


def full(grid):
    return grid.read(tuple(slice(0, n) for n in grid.shape))


def model_dataset(nz=12, ny=7, nx=9) -> xr.Dataset:
    """A velocity model whose values encode their position: 1000·depth index + 10·northing + easting."""
    z, y, x = np.meshgrid(np.arange(nz), np.arange(ny), np.arange(nx), indexing="ij")
    vp = (1000.0 * z + 10.0 * y + x).astype(np.float32)
    coords = {"z": ("z", 5.0 * np.arange(nz), {"units": "m", "positive": "down"}),
              "y": ("y", 6_200_000.0 + 25.0 * np.arange(ny), {"units": "m", "standard_name": "projection_y_coordinate"}),
              "x": ("x", 430_000.0 + 12.5 * np.arange(nx), {"units": "m"})}
    return xr.Dataset({"vp": (("z", "y", "x"), vp, {"units": "m/s", "long_name": "P velocity"})},
                      coords=coords, attrs={"title": "test model", "Conventions": "CF-1.8"})


@pytest.fixture
def model_nc(tmp_path) -> Path:
    path = tmp_path / "model.nc"
    model_dataset().to_netcdf(path, engine="h5netcdf", encoding={"vp": {"chunksizes": (4, 7, 3), "zlib": True}})
    return path


# ----------------------------------------------------------------------------- reading


def test_variable_reads_as_xarray_gives_it_with_axes_and_spacing(model_nc):
    grid = open_grid(model_nc)
    assert grid.axes == ("depth", "northing", "easting") and grid.shape == (12, 7, 9)
    assert grid.channel_names == ("model:vp",) and grid.meta.format == "netcdf"
    assert grid.spacing() == {"depth": (5.0, "m"), "northing": (25.0, "m"), "easting": (12.5, "m")}
    expected = xr.open_dataset(model_nc)["vp"].values
    np.testing.assert_array_equal(full(grid)[0], expected)
    window = (slice(3, 8), slice(2, 3), slice(4, 9))
    np.testing.assert_array_equal(grid.read(window)[0], expected[window])
    assert grid.read((slice(5, 6), slice(3, 4), slice(7, 8)))[0, 0, 0, 0] == 5037.0  # 1000·5 + 10·3 + 7
    traces = grid.read_traces(np.array([0, 7 * 9 - 1, 2 * 9 + 4]))  # positions over (depth, northing)
    np.testing.assert_array_equal(traces[0], expected.reshape(-1, 9)[[0, 62, 22]])


def test_scaled_integers_and_fill_values_decode_as_xarray_does(tmp_path):
    raw = np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6)
    raw[1, 2, :] = -999  # a whole trace of fill: dead
    raw[0, 0, 0] = -999  # one fill sample in a live trace: read as zero
    ds = xr.Dataset({"phi": (("depth", "northing", "easting"), raw)})
    ds["phi"].attrs.update(scale_factor=0.01, add_offset=0.1, _FillValue=np.int16(-999))
    path = tmp_path / "phi.nc"
    ds.to_netcdf(path, engine="h5netcdf")
    expected = xr.open_dataset(path)["phi"].values  # float, NaN at the fill
    assert np.isnan(expected[1, 2]).all()
    grid = open_grid(path)
    np.testing.assert_array_equal(full(grid)[0], np.nan_to_num(expected.astype(np.float32), nan=0.0))
    live = grid.live()
    assert live.shape == (4, 5) and not live[1, 2] and live.sum() == 4 * 5 - 1


def test_netcdf3_classic_reads_through_scipy(tmp_path):
    pytest.importorskip("scipy")
    path = tmp_path / "classic.nc"
    model_dataset(4, 3, 5).to_netcdf(path, engine="scipy")
    assert path.read_bytes()[:3] == b"CDF"
    np.testing.assert_array_equal(full(open_grid(path))[0], model_dataset(4, 3, 5)["vp"].values)


def test_key_picks_the_variable_and_groups(tmp_path):
    ds = model_dataset(3, 4, 5)
    ds["rho"] = ds["vp"] * 0 + 2.3
    ds["crs"] = xr.DataArray(np.int32(0), attrs={"grid_mapping_name": "transverse_mercator"})
    path = tmp_path / "two.nc"
    ds.to_netcdf(path, engine="h5netcdf")
    model_dataset(3, 4, 5).to_netcdf(path, engine="h5netcdf", mode="a", group="models/v1")
    with pytest.raises(DataError) as e:
        open_grid(path)
    assert e.value.message == (f"{path}: holds 2 data variables (rho, vp): say which — "
                               "give key: NAME for this input (--key NAME)")
    with pytest.raises(DataError, match="no data variable 'vs' in the file") as e:
        open_grid(InputSpec(str(path), key="vs"))
    np.testing.assert_array_equal(full(open_grid(InputSpec(str(path), key="rho")))[0], 2.3 * np.ones((3, 4, 5), np.float32))
    grid = open_grid(InputSpec(str(path), key="models/v1/vp"))
    np.testing.assert_array_equal(full(grid)[0], model_dataset(3, 4, 5)["vp"].values)


def test_irregular_coordinate_gives_no_spacing_but_is_kept(tmp_path):
    ds = model_dataset(4, 3, 5).assign_coords(z=("z", [0.0, 5.0, 12.0, 30.0], {"units": "m"}))
    path = tmp_path / "irregular.nc"
    ds.to_netcdf(path, engine="h5netcdf")
    grid = open_grid(path)
    assert grid.spacing() == {"northing": (25.0, "m"), "easting": (12.5, "m")}
    writer.write_array(tmp_path / "out.nc", grid, full(grid))
    np.testing.assert_array_equal(xr.open_dataset(tmp_path / "out.nc")["z"].values, [0.0, 5.0, 12.0, 30.0])


def test_plain_hdf5_without_dimension_names_takes_default_or_given_axes(tmp_path):
    path = tmp_path / "lab.h5"
    values = np.arange(2 * 3 * 4, dtype=np.uint16).reshape(2, 3, 4)
    with h5py.File(path, "w") as f:
        f.create_dataset("volume", data=values)
    grid = open_grid(path)
    assert grid.axes == ("inline", "crossline", "sample") and not grid.explicit_axes
    grid = open_grid(InputSpec(str(path), axes=("z", "y", "x")))
    assert grid.axes == ("z", "y", "x")
    np.testing.assert_array_equal(full(grid)[0], values.astype(np.float32))


def _bytes_read() -> int:
    with open("/proc/self/io") as fh:
        return int(next(line for line in fh if line.startswith("rchar:")).split()[1])


@pytest.mark.skipif(not os.path.exists("/proc/self/io"), reason="needs Linux's /proc/self/io")
def test_a_window_reads_only_the_chunks_it_touches(tmp_path):
    """An 8 MiB variable in 128 KiB chunks: a 40³ window inside 8 chunks reads about 1 MiB from the file."""
    path = tmp_path / "big.nc"
    rng = np.random.default_rng(0)
    values = rng.normal(size=(128, 128, 128)).astype(np.float32)  # noise: nothing compresses
    xr.Dataset({"v": (("z", "y", "x"), values)}).to_netcdf(path, engine="h5netcdf",
                                                           encoding={"v": {"chunksizes": (32, 32, 32)}})
    grid = open_grid(path)
    window = (slice(36, 76), slice(36, 76), slice(36, 76))  # inside chunks 1..2 of each axis: 8 chunks
    before = _bytes_read()
    block = grid.read(window)
    read = _bytes_read() - before
    np.testing.assert_array_equal(block[0], values[window])
    chunk = 32 ** 3 * 4
    assert 8 * chunk <= read < 10 * chunk, f"read {read} bytes for 8 chunks of {chunk}"


# ----------------------------------------------------------------------------- errors


def test_damaged_and_foreign_files_are_one_line(tmp_path, model_nc, cli):
    truncated = tmp_path / "truncated.nc"
    truncated.write_bytes(model_nc.read_bytes()[:2000])
    garbage = tmp_path / "garbage.nc"
    garbage.write_bytes(b"hello, not a netCDF file at all")
    for path, problem in ((truncated, "not a readable netCDF/HDF5 file"),
                          (garbage, "not a netCDF/HDF5 file (no HDF5 or netCDF signature at its start)")):
        with pytest.raises(DataError) as e:
            open_grid(path)
        assert e.value.message.startswith(f"{path}: {problem}")
        result = cli("inspect", path)
        assert result.exit_code == 2 and "Traceback" not in result.output
    with pytest.raises(DataError, match="file not found"):
        open_grid(tmp_path / "missing.nc")


def test_huge_declared_sizes_are_refused_before_reading(tmp_path):
    coord = tmp_path / "coord.h5"
    with h5py.File(coord, "w") as f:  # chunked and unwritten: declared, not stored
        f.create_dataset("x", shape=(1 << 30,), chunks=(1 << 16,), dtype="f8")
    with pytest.raises(DataError, match=r"dataset 'x' declares 1,073,741,824 values along one axis"):
        open_grid(coord)
    positions = tmp_path / "positions.h5"
    with h5py.File(positions, "w") as f:
        f.create_dataset("v", shape=(1 << 16, 1 << 16, 8), chunks=(64, 64, 8), dtype="f4")
    with pytest.raises(DataError, match=r"declares 4,294,967,296 trace positions"):
        open_grid(positions)


def test_complex_and_text_variables_are_refused(tmp_path):
    path = tmp_path / "odd.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("c", data=np.ones((3, 4), np.complex64))
        f.create_dataset("s", data=np.array([["a", "b"], ["c", "d"]], dtype=h5py.string_dtype()))
    with pytest.raises(DataError) as e:
        open_grid(InputSpec(str(path), key="c"))
    assert e.value.message.startswith(f"{path}:c: holds complex values (complex64)")
    with pytest.raises(DataError, match="data, not numbers"):
        open_grid(InputSpec(str(path), key="s"))


def test_missing_extra_says_how_to_install(model_nc, monkeypatch, cli):
    monkeypatch.setitem(sys.modules, "xarray", None)  # import xarray now raises ImportError
    with pytest.raises(MissingExtra) as e:
        open_grid(model_nc)
    assert e.value.message == ("netCDF/HDF5 files need the Python package 'xarray', which is not installed — "
                               "install the extra: pip install 'geocnn[xarray]'")
    result = cli("inspect", model_nc)
    assert result.exit_code == 2 and "pip install 'geocnn[xarray]'" in result.output


def test_grid_layer_imports_no_netcdf_library():
    code = ("import sys, geocnn.grids.grid, geocnn.grids.writer, geocnn.grids.convert, geocnn.grids.inspect; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'xarray', 'h5netcdf', 'h5py'}))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "[]", done.stderr


# ----------------------------------------------------------------------------- outputs


def test_output_keeps_coordinates_and_attributes_and_streams_rows(model_nc, tmp_path):
    grid = open_grid(model_nc)
    values = full(grid)
    pending = writer.prepare(tmp_path / "pred.nc", grid, 2, "float32", channel_names=("low", "high"))
    assert not (tmp_path / "pred.nc").exists()
    for first in range(0, 12, 5):  # row blocks, as prediction writes them
        rows = values[:, first:first + 5]
        pending.write_rows(first, np.concatenate([rows, -rows]))
    pending.commit()
    src, out = xr.open_dataset(model_nc), xr.open_dataset(tmp_path / "pred.nc")
    assert out["prediction"].dims == ("channel", "z", "y", "x") and out["prediction"].dtype == np.float32
    for dim in ("z", "y", "x"):
        np.testing.assert_array_equal(out[dim].values, src[dim].values)
        assert out[dim].attrs == src[dim].attrs
    assert out.attrs == src.attrs
    np.testing.assert_array_equal(out["prediction"].values[0], src["vp"].values)
    np.testing.assert_array_equal(out["prediction"].values[1], -src["vp"].values)
    back = open_grid(tmp_path / "pred.nc")  # a geocnn output: its channel axis gives channels
    assert back.channel_names == ("low", "high") and back.axes == grid.axes and back.spacing() == grid.spacing()


def test_labels_are_integers_with_class_names(model_nc, tmp_path):
    grid = open_grid(model_nc)
    labels = (full(grid)[0] > 5000).astype(np.uint8)
    pending = writer.prepare(tmp_path / "labels.nc", grid, 1, "uint8",
                             class_names=("shallow", "deep rock"), channel_names=("labels",))
    pending.write(tuple(slice(0, n) for n in grid.shape), labels)
    pending.commit()
    out = xr.open_dataset(tmp_path / "labels.nc")["prediction"]
    assert out.dtype == np.uint8 and out.dims == ("z", "y", "x")
    np.testing.assert_array_equal(out.values, labels)
    assert out.attrs["flag_meanings"] == "shallow deep_rock" and list(out.attrs["flag_values"]) == [0, 1]
    assert list(out.attrs["class_names"]) == ["shallow", "deep rock"] and out.attrs["channel_names"] == "labels"


def test_abort_leaves_nothing_and_existing_outputs_are_kept(model_nc, tmp_path):
    grid = open_grid(model_nc)
    pending = writer.prepare(tmp_path / "p.nc", grid)
    pending.abort()
    assert list(tmp_path.iterdir()) == [model_nc]
    writer.write_array(tmp_path / "p.nc", grid, full(grid))
    from geocnn.errors import OutputExistsError

    with pytest.raises(OutputExistsError):
        writer.prepare(tmp_path / "p.nc", grid)


# ----------------------------------------------------------------------------- inspect and convert


def test_inspect_shows_variables_coordinates_and_attributes(model_nc, cli):
    info = inspect_inputs([model_nc])[0]
    nc = info["netcdf"]
    assert nc["variable"] == "vp" and nc["variables"]["vp"]["dims"] == ["z", "y", "x"]
    assert nc["coordinates"]["y"] == {"axis": "northing", "unit": "m", "first": 6_200_000.0, "last": 6_200_150.0,
                                      "step": 25.0}
    assert nc["attributes"] == {"units": "m/s", "long_name": "P velocity"}
    assert nc["global_attributes"] == {"title": "test model", "Conventions": "CF-1.8"}
    assert info["spacing"]["easting"] == {"value": 12.5, "unit": "m"}
    result = cli("inspect", model_nc)
    assert result.exit_code == 0 and "y → northing: 6.2e+06 – 6.20015e+06 step 25 m" in result.output


def test_convert_netcdf_to_npy_and_back(model_nc, tmp_path):
    convert(model_nc, tmp_path / "m.npy")
    expected = xr.open_dataset(model_nc)["vp"].values
    np.testing.assert_array_equal(np.load(tmp_path / "m.npy"), expected)
    convert(tmp_path / "m.npy", tmp_path / "back.nc")
    back = xr.open_dataset(tmp_path / "back.nc")
    assert back["prediction"].dims == ("depth", "northing", "easting")  # the sidecar's axes
    np.testing.assert_array_equal(back["prediction"].values, expected)
    convert(model_nc, tmp_path / "copy.nc")  # netCDF -> netCDF keeps the coordinates
    np.testing.assert_array_equal(xr.open_dataset(tmp_path / "copy.nc")["x"].values, xr.open_dataset(model_nc)["x"].values)


# ----------------------------------------------------------------------------- the worked example


@pytest.mark.slow  # about 10 s on 2 cores
def test_model_example_trains_and_predicts_a_netcdf_with_the_models_coordinates(tmp_path, cli):
    """configs/model_netcdf.yaml on data_samples/model.nc, a few steps: the prediction is a netCDF that
    xarray opens with the sample model's coordinates, their attributes and the file's attributes."""
    from geocnn.config import load_config
    from geocnn.train import train

    root = Path(__file__).resolve().parents[1]
    few = ["train.max_steps=2", "train.batch_size=2", "data.sampling.patches_per_epoch=4",
           "data.sampling.val_patches=2", "train.examples=0", "train.threads=1"]
    run = train(load_config(root / "configs" / "model_netcdf.yaml", few), tmp_path / "run")
    result = cli("predict", str(run), str(root / "data_samples" / "model.nc"), "--out", str(tmp_path / "vp.nc"))
    assert result.exit_code == 0, result.output
    src, out = xr.open_dataset(root / "data_samples" / "model.nc"), xr.open_dataset(tmp_path / "vp.nc")
    assert out["prediction"].dims == src["vp"].dims == ("y", "x", "z") and out.attrs == src.attrs
    for dim in ("y", "x", "z"):
        np.testing.assert_array_equal(out[dim].values, src[dim].values)
        assert out[dim].attrs == src[dim].attrs
    assert np.isfinite(out["prediction"].values).all()


# ----------------------------------------------------------------------------- netCDF -> GeoTIFF


def map_dataset(mapping: dict | None) -> xr.Dataset:
    """A 2D property map on a 10 m UTM grid, rows from north to south: values 100·row + column."""
    north = 4_200_095.0 - 10.0 * np.arange(4)
    east = 500_005.0 + 10.0 * np.arange(5)
    values = (100 * np.arange(4)[:, None] + np.arange(5)).astype(np.float32)
    attrs = {"grid_mapping": "crs"} if mapping is not None else {}
    data = {"porosity": (("y", "x"), values, attrs)}
    if mapping is not None:
        data["crs"] = ((), np.int32(0), mapping)
    return xr.Dataset(data, coords={"y": ("y", north, {"units": "m"}), "x": ("x", east, {"units": "m"})})


@pytest.mark.parametrize("mapping", ["crs_wkt", "spatial_ref", "epsg_code"])
def test_netcdf_to_geotiff_takes_the_crs_of_its_grid_mapping(tmp_path, mapping):
    rasterio = pytest.importorskip("rasterio")
    wkt = rasterio.crs.CRS.from_epsg(32633).to_wkt()
    value = {"crs_wkt": wkt, "spatial_ref": wkt, "epsg_code": "32633"}[mapping]
    map_dataset({"grid_mapping_name": "transverse_mercator", mapping: value}).to_netcdf(tmp_path / "m.nc", engine="h5netcdf")
    convert(tmp_path / "m.nc", tmp_path / "m.tif")
    with rasterio.open(tmp_path / "m.tif") as ds:
        assert ds.crs.to_epsg() == 32633
        assert tuple(ds.transform)[:6] == (10.0, 0.0, 500_000.0, 0.0, -10.0, 4_200_100.0)
        assert tuple(ds.bounds) == (500_000.0, 4_200_060.0, 500_050.0, 4_200_100.0)
        np.testing.assert_array_equal(ds.read(1), map_dataset(None)["porosity"].values)


def test_netcdf_without_a_grid_mapping_gives_a_geotiff_with_its_transform_and_says_it_has_no_crs(tmp_path, caplog):
    rasterio = pytest.importorskip("rasterio")
    map_dataset(None).to_netcdf(tmp_path / "m.nc", engine="h5netcdf")
    with caplog.at_level("WARNING"):
        convert(tmp_path / "m.nc", tmp_path / "m.tif")
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "gives no CRS" in warnings[0] and "\n" not in warnings[0]
    with rasterio.open(tmp_path / "m.tif") as ds:
        assert ds.crs is None and tuple(ds.transform)[:6] == (10.0, 0.0, 500_000.0, 0.0, -10.0, 4_200_100.0)


def test_a_netcdf_output_of_a_netcdf_keeps_its_grid_mapping(tmp_path):
    map_dataset({"grid_mapping_name": "transverse_mercator", "epsg_code": "EPSG:32633"}).to_netcdf(
        tmp_path / "m.nc", engine="h5netcdf")
    convert(tmp_path / "m.nc", tmp_path / "out.nc")
    with xr.open_dataset(tmp_path / "out.nc", engine="h5netcdf", decode_coords="all") as out:
        assert out["prediction"].encoding["grid_mapping"] == "crs" and out["crs"].attrs["epsg_code"] == "EPSG:32633"
