"""TIFF families in training and summaries: the data's pixel and voxel sizes reach ``geocnn summarize``.

``summarize CONFIG`` opens the config's inputs only when their headers give the geometry (TIFF, NumPy,
Zarr), reads their spacing, and still imports neither torch nor matplotlib.
"""

from __future__ import annotations

import json
from pathlib import Path

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


# ---------------------------------------------------------------- the two worked examples, tiny

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
SAMPLES = Path(__file__).resolve().parents[1] / "data_samples"
TINY = ["train.epochs=1", "data.sampling.patches_per_epoch=8", "data.sampling.val_patches=4", "train.examples=0",
        "train.workers=0", "train.threads=1"]


def _train(name: str, folder: Path, *overrides: str) -> Path:
    from geocnn.train import train

    return train(load_config(CONFIGS / f"{name}.yaml", [*TINY, *overrides]), folder / name)


@pytest.mark.slow
def test_landcover_example_trains_and_predicts_a_geotiff_on_the_scene(tmp_path):
    rasterio = pytest.importorskip("rasterio", reason="the geocnn[geo] extra (rasterio) is not installed")
    from geocnn.predict import predict

    run = _train("landcover_geotiff", tmp_path, "train.batch_size=4")
    line = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert 0 <= line["val"]["miou"] <= 1 and line["val"]["baseline"]["miou"] < 0.2
    out = tmp_path / "landcover_pred.tif"
    predict(run, [SAMPLES / "scene.tif"], out, pictures=False, threads=1)
    with rasterio.open(SAMPLES / "scene.tif") as src, rasterio.open(out) as ds:
        assert ds.crs == src.crs and ds.transform == src.transform and ds.bounds == src.bounds
        assert ds.dtypes == ("uint8",) and ds.nodata == 255
        labels, outside = ds.read(1), src.dataset_mask() == 0
        assert ds.descriptions == ("labels",)
        assert json.loads(ds.tags()["class_names"]) == ["water", "forest", "cropland", "bare soil"]
    assert outside.any() and (labels[outside] == 255).all() and (labels[~outside] < 4).all()
    probs = tmp_path / "landcover_probs.tif"
    predict(run, [SAMPLES / "scene.tif"], probs, pictures=False, threads=1, output="probabilities")
    with rasterio.open(probs) as ds:  # one float32 band per class, named by it
        assert ds.descriptions == ("water", "forest", "cropland", "bare soil") and ds.dtypes == ("float32",) * 4
        p = ds.read(masked=True)
    np.testing.assert_allclose(p.sum(axis=0).compressed(), 1.0, atol=1e-5)
    assert (p.data.argmax(axis=0)[~outside] == labels[~outside]).all()


@pytest.mark.slow
def test_pores_example_trains_and_predicts_an_ome_tiff_with_the_voxel_size(tmp_path):
    from geocnn.predict import predict

    run = _train("pores_ct", tmp_path, "train.batch_size=2")
    line = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert 0 <= line["val"]["f1"] <= 1 and line["val"]["baseline"]["f1"] == 0
    summary = json.loads((run / "summary.json").read_text())
    assert "µm" in json.dumps(summary, ensure_ascii=False)
    out = tmp_path / "pores_pred.tif"
    predict(run, [SAMPLES / "ct.ome.tif"], out, pictures=False, threads=1, output="labels")
    with tifffile.TiffFile(out) as tif:
        pixels = tifffile.xml2dict(tif.ome_metadata)["OME"]["Image"]["Pixels"]
        image = tifffile.xml2dict(tif.ome_metadata)["OME"]["Image"]
        labels = tif.asarray()
    assert pixels["Channel"]["Name"] == "labels"
    assert json.loads(image["Description"]) == {"class_names": ["grain", "pore"]}
    assert labels.shape == (48, 80, 80) and set(np.unique(labels)) <= {0, 1}
    assert (pixels["PhysicalSizeX"], pixels["PhysicalSizeY"], pixels["PhysicalSizeZ"]) == (2.5, 2.5, 2.5)
