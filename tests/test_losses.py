"""Losses on tiny tensors whose values are worked out by hand in the comments.

Logits are chosen so that softmax gives round probabilities: logits (0, ln 3) → (1/4, 3/4).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from geocnn.losses import (
    ClassLoss,
    HiddenLoss,
    ValueLoss,
    class_weights_from_frequencies,
    soft_balanced_bce,
    soft_cross_entropy,
    soft_dice,
    soft_focal,
)
from geocnn.tasks import DEAD_LABEL

LN3 = math.log(3.0)


def _two_samples() -> torch.Tensor:
    """(B=1, K=2, N=3) logits: sample 0 → p = (1/4, 3/4); sample 1 → p = (1/4, 3/4); sample 2 → (3/4, 1/4)."""
    return torch.tensor([[[0.0, 0.0, LN3], [LN3, LN3, 0.0]]])


# targets: sample 0 is class 1 (p_t = 3/4), sample 1 is class 0 (p_t = 1/4), sample 2 is ignored (255)
TARGET = torch.tensor([[1, 0, 255]])


def test_weighted_cross_entropy_by_hand():
    # weights (1, 3): Σ w_t·(−ln p_t) / Σ w_t = (3·ln(4/3) + 1·ln 4) / (3 + 1); the ignored sample counts nowhere
    loss = ClassLoss("cross_entropy", [1.0, 3.0], 255, 2.0)(_two_samples(), TARGET)
    assert loss.item() == pytest.approx((3 * math.log(4 / 3) + math.log(4)) / 4, rel=1e-6)


def test_focal_loss_by_hand():
    # γ = 2: −(1 − p_t)²·ln p_t per valid sample: (1/4)²·ln(4/3) and (3/4)²·ln 4, mean over the 2 valid samples
    loss = ClassLoss("focal", None, 255, 2.0)(_two_samples(), TARGET)
    assert loss.item() == pytest.approx((math.log(4 / 3) / 16 + 9 * math.log(4) / 16) / 2, rel=1e-6)


def test_focal_loss_with_class_weights_by_hand():
    # weights (1, 3) multiply each sample's term (the mean stays over the valid count, 2):
    # (3·(1/16)·ln(4/3) + 1·(9/16)·ln 4) / 2
    loss = ClassLoss("focal", [1.0, 3.0], 255, 2.0)(_two_samples(), TARGET)
    assert loss.item() == pytest.approx((3 * math.log(4 / 3) / 16 + 9 * math.log(4) / 16) / 2, rel=1e-6)


def test_focal_loss_with_gamma_zero_is_cross_entropy():
    # (1 − p_t)⁰ = 1: the mean of −ln p_t = (ln(4/3) + ln 4) / 2
    loss = ClassLoss("focal", None, 255, 0.0)(_two_samples(), TARGET)
    assert loss.item() == pytest.approx((math.log(4 / 3) + math.log(4)) / 2, rel=1e-6)


def test_balanced_bce_by_hand():
    # one logit channel; y = (1, 0, 0, 0): β = share of negatives = 3/4.
    # loss = −[β·y·ln σ(x) + (1 − β)·(1 − y)·ln σ(−x)], mean over the 4 samples:
    #   x = 0, y = 1:     3/4 · ln 2
    #   x = 0, y = 0:     1/4 · ln 2
    #   x = ln 3, y = 0:  1/4 · ln 4        (σ(−ln 3) = 1/4)
    #   x = −ln 3, y = 0: 1/4 · ln(4/3)     (σ(ln 3) = 3/4)
    out = torch.tensor([[[0.0, 0.0, LN3, -LN3]]])
    target = torch.tensor([[1, 0, 0, 0]])
    expected = (0.75 * math.log(2) + 0.25 * math.log(2) + 0.25 * math.log(4) + 0.25 * math.log(4 / 3)) / 4
    assert ClassLoss("bce_balanced", None, None, 2.0)(out, target).item() == pytest.approx(expected, rel=1e-6)
    # two channels: the logit of class 1 is their difference, so (0, x) gives the same loss
    two = torch.cat([torch.zeros_like(out), out], dim=1)
    assert ClassLoss("bce_balanced", None, None, 2.0)(two, target).item() == pytest.approx(expected, rel=1e-6)


def test_balanced_bce_leaves_ignored_samples_out_of_beta_and_the_mean():
    # the same four samples plus an ignored one (255) with a large logit: nothing changes
    out = torch.tensor([[[0.0, 0.0, LN3, -LN3, 9.0]]])
    target = torch.tensor([[1, 0, 0, 0, 255]])
    expected = (0.75 * math.log(2) + 0.25 * math.log(2) + 0.25 * math.log(4) + 0.25 * math.log(4 / 3)) / 4
    assert ClassLoss("bce_balanced", None, 255, 2.0)(out, target).item() == pytest.approx(expected, rel=1e-6)


def test_dice_loss_by_hand():
    # two samples, both class 0; p = (3/4, 1/4) and (1/4, 3/4). Smoothed Dice per class (2·∩ + 1)/(Σp + Σt + 1):
    #   class 0: ∩ = 3/4 + 1/4 = 1, Σp = 1, Σt = 2 → (2 + 1)/(1 + 2 + 1) = 3/4
    #   class 1: ∩ = 0,            Σp = 1, Σt = 0 → (0 + 1)/(1 + 0 + 1) = 1/2
    # loss = 1 − (3/4 + 1/2)/2 = 3/8
    logits = torch.tensor([[[LN3, 0.0], [0.0, LN3]]])
    loss = ClassLoss("dice", None, None, 2.0)(logits, torch.tensor([[0, 0]]))
    assert loss.item() == pytest.approx(3 / 8, rel=1e-6)


def test_dice_loss_of_a_single_binary_channel_uses_zero_as_the_class_0_score():
    # one channel x → logits (0, x): x = −ln 3 gives p = (3/4, 1/4), x = ln 3 gives (1/4, 3/4): as above, 3/8
    out = torch.tensor([[[-LN3, LN3]]])
    assert ClassLoss("dice", None, None, 2.0)(out, torch.tensor([[0, 0]])).item() == pytest.approx(3 / 8, rel=1e-6)


def test_median_frequency_class_weights_by_hand():
    # present frequencies (0.5, 0.25, 0.25): median 0.25 → weights 0.25/f = (0.5, 1, 1); absent class → largest (1)
    assert class_weights_from_frequencies(np.array([0.5, 0.25, 0.25, 0.0])) == [0.5, 1.0, 1.0, 1.0]
    assert class_weights_from_frequencies(np.zeros(3)) == [1.0, 1.0, 1.0]


@pytest.mark.parametrize("kind, expected", [("mse", (0.25 + 4.0) / 2), ("l1", (0.5 + 2.0) / 2),
                                            # huber δ = 1: 0.5·0.5² = 0.125 and 1·(2 − 0.5) = 1.5
                                            ("huber", (0.125 + 1.5) / 2)])
def test_value_losses_by_hand(kind, expected):
    # errors 0.5 and −2
    loss = ValueLoss(kind, 1.0)(torch.tensor([[1.5], [0.0]]), torch.tensor([1.0, 2.0]))
    assert loss.item() == pytest.approx(expected)
    # the hidden-sample loss scores the same two errors when only those samples are hidden
    out = torch.tensor([[[1.5, 0.0, 7.0, -3.0]]])  # (B, C, N): the last two samples are visible
    target = torch.tensor([[[1.0, 2.0, 0.0, 0.0], [1.0, 1.0, 0.0, 0.0]]])  # inputs, then the hidden mask
    assert HiddenLoss(kind, 1.0)(out, target).item() == pytest.approx(expected)


def test_soft_cross_entropy_by_hand():
    # probabilities: sample 0 (0.2, 0.8), sample 1 (1, 0), sample 2 all 0 (missing: no class); weights (1, 3)
    # Σ −w·y·ln p = 3·0.8·ln(4/3) + 0.2·ln 4 + 1·ln 4; Σ w·y = 0.2 + 3·0.8 + 1
    target = torch.tensor([[[0.2, 1.0, 0.0], [0.8, 0.0, 0.0]]])
    loss = ClassLoss("cross_entropy", [1.0, 3.0], None, 2.0)(_two_samples(), target)
    expected = (2.4 * math.log(4 / 3) + 0.2 * math.log(4) + math.log(4)) / 3.6
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_soft_cross_entropy_of_one_hot_targets_is_the_class_index_loss():
    one_hot = torch.tensor([[[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]])  # class 1, class 0, missing (as index 255)
    soft = ClassLoss("cross_entropy", [1.0, 3.0], None, 2.0)(_two_samples(), one_hot)
    assert soft.item() == pytest.approx(ClassLoss("cross_entropy", [1.0, 3.0], 255, 2.0)(_two_samples(), TARGET).item(),
                                        rel=1e-6)


def test_soft_cross_entropy_gradient_flows_to_every_score():
    logits = _two_samples().requires_grad_()
    target = torch.tensor([[[0.2, 1.0, 0.5], [0.8, 0.0, 0.5]]])
    ClassLoss("cross_entropy", [1.0, 5.0], None, 2.0)(logits, target).backward()
    # ∂L/∂z_nk = (p_nk·Σ_c w_c·y_nc − w_k·y_nk) / Σ_n,c w_c·y_nc
    w, y, p = torch.tensor([1.0, 5.0])[:, None], target[0], _two_samples()[0].softmax(0)
    expected = (p * (w * y).sum(0) - w * y) / (w * y).sum()
    torch.testing.assert_close(logits.grad[0], expected)


# ----------------------------------------------------------------------------- soft targets of every class loss

def _indices_and_one_hot(seed: int = 0, classes: int = 3) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(B=2, K, N=6) logits, index targets with a missing (DEAD_LABEL) and an ignored (7) sample, and the
    same targets one-hot, written out independently of geocnn.losses.one_hot: rows of 0 where not scored."""
    logits = torch.randn(2, classes, 6, generator=torch.Generator().manual_seed(seed))
    target = torch.randint(0, classes, (2, 6), generator=torch.Generator().manual_seed(seed + 1))
    target[0, 2], target[1, 5] = DEAD_LABEL, 7
    one_hot = torch.zeros(2, classes, 6)
    for b in range(2):
        for n in range(6):
            if 0 <= target[b, n] < classes:
                one_hot[b, target[b, n], n] = 1.0
    return logits, target, one_hot


@pytest.mark.parametrize("kind, classes, weights", [
    ("cross_entropy", 3, [1.0, 4.0, 2.0]), ("focal", 3, [1.0, 4.0, 2.0]), ("focal", 3, None),
    ("dice", 3, None), ("bce_balanced", 2, None)])
def test_a_one_hot_target_scores_as_its_class_index(kind, classes, weights):
    logits, target, one_hot = _indices_and_one_hot(classes=classes)
    hard = ClassLoss(kind, weights, 7, 2.0)(logits, target)
    soft = ClassLoss(kind, weights, 7, 2.0)(logits, one_hot)
    assert hard.item() > 0
    torch.testing.assert_close(soft, hard, rtol=1e-6, atol=0)
    if kind == "bce_balanced":  # one logit channel x scores as (0, x)
        torch.testing.assert_close(ClassLoss(kind, None, 7, 2.0)(logits[:, 1:] - logits[:, :1], one_hot), hard)


# probabilities: sample 0 (0.2, 0.8), sample 1 (1, 0), sample 2 all 0 (missing); with _two_samples' logits
# p = (1/4, 3/4), (1/4, 3/4), (3/4, 1/4)
SOFT = torch.tensor([[[0.2, 1.0, 0.0], [0.8, 0.0, 0.0]]])


def test_soft_focal_loss_by_hand():
    # γ = 2, weights (1, 3): Σ_k −w_k·y_k·(1 − p_k)²·ln p_k per scored sample, mean over the 2 scored samples
    #   sample 0: 1·0.2·(3/4)²·ln 4 + 3·0.8·(1/4)²·ln(4/3);  sample 1: 1·1·(3/4)²·ln 4
    loss = ClassLoss("focal", [1.0, 3.0], None, 2.0)(_two_samples(), SOFT)
    expected = (0.2 * 9 / 16 * math.log(4) + 2.4 / 16 * math.log(4 / 3) + 9 / 16 * math.log(4)) / 2
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_soft_dice_loss_by_hand():
    # p = (3/4, 1/4), (1/4, 3/4), and a missing third sample (y all 0) whose p must count nowhere;
    # y = (1/2, 1/2), (1, 0). Smoothed Dice (2·Σp·y + 1)/(Σp + Σy + 1):
    #   class 0: Σp·y = 3/8 + 1/4 = 5/8, Σp = 1, Σy = 3/2 → (9/4)/(7/2) = 9/14
    #   class 1: Σp·y = 1/8,             Σp = 1, Σy = 1/2 → (5/4)/(5/2) = 1/2
    # loss = 1 − (9/14 + 1/2)/2 = 3/7
    logits = torch.tensor([[[LN3, 0.0, 9.0], [0.0, LN3, 0.0]]])
    target = torch.tensor([[[0.5, 1.0, 0.0], [0.5, 0.0, 0.0]]])
    assert ClassLoss("dice", None, None, 2.0)(logits, target).item() == pytest.approx(3 / 7, rel=1e-6)


def test_soft_balanced_bce_by_hand():
    # one logit channel x = (0, ln 3, −ln 3, 9), y₁ = (1/2, 1/4, 0, ·), y₀ = (1/2, 3/4, 1, ·), the last sample
    # missing (y all 0). β = Σy₀ / 3 scored = 9/4 / 3 = 3/4. −[β·y₁·ln σ(x) + (1 − β)·y₀·ln σ(−x)]:
    #   x = 0:     3/4·1/2·ln 2 + 1/4·1/2·ln 2 = ln 2 / 2
    #   x = ln 3:  3/4·1/4·ln(4/3) + 1/4·3/4·ln 4      (σ(ln 3) = 3/4)
    #   x = −ln 3: 1/4·1·ln(4/3)
    out = torch.tensor([[[0.0, LN3, -LN3, 9.0]]])
    target = torch.tensor([[[0.5, 0.75, 1.0, 0.0], [0.5, 0.25, 0.0, 0.0]]])
    expected = (math.log(2) / 2 + 3 / 16 * math.log(4 / 3) + 3 / 16 * math.log(4) + math.log(4 / 3) / 4) / 3
    assert ClassLoss("bce_balanced", None, None, 2.0)(out, target).item() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("kind, gamma", [("focal", 2.0), ("focal", 0.5), ("dice", 2.0), ("bce_balanced", 2.0),
                                         ("cross_entropy", 2.0)])
def test_soft_losses_give_every_score_its_true_gradient(kind, gamma):
    # soft targets of 3 classes (2 for bce_balanced) that sum to 1, one sample missing; the loss's autograd
    # gradient equals central differences (in float64), and reaches every score of every scored sample
    classes = 2 if kind == "bce_balanced" else 3
    gen = torch.Generator().manual_seed(3)
    target = torch.rand(2, classes, 5, generator=gen, dtype=torch.float64)
    target = target / target.sum(1, keepdim=True)
    target[1, :, 4] = 0.0
    logits = torch.randn(2, classes, 5, generator=gen, dtype=torch.float64, requires_grad=True)
    weights = torch.tensor([1.0, 3.0, 2.0][:classes], dtype=torch.float64)
    loss = {"focal": lambda z: soft_focal(z, target, weights, gamma), "dice": lambda z: soft_dice(z, target),
            "bce_balanced": lambda z: soft_balanced_bce(z, target),
            "cross_entropy": lambda z: soft_cross_entropy(z, target, weights)}[kind]
    assert torch.autograd.gradcheck(loss, (logits,))
    loss(logits).backward()
    moved = logits.grad.abs().sum(1) > 0  # (B, N): the missing sample alone gets no gradient
    assert moved[0].all() and moved[1, :4].all() and not moved[1, 4]
    # through ClassLoss (float32) every scored score moves too
    z = logits.detach().float().requires_grad_()
    ClassLoss(kind, weights.tolist(), None, gamma)(z, target.float()).backward()
    assert (z.grad.abs().sum(1)[0] > 0).all() and torch.isfinite(z.grad).all()


SEG_MODEL = """
dims: 2
in_channels: 1
layers:
  - conv: {out: 2, kernel: 3, padding: same}
"""


@pytest.mark.parametrize(("task", "kind", "weights", "refused"), [
    ("segmentation", "cross_entropy", [1, 3], False),
    ("segmentation", "focal", "auto", False),
    ("segmentation", "dice", [1, 3], True),        # dice averages classes equally: weights would be ignored
    ("segmentation", "dice", "auto", True),
    ("segmentation", "bce_balanced", [1, 3], True),  # β from each batch balances the two classes itself
    ("segmentation", "dice", "none", False),
    ("regression", "mse", "auto", True),             # a value loss has no classes to weigh
    ("regression", "huber", [1, 2], True),
])
def test_class_weights_are_refused_where_the_loss_would_ignore_them(tmp_path, task, kind, weights, refused):
    from geocnn.config import load_config
    from geocnn.errors import ConfigError
    from tests import trainkit

    if task == "segmentation":
        data = trainkit.write_segmentation(tmp_path, classes=2)
        path = trainkit.write_config(tmp_path, task, data, SEG_MODEL, {"max_steps": 1}, patch=[8, 16],
                                     section="inline", classes=2)
    else:
        path = trainkit.regression_config(tmp_path, max_steps=1)
    override = f"train.loss={{kind: {kind}, class_weights: {weights}}}"
    if not refused:
        assert load_config(path, [override]).train.loss.kind == kind
        return
    with pytest.raises(ConfigError, match=f"class_weights weigh cross_entropy and focal only; loss {kind} would "
                                          "ignore them") as err:
        load_config(path, [override])
    assert "train.loss.class_weights" in str(err.value) and "remove train.loss.class_weights" in str(err.value)
