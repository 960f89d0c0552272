"""TIFF families in training and summaries: the data's pixel and voxel sizes reach ``geocnn summarize``.

``summarize CONFIG`` opens the config's inputs only when their headers give the geometry (TIFF, NumPy,
Zarr), reads their spacing, and still imports neither torch nor matplotlib.
"""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from geocnn.config import load_config, model_of_file
from geocnn.summary import data_spacing
from tests.test_startup import _geocnn

tifffile = pytest.importorskip("tifffile", reason="the geocnn[tiff] extra (tifffile) is not installed")

MODEL_3D = {"dims": 3, "in_channels": 1, "layers": [{"conv": {"out": 2, "kernel": 3, "padding": "same"}},
                                                      {"conv": {"out": 2, "kernel": 3, "padding": "same"}}]}


def _ct_config(folder, spacing=None):
    vol = np.zeros((12, 20, 24), np.uint16)
    tifffile.imwrite(folder / "ct.ome.tif", vol, ome=True,
                     metadata={"axes": "ZYX", "PhysicalSizeX": 0.5, "PhysicalSizeY": 0.5, "PhysicalSizeZ": 2.0})
    np.save(folder / "pores.npy", vol.astype(np.uint8))
    model = dict(MODEL_3D, **({"spacing": spacing} if spacing else {}))
    cfg = {"task": "segmentation", "data": {"inputs": ["ct.ome.tif"], "target": "pores.npy", "patch": [8, 16, 16],
                                            "split": {"axis": "z", "fraction": 0.25, "gap": 0}},
           "model": model, "train": {"epochs": 1}}
    path = folder / "ct.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def test_voxel_size_from_the_file_gives_the_receptive_field_in_micrometres(tmp_path):
    path = _ct_config(tmp_path)
    assert data_spacing(load_config(path)) == ((2.0, "µm"), (0.5, "µm"), (0.5, "µm"))
    assert model_of_file(path).config is not None
    r, heavy = _geocnn("summarize", path)
    assert r.returncode == 0, r.stderr
    assert heavy == []
    # two 3³ convolutions: 5 samples per axis = 10 µm along z, 2.5 µm along y and x
    assert "5 × 5 × 5 samples (depth × height × width) = 10 µm × 2.5 µm × 2.5 µm" in " ".join(r.stdout.split())


def test_the_configs_spacing_wins_and_a_missing_file_leaves_none(tmp_path):
    path = _ct_config(tmp_path, spacing=["1 mm", "1 mm", "1 mm"])
    r, _ = _geocnn("summarize", path)
    assert r.returncode == 0 and "= 5 mm × 5 mm × 5 mm" in " ".join(r.stdout.split())
    path = _ct_config(tmp_path)
    (tmp_path / "ct.ome.tif").unlink()
    r, _ = _geocnn("summarize", path)
    assert r.returncode == 0 and "5 × 5 × 5 samples" in r.stdout and "µm" not in r.stdout
