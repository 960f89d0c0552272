"""Maps are drawn north up, as a GIS shows them: a GeoTIFF scene or a netCDF's northing/easting (latitude/longitude)
with easting across increasing to the right and northing up increasing upwards, whichever way the rows run;
sections (SEG-Y, TIFF stacks) keep their first axis across and time down.

Scenes are written by rasterio and xarray; a bright north-west corner is looked for in the rendered pixels."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg

from geocnn import plots
from geocnn.grids.grid import open_grid
from geocnn.outputs import LABELS, VALUES
from geocnn.patches import PatchGeometry
from tests import segyfactory

rasterio = pytest.importorskip("rasterio", reason="the geocnn[geo] extra (rasterio) is not installed")
xr = pytest.importorskip("xarray", reason="the geocnn[xarray] extra is not installed")
pytest.importorskip("h5netcdf")
from rasterio.transform import Affine, from_origin  # noqa: E402

ROWS, COLS = 5, 6
NORTH_UP = from_origin(500000.0, 4000000.0, 10.0, 10.0)  # row 0 is the north edge (y pixel size -10 m)
SOUTH_UP = Affine(10.0, 0.0, 500000.0, 0.0, 10.0, 3999950.0)  # row 0 is the south edge (y pixel size +10 m)


def scene(path, transform, values=None, dtype="float32"):
    """A 10 m UTM scene, bright (1) at row 0, column 0 and dark (0) elsewhere unless ``values`` are given."""
    if values is None:
        values = np.zeros((ROWS, COLS), dtype)
        values[0, 0] = 1
    with rasterio.open(path, "w", driver="GTiff", width=COLS, height=ROWS, count=1, dtype=dtype, crs="EPSG:32631",
                       transform=transform) as ds:
        ds.write(values[None])
    return open_grid(path)


def values_panels(grid):
    """The input panels of a values preview of ``grid`` (its prediction: the grid itself)."""
    names = plots.Names.of(SimpleNamespace(data=SimpleNamespace(channel_names=None, class_names=None)), grid)
    fig = plots.values_preview(plots.Preview(grid, grid, VALUES, names))
    return fig, [ax for ax in fig.axes if ax.images][::2]


def grey_at(fig, ax, easting: float, northing: float) -> int:
    """The red channel of the rendered figure at a map position of ``ax`` (Agg, the PNG's pixels)."""
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    rgba = np.asarray(canvas.buffer_rgba())
    x, y = ax.transData.transform((easting, northing))
    return int(rgba[rgba.shape[0] - int(round(y)), int(round(x)), 0])


def test_a_geotiff_scene_is_drawn_north_up_with_east_to_the_right(tmp_path):
    fig, (panel,) = values_panels(scene(tmp_path / "scene.tif", NORTH_UP))
    assert (panel.get_xlabel(), panel.get_ylabel()) == ("easting (m)", "northing (m)")
    image = panel.images[0]
    assert image.get_extent() == [500000.0, 500060.0, 3999950.0, 4000000.0]  # the scene's bounds
    assert image.origin == "upper" and image.get_array()[0, 0] == 1  # row 0, the north edge, on top
    assert panel.get_xlim() == (500000.0, 500060.0) and panel.get_ylim() == (3999950.0, 4000000.0)
    assert panel.get_aspect() == 1.0  # a metre is as long across as up, as in a GIS
    # the bright north-west cell is white at the top left of the rendered picture, the south-east one mid grey
    nw, se = grey_at(fig, panel, 500005.0, 3999995.0), grey_at(fig, panel, 500055.0, 3999955.0)
    assert nw == 255 and 120 <= se <= 135
    assert panel.get_title() == "input"  # a 2D scene shows no line
    ticks = [t.get_text() for t in panel.get_yticklabels() if t.get_text()]  # drawn in full, not as 4e6 offsets
    assert panel.yaxis.get_offset_text().get_text() == "" and all(len(t) == 7 for t in ticks) and ticks
    box = panel.get_window_extent()
    x, y = panel.transData.transform((500005.0, 3999995.0))
    assert x - box.x0 < box.width / 6 and box.y1 - y < box.height / 5  # within the top-left cell


def test_a_south_up_geotiff_is_turned_north_up(tmp_path):
    """Row 0 is the southern edge (positive y pixel size): the bright cell of row 0 is the south-west corner."""
    grid = scene(tmp_path / "south.tif", SOUTH_UP)
    north, _ = plots.survey_coords(grid)
    assert north.values.tolist() == [3999955.0, 3999965.0, 3999975.0, 3999985.0, 3999995.0]
    fig, (panel,) = values_panels(grid)
    image = panel.images[0]
    assert image.get_extent() == [500000.0, 500060.0, 3999950.0, 4000000.0]
    assert image.origin == "lower" and panel.get_ylim() == (3999950.0, 4000000.0)
    assert grey_at(fig, panel, 500005.0, 3999955.0) == 255  # bottom left: the south-west cell
    assert grey_at(fig, panel, 500005.0, 3999995.0) < 140  # top left, the north-west cell, is dark
    box = panel.get_window_extent()
    assert panel.transData.transform((500005.0, 3999955.0))[1] - box.y0 < box.height / 5


def test_a_label_preview_of_a_scene_is_north_up_with_its_class_legend(tmp_path):
    grid = scene(tmp_path / "scene.tif", NORTH_UP)
    labels = np.zeros((ROWS, COLS), np.uint8)
    labels[:2, 3:] = 1  # land in the north-east
    pred = scene(tmp_path / "labels.tif", NORTH_UP, labels, "uint8")
    fig = plots.class_preview(plots.Preview(grid, pred, LABELS, plots.Names(classes=("water", "land")), classes=2))
    panel = [ax for ax in fig.axes if ax.images][1]
    assert (panel.get_xlabel(), panel.get_title()) == ("easting (m)", LABELS.label)
    assert panel.images[0].get_extent() == [500000.0, 500060.0, 3999950.0, 4000000.0]
    np.testing.assert_array_equal(panel.images[0].get_array(), labels)  # rows down from the north, not transposed
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["water", "land"]


def test_a_training_example_of_a_scene_is_a_north_up_patch(tmp_path):
    grid = scene(tmp_path / "scene.tif", NORTH_UP)
    geom = PatchGeometry(("y", "x"), (ROWS, COLS), (0, 1), (4, 4))
    frame = plots.patch_frame(plots.survey_coords(grid), geom, (1, 2))  # rows 1-4, columns 2-5
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    labels = (x[:, 0] > 7).astype(int)
    probs = np.stack([1.0 - labels, labels.astype(float)], axis=1)
    ex = plots.Examples(x, labels, labels, probs, frames=[frame])
    fig = plots.class_examples(ex, plots.Names(classes=("water", "land")))
    panels = [ax for ax in fig.axes if ax.images]
    assert (panels[0].get_xlabel(), panels[0].get_ylabel()) == ("easting (m)", "northing (m)")
    assert panels[0].images[0].get_extent() == [500020.0, 500060.0, 3999950.0, 3999990.0]
    np.testing.assert_array_equal(panels[0].images[0].get_array(), x[0, 0])
    np.testing.assert_array_equal(panels[1].images[0].get_array(), labels[0])


def test_a_netcdf_depth_slice_is_a_map_and_its_sections_stay_sections(tmp_path):
    """(depth, northing, easting) with northing rising along its rows, as netCDF models usually are."""
    z, y, x = 5.0 * np.arange(12), 6_200_000.0 + 25.0 * np.arange(7), 430_000.0 + 12.5 * np.arange(9)
    vp = (1000.0 * np.arange(12)[:, None, None] + 10.0 * np.arange(7)[None, :, None]
          + np.arange(9)[None, None, :]).astype(np.float32)
    xr.Dataset({"vp": (("z", "y", "x"), vp)},
               coords={"z": ("z", z, {"units": "m"}), "y": ("y", y, {"units": "m"}), "x": ("x", x, {"units": "m"})}
               ).to_netcdf(tmp_path / "model.nc", engine="h5netcdf")
    _, (depth_slice, north_section, east_section) = values_panels(open_grid(tmp_path / "model.nc"))
    assert (depth_slice.get_xlabel(), depth_slice.get_ylabel()) == ("easting (m)", "northing (m)")
    assert depth_slice.images[0].get_extent() == [429_993.75, 430_106.25, 6_199_987.5, 6_200_162.5]
    assert depth_slice.images[0].origin == "lower"  # the southern row 0 at the bottom
    np.testing.assert_array_equal(depth_slice.images[0].get_array(), vp[6])
    # depth against easting, depth against northing: first axis across, second down, as before
    assert (north_section.get_xlabel(), north_section.get_ylabel()) == ("depth (m)", "easting (m)")
    assert north_section.images[0].get_extent() == [-2.5, 57.5, 430_106.25, 429_993.75]
    assert east_section.images[0].get_extent() == [-2.5, 57.5, 6_200_162.5, 6_199_987.5]
    np.testing.assert_array_equal(east_section.images[0].get_array(), vp[:, :, 4].T)


def test_a_segy_preview_keeps_its_section_layout(tmp_path):
    segyfactory.write_segy(tmp_path / "c.sgy", range(10, 13), range(20, 24), 8, delay_ms=100)
    grid = open_grid(tmp_path / "c.sgy")
    _, (xline_section, iline_section, time_slice) = values_panels(grid)
    assert (xline_section.get_xlabel(), xline_section.get_ylabel()) == ("crossline", "two-way time (ms)")
    assert xline_section.images[0].get_extent() == [19.5, 23.5, 130.0, 98.0]  # time grows downward
    assert xline_section.images[0].origin == "upper" and xline_section.get_ylim() == (130.0, 98.0)
    assert iline_section.images[0].get_extent() == [9.5, 12.5, 130.0, 98.0]
    assert (time_slice.get_xlabel(), time_slice.get_ylabel()) == ("inline", "crossline")
    assert time_slice.images[0].get_extent() == [9.5, 12.5, 23.5, 19.5]
    section = grid.read((slice(1, 2), slice(0, 4), slice(0, 8)))[0, 0]
    np.testing.assert_array_equal(xline_section.images[0].get_array(), section.T)  # crosslines across
