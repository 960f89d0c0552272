"""``geocnn inspect`` on real files: textual and binary headers, the header-byte scan and its grid
suggestions, several files with a bad one among them, label files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from geocnn.grids import headers
from geocnn.grids.inspect import inspect_inputs
from tests.segyfactory import write_segy, write_shot_gather


@pytest.fixture
def cube(tmp_path):
    return write_segy(tmp_path / "cube.sgy", range(10, 15), range(100, 108, 2), 25, format=1, interval_us=2000)


def test_text_shows_the_textual_header(cli, cube, tmp_path):
    r = cli("inspect", cube.path, "--text", "--json", tmp_path / "i.json")
    assert r.exit_code == 0, r.output
    assert "C 3 Written by libsegyio (python)" in r.stdout
    lines = json.loads((tmp_path / "i.json").read_text())["textual_header"]
    assert len(lines) == 40 and lines[0].startswith("C 1 DATE") and lines[39].startswith("C40")
    assert "C 3 Written" not in cli("inspect", cube.path).stdout  # only on request


def test_binary_header_fields_that_matter(cli, cube, tmp_path):
    r = cli("inspect", cube.path, "--json", tmp_path / "i.json")
    b = json.loads((tmp_path / "i.json").read_text())["binary_header"]
    assert {k: b[k] for k in ("format", "samples", "interval_us", "extended_textual_headers",
                              "measurement_system", "measurement_name")} == {
        "format": 1, "samples": 25, "interval_us": 2000, "extended_textual_headers": 0,
        "measurement_system": 1, "measurement_name": "metres"}
    assert "format 1, 25 samples of 2000 µs" in r.stdout


def test_scan_says_which_fields_vary_and_how(cli, cube, tmp_path):
    r = cli("inspect", cube.path, "--scan", "--json", tmp_path / "i.json")
    assert r.exit_code == 0, r.output
    scan = json.loads((tmp_path / "i.json").read_text())["header_scan"]
    varying = {v["byte"]: v for v in scan["varying"]}
    assert varying[189] == {"byte": 189, "name": "INLINE_3D", "min": 10, "max": 14, "distinct": 5, "step": 1}
    assert varying[193] == {"byte": 193, "name": "CROSSLINE_3D", "min": 100, "max": 106, "distinct": 4, "step": 2}
    # CDP x in centimetres: (1000 + 25 m × inline index) × 100
    assert varying[181] == {"byte": 181, "name": "CDP_X", "min": 100_000, "max": 110_000, "distinct": 5,
                            "step": 2500}
    assert scan["traces_scanned"] == scan["traces"] == 20 and not scan["partial"]
    assert scan["constant"]["SourceGroupScalar"] == -100
    assert len(scan["constant"]) + len(scan["varying"]) == len(headers.TraceField.enums())
    assert "trace header fields that vary (all 20 traces" in r.stdout and "CROSSLINE_3D" in r.stdout


def test_no_geometry_means_a_scan_and_the_byte_pairs_that_grid_it(cli, tmp_path):
    s = write_shot_gather(tmp_path / "shots.sgy")  # 2 shots (byte 9) × 12 receivers (byte 13); 189/193 zero
    r = cli("inspect", s.path, "--json", tmp_path / "i.json")
    assert r.exit_code == 0
    info = json.loads((tmp_path / "i.json").read_text())
    assert info["kind"] == "unstructured" and "header_scan" in info
    # offsets (byte 37) follow the receivers, so they must come from a constant field (byte 1) instead
    assert info["grid_pairs"][0] == {"iline": 9, "xline": 13, "offset": 1, "shape": [2, 12], "fill": 1.0}
    assert "--iline 9 --xline 13 --offset 1 (2 × 12, 100% filled)" in r.stdout
    assert "would grid it: --iline 9 --xline 13 --offset 1" in " ".join(r.stderr.split())
    forced = cli("inspect", s.path, "--structured", "yes")  # the error message suggests them too
    assert forced.exit_code == 2 and "--iline 9 --xline 13 --offset 1" in forced.stderr
    gridded = cli("inspect", s.path, "--iline", "9", "--xline", "13", "--offset", "1", "--json", tmp_path / "g.json",
                  "--force")
    assert gridded.exit_code == 0  # the suggestion works
    g = json.loads((tmp_path / "g.json").read_text())
    assert g["kind"] == "post-stack" and g["shape"] == [2, 12, 30]


class HeadersOnly:
    """A segyio file stand-in with trace headers and no samples: a scan that read any would fail."""

    def __init__(self, columns: dict[int, list[int]]) -> None:
        self.columns = columns
        self.tracecount = len(next(iter(columns.values())))
        self.read = []

    def attributes(self, field: int):
        column = np.asarray(self.columns.get(field, [0] * self.tracecount))

        class Column:
            def __getitem__(_, index):
                self.read.append(len(range(*index.indices(self.tracecount))))
                return column[index]

        return Column()


def test_scan_reads_headers_only_and_at_most_the_traces_asked():
    f = HeadersOnly({9: [1, 1, 1, 2, 2, 2], 13: [1, 2, 3, 1, 2, 3], 5: [1, 2, 3, 4, 5, 6]})
    scan = headers.scan_headers(f, max_traces=4)
    assert scan.partial and scan.traces == 4 and max(f.read) == 4
    assert [(v.byte, v.distinct, v.step) for v in scan.varying] == [(5, 4, 1), (9, 2, 1), (13, 3, 1)]
    full = headers.scan_headers(f)
    # 2 × 3 positions, all filled; byte 5 counts traces, so it is no axis
    assert headers.grid_pairs(full) == [headers.GridPair(9, 13, (2, 3), 1.0)]


def test_grid_pairs_refuse_duplicates_and_empty_grids():
    dup = HeadersOnly({9: [1, 1, 2, 2], 13: [1, 1, 2, 2]})  # two traces at each position
    assert headers.grid_pairs(headers.scan_headers(dup)) == []
    assert "no pair of trace header fields" in headers.suggestion([])
    sparse = HeadersOnly({9: [1, 2, 3, 4, 5, 1], 13: [1, 2, 3, 4, 5, 2]})  # 6 traces on a 5 × 5 grid
    assert headers.grid_pairs(headers.scan_headers(sparse)) == []  # 6 of 25 positions: 24% < 25%


def test_several_files_one_bad_the_others_shown_exit_2_at_the_end(cli, cube, tmp_path):
    other = write_segy(tmp_path / "other.sgy", range(10, 15), range(100, 108, 2), 25, interval_us=2000)
    (tmp_path / "shots.su").write_bytes(b"\0" * 480)
    r = cli("inspect", cube.path, tmp_path / "missing.sgy", tmp_path / "shots.su", other.path,
            "--json", tmp_path / "all.json")
    assert r.exit_code == 2
    errors = r.stderr.strip().splitlines()
    assert len(errors) == 2 and errors[0].startswith(f"error: {tmp_path / 'missing.sgy'}: file not found")
    assert "shots.su" in errors[1] and "segywrite" in errors[1]
    assert str(cube.path) in r.stdout and str(other.path) in r.stdout
    infos = json.loads((tmp_path / "all.json").read_text())
    assert [("error" in i) for i in infos] == [False, True, True, False]
    assert infos[3]["stackable"] is True


def test_csv_labels_are_described(cli, tmp_path):
    (tmp_path / "labels.csv").write_text("trace,label\n0,2\n1,0\n2,2\n3,1\n")
    r = cli("inspect", tmp_path / "labels.csv", "--json", tmp_path / "l.json")
    assert r.exit_code == 0, r.output
    info = json.loads((tmp_path / "l.json").read_text())
    assert info == {"path": str(tmp_path / "labels.csv"), "format": "csv", "kind": "labels", "shape": [4],
                    "count": 4, "non_finite": 0, "min": 0.0, "max": 2.0, "classes": {"0": 1, "1": 1, "2": 2}}
    assert "0: 1, 1: 1, 2: 2" in r.stdout


def test_library_reports_a_bad_file_in_its_entry(cube, tmp_path):
    infos = inspect_inputs([cube.path, tmp_path / "nope.npy"])
    assert infos[0]["kind"] == "post-stack"
    assert infos[1] == {"path": str(tmp_path / "nope.npy"), "error": f"{tmp_path / 'nope.npy'}: file not found "
                                                                      "— check the path"}


# ----------------------------------------------------------------------------- issue 18 §6

class _File:
    """A file whose binary header reads as one segyio version or another reads it."""

    def __init__(self, fields: dict) -> None:
        self.bin = fields


@pytest.mark.parametrize("fields, expected", [
    ({3501: 1, 3502: 0}, "1.0"),  # segyio 1.9: byte 3501 alone (major), 3502 the minor
    ({3501: 2, 3502: 1}, "2.1"),
    ({3501: 0x0100, 3502: 0}, "1.0"),  # older segyio: both bytes as one number
    ({3501: 0, 3502: 0}, "0.0"),
])
def test_revision_reads_both_forms(fields, expected):
    assert headers.revision(_File(fields)) == expected


def test_rev_1_file_prints_rev_1(cli, tmp_path):
    # data_samples/angles.sgy has bytes 3501–3502 = 0x01 0x00: it printed "rev 0.1"
    from tests.conftest import ROOT

    path = ROOT / "data_samples" / "angles.sgy"
    assert path.read_bytes()[3500:3502] == b"\x01\x00"
    r = cli("inspect", path, "--json", tmp_path / "i.json")
    assert r.exit_code == 0, r.output
    assert "rev 1.0, format 5" in r.stdout
    assert json.loads((tmp_path / "i.json").read_text())["binary_header"]["revision"] == "1.0"


def test_a_file_that_grids_with_the_defaults_gets_no_other_bytes(cli, tmp_path):
    # angles.sgy grids with 189/193 and offsets at 37; it was told "--iline 1 --xline 9 (72 × 32, 100% filled)"
    from tests.conftest import ROOT

    r = cli("inspect", ROOT / "data_samples" / "angles.sgy", "--scan", "--json", tmp_path / "i.json")
    assert r.exit_code == 0, r.output
    assert "grid suggestion" not in r.stdout and "--iline 1 --xline 9" not in r.stdout
    assert json.loads((tmp_path / "i.json").read_text())["grid_pairs"] == []


def test_piped_inspect_keeps_to_columns(cli, monkeypatch):
    from rich.cells import cell_len

    from tests.conftest import ROOT

    monkeypatch.setenv("COLUMNS", "80")
    r = cli("inspect", ROOT / "data_samples" / "angles.sgy")
    assert r.exit_code == 0, r.output
    assert max(cell_len(line) for line in r.stdout.splitlines()) == 80  # was 151
