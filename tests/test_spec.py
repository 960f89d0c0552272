"""The model grammar: blocks, repeats, names, references, and the errors users see."""

from __future__ import annotations

import json

import pytest
import torch

from geocnn.errors import ConfigError
from geocnn.model import infer
from geocnn.model.network import build
from tests.conftest import spec_from


def names(spec):
    return [(n.name, n.kind) for n in spec.nodes()]


def test_bare_and_shorthand_layers():
    spec = spec_from("""
        model:
          dims: 2
          in_channels: 1
          layers: [{conv: 8}, relu, {norm: batch}, {dropout: 0.1}, {pool: mean}, {leaky_relu: 0.2}, flatten,
                   {dense: 3}, softmax]
    """)
    conv, _, norm, drop, pool, leaky, _, dense, _ = list(spec.nodes())
    assert conv.args["out"] == 8 and conv.args["kernel"] == (3, 3) and conv.args["padding"] == "valid"
    assert norm.args["kind"] == "batch" and drop.args["p"] == 0.1 and pool.args["kind"] == "mean"
    assert leaky.args["slope"] == 0.2 and dense.args["out"] == 3


def test_name_and_from_beside_or_inside_the_kind():
    spec = spec_from("""
        model:
          dims: 1
          in_channels: 2
          layers:
            - conv: {out: 4, kernel: 1}
              name: a
            - {conv: {out: 4, kernel: 1, name: b}}
            - conv: {out: 4, kernel: 1, from: a}
            - add: [b]
    """)
    a, b, c, add = spec.layers
    assert (a.name, b.name) == ("a", "b")
    assert c.inputs == ("a",) and add.inputs == ("conv1", "b")


def test_blocks_with_parameters_and_defaults():
    spec = spec_from("""
        model:
          dims: 2
          in_channels: 1
          blocks:
            cbr:
              args: {ch: null, k: 3}
              layers:
                - conv: {out: $ch, kernel: $k, padding: same}
                - norm: batch
                - relu
          layers:
            - cbr: {ch: 8, name: first}
            - cbr: {ch: 16, k: 5}
    """)
    assert names(spec) == [("first.conv1", "conv"), ("first.norm1", "norm"), ("first.relu1", "relu"),
                           ("cbr1.conv1", "conv"), ("cbr1.norm1", "norm"), ("cbr1.relu1", "relu")]
    assert spec.layers[3].args["kernel"] == (5, 5) and spec.layers[0].args["kernel"] == (3, 3)
    assert spec.layers[0].where == "model.yaml:9:11"  # errors point at the block's definition
    assert "block 'cbr' used at model.yaml:13:7" in spec.layers[0].origin


def test_repeat_expands_with_unique_names():
    spec = spec_from("""
        model:
          dims: 1
          in_channels: 4
          layers:
            - repeat:
                times: 3
                layers:
                  - conv: {out: 4, kernel: 3, padding: same}
                  - relu
    """)
    assert [n for n, _ in names(spec)] == ["repeat1.1.conv1", "repeat1.1.relu1", "repeat1.2.conv1",
                                           "repeat1.2.relu1", "repeat1.3.conv1", "repeat1.3.relu1"]
    assert spec.layers[2].inputs == ("repeat1.1.relu1",)


def test_recursive_unet_level_written_once():
    spec = spec_from("""
        model:
          dims: 2
          in_channels: 1
          blocks:
            level:
              args: {ch: null, inner: []}
              layers:
                - conv: {out: $ch, kernel: 3, padding: same, name: skip}
                - pool: max
                - $inner
                - upsample: 2
                - concat: skip
                - conv: {out: $ch, kernel: 3, padding: same}
          layers:
            - level:
                ch: 8
                inner:
                  - level: {ch: 16, inner: [{conv: {out: 32, kernel: 3, padding: same}}]}
            - conv: {out: 1, kernel: 1}
    """)
    net, inf = build(spec, (16, 16))
    concat = [r for r in inf.records if r.kind == "concat"]
    assert [(r.name, r.output_shape) for r in concat] == [("level1.level1.concat1", (48, 8, 8)),
                                                          ("level1.concat1", (24, 16, 16))]
    assert net(torch.zeros(1, 1, 16, 16)).shape == (1, 1, 16, 16)


def test_skip_reference_is_by_name_so_inserting_layers_does_not_rewire():
    base = """
        model:
          dims: 1
          in_channels: 1
          layers:
            - conv: {out: 2, kernel: 1, name: keep}
            %s
            - conv: {out: 2, kernel: 1}
            - concat: keep
    """
    a = spec_from(base % "- relu")
    b = spec_from(base % "- {conv: {out: 2, kernel: 1}}")
    assert a.layers[-1].inputs[1] == b.layers[-1].inputs[1] == "keep"


def errors(text):
    with pytest.raises(ConfigError) as err:
        spec = spec_from(text)
        infer(spec, spec.input_shape or (16,) * spec.dims)
    return err.value.message


@pytest.mark.parametrize("text,expected", [
    ("""
model:
  dims: 2
  in_channels: 1
  layers:
    - conv: {out: 8}
    - reluu
""", "model.yaml:7:7: unknown layer kind 'reluu' — did you mean 'relu'?"),
    ("""
model:
  dims: 2
  in_channels: 1
  layers:
    - conv: {out: 8, kernal: 3}
""", "model.yaml:6:22: layer 1 'conv1' conv: unknown key 'kernal' — did you mean 'kernel'?"),
    ("""
model:
  dims: 2
  in_channels: 1
  layers:
    - conv: {out: 8, kernel: "3"}
""", "model.yaml:6:22: layer 1 'conv1' conv: kernel must be an integer ≥ 1, or a list with one per axis, got '3' (a string)"),
    ("""
model:
  dims: 2
  in_channels: 1
  layers:
    - conv: {out: 8, kernel: [3, 3, 3]}
""", "model.yaml:6:22: layer 1 'conv1' conv: kernel has 3 values but the model has 2 spatial axes"),
    ("""
model:
  dims: 2
  in_channels: 1
  layers:
    - conv: {out: 8, padding: half}
""", "padding must be one of same, valid or an integer ≥ 0, or a list with one per axis, got 'half' (a string)"),
    ("""
model:
  dims: 2
  in_channels: 1
  layers:
    - conv: {kernel: 3}
""", "model.yaml:6:7: layer 1 'conv1' conv: missing required key 'out'"),
    ("""
model:
  dims: 2
  in_channels: 1
  layers:
    - conv: {out: 8, name: a}
    - conv: {out: 8, name: a}
""", "model.yaml:7:22: name 'a' is used twice (first at model.yaml:6:7)"),
    ("""
model:
  dims: 2
  in_channels: 1
  layers:
    - conv: {out: 8, name: enc1}
    - concat: enc2
""", "model.yaml:7:7: no earlier layer is named 'enc2' — did you mean 'enc1'? (valid: enc1, input)"),
    ("""
model:
  dims: 2
  in_channels: 1
  layers:
    - conv: {out: 8}
      relu: {}
""", "model.yaml:6:7: one layer per list item, but this item has conv, relu"),
    ("""
model:
  dims: 2
  in_channels: 1
  layers:
    - conv: {out: 8}
    - dense: 4
""", "model.yaml:7:7: layer 2 'dense1' dense: needs a flat input but gets 8 × 14 × 14 — add flatten or global_pool"),
    ("""
model:
  dims: 2
  in_channels: 1
  layers:
    - conv: {out: 8, name: a}
    - conv: {out: 4}
    - add: a
""", "layer 3 'add1' add: cannot add 4 × 12 × 12 and 8 × 14 × 14: shapes differ"),
    ("""
model:
  dims: 2
  in_channels: 6
  layers:
    - conv: {out: 8, groups: 4}
""", "layer 1 'conv1' conv: groups 4 must divide both input channels 6 and output channels 8"),
    ("""
model:
  dims: 2
  in_channels: 1
  layers:
    - pool: {size: 32}
""", "model.yaml:6:7: layer 1 'pool1' pool: height 16 < window 32"),
    ("""
model:
  dims: 2
  in_channels: 1
  blocks:
    b: {args: {ch: null}, layers: [{conv: {out: $ch}}]}
  layers:
    - b: {chh: 3}
""", "model.yaml:8:11: block 'b' has no parameter 'chh' — did you mean 'ch'?"),
    ("""
model:
  dims: 2
  in_channels: 1
  blocks:
    b: {args: {ch: null}, layers: [{conv: {out: $ch}}]}
  layers:
    - b: {}
""", "block 'b' needs parameter 'ch'"),
    ("""
model:
  dims: 4
  in_channels: 1
  layers: [relu]
""", "model.yaml:3:3: model: dims must be an integer from 1 to 3, got 4 (an integer)"),
    ("""
model:
  dims: 2
  in_channels: 1
  layers: [relu]
  optimizer: adam
""", "model.yaml:6:3: model: unknown key 'optimizer'"),
    ("""
model:
  dims: 2
  in_channels: 1
  layers:
    - conv: {out: 8, bias: yes please}
""", "bias must be true or false, got 'yes please' (a string)"),
    ("""
model:
  dims: 2
  in_channels: 1
  layers:
    - conv: {out: 2.5}
""", "out must be an integer ≥ 1, got 2.5 (a number)"),
    ("""
model:
  dims: 2
  in_channels: 4
  layers:
    - residual:
        body: [{conv: {out: 4, kernel: 3, padding: same}}]
    - concat: residual1.conv1
""", "'residual1.conv1' is outside this residual block"),
])
def test_user_errors_name_the_yaml_position_and_layer(text, expected):
    assert expected in errors(text)


def test_refs_inside_residual_cannot_reach_outside():
    msg = errors("""
model:
  dims: 1
  in_channels: 4
  layers:
    - conv: {out: 4, kernel: 1, name: outside}
    - residual:
        body: [{conv: {out: 4, kernel: 1}}, {add: outside}]
""")
    assert "'outside' is outside this residual block" in msg and "model.yaml:8:46" in msg


def test_unknown_kind_lists_blocks_too():
    msg = errors("""
model:
  dims: 1
  in_channels: 1
  blocks:
    stage: {layers: [relu]}
  layers: [stag]
""")
    assert "did you mean 'stage'?" in msg


def test_no_eval_or_dotted_imports():
    msg = errors("""
model:
  dims: 1
  in_channels: 1
  layers: ["torch.nn.Conv1d"]
""")
    assert "unknown layer kind 'torch.nn.Conv1d'" in msg


def test_duplicate_yaml_keys_are_errors():
    msg = errors("""
model:
  dims: 1
  dims: 2
  in_channels: 1
  layers: [relu]
""")
    assert "model.yaml:4:3: key 'dims' appears twice" in msg


def test_every_layer_kind_has_a_torch_builder_and_every_builder_a_kind():
    from geocnn.model.builders import BUILDERS
    from geocnn.model.layers import KINDS

    assert set(BUILDERS) == set(KINDS)
    assert len(KINDS) == 21  # 13 kinds + 8 activations


def test_json_schema_covers_every_kind(cli):
    from geocnn.model.layers import KINDS

    result = cli("schema")
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    layer_titles = {opt.get("title") for opt in schema["$defs"]["layer"]["anyOf"]}
    assert set(KINDS) | {"residual", "repeat", "block"} <= layer_titles
    conv = next(o for o in schema["$defs"]["layer"]["anyOf"] if o.get("title") == "conv")
    assert conv["properties"]["conv"]["anyOf"][0]["properties"]["kernel"]["description"].startswith("kernel size")
    assert schema["properties"]["model"]["required"] == ["dims", "in_channels", "layers"]
