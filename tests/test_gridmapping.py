"""A netCDF map's CRS from a CF grid-mapping variable that holds only projection parameters (no WKT, no
EPSG code): the CRS pyproj builds projects points where the EPSG definition does; a 2D prediction written
as .tif carries it; damaged parameters or a missing pyproj leave the CRS out with one warning."""

from __future__ import annotations

import logging
import sys

import numpy as np
import pytest

from geocnn.grids.grid import open_grid
from geocnn.grids.gridmapping import crs_of_attributes, plain
from tests.test_netcdf import map_dataset

pyproj = pytest.importorskip("pyproj", reason="the geocnn[xarray] extra is not installed: pip install -e '.[xarray]'")

WGS84 = {"semi_major_axis": 6378137.0, "inverse_flattening": 298.257223563}
UTM31N = {"grid_mapping_name": "transverse_mercator", "scale_factor_at_central_meridian": 0.9996,
          "longitude_of_central_meridian": 3.0, "latitude_of_projection_origin": 0.0,
          "false_easting": 500000.0, "false_northing": 0.0}
LAMBERT93 = {"grid_mapping_name": "lambert_conformal_conic", "standard_parallel": np.array([49.0, 44.0]),
             "longitude_of_central_meridian": 3.0, "latitude_of_projection_origin": 46.5,
             "false_easting": 700000.0, "false_northing": 6600000.0,
             "semi_major_axis": 6378137.0, "inverse_flattening": 298.257222101}  # GRS80
POLAR_NORTH = {"grid_mapping_name": "polar_stereographic", "straight_vertical_longitude_from_pole": -45.0,
               "latitude_of_projection_origin": 90.0, "standard_parallel": 70.0, "false_easting": 0.0,
               "false_northing": 0.0, **WGS84}
# name -> (the grid mapping's attributes, the EPSG CRS they define, a (lon, lat) inside it,
#          to_epsg() of the CRS read, None where pyproj does not name it at its default confidence)
MAPPINGS = {
    "utm31n_named_datum": ({**UTM31N, "horizontal_datum_name": "WGS84"}, 32631, (2.35, 48.85), 32631),
    "utm31n_ellipsoid": ({**UTM31N, **WGS84}, 32631, (2.35, 48.85), None),
    "lambert93": (LAMBERT93, 2154, (2.35, 48.85), None),
    "polar_stereographic_north": (POLAR_NORTH, 3413, (2.35, 80.0), None),
    "latitude_longitude": ({"grid_mapping_name": "latitude_longitude", "longitude_of_prime_meridian": 0.0, **WGS84},
                           4326, (2.35, 48.85), None),
}


def write_map(path, mapping: dict | None) -> None:
    map_dataset(mapping).to_netcdf(path, engine="h5netcdf")


def projected(crs, lon: float, lat: float) -> tuple[float, float]:
    """(lon, lat) on the CRS's own datum, in its coordinates (no datum shift: only the projection)."""
    if crs.is_geographic:
        return lon, lat
    return pyproj.Transformer.from_crs(crs.geodetic_crs, crs, always_xy=True).transform(lon, lat)


def assert_same_crs(got, epsg: int, lon_lat: tuple[float, float]) -> None:
    """``got`` has the EPSG CRS's ellipsoid, kind and projection: one point lands within 1 mm of it."""
    want = pyproj.CRS.from_epsg(epsg)
    assert got.is_projected == want.is_projected and got.is_geographic == want.is_geographic
    assert got.ellipsoid.semi_major_metre == pytest.approx(want.ellipsoid.semi_major_metre, abs=1e-6)
    assert got.ellipsoid.inverse_flattening == pytest.approx(want.ellipsoid.inverse_flattening, rel=1e-12)
    np.testing.assert_allclose(projected(got, *lon_lat), projected(want, *lon_lat), atol=1e-3)


@pytest.mark.parametrize("name", list(MAPPINGS))
def test_a_grid_mapping_of_cf_parameters_gives_the_crs_they_define(tmp_path, name, caplog):
    attrs, epsg, lon_lat, named = MAPPINGS[name]
    write_map(tmp_path / "m.nc", attrs)
    with caplog.at_level(logging.WARNING):
        grid = open_grid(tmp_path / "m.nc")
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    crs = pyproj.CRS.from_wkt(grid.inputs[0].georef.crs)
    assert_same_crs(crs, epsg, lon_lat)
    assert crs.to_epsg() == named
    assert grid.inputs[0].georef.transform == (10.0, 0.0, 500_000.0, 0.0, -10.0, 4_200_100.0)


def test_projected_coordinates_land_where_the_epsg_crs_puts_them():
    """The check above can fail: UTM zone 32 parameters are not EPSG:32631's projection."""
    attrs = {**UTM31N, **WGS84, "longitude_of_central_meridian": 9.0}
    with pytest.raises(AssertionError):
        assert_same_crs(pyproj.CRS.from_wkt(crs_of_attributes(plain(attrs))), 32631, (2.35, 48.85))


def _without(attrs: dict, key: str) -> dict:
    return {k: v for k, v in attrs.items() if k != key}


# name -> (the damaged attributes, the attribute the warning names, words of its reason)
DAMAGED = {
    "unknown_name": ({**UTM31N, "grid_mapping_name": "transverse_mercatorr"}, "grid_mapping_name",
                     "did you mean 'transverse_mercator'?"),
    "tm_without_scale": (_without(UTM31N, "scale_factor_at_central_meridian"), "scale_factor_at_central_meridian",
                         "missing (transverse_mercator requires it)"),
    "tm_without_central_meridian": (_without(UTM31N, "longitude_of_central_meridian"),
                                    "longitude_of_central_meridian", "missing"),
    "lcc_without_standard_parallel": (_without(LAMBERT93, "standard_parallel"), "standard_parallel", "missing"),
    "polar_without_parallel_or_scale": (_without(POLAR_NORTH, "standard_parallel"),
                                        "standard_parallel or scale_factor_at_projection_origin", "missing"),
    "text_false_easting": ({**UTM31N, "false_easting": "five hundred km"}, "false_easting",
                           "is not 1 finite number(s)"),
    "nan_central_meridian": ({**UTM31N, "longitude_of_central_meridian": np.nan}, "longitude_of_central_meridian",
                             "is not 1 finite number(s)"),
    "three_standard_parallels": ({**LAMBERT93, "standard_parallel": np.array([49.0, 44.0, 40.0])},
                                 "standard_parallel", "is not 1 or 2 finite number(s)"),
    "negative_earth": ({**UTM31N, **WGS84, "semi_major_axis": -6378137.0}, None, "pyproj builds no CRS"),
    "garbage_wkt": ({**UTM31N, "crs_wkt": "PROJCS[garbage"}, "crs_wkt", "not a CRS pyproj reads"),
    "unknown_epsg": ({**UTM31N, "epsg_code": "999999"}, "epsg_code", "not a CRS pyproj reads"),
}


@pytest.mark.parametrize("name", list(DAMAGED))
def test_a_damaged_grid_mapping_leaves_the_crs_out_with_one_warning_naming_it(tmp_path, name, caplog):
    attrs, attribute, reason = DAMAGED[name]
    path = tmp_path / "m.nc"
    write_map(path, attrs)
    with caplog.at_level(logging.WARNING):
        grid = open_grid(path)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    at = f"attribute '{attribute}'" if attribute else "its parameters"
    assert len(warnings) == 1 and "\n" not in warnings[0], warnings
    assert warnings[0].startswith(f"{path}: grid mapping variable 'crs', {at}: ")
    assert reason in warnings[0] and warnings[0].endswith("; the CRS is left out")
    georef = grid.inputs[0].georef
    assert georef.crs is None and georef.transform == (10.0, 0.0, 500_000.0, 0.0, -10.0, 4_200_100.0)
    np.testing.assert_array_equal(grid.read((slice(0, 4), slice(0, 5)))[0], map_dataset(None)["porosity"].values)


def test_without_pyproj_cf_parameters_give_no_crs_and_one_warning_naming_the_extra(tmp_path, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "pyproj", None)  # import pyproj now raises ImportError
    write_map(tmp_path / "m.nc", {**UTM31N, **WGS84})
    with caplog.at_level(logging.WARNING):
        grid = open_grid(tmp_path / "m.nc")
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "pip install 'geocnn[xarray]'" in warnings[0], warnings
    assert "'pyproj', which is not installed" in warnings[0] and warnings[0].endswith("the CRS is left out")
    assert grid.inputs[0].georef.crs is None
    np.testing.assert_array_equal(grid.read((slice(0, 4), slice(0, 5)))[0], map_dataset(None)["porosity"].values)


def test_without_pyproj_a_wkt_grid_mapping_is_carried_as_given(tmp_path, monkeypatch, caplog):
    wkt = pyproj.CRS.from_epsg(32631).to_wkt()
    monkeypatch.setitem(sys.modules, "pyproj", None)
    write_map(tmp_path / "m.nc", {"grid_mapping_name": "transverse_mercator", "crs_wkt": wkt})
    with caplog.at_level(logging.WARNING):
        assert open_grid(tmp_path / "m.nc").inputs[0].georef.crs == wkt
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.parametrize("name", ["utm31n_ellipsoid", "lambert93"])
def test_predict_of_a_2d_model_writes_a_geotiff_with_the_crs_of_the_parameters(tmp_path, name, cli, identity_run):
    rasterio = pytest.importorskip("rasterio")
    attrs, epsg, lon_lat, _ = MAPPINGS[name]
    write_map(tmp_path / "m.nc", attrs)
    run = identity_run(tmp_path)
    result = cli("predict", run, tmp_path / "m.nc", "--out", tmp_path / "pred.tif",
                 "--axes", "northing=crossline,easting=sample", "--threads", "1")
    assert result.exit_code == 0, result.output
    assert "CRS" not in result.output  # neither "left out" nor "gives no CRS"
    with rasterio.open(tmp_path / "pred.tif") as ds:
        assert_same_crs(pyproj.CRS.from_wkt(ds.crs.to_wkt()), epsg, lon_lat)
        assert tuple(ds.transform)[:6] == (10.0, 0.0, 500_000.0, 0.0, -10.0, 4_200_100.0)
        np.testing.assert_allclose(ds.read(1), map_dataset(None)["porosity"].values, atol=1e-4)


def test_without_pyproj_a_damaged_wkt_gives_a_geotiff_without_crs_and_one_warning(tmp_path, monkeypatch, cli,
                                                                                    identity_run):
    """Nothing checks a WKT on reading without pyproj: the GeoTIFF output does, before any window runs."""
    rasterio = pytest.importorskip("rasterio")
    run = identity_run(tmp_path)
    monkeypatch.setitem(sys.modules, "pyproj", None)
    write_map(tmp_path / "m.nc", {"grid_mapping_name": "transverse_mercator", "crs_wkt": "PROJCS[garbage"})
    result = cli("predict", run, tmp_path / "m.nc", "--out", tmp_path / "pred.tif",
                 "--axes", "northing=crossline,easting=sample", "--threads", "1")
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert "m.nc: its CRS cannot be written to a GeoTIFF" in said and "the CRS is left out" in said
    assert "gives no CRS" not in said  # one warning, not two
    with rasterio.open(tmp_path / "pred.tif") as ds:
        assert ds.crs is None and tuple(ds.transform)[:6] == (10.0, 0.0, 500_000.0, 0.0, -10.0, 4_200_100.0)
