"""Config sections as frozen records: the same fields as the schema, filled with its defaults."""

from __future__ import annotations

import dataclasses

import pytest

from geocnn.config import SECTIONS_OF, load_config
from tests import trainkit


@pytest.mark.parametrize("cls", list(SECTIONS_OF), ids=lambda c: c.__name__)
def test_each_record_has_the_schema_fields_in_order(cls):
    assert [f.name for f in dataclasses.fields(cls)] == [f.name for f in SECTIONS_OF[cls].fields]


def test_a_config_reads_as_typed_frozen_sections(tmp_path):
    cfg = load_config(trainkit.regression_config(tmp_path, lr=0.5, loss={"kind": "huber", "delta": 2}))
    assert cfg.patch == cfg.data.patch == (8, 16)
    assert (cfg.train.lr, cfg.train.epochs, cfg.train.batch_size) == (0.5, 2, 4)
    assert (cfg.train.loss.kind, cfg.train.loss.delta, cfg.train.loss.class_weights) == ("huber", 2.0, "none")
    assert (cfg.data.sampling.patches_per_epoch, cfg.data.sampling.val_patches, cfg.data.sampling.min_live) \
        == (16, 8, 0.8)
    assert cfg.data.augment.flip == () and cfg.data.split.gap == "auto" and cfg.data.normalize.method == "standard"
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.train.lr = 1.0  # type: ignore[misc]
    assert cfg.raw["train"]["loss"]["kind"] == "huber"  # the effective config stays plain data


def test_a_config_pickles_for_spawned_workers(tmp_path):
    import pickle

    cfg = load_config(trainkit.regression_config(tmp_path))
    back = pickle.loads(pickle.dumps(cfg))
    assert back.train == cfg.train and back.data == cfg.data and back.task is cfg.task
