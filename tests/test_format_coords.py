"""Pictures and xarray in each format's own coordinates: a GeoTIFF's easting/northing from its transform (in the
CRS's unit), a netCDF's coordinate variables in their ``units``, a TIFF stack's voxel positions in µm (from
OME or ImageJ metadata in any length unit), all through the one mapping of :mod:`geocnn.grids.coords`.

Files are written by rasterio, tifffile and xarray themselves; the numbers are worked out by hand."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from geocnn import plots
from geocnn.grids.grid import open_grid
from geocnn.outputs import VALUES
from tests import segyfactory

rasterio = pytest.importorskip("rasterio", reason="the geocnn[geo] extra (rasterio) is not installed")
tifffile = pytest.importorskip("tifffile", reason="the geocnn[tiff] extra (tifffile) is not installed")
xr = pytest.importorskip("xarray", reason="the geocnn[xarray] extra is not installed")
pytest.importorskip("h5netcdf")
from rasterio.transform import from_origin  # noqa: E402


def preview_panels(grid):
    """The input panels of a values preview of ``grid`` (its prediction: the grid itself)."""
    names = plots.Names.of(SimpleNamespace(data=SimpleNamespace(channel_names=None, class_names=None)), grid)
    fig = plots.values_preview(plots.Preview(grid, grid, VALUES, names))
    return [ax for ax in fig.axes if ax.images][::2]


def geotiff(path, crs, transform, rows=5, cols=6):
    values = np.arange(rows * cols, dtype=np.float32).reshape(1, rows, cols)
    with rasterio.open(path, "w", driver="GTiff", width=cols, height=rows, count=1, dtype="float32", crs=crs,
                       transform=transform) as ds:
        ds.write(values)
    return path


def test_a_geotiff_is_drawn_in_easting_and_northing_of_its_crs(tmp_path):
    grid = open_grid(geotiff(tmp_path / "scene.tif", "EPSG:32631", from_origin(500000.0, 4000000.0, 10.0, 10.0)))
    north, east = plots.survey_coords(grid)
    assert (north.label, east.label) == ("northing (m)", "easting (m)")
    assert north.values.tolist() == [3999995.0, 3999985.0, 3999975.0, 3999965.0, 3999955.0]  # pixel centres
    assert east.values.tolist() == [500005.0 + 10 * k for k in range(6)]
    (panel,) = preview_panels(grid)
    assert (panel.get_xlabel(), panel.get_ylabel()) == ("easting (m)", "northing (m)")  # north up (test_north_up.py)
    assert panel.images[0].get_extent() == [500000.0, 500060.0, 3999950.0, 4000000.0]  # pixel edges = the bounds
    da = grid.to_xarray()
    assert da["x"].attrs == {"units": "m", "long_name": "easting"} and float(da["y"][0]) == 3999995.0


def test_a_geographic_geotiff_is_drawn_in_latitude_and_longitude(tmp_path):
    grid = open_grid(geotiff(tmp_path / "ll.tif", "EPSG:4326", from_origin(10.0, 45.0, 0.25, 0.5), rows=3, cols=4))
    lat, lon = plots.survey_coords(grid)
    assert (lat.label, lon.label) == ("latitude (°)", "longitude (°)")
    assert lat.values.tolist() == [44.75, 44.25, 43.75] and lon.values.tolist() == [10.125, 10.375, 10.625, 10.875]


def test_a_netcdf_model_is_drawn_in_its_coordinates_and_units(tmp_path):
    z, y, x = 5.0 * np.arange(12), 6_200_000.0 + 25.0 * np.arange(7), 430_000.0 + 12.5 * np.arange(9)
    vp = np.zeros((12, 7, 9), np.float32)
    xr.Dataset({"vp": (("z", "y", "x"), vp)},
               coords={"z": ("z", z, {"units": "m"}), "y": ("y", y, {"units": "m"}), "x": ("x", x, {"units": "m"})}
               ).to_netcdf(tmp_path / "model.nc", engine="h5netcdf")
    grid = open_grid(tmp_path / "model.nc")
    depth, north, east = plots.survey_coords(grid)
    assert (depth.label, north.label, east.label) == ("depth (m)", "northing (m)", "easting (m)")
    assert depth.values.tolist() == z.tolist() and east.values.tolist() == x.tolist()
    panels = preview_panels(grid)
    assert [p.get_title() for p in panels] == ["input — depth 30 m", "input — northing 6200075 m", "input — easting 430050 m"]
    assert (panels[0].get_xlabel(), panels[0].get_ylabel()) == ("easting (m)", "northing (m)")  # a map: north up
    assert panels[0].images[0].get_extent() == [429_993.75, 430_106.25, 6_199_987.5, 6_200_162.5]


def test_netcdf_time_is_not_two_way_time_and_keeps_its_units(tmp_path):
    da = xr.DataArray(np.zeros((4, 3, 5), np.float32), dims=("time", "lat", "lon"),
                      coords={"time": ("time", [0.0, 1.0, 2.0, 3.0], {"units": "days since 2000-01-01"}),
                              "lat": ("lat", [40.0, 40.5, 41.0], {"units": "degrees_north"}),
                              "lon": ("lon", np.arange(5) * 0.5, {"units": "degrees_east"})}, name="sst")
    da.to_dataset().to_netcdf(tmp_path / "sst.nc", engine="h5netcdf")
    t, lat, lon = plots.survey_coords(open_grid(tmp_path / "sst.nc"))
    assert (t.label, lat.label, lon.label) == ("time (days)", "latitude (degrees_north)", "longitude (degrees_east)")
    assert t.at(2) == "time 2 days" and lat.values.tolist() == [40.0, 40.5, 41.0]


@pytest.mark.parametrize("unit, size, microns", [("µm", 0.65, 0.65), ("nm", 650.0, 0.65), ("mm", 0.002, 2.0)])
def test_a_tiff_stack_is_drawn_in_microns_whatever_unit_its_ome_metadata_uses(tmp_path, unit, size, microns):
    tifffile.imwrite(tmp_path / "ct.ome.tif", np.zeros((4, 5, 6), np.uint8),
                     metadata={"axes": "ZYX", "PhysicalSizeX": size, "PhysicalSizeXUnit": unit,
                               "PhysicalSizeY": size, "PhysicalSizeYUnit": unit,
                               "PhysicalSizeZ": 3 * size, "PhysicalSizeZUnit": unit})
    grid = open_grid(tmp_path / "ct.ome.tif")
    assert grid.spacing() == {"z": (pytest.approx(3 * microns), "µm"), "y": (pytest.approx(microns), "µm"),
                              "x": (pytest.approx(microns), "µm")}
    z, y, x = plots.survey_coords(grid)
    assert (z.label, y.label, x.label) == ("z (µm)", "y (µm)", "x (µm)")
    assert x.values == pytest.approx(microns * np.arange(6)) and z.values[-1] == pytest.approx(9 * microns)


@pytest.mark.parametrize("unit, microns", [("micron", 1.0), ("nm", 1e-3), ("mm", 1e3), ("cm", 1e4)])
def test_imagej_units_are_converted_to_microns(tmp_path, unit, microns):
    tifffile.imwrite(tmp_path / "ij.tif", np.zeros((3, 4, 5), np.uint16), imagej=True, resolution=(1 / 0.5, 1 / 0.25),
                     metadata={"axes": "ZYX", "spacing": 2.0, "unit": unit})
    spacing = open_grid(tmp_path / "ij.tif").spacing()
    assert {a: v for a, (v, _) in spacing.items()} == pytest.approx({"z": 2.0 * microns, "y": 0.25 * microns,
                                                                     "x": 0.5 * microns})


def test_seismic_pictures_keep_inline_crossline_and_two_way_time(tmp_path):
    segyfactory.write_segy(tmp_path / "c.sgy", range(10, 13), range(20, 24), 8, delay_ms=100)
    il, xl, t = plots.survey_coords(open_grid(tmp_path / "c.sgy"))
    assert (il.label, xl.label, t.label) == ("inline", "crossline", "two-way time (ms)")
    assert il.values.tolist() == [10, 11, 12] and t.values[:2].tolist() == [100.0, 104.0]
