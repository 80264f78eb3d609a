"""conv2d and conv_transpose2d: gradchecks over stride/padding/dilation/kernel/groups,
the plain-loop reference, PyTorch, FCN's bilinear filter, and the error messages."""
import itertools

import numpy as np
import pytest

import minisegnet as msn
from minisegnet import functional as F, nn
from minisegnet.kernels.columns.reference import conv2d_reference
from conftest import assert_matches_torch, leaf, requires_torch, to_torch, torch

H, W = 9, 8  # odd and non-square on purpose
GRID = [(k, s, p, d) for k, s, p, d in itertools.product(range(1, 6), (1, 2, 3), (0, 1, 2), (1, 2, 3))
        if d * (k - 1) + 1 <= min(H, W) + 2 * p]


def conv_inputs(k, c_in=2, c_out=3, groups=1, seed=0, kernel_w=None):
    rng = np.random.default_rng(seed)
    x = leaf(rng.normal(size=(2, c_in, H, W)))
    w = leaf(rng.normal(size=(c_out, c_in // groups, k, kernel_w or k)))
    b = leaf(rng.normal(size=c_out))
    return x, w, b


@pytest.mark.parametrize("k,s,p,d", GRID)
def test_conv2d_matches_reference_and_gradchecks(k, s, p, d):
    x, w, b = conv_inputs(k, seed=k * 100 + s * 10 + p + d)
    y = F.conv2d(x, w, b, stride=s, padding=p, dilation=d)
    expected_h = (H + 2 * p - d * (k - 1) - 1) // s + 1
    assert y.shape == (2, 3, expected_h, (W + 2 * p - d * (k - 1) - 1) // s + 1)
    np.testing.assert_allclose(y.data, conv2d_reference(x.data, w.data, b.data, (s, s), (p, p), (d, d), 1),
                               rtol=1e-12, atol=1e-12)
    assert msn.gradcheck(lambda *t: F.conv2d(*t, stride=s, padding=p, dilation=d), x, w, b, max_elements=60)


@pytest.mark.parametrize("groups,c_in,c_out", [(2, 4, 6), (4, 4, 4), (4, 4, 8)])  # (4,4,*) is depthwise
@pytest.mark.parametrize("s,p,d", [(1, 1, 1), (2, 2, 2)])
def test_grouped_and_depthwise_conv(groups, c_in, c_out, s, p, d):
    x, w, b = conv_inputs(3, c_in, c_out, groups, seed=groups)
    y = F.conv2d(x, w, b, s, p, d, groups)
    np.testing.assert_allclose(y.data, conv2d_reference(x.data, w.data, b.data, (s, s), (p, p), (d, d), groups),
                               rtol=1e-12, atol=1e-12)
    assert msn.gradcheck(lambda *t: F.conv2d(*t, stride=s, padding=p, dilation=d, groups=groups), x, w, b,
                         max_elements=60)


def test_pairs_for_rectangular_kernels_and_no_bias():
    x, w, _ = conv_inputs(3, kernel_w=2)
    y = F.conv2d(x, w, None, stride=(2, 1), padding=(1, 0), dilation=(1, 2))
    np.testing.assert_allclose(y.data, conv2d_reference(x.data, w.data, None, (2, 1), (1, 0), (1, 2), 1), atol=1e-12)
    assert msn.gradcheck(lambda a, b: F.conv2d(a, b, None, (2, 1), (1, 0), (1, 2)), x, w, max_elements=60)


def test_dilated_kernel_equals_a_sparse_big_kernel():
    """A 3x3 kernel with dilation 2 is a 5x5 kernel with zeros between its taps."""
    x, w, _ = conv_inputs(3)
    big = np.zeros((3, 2, 5, 5))
    big[:, :, ::2, ::2] = w.data
    np.testing.assert_allclose(F.conv2d(x, w, dilation=2, padding=2).data,
                               F.conv2d(x, msn.tensor(big), padding=2).data, atol=1e-12)


def test_conv2d_skips_gradients_nobody_needs():
    x, w, b = conv_inputs(3)
    x.requires_grad = False
    F.conv2d(x, w, b, padding=1).sum().backward()
    assert x.grad is None and w.grad is not None and b.grad is not None


@requires_torch
@pytest.mark.parametrize("k,s,p,d", GRID[::3])
@pytest.mark.parametrize("groups", [1, 2])
def test_conv2d_matches_torch(k, s, p, d, groups):
    x, w, b = conv_inputs(k, 2, 4, groups, seed=k + s + p + d)
    tx, tw, tb = (to_torch(t.data, True) for t in (x, w, b))
    assert_matches_torch(F.conv2d(x, w, b, s, p, d, groups), torch.nn.functional.conv2d(tx, tw, tb, s, p, d, groups),
                         [(x, tx), (w, tw), (b, tb)], atol=1e-10)


@requires_torch
@pytest.mark.parametrize("groups", [1, 2])
def test_pointwise_conv_needs_no_im2col_and_never_writes_its_input(groups, monkeypatch):
    """A 1x1 convolution with stride 1 and no padding reads x itself as its columns (a view): no
    im2col forward, no col2im backward, and x (here read-only, as the engine makes saved arrays)
    is never written to; the result still matches PyTorch."""
    def refused(*args):
        raise AssertionError("a pointwise convolution called im2col/col2im")

    monkeypatch.setattr(msn.kernels, "im2col", refused)
    monkeypatch.setattr(msn.kernels, "col2im", refused)
    rng = np.random.default_rng(groups)
    array = rng.normal(size=(2, 4, H, W))
    array.flags.writeable = False
    x = msn.from_numpy(array).requires_grad_()
    w, b = leaf(rng.normal(size=(6, 4 // groups, 1, 1))), leaf(rng.normal(size=6))
    tx, tw, tb = (to_torch(a, True) for a in (array, w.data, b.data))
    assert_matches_torch(F.conv2d(x, w, b, groups=groups), torch.nn.functional.conv2d(tx, tw, tb, groups=groups),
                         [(x, tx), (w, tw), (b, tb)], atol=1e-10)
    np.testing.assert_array_equal(array, tx.detach().numpy())  # unchanged


@pytest.mark.parametrize("op", ["conv2d", "conv_transpose2d"])
def test_an_in_place_change_of_the_input_after_forward_is_caught(op):
    """A 1x1 convolution's columns and a transposed convolution's input matrix are views of x, so
    these ops save x itself: the engine keeps it read-only and notices an in-place change between
    forward and backward, instead of computing the weight gradient from the new values."""
    x, w, b = conv_inputs(1, 4, 4)
    y = getattr(F, op)(x, w, b)
    with pytest.raises(ValueError, match="read-only"):
        x.data[...] = 0
    with msn.no_grad():
        x.add_(np.ones(x.shape))
    with pytest.raises(RuntimeError, match=rf"{op}: input 0 .* modified in place"):
        y.sum().backward()


# --- transposed convolution ------------------------------------------------------------------
TRANSPOSED = [(k, s, p, op, d) for k in (1, 2, 3, 4) for s in (1, 2, 3) for p in (0, 1) for d in (1, 2)
              for op in range(max(s, d)) if (k - 1) * d >= p]


def transposed_inputs(k, c_in=3, c_out=2, groups=1, seed=0):
    rng = np.random.default_rng(seed)
    return (leaf(rng.normal(size=(2, c_in, 4, 5))), leaf(rng.normal(size=(c_in, c_out // groups, k, k))),
            leaf(rng.normal(size=c_out)))


@pytest.mark.parametrize("k,s,p,op,d", TRANSPOSED)
def test_conv_transpose2d_is_the_adjoint_of_conv2d_and_gradchecks(k, s, p, op, d):
    x, w, b = transposed_inputs(k, seed=k * 10 + s)
    y = F.conv_transpose2d(x, w, b, stride=s, padding=p, output_padding=op, dilation=d)
    assert y.shape[2:] == tuple((n - 1) * s - 2 * p + d * (k - 1) + op + 1 for n in (4, 5))
    # Adjoint identity: <conv_transpose(x), v> = <x, conv2d(v)> for the same weight (without bias).
    v = np.random.default_rng(1).normal(size=y.shape)
    lhs = (F.conv_transpose2d(x, w, None, s, p, op, dilation=d).data * v).sum()
    rhs = (x.data * F.conv2d(msn.tensor(v), w, None, s, p, d).data[:, :, :4, :5]).sum()
    np.testing.assert_allclose(lhs, rhs, rtol=1e-10)
    assert msn.gradcheck(lambda *t: F.conv_transpose2d(*t, stride=s, padding=p, output_padding=op, dilation=d),
                         x, w, b, max_elements=60)


@requires_torch
@pytest.mark.parametrize("k,s,p,op,d", TRANSPOSED[::2])
@pytest.mark.parametrize("groups", [1, 3])
def test_conv_transpose2d_matches_torch(k, s, p, op, d, groups):
    x, w, b = transposed_inputs(k, 3, 6, groups, seed=k + s)
    tx, tw, tb = (to_torch(t.data, True) for t in (x, w, b))
    assert_matches_torch(F.conv_transpose2d(x, w, b, s, p, op, groups, d),
                         torch.nn.functional.conv_transpose2d(tx, tw, tb, s, p, op, groups, d),
                         [(x, tx), (w, tw), (b, tb)], atol=1e-10)


# --- FCN's bilinear initialisation ---------------------------------------------------------
def test_bilinear_kernel_matches_fcn_upsample_filt():
    np.testing.assert_allclose(F.bilinear_kernel(4)[0], [0.0625, 0.1875, 0.1875, 0.0625])
    np.testing.assert_allclose(F.bilinear_kernel(4)[1, 1], 0.5625)
    np.testing.assert_allclose(F.bilinear_kernel(3), np.outer([0.5, 1, 0.5], [0.5, 1, 0.5]))
    np.testing.assert_allclose(F.bilinear_kernel(1), [[1.0]])


@pytest.mark.parametrize("factor", [2, 3, 4])
def test_bilinear_transposed_conv_upsamples_exactly(factor):
    """Stride f, kernel 2f - f % 2: interior output pixels equal bilinear interpolation, and a
    linear ramp stays a linear ramp (every tap weight sums to one away from the border)."""
    k = 2 * factor - factor % 2
    up = nn.ConvTranspose2d(2, 2, k, stride=factor, bias=False, bilinear=True, dtype=np.float64)
    assert np.all(up.weight.data[0, 1] == 0)  # channel c only feeds channel c
    ramp = np.add.outer(np.arange(6.0), 2 * np.arange(7.0))
    x = msn.tensor(np.stack([ramp, -ramp])[None])
    y = up(x).data[0]
    inner = y[0, k:-k, k:-k]
    np.testing.assert_allclose(np.diff(inner, axis=0), 1.0 / factor, atol=1e-12)
    np.testing.assert_allclose(np.diff(inner, axis=1), 2.0 / factor, atol=1e-12)
    np.testing.assert_allclose(y[1], -y[0])


# --- errors -------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs,message", [
    (dict(stride=0), r"conv2d: stride must be >= 1, got \(0, 0\)"),
    (dict(dilation=(1, 0)), r"conv2d: dilation must be >= 1, got \(1, 0\)"),
    (dict(padding=-1), r"conv2d: padding must be >= 0"),
    (dict(dilation=5), r"conv2d: kernel spans 11 pixels \(kernel 3, dilation 5\) but the padded input is only 9"),
    (dict(groups=3), r"conv2d: input channels 2 are not divisible by groups=3"),
])
def test_conv2d_errors_name_the_op_and_numbers(kwargs, message):
    x, w, _ = conv_inputs(3)
    with pytest.raises(ValueError, match=message):
        F.conv2d(x, w, **kwargs)


def test_conv2d_channel_and_shape_errors():
    x, w, _ = conv_inputs(3)
    with pytest.raises(ValueError, match=r"conv2d: weight \(3, 5, 3, 3\) expects 5 input channels.*input has 2"):
        F.conv2d(x, leaf(np.ones((3, 5, 3, 3))))
    with pytest.raises(ValueError, match=r"conv2d: input must be \(N, C, H, W\), got shape \(2, 9, 8\)"):
        F.conv2d(x[0], w)
    with pytest.raises(ValueError, match=r"bias has shape \(2,\), expected \(3,\)"):
        F.conv2d(x, w, leaf(np.ones(2)))
    with pytest.raises(ValueError, match="conv_transpose2d: output_padding 2 must be >= 0 and smaller than stride 2"):
        F.conv_transpose2d(leaf(np.ones((1, 3, 4, 4))), leaf(np.ones((3, 2, 3, 3))), stride=2, output_padding=2)
    with pytest.raises(ValueError, match="Conv2d: in_channels 3 and out_channels 4 must both be divisible by groups=2"):
        nn.Conv2d(3, 4, 3, groups=2)


def test_nn_conv_layers_forward_and_learn():
    conv = nn.Conv2d(2, 3, 3, padding=2, dilation=2)
    up = nn.ConvTranspose2d(3, 3, 4, stride=2, padding=1, bilinear=True)
    x = msn.tensor(np.random.default_rng(0).normal(size=(1, 2, 6, 7)).astype(np.float32))
    y = up(conv(x))
    assert y.shape == (1, 3, 12, 14) and y.dtype == np.float32
    y.sum().backward()
    assert conv.weight.grad.shape == conv.weight.shape and up.bias.grad.shape == (3,)


# --- dtypes and the empty batch -------------------------------------------------------------
@requires_torch
@pytest.mark.parametrize("transposed", [False, True])
@pytest.mark.parametrize("groups", [1, 2])
def test_an_empty_batch_matches_torch(transposed, groups):
    """N = 0 gives an empty output and zero weight and bias gradients, as in PyTorch
    (backward used to fail in a reshape: -1 cannot be inferred from 0 elements)."""
    rng = np.random.default_rng(0)
    x = leaf(np.zeros((0, 4, 5, 6)))
    w = leaf(rng.normal(size=(4, 3, 3, 3) if transposed else (6, 4 // groups, 3, 3)))
    b = leaf(rng.normal(size=3 * groups if transposed else 6))
    tx, tw, tb = (to_torch(t.data, True) for t in (x, w, b))
    if transposed:
        ours = F.conv_transpose2d(x, w, b, stride=2, padding=1, groups=groups)
        theirs = torch.nn.functional.conv_transpose2d(tx, tw, tb, stride=2, padding=1, groups=groups)
    else:
        ours = F.conv2d(x, w, b, padding=1, dilation=2, groups=groups)
        theirs = torch.nn.functional.conv2d(tx, tw, tb, padding=1, dilation=2, groups=groups)
    assert ours.shape == tuple(theirs.shape) and ours.shape[0] == 0
    assert_matches_torch(ours, theirs, [(x, tx), (w, tw), (b, tb)])
    assert not w.grad.any() and not b.grad.any()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv_keeps_its_dtype_in_forward_and_backward(dtype):
    """Input, weight and bias share one dtype (mixing them is refused: tests/test_bad_inputs.py),
    and the output and every gradient keep it."""
    conv = nn.Conv2d(2, 3, 3, padding=1, dtype=dtype)
    up = nn.ConvTranspose2d(3, 3, 4, stride=2, padding=1, dtype=dtype)
    x = msn.tensor(np.ones((1, 2, 4, 4), dtype=dtype), requires_grad=True)
    y = up(conv(x))
    y.sum().backward()
    assert y.dtype == dtype and x.grad.dtype == dtype
    assert all(p.grad.dtype == dtype for p in conv.parameters() + up.parameters())
