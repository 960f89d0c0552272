"""``geocnn synth faults``: files, shapes, seeds, atomic writes, one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from geocnn.grids.grid import open_grid
from geocnn.grids.spec import InputSpec
from geocnn.synth import write as synth_write
from geocnn.synth.faults import FaultCubeSpec, fault_cube
from geocnn.synth.write import write_fault_cubes


def test_npy_pair_holds_the_seeded_cubes(cli, tmp_path):
    out = tmp_path / "cubes"
    r = cli("synth", "faults", out, "--cubes", "3", "--size", "20", "--seed", "5")
    assert r.exit_code == 0, r.stderr
    assert f"wrote 3 cube(s) of 20³ to {out}" in r.stdout
    assert sorted(p.name for p in out.iterdir()) == ["faults.json", "faults.npy", "seismic.json", "seismic.npy",
                                                     "synth.json"]
    seismic, faults = np.load(out / "seismic.npy"), np.load(out / "faults.npy")
    assert seismic.shape == faults.shape == (3, 20, 20, 20)
    assert seismic.dtype == np.float32 and faults.dtype == np.uint8 and set(np.unique(faults)) <= {0, 1}
    spec = FaultCubeSpec(shape=(20, 20, 20))
    for k in range(3):  # cube k is the generator's cube of seed (5, k)
        cube = fault_cube(spec, np.random.default_rng([5, k]))
        np.testing.assert_array_equal(seismic[k], cube.noisy)
        np.testing.assert_array_equal(faults[k], cube.faults)
    manifest = json.loads((out / "synth.json").read_text())
    assert manifest["seed"] == 5 and len(manifest["drawn"]) == 3 and manifest["axes"][0] == "cube"
    assert manifest["drawn"][1]["fault_share"] == pytest.approx(faults[1].mean())


def test_the_sidecar_names_the_cube_axis_so_a_patch_never_spans_two_cubes(tmp_path):
    write_fault_cubes(tmp_path, cubes=2, size=16, seed=0)
    grid = open_grid(InputSpec(path=str(tmp_path / "seismic.npy")))
    assert grid.axes == ("cube", "inline", "crossline", "sample") and grid.shape == (2, 16, 16, 16)
    assert grid.meta.sample_interval_us == 4000


def test_a_cube_is_the_same_whatever_the_count_and_seeds_differ(tmp_path):
    write_fault_cubes(tmp_path / "two", cubes=2, size=16, seed=3)
    write_fault_cubes(tmp_path / "three", cubes=3, size=16, seed=3)
    write_fault_cubes(tmp_path / "other", cubes=2, size=16, seed=4)
    two, three = np.load(tmp_path / "two" / "seismic.npy"), np.load(tmp_path / "three" / "seismic.npy")
    np.testing.assert_array_equal(two, three[:2])
    assert not np.array_equal(two, np.load(tmp_path / "other" / "seismic.npy"))


def test_segy_pairs_hold_the_same_cubes_as_npy(cli, tmp_path):
    assert cli("synth", "faults", tmp_path / "s", "--cubes", "2", "--size", "16", "--format", "segy").exit_code == 0
    write_fault_cubes(tmp_path / "n", cubes=2, size=16)
    names = sorted(p.name for p in (tmp_path / "s").iterdir())
    assert names == ["faults_000.sgy", "faults_001.sgy", "seismic_000.sgy", "seismic_001.sgy", "synth.json"]
    npy = np.load(tmp_path / "n" / "seismic.npy"), np.load(tmp_path / "n" / "faults.npy")
    for k in range(2):
        for kind, expected in zip(("seismic", "faults"), npy):
            grid = open_grid(InputSpec(path=str(tmp_path / "s" / f"{kind}_{k:03d}.sgy")))
            assert grid.shape == (16, 16, 16) and grid.meta.sample_interval_us == 4000
            np.testing.assert_array_equal(grid.read((slice(None),) * 3)[0], expected[k])


def test_existing_outputs_are_kept_unless_forced(cli, tmp_path):
    out = tmp_path / "c"
    assert cli("synth", "faults", out, "--cubes", "1", "--size", "16").exit_code == 0
    before = (out / "seismic.npy").read_bytes()
    r = cli("synth", "faults", out, "--cubes", "1", "--size", "16", "--seed", "9")
    assert r.exit_code == 2 and r.stderr.strip().splitlines() == [
        f"error: {out / 'seismic.npy'}: output already exists — choose another path or pass --force to replace it"]
    assert (out / "seismic.npy").read_bytes() == before
    assert cli("synth", "faults", out, "--cubes", "1", "--size", "16", "--seed", "9", "--force").exit_code == 0
    assert (out / "seismic.npy").read_bytes() != before


def test_a_failure_part_way_leaves_nothing_behind(tmp_path, monkeypatch):
    real = synth_write.fault_cube
    drawn = []

    def failing(spec, rng):
        if drawn:
            raise RuntimeError("disk on fire")
        drawn.append(1)
        return real(spec, rng)

    monkeypatch.setattr(synth_write, "fault_cube", failing)
    for fmt in ("npy", "segy"):
        drawn.clear()
        with pytest.raises(RuntimeError, match="disk on fire"):
            write_fault_cubes(tmp_path / fmt, cubes=3, size=16, fmt=fmt)
        assert list((tmp_path / fmt).iterdir()) == []  # no output, no temporary file


def test_progress_reports_one_step_per_cube(tmp_path):
    steps = []

    class Task:
        def advance(self, n=1, **fields):
            steps.append((n, fields["info"]))

        def close(self):
            steps.append("closed")

    class Reporter:
        def task(self, description, total, unit="it"):
            assert (description, total, unit) == ("synth faults", 3, "cube")
            return Task()

    write_fault_cubes(tmp_path, cubes=3, size=16, reporter=Reporter())
    assert len(steps) == 4 and steps[-1] == "closed" and all(s[1].endswith("% fault voxels") for s in steps[:3])


@pytest.mark.parametrize("args,text", [
    (["--cubes", "0"], "--cubes must be at least 1, got 0"),
    (["--cubes", "1", "--size", "8"], "--size must lie in 16..512 voxels, got 8"),
    (["--cubes", "1", "--size", "1024"], "--size must lie in 16..512 voxels, got 1024"),
    (["--cubes", "1", "--format", "zarr"], "--format must be one of npy, segy, got 'zarr'"),
])
def test_bad_options_fail_in_one_line(cli, tmp_path, args, text):
    r = cli("synth", "faults", tmp_path / "x", *args)
    assert r.exit_code == 2, r.output
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and text in lines[0]
    assert not (tmp_path / "x").exists()


def test_an_output_folder_inside_a_file_fails_in_one_line(cli, tmp_path):
    (tmp_path / "f").write_text("not a folder")
    r = cli("synth", "faults", tmp_path / "f" / "cubes", "--cubes", "1")
    assert r.exit_code == 2 and len(r.stderr.strip().splitlines()) == 1
    assert "is a file, so no folder can be made there" in r.stderr


def test_not_enough_disk_is_refused_before_drawing(tmp_path, monkeypatch):
    monkeypatch.setattr(synth_write.shutil, "disk_usage", lambda p: type("U", (), {"free": 1000})())
    with pytest.raises(synth_write.ConfigError, match=r"2 cubes of 16³ need 40.0 KiB but .* has 1,000 B free"):
        write_fault_cubes(tmp_path / "d", cubes=2, size=16)
    assert not (tmp_path / "d").exists()
