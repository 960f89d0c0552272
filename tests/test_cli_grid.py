"""``geocnn inspect`` / ``geocnn convert`` from the command line: tables, JSON, bad inputs (exit 2)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.segyfactory import set_binary_word, truncate, write_segy, write_shot_gather


@pytest.fixture
def cube(tmp_path):
    return write_segy(tmp_path / "cube.sgy", range(10, 15), range(100, 108, 2), 25, format=1, interval_us=2000)


def test_inspect_prints_geometry_ranges_and_stats(cli, cube):
    r = cli("inspect", cube.path)
    assert r.exit_code == 0, r.output
    out = r.stdout
    for text in ["segy (post-stack)", "5 inline × 4 crossline × 25 sample", "ibm-float32, big-endian",
                 "10 – 14 step 1 (5)", "100 – 106 step 2 (4)", "2 ms", "inline 25 m, crossline 12.5 m",
                 "(20 traces)"]:
        assert text in out, text


def test_inspect_json_schema(cli, cube, tmp_path):
    r = cli("inspect", cube.path, "--json", tmp_path / "info.json")
    assert r.exit_code == 0
    info = json.loads((tmp_path / "info.json").read_text())
    assert {k: info[k] for k in ("path", "format", "shape", "axes", "sample_interval_us", "n_traces",
                                 "sample_format", "endian")} == {
        "path": str(cube.path), "format": "segy", "shape": [5, 4, 25], "axes": ["inline", "crossline", "sample"],
        "sample_interval_us": 2000.0, "n_traces": 20, "sample_format": "ibm-float32", "endian": "big"}
    assert info["xlines"] == {"first": 100, "last": 106, "step": 2, "count": 4}
    assert info["stats"]["traces_sampled"] == 20
    assert info["stats"]["min"] == pytest.approx(10 + 1.0, abs=1e-4)  # inline 10, crossline 100, sample 0


def test_inspect_several_files_says_whether_they_stack(cli, cube, tmp_path):
    other = write_segy(tmp_path / "other.sgy", range(10, 15), range(100, 110, 2), 25)
    np.save(tmp_path / "attr.npy", np.zeros((5, 4, 25), np.float32))
    r = cli("inspect", cube.path, tmp_path / "attr.npy", other.path, "--json", tmp_path / "all.json")
    assert r.exit_code == 0
    assert "stackable │ yes" in r.stdout.replace("  ", "") or "yes" in r.stdout
    infos = json.loads((tmp_path / "all.json").read_text())
    assert [i["path"] for i in infos] == [str(cube.path), str(tmp_path / "attr.npy"), str(other.path)]
    assert [i["stackable"] for i in infos] == [True, True, False]
    assert infos[1]["format"] == "npy" and infos[1]["endian"] == "little"
    assert "its shape 5 inline × 5 crossline" in infos[2]["stack_problem"]


def test_inspect_stack_describes_the_stacked_grid(cli, cube, tmp_path):
    np.save(tmp_path / "attr.npy", np.zeros((5, 4, 25), np.float32))
    r = cli("inspect", cube.path, tmp_path / "attr.npy", "--stack", "--json", tmp_path / "s.json")
    assert r.exit_code == 0
    info = json.loads((tmp_path / "s.json").read_text())
    assert info["channels"] == 2 and info["channel_names"] == ["cube", "attr"]


def test_inspect_prestack_with_offsets(cli, tmp_path):
    s = write_segy(tmp_path / "ps.sgy", range(1, 3), range(1, 3), 5, offsets=[5, 15, 25])
    r = cli("inspect", s.path)
    assert "5 – 25 step 10 (3)" in r.stdout and "2 inline × 2 crossline × 3 offset × 5 sample" in r.stdout


def test_convert_round_trip_from_the_command_line(cli, cube, tmp_path):
    r = cli("convert", cube.path, tmp_path / "c.npy")
    assert r.exit_code == 0, r.output
    assert "wrote" in r.stdout and "5 inline × 4 crossline × 25 sample" in r.stdout
    r = cli("convert", tmp_path / "c.npy", tmp_path / "c.sgy", "--template", cube.path)
    assert r.exit_code == 0, r.output
    assert (tmp_path / "c.sgy").read_bytes()[3600:3840] == cube.path.read_bytes()[3600:3840]
    r = cli("convert", cube.path, tmp_path / "c.npy")
    assert r.exit_code == 2 and "c.npy: output already exists" in r.stderr
    assert cli("convert", cube.path, tmp_path / "c.npy", "--force").exit_code == 0


def test_inspect_and_convert_read_files_with_the_same_options(cli, cube, tmp_path):
    from typer.main import get_command

    from geocnn.cli import app

    shared = ["--iline", "--xline", "--offset", "--endian", "--structured", "--axes", "--key", "--format"]
    commands = get_command(app).commands

    def options(name: str) -> dict:
        return {p.opts[0]: (p.default, p.help) for p in commands[name].params if p.opts[0] in shared}

    assert list(options("inspect")) == shared and options("inspect") == options("convert")
    assert options("convert")["--iline"] == (189, "SEG-Y trace header byte of the inline number.")
    for command in (["inspect", cube.path], ["convert", cube.path, tmp_path / "x.npy"]):
        r = cli(*command, "--structured", "maybe")  # checked the same way by both, before any work
        assert r.exit_code == 2 and "--structured must be one of auto, yes, no, got 'maybe'" in r.stderr
    assert not (tmp_path / "x.npy").exists()
    r = cli("convert", cube.path, tmp_path / "x.npy", "--iline", "189", "--xline", "193", "--endian", "big")
    assert r.exit_code == 0 and np.load(tmp_path / "x.npy").shape == (5, 4, 25)


def test_unstructured_fallback_is_said_not_failed(cli, tmp_path):
    s = write_shot_gather(tmp_path / "shots.sgy")
    r = cli("inspect", s.path)
    assert r.exit_code == 0
    assert "unstructured" in r.stdout and "24 trace × 30 sample" in r.stdout
    assert "reading it as unstructured" in r.stderr.replace("\n", " ")


def _bad_inputs(tmp_path):
    """(name, command arguments, text the error must contain) for every bad input."""
    good = write_segy(tmp_path / "good.sgy", range(1, 4), range(1, 4), 20)
    text = tmp_path / "notes.sgy"
    text.write_text("not seismic\n" * 400)  # long enough to have 'headers'
    short = tmp_path / "short.sgy"
    short.write_text("tiny")
    truncated = truncate(good.path, tmp_path / "truncated.sgy", good.path.stat().st_size - 100)
    empty = truncate(good.path, tmp_path / "empty.sgy", 3600)
    wrong_ns = truncate(good.path, tmp_path / "wrongns.sgy", good.path.stat().st_size)
    set_binary_word(wrong_ns, 3221, 21)
    other = write_segy(tmp_path / "other.sgy", range(1, 4), range(2, 5), 20)
    np.save(tmp_path / "four.npy", np.zeros((2, 2, 2, 2)))
    np.save(tmp_path / "cube.npy", np.zeros((3, 3, 20)))
    (tmp_path / "volume.dat").write_bytes(b"\0" * 5000)
    return [
        ("missing", ["inspect", tmp_path / "missing.sgy"], "file not found"),
        ("not segy", ["inspect", text], "not a SEG-Y file: the binary header's sample format code"),
        ("too short", ["inspect", short], "not a SEG-Y file: 4 bytes"),
        ("truncated", ["inspect", truncated], "does not fit whole traces"),
        ("no traces", ["inspect", empty], "no traces"),
        ("wrong sample count", ["inspect", wrong_ns], "21 samples of 4 bytes"),
        ("mismatched channels", ["inspect", good.path, other.path, "--stack"], "its crossline numbers 2–4"),
        ("numpy ndim", ["inspect", tmp_path / "four.npy"], "array has 4 axes"),
        ("numpy axes", ["inspect", tmp_path / "cube.npy", "--axes", "inline,sample"], "but axes names 2"),
        ("unknown format", ["inspect", tmp_path / "volume.dat"], "cannot tell the file format"),
        ("convert no template", ["convert", tmp_path / "cube.npy", tmp_path / "o.sgy"], "takes them from a template"),
        ("convert bad template", ["convert", tmp_path / "cube.npy", tmp_path / "o.sgy", "--template", truncated],
         "does not fit whole traces"),
        ("bad endian", ["inspect", good.path, "--endian", "middle"], "--endian must be one of"),
    ]


def test_every_bad_input_is_one_line_exit_2_naming_the_file(cli, tmp_path):
    for name, args, text in _bad_inputs(tmp_path):
        r = cli(*args)
        assert r.exit_code == 2, (name, r.output)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (name, r.stderr)
        assert text in lines[0], (name, lines[0])
        assert "Traceback" not in r.output
        if name != "bad endian":
            named = [str(a) for a in args if "/" in str(a)]
            culprit = named[-1] if name.startswith(("mismatched", "convert bad")) else named[0]
            assert culprit in lines[0], (name, lines[0])
