"""Any damaged or bad file: a DataError naming it, exit 2 through the CLI, one line, no traceback.

Examples first (each failed before its fix), then the rule over damaged files: truncated and
bit-flipped SEG-Y and ``.npy`` through every command that reads them.
"""

from __future__ import annotations

import numpy as np
import pytest

from geocnn.errors import DataError
from geocnn.grids import checks
from geocnn.grids.grid import open_grid
from geocnn.grids.labels import read_labels
from tests import trainkit
from tests.segyfactory import flip_bytes, truncate, with_trace_extensions, write_segy


def one_line_naming(result, name: str) -> str:
    """The CLI's stderr, checked: exit 2, one ``error:`` line naming the file, no traceback."""
    err = result.stderr
    assert result.exit_code == 2, (result.exit_code, result.output)
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert name in err and "Traceback" not in err and "\x1b" not in err, err
    return err


# --------------------------------------------------------------------------------------------
# Label files
# --------------------------------------------------------------------------------------------

def traces_config(tmp_path, labels: str = "labels.csv"):
    data = trainkit.write_traces(tmp_path)
    return trainkit.write_config(tmp_path, "classification", {**data, "labels": labels},
                                 trainkit.SMALL_1D_CLASSIFIER, patch=[64],
                                 split={"axis": "trace", "fraction": 0.25})


def test_empty_labels_npy_is_exit_2_not_aborted(tmp_path, cli):
    path = traces_config(tmp_path, "labels.npy")
    (tmp_path / "labels.npy").write_bytes(b"")  # np.load raises EOFError, which click calls "Aborted."
    err = one_line_naming(cli("train", path, "--out", tmp_path / "run"), "labels.npy")
    assert "not a readable .npy file" in err


def test_binary_bytes_in_a_labels_csv(tmp_path, cli):
    path = traces_config(tmp_path)
    (tmp_path / "labels.csv").write_bytes(b"trace,label\n0,\xff\xfe\x81\x00\n")
    err = one_line_naming(cli("train", path, "--out", tmp_path / "run"), "labels.csv")
    assert "not a text CSV file (byte 14 is not UTF-8 text)" in err


def test_complex_labels_and_inputs_are_refused(tmp_path, cli):
    np.save(tmp_path / "labels.npy", np.arange(4) + 1j)
    with pytest.raises(DataError, match=r"labels.npy: holds complex values \(complex128\)"):
        read_labels(tmp_path / "labels.npy")
    np.save(tmp_path / "waves.npy", np.ones((4, 8), np.complex64))
    err = one_line_naming(cli("inspect", tmp_path / "waves.npy"), "waves.npy")
    assert "holds complex values (complex64)" in err and "two channels" in err


def test_complex_input_does_not_train(tmp_path, cli):
    path = traces_config(tmp_path)
    x = np.load(tmp_path / "traces.npy")
    np.save(tmp_path / "traces.npy", x + 0.5j * x)  # before: trained on the real part, silently
    one_line_naming(cli("train", path, "--out", tmp_path / "run"), "traces.npy")


# --------------------------------------------------------------------------------------------
# NaN / inf: every value, not a sample
# --------------------------------------------------------------------------------------------

def test_one_bad_value_among_1200_traces_is_found_with_its_position(tmp_path, cli):
    data = trainkit.write_regression(tmp_path, shape=(40, 30, 16))
    noisy = np.load(tmp_path / "noisy.npy")
    noisy[37, 21, 3] = np.inf  # one value in one trace; a 500-trace sample missed it
    np.save(tmp_path / "noisy.npy", noisy)
    path = trainkit.write_config(tmp_path, "regression", data, trainkit.SMALL_2D % {"out": 1}, patch=[8, 16],
                                 section="inline")
    err = one_line_naming(cli("train", path, "--out", tmp_path / "run"), "noisy.npy")
    assert ("inputs contain NaN or inf: 1 value(s), the first at inline index 37, crossline index 21, "
            "sample index 3") in err


def test_target_values_are_checked_too(tmp_path):
    data = trainkit.write_regression(tmp_path)
    clean = np.load(tmp_path / "clean.npy")
    clean[2, 3, 4:6] = np.nan
    np.save(tmp_path / "clean.npy", clean)
    with pytest.raises(DataError, match=r"clean.npy: target contain NaN or inf: 2 value\(s\), the first at "
                                        r"inline index 2, crossline index 3, sample index 4"):
        checks.check_finite(open_grid(tmp_path / data["target"]), "target")


def test_segy_positions_are_survey_numbers_and_blocks_are_bounded(tmp_path):
    s = write_segy(tmp_path / "cube.sgy", range(1, 6), range(20, 25), 50, format=5)
    values = s.values.copy()
    values[3, 1, 7] = values[4, 4, 0] = np.nan
    write_segy(s.path, range(1, 6), range(20, 25), 50, format=5, values=values)
    source = open_grid(s.path).inputs[0]
    whole = checks.scan(source)
    one_row = checks.scan(source, block_values=5 * 50)  # one inline (5 traces × 50 samples) at a time
    assert whole == one_row == {"bad": 2, "first": [3, 1, 7]}
    with pytest.raises(DataError, match="the first at inline 4, crossline 21, sample index 7"):
        checks.check_finite(open_grid(s.path))


def test_the_verdict_is_remembered_per_file_until_it_changes(tmp_path, monkeypatch):
    np.save(tmp_path / "a.npy", np.zeros((6, 10), np.float32))
    scans = []
    real = checks.scan
    monkeypatch.setattr(checks, "scan", lambda source: scans.append(source.path) or real(source))
    checks.check_finite(open_grid(tmp_path / "a.npy"))
    checks.check_finite(open_grid(tmp_path / "a.npy"))
    assert len(scans) == 1
    np.save(tmp_path / "a.npy", np.full((6, 10), np.nan, np.float32))  # new size/mtime: a new key
    with pytest.raises(DataError, match="60 value"):
        checks.check_finite(open_grid(tmp_path / "a.npy"))
    assert len(scans) == 2


def test_integer_data_is_not_read(tmp_path, monkeypatch):
    np.save(tmp_path / "ints.npy", np.arange(12, dtype=np.int16).reshape(3, 4))
    monkeypatch.setattr(checks, "scan", lambda source: pytest.fail("integers cannot be NaN"))
    checks.check_finite(open_grid(tmp_path / "ints.npy"))


# --------------------------------------------------------------------------------------------
# Messages: rev 2 files, suggestions that exist, no escape codes
# --------------------------------------------------------------------------------------------

def test_rev2_trace_header_extensions_are_not_called_truncated(tmp_path, cli):
    s = write_segy(tmp_path / "cube.sgy", range(1, 4), range(1, 4), 30)
    ext = with_trace_extensions(s.path, tmp_path / "rev2.sgy", 30)
    err = one_line_naming(cli("inspect", ext), "rev2.sgy")
    assert "SEG-Y rev 2 file with up to 1 additional 240-byte trace header(s) per trace" in err
    assert "truncated" not in err
    err = one_line_naming(cli("inspect", truncate(s.path, tmp_path / "cut.sgy", 3600 + 2 * 360 + 100)), "cut.sgy")
    assert "truncated" in err  # a real truncation still says so


def test_su_files_and_unknown_suffixes_suggest_what_exists(tmp_path, cli):
    s = write_segy(tmp_path / "cube.sgy", range(1, 4), range(1, 4), 30)
    (tmp_path / "shots.su").write_bytes(b"\0" * 480)
    err = one_line_naming(cli("inspect", tmp_path / "shots.su"), "shots.su")
    assert "Seismic Unix" in err and "segywrite tape=FILE.sgy" in err and "format:" not in err
    dat = tmp_path / "cube.dat"
    dat.write_bytes(s.path.read_bytes())
    err = one_line_naming(cli("inspect", dat), "cube.dat")
    assert "--format segy|npy|npz|mdio|zarr|tiff|seismo on the command line" in err
    assert cli("inspect", dat, "--format", "segy").exit_code == 0  # the suggested option exists
    r = cli("convert", dat, tmp_path / "cube.npy", "--format", "segy")
    assert r.exit_code == 0 and np.load(tmp_path / "cube.npy").shape == (3, 3, 30)


def test_escape_codes_in_names_are_shown_escaped(tmp_path, cli):
    err = one_line_naming(cli("inspect", tmp_path / "\x1b[31mred.sgy"), "red.sgy")
    assert "\\x1b[31mred.sgy: file not found" in err


def test_inspect_json_is_not_overwritten_without_force(tmp_path, cli):
    s = write_segy(tmp_path / "cube.sgy", range(1, 4), range(1, 4), 30)
    out = tmp_path / "info.json"
    out.write_text("keep me")
    err = one_line_naming(cli("inspect", s.path, "--json", out), "info.json")
    assert "output already exists" in err and "--force" in err and out.read_text() == "keep me"
    assert cli("inspect", s.path, "--json", out, "--force").exit_code == 0
    assert '"shape": [' in out.read_text()


# --------------------------------------------------------------------------------------------
# The rule, over damaged files
# --------------------------------------------------------------------------------------------

def damaged_segy(tmp_path, seed: int = 0):
    """Truncations (always damaged) and byte flips (often harmless) of a small IBM cube."""
    s = write_segy(tmp_path / "good.sgy", range(1, 5), range(10, 14), 20, format=1)
    size = s.path.stat().st_size  # 3600 + 16 × (240 + 80)
    cut = [1, 3200, 3599, 3600, 3600 + 100, 3600 + 321, size - 1]  # a cut between traces is a valid file
    truncated = [truncate(s.path, tmp_path / f"cut{n}.sgy", n) for n in cut]
    rng = np.random.default_rng(seed)
    headers = [3212, 3216, 3220, 3224, 3500, 3504, 3600 + 188, 3600 + 192, 3600 + 114]  # counts, format, numbers
    positions = [[p] for p in headers] + [list(rng.integers(0, size, 8)) for _ in range(12)]
    flipped = [flip_bytes(s.path, tmp_path / f"flip{i}.sgy", p) for i, p in enumerate(positions)]
    return truncated, flipped


def damaged_npy(tmp_path, seed: int = 0):
    np.save(tmp_path / "good.npy", np.arange(6 * 7 * 8, dtype=np.float32).reshape(6, 7, 8))
    good = tmp_path / "good.npy"
    size = good.stat().st_size
    truncated = [truncate(good, tmp_path / f"cut{n}.npy", n) for n in (0, 5, 60, 127, 128, size - 4)]
    rng = np.random.default_rng(seed)
    positions = [[p] for p in (0, 6, 8, 10, 20, 30, 50, 70, 126)] + [list(rng.integers(0, 128, 3)) for _ in range(8)]
    flipped = [flip_bytes(good, tmp_path / f"flip{i}.npy", p) for i, p in enumerate(positions)]
    return truncated, flipped


def commands(path, tmp_path):
    out = tmp_path / f"{path.stem}-out.npy" if path.suffix == ".sgy" else tmp_path / f"{path.stem}-out.sgy"
    extra = [] if path.suffix == ".sgy" else ["--template", tmp_path / "template.sgy"]
    return [["inspect", path], ["convert", path, out, *extra, "--force"]]


@pytest.mark.parametrize("make", [damaged_segy, damaged_npy])
def test_every_damaged_file_is_one_line_exit_2_or_read(tmp_path, cli, make):
    write_segy(tmp_path / "template.sgy", range(1, 7), range(1, 8), 8)
    truncated, flipped = make(tmp_path)
    for path in truncated + flipped:
        for args in commands(path, tmp_path):
            r = cli(*args)
            if path in truncated:
                one_line_naming(r, path.name)
            else:  # a flipped sample is still a file; a flipped header word is an error naming it
                assert r.exit_code in (0, 2), (args, r.output)
                if r.exit_code == 2:
                    one_line_naming(r, path.name)
        try:  # the grid open path training and prediction use
            grid = open_grid(path, random_access=True)
            grid.read(tuple(slice(0, n) for n in grid.shape))
        except DataError as exc:
            assert path.name in exc.message and "\n" not in exc.message
        else:
            assert path not in truncated, path


def test_every_damaged_label_or_npz_file_is_a_data_error_naming_it(tmp_path, cli):
    np.save(tmp_path / "labels.npy", np.arange(20) % 3)
    (tmp_path / "labels.csv").write_text("trace,label\n" + "".join(f"{i},{i % 3}\n" for i in range(20)))
    np.savez(tmp_path / "pair.npz", a=np.ones((4, 5), np.float32))
    rng = np.random.default_rng(1)
    for good in ("labels.npy", "labels.csv", "pair.npz"):
        src = tmp_path / good
        size = src.stat().st_size
        damaged = [truncate(src, tmp_path / f"cut{n}-{good}", n) for n in (0, 3, size // 2, size - 1)]
        damaged += [flip_bytes(src, tmp_path / f"flip{i}-{good}", rng.integers(0, size, 4)) for i in range(10)]
        for path in damaged:
            if good == "pair.npz":
                r = cli("inspect", path)
                assert r.exit_code in (0, 2), r.output
                if r.exit_code == 2:
                    one_line_naming(r, path.name)
                continue
            try:
                read_labels(path)
            except DataError as exc:
                assert path.name in exc.message and "\n" not in exc.message
