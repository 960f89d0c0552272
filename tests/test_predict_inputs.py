"""``predict``'s side inputs: a ``--mask`` header is checked against the grid before anything is read,
and ``--axes`` maps onto distinct axes; every refusal is one line."""

from __future__ import annotations

import io
import itertools
import random
import tracemalloc
from types import SimpleNamespace

import numpy as np
import pytest

from geocnn.cli.predict import parse_axes
from geocnn.errors import ConfigError, DataError
from geocnn.predict.fill import read_mask
from geocnn.predict.trained import patch_axes_on
from tests import trainkit

SHAPE = (4, 5)  # the grid's trace positions
MISSING = np.arange(20).reshape(SHAPE) % 3 == 0


def npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


def declared(header: dict, values: bytes) -> bytes:
    """A .npy file whose header says ``header`` (whatever the values), followed by ``values``."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, header)
    return buf.getvalue() + values


GOOD = npy(MISSING)
HEADER_END = GOOD.index(b"\n") + 1

# (name, file bytes, the message, or None when the mask reads back as MISSING)
CASES = [
    ("bool", GOOD, None),
    ("uint8 0/1", npy(MISSING.astype(np.uint8)), None),
    ("float 0/1", npy(MISSING.astype(np.float32)), None),
    ("fortran order", npy(np.asfortranarray(MISSING)), None),
    ("big-endian int", npy(MISSING.astype(">i4")), None),
    ("wrong shape", npy(MISSING.T), "the mask has shape (5, 4) but the grid has (4, 5) trace positions"),
    ("one axis", npy(MISSING.ravel()), "the mask has shape (20,) but the grid has (4, 5) trace positions"),
    ("1e10 booleans declared in 1 kB", declared({"descr": "|b1", "fortran_order": False, "shape": (100_000, 100_000)},
                                                bytes(1000)),
     "the mask has shape (100000, 100000) but the grid has (4, 5) trace positions"),
    ("huge dims", declared({"descr": "|b1", "fortran_order": False, "shape": (2 ** 62, 2 ** 62)}, b""),
     "the mask has shape (4611686018427387904, 4611686018427387904)"),
    ("complex", npy(MISSING.astype(np.complex64)), "the mask holds complex64 values"),
    ("text", npy(MISSING.astype("U1")), "the mask holds <U1 values"),
    ("bytes", npy(MISSING.astype("S1")), "the mask holds |S1 values"),
    ("object", declared({"descr": "|O", "fortran_order": False, "shape": SHAPE}, bytes(160)),
     "the mask holds object values"),
    ("records", npy(np.zeros(SHAPE, [("a", "u1")])), "the mask holds [('a', 'u1')] values"),
    ("dates", npy(np.zeros(SHAPE, "datetime64[s]")), "the mask holds datetime64[s] values"),
    ("truncated values", GOOD[:-3], "the mask file is truncated: 17 bytes of values, its header declares 20"),
    ("no values", GOOD[:HEADER_END], "the mask file is truncated: 0 bytes of values, its header declares 20"),
    ("trailing bytes", GOOD + b"\0\0", "the mask file is longer than its header says: 22 bytes of values"),
    ("truncated header", GOOD[:40], "not a readable .npy file"),
    ("empty", b"", "not a readable .npy file"),
    ("not npy", b"PK\x03\x04 a zip, not a .npy", "not a readable .npy file"),
    ("header not a dict", GOOD[:10] + b"[1, 2, 3]".ljust(HEADER_END - 11) + b"\n" + GOOD[HEADER_END:],
     "not a readable .npy file"),
    ("header missing shape", declared({"descr": "|b1", "fortran_order": False, "shape": SHAPE}, bytes(20))
     .replace(b"'shape'", b"'shapf'"), "not a readable .npy file"),
    ("values other than 0/1", npy(MISSING.astype(np.int8) * 2), "the mask holds values other than 0/1"),
    ("NaN", npy(np.where(MISSING, np.nan, 0).astype(np.float32)), "the mask holds values other than 0/1"),
]


@pytest.mark.parametrize("name,data,message", CASES, ids=[c[0] for c in CASES])
def test_mask_header_forms(tmp_path, name, data, message):
    path = tmp_path / "mask.npy"
    path.write_bytes(data)
    tracemalloc.start()
    try:
        if message is None:
            mask = read_mask(path, SHAPE)
            assert mask.dtype == bool and np.array_equal(mask, MISSING)
        else:
            with pytest.raises(DataError) as info:
                read_mask(path, SHAPE)
            assert message in info.value.message and info.value.where == str(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20, f"{peak:,} bytes allocated"  # the declared size never allocates


def test_a_folder_or_missing_mask_is_one_error(tmp_path):
    for path in (tmp_path, tmp_path / "absent.npy"):
        with pytest.raises(DataError, match="not a readable .npy file"):
            read_mask(path, SHAPE)


def test_every_truncation_and_header_damage_is_one_error_family(tmp_path):
    """Generated damage: the file cut at every length, and 400 random byte changes in the header.
    Each is a DataError (a mask of the grid's shape, were one to read), never another exception."""
    path = tmp_path / "mask.npy"
    for n in range(len(GOOD)):
        path.write_bytes(GOOD[:n])
        with pytest.raises(DataError):
            read_mask(path, SHAPE)
    rng = random.Random(0)
    outcomes = {"read": 0, "refused": 0}
    for _ in range(400):
        data = bytearray(GOOD)
        for _ in range(rng.randint(1, 3)):
            data[rng.randrange(HEADER_END)] = rng.randrange(256)
        path.write_bytes(bytes(data))
        try:
            mask = read_mask(path, SHAPE)
        except DataError:
            outcomes["refused"] += 1
        else:
            assert mask.shape == SHAPE and mask.dtype == bool
            outcomes["read"] += 1
    assert outcomes["refused"] == 400  # numpy also refuses changed padding; nothing else escapes


@pytest.fixture(scope="module")
def reconstruction_run(tmp_path_factory):
    """A reconstruct_traces run of one step (what --mask is for) beside its noisy.npy (16 × 12 × 48)."""
    from geocnn.config import load_config
    from geocnn.train import train

    folder = tmp_path_factory.mktemp("reconstruct")
    data = trainkit.write_regression(folder)
    path = trainkit.write_config(folder, "reconstruct_traces", {"inputs": data["inputs"]},
                                 trainkit.SMALL_2D % {"out": 1}, {"max_steps": 1}, patch=[8, 16], section="inline",
                                 mask={"ratio": 0.2})
    return train(load_config(path), folder / "run")


def test_cli_mask_with_a_huge_declared_shape_is_one_line(reconstruction_run, tmp_path, cli):
    """The example: a 1 kB .npy whose header declares 1e10 booleans."""
    bomb = tmp_path / "bomb.npy"
    bomb.write_bytes(declared({"descr": "|b1", "fortran_order": False, "shape": (100_000, 100_000)}, bytes(1000)))
    result = cli("predict", reconstruction_run, reconstruction_run.parent / "noisy.npy", "--out", tmp_path / "x.npy",
                 "--mask", bomb)
    assert result.exit_code == 2 and "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: {bomb}: the mask has shape (100000, 100000) but the grid has (16, 12) trace positions "
                      "— give one value per trace (all grid axes but the sample axis)"]
    assert not (tmp_path / "x.npy").exists()


# ----------------------------------------------------------------------------- --axes

AXES_ERRORS = [
    ("sample=crossline", "--axes sample=crossline: the model's patch axes must be distinct input axes, but input axis "
                         "'sample' would be read as both crossline and sample — map another input axis onto sample "
                         "too, or leave --axes out"),
    ("crossline=sample", "input axis 'crossline' would be read as both crossline and sample — map another input "
                         "axis onto crossline too"),
    ("inline=crossline,crossline=crossline", "--axes maps inline and crossline onto the one training axis "
                                             "'crossline'"),
    ("inline=crossline,inline=sample", "--axes names input axis 'inline' twice ('inline=crossline,inline=sample')"),
    ("depth=crossline", "--axes depth=crossline: 'depth' is not an axis of the input (inline, crossline, sample)"),
    ("inline=depth", "--axes inline=depth: 'depth' is not one of the model's patch axes (crossline, sample)"),
    ("inline", "--axes must be input=training axis pairs separated by commas; got 'inline'"),
    ("inline=", "--axes must be input=training axis pairs"),
    ("=crossline", "--axes must be input=training axis pairs"),
    ("a=b=c", "--axes must be input=training axis pairs"),
]


@pytest.mark.parametrize("axes,message", AXES_ERRORS, ids=[a for a, _ in AXES_ERRORS])
def test_axes_refusals_are_one_line(identity_run, tmp_path, cli, axes, message):
    run = identity_run(tmp_path)
    result = cli("predict", run, tmp_path / "noisy.npy", "--out", tmp_path / "x.npy", "--axes", axes)
    assert result.exit_code == 2, result.stdout
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in result.stderr
    assert message in errors[0]
    assert not (tmp_path / "x.npy").exists()


def test_axes_mapping_onto_another_axis_predicts(identity_run, tmp_path, cli):
    run = identity_run(tmp_path)
    result = cli("predict", run, tmp_path / "noisy.npy", "--out", tmp_path / "x.npy", "--axes", "inline=crossline")
    assert result.exit_code == 0, result.stderr
    noisy = np.load(tmp_path / "noisy.npy")
    np.testing.assert_allclose(np.load(tmp_path / "x.npy"), noisy, rtol=1e-5, atol=1e-5)  # the identity, along inline


def test_axes_rule_over_generated_mappings():
    """Every mapping of 1-3 pairs over input axes (and an unknown name) onto training axes (and an
    unknown name): accepted exactly when each name is known, each input axis is named once, no two
    map onto one training axis, and the resulting patch axes are distinct input axes."""
    grid = SimpleNamespace(axes=("inline", "crossline", "sample"))
    trained = SimpleNamespace(patch_axes=("crossline", "sample"))
    pairs = list(itertools.product(("inline", "crossline", "sample", "depth"), ("crossline", "sample", "time")))
    seen = 0
    for n in (1, 2, 3):
        for chosen in itertools.combinations(pairs, n):
            text = ",".join(f"{g}={m}" for g, m in chosen)
            given = [g for g, _ in chosen]
            meant = [m for _, m in chosen]
            mapping = dict(chosen)
            patch = tuple({m: g for g, m in chosen}.get(a, a) for a in trained.patch_axes)
            ok = (len(set(given)) == len(given) and len(set(meant)) == len(meant)
                  and all(g in grid.axes for g in given) and all(m in trained.patch_axes for m in meant)
                  and len(set(patch)) == len(patch))
            try:
                result = patch_axes_on(trained, grid, parse_axes(text))
            except ConfigError as exc:
                assert not ok, (text, exc.message)
                assert "\n" not in str(exc)
            else:
                assert ok and result == patch, text
                assert mapping == parse_axes(text)
            seen += 1
    assert seen == 12 + 66 + 220
