"""Did-you-mean knows the names people bring from PyTorch and Keras (issue 18 §6): one alias table."""

from __future__ import annotations

import pytest

from geocnn.errors import ConfigError
from geocnn.schema import ALIASES, suggest
from tests.conftest import spec_from

KINDS = ["conv", "conv_transpose", "norm", "pool", "adaptive_pool", "global_pool", "dense", "upsample", "relu",
         "leaky_relu", "dropout", "concat", "add", "flatten"]


@pytest.mark.parametrize("word, options, expected", [
    ("ReLU", KINDS, "relu"),                      # difflib suggested nothing (case)
    ("Conv2d", KINDS, "conv"), ("BatchNorm2d", KINDS, "norm"), ("MaxPool2d", KINDS, "pool"),
    ("Linear", KINDS, "dense"), ("LeakyReLU", KINDS, "leaky_relu"), ("ConvTranspose2d", KINDS, "conv_transpose"),
    ("out_channels", ["out", "kernel", "stride", "padding"], "out"),
    ("kernel_size", ["out", "kernel", "stride", "padding"], "kernel"),
    ("learning_rate", ["lr", "epochs", "batch_size", "optimizer"], "lr"),
    ("AdamW", ["adam", "adamw", "sgd"], "adamw"),  # it said adam
    ("relux", KINDS, "relu"),                     # spelling still works
])
def test_suggestions(word, options, expected):
    assert suggest(word, options).startswith(f"did you mean '{expected}'?")


def test_an_alias_is_suggested_only_where_it_is_valid():
    assert suggest("learning_rate", ["out", "kernel"]) == "valid: kernel, out"


def test_alias_targets_are_real_names():
    from geocnn.model.layers import CONV_ARGS, POOL_ARGS
    from geocnn.model.layers import KINDS as REGISTRY

    names = set(REGISTRY) | {f.name for f in CONV_ARGS.fields} | {f.name for f in POOL_ARGS.fields} | {
        "lr", "epochs", "batch_size", "scale", "slope", "size"}
    assert set(ALIASES.values()) <= names


@pytest.mark.parametrize("layer, expected", [
    ("- ReLU", "did you mean 'relu'?"),
    ("- conv: {out_channels: 4}", "did you mean 'out'?"),
])
def test_model_errors_suggest_the_alias(layer, expected):
    with pytest.raises(ConfigError, match=expected):
        spec_from(f"model:\n  dims: 1\n  in_channels: 1\n  layers:\n    {layer}\n")
