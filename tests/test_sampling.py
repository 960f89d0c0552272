"""Balanced sampling draws its rare-class centres from the training block only."""

from __future__ import annotations

import numpy as np
import pytest

from geocnn import data
from geocnn.config import load_config
from geocnn.errors import ConfigError
from tests import trainkit


def balanced_config(tmp_path, labels: np.ndarray):
    np.save(tmp_path / "seis.npy", trainkit.layered_volume(labels.shape))
    np.save(tmp_path / "labels.npy", labels)
    return trainkit.write_config(tmp_path, "segmentation", {"inputs": ["seis.npy"], "target": "labels.npy"},
                                 trainkit.SMALL_2D % {"out": 1}, {"loss": "bce_balanced"}, patch=[8, 16],
                                 patch_axes=["inline", "sample"], split={"axis": "inline", "fraction": 0.25, "gap": 4},
                                 sampling={"patches_per_epoch": 4000, "val_patches": 8, "balance": 1.0})


def test_centres_come_from_the_training_block_only(tmp_path):
    # 40 inlines: training 0-25, gap 26-29, validation 30-39; patch 8 inlines × 16 samples on a 48-sample
    # grid: a window can be centred on inlines 4..22 and samples 8..40; one rare sample per inline
    labels = np.zeros((40, 3, 48), np.uint8)
    labels[np.arange(40), 1, 20] = 1
    d = data.build(load_config(balanced_config(tmp_path, labels)))
    assert sorted(d.centres[:, 0].tolist()) == list(range(4, 23))
    origins = d.epoch_origins(1)
    assert set((origins[:, 0] + 4).tolist()) == set(range(4, 23))  # every window centred on one of them
    share = np.bincount(origins[:, 0], minlength=19) / len(origins)
    assert share[18] < 2 / 19  # no pile-up at the last start (uniform: 1/19)


def test_balance_without_a_rare_sample_in_the_training_block_is_refused(tmp_path):
    labels = np.zeros((40, 3, 48), np.uint8)
    labels[35, 1, 20] = 1  # only in the validation block
    with pytest.raises(ConfigError, match="no sample of class 1 lies in the training block"):
        data.build(load_config(balanced_config(tmp_path, labels)))
