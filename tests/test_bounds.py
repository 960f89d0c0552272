"""Bounded time and memory on any config: hostile YAML and huge sizes exit 2 with one line.

The examples of issue 10 §1 each have a test; the rule itself is tested by a table over the
config grammar (every integer field of every layer kind, set to the largest value the schema
accepts and to one it refuses, plus alias bombs, deep nesting and huge repeats), all run by
``geocnn summarize`` in one child process under an address-space limit.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import textwrap

import pytest
import yaml

from geocnn.config import load_config
from geocnn.errors import ConfigError, ShapeError
from geocnn.model import budget, infer
from geocnn.model.layers import KINDS
from geocnn.schema import INT_LIMIT, Int, ListOf, OneOf, PerAxis
from geocnn.train import train
from geocnn.yamlsource import MAX_DEPTH, MAX_VALUES, loads
from tests import trainkit
from tests.conftest import spec_from

BILLION_LAUGHS = "l0: &a0 [lol]\n" + "".join(
    f"l{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]\n" for i in range(1, 10))


# ----------------------------------------------------------------------------- YAML documents

def test_billion_laughs_is_refused_at_the_alias_that_passes_the_limit():
    with pytest.raises(ConfigError) as err:
        loads(BILLION_LAUGHS, "bomb.yaml")
    # level k stands for s_k = 1 + 9·s_(k−1) values, s_0 = 2: s_4 = 13,942, so the list of level 5
    # (line 6) passes 100,000 at its 8th alias (1 + 8·13,942), column 10 + 7·5
    assert err.value.where == "bomb.yaml:6:45"
    assert f"more than {MAX_VALUES:,} values once its aliases are expanded" in err.value.message


def test_aliases_within_the_limit_still_load():
    data, src = loads("base: &b {out: 4, kernel: 3}\nlayers: [{conv: *b}, {conv: *b}]\n")
    assert data["layers"][1]["conv"] == {"out": 4, "kernel": 3}
    assert src.where(("layers", 1, "conv", "out")) == "<string>:1:11"  # the anchored value's position


def test_recursive_alias_is_refused_with_its_position():
    with pytest.raises(ConfigError) as err:
        loads("a: &a [*a]\n", "rec.yaml")
    assert err.value.where == "rec.yaml:1:8"
    assert "alias *a is inside the value it names" in err.value.message


def test_deep_nesting_is_refused_before_the_composer_recurses():
    with pytest.raises(ConfigError) as err:
        loads("a: " + "[" * 5000 + "]" * 5000 + "\n", "deep.yaml")
    # the mapping is level 1, so the 64th bracket (column 3 + 63 = 67) opens level 65
    assert err.value.where == f"deep.yaml:1:{3 + MAX_DEPTH}"
    loads("a: " + "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1) + "\n")  # exactly the limit is fine


def test_oversized_document_is_refused_unread():
    with pytest.raises(ConfigError, match="200,000 characters; a config holds at most 131,072"):
        loads("#" * 199_999 + "\n", "big.yaml")


def test_integer_of_thousands_of_digits_is_a_config_error():
    with pytest.raises(ConfigError, match="not a usable YAML value"):
        loads("x: " + "7" * 5000 + "\n")


def test_dates_stay_text_so_configs_are_plain_json():
    data, _ = loads("since: 2024-05-01\nat: 2001-12-14 21:59:43.10 -5\n")
    assert data == {"since": "2024-05-01", "at": "2001-12-14 21:59:43.10 -5"}
    assert type(data["since"]) is str
    json.dumps(data)  # no datetime left


def test_dates_in_set_overrides_stay_text(tmp_path):
    path = trainkit.regression_config(tmp_path)
    cfg = load_config(path, ["name=2024-05-01"])  # a date would fail "name must be a string"
    assert cfg.raw["name"] == "2024-05-01"


@pytest.mark.parametrize("text, what", [("b: !!binary aGVsbG8=\n", "binary"), ("s: !!set {a, b}\n", "set")])
def test_values_without_a_json_form_are_refused(text, what):
    with pytest.raises(ConfigError, match=f"x.yaml:1:4: not valid YAML: a {what} value cannot be stored in a run"):
        loads(text, "x.yaml")


# ----------------------------------------------------------------------------- sizes

MODEL = """
model:
  dims: {dims}
  in_channels: 1
  input_shape: {shape}
  layers: {layers}
"""


def test_input_shape_beyond_the_int_limit_names_the_field():
    with pytest.raises(ConfigError) as err:
        spec_from(MODEL.format(dims=2, shape="[100000000000, 100000000000]", layers="[relu]"))
    assert err.value.where == "model.yaml:5:17"
    assert "input_shape[0] is 100,000,000,000, beyond what geocnn can use (at most 2,147,483,647)" in err.value.message


def test_huge_input_shape_stops_before_numpy_allocates():
    spec = spec_from(MODEL.format(dims=2, shape="[1000000000, 1000000000]", layers="[relu]"))
    with pytest.raises(ShapeError, match="more than 1,048,576 samples on an axis"):
        infer(spec, spec.input_shape)


def test_huge_kernel_names_the_layer():
    spec = spec_from(MODEL.format(dims=1, shape="[1000]", layers="[relu, {conv: {out: 2, kernel: 2000, "
                                                                    "padding: same}}]"))
    with pytest.raises(ShapeError) as err:
        infer(spec, spec.input_shape)
    assert err.value.failed_layer == ("conv1", "conv") and err.value.where == "model.yaml:6:18"
    assert "1,000 output positions × 2,000 window taps" in err.value.message


def test_many_big_layers_stop_when_the_walk_holds_too_much():
    # 40 layers of 2 axes × 60,000 positions = 4.8 M > 4,194,304 held positions
    spec = spec_from(MODEL.format(dims=2, shape="[60000, 60000]", layers="[{repeat: {times: 40, layers: [relu]}}]"))
    with pytest.raises(ShapeError, match=r"layer 35 'repeat1.35.relu1' relu: the shape walk would hold 4,200,000 positions"):
        infer(spec, spec.input_shape, receptive=False)


def test_huge_repeat_is_refused_before_expanding():
    with pytest.raises(ConfigError, match=r"times 1,000,000,000 would make more than 1,024 layers") as err:
        spec_from(MODEL.format(dims=1, shape="[8]", layers="[{repeat: {times: 1000000000, layers: [relu]}}]"))
    assert err.value.where == "model.yaml:6:22"


def test_blocks_and_repeats_that_blow_up_stop_at_the_layer_limit():
    text = MODEL.format(dims=1, shape="[8]", layers="[{repeat: {times: 600, layers: [relu, tanh]}}]")
    with pytest.raises(ConfigError, match="expands to more than 1,024 layers"):
        spec_from(text)


@pytest.mark.parametrize("out, message, line", [
    (10**12, "out is 1,000,000,000,000, beyond what geocnn can use", "18:7"),  # the value
    (INT_LIMIT, "training needs ≈", "17:5"),  # the layer
])
def test_train_refuses_a_layer_too_big_before_building(tmp_path, out, message, line):
    model = trainkit.SMALL_2D.replace("out: 4,", f"out: {out},") % {"out": 1}
    path = trainkit.write_config(tmp_path, "regression", trainkit.write_regression(tmp_path), model,
                                 patch=[8, 16], section="inline")
    with pytest.raises(ConfigError) as err:
        train(load_config(path), tmp_path / "run")
    assert message in err.value.message
    assert err.value.where == f"{path}:{line}"
    assert not (tmp_path / "run").exists()
    if out == INT_LIMIT:
        # (2³¹−1) channels × 8 × 16 samples (padding same) dominate the parameters
        assert "layer 1 'conv1' conv outputs 274,877,906,816 values per patch" in err.value.message


# ----------------------------------------------------------------------------- the rule, over the grammar

def _has_int(t) -> bool:
    if isinstance(t, Int):
        return True
    if isinstance(t, (PerAxis, ListOf)):
        return _has_int(t.item)
    if isinstance(t, OneOf):
        return any(_has_int(x) for x in t.types)
    return False


BASE_ARGS = {"conv": {"out": 2}, "conv_transpose": {"out": 2}, "dense": {"out": 2}, "norm": {"kind": "group"}}


def _hostile_documents() -> dict[str, str]:
    """Name → YAML text: every integer field of every layer kind at the largest accepted value
    and at one past it, model-level sizes, repeats, aliases, depth, size, digits."""
    docs: dict[str, str] = {}

    def model(layers: list, shape=(32, 32), dims=2, in_channels=1) -> str:
        return yaml.safe_dump({"model": {"dims": dims, "in_channels": in_channels, "input_shape": list(shape),
                                         "layers": layers}})

    for kind, spec in KINDS.items():
        for f in spec.args.fields:
            if not _has_int(f.type):
                continue
            for value in (INT_LIMIT, 10**12):
                layers = [{kind: {**BASE_ARGS.get(kind, {}), f.name: value}}]
                if kind == "dense":
                    layers.insert(0, "flatten")
                docs[f"{kind}.{f.name}={value}"] = model(layers)
    for value in (INT_LIMIT, 10**12):
        docs[f"input_shape={value}"] = model(["relu"], shape=(value, value))
        docs[f"in_channels={value}"] = model([{"conv": {"out": 2}}], in_channels=value)
        docs[f"repeat.times={value}"] = model([{"repeat": {"times": value, "layers": ["relu"]}}])
    docs["stride product"] = model([{"conv": {"out": 2, "stride": 1000}}] * 4)
    docs["upsample chain"] = model([{"upsample": 1000}] * 4)
    docs["input 2000²"] = model([{"conv": {"out": 2, "padding": "same"}}, {"pool": "max"}], shape=(2000, 2000))
    docs["billion laughs"] = BILLION_LAUGHS
    docs["recursive alias"] = "a: &a [*a]\n"
    docs["deep list"] = "a: " + "[" * 5000 + "]" * 5000 + "\n"
    docs["deep mapping"] = "".join("  " * i + f"k{i}:\n" for i in range(200))
    docs["huge document"] = "# " + "x" * 3_000_000 + "\n"
    docs["5000 digits"] = "model: {dims: 2, in_channels: " + "9" * 5000 + "}\n"
    return docs


CHILD = textwrap.dedent("""
    import json, resource, sys
    from typer.testing import CliRunner
    from geocnn.cli import app
    runner = CliRunner()
    for name, path in json.loads(sys.argv[1]).items():
        r = runner.invoke(app, ["summarize", path])
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        try:  # this process's own high-water mark: ru_maxrss also counts the forked parent's pages
            with open("/proc/self/status") as fh:
                peak = next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:"))
        except (OSError, StopIteration):
            pass
        heavy = [m for m in ("torch", "matplotlib", "xarray", "pandas", "numba", "obspy") if m in sys.modules]
        print(json.dumps({"name": name, "code": r.exit_code, "stderr": r.stderr, "peak_kib": peak, "modules": heavy,
                          "exception": None if r.exception is None or isinstance(r.exception, SystemExit)
                          else repr(r.exception)}), flush=True)
""")

ADDRESS_SPACE = 1536 * 2**20  # torch alone maps ~650 MB of address space


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))


def test_every_hostile_config_exits_2_with_one_line_in_bounded_memory(tmp_path):
    docs = _hostile_documents()
    paths = {}
    for i, (name, text) in enumerate(docs.items()):
        paths[name] = str(tmp_path / f"doc{i}.yaml")
        (tmp_path / f"doc{i}.yaml").write_text(text)
    proc = subprocess.run([sys.executable, "-c", CHILD, json.dumps(paths)], capture_output=True, text=True,
                          timeout=300, preexec_fn=_limit_memory)
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = {r["name"]: r for r in map(json.loads, proc.stdout.splitlines())}
    assert set(results) == set(docs)
    for name, r in results.items():
        assert r["exception"] is None, (name, r["exception"])
        assert "Traceback" not in r["stderr"], name
        if r["code"] == 2:
            assert len(r["stderr"].strip().splitlines()) == 1, (name, r["stderr"])
        else:  # an accepted value may summarize (e.g. a stride of 2³¹−1 on 32 samples, with a warning)
            assert r["code"] == 0, (name, r)
        if "1000000000000" in name or name in ("billion laughs", "recursive alias", "deep list",
                                                "huge document", "5000 digits", f"repeat.times={INT_LIMIT}"):
            assert r["code"] == 2, (name, r)
    peaks = sorted((r["peak_kib"] // 1024, name[:40], r["modules"]) for name, r in results.items())
    assert peaks[-1][0] < 500, peaks[-3:]  # MiB of resident memory at most, and what was imported


def test_memory_needed_comes_from_the_records(monkeypatch):
    spec = spec_from("model:\n" + textwrap.indent(trainkit.SMALL_2D % {"out": 1}, "  "))
    inf = infer(spec, (8, 16), receptive=False)
    # parameters 3·3·1·4 + 4 + 3·3·4·1 + 1 = 77; outputs 4·8·16 (conv) + 4·8·16 (relu) + 1·8·16 = 1,152 per patch
    assert budget.needed_bytes(inf, batch=4, training=True) == (77 * 4 * 4, 4 * 1152 * 4 * 2)
    assert budget.needed_bytes(inf, batch=1, training=False) == (77 * 4, 1152 * 4)
    # on a GPU the free memory of the device is the limit
    monkeypatch.setattr(budget.torch.cuda, "mem_get_info", lambda device: (30_000, 2**30))
    with pytest.raises(ConfigError) as err:
        budget.check_fits(inf, 4, "cuda", training=True)
    assert "but cuda memory has 0.0 GiB free; layer 1 'conv1' conv outputs 512 values per patch" in err.value.message
    budget.check_fits(inf, 1, "cuda", training=False)  # 308 + 4,608 bytes fit in 30,000
