"""MDIO v1 / Zarr stores: reading (geometry, sample axis, trace mask, chunk-aware patches), convert, predict.

Stores are made in tmp_path: MDIO through mdio's own template builder and converter, plain Zarr
through zarr. Values encode their position (tests/segyfactory.py), so a wrong trace shows.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from geocnn.errors import DataError, OutputExistsError
from geocnn.grids import writer
from geocnn.grids.grid import open_grid
from geocnn.grids.spec import InputSpec
from geocnn.grids.stores import MissingExtra
from tests import segyfactory

try:
    import mdio
    import zarr

    if int(zarr.__version__.split(".")[0]) < 3:
        raise ImportError("zarr 2")
except ImportError:
    mdio = zarr = None
needs_extra = pytest.mark.skipif(zarr is None or mdio is None,
                                 reason="the geocnn[mdio] extra (multidimio, zarr 3) is not installed: "
                                        "pip install -e '.[test,mdio]' (Python 3.11-3.13)")


def full(grid):
    return grid.read(tuple(slice(0, n) for n in grid.shape))


def mdio_cube(path: Path, values: np.ndarray, ilines, xlines, times, live: np.ndarray | None = None) -> Path:
    """A genuine MDIO v1 post-stack dataset (mdio's PostStack3DTime template), filled with zarr."""
    from mdio.builder.template_registry import get_template
    from mdio.builder.xarray_builder import to_xarray_dataset

    template = get_template("PostStack3DTime")
    dataset = to_xarray_dataset(template.build_dataset(name="test", sizes=values.shape))
    mdio.to_mdio(dataset, path, mode="w", compute=False)
    root = zarr.open_group(path, mode="r+")
    root["inline"][:], root["crossline"][:], root["time"][:] = ilines, xlines, times
    mask = np.ones(values.shape[:2], bool) if live is None else live
    root["amplitude"][:] = np.where(mask[..., None], values, np.nan)  # dead traces hold MDIO's fill value
    root["trace_mask"][:] = mask
    return path


# ----------------------------------------------------------------------------- reading


@needs_extra
def test_mdio_geometry_sample_axis_and_trace_mask(tmp_path):
    ilines, xlines = np.arange(10, 14), np.arange(100, 110, 2)
    values = segyfactory.position_values(ilines, xlines, 20)
    live = np.ones((4, 5), bool)
    live[1, 2] = False  # inline 11, crossline 104 has no trace
    path = mdio_cube(tmp_path / "cube.mdio", values, ilines, xlines, 100 + 2 * np.arange(20), live)
    grid = open_grid(path)
    assert grid.axes == ("inline", "crossline", "sample") and grid.shape == (4, 5, 20)
    m = grid.meta
    assert (m.format, m.kind) == ("mdio", "post-stack")
    assert m.ilines.tolist() == [10, 11, 12, 13] and m.xlines.tolist() == [100, 102, 104, 106, 108]
    assert (m.sample_interval_us, m.sample_start_ms) == (2000.0, 100.0)
    assert (m.n_traces, m.dead_traces) == (19, 1)
    assert grid.live().tolist()[1] == [True, True, False, True, True]
    patch = grid.read((slice(1, 3), slice(1, 4), slice(5, 8)))
    assert patch[0, 0, 0].tolist() == pytest.approx([12.0205, 12.0206, 12.0207], abs=1e-6)  # 11 + 102/100 + t/1e4
    assert patch[0, 0, 1].tolist() == [0.0, 0.0, 0.0]  # the dead trace reads as zeros, not NaN
    traces = grid.read_traces(np.array([7, 0, 19]))  # flat positions: (1, 2) dead, (0, 0), (3, 4)
    assert traces[0, :, 0].tolist() == pytest.approx([0.0, 11.0, 14.08], abs=1e-6)


@needs_extra
def test_plain_zarr_axes_from_dimension_names_spec_or_defaults(tmp_path):
    values = segyfactory.position_values(range(1, 4), range(20, 24), 10)
    named = zarr.create_array(tmp_path / "named.zarr", shape=values.shape, chunks=(2, 2, 5), dtype="f4",
                              dimension_names=("inline", "crossline", "time"))
    named[:] = values
    assert open_grid(tmp_path / "named.zarr").axes == ("inline", "crossline", "sample")
    bare = zarr.create_array(tmp_path / "bare.zarr", shape=values.shape, dtype="f4")
    bare[:] = values
    assert open_grid(tmp_path / "bare.zarr").axes == ("inline", "crossline", "sample")  # NumPy defaults
    grid = open_grid(InputSpec(str(tmp_path / "bare.zarr"), axes=("crossline", "inline", "sample")))
    assert grid.axes == ("crossline", "inline", "sample")
    np.testing.assert_array_equal(full(grid), values[None])
    group = zarr.open_group(tmp_path / "group.zarr", mode="w")
    group.create_array("a", data=values)
    group.create_array("b", data=values + 1)
    with pytest.raises(DataError, match="holds 2 arrays .* say which"):
        open_grid(tmp_path / "group.zarr")
    assert full(open_grid(InputSpec(str(tmp_path / "group.zarr"), key="b")))[0, 2, 3, 9] == pytest.approx(4.2309)


@needs_extra
def test_a_patch_read_touches_only_its_chunks(tmp_path):
    values = segyfactory.position_values(range(1, 7), range(20, 26), 16)
    array = zarr.create_array(tmp_path / "c.zarr", shape=values.shape, chunks=(2, 3, 8), dtype="f4",
                              dimension_names=("inline", "crossline", "time"))
    array[:] = values
    # Corrupt the chunk at inlines 4-5, crosslines 3-5, samples 8-15: reads elsewhere must not decode it.
    (tmp_path / "c.zarr" / "c" / "2" / "1" / "1").write_bytes(b"not a chunk")
    grid = open_grid(tmp_path / "c.zarr")
    np.testing.assert_array_equal(grid.read((slice(0, 4), slice(0, 6), slice(0, 16)))[0], values[:4])
    np.testing.assert_array_equal(grid.read((slice(4, 6), slice(0, 3), slice(0, 16)))[0], values[4:, :3])
    with pytest.raises(Exception):  # noqa: B017 - whatever the codec raises: the chunk was read
        grid.read((slice(5, 6), slice(5, 6), slice(15, 16)))


def test_missing_extra_says_how_to_install(tmp_path, monkeypatch, cli):
    monkeypatch.setitem(sys.modules, "zarr", None)  # import zarr now raises ImportError
    (tmp_path / "s.zarr").mkdir()
    with pytest.raises(MissingExtra) as e:
        open_grid(tmp_path / "s.zarr")
    assert e.value.message == ("MDIO/Zarr stores need the Python package 'zarr', which is not installed — "
                               "install the extra: pip install 'geocnn[mdio]' (Python 3.11 or later)")
    result = cli("inspect", tmp_path / "s.zarr")
    assert result.exit_code == 2 and "pip install 'geocnn[mdio]'" in result.output


def test_grid_layer_imports_neither_torch_nor_zarr():
    code = ("import sys, geocnn.grids.grid, geocnn.grids.writer, geocnn.grids.convert, geocnn.grids.kinds; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'zarr', 'mdio', 'xarray'}))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "[]", done.stderr


# ----------------------------------------------------------------------------- convert


@needs_extra
@pytest.mark.slow
def test_convert_segy_to_mdio_and_back(tmp_path, cli, monkeypatch):
    monkeypatch.setenv("MDIO__IMPORT__CPU_COUNT", "1")
    monkeypatch.setenv("MDIO__EXPORT__CPU_COUNT", "1")
    survey = segyfactory.write_segy(tmp_path / "cube.sgy", ilines=range(1, 6), xlines=range(20, 26),
                                    n_samples=30, interval_us=2000, missing=[(2, 21)])
    assert cli("convert", survey.path, tmp_path / "cube.mdio").exit_code == 0
    cube = open_grid(tmp_path / "cube.mdio")
    assert cube.meta.ilines.tolist() == [1, 2, 3, 4, 5] and cube.meta.xlines.tolist() == list(range(20, 26))
    assert cube.meta.sample_interval_us == 2000.0 and cube.live()[1].tolist() == [True, False] + [True] * 4
    window = (slice(1, 4), slice(0, 4), slice(7, 19))
    np.testing.assert_array_equal(cube.read(window), open_grid(survey.path).read(window))
    assert cli("convert", tmp_path / "cube.mdio", tmp_path / "back.sgy").exit_code == 0
    back = open_grid(tmp_path / "back.sgy")
    np.testing.assert_array_equal(full(back)[0], survey.values)
    assert back.meta.ilines.tolist() == survey.ilines.tolist() and back.meta.xlines.tolist() == survey.xlines.tolist()
    # every trace header and sample byte is the original's; only the text header's last byte differs
    # (segyio writes an ASCII space into the EBCDIC header, stored by mdio as a space again)
    a, b = segyfactory.file_bytes(survey.path), segyfactory.file_bytes(tmp_path / "back.sgy")
    assert len(a) == len(b) and a[3200:] == b[3200:]
    again = cli("convert", survey.path, tmp_path / "cube.mdio")
    assert again.exit_code == 2 and "--force" in again.output


# ----------------------------------------------------------------------------- writing


@needs_extra
@pytest.mark.parametrize("suffix", [".zarr", ".mdio"])
def test_output_is_atomic_refuses_to_replace_and_follows_the_umask(tmp_path, suffix):
    survey = segyfactory.write_segy(tmp_path / "cube.sgy", ilines=range(1, 4), xlines=range(20, 25), n_samples=12)
    like = open_grid(survey.path)
    out = tmp_path / f"out{suffix}"
    old = os.umask(0o027)
    try:
        pending = writer.prepare(out, like)
        pending.write((slice(0, 2), slice(0, 5), slice(0, 12)), survey.values[:2])
        with pytest.raises(DataError, match="incomplete"):  # half written: not a dataset to read
            open_grid(pending.tmp)
        assert not out.exists() and Path(pending.tmp).name.startswith(".out.geocnn-tmp-")
        pending.abort()
        assert os.listdir(tmp_path) == ["cube.sgy"]
        written = writer.write_array(out, like, survey.values)
    finally:
        os.umask(old)
    np.testing.assert_array_equal(full(open_grid(written))[0], survey.values)
    modes = {oct(p.stat().st_mode & 0o777) for p in [out, *out.rglob("*")]}
    assert modes == {"0o640", "0o750"}
    with pytest.raises(OutputExistsError):
        writer.prepare(out, like)
    writer.write_array(out, like, survey.values * 2, force=True)
    np.testing.assert_array_equal(full(open_grid(out))[0], survey.values * 2)
    assert sorted(os.listdir(tmp_path)) == ["cube.sgy", f"out{suffix}"]


@needs_extra
def test_predict_into_zarr_and_mdio_equals_npy(tmp_path, identity_run):
    from geocnn.predict import predict

    survey = segyfactory.write_segy(tmp_path / "cube.sgy", ilines=range(1, 8), xlines=range(20, 33), n_samples=37,
                                    missing=[(3, 25)])
    run = identity_run(tmp_path, inputs=[str(survey.path)])
    ref = np.load(predict(run, [survey.path], tmp_path / "ref.npy", pictures=False).output)
    np.testing.assert_allclose(ref, survey.values, rtol=1e-5, atol=1e-5)  # the identity, dead trace zero
    for suffix in (".zarr", ".mdio"):
        report = predict(run, [survey.path], tmp_path / f"out{suffix}", pictures=False)
        np.testing.assert_array_equal(full(open_grid(report.output))[0], ref)
    ds = mdio.open_mdio(tmp_path / "out.mdio")  # what MDIO tools see
    np.testing.assert_array_equal(ds["prediction"].values, ref)
    assert ds["inline"].values.tolist() == list(range(1, 8)) and ds["time"].values[:3].tolist() == [0, 4, 8]
    assert ds["trace_mask"].values.sum() == 7 * 13 - 1
    zarr_out = open_grid(tmp_path / "out.zarr")
    assert zarr_out.meta.sample_interval_us == 4000.0 and zarr_out.channel_names == ("out",)


def test_every_format_has_a_reader():
    from geocnn.grids.formats import FORMATS, format_from_suffix, output_format
    from geocnn.grids.kinds import SOURCE_KINDS

    assert set(SOURCE_KINDS) == set(FORMATS)
    assert [format_from_suffix(p) for p in ("a.sgy.1", "s3://b/survey.mdio/", "c.zarr", "d.npz")] == \
        ["segy", "mdio", "zarr", "npz"]
    with pytest.raises(DataError, match=r"name the output .*\.mdio"):
        output_format("x.npz")


@needs_extra
def test_training_from_zarr_reads_what_npy_gives(tmp_path):
    """Normalisation comes from a seeded sample of whole traces (read_traces): the same numbers."""
    import pickle

    from geocnn.config import load_config
    from geocnn.runs.checkpoint import load_checkpoint
    from geocnn.train import train
    from tests import trainkit

    data = trainkit.write_regression(tmp_path)
    for name in ("noisy", "clean"):
        array = np.load(tmp_path / f"{name}.npy")
        zarr.create_array(tmp_path / f"{name}.zarr", data=array, chunks=(4, 4, 16))
    runs = {}
    for fmt, inputs in (("npy", data), ("zarr", {"inputs": ["noisy.zarr"], "target": "clean.zarr"})):
        path = trainkit.write_config(tmp_path, "regression", inputs, trainkit.SMALL_2D % {"out": 1},
                                     {"max_steps": 1, "epochs": 1}, name=f"{fmt}.yaml", patch=[8, 16],
                                     section="inline")
        runs[fmt] = load_checkpoint(train(load_config(path), tmp_path / fmt) / "checkpoints" / "last.pt")
    assert runs["zarr"].normalization == runs["npy"].normalization
    grid = open_grid(tmp_path / "noisy.zarr")
    state = pickle.dumps(grid)
    assert len(state) < 4096 < grid.shape[0] * grid.shape[1] * grid.shape[2] * 4  # no values inside
    again = pickle.loads(state)  # what DataLoader workers get: the store reopened, not copied
    np.testing.assert_array_equal(full(again), full(grid))


@needs_extra
def test_several_channels_in_mdio_come_back_as_channels_with_the_trace_mask(tmp_path):
    survey = segyfactory.write_segy(tmp_path / "cube.sgy", ilines=range(1, 4), xlines=range(20, 24), n_samples=6,
                                    missing=[(2, 22)])
    like = open_grid(survey.path)
    values = np.stack([survey.values, -survey.values])
    writer.write_array(tmp_path / "two.mdio", like, values, channel_names=("up", "down"))
    grid = open_grid(tmp_path / "two.mdio")
    assert (grid.axes, grid.channel_names) == (("inline", "crossline", "sample"), ("up", "down"))
    assert grid.live().tolist() == [[True] * 4, [True, True, False, True], [True] * 4]
    np.testing.assert_array_equal(full(grid), values)
    assert grid.read_traces(np.array([5]))[:, 0, 0].tolist() == pytest.approx([2.21, -2.21])  # il 2, xl 21


def test_processes_take_whole_chunk_rows():
    """23 inlines in chunks of 3 over 3 processes: 9 + 9 + 5 rows, never a chunk split between two."""
    from types import SimpleNamespace

    from geocnn.grids.storeout import row_block
    from geocnn.predict.plan import rank_rows

    def split(world, block):
        return [rank_rows(23, SimpleNamespace(rank=r, world_size=world), block) for r in range(world)]

    assert row_block(23) == 3 and row_block(10_000) == 64 and row_block(5) == 1
    assert split(3, 3) == [(0, 9), (9, 18), (18, 23)]
    assert split(3, 1) == [(0, 8), (8, 16), (16, 23)]  # files: any split
    assert split(2, 3) == [(0, 12), (12, 23)]
