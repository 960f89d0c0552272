"""Numbers as people write them: YAML 1.2 core-schema numbers in config files and ``--set`` alike."""

from __future__ import annotations

import math
import random
import re

import pytest
import yaml

from geocnn.config import load_config
from geocnn.errors import ConfigError
from geocnn.yamlsource import FLOAT_12, INT_12, dumps, loads
from tests import trainkit

# (as written, the value read). YAML 1.1 (PyYAML's resolver) reads the first six as text.
FLOATS = [("1e-3", 1e-3), ("3e-4", 3e-4), ("1.0e30", 1e30), ("5e+2", 500.0), (".5", 0.5), ("-1E3", -1000.0),
          ("1.", 1.0), ("+2.5", 2.5), ("0.01", 0.01), ("1.0e-05", 1e-5), ("-0.0", -0.0), ("2E0", 2.0)]
INTS = [("10", 10), ("0", 0), ("-3", -3), ("+5", 5), ("017", 17), ("0o17", 15), ("0x1F", 31), ("0xff", 255)]
# text under YAML 1.2 although YAML 1.1 reads some as numbers (1_000 → 1000, 1:30 → 90, 0b101 → 5)
TEXTS = ["1_000", "1:30", "0b101", "1.5_0", "e3", "1e", "1e-", "..5", "0o8", "0xG", "1,5", "'1e-3'", '"10"',
         "inf", "nan", "1e-3m"]


@pytest.mark.parametrize("text,expected", FLOATS)
def test_floats_by_yaml_1_2(text, expected):
    value = loads(f"a: {text}")[0]["a"]
    assert type(value) is float and value == expected and math.copysign(1, value) == math.copysign(1, expected)


@pytest.mark.parametrize("text,expected", INTS)
def test_ints_stay_ints(text, expected):
    value = loads(f"a: {text}")[0]["a"]
    assert type(value) is int and value == expected


@pytest.mark.parametrize("text", TEXTS)
def test_text_stays_text(text):
    value = loads(f"a: {text}")[0]["a"]
    assert type(value) is str and value == text.strip("'\"")


def test_inf_and_nan_are_floats_that_number_settings_refuse(tmp_path):
    """Decision: ``.inf``/``.nan`` are YAML 1.2 floats; every number setting wants a finite value."""
    values = [loads(f"a: {t}")[0]["a"] for t in (".inf", "-.Inf", ".NAN")]
    assert values[0] == math.inf and values[1] == -math.inf and math.isnan(values[2])
    path = trainkit.regression_config(tmp_path)
    with pytest.raises(ConfigError, match=r"lr must be a number > 0, got inf"):
        load_config(path, ["train.lr=.inf"])


def test_other_scalars_keep_safe_load_meaning():
    data = loads("a: true\nb: on\nc: ~\nd: null\ne: 2024-05-01\nf: text\n1e-3: key\n")[0]
    assert data == {"a": True, "b": True, "c": None, "d": None, "e": "2024-05-01", "f": "text", 0.001: "key"}
    assert yaml.safe_load("a: 1e-3") == {"a": "1e-3"}  # PyYAML's own loader is left as it was


def test_generated_number_forms_follow_the_regexps():
    """Random strings over the characters numbers use: a match of the YAML 1.2 int regexp reads as
    that int, else a match of the float regexp as ``float()`` of it, else the text itself."""
    rng = random.Random(0)
    for _ in range(3000):
        text = "".join(rng.choice("0123456789+-.eE_xo") for _ in range(rng.randint(1, 7)))
        value = loads(f"a: '{text}'")[0]["a"]
        assert value == text  # quoted: always text
        if text == "-":
            continue  # a list item, not a scalar
        value = loads(f"a: {text}")[0]["a"]
        if INT_12.match(text):
            base = {"0o": 8, "0x": 16}.get(text[:2], 10)
            assert type(value) is int and value == int(text[2:] if base != 10 else text, base), text
        elif FLOAT_12.match(text):
            assert type(value) is float and value == float(text), text
        else:
            assert value == text, text


@pytest.mark.parametrize("value", ["1e-3", "1_000", "0o17", "017", ".5", "1:30", "10", "abc", "0b1", "-1E3", "",
                                   "~", "on", "2024-05-01"])
def test_dump_quotes_text_that_either_yaml_version_reads_as_another_type(value):
    """A run's config.yaml holds the text the user gave back as text, for this loader and for PyYAML's."""
    text = dumps({"name": value})
    assert loads(text)[0] == {"name": value} and yaml.safe_load(text) == {"name": value}


def test_dump_round_trips_generated_numbers():
    rng = random.Random(1)
    values = [rng.choice([-1, 1]) * 10 ** rng.uniform(-30, 30) for _ in range(500)]
    values += [rng.randint(-10**12, 10**12) for _ in range(500)] + [0.0, -0.0, 1e-5, 5e-324, math.inf]
    data = loads(dumps({"v": values}))[0]["v"]
    assert data == values and [type(v) for v in data] == [type(v) for v in values]


@pytest.fixture(scope="module")
def config_text(tmp_path_factory):
    folder = tmp_path_factory.mktemp("numbers")
    path = trainkit.regression_config(folder)
    return folder, path.read_text()


@pytest.mark.parametrize("text,expected", [f for f in FLOATS[:6] if f[1] > 0] + [("1", 1)])
def test_learning_rates_in_a_config_file_and_through_set(config_text, tmp_path, text, expected):
    folder, base = config_text
    path = folder / f"lr_{abs(hash(text))}.yaml"
    path.write_text(base.replace("lr: 0.01", f"lr: {text}"))
    assert load_config(path).train.lr == expected
    assert load_config(folder / "cfg.yaml", [f"train.lr={text}"]).train.lr == expected


def test_set_number_forms_for_integers(config_text):
    folder, _ = config_text
    assert load_config(folder / "cfg.yaml", ["train.epochs=10"]).train.epochs == 10
    for text, shown in (("1e1", "10.0 (a number)"), ("1_000", "'1_000' (a string)"), ("'3'", "'3' (a string)")):
        with pytest.raises(ConfigError, match=re.escape(f"epochs must be an integer ≥ 1, got {shown}")):
            load_config(folder / "cfg.yaml", [f"train.epochs={text}"])


@pytest.mark.parametrize("quoted", ["'1e-3'", '"3e-4"', "'0.01'"])
def test_quoted_numbers_stay_refused_with_the_line(config_text, quoted):
    folder, base = config_text
    path = folder / "quoted.yaml"
    path.write_text(base.replace("lr: 0.01", f"lr: {quoted}"))
    line = base.splitlines().index("  lr: 0.01") + 1
    with pytest.raises(ConfigError, match=re.escape(f"lr must be a number > 0, got {quoted[1:-1]!r}")) as info:
        load_config(path)
    assert f"quoted.yaml:{line}:" in str(info.value)
    with pytest.raises(ConfigError, match=r"--set train.lr: lr must be a number > 0, got '.*' \(a string\)"):
        load_config(folder / "cfg.yaml", [f"train.lr={quoted}"])


def test_negative_exponent_errors_name_the_line(config_text):
    folder, base = config_text
    path = folder / "negative.yaml"
    path.write_text(base.replace("lr: 0.01", "lr: -1e-3"))
    line = base.splitlines().index("  lr: 0.01") + 1
    with pytest.raises(ConfigError, match=rf"negative.yaml:{line}:\d+: .*lr must be a number > 0, got -0.001"):
        load_config(path)
