"""The registry of what a prediction writes (``--output``): one :class:`~geocnn.outputs.Output` record each,
asked by tasks, prediction and previews; no string switch on output kinds outside it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from geocnn.errors import ConfigError, DataError
from geocnn.grids.formats import FORMATS
from geocnn.grids.normalize import Normalization
from geocnn.outputs import LABELS, OUTPUTS, PROBABILITIES, VALUES, get_output, positive_probability
from geocnn.tasks import TASKS

SRC = Path(__file__).resolve().parents[1] / "src" / "geocnn"


def test_the_three_outputs_and_the_tasks_they_fit():
    assert list(OUTPUTS) == ["probabilities", "labels", "values"]  # the CLI's --output values, plus auto
    assert {n: tuple(o.name for o in t.outputs) for n, t in TASKS.items()} == {
        "regression": ("values",), "segmentation": ("probabilities", "labels"),
        "classification": ("probabilities", "labels"), "scalar": ("values",),
        "denoise_self": ("values",), "reconstruct_traces": ("values",)}
    assert TASKS["regression"].output("auto", None) is VALUES
    assert TASKS["segmentation"].output("auto", 2) is PROBABILITIES
    assert TASKS["classification"].output("auto", 5) is LABELS
    assert TASKS["classification"].output("probabilities", 5) is PROBABILITIES
    with pytest.raises(ConfigError, match="--output values does not fit a segmentation model — use "
                                          "probabilities or labels"):
        TASKS["segmentation"].output("values", 2)
    with pytest.raises(ConfigError, match="unknown --output 'label'.*labels"):
        get_output("label")


def test_channels_and_dtype_of_each_output():
    assert (LABELS.channels(2), LABELS.channels(7), LABELS.dtype) == (1, 1, "uint8")
    # one sigmoid channel or two softmax channels: P(class 1) alone; more classes: one channel each
    assert [PROBABILITIES.channels(k) for k in (1, 2, 5)] == [1, 1, 5] and PROBABILITIES.dtype == "float32"
    assert (VALUES.channels(3), VALUES.dtype) == (3, "float32")
    assert PROBABILITIES.class_numbers(1) == (1,) and PROBABILITIES.class_numbers(3) == (0, 1, 2)


def test_scores_to_outputs_by_hand():
    two = np.array([[0.8, 0.4, 0.5], [0.2, 0.6, 0.5]], np.float32)  # blended softmax of 2 classes
    assert PROBABILITIES.convert(two, None)[0].tolist() == pytest.approx([0.2, 0.6, 0.5])
    labels = LABELS.convert(two, None)
    assert labels.dtype == np.uint8 and labels.tolist() == [[0, 1, 0]]  # the tie (0.5, 0.5) → class 0
    one = two[1:2]  # the same problem scored by one sigmoid channel
    assert LABELS.convert(one, None).tolist() == [[0, 1, 0]]
    three = np.array([[0.1, 0.5], [0.7, 0.2], [0.2, 0.3]], np.float32)
    assert LABELS.convert(three, None).tolist() == [[1, 0]]
    norm = Normalization("standard", (1.0,), (2.0,))  # values = 1 + 2 × model value
    assert VALUES.convert(np.array([[0.0, 0.5]], np.float32), norm).tolist() == [[1.0, 2.0]]
    assert VALUES.convert(np.array([[0.25]], np.float32), None).tolist() == [[0.25]]


def test_tensors_convert_to_the_same_values_and_dtype_as_numpy():
    probs = np.random.default_rng(0).dirichlet(np.ones(3), (4, 5)).transpose(2, 0, 1).astype(np.float32)
    norm = Normalization("standard", (0.5,), (3.0,))
    for output, norm_used in ((LABELS, None), (PROBABILITIES, None), (VALUES, norm)):
        host = output.convert(probs if output.of_classes else probs[:1], norm_used)
        dev = output.convert(torch.from_numpy(probs if output.of_classes else probs[:1]), norm_used)
        assert str(dev.dtype) == f"torch.{host.dtype}"
        np.testing.assert_array_equal(dev.numpy(), host)


def test_positive_probability_keeps_class_1_of_two():
    probs = np.array([[0.8, 0.4], [0.2, 0.6]])
    assert positive_probability(probs, axis=0).tolist() == [[0.2, 0.6]]
    three = np.ones((3, 2)) / 3
    assert positive_probability(three, axis=0) is three


def test_band_names_say_labels_or_the_class_of_each_probability():
    names = ("water", "forest", "cropland")
    assert LABELS.band_names(names, 1) == ("labels",)
    assert PROBABILITIES.band_names(names, 3) == names
    assert PROBABILITIES.band_names(("grain", "pore"), 1) == ("pore",)  # binary: P(class 1) alone
    assert PROBABILITIES.band_names(("grain",), 1) is None  # fewer names than classes: the formats' defaults
    assert VALUES.band_names(names, 3) is None and LABELS.band_names(None, 1) is None


def test_which_formats_hold_several_classes():
    # a SEG-Y holds one value per sample: several class probabilities need one file per class
    with pytest.raises(DataError, match="3 class probabilities per sample do not fit one SEG-Y.*--split-classes "
                                        r"for one SEG-Y per class \(NAME.class-K.sgy\)"):
        PROBABILITIES.check_format(FORMATS["segy"], 3, "p.sgy")
    PROBABILITIES.check_format(FORMATS["segy"], 1, "p.sgy")  # P(class 1) of a binary model
    for name in ("npy", "zarr", "mdio"):
        PROBABILITIES.check_format(FORMATS[name], 3, f"p.{name}")
    VALUES.check_format(FORMATS["segy"], 3, "v.sgy")  # values may be offsets: the writer decides


def test_previews_ask_the_record():
    assert (LABELS.categorical, LABELS.probability, LABELS.label) == (True, False, "predicted class")
    assert (PROBABILITIES.categorical, PROBABILITIES.probability, PROBABILITIES.label) == (False, True, "probability")
    assert (VALUES.categorical, VALUES.probability, VALUES.label) == (False, False, "predicted value")


def test_no_string_comparison_on_output_kinds_outside_the_registry():
    pattern = re.compile(r"""(==|!=|\bin\b)\s*\(?["'](labels|probabilities|values)["']|["'](labels|probabilities|"""
                         r"""values)["']\s*(==|!=)""")
    found = [f"{p.relative_to(SRC)}:{i}" for p in SRC.rglob("*.py") if p.name != "outputs.py"
             for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if pattern.search(line)]
    # cli/grid.py compares the kind of file `geocnn inspect` read ("labels": a label file), not an output
    assert [f for f in found if not f.startswith("cli/grid.py")] == []


def test_outputs_import_neither_torch_nor_matplotlib():
    code = "import geocnn.outputs, sys; print('torch' in sys.modules, 'matplotlib' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "False"]
