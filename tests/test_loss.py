"""cross_entropy: the formula, ignore_index, class weights, reductions, PyTorch, and its errors."""
import numpy as np
import pytest

import minisegnet as msn
from minisegnet import functional as F
from conftest import assert_matches_torch, leaf, requires_torch, to_torch, torch


def make_problem(seed=0, n=2, c=4, h=3, w=5, ignore_fraction=0.2):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, c, h, w)) * 2
    target = rng.integers(0, c, size=(n, h, w))
    target[rng.random((n, h, w)) < ignore_fraction] = 255
    weight = rng.uniform(0.2, 3.0, size=c)
    return logits, target, weight


def plain_cross_entropy(logits, target, weight=None, ignore_index=255):
    """The definition, one pixel at a time."""
    n, c, h, w = logits.shape
    weight = np.ones(c) if weight is None else weight
    total, denominator = 0.0, 0.0
    for i in range(n):
        for y in range(h):
            for x in range(w):
                t = target[i, y, x]
                if t == ignore_index:
                    continue
                z = logits[i, :, y, x]
                log_p = z[t] - np.log(np.exp(z - z.max()).sum()) - z.max()
                total += -weight[t] * log_p
                denominator += weight[t]
    return total / denominator


@pytest.mark.parametrize("use_weight", [False, True])
def test_cross_entropy_matches_the_formula_and_gradchecks(use_weight):
    logits, target, weight = make_problem()
    weight = weight if use_weight else None
    z = leaf(logits)
    loss = F.cross_entropy(z, target, weight=weight)
    np.testing.assert_allclose(loss.item(), plain_cross_entropy(logits, target, weight), rtol=1e-12)
    assert msn.gradcheck(lambda t: F.cross_entropy(t, target, weight=weight), z)


@pytest.mark.parametrize("reduction", ["sum", "none"])
def test_cross_entropy_other_reductions_gradcheck(reduction):
    logits, target, weight = make_problem(1)
    z = leaf(logits)
    assert msn.gradcheck(lambda t: F.cross_entropy(t, target, weight=weight, reduction=reduction), z)
    out = F.cross_entropy(z, target, reduction="none")
    assert out.shape == target.shape and np.all(out.data[target == 255] == 0)


def test_ignored_pixels_get_no_gradient_and_2d_logits_work():
    logits, target, _ = make_problem(2)
    z = leaf(logits)
    F.cross_entropy(z, target).backward()
    assert np.all(z.grad.transpose(0, 2, 3, 1)[target == 255] == 0)
    z2 = leaf(np.random.default_rng(0).normal(size=(5, 3)))
    assert msn.gradcheck(lambda t: F.cross_entropy(t, np.array([0, 2, 255, 1, 1])), z2)


def test_float32_loss_stays_float32():
    logits, target, weight = make_problem(3)
    z = msn.tensor(logits.astype(np.float32), requires_grad=True)
    loss = F.cross_entropy(z, target, weight=weight)
    loss.backward()
    assert loss.dtype == np.float32 and z.grad.dtype == np.float32


@requires_torch
@pytest.mark.parametrize("use_weight", [False, True])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_matches_torch(use_weight, reduction):
    logits, target, weight = make_problem(4)
    weight = weight if use_weight else None
    z, tz = leaf(logits), to_torch(logits, True)
    ours = F.cross_entropy(z, target, weight=weight, reduction=reduction)
    theirs = torch.nn.functional.cross_entropy(tz, torch.tensor(target), ignore_index=255, reduction=reduction,
                                               weight=None if weight is None else torch.tensor(weight))
    assert_matches_torch(ours, theirs, [(z, tz)], rtol=1e-9, seed=5)


def test_labels_out_of_range_are_reported():
    logits, target, _ = make_problem(5)
    target[0, 0, 0], target[1, 2, 1] = 7, -1
    with pytest.raises(ValueError, match=r"cross_entropy: target labels \[-1, 7\] are outside \[0, 4\)"):
        F.cross_entropy(leaf(logits), target)


def test_shape_weight_and_dtype_errors():
    logits, target, _ = make_problem(6)
    with pytest.raises(ValueError, match=r"target shape \(2, 3, 4\) does not match logits \(2, 4, 3, 5\)"):
        F.cross_entropy(leaf(logits), target[..., :4])
    with pytest.raises(ValueError, match=r"weight has shape \(3,\), expected \(4,\)"):
        F.cross_entropy(leaf(logits), target, weight=np.ones(3))
    with pytest.raises(TypeError, match="integer class labels"):
        F.cross_entropy(leaf(logits), target.astype(np.float64))


def test_non_finite_loss_is_caught_by_anomaly_detection():
    logits, target, _ = make_problem(7)
    logits[0, 0, 0, 0] = np.nan
    with msn.detect_anomaly(), pytest.raises(FloatingPointError, match="cross_entropy: forward output"):
        F.cross_entropy(leaf(logits), target)
