"""The engine: graph, backward, accumulation, no_grad, dtypes, devices, and its error messages."""
import numpy as np
import pytest

import minisegnet as msn
from minisegnet import functional as F
from conftest import leaf


def test_backward_applies_the_chain_rule():
    x = leaf([1.0, 2.0, 3.0])
    y = ((x * x).sum() + x.exp().sum()).log()  # y = log(sum x^2 + sum e^x)
    y.backward()
    s = (x.data ** 2).sum() + np.exp(x.data).sum()
    np.testing.assert_allclose(x.grad, (2 * x.data + np.exp(x.data)) / s)


def test_gradients_accumulate_into_leaves_until_zero_grad():
    x = leaf([1.0, -2.0])
    (x * 3.0).sum().backward()
    (x * 3.0).sum().backward()
    np.testing.assert_allclose(x.grad, [6.0, 6.0])
    x.zero_grad()
    assert x.grad is None


def test_a_tensor_used_twice_gets_both_contributions():
    x = leaf([2.0])
    (x * x + x).sum().backward()  # d/dx (x^2 + x) = 2x + 1
    np.testing.assert_allclose(x.grad, [5.0])


def test_grad_is_none_until_backward_reaches_it_and_skips_unneeded_inputs():
    a, b = leaf([1.0, 2.0]), leaf([3.0, 4.0], requires_grad=False)
    assert a.grad is None
    (a * b).sum().backward()
    np.testing.assert_allclose(a.grad, [3.0, 4.0])
    assert b.grad is None


def test_a_10000_op_chain_does_not_recurse():
    x = leaf([1.0])
    y = x
    for _ in range(10_000):
        y = y + 1.0
    y.sum().backward()
    np.testing.assert_allclose(x.grad, [1.0])


def test_no_grad_records_no_graph_and_detach_cuts_it():
    x = leaf([1.0, 2.0])
    with msn.no_grad():
        y = x * 2.0
    assert not y.requires_grad and y.is_leaf
    z = (x * 2.0).detach()
    assert not z.requires_grad and z.is_leaf
    assert msn.is_grad_enabled()


def test_dtypes_float32_default_float64_preserved():
    assert msn.tensor([1.0, 2.0]).dtype == np.float32
    assert msn.tensor([1, 2]).dtype == np.int64
    x = msn.tensor(np.ones(3), requires_grad=True)
    assert x.dtype == np.float64
    y = (x * 2.0 + 1.0).exp().log().sum()
    assert y.dtype == np.float64
    y.backward()
    assert x.grad.dtype == np.float64
    x32 = msn.tensor(np.ones(3, dtype=np.float32), requires_grad=True)
    assert (x32 * 2.5 + 1).dtype == np.float32


def test_numpy_item_to_and_device():
    x = msn.tensor([[1.0, 2.0]])
    assert x.device == "cpu" and x.to("cpu") is x
    assert isinstance(x.numpy(), np.ndarray)
    assert x.sum().item() == 3.0
    assert not msn.cuda.is_available() or x.to("cuda").device == "cuda"


def test_integer_tensors_cannot_require_grad():
    with pytest.raises(TypeError, match="requires_grad.*int64"):
        msn.tensor([1, 2], requires_grad=True)


def test_backward_on_non_scalar_needs_a_gradient():
    x = leaf([1.0, 2.0])
    with pytest.raises(RuntimeError, match=r"shape \(2,\).*gradient"):
        (x * 2.0).backward()
    y = x * 2.0
    y.backward(np.array([1.0, 10.0]))
    np.testing.assert_allclose(x.grad, [2.0, 20.0])
    with pytest.raises(ValueError, match="does not match"):
        (x * 2.0).backward(np.ones(3))


def test_backward_without_any_grad_requirement_is_refused():
    with pytest.raises(RuntimeError, match="does not require grad"):
        msn.tensor([1.0]).sum().backward()


def test_unknown_device_and_missing_gpu_are_clear():
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        msn.tensor([1.0], device="tpu")
    if not msn.cuda.is_available():
        with pytest.raises(RuntimeError, match="minisegnet\\[gpu\\]"):
            msn.tensor([1.0]).to("cuda")


def test_mixing_devices_names_both(monkeypatch):
    # Without a GPU, fake a second device by making one array claim to live on 'cuda'.
    a, b = leaf([1.0]), leaf([2.0])
    monkeypatch.setattr(type(b), "device", property(lambda t: "cuda" if t is b else "cpu"))
    with pytest.raises(ValueError, match=r"mul: inputs are on different devices \(cpu and cuda\)"):
        F.mul(a, b)


def test_anomaly_detection_reports_non_finite_results():
    x = leaf([0.0, 1.0])
    with msn.detect_anomaly():
        with pytest.raises(FloatingPointError, match="log: forward output has 1 non-finite"):
            with np.errstate(divide="ignore"):
                F.log(x)
    with np.errstate(divide="ignore"):
        assert not np.isfinite(F.log(x).data).all()  # off by default


# --- the guards that keep a gradient from being silently wrong (PyTorch refuses the same) ---

def test_a_second_backward_through_a_freed_graph_raises():
    x = leaf([1.0, -2.0])
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match=r"backward: the graph through .* was already freed.*retain_graph=True"):
        y.backward()
    np.testing.assert_allclose(x.grad, [2.0, -4.0])  # not doubled


def test_retain_graph_allows_a_second_pass_that_accumulates():
    x = leaf([1.0, -2.0])
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad, [4.0, -8.0])


def test_a_new_graph_through_a_freed_intermediate_also_raises():
    x = leaf([3.0])
    a = x * x
    a.sum().backward()
    with pytest.raises(RuntimeError, match="already freed"):
        (a * 2.0).sum().backward()


def test_writing_a_saved_array_behind_the_engines_back_is_refused():
    x, w = leaf([1.0, 2.0, 3.0]), leaf([4.0, 5.0, 6.0])
    y = (x * w).sum()
    with pytest.raises(ValueError, match="read-only"):
        x.data[...] = 10  # would make w.grad 10s
    y.backward()
    np.testing.assert_allclose(w.grad, [1.0, 2.0, 3.0])
    x.data[...] = 10  # the graph is freed: the array is writable again
    np.testing.assert_allclose(x.data, 10.0)


def test_an_in_place_change_after_forward_is_caught_at_backward_naming_the_op():
    x, w = leaf([1.0, 2.0, 3.0]), leaf([4.0, 5.0, 6.0])
    y = (x * w).sum()
    with msn.no_grad():
        x.add_(np.full(3, 7.0))
    with pytest.raises(RuntimeError, match=r"mul: input 0 \(shape \(3,\)\), saved for backward, was modified "
                                           r"in place afterwards \(1 in-place write\(s\) to its memory\)"):
        y.backward()


def test_a_backward_after_optimizer_step_is_refused():
    w = msn.nn.Parameter(np.array([1.0, 2.0]))
    opt = msn.optim.SGD([w], lr=0.1)
    loss = (w * w).sum()
    loss.backward(retain_graph=True)
    opt.step()
    with pytest.raises(RuntimeError, match="mul: input .* modified in place"):
        loss.backward()


def test_writes_through_a_view_or_its_base_are_caught():
    a = leaf(np.ones((2, 2)))
    r = a.reshape(4)  # r.data is a view of a.data: the mul below saves a.data's memory
    y = (r * r).sum()
    with pytest.raises(ValueError, match="read-only"):
        a.data[0, 0] = 3.0  # the base is read-only too
    with msn.no_grad():
        a.add_(np.ones((2, 2)))  # counted on the memory the graph saved
    with pytest.raises(RuntimeError, match="mul: input 0 \\(shape \\(4,\\)\\), saved for backward, was modified in place"):
        y.backward()
    b = leaf(np.arange(4.0))
    z = (b * b).sum()
    b.detach().add_(1.0)  # detach shares memory, as in PyTorch
    with pytest.raises(RuntimeError, match="modified in place"):
        z.backward()


def test_an_unrelated_graph_that_is_dropped_leaves_arrays_writable():
    x = leaf([1.0, 2.0])
    y = (x * x).sum()
    assert not x.data.flags.writeable
    del y  # the graph is gone, so nothing can be corrupted any more
    assert x.data.flags.writeable


def test_an_array_that_was_read_only_before_stays_read_only():
    array = np.ones(3)
    array.flags.writeable = False
    x = msn.from_numpy(array).requires_grad_()
    (x * x).sum().backward()
    assert not array.flags.writeable


def test_tensor_copies_and_from_numpy_shares():
    array = np.arange(3.0)
    copied, shared = msn.tensor(array), msn.from_numpy(array)
    array[0] = 42.0
    assert copied.data[0] == 0.0  # torch.tensor copies
    assert shared.data[0] == 42.0  # torch.from_numpy shares
    t = msn.tensor(copied)
    t.data[1] = -1.0
    assert copied.data[1] == 1.0
    with pytest.raises(TypeError, match="from_numpy: expected a numpy.ndarray, got list"):
        msn.from_numpy([1.0])


def test_gradcheck_perturbs_inputs_that_a_live_graph_saved_and_that_graph_then_refuses():
    x, w = leaf([1.0, 2.0, 3.0]), leaf([4.0, 5.0, 6.0])
    y = x * w  # a live graph: x and w are read-only until it is freed
    assert msn.gradcheck(lambda a, b: a * b, x, w)  # its perturbations are counted in-place writes
    assert not x.data.flags.writeable  # still guarded, and its values restored
    np.testing.assert_array_equal(x.data, [1.0, 2.0, 3.0])
    with pytest.raises(RuntimeError, match="mul: input [01] .* modified in place"):
        y.sum().backward()


def test_gradcheck_perturbs_non_contiguous_inputs():
    base = np.random.default_rng(0).normal(size=(4, 6))
    x = msn.from_numpy(base.T).requires_grad_()  # a transposed view: not contiguous
    assert not x.data.flags.c_contiguous
    assert msn.gradcheck(lambda a: (a * a).sum(axis=0), x)
    wrong = msn.gradcheck(lambda a: F.mul(a, a.detach()).sum(), x, raise_on_failure=False)
    assert wrong is False  # d/dx of x * stop_gradient(x) is x, not 2x: the check must see it


def test_in_place_changes_of_a_tensor_that_requires_grad_need_no_grad():
    y = leaf([1.0, 2.0]) * 2.0
    with pytest.raises(RuntimeError, match=r"mul_: in-place change of a tensor that requires grad \(shape \(2,\)\)"):
        y.mul_(3.0)  # the graph would not see the factor 3: a silently wrong gradient
    w = leaf([1.0, 2.0])
    with msn.no_grad():
        w.mul_(3.0)
        w[0] = 5.0
    np.testing.assert_allclose(w.data, [5.0, 6.0])


def test_convolution_weights_saved_as_views_are_guarded():
    conv = msn.nn.Conv2d(2, 3, 3)
    x = msn.tensor(np.random.default_rng(0).normal(size=(1, 2, 5, 5)), dtype=np.float32, requires_grad=True)
    opt = msn.optim.SGD(conv.parameters(), lr=1.0)
    loss = conv(x).sum()
    loss.backward(retain_graph=True)
    opt.step()
    with pytest.raises(RuntimeError, match="conv2d: input 1 .*, saved for backward, was modified in place"):
        loss.backward()
    y = conv(x).sum()
    with pytest.raises(ValueError, match="read-only"):
        conv.weight.data[...] = 10
    with pytest.raises(RuntimeError, match="conv2d: input 1 .* modified in place"):
        conv.load_state_dict(msn.nn.Conv2d(2, 3, 3).state_dict())
        y.backward()


def test_outputs_saved_for_backward_are_guarded():
    x = leaf([0.0, 1.0, 2.0])
    e = x.exp()
    s = e.sum()
    with msn.no_grad():
        e.add_(1.0)  # exp's backward reads its output
    with pytest.raises(RuntimeError, match="exp: an array .* modified in place"):
        s.backward()


def test_an_in_place_change_from_a_source_that_requires_grad_is_refused():
    w = leaf([1.0, 2.0, 3.0])
    buffer = msn.tensor(np.zeros(3))
    with pytest.raises(RuntimeError, match=r"add_: the source requires grad \(shape \(3,\)\)"):
        buffer.add_(w)  # PyTorch would record it; ours is not recorded: w's gradient would be lost
    with msn.no_grad():
        buffer.add_(w)  # on purpose: no gradient
    np.testing.assert_allclose(buffer.data, [1.0, 2.0, 3.0])


def test_a_failed_in_place_change_is_not_counted():
    x = leaf([1.0, 2.0, 3.0])
    y = (x * x).sum()
    with msn.no_grad():
        with pytest.raises(ValueError):
            x.add_(np.ones(5))  # cannot broadcast: nothing written
    y.backward()
    np.testing.assert_allclose(x.grad, [2.0, 4.0, 6.0])


def test_two_views_of_one_base_are_writable_again_after_the_graph_is_freed():
    base = np.arange(6.0).reshape(2, 3)
    a, b = base[0], base[1]
    w = leaf(np.ones(3))
    loss = (w * msn.from_numpy(a) * msn.from_numpy(b)).sum()
    loss.backward()
    del loss
    for array in (base, a, b):
        assert array.flags.writeable
    b[0] = 1.0


def test_getitem_keeps_its_own_copy_of_an_index_array():
    x = leaf([1.0, 2.0, 3.0, 4.0])
    index = np.array([0, 1])
    y = (x[index] * msn.tensor(np.array([10.0, 20.0]))).sum()
    index[:] = [2, 3]  # the caller changes its index array before backward
    y.backward()
    np.testing.assert_allclose(x.grad, [10.0, 20.0, 0.0, 0.0])


def test_saved_bytes_counts_each_block_of_memory_once_and_splits_leaves_from_activations():
    """conv2d keeps x and its weight (leaf memory); each exp keeps its output (an activation); the product
    keeps both exp outputs again, which are the same memory and are not counted twice."""
    from minisegnet.engine import saved_bytes
    rng = np.random.default_rng(0)
    x = msn.tensor(rng.normal(size=(2, 3, 5, 5)), requires_grad=True)
    w = msn.tensor(rng.normal(size=(4, 3, 3, 3)), requires_grad=True)
    y = F.conv2d(x, w)
    z = (y.exp() * y.exp()).sum()
    activations, leaves = saved_bytes(z)
    assert leaves == x.data.nbytes + w.data.nbytes
    assert activations == 2 * y.data.nbytes
    z.backward()
    with pytest.raises(RuntimeError, match="saved_bytes: this graph was freed"):
        saved_bytes(z)
    with pytest.raises(TypeError, match="saved_bytes: expected a Tensor"):
        saved_bytes(y.data)
