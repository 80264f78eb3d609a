"""Core ops: gradcheck in float64 on random shapes, forward against NumPy, forward and backward against PyTorch."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import minisegnet as msn
from minisegnet import functional as F
from conftest import leaf, requires_torch, to_torch, torch

fast = settings(max_examples=12, deadline=None)
shapes = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4)


def values(shape, seed, low=-2.0, high=2.0):
    return np.random.default_rng(seed).uniform(low, high, size=shape)


# --- elementwise and broadcasting -----------------------------------------------------
BINARY = {"add": (F.add, np.add), "sub": (F.sub, np.subtract), "mul": (F.mul, np.multiply),
          "div": (F.div, np.divide)}


@pytest.mark.parametrize("name", list(BINARY))
@fast
@given(shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=4), seed=st.integers(0, 999))
def test_binary_ops_broadcast_gradcheck_and_match_numpy(name, shapes, seed):
    ours, reference = BINARY[name]
    sa, sb = shapes.input_shapes
    a, b = leaf(values(sa, seed)), leaf(values(sb, seed + 1, 0.5, 2.0))  # b away from 0 for div
    np.testing.assert_allclose(ours(a, b).data, reference(a.data, b.data))
    assert msn.gradcheck(ours, a, b)


UNARY = {
    "neg": (F.neg, np.negative, (-2, 2)),
    "exp": (F.exp, np.exp, (-2, 2)),
    "log": (F.log, np.log, (0.2, 3)),
    "relu": (F.relu, lambda x: np.maximum(x, 0), (-2, 2)),
    "sigmoid": (F.sigmoid, lambda x: 1 / (1 + np.exp(-x)), (-4, 4)),
    "tanh": (F.tanh, np.tanh, (-2, 2)),
    "power3": (lambda x: F.power(x, 3), lambda x: x ** 3, (-2, 2)),
    "power_half": (lambda x: x ** 0.5, np.sqrt, (0.2, 3)),
}


@pytest.mark.parametrize("name", list(UNARY))
@fast
@given(shape=shapes, seed=st.integers(0, 999))
def test_unary_ops_gradcheck_and_match_numpy(name, shape, seed):
    ours, reference, (low, high) = UNARY[name]
    x = values(shape, seed, low, high)
    if name == "relu":
        x = np.where(np.abs(x) < 1e-3, 0.5, x)  # keep away from the kink for central differences
    x = leaf(x)
    np.testing.assert_allclose(ours(x).data, reference(x.data), rtol=1e-12, atol=1e-12)
    assert msn.gradcheck(ours, x)


def test_sigmoid_is_stable_for_large_inputs():
    out = F.sigmoid(msn.tensor(np.array([-1000.0, 0.0, 1000.0]))).data
    np.testing.assert_allclose(out, [0.0, 0.5, 1.0])


# --- reductions -------------------------------------------------------------------------
@pytest.mark.parametrize("reduce", ["sum", "mean", "max"])
@pytest.mark.parametrize("axis", [None, 0, -1, (0, 2)])
@pytest.mark.parametrize("keepdims", [False, True])
def test_reductions_gradcheck_and_match_numpy(reduce, axis, keepdims):
    x = leaf(values((3, 4, 2), seed=7))
    ours = lambda t: getattr(F, reduce)(t, axis=axis, keepdims=keepdims)  # noqa: E731
    np.testing.assert_allclose(ours(x).data, getattr(np, reduce)(x.data, axis=axis, keepdims=keepdims))
    assert msn.gradcheck(ours, x)


def test_max_shares_the_gradient_between_ties():
    x = leaf([1.0, 3.0, 3.0])
    F.max(x).backward()
    np.testing.assert_allclose(x.grad, [0.0, 0.5, 0.5])


def test_reduction_axis_out_of_range():
    with pytest.raises(ValueError, match="axis 3 is out of range for a tensor with 2"):
        F.sum(leaf(np.ones((2, 2))), axis=3)


# --- matmul -----------------------------------------------------------------------------
@pytest.mark.parametrize("sa,sb", [((3, 4), (4, 2)), ((2, 3, 4), (4, 5)), ((4,), (4, 3)), ((3, 4), (4,)),
                                   ((2, 1, 3, 4), (5, 4, 2)), ((4,), (4,))])
def test_matmul_gradcheck_and_match_numpy(sa, sb):
    a, b = leaf(values(sa, 1)), leaf(values(sb, 2))
    np.testing.assert_allclose(F.matmul(a, b).data, a.data @ b.data)
    assert msn.gradcheck(F.matmul, a, b)


def test_matmul_shape_error_names_both_shapes():
    with pytest.raises(ValueError, match=r"matmul: inner dimensions differ: \(2, 3\) @ \(4, 5\)"):
        F.matmul(leaf(np.ones((2, 3))), leaf(np.ones((4, 5))))


# --- shape ops --------------------------------------------------------------------------
def test_reshape_transpose_permute_gradcheck():
    x = leaf(values((2, 3, 4), 3))
    assert msn.gradcheck(lambda t: t.reshape(4, 6) * np.arange(24.0).reshape(4, 6), x)
    assert msn.gradcheck(lambda t: F.transpose(t, 2, 0, 1), x)
    np.testing.assert_array_equal(x.permute(1, 2, 0).data, x.data.transpose(1, 2, 0))
    assert msn.gradcheck(lambda t: t.transpose(), x)
    with pytest.raises(ValueError, match=r"reshape: cannot reshape \(2, 3, 4\) \(24 elements\) into \(5, 5\)"):
        x.reshape(5, 5)


def test_concatenate_gradcheck_and_errors():
    a, b, c = leaf(values((2, 1, 3), 1)), leaf(values((2, 4, 3), 2)), leaf(values((2, 2, 3), 3))
    np.testing.assert_array_equal(F.concatenate([a, b, c], axis=1).data,
                                  np.concatenate([a.data, b.data, c.data], axis=1))
    assert msn.gradcheck(lambda *t: F.concatenate(t, axis=1), a, b, c)
    with pytest.raises(ValueError, match="concatenate: shapes"):
        F.concatenate([a, leaf(np.ones((3, 1, 3)))], axis=1)


@pytest.mark.parametrize("index", [(slice(None), slice(1, 3)), (0,), (slice(None, None, 2), slice(None), 1),
                                   (np.array([0, 2, 2]),), (Ellipsis, slice(1, None))])
def test_indexing_gradcheck(index):
    x = leaf(values((3, 4, 2), 4))
    np.testing.assert_array_equal(x[index].data, x.data[index])
    assert msn.gradcheck(lambda t: t[index], x)


def test_constant_pad_gradcheck_and_errors():
    x = leaf(values((2, 3, 3), 5))
    out = F.pad(x, ((0, 0), (1, 2), (2, 0)), value=-1.0)
    np.testing.assert_array_equal(out.data, np.pad(x.data, ((0, 0), (1, 2), (2, 0)), constant_values=-1.0))
    assert msn.gradcheck(lambda t: F.pad(t, 1), x)
    with pytest.raises(ValueError, match="pad: need one non-negative"):
        F.pad(x, ((1, 1),))


# --- softmax family ---------------------------------------------------------------------
@pytest.mark.parametrize("axis", [1, -1])
def test_softmax_and_log_softmax_gradcheck_and_are_stable(axis):
    x = leaf(values((2, 4, 3), 6) * 3)
    assert msn.gradcheck(lambda t: F.softmax(t, axis), x)
    assert msn.gradcheck(lambda t: F.log_softmax(t, axis), x)
    big = msn.tensor(np.array([[1000.0, 0.0, -1000.0]]))
    np.testing.assert_allclose(F.log_softmax(big, -1).data, [[0.0, -1000.0, -2000.0]])
    np.testing.assert_allclose(F.softmax(big, -1).data.sum(), 1.0)


# --- PyTorch as an independent oracle ---------------------------------------------------
@requires_torch
def test_core_ops_match_torch_forward_and_backward():
    a_np, b_np = values((2, 3, 4), 11), values((3, 1), 12, 0.5, 2)

    def ours(a, b):
        h = F.tanh(a * b - a / b) + F.sigmoid(a) * F.relu(b)
        return F.log_softmax(h, 1).sum(axis=2) + F.max(h ** 2, axis=(0, 2), keepdims=True).exp().mean()

    def theirs(a, b):
        h = torch.tanh(a * b - a / b) + torch.sigmoid(a) * torch.relu(b)
        m = (h ** 2).amax(dim=(0, 2), keepdim=True)
        return torch.log_softmax(h, 1).sum(2) + m.exp().mean()

    a, b = leaf(a_np), leaf(b_np)
    ta, tb = to_torch(a_np, True), to_torch(b_np, True)
    g = values((2, 3), 13)
    ours(a, b).backward(g)
    theirs(ta, tb).backward(torch.tensor(g))
    np.testing.assert_allclose(ours(a, b).data, theirs(ta, tb).detach().numpy(), rtol=1e-10)
    np.testing.assert_allclose(a.grad, ta.grad.numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(b.grad, tb.grad.numpy(), rtol=1e-9, atol=1e-12)


@requires_torch
def test_matmul_concat_pad_match_torch():
    a_np, b_np = values((2, 3, 4), 21), values((4, 5), 22)
    a, b = leaf(a_np), leaf(b_np)
    ta, tb = to_torch(a_np, True), to_torch(b_np, True)
    out = F.pad(F.concatenate([F.matmul(a, b), a], axis=2), ((0, 0), (1, 0), (0, 2)))[:, 1:, ::2]
    tout = torch.nn.functional.pad(torch.cat([ta @ tb, ta], 2), (0, 2, 1, 0))[:, 1:, ::2]
    g = values(out.shape, 23)
    out.backward(g)
    tout.backward(torch.tensor(g))
    np.testing.assert_allclose(out.data, tout.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(a.grad, ta.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(b.grad, tb.grad.numpy(), rtol=1e-10)


# --- dtypes: NumPy's result type, gradients in each input's dtype --------------------------------
@pytest.mark.parametrize("dtype", [np.uint8, np.int64, np.float32, np.float64])
@pytest.mark.parametrize("scalar", [2, 0.5, True])
@pytest.mark.parametrize("name", list(BINARY))
def test_arithmetic_with_a_python_number_follows_numpy(dtype, scalar, name):
    """int tensor * 0.5 is 0.5 per element in float64 (it was 0 in int64); a Python number never
    widens a float32 tensor (NEP 50); both orders of the operands agree with NumPy."""
    ours, reference = BINARY[name]
    array = np.array([1, 2, 3], dtype=dtype)
    for result, expected in ((ours(msn.tensor(array), scalar), reference(array, scalar)),
                             (ours(scalar, msn.tensor(array)), reference(scalar, array))):
        assert result.dtype == expected.dtype
        np.testing.assert_array_equal(result.data, expected)


def test_int_tensor_times_a_half_is_not_zero():
    np.testing.assert_array_equal((msn.tensor([1, 2, 3]) * 0.5).data, [0.5, 1.0, 1.5])
    assert (msn.tensor(np.ones(3, np.float32)) * 0.5).dtype == np.float32
    assert F.mean(msn.tensor([1, 2])).item() == 1.5
    assert F.sigmoid(msn.tensor([0])).data.tolist() == [0.5]  # was cast back to int: [0]


def test_mixed_float_dtypes_promote_like_numpy_but_gradients_keep_each_input_dtype():
    a = msn.tensor(np.ones((2, 3), np.float32), requires_grad=True)
    b = msn.tensor(np.full((3,), 2.0), requires_grad=True)  # float64
    for op in (F.add, F.sub, F.mul, F.div):
        a.zero_grad(), b.zero_grad()
        out = op(a, b)
        assert out.dtype == np.float64
        out.sum().backward()
        assert a.grad.dtype == np.float32 and b.grad.dtype == np.float64
    a.zero_grad(), b.zero_grad()
    F.matmul(a, b).sum().backward()
    assert a.grad.dtype == np.float32 and b.grad.dtype == np.float64
    np.testing.assert_allclose(a.grad, np.full((2, 3), 2.0))
    # A float64 NumPy array is strong, as in NumPy: float32 tensor + float64 array is float64.
    assert (a + np.ones(3)).dtype == np.float64 and (a + np.ones(3, np.float32)).dtype == np.float32


def test_concatenate_of_mixed_dtypes_gives_each_input_a_gradient_of_its_own_dtype():
    a = msn.tensor(np.ones((2, 1), np.float32), requires_grad=True)
    b = msn.tensor(np.ones((2, 2)), requires_grad=True)
    out = F.concatenate([a, b], axis=1)
    assert out.dtype == np.float64
    (out * 3.0).sum().backward()
    assert a.grad.dtype == np.float32 and b.grad.dtype == np.float64
    np.testing.assert_array_equal(a.grad, np.full((2, 1), 3.0))
