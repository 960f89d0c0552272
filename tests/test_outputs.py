"""Outputs people can use and never lose (issue 10 §5, and the output cases of §2).

Permissions follow the umask for every file geocnn writes; temporary files left by ``kill -9``
are removed by the next write to their folder; an ``--out`` below a regular file is one line,
exit 2; previews handle any output layout and never fail a run.
"""

from __future__ import annotations

import logging
import os
import signal
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from geocnn import atomic, plots
from geocnn.config import load_config
from geocnn.predict import predict
from geocnn.train import train
from tests import segyfactory, trainkit


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask():
    """Set the process umask for one test, restoring the previous one after it."""
    old = os.umask(0o022)
    yield lambda mask: os.umask(mask)
    os.umask(old)


# ----------------------------------------------------------------------------- permissions

def test_umask_is_read_without_changing_it(umask):
    umask(0o027)
    assert atomic.umask() == 0o027
    assert atomic.file_mode() == 0o640
    assert os.umask(0o027) == 0o027  # still set


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o027, 0o640)])
def test_every_output_file_follows_the_umask(tmp_path, umask, mask, mode):
    umask(mask)
    run = train(load_config(trainkit.regression_config(tmp_path, max_steps=2, examples=2)), tmp_path / "run")
    np.save(tmp_path / "vol.npy", trainkit.layered_volume((4, 12, 32)))
    report = predict(run, [tmp_path / "vol.npy"], tmp_path / "out" / "pred.npy")
    written = [p for p in run.rglob("*") if p.is_file()] + [p for p in (tmp_path / "out").iterdir()]
    names = {p.name for p in written}
    assert {"config.yaml", "summary.json", "split.json", "metrics.jsonl", "loss.png", "examples.png", "last.pt",
            "best.pt", "pred.npy", "pred.json", "pred.preview.png"} <= names
    assert report.pictures == [tmp_path / "out" / "pred.preview.png"]
    assert {p.name: oct(_mode(p)) for p in written} == {p.name: oct(mode) for p in written}


# ----------------------------------------------------------------------------- stale temporary files

KILLED_WRITER = textwrap.dedent("""
    import os, signal, sys
    from geocnn import atomic
    with atomic.replacing(sys.argv[1]) as tmp:
        tmp.write_bytes(b"x" * 100_000)
        os.kill(os.getpid(), signal.SIGKILL)
""")


def test_a_temporary_file_left_by_kill_9_is_removed_by_the_next_write(tmp_path, caplog):
    proc = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(tmp_path / "pred.npy")])
    assert proc.wait() == -signal.SIGKILL
    left = list(tmp_path.iterdir())
    assert len(left) == 1 and left[0].name.startswith(".pred.geocnn-tmp-") and left[0].suffix == ".npy"
    assert left[0].stat().st_size == 100_000 and not (tmp_path / "pred.npy").exists()
    with caplog.at_level(logging.WARNING, logger="geocnn.atomic"):
        atomic.write_text(tmp_path / "other.txt", "next run\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.txt"]
    assert f"removed {left[0]} (0.1 MB), a temporary file left by geocnn process {proc.pid}" in caplog.text


def test_temporary_files_of_live_processes_other_hosts_and_other_programs_are_kept(tmp_path):
    other_host = "0" * 8 if atomic._HOST != "0" * 8 else "1" * 8
    keep = [f".a{atomic.TMP_MARK}{atomic._HOST}-{os.getpid()}-abc123.npy",  # this process: still writing
            f".b{atomic.TMP_MARK}{other_host}-999999999-abc123.npy",  # another machine's pid means nothing here
            ".c.tmp-abc123.npy",  # no owner recorded: cannot tell
            "notes.geocnn-tmp-x.txt"]  # not a hidden temporary name
    for name in keep:
        (tmp_path / name).write_bytes(b"1")
    assert atomic.clean_stale(tmp_path) == []
    atomic.write_text(tmp_path / "x.txt", "x")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*keep, "x.txt"])


def test_predict_outputs_clean_stale_temporaries_beside_them(tmp_path, caplog, identity_run):
    run = identity_run(tmp_path)
    np.save(tmp_path / "vol.npy", trainkit.layered_volume((4, 12, 32)))
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / "out" / f".pred{atomic.TMP_MARK}{atomic._HOST}-{int(dead.stdout)}-k9k9k9k9.npy"
    stale.parent.mkdir()
    stale.write_bytes(b"0" * 3_000_000)
    with caplog.at_level(logging.WARNING, logger="geocnn.atomic"):
        predict(run, [tmp_path / "vol.npy"], tmp_path / "out" / "pred.npy", pictures=False)
    assert not stale.exists()
    assert sorted(p.name for p in stale.parent.iterdir()) == ["pred.json", "pred.npy"]
    assert f"removed {stale} (3.0 MB)" in caplog.text


# ----------------------------------------------------------------------------- --out below a file

def test_train_out_below_a_regular_file_is_one_line(tmp_path, cli):
    path = trainkit.regression_config(tmp_path, max_steps=1)
    (tmp_path / "results").write_text("a file\n")
    for out in ("results/run", "results"):
        result = cli("train", path, "--out", tmp_path / out)
        assert result.exit_code == 2, result.output
        assert result.stderr.strip().splitlines() == [
            f"error: {tmp_path / out}: '{tmp_path / 'results'}' is a file, so no folder can be made there — "
            "choose an output path in a folder"]


def test_predict_out_below_a_regular_file_is_one_line(tmp_path, cli, identity_run):
    run = identity_run(tmp_path)
    np.save(tmp_path / "vol.npy", trainkit.layered_volume((4, 12, 32)))
    (tmp_path / "results").write_text("a file\n")
    result = cli("predict", run, tmp_path / "vol.npy", "--out", tmp_path / "results" / "pred.npy")
    assert result.exit_code == 2, result.output
    assert len(result.stderr.strip().splitlines()) == 1
    assert f"'{tmp_path / 'results'}' is a file, so no folder can be made there" in result.stderr
    assert "Traceback" not in result.output


# ----------------------------------------------------------------------------- previews

def test_section_model_on_prestack_input_writes_output_and_preview(tmp_path, cli, identity_run):
    run = identity_run(tmp_path)
    survey = segyfactory.write_segy(tmp_path / "ps.sgy", range(1, 5), range(1, 13), 48, offsets=[10, 20, 30])
    result = cli("predict", run, survey.path, "--out", tmp_path / "ps.npy")
    assert result.exit_code == 0, result.output
    assert "preview: " in result.stdout and "could not draw" not in result.output
    assert (tmp_path / "ps.preview.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the identity model gives back the gathers (inline, crossline, offset, sample)
    np.testing.assert_allclose(np.load(tmp_path / "ps.npy"), survey.values, rtol=1e-5)


def test_views_of_a_prestack_grid_are_sections_against_the_sample_axis():
    names, shape = ("inline", "crossline", "offset", "sample"), (4, 12, 3, 48)
    views = plots._views([plots.index_coords(a, n) for a, n in zip(names, shape)], shape)
    assert [window for _, window in views] == [
        (slice(2, 3), slice(6, 7), slice(0, 3), slice(0, 48)),  # offset × sample (a gather)
        (slice(2, 3), slice(0, 12), slice(1, 2), slice(0, 48)),  # crossline × sample
        (slice(0, 4), slice(6, 7), slice(1, 2), slice(0, 48)),  # inline × sample
    ]


def test_a_picture_that_fails_to_draw_is_a_warning_not_a_failed_run(tmp_path, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise TypeError("Invalid shape (100, 3, 24, 32) for image data")

    monkeypatch.setattr(plots, "Figure", broken)
    with caplog.at_level(logging.WARNING, logger="geocnn.plots"):
        run = train(load_config(trainkit.regression_config(tmp_path, max_steps=2)), tmp_path / "run")
        np.save(tmp_path / "vol.npy", trainkit.layered_volume((4, 12, 32)))
        report = predict(run, [tmp_path / "vol.npy"], tmp_path / "pred.npy")
    assert (run / "checkpoints" / "last.pt").exists() and (tmp_path / "pred.npy").exists()
    assert report.pictures == []
    assert not (run / "loss.png").exists() and not (tmp_path / "pred.preview.png").exists()
    assert "could not draw loss_curve (TypeError: Invalid shape (100, 3, 24, 32) for image data)" in caplog.text
    assert "could not draw prediction_previews" in caplog.text
