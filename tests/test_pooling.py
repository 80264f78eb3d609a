"""max_pool2d and avg_pool2d: gradchecks, the plain-loop references, PyTorch, the tie rule, ceil_mode, errors."""
import itertools

import numpy as np
import pytest

import minisegnet as msn
from minisegnet import functional as F, nn
from minisegnet.kernels.pooling.reference import avg_pool_forward_reference, max_pool_forward_reference
from minisegnet.functional._geometry import pool_output_size
from conftest import assert_matches_torch, leaf, requires_torch, to_torch, torch

H, W = 9, 8
GRID = [(k, s, p, ceil) for k, s, p, ceil in itertools.product((1, 2, 3, 4, 5), (1, 2, 3), (0, 1, 2), (False, True))
        if p <= k // 2]


def distinct_input(seed, shape=(2, 3, H, W)):
    """Values without ties (a random permutation), so max pooling is differentiable everywhere."""
    rng = np.random.default_rng(seed)
    return leaf(rng.permutation(np.prod(shape)).reshape(shape) / 10.0)


@pytest.mark.parametrize("k,s,p,ceil", GRID)
def test_max_pool_reference_and_gradcheck(k, s, p, ceil):
    x = distinct_input(k + s + p)
    y = F.max_pool2d(x, k, s, p, ceil)
    out_hw = tuple(pool_output_size(n, k, s, p, ceil, "test") for n in (H, W))
    expected, _ = max_pool_forward_reference(x.data, (k, k, s, s, p, p), *out_hw)
    np.testing.assert_array_equal(y.data, expected)
    assert msn.gradcheck(lambda t: F.max_pool2d(t, k, s, p, ceil), x, eps=1e-4, max_elements=80)


@pytest.mark.parametrize("k,s,p,ceil", GRID)
def test_avg_pool_reference_and_gradcheck(k, s, p, ceil):
    x = leaf(np.random.default_rng(k * s).normal(size=(2, 2, H, W)))
    y = F.avg_pool2d(x, k, s, p, ceil)
    out_hw = tuple(pool_output_size(n, k, s, p, ceil, "test") for n in (H, W))
    np.testing.assert_allclose(y.data, avg_pool_forward_reference(x.data, (k, k, s, s, p, p), *out_hw), rtol=1e-12)
    assert msn.gradcheck(lambda t: F.avg_pool2d(t, k, s, p, ceil), x, max_elements=80)


def test_max_pool_ties_go_to_the_first_maximum_and_overlaps_accumulate():
    x = leaf(np.array([[[[1.0, 5.0, 5.0],
                         [5.0, 2.0, 5.0],
                         [0.0, 5.0, 1.0]]]]))
    y = F.max_pool2d(x, kernel_size=2, stride=1)  # four overlapping 2x2 windows, every one ties at 5
    np.testing.assert_array_equal(y.data, [[[[5.0, 5.0], [5.0, 5.0]]]])
    y.backward(np.array([[[[1.0, 10.0], [100.0, 1000.0]]]]))
    # Window (0,0) -> first 5 at (0,1); (0,1) -> (0,1); (1,0) -> (1,0); (1,1) -> (1,2).
    np.testing.assert_array_equal(x.grad, [[[[0.0, 11.0, 0.0],
                                             [100.0, 0.0, 1000.0],
                                             [0.0, 0.0, 0.0]]]])


def test_avg_pool_counts_padding_in_the_divisor():
    x = leaf(np.ones((1, 1, 3, 3)))
    y = F.avg_pool2d(x, 3, stride=1, padding=1)
    assert y.data[0, 0, 0, 0] == pytest.approx(4 / 9) and y.data[0, 0, 1, 1] == pytest.approx(1.0)


def test_ceil_mode_adds_a_partial_window_but_not_one_in_the_padding():
    x = leaf(np.arange(25.0).reshape(1, 1, 5, 5))
    assert F.max_pool2d(x, 2, 2).shape[2:] == (2, 2)
    assert F.max_pool2d(x, 2, 2, ceil_mode=True).shape[2:] == (3, 3)
    assert F.max_pool2d(x, 2, 2, ceil_mode=True).data[0, 0, 2, 2] == 24.0
    # 6 + 2*1 - 3 = 5 -> ceil(5/2)+1 = 4, but the 4th window would start at 6 >= 6 + 1 - 1: dropped.
    assert pool_output_size(6, 3, 2, 1, True, "t") == 4 and pool_output_size(5, 2, 2, 1, True, "t") == 4 - 1


@requires_torch
@pytest.mark.parametrize("k,s,p,ceil", GRID[::2])
@pytest.mark.parametrize("kind", ["max", "avg"])
def test_pooling_matches_torch(k, s, p, ceil, kind):
    x = distinct_input(k * 7 + s)
    tx = to_torch(x.data, True)
    ours = getattr(F, f"{kind}_pool2d")(x, k, s, p, ceil)
    theirs = getattr(torch.nn.functional, f"{kind}_pool2d")(tx, k, s, p, ceil_mode=ceil)
    assert_matches_torch(ours, theirs, [(x, tx)])


@requires_torch
@pytest.mark.parametrize("k,s,p,size", [(3, 2, 1, 6), (2, 2, 0, 6), (2, 2, 0, 7)])  # (2, 2, 0): the CPU's 2x2 fast path
def test_max_pool_tie_rule_matches_torch(k, s, p, size):
    x = np.zeros((1, 3, size, size))
    x[0, 1, ::2, ::2] = 1.0  # many ties
    x[0, 2] = np.random.default_rng(0).integers(0, 3, (size, size))  # ties anywhere in a window
    ours, tx = leaf(x), to_torch(x, True)
    F.max_pool2d(ours, k, s, p).sum().backward()
    torch.nn.functional.max_pool2d(tx, k, s, p).sum().backward()
    np.testing.assert_array_equal(ours.grad, tx.grad.numpy())


@pytest.mark.parametrize("call,message", [
    (lambda x: F.max_pool2d(x, 3, padding=2), r"max_pool2d: padding \(2, 2\) must be at most half the kernel size \(3, 3\)"),
    (lambda x: F.avg_pool2d(x, 12), r"avg_pool2d: kernel 12 is larger than the padded input 9"),
    (lambda x: F.max_pool2d(x, 2, stride=0), r"max_pool2d: stride must be >= 1, got \(0, 0\)"),
    (lambda x: F.max_pool2d(x[0], 2), r"max_pool2d: input must be \(N, C, H, W\)"),
])
def test_pooling_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call(distinct_input(0))


def test_pool_layers():
    x = distinct_input(1)
    assert nn.MaxPool2d(2)(x).shape == (2, 3, 4, 4)
    assert nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True)(x).shape == (2, 3, 5, 5)


@requires_torch
@pytest.mark.parametrize("kind", ["max", "avg"])
def test_ceil_mode_window_larger_than_a_tiny_input_matches_torch(kind):
    """A 1x1 (or 1x3) map through a 2x2 ceil-mode pool gives one output per window, as in PyTorch."""
    x = leaf(np.random.default_rng(0).normal(size=(1, 2, 1, 3)))
    tx = to_torch(x.data, True)
    ours = getattr(F, f"{kind}_pool2d")(x, 2, 2, ceil_mode=True)
    theirs = getattr(torch.nn.functional, f"{kind}_pool2d")(tx, 2, 2, ceil_mode=True)
    ours.sum().backward()
    theirs.sum().backward()
    np.testing.assert_allclose(ours.data, theirs.detach().numpy())
    np.testing.assert_allclose(x.grad, tx.grad.numpy())


# --- NaN and windows of -infinity: every twin against PyTorch ----------------------------------------
def nan_and_inf_input():
    """(1, 3, 5, 6): plane 0 distinct values with scattered NaNs (two NaNs share some windows), plane 1
    -inf but for one NaN and one finite corner (so most windows are -inf alone), plane 2 all NaN."""
    x = np.random.default_rng(0).permutation(90).reshape(1, 3, 5, 6) / 7.0
    for iy, ix in ((0, 1), (1, 0), (3, 4), (4, 4), (2, 5)):
        x[0, 0, iy, ix] = np.nan
    x[0, 1] = -np.inf
    x[0, 1, 2, 2], x[0, 1, 4, 5] = np.nan, 1.0
    x[0, 2] = np.nan
    return x


def max_pool_twin(kind):
    """(forward(x, geometry, oh, ow) -> (out, argmax), backward(grad, argmax, x_shape, geometry) -> dx)
    on host arrays, for the plain loops, the Numba CPU kernel or the CUDA twin (the simulator without a GPU)."""
    from minisegnet import kernels
    from minisegnet.kernels.pooling import reference
    if kind == "reference":
        return (reference.max_pool_forward_reference,
                lambda g, arg, shape, geometry: reference.max_pool_backward_reference(g, arg, shape))
    if kind == "cpu":
        return kernels.max_pool_forward, kernels.max_pool_backward
    pytest.importorskip("numba.cuda")
    from conftest import HAS_GPU
    from minisegnet.kernels.pooling import cuda
    xp = pytest.importorskip("cupy") if HAS_GPU else np
    host = lambda a: a.get() if hasattr(a, "get") else a  # noqa: E731

    def forward(x, geometry, oh, ow):
        return tuple(host(a) for a in cuda.max_pool_forward_cuda(xp.asarray(x), geometry, oh, ow, xp))

    def backward(g, arg, shape, geometry):
        return host(cuda.max_pool_backward_cuda(xp.asarray(g), xp.asarray(arg), shape, geometry, xp))
    return forward, backward


@requires_torch
@pytest.mark.parametrize("kind", ["reference", "cpu", "cuda"])
@pytest.mark.parametrize("k,s,p,ceil", [(2, 2, 0, False), (3, 2, 1, True), (3, 1, 1, False), (2, 3, 1, True)])
def test_max_pool_nan_and_minus_infinity_match_torch(kind, k, s, p, ceil):
    """PyTorch propagates a NaN (output NaN, gradient to the window's last NaN) and sends an all -inf
    window's gradient to its first real pixel; padded positions never win, the argmax stays inside."""
    forward, backward = max_pool_twin(kind)
    x = nan_and_inf_input()
    geometry = (k, k, s, s, p, p)
    oh, ow = (pool_output_size(n, k, s, p, ceil, "test") for n in x.shape[2:])
    out, argmax = forward(x, geometry, oh, ow)
    tx = to_torch(x, True)
    t_out, t_index = torch.nn.functional.max_pool2d(tx, k, s, p, ceil_mode=ceil, return_indices=True)
    np.testing.assert_array_equal(out, t_out.detach().numpy())  # NaN == NaN here
    np.testing.assert_array_equal(argmax, t_index.numpy())
    g = np.random.default_rng(1).normal(size=out.shape)
    t_out.backward(torch.tensor(g))
    np.testing.assert_allclose(backward(g, argmax, x.shape, geometry), tx.grad.numpy(), rtol=1e-12)
    # every argmax lies inside its own window (rows and columns)
    rows, cols = argmax // x.shape[3], argmax % x.shape[3]
    oy, ox = np.arange(oh)[:, None], np.arange(ow)[None, :]
    assert np.all((rows >= oy * s - p) & (rows < oy * s - p + k) & (cols >= ox * s - p) & (cols < ox * s - p + k))
    assert np.isnan(out[0, 2]).all() and np.isnan(out[0, 0]).any()
    assert np.isneginf(out[0, 1]).any()


def test_max_pool_of_minus_infinity_alone_sends_the_gradient_to_the_windows_first_pixel():
    """No oracle needed: a padded 3x3 window of -inf over a 3x3 image picks its first real pixel, never
    a padded position and never a pixel outside the window."""
    x = leaf(np.full((1, 1, 3, 3), -np.inf))
    y = F.max_pool2d(x, 3, stride=2, padding=1)  # windows at rows/cols -1..1 and 1..3
    assert np.isneginf(y.data).all()
    y.backward(np.array([[[[1.0, 10.0], [100.0, 1000.0]]]]))
    np.testing.assert_array_equal(x.grad, [[[[1.0, 10.0, 0.0],  # first real pixels: (0,0) (0,1) (1,0) (1,1)
                                             [100.0, 1000.0, 0.0],
                                             [0.0, 0.0, 0.0]]]])


def test_max_pool_propagates_nan_without_torch():
    """PyTorch's rule, written out: a NaN takes over its window (output NaN) and the window's gradient
    goes to its last NaN in row-major order; other windows are untouched."""
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    x[0, 0, 0, 0] = x[0, 0, 1, 1] = np.nan  # two NaNs in the top-left 2x2 window
    t = msn.tensor(x, requires_grad=True)
    y = F.max_pool2d(t, 2)
    assert np.isnan(y.data[0, 0, 0, 0])
    np.testing.assert_array_equal(y.data[0, 0].ravel()[1:], [7.0, 13.0, 15.0])
    y.sum().backward()
    expected = np.zeros((4, 4))
    expected[1, 1] = expected[1, 3] = expected[3, 1] = expected[3, 3] = 1.0
    np.testing.assert_array_equal(t.grad[0, 0], expected)
