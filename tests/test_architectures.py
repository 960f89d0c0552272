"""Summaries are exact for every architecture: analytic shapes, parameters, receptive fields and
unread-sample warnings equal what the built module does.

First the examples of issue 10 §4 (each failed before the fix), then the rule over the grammar:
seeded random architectures, each built and run forward, and for the linear ones the receptive
field compared with the support of the gradient.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml
from torch import nn

from geocnn.errors import ShapeError
from geocnn.model import accepts, infer, size_rules
from geocnn.model.network import build
from tests.conftest import ROOT, spec_from


def _spec(layers: list, dims: int = 1, in_channels: int = 1, blocks: dict | None = None):
    model = {"dims": dims, "in_channels": in_channels, "layers": layers}
    if blocks:
        model["blocks"] = blocks
    return spec_from(yaml.safe_dump({"model": model}, sort_keys=False))


def _params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def gradient_support(net: nn.Module, spatial, in_channels: int) -> tuple[list[int], np.ndarray]:
    """(largest extent per axis of the input samples whose gradient reaches one output value,
    mask of input samples that reach any output). Positive weights: no accidental cancellation."""
    torch.manual_seed(0)
    for p in net.parameters():
        nn.init.uniform_(p, 0.1, 1.0)
    net.eval()
    x = torch.randn(1, in_channels, *spatial, requires_grad=True)
    y = net(x)

    def support(g: torch.Tensor) -> torch.Tensor:
        # float rounding leaves weights of ~1e-8 where the exact weight is 0 (linear upsampling by 3
        # computes (1 + ½)·(1/3) − ½ in float32): relative to the largest, such residues are not support
        g = g[0].abs().sum(0)
        return g > 1e-5 * g.max()

    positions = [()] if y.ndim == 2 else [tuple(int(v) for v in i) for i in np.ndindex(*y.shape[2:])]
    best = [0] * len(spatial)
    for pos in positions:
        g, = torch.autograd.grad(y[(0, 0, *pos)], x, retain_graph=True)
        nz = support(g).nonzero()
        if len(nz) == 0:
            continue  # a value computed from padding only
        for a in range(len(spatial)):
            best[a] = max(best[a], int(nz[:, a].max() - nz[:, a].min() + 1))
    g, = torch.autograd.grad(y.sum(), x)
    return best, support(g).numpy()


# ----------------------------------------------------------------------------- shortcut: auto

def _strided_residual(stride: int, shortcut: str = "auto") -> list:
    return [{"residual": {"body": [{"conv": {"out": 2, "kernel": 3, "stride": stride, "padding": 1}}],
                          "shortcut": shortcut}}]


def test_auto_shortcut_with_body_stride_3_where_rounding_failed():
    # length 5, body stride 3 (pad 1): (5 + 2 − 3)//3 + 1 = 2 outputs. round(5/2) = 2 gave a stride-2
    # projection, (5 − 1)//2 + 1 = 3 ≠ 2: "no 1×1 projection maps length 5 onto 2". The body's stride 3
    # gives (5 − 1)//3 + 1 = 2.
    spec = _spec(_strided_residual(3))
    net, inf = build(spec, (5,))
    sc = inf.record(3)
    assert sc.projection_stride == (3,)
    assert sc.params == 1 * 1 * 2 + 2
    assert tuple(net(torch.randn(2, 1, 5)).shape[1:]) == inf.output.shape == (2, 2)
    assert net.steps[0].shortcut.conv.stride == (3,)


def test_auto_shortcut_with_body_stride_4_where_rounding_chose_3():
    # length 9, body stride 4: (9 + 2 − 3)//4 + 1 = 3 outputs at 0, 4, 8. round(9/3) = 3 projected with
    # stride 3 (samples 0, 3, 6: other positions than the body) and reported jump 3. Now stride 4, jump 4.
    spec = _spec(_strided_residual(4))
    net, inf = build(spec, (9,))
    assert inf.record(3).projection_stride == (4,)
    assert inf.record(3).jumps == [4]
    assert net.steps[0].shortcut.conv.stride == (4,)
    assert tuple(net(torch.randn(2, 1, 9)).shape[1:]) == (2, 3)


def test_auto_shortcut_with_upsampling_body_is_refused_with_a_fix():
    spec = _spec([{"residual": {"body": [{"conv": {"out": 2, "kernel": 1}}, {"upsample": 2}]}}])
    with pytest.raises(ShapeError, match=r"changes the sample spacing along length by ×1/2.*give shortcut layers"):
        infer(spec, (8,))


def test_auto_norm_shortcut_is_a_1x1_conv_without_bias_and_batch_norm():
    # 1×1 conv 1 → 2 channels without bias: 2 weights; batch norm: γ, β per channel = 4 → 6
    spec = _spec(_strided_residual(2, "auto_norm"))
    net, inf = build(spec, (8,))
    sc = inf.record(3)
    assert sc.params == 1 * 2 + 2 * 2
    assert sc.formula == "1·1·2 + 2·2 = 6"
    assert "batch norm" in sc.note
    shortcut = net.steps[0].shortcut
    assert isinstance(shortcut[0].conv, nn.Conv1d) and shortcut[0].conv.bias is None
    assert isinstance(shortcut[1], nn.BatchNorm1d)
    assert _params(net) == sum(r.params for r in inf.records)


def _resnet18(head: str = "adaptive"):
    basic = {"args": {"ch": None, "stride": 1}, "layers": [{"residual": {"body": [
        {"conv": {"out": "$ch", "kernel": 3, "stride": "$stride", "padding": 1, "bias": False}},
        {"norm": "batch"}, "relu",
        {"conv": {"out": "$ch", "kernel": 3, "padding": 1, "bias": False}}, {"norm": "batch"}],
        "shortcut": "auto_norm"}}]}
    stages = [{"basic": {"ch": c, **({"stride": 2} if s else {})}} for c in (64, 128, 256, 512) for s in (c > 64, 0)]
    pool = [{"adaptive_pool": {"kind": "mean", "size": 1}}, "flatten"] if head == "adaptive" else ["flatten"]
    layers = [{"conv": {"out": 64, "kernel": 7, "stride": 2, "padding": 3, "bias": False}}, {"norm": "batch"}, "relu",
              {"pool": {"kind": "max", "size": 3, "stride": 2, "padding": 1}}, *stages, *pool, {"dense": 1000}]
    return _spec(layers, dims=2, in_channels=3, blocks={"basic": basic})


def test_resnet18_has_torchvision_parameter_count_and_no_false_warnings_at_224():
    spec = _resnet18()
    inf = infer(spec, (224, 224))
    # torchvision's resnet18 has 11,689,512 parameters
    assert sum(r.params for r in inf.records) == 11_689_512
    # padding is not a sample: 7×7/2 pad 3 and 3×3/2 pad 1 read every sample of 224, 112, 56, 28, 14
    assert inf.warnings == []
    assert accepts(spec, (224, 224))
    with torch.device("meta"):
        net, _ = build(spec, (224, 224))
        y = net(torch.empty(2, 3, 224, 224))
    assert tuple(y.shape[1:]) == inf.output.shape == (1000,)
    assert _params(net) == 11_689_512


def test_strided_3x3_with_padding_1_reads_every_sample_of_an_even_size():
    # out = (224 + 2 − 3)//2 + 1 = 112; output o reads 2o − 1, 2o, 2o + 1: all of 0..223 (−1 is padding).
    # The old rule ((224 + 2 − 3) % 2 = 1) warned "drops the last 1 sample".
    spec = _spec([{"conv": {"out": 1, "kernel": 3, "stride": 2, "padding": 1}}])
    assert infer(spec, (224,)).warnings == []
    assert size_rules(spec) == ["length: any size ≥ 1"]


STEM = [{"conv": {"out": 4, "kernel": 7, "stride": 2, "padding": 3, "bias": False}}, {"norm": "batch"}, "relu",
        {"pool": {"kind": "max", "size": 3, "stride": 2, "padding": 1}},
        {"residual": {"body": [{"conv": {"out": 8, "kernel": 3, "stride": 2, "padding": 1, "bias": False}},
                               {"norm": "batch"}, "relu", {"conv": {"out": 8, "kernel": 3, "padding": 1, "bias": False}},
                               {"norm": "batch"}], "shortcut": "auto_norm"}}]


def test_resnet_stem_valid_sizes_include_224():
    # every window reads every sample for any size (the old rule said "1 + 8·k": 224 refused)
    assert size_rules(_spec(STEM, dims=2)) == ["height: any size ≥ 1", "width: any size ≥ 1"]
    # with a dense head: flatten fixes 8 × 28 × 28, and (n − 1)//8 + 1 = 28 for n = 217 … 224
    head = _spec([*STEM, "flatten", {"dense": 3}], dims=2)
    assert size_rules(head, (224, 224)) == ["height: 217 to 224", "width: 217 to 224"]


# ----------------------------------------------------------------------------- unread samples

def test_dilated_strided_conv_that_never_reads_even_samples_is_warned():
    # kernel 3, dilation 2, stride 2, pad 1 on 13: 6 outputs; output o reads 2o − 1 + (0, 2, 4): odd positions
    # only, so the 7 even samples 0, 2, …, 12 are never read (the old rule saw (13 + 2 − 5) % 2 = 0: no warning)
    spec = _spec([{"conv": {"out": 1, "kernel": 3, "dilation": 2, "stride": 2, "padding": 1}}])
    inf = infer(spec, (13,))
    assert inf.output.shape == (1, 6)
    assert inf.warnings == ["layer 1 'conv1': kernel 3 with stride 2, dilation 2 never reads 7 of 13 samples along "
                            "length (positions 0, 2, 4, 6, …; 13 → 6): those samples are never seen"]


def test_pool_stride_larger_than_window_counts_every_gap():
    # window 2, stride 3 on 9: 3 outputs read (0, 1), (3, 4), (6, 7): samples 2, 5, 8 unread (the old message said 1)
    spec = _spec([{"pool": {"size": 2, "stride": 3}}])
    assert infer(spec, (9,)).warnings == ["layer 1 'pool1': window 2 with stride 3 never reads 3 of 9 samples along "
                                          "length (positions 2, 5, 8; 9 → 3): those samples are never seen"]


WINDOWS = [(n, k, s, d, p, mode) for n in (4, 9, 13) for k in (1, 3) for s in (1, 2, 3) for d in (1, 3)
           for p in (0, 2) for mode in ("zeros", "reflect", "circular") if (p > 0 or mode == "zeros")]


@pytest.mark.parametrize("n, k, s, d, p, mode", WINDOWS)
def test_warned_count_equals_samples_without_gradient(n, k, s, d, p, mode):
    """Rule: the warning names exactly the input samples no output depends on (measured by gradient),
    with padding read as nothing (zeros) or as the sample it copies (reflect, circular)."""
    spec = _spec([{"conv": {"out": 1, "kernel": k, "stride": s, "dilation": d, "padding": p, "padding_mode": mode}}])
    try:
        inf = infer(spec, (n,))
    except ShapeError:
        return
    net, _ = build(spec, (n,))
    _, reached = gradient_support(net, (n,), 1)
    unread = np.flatnonzero(~reached)
    if len(unread) == 0:
        assert inf.warnings == []
    else:
        assert len(inf.warnings) == 1 and f"never reads {len(unread)} of {n} samples" in inf.warnings[0]
        assert ", ".join(str(i) for i in unread[:4]) in inf.warnings[0]


def test_facies_unet_valid_sizes_from_a_refused_size():
    # 30 × 100 is refused (30 → 15 → 7 drops a sample, the skip sizes then differ), but the rule still
    # says what works: two 2×2 poolings → multiples of 4 (it said "no size up to 100 works")
    from geocnn.config import load_config

    spec = load_config(ROOT / "configs" / "facies2d.yaml").model
    assert not accepts(spec, (30, 100))
    assert size_rules(spec, (30, 100)) == ["crossline: multiples of 4", "sample: multiples of 4"]


# ----------------------------------------------------------------------------- norm after dense

def test_batch_norm_after_dense_in_a_2d_model_builds_batchnorm1d():
    # dense 4·4·4 = 64 → 10: 640 + 10 = 650; batch norm 2·10 = 20; dense 10 → 2: 22
    spec = _spec([{"conv": {"out": 4, "kernel": 3}}, "flatten", {"dense": 10}, {"norm": "batch"}, "relu",
                  {"dense": 2}], dims=2)
    net, inf = build(spec, (6, 6))
    assert [r.params for r in inf.records] == [3 * 3 * 1 * 4 + 4, 0, 650, 20, 0, 22]
    assert isinstance(net.steps[3], nn.BatchNorm1d)
    net.train()
    assert tuple(net(torch.randn(3, 1, 6, 6)).shape) == (3, 2)  # BatchNorm2d raised on the (B, C) tensor
    assert _params(net) == sum(r.params for r in inf.records)


# ----------------------------------------------------------------------------- linear upsampling

@pytest.mark.parametrize("scale", [3, 5])
def test_linear_upsampling_by_an_odd_factor_reads_one_sample_where_it_lands_on_one(scale):
    # scale 3: output o sits at (o + ½)/3 − ½ of the input; o = 1, 4, 7, … land exactly on samples 0, 1, 2, …
    # (weight 0 for the neighbour), the others between two. A 2-conv over o = 3, 4 reads (0, 1) and (1):
    # receptive field 2; counting both neighbours everywhere reported 3. Scale 5: o = 2, 7, 12, … land.
    spec = _spec([{"upsample": {"scale": scale, "mode": "linear"}}, {"conv": {"out": 1, "kernel": 2}}])
    net, inf = build(spec, (8,))
    measured, _ = gradient_support(net, (8,), 1)
    assert measured == list(inf.output.rf) == [2]


def test_linear_upsampling_by_3_alone_is_exact_per_position():
    spec = _spec([{"upsample": {"scale": 3, "mode": "linear"}}])
    inf = infer(spec, (4,))
    lo, hi = inf.output.lo[0], inf.output.hi[0]
    # o = 0: clamped to sample 0; o = 1: on sample 0; o = 2: between 0 and 1; o = 4: on 1; o = 11: clamped to 3
    assert [(int(a), int(b)) for a, b in zip(lo, hi)] == [
        (0, 0), (0, 0), (0, 1), (0, 1), (1, 1), (1, 2), (1, 2), (2, 2), (2, 3), (2, 3), (3, 3), (3, 3)]


# ----------------------------------------------------------------------------- adaptive pooling

def test_adaptive_pool_gives_a_vgg_head_any_input_size():
    layers = [{"conv": {"out": 4, "kernel": 3, "padding": "same"}}, "relu", {"pool": "max"},
              {"adaptive_pool": {"kind": "max", "size": [3, 2]}}, "flatten", {"dense": 5}]
    spec = _spec(layers, dims=2)
    net, inf = build(spec, (16, 16))
    # flatten 4·3·2 = 24 → dense 24·5 + 5 = 125; conv 3·3·1·4 + 4 = 40
    assert [r.output_shape for r in inf.records] == [(4, 16, 16), (4, 16, 16), (4, 8, 8), (4, 3, 2), (24,), (5,)]
    assert sum(r.params for r in inf.records) == _params(net) == 40 + 125
    for size in ((16, 16), (22, 13), (9, 31)):
        assert tuple(net(torch.randn(2, 1, *size)).shape) == (2, 5)
        assert accepts(spec, size, reference=(16, 16)) == (size[0] % 2 == 0 and size[1] % 2 == 0)


def test_adaptive_pool_receptive_field_equals_gradient_support():
    # 7 → 3 windows [0, 3), [2, 5), [4, 7) (torch: ⌊i·7/3⌋ to ⌈(i+1)·7/3⌉): 3 samples, then a 3-conv (same) → 5 … 7
    spec = _spec([{"conv": {"out": 1, "kernel": 3, "padding": "same"}}, {"adaptive_pool": {"size": 3}}], dims=1)
    net, inf = build(spec, (7,))
    measured, _ = gradient_support(net, (7,), 1)
    assert measured == list(inf.output.rf) == [5]
    assert inf.records[-1].receptive_field == [5]


# ----------------------------------------------------------------------------- the rule, over the grammar

def _pick(rng: np.random.Generator, options: list):
    return options[int(rng.integers(len(options)))]


def _random_layers(rng: np.random.Generator, dims: int, linear: bool) -> list:
    """A random small network over the grammar; ``linear`` keeps gradients positive and local (for the
    receptive field check): mean pooling, no activation (a saturated tanh has zero gradient), batch norm
    only (instance and group norm statistics couple every position)."""
    act = {"dropout": 0.0} if linear else _pick(rng, ["relu", "gelu", "tanh", {"leaky_relu": 0.1}])
    layers: list = []
    for i in range(int(rng.integers(2, 6))):
        kind = _pick(rng, ["conv", "conv", "pool", "upsample", "conv_transpose", "residual", "skip", "norm", "act"])
        if kind == "conv":
            padding = _pick(rng, ["valid", "same", int(rng.integers(0, 3))])
            modes = ["zeros", "replicate", "circular", "reflect"]
            layers.append({"conv": {"out": _pick(rng, [2, 4]), "kernel": int(rng.integers(1, 5)),
                                    "stride": int(rng.integers(1, 4)), "dilation": int(rng.integers(1, 3)),
                                    "padding": padding, "bias": bool(rng.integers(2)),
                                    "padding_mode": _pick(rng, modes) if padding != "valid" else "zeros"}})
        elif kind == "pool":
            size = int(rng.integers(1, 4))
            layers.append({"pool": {"kind": "mean" if linear else _pick(rng, ["max", "mean"]), "size": size,
                                    "stride": int(rng.integers(1, 4)),
                                    "padding": _pick(rng, ["valid", "same", size // 2])}})
        elif kind == "upsample":
            layers.append({"upsample": {"scale": int(rng.integers(1, 4)), "mode": _pick(rng, ["nearest", "linear"])}})
        elif kind == "conv_transpose":
            layers.append({"conv_transpose": {"out": 2, "kernel": int(rng.integers(2, 4)),
                                              "stride": int(rng.integers(1, 3))}})
        elif kind == "residual":
            stride = int(rng.integers(1, 5))
            body = [{"conv": {"out": 4, "kernel": 3, "stride": stride, "padding": "same"}}, {"norm": "batch"}, act,
                    {"conv": {"out": 4, "kernel": _pick(rng, [1, 3]), "padding": "same"}}]
            layers.append({"residual": {"body": body, "shortcut": _pick(rng, ["auto", "auto_norm"]),
                                        "activation": act if isinstance(act, str) else "none"}})
        elif kind == "skip":
            layers.append({"dropout": {"p": 0.0}, "name": f"s{i}"})
            layers.append({"conv": {"out": 2, "kernel": _pick(rng, [1, 3, 5]), "dilation": int(rng.integers(1, 3)),
                                    "padding": "same"}})
            layers.append({"concat": f"s{i}"})
        elif kind == "norm":
            layers.append({"norm": "batch" if linear else _pick(rng, ["batch", "instance", {"kind": "group",
                                                                                            "groups": 1}])})
        else:
            layers.append(act)
    if rng.random() < 0.35:
        head = _pick(rng, [[{"global_pool": "mean"}], [{"adaptive_pool": {"size": 2}}, "flatten"], ["flatten"]])
        layers += [*head, {"dense": 6}, {"norm": "batch"}, act, {"dense": 3}]
    return layers


def _fuzz_cases(seed: int, count: int, linear: bool):
    rng = np.random.default_rng(seed)
    made = 0
    for _ in range(count * 20):
        dims = int(rng.integers(1, 3))
        size = tuple(int(rng.integers(6, 25 if dims == 1 else 13)) for _ in range(dims))
        spec = _spec(_random_layers(rng, dims, linear), dims=dims, in_channels=2)
        try:
            inf = infer(spec, size, receptive=False)
        except ShapeError:
            continue  # an invalid combination: its error is tested elsewhere
        if max(r.numel for r in inf.records) > 4000 or (linear and inf.output.numel > 400):
            continue  # upsampling chains: keep each forward (and each gradient per output) small
        yield spec, size, inf
        made += 1
        if made == count:
            return
    raise AssertionError(f"only {made} valid random architectures")


@pytest.mark.parametrize("seed", range(4))
def test_random_architectures_analytic_equals_built(seed):
    """Rule: for any valid YAML, the analytic output shape and parameter count equal the module's."""
    for spec, size, inf in _fuzz_cases(seed, 20, linear=False):
        net, _ = build(spec, size, receptive=False)
        net.eval()
        with torch.no_grad():
            y = net(torch.randn(2, 2, *size))
        layers = yaml.safe_dump(spec.raw["layers"], default_flow_style=True, width=10_000)
        assert tuple(y.shape[1:]) == inf.output.shape, (size, layers)
        assert _params(net) == sum(r.params for r in inf.records), (size, layers)


@pytest.mark.parametrize("seed", range(3))
def test_random_architectures_receptive_field_equals_gradient_support(seed):
    """Rule: the analytic receptive field equals the measured gradient support, and a network without
    unread-sample warnings lets every input sample reach the output."""
    for spec, size, inf in _fuzz_cases(100 + seed, 6, linear=True):
        net, _ = build(spec, size, receptive=False)
        measured, reached = gradient_support(net, size, 2)
        layers = yaml.safe_dump(spec.raw["layers"], default_flow_style=True, width=10_000)
        assert measured == list(inf.output.rf), (size, layers)
        if not inf.warnings:
            assert reached.all(), (size, layers)


# ----------------------------------------------------------------------------- coverage over paths (issue 18 §5)

def _resnet18_torchvision_shortcuts():
    """ResNet-18 as torchvision writes it: the downsampling shortcut is an explicit 1×1 stride-2 conv + norm."""
    raw = _resnet18().raw
    down = yaml.safe_load(yaml.safe_dump(raw["blocks"]["basic"]))
    down["layers"][0]["residual"]["shortcut"] = [
        {"conv": {"out": "$ch", "kernel": 1, "stride": "$stride", "bias": False}}, {"norm": "batch"}]
    layers = [{"down": item["basic"]} if isinstance(item, dict) and "stride" in item.get("basic", {}) else item for item in raw["layers"]]
    return _spec(layers, dims=2, in_channels=3, blocks={"basic": raw["blocks"]["basic"], "down": down})


def test_resnet18_with_explicit_stride_2_shortcuts_is_accepted_at_224():
    # the 1×1/2 shortcuts of stages 2–4 skip the odd samples of 56, 28, 14, but the body's 3×3/2 conv
    # (pad 1) reads them: no sample of the network is dropped (it gave 6 warnings and accepts False)
    spec = _resnet18_torchvision_shortcuts()
    inf = infer(spec, (224, 224))
    assert sum(r.params for r in inf.records) == 11_689_512
    assert inf.warnings == []
    assert accepts(spec, (224, 224))
    shortcuts = [r for r in inf.records if r.role == "shortcut" and r.kind == "conv"]
    assert [r.output_shape[1:] for r in shortcuts] == [(28, 28), (14, 14), (7, 7)]
    assert shortcuts[0].note.endswith("skips 28 of 56 samples along height, width, which the body reads "
                                      "(ResNet-B; ResNet-D's average pool lets the shortcut read them)")


def _block(body: dict, shortcut) -> list:
    """A linear residual block on the network input, then layers that read every sample (1×1 conv, global pool)."""
    return [{"residual": {"body": [{"conv": {"out": 2, **body}}, {"conv": {"out": 2, "kernel": 1}}],
                          "shortcut": shortcut, "activation": "none"}}, {"global_pool": "mean"}, {"dense": 1}]


SHORTCUTS = {
    "1x1/s": lambda s: [{"conv": {"out": 2, "kernel": 1, "stride": s}}],
    "3x3/s": lambda s: [{"conv": {"out": 2, "kernel": 3, "stride": s, "padding": 1}}],
    "pool+1x1": lambda s: [{"pool": {"kind": "mean", "size": s, "stride": s}}, {"conv": {"out": 2, "kernel": 1}}],
    "auto": lambda s: "auto",
}
BLOCKS = [(n, k, s, p, sc) for n in (7, 12) for k in (1, 2, 3) for s in (1, 2, 3) for p in (0, 1, "same")
          for sc in SHORTCUTS]


@pytest.mark.parametrize("n, k, s, p, sc", BLOCKS)
def test_dropped_samples_are_those_no_path_reads(n, k, s, p, sc):
    """Rule: an input sample is warned about exactly when no path of the network reads it (measured by
    gradient, positive weights); a path skipping samples another reads is only a note."""
    spec = _spec(_block({"kernel": k, "stride": s, "padding": p}, SHORTCUTS[sc](s)))
    try:
        inf = infer(spec, (n,))
    except ShapeError:
        return  # the paths' sizes differ: refused, tested elsewhere
    net, _ = build(spec, (n,))
    _, reached = gradient_support(net, (n,), 1)
    unread = np.flatnonzero(~reached)
    assert accepts(spec, (n,)) == (len(unread) == 0)
    assert inf.dropped == (len(unread) > 0)
    if len(unread):
        assert inf.warnings and all(f"never reads {len(unread)} of {n} samples" in w for w in inf.warnings)
        assert all(", ".join(map(str, unread[:4])) in w for w in inf.warnings)
    else:
        assert inf.warnings == []


def test_block_table_has_cases_on_both_sides():
    outcomes = set()
    for n, k, s, p, sc in BLOCKS:
        try:
            outcomes.add(infer(_spec(_block({"kernel": k, "stride": s, "padding": p}, SHORTCUTS[sc](s))), (n,),
                               receptive=False).dropped)
        except ShapeError:
            continue
    assert outcomes == {True, False}


CHAINS = [(n, k1, s1, k2, s2) for n in (12,) for k1 in (1, 3) for s1 in (1, 2, 3) for k2 in (1, 2, 3)
          for s2 in (1, 2, 3)]


@pytest.mark.parametrize("n, k1, s1, k2, s2", CHAINS)
def test_plain_chain_warnings_agree_with_gradient(n, k1, s1, k2, s2):
    """Rule for a plain chain (one path): the first layer's warned samples reach no output, and a chain
    without warnings lets every input sample reach the output."""
    spec = _spec([{"conv": {"out": 2, "kernel": k1, "stride": s1}}, {"pool": {"kind": "mean", "size": k2,
                                                                            "stride": s2}}])
    try:
        inf = infer(spec, (n,))
    except ShapeError:
        return
    net, _ = build(spec, (n,))
    _, reached = gradient_support(net, (n,), 1)
    if not inf.warnings:
        assert reached.all()
    first = inf.record(1).warnings
    if first:
        count = int(first[0].split("never reads ")[1].split(" of")[0])
        assert count <= (~reached).sum()
