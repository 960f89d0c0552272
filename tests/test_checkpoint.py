"""The checkpoint record: round trip through the stored dict, and one line for a bad file."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from geocnn.errors import DataError
from geocnn.grids.normalize import Normalization
from geocnn.runs.checkpoint import Checkpoint, load_checkpoint, save_checkpoint


def small() -> Checkpoint:
    return Checkpoint(
        config={"name": "x", "task": "regression"}, config_hash="0123456789abcdef",
        model_state={"w": torch.arange(3.0)}, normalization=Normalization("standard", (1.0,), (2.0,), 10, 0),
        target_normalization=None, channel_names=("seis",), channel_sources=("/data/seis.npy",),
        grid_axes=("inline", "crossline", "sample"), patch_size=(8, 16), patch_axes=("crossline", "sample"),
        classes=None, class_frequencies=None, epoch=2, step=7, best_value=0.25, best_epoch=1,
        rng={"torch": torch.get_rng_state()})


def test_round_trip_through_a_file(tmp_path):
    save_checkpoint(tmp_path / "c.pt", small())
    back = load_checkpoint(tmp_path / "c.pt")
    assert back.model_state["w"].tolist() == [0.0, 1.0, 2.0]
    assert back.normalization == Normalization("standard", (1.0,), (2.0,), 10, 0)
    assert (back.epoch, back.step, back.best_metric, back.best_value, back.best_epoch) == (2, 7, "val_loss", 0.25, 1)
    assert (back.patch_size, back.patch_axes, back.classes) == ((8, 16), ("crossline", "sample"), None)
    assert back.to_dict().keys() == small().to_dict().keys()
    assert back.torch_version == str(torch.__version__)


@pytest.mark.parametrize("damage, message", [
    (lambda d: d.pop("config"), "checkpoint field 'config' is missing"),
    (lambda d: d.update(epoch="2"), "checkpoint field 'epoch' should be an integer, not str"),
    (lambda d: d["patch"].update(size=[8, "16"]), "checkpoint field 'patch.size' should list integers"),
    (lambda d: d["best"].pop("metric"), "checkpoint field 'best.metric' is missing"),
    (lambda d: d["normalization"].update(inputs={"method": "standard"}),
     "checkpoint field 'normalization.inputs' stored normalisation is malformed"),
])
def test_a_damaged_checkpoint_is_one_line_naming_the_file(tmp_path, damage, message):
    stored = small().to_dict()
    damage(stored)
    torch.save(stored, tmp_path / "c.pt")
    with pytest.raises(DataError) as err:
        load_checkpoint(tmp_path / "c.pt")
    assert err.value.message.startswith(f"{tmp_path / 'c.pt'}: {message}")
    assert "give a checkpoint written by geocnn train" in err.value.message and "\n" not in err.value.message


def test_predict_on_a_checkpoint_without_its_config(tmp_path, cli):
    stored = small().to_dict()
    del stored["config"]
    torch.save(stored, tmp_path / "c.pt")
    np.save(tmp_path / "in.npy", np.zeros((4, 4, 16), np.float32))
    r = cli("predict", tmp_path / "c.pt", tmp_path / "in.npy", "--out", tmp_path / "out.npy")
    assert r.exit_code == 2
    assert "checkpoint field 'config' is missing" in r.stderr and "Traceback" not in r.output
    assert len(r.stderr.strip().splitlines()) == 1


def test_a_foreign_pickle_is_refused(tmp_path):
    torch.save({"format": "something/2"}, tmp_path / "c.pt")
    with pytest.raises(DataError, match="not a geocnn checkpoint"):
        load_checkpoint(tmp_path / "c.pt")
