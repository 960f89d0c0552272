"""Analytic shapes, parameters and receptive fields against the lecture's formulas and PyTorch."""

from __future__ import annotations

import math

import pytest
import torch

from geocnn.errors import ShapeError
from geocnn.model import accepts, infer, nearest_accepted, size_rules
from geocnn.model.network import build
from tests.conftest import spec_from


def forward_shape(spec, spatial, batch=2):
    net, inf = build(spec, spatial)
    net.eval()
    with torch.no_grad():
        y = net(torch.randn(batch, spec.in_channels, *spatial))
    return tuple(y.shape[1:]), inf, net


def test_lecture_example_280_parameters():
    spec = spec_from("""
        model: {dims: 2, in_channels: 3, layers: [{conv: {out: 10, kernel: 3}}]}
    """)
    inf = infer(spec, (32, 32))
    (rec,) = inf.records
    assert rec.params == 280
    assert rec.formula == "3·3·3·10 + 10 = 280"
    assert rec.output_shape == (10, 30, 30)  # N_y = (32 + 0 - 3)/1 + 1
    net, _ = build(spec, (32, 32))
    assert sum(p.numel() for p in net.parameters()) == 280


def test_bias_off_and_1x1_conv_is_named_as_such():
    spec = spec_from("""
        model:
          dims: 2
          in_channels: 16
          layers: [{conv: {out: 4, kernel: 1, bias: false}}]
    """)
    (rec,) = infer(spec, (8, 8)).records
    assert rec.params == 16 * 4
    assert rec.formula == "1·1·16·4 = 64"
    assert "1×1 conv" in rec.note


@pytest.mark.parametrize("n", [7, 8, 9, 10, 31, 64])
@pytest.mark.parametrize("kernel,stride,dilation", [(3, 1, 1), (4, 1, 1), (5, 2, 1), (2, 2, 1), (4, 3, 1),
                                                    (3, 3, 1), (3, 1, 2), (4, 2, 2), (1, 2, 1)])
def test_same_padding_gives_ceil_n_over_stride(n, kernel, stride, dilation):
    spec = spec_from(f"""
        model:
          dims: 1
          in_channels: 2
          layers: [{{conv: {{out: 3, kernel: {kernel}, stride: {stride}, dilation: {dilation}, padding: same}}}}]
    """)
    shape, inf, _ = forward_shape(spec, (n,))
    assert inf.output.shape == (3, math.ceil(n / stride))
    assert shape == inf.output.shape


def test_same_padding_even_kernel_is_asymmetric():
    spec = spec_from("""
        model: {dims: 2, in_channels: 1, layers: [{conv: {out: 1, kernel: [4, 2], padding: same}}]}
    """)
    (rec,) = infer(spec, (10, 10)).records
    assert rec.output_shape == (1, 10, 10)
    assert "asymmetric 1|2, 0|1" in rec.note


@pytest.mark.parametrize("n,padding,stride,expected", [
    (32, 1, 2, 16),   # floor((32 + 2 - 3)/2 + 1) = 16
    (33, 0, 2, 16),   # floor((33 - 3)/2 + 1) = 16
    (10, 2, 3, 4),    # floor((10 + 4 - 3)/3 + 1) = 4
    (5, 0, 1, 3),
])
def test_lecture_output_size_formula(n, padding, stride, expected):
    spec = spec_from(f"""
        model: {{dims: 1, in_channels: 1, layers: [{{conv: {{out: 1, kernel: 3, padding: {padding}, stride: {stride}}}}}]}}
    """)
    shape, inf, _ = forward_shape(spec, (n,))
    assert inf.output.shape == (1, expected) == shape


def test_dropped_samples_are_warned():
    spec = spec_from("""
        model: {dims: 1, in_channels: 1, layers: [{pool: {size: 2}}]}
    """)
    inf = infer(spec, (65,))
    assert inf.output.shape == (1, 32)
    assert inf.dropped
    assert "window 2 with stride 2 never reads 1 of 65 samples along length (position 64; 65 → 32)" \
        in inf.warnings[0]
    assert not infer(spec, (64,)).dropped


@pytest.mark.parametrize("kind", ["max", "mean"])
def test_pooling_has_no_parameters_and_keeps_channels(kind):
    spec = spec_from(f"""
        model:
          dims: 3
          in_channels: 5
          layers: [{{pool: {{kind: {kind}, size: 2}}}}, {{pool: {{kind: {kind}, size: 3, stride: 1, padding: same}}}}]
    """)
    shape, inf, net = forward_shape(spec, (8, 9, 10))
    assert [r.params for r in inf.records] == [0, 0]
    assert inf.output.shape == (5, 4, 4, 5) == shape
    assert sum(p.numel() for p in net.parameters()) == 0


def test_mean_pool_same_padding_ignores_padded_samples():
    spec = spec_from("""
        model: {dims: 1, in_channels: 1, layers: [{pool: {kind: mean, size: 2, padding: same}}]}
    """)
    net, _ = build(spec, (5,))
    y = net(torch.ones(1, 1, 5))
    assert torch.equal(y, torch.ones(1, 1, 3))  # the last window holds one real sample: mean 1, not 0.5


def test_pool_is_per_channel():
    spec = spec_from("""
        model: {dims: 1, in_channels: 2, layers: [{pool: {kind: max, size: 2}}]}
    """)
    net, _ = build(spec, (4,))
    x = torch.tensor([[[1.0, 5.0, 2.0, 0.0], [-1.0, -2.0, 7.0, 3.0]]])
    assert net(x).tolist() == [[[5.0, 2.0], [-1.0, 7.0]]]


RESIDUAL = """
    model:
      dims: 2
      in_channels: {cin}
      layers:
        - residual:
            body:
              - conv: {{out: {cout}, kernel: 3, padding: same, stride: {stride}}}
              - relu
              - conv: {{out: {cout}, kernel: 3, padding: same}}
            shortcut: {shortcut}
"""


def test_residual_identity_shortcut_adds_nothing():
    spec = spec_from(RESIDUAL.format(cin=8, cout=8, stride=1, shortcut="auto"))
    shape, inf, net = forward_shape(spec, (16, 16))
    res, c1, relu, c2, sc = inf.records
    assert sc.kind == "projection" and sc.params == 0 and "identity" in sc.note
    assert res.params == 0 and inf.output.shape == (8, 16, 16) == shape
    assert sum(r.params for r in inf.records) == 2 * (3 * 3 * 8 * 8 + 8)
    assert sum(p.numel() for p in net.parameters()) == 2 * (3 * 3 * 8 * 8 + 8)


def test_residual_projection_when_shapes_differ():
    spec = spec_from(RESIDUAL.format(cin=8, cout=16, stride=2, shortcut="auto"))
    shape, inf, net = forward_shape(spec, (16, 15))
    sc = inf.records[-1]
    assert sc.params == 1 * 1 * 8 * 16 + 16
    assert sc.projection_stride == (2, 2)
    assert "channels 8→16" in sc.note and "stride 2×2" in sc.note
    assert inf.output.shape == (16, 8, 8) == shape
    assert sum(p.numel() for p in net.parameters()) == sum(r.params for r in inf.records)


def test_residual_applies_activation_after_the_sum():
    spec = spec_from("""
        model:
          dims: 1
          in_channels: 1
          layers:
            - residual: {body: [{conv: {out: 1, kernel: 1, bias: false}}], shortcut: identity, activation: relu}
    """)
    net, _ = build(spec, (4,))
    body_conv = net.steps[0].body.steps[0].conv
    with torch.no_grad():
        body_conv.weight.fill_(-2.0)
    x = torch.tensor([[[1.0, -1.0, 2.0, 0.5]]])
    # σ(f(a) + a) = relu(-2a + a) = relu(-a)
    assert net(x).tolist() == [[[0.0, 1.0, 0.0, 0.0]]]


def test_identity_shortcut_with_different_shape_is_an_error():
    spec = spec_from(RESIDUAL.format(cin=8, cout=16, stride=1, shortcut="identity"))
    with pytest.raises(ShapeError) as err:
        infer(spec, (16, 16))
    assert "body gives 16 × 16 × 16 but the identity shortcut gives 8 × 16 × 16" in err.value.message
    assert "shortcut: auto" in err.value.message
    assert err.value.where == "model.yaml:6:7"


def test_explicit_shortcut_layers():
    spec = spec_from(RESIDUAL.format(cin=8, cout=16, stride=2,
                                     shortcut="[{conv: {out: 16, kernel: 1, stride: 2}}, {norm: batch}]"))
    shape, inf, net = forward_shape(spec, (16, 16))
    names = [r.name for r in inf.records]
    assert names[-2:] == ["residual1.shortcut.conv1", "residual1.shortcut.norm1"]
    assert inf.output.shape == shape == (16, 8, 8)
    assert sum(p.numel() for p in net.parameters()) == sum(r.params for r in inf.records)


UNET = """
    model:
      dims: 2
      in_channels: 3
      blocks:
        double:
          args: {ch: null}
          layers:
            - conv: {out: $ch, kernel: 3, padding: same}
            - relu
            - conv: {out: $ch, kernel: 3, padding: same}
            - relu
      layers:
        - double: {ch: 8, name: e1}
        - pool: max
        - double: {ch: 16, name: e2}
        - pool: max
        - double: {ch: 32}
        - conv_transpose: {out: 16, kernel: 2, stride: 2}
        - concat: e2
        - double: {ch: 16}
        - upsample: {scale: 2, mode: linear}
        - concat: [e1]
        - double: {ch: 8}
        - conv: {out: 2, kernel: 1}
"""


def test_unet_with_concat_skips():
    spec = spec_from(UNET)
    shape, inf, net = forward_shape(spec, (32, 48))
    assert shape == inf.output.shape == (2, 32, 48)
    concat = [r for r in inf.records if r.kind == "concat"]
    assert [c.output_shape for c in concat] == [(32, 16, 24), (24, 32, 48)]
    assert sum(p.numel() for p in net.parameters()) == sum(r.params for r in inf.records)
    # conv_transpose: 2·2·32·16 + 16
    ct = next(r for r in inf.records if r.kind == "conv_transpose")
    assert ct.params == 2 * 2 * 32 * 16 + 16


def test_unet_valid_sizes_rule():
    spec = spec_from(UNET)
    assert size_rules(spec) == ["height: multiples of 4", "width: multiples of 4"]
    assert accepts(spec, (32, 48)) and not accepts(spec, (30, 48))
    assert nearest_accepted(spec, (30, 45)) == (32, 48)


def test_unet_concat_mismatch_names_layer_and_shapes():
    spec = spec_from(UNET)
    with pytest.raises(ShapeError) as err:
        infer(spec, (30, 32))
    msg = err.value.message
    assert "layer 16 'concat1' concat: cannot concatenate 16 × 14 × 16 with 16 × 15 × 16" in msg
    assert err.value.where == "model.yaml:20:7"  # the YAML text starts with a blank line
    assert [r.index for r in err.value.records] == list(range(1, 16))


def test_1d_network_for_three_component_traces():
    spec = spec_from("""
        model:
          dims: 1
          in_channels: 3          # Z, N, E
          axes: [sample]
          layers:
            - conv: {out: 16, kernel: 7, padding: same}
            - relu
            - pool: {size: 4}
            - conv: {out: 32, kernel: 5, padding: same}
            - relu
            - global_pool: max
            - dense: 2
    """)
    shape, inf, net = forward_shape(spec, (256,))
    assert shape == (2,)
    assert [r.output_shape for r in inf.records] == [(16, 256), (16, 256), (16, 64), (32, 64), (32, 64), (32,),
                                                    (2,)]
    assert inf.records[0].params == 7 * 3 * 16 + 16
    assert inf.records[-1].formula == "32·2 + 2 = 66"
    assert sum(p.numel() for p in net.parameters()) == sum(r.params for r in inf.records)


def test_3d_network_for_volumes_with_flatten_dense():
    spec = spec_from("""
        model:
          dims: 3
          in_channels: 1
          layers:
            - conv: {out: 4, kernel: 3, stride: 2, padding: same}
            - norm: {kind: group, groups: 2}
            - silu
            - flatten
            - dropout: 0.2
            - dense: {out: 3}
    """)
    shape, inf, net = forward_shape(spec, (16, 16, 16))
    assert inf.records[0].output_shape == (4, 8, 8, 8)
    assert inf.records[0].params == 3 * 3 * 3 * 1 * 4 + 4
    assert inf.records[3].output_shape == (4 * 8 * 8 * 8,)
    assert shape == (3,)
    assert sum(p.numel() for p in net.parameters()) == sum(r.params for r in inf.records)
    # ceil(N/2) = 8 for N = 15 and 16 only: the dense head fixes the flattened size
    assert size_rules(spec, (16, 16, 16)) == ["depth: only 15, 16", "height: only 15, 16", "width: only 15, 16"]
    assert size_rules(spec) == ["depth: any size ≥ 1", "height: any size ≥ 1", "width: any size ≥ 1"]


def test_receptive_field_of_three_3x3_convs_is_7():
    spec = spec_from("""
        model: {dims: 2, in_channels: 1, layers: [{conv: 1}, {conv: 1}, {conv: 1}]}
    """)
    assert [r.receptive_field for r in infer(spec, (16, 16)).records] == [[3, 3], [5, 5], [7, 7]]


def test_receptive_field_with_stride2_pool_between_convs():
    spec = spec_from("""
        model: {dims: 2, in_channels: 1, layers: [{conv: 1}, {pool: max}, {conv: 1}, {conv: 1}]}
    """)
    recs = infer(spec, (32, 32)).records
    # By hand: conv 1 + 2·1 = 3; pool 3 + 1·1 = 4, jump 2; conv 4 + 2·2 = 8; conv 8 + 2·2 = 12.
    assert [r.receptive_field[0] for r in recs] == [3, 4, 8, 12]
    assert [r.jumps[0] for r in recs] == [1, 2, 2, 2]


def test_receptive_field_through_residual_is_largest_path():
    spec = spec_from(RESIDUAL.format(cin=4, cout=4, stride=1, shortcut="identity"))
    inf = infer(spec, (16, 16))
    assert inf.records[0].receptive_field == [5, 5]  # body 3x3 + 3x3, shortcut 1


def empirical_receptive_field(net, spatial, in_channels, positions=None):
    """Largest extent of input samples whose gradient reaches one output value, per axis."""
    torch.manual_seed(0)
    for p in net.parameters():
        torch.nn.init.uniform_(p, 0.1, 1.0)  # positive weights: no accidental cancellation
    x = torch.randn(1, in_channels, *spatial, requires_grad=True)
    y = net(x)
    best = [0] * len(spatial)
    if positions is None:
        positions = [tuple(i) for i in torch.cartesian_prod(*[torch.arange(n) for n in y.shape[2:]]).view(
            -1, len(spatial)).tolist()]
    for pos in positions:
        g, = torch.autograd.grad(y[(0, 0, *pos)], x, retain_graph=True)
        nz = g[0].abs().sum(0).nonzero()
        for a in range(len(spatial)):
            best[a] = max(best[a], int(nz[:, a].max() - nz[:, a].min() + 1))
    return best


@pytest.mark.parametrize("layers", [
    "[{conv: {out: 2, kernel: 3, padding: same}}, {pool: max}, {conv: {out: 2, kernel: 5, dilation: 2, padding: same}}]",
    "[{conv: {out: 2, kernel: 3, padding: same}}, {conv_transpose: {out: 2, kernel: 3, stride: 2}}]",
    "[{pool: {size: 2}}, {upsample: {scale: 2, mode: linear}}, {conv: {out: 1, kernel: 3, padding: same}}]",
    "[{conv: {out: 2, kernel: 4, stride: 2, padding: same}}, {upsample: 2}, {conv: {out: 1, kernel: 2, padding: same}}]",
])
def test_receptive_field_matches_gradient_support(layers):
    spec = spec_from(f"""
        model: {{dims: 1, in_channels: 1, layers: {layers}}}
    """)
    n = 40
    net, inf = build(spec, (n,))
    assert empirical_receptive_field(net, (n,), 1) == [math.ceil(r) for r in inf.output.rf]


def test_receptive_field_through_unet_skips_is_exact():
    # A linear version of the U-Net (mean pooling, no activation) so every path passes gradient.
    spec = spec_from(UNET.replace("- relu", "- dropout: 0.0").replace("pool: max", "pool: mean"))
    net, inf = build(spec, (96, 96))
    net.eval()
    centre = [(i, j) for i in range(44, 52) for j in range(46, 48)]  # interior, every residue mod 4
    measured = empirical_receptive_field(net, (96, 96), 3, centre)
    assert measured == inf.records[-1].receptive_field
    # The closed-form recursion (evenly spaced values) says 46; linear upsampling spaces values
    # unevenly, so some outputs see 48 samples — the gradient support above agrees with 48.
    assert inf.records[-1].receptive_field == [48, 48]


def test_meta_device_forward_allocates_nothing_and_matches():
    spec = spec_from(UNET)
    with torch.device("meta"):
        net, inf = build(spec, (64, 64))
        y = net(torch.empty(4, 3, 64, 64))
    assert y.device.type == "meta"
    assert tuple(y.shape[1:]) == inf.output.shape


def test_grouped_and_dilated_conv_parameters():
    spec = spec_from("""
        model: {dims: 2, in_channels: 16, layers: [{conv: {out: 32, kernel: 3, groups: 4, dilation: 2}}]}
    """)
    shape, inf, net = forward_shape(spec, (20, 20))
    rec = inf.records[0]
    assert rec.params == 3 * 3 * 4 * 32 + 32
    assert rec.output_shape == (32, 16, 16) == shape  # N_h = 2·(3−1)+1 = 5
    assert rec.receptive_field == [5, 5]


def test_transposed_same_padding_doubles():
    spec = spec_from("""
        model:
          dims: 2
          in_channels: 4
          layers: [{conv_transpose: {out: 2, kernel: 3, stride: 2, padding: same}},
                   {conv_transpose: {out: 2, kernel: 4, stride: 2, padding: same}}]
    """)
    shape, inf, _ = forward_shape(spec, (5, 7))
    assert [r.output_shape for r in inf.records] == [(2, 10, 14), (2, 20, 28)]
    assert shape == (2, 20, 28)
