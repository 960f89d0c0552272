"""Config sections declared once: each `name: type = setting(...)` line gives the checks (with YAML
positions), the JSON Schema, the frozen object code reads and the docs table."""

from __future__ import annotations

import dataclasses
import pickle
import re
import typing
from typing import Literal

import pytest
import yaml

from geocnn.config import (
    CONFIG,
    Augment,
    Data,
    EarlyStop,
    Loss,
    Mask,
    Normalize,
    Train,
    config_reference,
    load_config,
    mask_fields_of,
    model_of_file,
    model_of_run,
    model_of_run_folder,
)
from geocnn.errors import ConfigError
from geocnn.patches import SECTION_AXES, SectionName
from geocnn.refdocs import config_page
from geocnn.runs.checkpoint import write_config
from geocnn.schema import REQUIRED, AnyValue, Record, Section, markdown_table, setting
from geocnn.tasks import LOSS_KINDS, TASKS
from geocnn.yamlsource import Source, load
from tests import trainkit

SECTIONS = [Normalize, Augment, Mask, Data, Loss, EarlyStop, Train]


# ----------------------------------------------------------------------------- one declaration

class ExtendedMask(Mask):
    """data.mask with two more fields, declared the way every field is."""

    keep: int = setting("hidden samples kept per line", default=3, min=1, max=8, tasks=("denoise_self",))
    pattern: Literal["line", "cross"] = setting("pattern of what is hidden", default="line")


def test_a_field_added_to_a_section_is_checked_typed_in_the_schema_and_in_the_docs():
    # checks: the limits, did-you-mean, no coercion of "4"
    assert ExtendedMask.parse({"keep": 5, "pattern": "cross"}).keep == 5
    for value, message in [(0, "keep must be an integer from 1 to 8, got 0 (an integer)"),
                           ("4", "keep must be an integer from 1 to 8, got '4' (a string)")]:
        with pytest.raises(ConfigError) as err:
            ExtendedMask.parse({"keep": value})
        assert err.value.problem == message
    with pytest.raises(ConfigError, match=r"pattern: unknown value 'crosss' \(a string\)") as err:
        ExtendedMask.parse({"pattern": "crosss"})
    assert err.value.fix == "did you mean 'cross'? (valid: cross, line)"
    with pytest.raises(ConfigError, match="unknown key 'kep'") as err:
        ExtendedMask.parse({"kep": 2})
    assert err.value.fix.startswith("did you mean 'keep'?")
    # the typed, frozen section: defaults, and the annotation a type checker reads
    plain = ExtendedMask.defaults()
    assert (plain.keep, plain.pattern, plain.radius) == (3, "line", 2)
    assert typing.get_type_hints(ExtendedMask)["pattern"] == Literal["line", "cross"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        plain.keep = 4  # type: ignore[misc]
    # the JSON Schema and the tasks that read it
    props = ExtendedMask.record.json()["anyOf"][0]["properties"]  # mask: auto is {shape: auto}
    assert props["keep"] == {"type": "integer", "minimum": 1, "maximum": 8, "default": 3,
                             "description": "denoise_self: hidden samples kept per line"}
    assert props["pattern"] == {"type": "string", "enum": ["line", "cross"], "default": "line",
                                "description": "pattern of what is hidden"}
    assert list(props)[-2:] == ["keep", "pattern"] and set(props) - {"keep", "pattern"} == set(Mask.record.by_name)
    # the docs table
    table = markdown_table(ExtendedMask.record).splitlines()
    assert table[-2:] == ["| `keep` | integer from 1 to 8 | `3` |  | denoise_self: hidden samples kept per line |",
                          "| `pattern` | choice | `line` | `line`, `cross` | pattern of what is hidden |"]


def test_the_docs_table_of_a_section():
    assert markdown_table(EarlyStop.record) == (
        "| name | type | default | choices | doc |\n"
        "|---|---|---|---|---|\n"
        "| `patience` | integer ≥ 1 | required |  | epochs without an improvement of best_metric before "
        "training stops |\n"
        "| `min_delta` | number ≥ 0 | `0.0` |  | least change of best_metric that counts as an improvement |\n")
    rows = markdown_table(Loss.record).splitlines()
    assert rows[2] == ("| `kind` | choice | — | `bce_balanced`, `cross_entropy`, `dice`, `focal`, `huber`, `l1`, "
                       "`mse` | default: mse (regression, scalar), cross_entropy (segmentation, classification) |")
    assert rows[3].startswith("| `class_weights` | list of number ≥ 0, 2 or more | `none` | `auto`, `none` |")


def test_the_config_reference_page_is_the_generated_reference(cli):
    text = config_page()  # the site's reference/config.md, built from this text
    assert config_reference() == cli("schema", "--markdown").stdout
    assert config_reference().split("\n## ", 1)[1] == text.split("\n## ", 1)[1]
    for section in ("data", "data.normalize", "data.mask", "train", "train.loss", "train.early_stop"):
        assert f"\n## `{section}`\n" in text
    assert text.count("\n| `") == sum(len(r.fields) for r in _records(CONFIG))


def _records(record: Record) -> list[Record]:
    return [record] + [r for f in record.fields if isinstance(f.type, Record) for r in _records(f.type)]


@pytest.mark.parametrize("cls", SECTIONS, ids=lambda c: c.__name__)
def test_choices_are_literal_types(cls):
    hints = typing.get_type_hints(cls)
    for f in cls.record.fields:
        if f.type.choices:  # the words the check accepts are the Literal's, in its order
            literals = [a for h in (hints[f.name], *typing.get_args(hints[f.name])) if typing.get_origin(h) is Literal
                        for a in typing.get_args(h)]
            assert tuple(literals) == f.type.choices, f.name


def test_choice_sets_from_registries_are_complete():
    assert tuple(SECTION_AXES) == typing.get_args(SectionName)
    assert set(LOSS_KINDS) == {k for t in TASKS.values() for k in t.losses}


def test_a_declaration_that_contradicts_itself_fails_at_import():
    with pytest.raises(ConfigError, match="n must be an integer ≥ 1, got 0"):
        class Bad(Section, title="bad"):
            n: int = setting("a count", default=0, min=1)
    with pytest.raises(TypeError, match="declare a config field as `name: type = setting"):
        class Bare(Section, title="bare"):
            n: int = 3
    with pytest.raises(TypeError, match="cannot be of type"):
        class Odd(Section, title="odd"):
            n: dict = setting("a mapping", default=None)


def test_mask_fields_each_task_reads_come_from_the_declarations():
    assert mask_fields_of(TASKS["denoise_self"]) == ("ratio", "radius", "replace", "axis", "length", "shape")
    assert mask_fields_of(TASKS["reconstruct_traces"]) == ("ratio", "axis", "gap", "guard")


# ----------------------------------------------------------------------------- every field, checked

def _leaves(record: Record, path: tuple[str, ...]) -> list[tuple[str, ...]]:
    out = []
    for f in record.fields:
        if isinstance(f.type, Record):
            out += _leaves(f.type, (*path, f.name))
        elif not isinstance(f.type, AnyValue):  # (inputs, target, ... are read as input specs later)
            out.append((*path, f.name))
    return out


LEAVES = _leaves(Data.record, ("data",)) + _leaves(Train.record, ("train",))
FILLED = {"early_stop": {"patience": 3}, "picks": {"path": "picks.csv"}}  # a section's required keys, so the wrong value is the only error


@pytest.mark.parametrize("keypath", LEAVES, ids=".".join)
def test_every_field_refuses_a_wrong_value_at_its_yaml_position(tmp_path, keypath):
    path = trainkit.regression_config(tmp_path)
    cfg = yaml.safe_load(path.read_text())
    node = cfg
    for key in keypath[:-1]:
        if not isinstance(node.get(key), dict):  # absent, or a shorthand (normalize: none)
            node[key] = dict(FILLED.get(key, {}))
        node = node[key]
    node[keypath[-1]] = {"wrong": 1}
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert err.value.where == load(path)[1].where(keypath) and err.value.where.startswith(f"{path}:")
    assert re.fullmatch(rf"{keypath[-1]}( must be .+, got|: unknown value) a mapping", err.value.problem)


def test_required_fields_are_named_when_missing(tmp_path):
    path = trainkit.regression_config(tmp_path)
    cfg = yaml.safe_load(path.read_text())
    del cfg["data"]["patch"]
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    with pytest.raises(ConfigError, match="missing required key 'patch'") as err:
        load_config(path)
    assert err.value.fix == Data.record.by_name["patch"].help and Data.record.by_name["patch"].default is REQUIRED


# ----------------------------------------------------------------------------- the typed config

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
    assert cfg.raw["train"]["freeze"] == [] and cfg.raw["data"]["patch"] == [8, 16]  # lists, as YAML has them


def test_a_config_pickles_for_spawned_workers(tmp_path):
    cfg = load_config(trainkit.regression_config(tmp_path))
    back = pickle.loads(pickle.dumps(cfg))
    assert back.train == cfg.train and back.data == cfg.data and back.task is cfg.task


def test_section_defaults_are_the_schema_defaults():
    train = Train.defaults()
    assert (train.lr, train.optimizer, train.freeze, train.early_stop, train.loss) == (
        1e-3, "adam", (), None, Loss(kind=None, class_weights="none", ignore_index=None, delta=1.0, gamma=2.0))
    assert Train(lr=0.1).loss == train.loss and Train(lr=0.1).lr == 0.1
    assert EarlyStop.parse(3) == EarlyStop(patience=3, min_delta=0.0)  # the shorthand


def test_the_model_of_a_run_and_of_its_config_file_agree(tmp_path):
    # a run folder's model comes from its config.yaml (what runs.write_config writes), a checkpoint's from the
    # config it holds (read by geocnn.runs.checkpoint): either way parsed here, with no checkpoint I/O in config
    path = trainkit.regression_config(tmp_path, freeze=["conv1"])
    cfg = load_config(path)
    write_config(tmp_path / "run", cfg.raw)
    held = model_of_run(cfg.raw, Source(str(tmp_path / "run.pt")))
    run, file = model_of_run_folder(tmp_path / "run"), model_of_file(path)
    assert run.input_shape == held.input_shape == file.input_shape == (1, 8, 16)  # (channels, *training patch)
    assert run.freeze == held.freeze == file.freeze == ("conv1",)
    assert [n.name for n in run.spec.nodes()] == [n.name for n in held.spec.nodes()] == \
        [n.name for n in file.spec.nodes()]
    with pytest.raises(ConfigError, match="has no config.yaml, so it is not a run folder"):
        model_of_run_folder(tmp_path)
