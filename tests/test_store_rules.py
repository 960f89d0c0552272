"""Issue 18 §1-§2: stores are checked before they are used, and every output kind takes the same checks.

Store inputs: a store's metadata is validated before Zarr parses it (a table of damaged ``zarr.json``
and ``.zarray`` forms), declared sizes are bounded before any allocation (run under a tracemalloc
peak bound), chunk decode errors name the store and the chunk, one dtype rule holds for every
source kind, and the trace mask must fit the grid. Outputs: every kind (``.npy``, ``.sgy``, ``.zarr``,
``.mdio``, convert, export) refuses a folder below a regular file, a read-only folder and a name the
system refuses with one line; a killed conversion's folder is refused by readers and cleaned as stale.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from geocnn import atomic
from geocnn.errors import DataError, GeocnnError, OutputError
from geocnn.grids import writer
from geocnn.grids.grid import open_grid
from geocnn.grids.spec import InputSpec
from geocnn.grids.stores import MAX_CHUNK_BYTES, MAX_POSITIONS, MAX_SAMPLES
from tests import segyfactory

zarr = pytest.importorskip("zarr")
mdio = pytest.importorskip("mdio")

PEAK = 64 << 20  # bytes: what refusing a store may allocate, whatever it declares


def one_line_refusal(result, *words: str) -> str:
    """The CLI result is exit 2 with one stderr line holding ``words`` and no traceback."""
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1 and "Traceback" not in result.output, result.output
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]


def cube_store(path: Path, zarr_format: int = 3, chunks=(2, 5, 8)) -> Path:
    """A plain Zarr store of 4 × 5 × 8 values encoding their position (il.xl + sample/1e4)."""
    values = segyfactory.position_values(range(1, 5), range(20, 25), 8)
    array = zarr.create_array(path, shape=values.shape, chunks=chunks, dtype="f4", zarr_format=zarr_format,
                              **({"dimension_names": ("inline", "crossline", "time")} if zarr_format == 3 else {}))
    array[:] = values
    return path


def edit_json(path: Path, change) -> None:
    path.write_text(json.dumps(change(json.loads(path.read_text()))))


def _set(key, value):
    def change(doc):
        doc[key] = value
        return doc
    return change


def _chunks(value):
    def change(doc):
        if "chunk_grid" in doc:
            doc["chunk_grid"]["configuration"]["chunk_shape"] = value
        else:
            doc["chunks"] = value
        return doc
    return change


# ----------------------------------------------------------------------------- §1 metadata

# (name, zarr format, metadata file, change, words of the one line). The first five are the issue's.
DAMAGED = [
    ("json-list", 3, "zarr.json", lambda d: [d], "zarr.json is a JSON list"),
    ("int-dimension-names", 3, "zarr.json", _set("dimension_names", 5), "dimension_names must be 3 names"),
    ("v2-shape-string", 2, ".zarray", _set("shape", "sixteen"), ".zarray shape must be a list"),
    ("attributes-list", 3, "zarr.json", _set("attributes", [1, 2]), "attributes must be an object"),
    ("chunk-zero", 3, "zarr.json", _chunks([0, 5, 8]), "chunk shape must be 3 whole numbers ≥ 1"),
    ("v2-chunk-zero", 2, ".zarray", _chunks([2, 0, 8]), "chunk shape must be 3 whole numbers ≥ 1"),
    ("negative-shape", 3, "zarr.json", _set("shape", [4, -5, 8]), "shape must be a list of whole numbers ≥ 0"),
    ("bool-shape", 3, "zarr.json", _set("shape", [True, 5, 8]), "shape must be a list"),
    ("float-chunks", 2, ".zarray", _chunks([2.5, 5, 8]), "chunk shape must be"),
    ("short-chunks", 3, "zarr.json", _chunks([2, 5]), "chunk shape must be 3"),
    ("chunk-grid-string", 3, "zarr.json", _set("chunk_grid", "regular"), "chunk shape must be"),
    ("dimension-names-short", 3, "zarr.json", _set("dimension_names", ["inline"]), "dimension_names must be 3"),
    ("dimension-names-ints", 3, "zarr.json", _set("dimension_names", [1, 2, 3]), "dimension_names must be 3"),
    ("dtype-number", 3, "zarr.json", _set("data_type", 7), "data type must be a name"),
    ("v2-dtype-null", 2, ".zarray", _set("dtype", None), "data type must be a name"),
    ("node-type", 3, "zarr.json", _set("node_type", "table"), "node_type must be 'array' or 'group'"),
    ("json-string", 3, "zarr.json", lambda d: "array", "zarr.json is a JSON str"),
    ("json-null", 2, ".zarray", lambda d: None, ".zarray is a JSON NoneType"),
]


@pytest.mark.parametrize("name, fmt, file, change, words", DAMAGED, ids=[d[0] for d in DAMAGED])
def test_damaged_metadata_is_one_line(tmp_path, cli, name, fmt, file, change, words):
    store = cube_store(tmp_path / "s.zarr", fmt)
    edit_json(store / file, change)
    with pytest.raises(DataError, match="damaged Zarr metadata"):
        open_grid(store)
    one_line_refusal(cli("inspect", store), str(store), words)


def test_damaged_member_attributes_and_json_are_one_line(tmp_path, cli):
    store = cube_store(tmp_path / "v2.zarr", 2)
    (store / ".zattrs").write_text(json.dumps({"_ARRAY_DIMENSIONS": 3}))
    one_line_refusal(cli("inspect", store), "_ARRAY_DIMENSIONS must be a list of names")
    (store / ".zattrs").write_text("[1, 2]")
    one_line_refusal(cli("inspect", store), ".zattrs is a JSON list")
    (store / ".zattrs").write_text("{not json")
    one_line_refusal(cli("inspect", store), ".zattrs is not JSON")
    group = zarr.open_group(tmp_path / "g.zarr", mode="w")
    group.create_array("data", data=np.ones((3, 4, 5), "f4"))
    edit_json(tmp_path / "g.zarr" / "data" / "zarr.json", _set("shape", "three"))  # a member, not the root
    one_line_refusal(cli("inspect", tmp_path / "g.zarr"), "g.zarr/data", "shape must be a list")


@pytest.mark.filterwarnings("ignore:Consolidated metadata is currently not part")  # zarr, writing the fixture
def test_damaged_consolidated_copy_is_refused(tmp_path):
    group = zarr.open_group(tmp_path / "g.zarr", mode="w")
    group.create_array("data", data=np.ones((3, 4, 5), "f4"))
    zarr.consolidate_metadata(tmp_path / "g.zarr")
    edit_json(tmp_path / "g.zarr" / "zarr.json",
              lambda d: d | {"consolidated_metadata": d["consolidated_metadata"] | {
                  "metadata": {"data": d["consolidated_metadata"]["metadata"]["data"] | {"attributes": [1]}}}})
    with pytest.raises(DataError, match=r"g.zarr/data: damaged Zarr metadata: zarr.json attributes must be an object"):
        open_grid(tmp_path / "g.zarr")


def test_every_valid_store_form_still_opens(tmp_path):
    for fmt in (2, 3):
        store = cube_store(tmp_path / f"v{fmt}.zarr", fmt)
        assert open_grid(store).read((slice(1, 2), slice(2, 3), slice(3, 4)))[0, 0, 0, 0] == pytest.approx(2.2203)


# ----------------------------------------------------------------------------- §1 chunks

def test_a_corrupt_chunk_is_one_line_naming_store_and_chunk(tmp_path, cli):
    store = cube_store(tmp_path / "c.zarr", chunks=(2, 3, 4))
    (store / "c" / "1" / "1" / "0").write_bytes(b"not a chunk")  # inlines 3-4, crosslines 23-24, samples 0-3
    grid = open_grid(store)
    np.testing.assert_array_equal(grid.read((slice(0, 2), slice(0, 5), slice(0, 8)))[0, 1, 4, 7], np.float32(2.2407))
    with pytest.raises(DataError) as err:
        grid.read((slice(0, 4), slice(0, 5), slice(0, 8)))
    assert err.value.where == f"{store} chunk c/1/1/0" and "Zstd decompression error" in err.value.problem
    with pytest.raises(DataError, match="chunk c/1/1/0"):
        grid.read_traces(np.array([19]))  # inline 4, crossline 24
    one_line_refusal(cli("inspect", store, "--stats-traces", "20"), "chunk c/1/1/0", "copy or convert it again")
    v2 = cube_store(tmp_path / "c2.zarr", 2, chunks=(2, 3, 4))
    (v2 / "0.1.1").write_bytes(b"\x00" * 5)
    with pytest.raises(DataError, match=r"c2.zarr chunk 0\.1\.1: a chunk cannot be read"):
        open_grid(v2).read((slice(0, 2), slice(3, 5), slice(4, 8)))


@pytest.mark.slow
def test_predict_from_a_store_with_a_corrupt_chunk_is_one_line(tmp_path, identity_run, cli):
    survey = segyfactory.write_segy(tmp_path / "cube.sgy", ilines=range(1, 6), xlines=range(20, 33), n_samples=24)
    run = identity_run(tmp_path, inputs=[str(survey.path)])
    store = zarr.create_array(tmp_path / "in.zarr", shape=survey.values.shape, chunks=(2, 4, 8), dtype="f4")
    store[:] = survey.values
    (tmp_path / "in.zarr" / "c" / "1" / "1" / "1").write_bytes(b"garbage")
    result = cli("predict", run, tmp_path / "in.zarr", "--out", tmp_path / "p.npy")
    one_line_refusal(result, "in.zarr chunk c/1/1/1", "a chunk cannot be read")
    assert not (tmp_path / "p.npy").exists()


# ----------------------------------------------------------------------------- §1 sizes

def huge_mdio(path: Path, n_il: int, n_xl: int, n_samples: int = 10, mask_shape=None) -> Path:
    """An MDIO v1 group declaring n_il × n_xl traces; no chunk written (a few kB on disk)."""
    root = zarr.open_group(path, mode="w")
    root.create_array("inline", data=np.arange(n_il, dtype="i4"), dimension_names=("inline",))
    root.create_array("crossline", data=np.arange(n_xl, dtype="i4"), dimension_names=("crossline",))
    root.create_array("time", data=np.arange(n_samples, dtype="i4") * 4, dimension_names=("time",))
    mask = mask_shape or (n_il, n_xl)
    root.create_array("trace_mask", shape=mask, chunks=tuple(min(n, 1000) for n in mask), dtype=bool,
                      fill_value=True, dimension_names=("inline", "crossline")[:len(mask)])
    root.create_array("amplitude", shape=(n_il, n_xl, n_samples), chunks=(64, 64, n_samples), dtype="f4",
                      fill_value=np.nan, dimension_names=("inline", "crossline", "time"))
    root.attrs.update({"apiVersion": "1.0.0", "attributes": {"defaultVariableName": "amplitude"}})
    return path


def peak_of(fn) -> int:
    tracemalloc.start()
    try:
        fn()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


def test_huge_declared_trace_grid_is_refused_before_allocating(tmp_path, cli):
    store = huge_mdio(tmp_path / "huge.mdio", 100_000, 100_000)

    def refuse():
        with pytest.raises(DataError, match=r"declares 10,000,000,000 trace positions \(100000 × 100000\)"):
            open_grid(store)

    assert peak_of(refuse) < PEAK
    one_line_refusal(cli("inspect", store), "huge.mdio", f"more than geocnn handles ({MAX_POSITIONS:,})")


@pytest.mark.parametrize("shape, chunks, words", [
    ((1, 1, MAX_SAMPLES + 1), (1, 1, 4096), f"declares {MAX_SAMPLES + 1:,} samples per trace"),
    ((20_000, 20_000, 4), (1, 1, 1), "declares 1,600,000,000 chunks of 1 × 1 × 1 values"),
    ((64, 4096, 1024), (64, 4096, 1024), "more than geocnn decodes"),
    ((1 << 16, 1 << 15, 4), (1024, 1024, 4), "declares 2,147,483,648 trace positions"),
], ids=["samples", "chunk-count", "chunk-bytes", "positions"])
def test_declared_sizes_are_bounded_before_allocating(tmp_path, shape, chunks, words):
    zarr.create_array(tmp_path / "s.zarr", shape=shape, chunks=chunks, dtype="f4")

    def refuse():
        with pytest.raises(DataError, match=words.replace("(", r"\(").replace(")", r"\)")):
            open_grid(tmp_path / "s.zarr")

    assert peak_of(refuse) < PEAK
    assert np.prod(chunks) * 4 <= MAX_CHUNK_BYTES or "decodes" in words


def test_trace_reads_on_stores_of_many_chunks_do_not_allocate_by_chunk_count(tmp_path, cli):
    # 1.5 million one-trace chunks: Zarr's point reads would allocate a count per chunk (12 MB here,
    # 7.45 GiB for 1e9 chunks); traces are read one by one instead.
    array = zarr.create_array(tmp_path / "many.zarr", shape=(1500, 1000, 16), chunks=(1, 1, 16), dtype="f4",
                              fill_value=0)
    array[3, 7] = np.arange(16, dtype="f4")
    grid = open_grid(tmp_path / "many.zarr")
    values = {}
    peak = peak_of(lambda: values.setdefault("t", grid.read_traces(np.array([3 * 1000 + 7, 5]))))
    assert values["t"][0, 0].tolist() == list(range(16)) and values["t"][0, 1].tolist() == [0.0] * 16
    assert peak < 4 << 20


def test_the_trace_mask_is_read_in_blocks_and_per_window(tmp_path):
    store = huge_mdio(tmp_path / "big.mdio", 12_000, 12_000, n_samples=4)  # 1.44e8 positions: within the bound
    root = zarr.open_group(store, mode="r+")
    root["trace_mask"][5, 10:13] = False
    root["amplitude"][5, 9:13] = 1.0

    grid = {}
    peak = peak_of(lambda: grid.setdefault("g", open_grid(store)))  # 144 MB of mask counted 4 MB at a time
    g = grid["g"]
    assert (g.meta.n_traces, g.meta.dead_traces) == (144_000_000 - 3, 3)
    assert peak < PEAK
    window = (slice(4, 6), slice(9, 14), slice(0, 4))
    assert g.live(window).tolist() == [[True] * 5, [True, False, False, False, True]]
    assert g.read(window)[0, 1, :, 0].tolist() == [1.0, 0.0, 0.0, 0.0, 0.0]  # dead traces read as zeros
    assert g.read_traces(np.array([5 * 12_000 + 9, 5 * 12_000 + 10]))[0, :, 0].tolist() == [1.0, 0.0]


# ----------------------------------------------------------------------------- §1 dtypes and trace mask

def _npy(path: Path, values: np.ndarray) -> Path:
    np.save(path, values)
    return path


def _npz(path: Path, values: np.ndarray) -> Path:
    np.savez(path, data=values)
    return path


def _zarr3(path: Path, values: np.ndarray) -> Path:
    zarr.create_array(path, data=values)
    return path


def _zarr2(path: Path, values: np.ndarray) -> Path:
    zarr.create_array(path, data=values, zarr_format=2)
    return path


def _mdio(path: Path, values: np.ndarray) -> Path:
    root = zarr.open_group(path, mode="w")
    for name, n in (("inline", values.shape[0]), ("crossline", values.shape[1]), ("time", values.shape[2])):
        root.create_array(name, data=np.arange(n, dtype="i4"), dimension_names=(name,))
    root.create_array("amplitude", data=values, dimension_names=("inline", "crossline", "time"))
    root.attrs.update({"apiVersion": "1.0.0", "attributes": {"defaultVariableName": "amplitude"}})
    return path


SOURCE_KINDS = {"npy": _npy, "npz": _npz, "zarr": _zarr3, "zarr-v2": _zarr2, "mdio": _mdio}
BAD_DTYPES = {"complex64": "complex values (complex64)", "complex128": "complex values (complex128)",
              "str": "data, not numbers"}


@pytest.mark.filterwarnings("ignore:The data type .* does not have a Zarr V3 specification")  # writing the fixture
@pytest.mark.parametrize("kind", SOURCE_KINDS)
@pytest.mark.parametrize("dtype", BAD_DTYPES)
def test_one_dtype_rule_for_every_source_kind(tmp_path, cli, kind, dtype):
    values = (np.arange(24).reshape(2, 3, 4) * (1 + 1j)).astype(dtype) if dtype != "str" else \
        np.full((2, 3, 4), "x", dtype=str)
    suffix = {"zarr-v2": ".zarr"}.get(kind, f".{kind}")
    try:
        path = SOURCE_KINDS[kind](tmp_path / f"in{suffix}", values)
    except (TypeError, ValueError, NotImplementedError) as exc:  # a dtype this writer cannot store
        pytest.skip(f"{kind} cannot store {dtype}: {exc}")
    with pytest.raises(DataError, match="complex values|not numbers"):
        open_grid(path)
    one_line_refusal(cli("inspect", path), BAD_DTYPES[dtype])


def test_real_dtypes_of_every_source_kind_still_open(tmp_path):
    values = np.arange(24, dtype="i2").reshape(2, 3, 4)
    for kind, make in SOURCE_KINDS.items():
        path = make(tmp_path / f"ok-{kind}{'.zarr' if kind == 'zarr-v2' else '.' + kind}", values)
        assert open_grid(path).read((slice(1, 2), slice(2, 3), slice(3, 4)))[0, 0, 0, 0] == 23.0, kind


def test_a_trace_mask_of_another_shape_is_one_line(tmp_path, cli):
    store = huge_mdio(tmp_path / "m.mdio", 4, 5, mask_shape=(4, 6))
    one_line_refusal(cli("inspect", store), "trace_mask is shaped (4, 6), the grid's traces (4, 5)")


# ----------------------------------------------------------------------------- §2 outputs

@pytest.fixture(scope="module")
def like(tmp_path_factory):
    survey = segyfactory.write_segy(tmp_path_factory.mktemp("like") / "cube.sgy", ilines=range(1, 4),
                                    xlines=range(20, 25), n_samples=12)
    return open_grid(survey.path)


def _below_a_file(tmp_path: Path) -> Path:
    (tmp_path / "afile").write_text("x")
    return tmp_path / "afile"


def _too_long(tmp_path: Path) -> Path:
    return tmp_path / ("d" * 300)  # a name the system refuses (ENAMETOOLONG), even to root


def _read_only(tmp_path: Path) -> Path:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    return folder


BAD_FOLDERS = {"below-a-file": (_below_a_file, "is a file, so no folder can be made there"),
               "name-too-long": (_too_long, "cannot write the output (File name too long)"),
               "read-only": (_read_only, "cannot write in the folder")}
KINDS = (".npy", ".sgy", ".zarr", ".mdio")


@pytest.mark.parametrize("suffix", KINDS)
@pytest.mark.parametrize("bad", BAD_FOLDERS)
def test_every_output_kind_takes_the_same_folder_checks(tmp_path, like, monkeypatch, suffix, bad):
    make, words = BAD_FOLDERS[bad]
    folder = make(tmp_path)
    if bad == "read-only" and os.geteuid() == 0:  # root writes anywhere: the check is what is tested
        monkeypatch.setattr(atomic, "writable", lambda f: not str(f).startswith(str(folder)))
    with pytest.raises(GeocnnError) as err:
        writer.prepare(folder / f"p{suffix}", like)
    assert words in err.value.message and str(folder) in err.value.message
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted({folder.name} - {"d" * 300})


@pytest.mark.parametrize("suffix", [".zarr", ".mdio", ".npy"])
def test_convert_into_bad_folders_is_one_line(tmp_path, cli, monkeypatch, suffix):
    survey = segyfactory.write_segy(tmp_path / "cube.sgy", ilines=range(1, 4), xlines=range(20, 25), n_samples=12)
    _below_a_file(tmp_path)
    one_line_refusal(cli("convert", survey.path, tmp_path / "afile" / f"p{suffix}"), "afile' is a file")
    one_line_refusal(cli("convert", survey.path, _too_long(tmp_path) / f"p{suffix}"), "File name too long")
    monkeypatch.setattr(atomic, "writable", lambda f: False)
    one_line_refusal(cli("convert", survey.path, tmp_path / f"p{suffix}"), "cannot write in the folder")


def test_export_into_bad_folders_is_one_line(tmp_path, cli, identity_run, monkeypatch):
    run = identity_run(tmp_path)
    _below_a_file(tmp_path)
    one_line_refusal(cli("export", run, tmp_path / "afile" / "m.pt2"), "afile' is a file")
    monkeypatch.setattr(atomic, "writable", lambda f: False)
    one_line_refusal(cli("export", run, tmp_path / "m.pt2"), "cannot write in the folder")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_folder_for_real(tmp_path, like):
    with pytest.raises(OutputError, match="cannot write in the folder"):
        writer.prepare(_read_only(tmp_path) / "p.zarr", like)


def _scalar_zero(path: Path, n_samples: int) -> None:
    """Bytes 71-72 of every trace header set to 0 (SEG-Y: 0 means 1)."""
    data = bytearray(path.read_bytes())
    for start in range(3600, len(data), 240 + 4 * n_samples):
        data[start + 70:start + 72] = b"\x00\x00"
    path.write_bytes(bytes(data))


@pytest.mark.slow
def test_convert_to_mdio_reads_coordinate_scalar_zero_as_one(tmp_path, cli, monkeypatch):
    monkeypatch.setenv("MDIO__IMPORT__CPU_COUNT", "1")
    survey = segyfactory.write_segy(tmp_path / "cube.sgy", ilines=range(1, 4), xlines=range(20, 24), n_samples=8)
    _scalar_zero(survey.path, 8)
    assert cli("convert", survey.path, tmp_path / "cube.mdio").exit_code == 0
    np.testing.assert_array_equal(open_grid(tmp_path / "cube.mdio").read((slice(0, 3), slice(0, 4), slice(0, 8)))[0],
                                  survey.values)
    cdp_x = zarr.open_group(tmp_path / "cube.mdio")["cdp_x"][:]
    assert cdp_x[1, 0] == pytest.approx((1000 + 25.0) * 100)  # scalar 1: the stored integer, unscaled


def test_what_mdio_raises_is_one_line(tmp_path, cli, monkeypatch):
    survey = segyfactory.write_segy(tmp_path / "cube.sgy", ilines=range(1, 4), xlines=range(20, 24), n_samples=8)

    def fails(spec, template, src, dst, overwrite=False):
        Path(dst).mkdir()
        raise ValueError("Invalid coordinate scalar: 7 for file revision 1.0.")

    monkeypatch.setattr(mdio, "segy_to_mdio", fails)
    one_line_refusal(cli("convert", survey.path, tmp_path / "cube.mdio"), "cube.sgy: mdio cannot convert it",
                     "Invalid coordinate scalar: 7")
    assert os.listdir(tmp_path) == ["cube.sgy"]  # its temporary folder is removed


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_killed_conversion_leaves_a_folder_readers_refuse_and_the_next_write_cleans(tmp_path, cli, monkeypatch):
    survey = segyfactory.write_segy(tmp_path / "big.sgy", ilines=range(1, 4), xlines=range(20, 24), n_samples=8)
    seen = {}

    def killed(spec, template, src, dst, overwrite=False):  # what mdio has written when kill -9 comes
        seen["tmp"] = Path(dst)
        zarr.create_array(dst, data=np.full((3, 4, 8), np.nan, "f4"))
        raise KeyboardInterrupt  # the except clause would clean up: copy what is left first

    monkeypatch.setattr(mdio, "segy_to_mdio", killed)
    with pytest.raises(KeyboardInterrupt):
        from geocnn.grids.convert import convert
        monkeypatch.setattr(shutil, "rmtree", lambda *a, **k: None)  # as if killed: nothing removed
        convert(survey.path, tmp_path / "big.mdio")
    monkeypatch.undo()
    tmp = seen["tmp"]
    assert tmp.parent == tmp_path and tmp.exists() and not (tmp_path / "big.mdio").exists()
    assert atomic.is_temp(tmp) and f"-{os.getpid()}-" in tmp.name  # its writer's process: never cleaned while alive
    one_line_refusal(cli("inspect", tmp), "the output is incomplete")
    stale = tmp.with_name(tmp.name.replace(f"-{os.getpid()}-", f"-{dead_pid()}-"))
    tmp.rename(stale)
    with pytest.raises(DataError, match="incomplete"):
        open_grid(InputSpec(str(stale)))
    writer.write_array(tmp_path / "other.zarr", open_grid(survey.path), open_grid(survey.path).read(
        (slice(0, 3), slice(0, 4), slice(0, 8)))[0])
    assert sorted(os.listdir(tmp_path)) == ["big.sgy", "other.zarr"]  # the dead process's folder is gone
