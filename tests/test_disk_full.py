"""Issue 18 §2: what the operating system refuses while an output is written or committed (a disk filling
mid-predict, an I/O error) is one line naming the output, for every output kind, and nothing is left
behind: no temporary file or folder, nothing under the final name."""

from __future__ import annotations

import errno
import importlib.util
import os
from pathlib import Path

import pytest

from geocnn.grids.npyout import NpyOutput
from geocnn.grids.segyout import SegyOutput
from geocnn.grids.storeout import StoreOutput
from tests import segyfactory

HAS_ZARR = importlib.util.find_spec("zarr") is not None
needs_zarr = pytest.mark.skipif(not HAS_ZARR, reason="the geocnn[mdio] extra (zarr 3) is not installed")
KINDS = {".npy": NpyOutput, ".sgy": SegyOutput,
         ".zarr": pytest.param(StoreOutput, marks=needs_zarr), ".mdio": pytest.param(StoreOutput, marks=needs_zarr)}


@pytest.fixture(scope="module")
def survey(tmp_path_factory) -> Path:
    """16 inlines: a prediction writes them in several row blocks whatever the output kind."""
    folder = tmp_path_factory.mktemp("disk-full")
    return segyfactory.write_segy(folder / "in.sgy", ilines=range(1, 17), xlines=range(20, 32), n_samples=48).path


def failing_write(monkeypatch, cls: type, at: int) -> list[int]:
    """``cls.write`` raises ENOSPC on its ``at``-th call (1-based); returns the call counter."""
    calls = [0]
    write = cls.write

    def write_or_fail(self, window, values):
        calls[0] += 1
        if calls[0] == at:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return write(self, window, values)

    monkeypatch.setattr(cls, "write", write_or_fail)
    return calls


def left_behind(folder: Path, survey: Path) -> list[str]:
    """Every name in ``folder`` but the run and the input (hidden temporary outputs included)."""
    return sorted(p.name for p in folder.iterdir() if p.name not in ("id", survey.name) and not p.name.startswith("id."))


def error_line(result) -> str:
    """Exit 2, no traceback, one error line (log lines of the run before it are fine): its text."""
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert result.exit_code == 2 and len(errors) == 1 and "Traceback" not in result.output, result.output
    return errors[0].removeprefix("error: ")


@pytest.mark.parametrize("suffix", KINDS)
def test_a_full_disk_mid_predict_is_one_line_and_leaves_nothing(tmp_path, cli, identity_run, monkeypatch, survey,
                                                                 suffix):
    cls = KINDS[suffix] if isinstance(KINDS[suffix], type) else KINDS[suffix].values[0]
    run = identity_run(tmp_path)
    calls = failing_write(monkeypatch, cls, at=0)  # never fails: how many row blocks a prediction writes
    (tmp_path / "whole").mkdir()
    assert cli("predict", run, survey, "--out", tmp_path / "whole" / f"p{suffix}").exit_code == 0
    blocks = calls[0]
    assert blocks >= 3, blocks
    before, out = left_behind(tmp_path, survey), tmp_path / f"p{suffix}"
    for at in (1, blocks - 1):  # the first row block, and a later one
        failing_write(monkeypatch, cls, at=at)
        line = error_line(cli("predict", run, survey, "--out", out))
        assert line == (f"{out}: cannot write the output (No space left on device) — "
                        "check the folder exists, can be written to and has room")
        assert left_behind(tmp_path, survey) == before, at  # no temporary file or folder, no final output


@pytest.mark.parametrize("suffix", KINDS)
def test_a_failed_commit_is_one_line_and_leaves_nothing(tmp_path, cli, identity_run, monkeypatch, survey, suffix):
    run = identity_run(tmp_path)
    before = left_behind(tmp_path, survey)
    out = tmp_path / f"p{suffix}"
    replace = os.replace

    def replace_but_not_onto_the_output(src, dst, *args, **kwargs):
        if Path(dst) == out:
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        return replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace_but_not_onto_the_output)
    line = error_line(cli("predict", run, survey, "--out", out))
    assert line == (f"{out}: cannot write the output (Input/output error) — "
                    "check the folder exists, can be written to and has room")
    assert left_behind(tmp_path, survey) == before
