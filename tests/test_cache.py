"""The decoded-sample cache: IBM/integer SEG-Y decoded once for training, reads unchanged."""

from __future__ import annotations

import logging
import os
import pickle
import shutil
from collections import namedtuple

import numpy as np
import pytest

from geocnn.grids import cache
from geocnn.grids.grid import open_grid
from geocnn.grids.spec import InputSpec
from tests.segyfactory import write_segy


def cached_files():
    return sorted(p.name for p in cache.cache_dir().glob("*.npy"))


def windows(shape, n=20, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        lo = [int(rng.integers(0, s)) for s in shape]
        yield tuple(slice(a, int(rng.integers(a + 1, s + 1))) for a, s in zip(lo, shape))


def test_ibm_training_reads_come_from_the_cache_and_equal_the_file(tmp_path):
    survey = write_segy(tmp_path / "ibm.sgy", range(1, 9), range(10, 17), 40, format=1, missing=[(3, 12)])
    direct = open_grid(survey.path)
    trained = open_grid(survey.path, random_access=True)
    assert direct._parts[0].source.cache_path is None
    assert trained._parts[0].source.cache_path is not None and len(cached_files()) == 1
    for w in windows(direct.shape):
        np.testing.assert_array_equal(trained.read(w), direct.read(w))
    positions = np.arange(0, 8 * 7, 3)
    np.testing.assert_array_equal(trained.read_traces(positions), direct.read_traces(positions))
    full = trained.read(tuple(slice(0, n) for n in direct.shape))[0]
    assert (full[~survey.live] == 0).all() and (full[survey.live] != 0).all()  # the dead trace stays dead


def test_cache_is_reused_and_renewed_when_the_file_changes(tmp_path, caplog):
    survey = write_segy(tmp_path / "ibm.sgy", range(1, 5), range(1, 5), 20, format=1)
    open_grid(survey.path, random_access=True)
    first = cached_files()
    with caplog.at_level(logging.INFO, logger="geocnn"):
        open_grid(survey.path, random_access=True)
    assert "decoding" not in caplog.text and cached_files() == first
    st = os.stat(survey.path)
    os.utime(survey.path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # "edited"
    with caplog.at_level(logging.INFO, logger="geocnn"):
        open_grid(survey.path, random_access=True)
    assert "decoding ibm.sgy (ibm-float32) once" in caplog.text and len(cached_files()) == 2


@pytest.mark.parametrize("fmt,mode,random_access,expected", [
    (5, "auto", True, False),    # IEEE needs no decoding
    (3, "auto", True, True),     # int16 does
    (1, "auto", False, False),   # prediction reads slabs: no cache unless asked
    (1, "no", True, False),
    (5, "yes", False, True),
])
def test_when_a_cache_is_made(tmp_path, fmt, mode, random_access, expected):
    survey = write_segy(tmp_path / "f.sgy", range(1, 4), range(1, 4), 10, format=fmt)
    grid = open_grid(InputSpec(str(survey.path), cache=mode), random_access=random_access)
    assert (grid._parts[0].source.cache_path is not None) == expected


def test_prestack_offsets_as_channels_from_the_cache(tmp_path):
    survey = write_segy(tmp_path / "ps.sgy", range(1, 5), range(1, 4), 12, offsets=[10, 20, 30], format=1)
    spec = InputSpec(str(survey.path), channels_from="offset")
    direct, trained = open_grid(spec), open_grid(spec, random_access=True)
    assert trained.channels == 3
    for w in windows(direct.shape):
        np.testing.assert_array_equal(trained.read(w), direct.read(w))


def test_pickled_grid_maps_the_cache_again(tmp_path):
    survey = write_segy(tmp_path / "ibm.sgy", range(1, 30), range(1, 30), 50, format=1)
    grid = open_grid(survey.path, random_access=True)
    grid.read((slice(0, 2), slice(0, 2), slice(0, 5)))  # map it
    blob = pickle.dumps(grid)
    assert len(blob) < 200_000  # not the 29 × 29 × 50 values
    again = pickle.loads(blob)
    np.testing.assert_array_equal(again.read((slice(3, 9), slice(0, 29), slice(10, 20))),
                                  grid.read((slice(3, 9), slice(0, 29), slice(10, 20))))


def test_no_room_means_no_cache_and_a_warning(tmp_path, monkeypatch, caplog):
    survey = write_segy(tmp_path / "ibm.sgy", range(1, 5), range(1, 5), 20, format=1)
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10, 10, 1000))
    with caplog.at_level(logging.WARNING, logger="geocnn"):
        grid = open_grid(survey.path, random_access=True)
    assert grid._parts[0].source.cache_path is None and "not caching" in caplog.text
    np.testing.assert_array_equal(grid.read((slice(0, 4), slice(0, 4), slice(0, 20))),
                                  open_grid(survey.path).read((slice(0, 4), slice(0, 4), slice(0, 20))))


def test_a_dry_run_builds_no_cache_and_training_does(tmp_path, monkeypatch):
    """``--dry-run`` reads an IBM survey (finite check, statistics) but writes no decoded copy of it."""
    from geocnn.config import load_config
    from geocnn.runs.dryrun import plan
    from geocnn.train import train
    from tests import trainkit

    survey = write_segy(tmp_path / "ibm.sgy", range(1, 17), range(1, 13), 48, format=1)
    target = tmp_path / "target.npy"
    np.save(target, survey.values.astype(np.float32))
    path = trainkit.write_config(tmp_path, "regression", {"inputs": [survey.path.name], "target": target.name},
                                 trainkit.SMALL_2D % {"out": 1}, {"epochs": 1}, patch=[8, 16], section="inline")
    cfg = load_config(path)
    monkeypatch.chdir(tmp_path)
    shown = plan(cfg, tmp_path / "run")
    assert "ibm" in shown.data and cached_files() == []
    train(cfg, tmp_path / "run")
    assert len(cached_files()) == 1  # training decodes once, for its random patches
