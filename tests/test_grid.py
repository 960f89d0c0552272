"""Grids: input specs, NumPy sources, channels (stacked files, an axis), stacking checks, normalisation."""

from __future__ import annotations

import logging
import pickle

import numpy as np
import pytest

from geocnn.errors import ConfigError, DataError
from geocnn.grids.grid import open_grid, open_stack
from geocnn.grids.normalize import Normalization, estimate, sample_positions, sample_traces
from geocnn.grids.spec import INPUT_SPEC, InputSpec, input_spec
from geocnn.schema import Ctx
from geocnn.yamlsource import loads
from tests.segyfactory import captured_logs, mapped_resident_bytes, write_segy


def _spec(text: str):
    data, src = loads(text, "data.yaml")
    return [input_spec(v, Ctx(src).at("inputs").at(i)) for i, v in enumerate(data["inputs"])]


def _all(g):
    return tuple(slice(0, n) for n in g.shape)


# -- input specs ----------------------------------------------------------------------------

def test_input_spec_from_yaml_string_and_mapping():
    a, b = _spec("inputs:\n  - noisy.sgy\n  - {path: gathers.sgy, channels_from: offset, iline: 9}\n")
    assert a == InputSpec("noisy.sgy")
    assert b == InputSpec("gathers.sgy", channels_from="offset", iline=9)
    (c,) = _spec("inputs:\n  - {path: x.npz, key: wave, axes: [component, trace, sample], channels_from: component}\n")
    assert c.axes == ("component", "trace", "sample") and c.resolved_format == "npz"


@pytest.mark.parametrize("entry, message", [
    ("{path: a.sgy, chanels_from: offset}", "data.yaml:2:19: unknown key 'chanels_from' — did you mean 'channels_from'?"),
    ("{path: a.sgy, key: x}", "data.yaml:2:19: key names a member of a .npz file, but this input is segy"),
    ("{path: a.npy, axes: [inline, sample], channels_from: offset}",
     "data.yaml:2:43: 'offset' is not one of the axes (inline, sample)"),
    ("{path: a.sgy, channels_from: component}", "a SEG-Y file can give channels from its offset axis only"),
    ("{path: a.txt}", "data.yaml:2:6: cannot tell the file format from the name (suffix .txt)"),
    ("{path: a.npy, axes: [x, x]}", "axes repeat a name"),
    ("{path: a.sgy, iline: 300}", "iline must be an integer from 1 to 237"),
])
def test_input_spec_errors_name_the_yaml_position(entry, message):
    with pytest.raises(ConfigError) as e:
        _spec(f"inputs:\n  - {entry}\n")
    assert message in e.value.message


def test_input_spec_json_schema_accepts_a_bare_path():
    schema = INPUT_SPEC.json()
    assert schema["anyOf"][1] == {"type": "string", "minLength": 1, "description": schema["anyOf"][1]["description"]}
    props = schema["anyOf"][0]["properties"]
    assert props["format"]["enum"] == ["auto", "segy", "npy", "npz", "mdio", "zarr", "tiff", "netcdf", "seismo"]
    assert props["iline"]["default"] == 189


# -- NumPy --------------------------------------------------------------------------------------

def test_npy_default_axes_and_memmap_reads(tmp_path):
    a = np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6)
    np.save(tmp_path / "a.npy", a)
    g = open_grid(tmp_path / "a.npy")
    assert (g.axes, g.shape, g.channels, g.channel_names) == (("inline", "crossline", "sample"), (4, 5, 6), 1, ("a",))
    assert isinstance(g._parts[0].source.array, np.memmap)
    x = g.read((slice(1, 3), slice(0, 5), slice(2, 4)))
    assert x.dtype == np.float32 and x.shape == (1, 2, 5, 2)
    np.testing.assert_array_equal(x[0], a[1:3, :, 2:4])
    assert g.live() is None and g.meta.kind == "numpy" and g.meta.sample_format == "int16"
    assert open_grid(_save(tmp_path / "b.npy", np.zeros((3, 7)))).axes == ("trace", "sample")
    assert open_grid(_save(tmp_path / "c.npy", np.zeros(9))).axes == ("sample",)


def _save(path, array):
    np.save(path, array)
    return path


def test_npy_is_never_read_whole(tmp_path):
    path = tmp_path / "big.npy"
    np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(400, 200, 200)).flush()  # 64 MB, sparse
    g = open_grid(path)
    assert g.read((slice(50, 51), slice(10, 20), slice(0, 200))).shape == (1, 1, 10, 200)
    resident = mapped_resident_bytes(path)
    if resident is None:
        pytest.skip("no /proc/self/smaps")
    # one 8 kB run; the kernel may map a page-cache folio (up to 2 MiB) around it
    assert resident <= (4 << 20) + (256 << 10), f"{resident} of {path.stat().st_size} bytes resident"


def test_npy_axes_must_match_ndim(tmp_path):
    path = _save(tmp_path / "a.npy", np.zeros((2, 3, 4, 5)))
    with pytest.raises(DataError, match=r"array has 4 axes \(2, 3, 4, 5\); name them") as e:
        open_grid(path)
    assert str(path) in e.value.message
    with pytest.raises(DataError, match=r"array has 4 axes \(2, 3, 4, 5\) but axes names 3"):
        open_grid(InputSpec(str(path), axes=("inline", "crossline", "sample")))


def test_npy_axis_as_channels(tmp_path):
    a = np.random.default_rng(0).standard_normal((6, 3, 40)).astype(np.float32)  # trace, component, sample
    path = _save(tmp_path / "three_c.npy", a)
    g = open_grid(InputSpec(str(path), axes=("trace", "component", "sample"), channels_from="component"))
    assert g.axes == ("trace", "sample") and g.shape == (6, 40) and g.channels == 3
    assert g.channel_names == ("component 0", "component 1", "component 2")
    np.testing.assert_array_equal(g.read((slice(2, 5), slice(10, 30))), a[2:5, :, 10:30].transpose(1, 0, 2))


def test_npz_uncompressed_is_mapped_compressed_is_loaded_with_a_message(tmp_path, caplog):
    a, b = np.arange(60.0).reshape(3, 4, 5), np.ones((3, 4, 5), np.float32)
    np.savez(tmp_path / "plain.npz", seismic=a, labels=b)
    np.savez_compressed(tmp_path / "small.npz", seismic=a)
    g = open_grid(InputSpec(str(tmp_path / "plain.npz"), key="seismic"))
    assert isinstance(g._parts[0].source.array, np.memmap)
    np.testing.assert_array_equal(g.read(_all(g))[0], a)
    assert g.channel_names == ("plain:seismic",)
    with captured_logs(caplog, logging.INFO):
        c = open_grid(tmp_path / "small.npz")  # one member: no key needed
    np.testing.assert_array_equal(c.read(_all(c))[0], a)
    assert "stored compressed" in caplog.text and "np.savez" in caplog.text
    with pytest.raises(DataError, match="holds 2 arrays"):
        open_grid(tmp_path / "plain.npz")
    with pytest.raises(DataError, match="no array 'seismc'.*did you mean 'seismic'"):
        open_grid(InputSpec(str(tmp_path / "plain.npz"), key="seismc"))


@pytest.mark.parametrize("content, message", [
    (b"\x93NUMPY garbage", "not a readable npy file"),
    (b"hello", "not a readable npy file"),
])
def test_bad_npy_files(tmp_path, content, message):
    path = tmp_path / "bad.npy"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message):
        open_grid(path)


def test_truncated_npy(tmp_path):
    path = _save(tmp_path / "t.npy", np.zeros((10, 10, 10), np.float32))
    path.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(DataError, match="not a readable npy file") as e:
        open_grid(path)
    assert "t.npy" in e.value.message


def test_unknown_format_and_missing_files(tmp_path):
    with pytest.raises(DataError, match="cannot tell the file format"):
        open_grid(tmp_path / "volume.dat")
    with pytest.raises(DataError, match="file not found"):
        open_grid(tmp_path / "nope.npy")


# -- SEG-Y grids and channels ---------------------------------------------------------------

def test_prestack_offsets_as_channels_in_ascending_order(tmp_path):
    s = write_segy(tmp_path / "gathers.sgy", range(1, 4), range(1, 5), 6, offsets=[15, 5, 25])
    g = open_grid(InputSpec(str(s.path), channels_from="offset"))
    assert g.axes == ("inline", "crossline", "sample") and g.shape == (3, 4, 6)
    assert g.channel_names == ("offset 5", "offset 15", "offset 25")
    x = g.read((slice(0, 2), slice(1, 3), slice(2, 5)))
    np.testing.assert_array_equal(x, s.values[0:2, 1:3, :, 2:5].transpose(2, 0, 1, 3))
    assert x[2, 0, 0, 0] == np.float32(200 + 1 + 0.02 + 0.0002)  # offset index 2 = 25


def test_prestack_without_channels_keeps_the_offset_axis(tmp_path):
    s = write_segy(tmp_path / "g.sgy", range(1, 3), range(1, 3), 4, offsets=[1, 2, 3])
    g = open_grid(s.path)
    assert g.axes == ("inline", "crossline", "offset", "sample") and g.channels == 1


def test_stack_of_matching_files(tmp_path):
    a = write_segy(tmp_path / "near.sgy", range(1, 4), range(1, 5), 8)
    b = write_segy(tmp_path / "far.sgy", range(1, 4), range(1, 5), 8, format=1,
                   values=-write_segy(tmp_path / "tmp.sgy", range(1, 4), range(1, 5), 8).values)
    n = _save(tmp_path / "attr.npy", np.full((3, 4, 8), 7, np.float32))
    g = open_stack([a.path, b.path, n])
    assert g.channels == 3 and g.channel_names == ("near", "far", "attr")
    x = g.read((slice(1, 3), slice(0, 4), slice(0, 8)))
    np.testing.assert_array_equal(x[0], a.values[1:3])
    np.testing.assert_allclose(x[1], -a.values[1:3], rtol=1e-6)
    assert (x[2] == 7).all()
    assert g.meta.kind == "post-stack" and g.sources == (str(a.path), str(b.path), str(n))


@pytest.mark.parametrize("kwargs, message", [
    (dict(xlines=range(2, 6)), "cannot stack as channels: its crossline numbers 2–5 (4) differ from a.sgy's 1–4 (4)"),
    (dict(ilines=range(1, 5)), "its shape 4 inline × 4 crossline × 8 sample differs from a.sgy's 3 inline"),
    (dict(interval_us=2000), "its sample interval 2 ms differs from a.sgy's 4 ms"),
    (dict(delay_ms=8), "its first sample is at 8 ms, a.sgy's at 0 ms"),
])
def test_stack_mismatch_names_the_file_and_how(tmp_path, kwargs, message):
    write_segy(tmp_path / "a.sgy", range(1, 4), range(1, 5), 8)
    b = write_segy(tmp_path / "b.sgy", **{"ilines": range(1, 4), "xlines": range(1, 5), "n_samples": 8, **kwargs})
    with pytest.raises(DataError) as e:
        open_stack([tmp_path / "a.sgy", b.path])
    assert e.value.message.startswith(f"{b.path}: ")
    assert message in e.value.message


def test_stack_numpy_shape_mismatch(tmp_path):
    write_segy(tmp_path / "a.sgy", range(1, 4), range(1, 5), 8)
    n = _save(tmp_path / "n.npy", np.zeros((3, 4, 9)))
    with pytest.raises(DataError, match="n.npy: cannot stack as channels: its shape 3 inline × 4 crossline × 9 sample"):
        open_stack([tmp_path / "a.sgy", n])


def test_stacked_live_mask_is_where_every_file_has_a_trace(tmp_path):
    a = write_segy(tmp_path / "a.sgy", range(1, 4), range(1, 4), 5, missing=[(1, 1)])
    b = write_segy(tmp_path / "b.sgy", range(1, 4), range(1, 4), 5, missing=[(3, 2)])
    g = open_stack([a.path, b.path])
    np.testing.assert_array_equal(g.live(), a.live & b.live)
    np.testing.assert_array_equal(g.live((slice(2, 3), slice(0, 3), slice(0, 5))), [[True, False, True]])


def test_window_must_be_step_one_and_inside(tmp_path):
    g = open_grid(_save(tmp_path / "a.npy", np.zeros((4, 4, 4))))
    for bad in [(slice(0, 4, 2), slice(0, 4), slice(0, 4)), (slice(0, 5), slice(0, 4), slice(0, 4)),
                (slice(0, 4), slice(0, 4))]:
        with pytest.raises(ValueError):
            g.read(bad)


def test_spacing_and_metadata(tmp_path):
    s = write_segy(tmp_path / "a.sgy", range(10, 14), range(1, 6, 2), 5, interval_us=2000, delay_ms=20)
    g = open_grid(s.path)
    assert g.spacing() == {"inline": (pytest.approx(25.0), "m"), "crossline": (pytest.approx(12.5), "m"),
                           "sample": (2.0, "ms")}
    assert (g.meta.sample_interval_us, g.meta.sample_start_ms, g.meta.n_traces) == (2000.0, 20.0, 12)
    np.testing.assert_array_equal(g.meta.xlines, [1, 3, 5])


def test_read_traces_matches_read(tmp_path):
    s = write_segy(tmp_path / "a.sgy", range(1, 5), range(1, 6), 7, missing=[(2, 3)], sorting="crossline")
    g = open_grid(s.path)
    positions = np.array([0, 7, 19, 6])  # flat (inline, crossline); 7 = (2, 3) is dead
    traces = g.read_traces(positions)
    assert traces.shape == (1, 4, 7)
    for n, p in enumerate(positions):
        i, j = divmod(int(p), 5)
        np.testing.assert_array_equal(traces[0, n], s.values[i, j])
    assert not traces[0, 1].any()


def test_grid_pickles_without_data(tmp_path):
    s = write_segy(tmp_path / "a.sgy", range(1, 30), range(1, 30), 200)
    n = _save(tmp_path / "n.npy", np.ones((29, 29, 200), np.float32))
    g = open_stack([s.path, n])
    g.read((slice(0, 2), slice(0, 2), slice(0, 2)))
    blob = pickle.dumps(g)
    assert len(blob) < 30_000  # both files are ~700 kB
    h = pickle.loads(blob)
    np.testing.assert_array_equal(h.read((slice(3, 5), slice(1, 2), slice(0, 200))),
                                  g.read((slice(3, 5), slice(1, 2), slice(0, 200))))


# -- normalisation --------------------------------------------------------------------------

def test_standard_statistics_match_numpy_on_the_sampled_traces(tmp_path):
    rng = np.random.default_rng(3)
    a = (rng.standard_normal((2, 50, 40, 30)) * [[[[3.0]]], [[[0.5]]]] + [[[[10]]], [[[-1]]]]).astype(np.float32)
    path = _save(tmp_path / "two.npy", a)
    g = open_grid(InputSpec(str(path), axes=("component", "inline", "crossline", "sample"), channels_from="component"))
    norm = estimate(g, "standard", max_traces=300, seed=5)
    positions = sample_positions(g, 300, 5)
    assert len(positions) == 300 and len(np.unique(positions)) == 300
    il, xl = np.unravel_index(positions, (50, 40))
    sampled = a[:, il, xl, :]  # (2, 300, 30)
    np.testing.assert_allclose(norm.center, sampled.reshape(2, -1).mean(axis=1), rtol=1e-6)
    np.testing.assert_allclose(norm.scale, sampled.reshape(2, -1).std(axis=1), rtol=1e-6)
    np.testing.assert_array_equal(sample_traces(g, 300, 5), sampled)
    assert norm.traces == 300 and norm.seed == 5
    x = g.read((slice(0, 50), slice(0, 40), slice(0, 30)))
    y = norm.apply(x)
    assert abs(float(y[0].mean())) < 0.05 and abs(float(y[1].std()) - 1) < 0.05
    np.testing.assert_allclose(norm.invert(y), x, rtol=1e-5, atol=1e-5)


def test_robust_statistics_and_dead_traces_are_not_sampled(tmp_path):
    s = write_segy(tmp_path / "a.sgy", range(1, 6), range(1, 6), 20, missing=[(1, 1), (2, 2), (3, 3)])
    g = open_grid(s.path)
    norm = estimate(g, "robust", max_traces=2000)
    live = s.values[s.live]  # (22, 20): only traces that exist
    p1, p50, p99 = np.percentile(live.astype(np.float64), [1, 50, 99])
    assert norm.traces == 22
    assert norm.center == pytest.approx((p50,)) and norm.scale == pytest.approx(((p99 - p1) / 2,))


def test_normalization_round_trips_through_a_plain_dict():
    norm = Normalization("robust", (1.5, -2.0), (0.25, 3.0), traces=2000, seed=1)
    d = norm.to_dict()
    assert d == {"method": "robust", "center": [1.5, -2.0], "scale": [0.25, 3.0], "traces": 2000, "seed": 1}
    assert all(type(v) in (str, int, list) for v in d.values())
    assert Normalization.from_dict(d) == norm
    with pytest.raises(DataError, match="malformed"):
        Normalization.from_dict({"method": "robust", "center": [1.0]})
    with pytest.raises(DataError, match="inconsistent"):
        Normalization.from_dict({"method": "robust", "center": [1.0], "scale": [0.0]})


def test_normalization_applies_to_torch_tensors_and_checks_channels():
    torch = pytest.importorskip("torch")
    norm = Normalization("standard", (1.0, 2.0), (2.0, 4.0))
    t = torch.ones(2, 3, 3)
    out = norm.apply(t)
    assert isinstance(out, torch.Tensor) and out[0, 0, 0].item() == 0.0 and out[1, 0, 0].item() == -0.25
    batch = torch.ones(5, 2, 4)
    assert norm.apply(batch, channel_axis=1).shape == (5, 2, 4)
    with pytest.raises(DataError, match="data has 3 channels but the normalisation has 2"):
        norm.apply(np.zeros((3, 4)))


def test_constant_channel_gets_scale_one(tmp_path, caplog):
    g = open_grid(_save(tmp_path / "z.npy", np.zeros((4, 4, 4), np.float32)))
    with captured_logs(caplog, logging.WARNING):
        norm = estimate(g)
    assert norm.scale == (1.0,) and "constant" in caplog.text


def test_big_npy_reads_map_only_their_rows_for_the_call(tmp_path, monkeypatch):
    import geocnn.grids.sources

    monkeypatch.setattr(geocnn.grids.sources, "BIG_READ", 1 << 12)
    a = np.arange(40 * 30 * 20, dtype=np.float32).reshape(40, 30, 20)
    path = _save(tmp_path / "a.npy", a)
    g = open_grid(path)
    np.testing.assert_array_equal(g.read((slice(5, 35), slice(3, 30), slice(0, 20)))[0], a[5:35, 3:])
    resident = mapped_resident_bytes(path)
    if resident is not None:
        assert resident == 0  # the persistent map was never touched
