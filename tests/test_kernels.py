"""Every fast kernel against its plain-loop reference, on the CPU (Numba) and through the
CUDA twin: in Numba's CUDA simulator without a GPU (NumPy arrays), on the device with one."""
import itertools

import numpy as np
import pytest

from minisegnet import kernels as cpu  # NumPy arrays: the dispatcher runs the Numba CPU kernels
from minisegnet.kernels import bilinear_taps
from minisegnet.kernels.bilinear import reference as bilinear_ref
from minisegnet.kernels.columns import reference as im2col_ref
from minisegnet.kernels.pooling import reference as pool_ref
from minisegnet.functional._geometry import conv_output_size, pool_output_size
from conftest import HAS_GPU, sample

CONV_CASES = [(k, s, p, d) for k, s, p, d in itertools.product((1, 2, 3, 5), (1, 2, 3), (0, 1, 2), (1, 2, 3))
              if d * (k - 1) + 1 <= 5 + 2 * p]
POOL_CASES = [(k, s, p, c) for k, s, p, c in itertools.product((1, 2, 3), (1, 2, 3), (0, 1), (False, True))
              if p <= k // 2]
BILINEAR_CASES = [((3, 2), (5, 7), True), ((3, 2), (5, 7), False), ((4, 5), (2, 3), False), ((2, 2), (1, 1), True),
                  ((3, 4), (6, 8), False)]


def conv_geometry(k, s, p, d):
    return (k, k, s, s, p, p, d, d)


@pytest.fixture(params=["parallel", "serial"])
def twin(request, monkeypatch):
    """Each CPU kernel has a parallel driver and a serial twin (kernels/parallel.py picks by size): test both."""
    from minisegnet.kernels import parallel
    monkeypatch.setattr(parallel, "SERIAL_KERNEL_BYTES", 0 if request.param == "parallel" else 1 << 62)
    return request.param


# --- CPU kernels vs references ----------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("k,s,p,d", CONV_CASES)
def test_im2col_col2im_cpu_equal_reference(k, s, p, d, dtype, twin):
    x = sample((2, 3, 5, 6), dtype)
    g = conv_geometry(k, s, p, d)
    oh, ow = conv_output_size(5, k, s, p, d, "t"), conv_output_size(6, k, s, p, d, "t")
    cols = cpu.im2col(x, g, oh, ow)
    np.testing.assert_array_equal(cols, im2col_ref.im2col_reference(x, g, oh, ow))
    np.testing.assert_allclose(cpu.col2im(cols, x.shape, g, oh, ow),
                               im2col_ref.col2im_reference(cols, x.shape, g, oh, ow), rtol=1e-6)


def test_im2col_layout_is_image_major_and_one_product_per_image_is_the_convolution():
    """cols[n, (c, ky, kx), (oy, ox)] = x[n, c, oy*sh - ph + ky*dh, ox*sw - pw + kx*dw]: image n's columns
    are cols[n], so W @ cols[n] is image n's output in NCHW order, with no transpose."""
    x = sample((2, 3, 5, 6))
    g = (3, 2, 2, 1, 1, 0, 1, 2)  # kh, kw, sh, sw, ph, pw, dh, dw: every number different
    oh, ow = conv_output_size(5, 3, 2, 1, 1, "t"), conv_output_size(6, 2, 1, 0, 2, "t")
    for cols in (im2col_ref.im2col_reference(x, g, oh, ow), cpu.im2col(x, g, oh, ow)):
        assert cols.shape == (2, 3 * 3 * 2, oh * ow)
        n, c, ky, kx, oy, ox = 1, 2, 2, 1, 1, 3
        assert cols[n, (c * 3 + ky) * 2 + kx, oy * ow + ox] == x[n, c, oy * 2 - 1 + ky, ox * 1 - 0 + kx * 2]
        assert cols[0, 0, 0] == 0  # oy = 0, ky = 0 reads row -1: padding
        w = sample((4, 3, 3, 2), seed=3)
        y = w.reshape(4, -1) @ cols  # broadcast over the images: (N, C_out, L)
        np.testing.assert_allclose(y.reshape(2, 4, oh, ow),
                                   im2col_ref.conv2d_reference(x, w, None, (2, 1), (1, 0), (1, 2), 1), rtol=1e-12)


@pytest.mark.parametrize("k,s,p,ceil", POOL_CASES)
def test_pooling_cpu_equal_reference(k, s, p, ceil, twin):
    x = sample((2, 2, 5, 7))
    g = (k, k, s, s, p, p)
    oh, ow = pool_output_size(5, k, s, p, ceil, "t"), pool_output_size(7, k, s, p, ceil, "t")
    out, arg = cpu.max_pool_forward(x, g, oh, ow)
    ref_out, ref_arg = pool_ref.max_pool_forward_reference(x, g, oh, ow)
    np.testing.assert_array_equal(out, ref_out)
    np.testing.assert_array_equal(arg, ref_arg)
    grad = sample(out.shape, seed=1)
    np.testing.assert_allclose(cpu.max_pool_backward(grad, arg, x.shape, g),
                               pool_ref.max_pool_backward_reference(grad, arg, x.shape))
    np.testing.assert_allclose(cpu.avg_pool_forward(x, g, oh, ow),
                               pool_ref.avg_pool_forward_reference(x, g, oh, ow), rtol=1e-12)
    np.testing.assert_allclose(cpu.avg_pool_backward(grad, x.shape, g),
                               pool_ref.avg_pool_backward_reference(grad, x.shape, g), rtol=1e-12)


@pytest.mark.parametrize("in_hw,out_hw,align", BILINEAR_CASES)
def test_bilinear_cpu_equal_reference(in_hw, out_hw, align, twin):
    x = sample((2, 2) + in_hw)
    scales = tuple(i / o for i, o in zip(in_hw, out_hw))
    out = cpu.bilinear_forward(x, out_hw, scales, align)
    np.testing.assert_allclose(out, bilinear_ref.bilinear_forward_reference(x, *out_hw, *scales, align), rtol=1e-12)
    grad = sample(out.shape, seed=2)
    np.testing.assert_allclose(cpu.bilinear_backward(grad, x.shape, scales, align),
                               bilinear_ref.bilinear_backward_reference(grad, x.shape, *scales, align), rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
@pytest.mark.parametrize("contiguous", [True, False])
def test_adam_update_cpu_equals_reference_over_several_steps(dtype, weight_decay, contiguous):
    """The fused Numba loop (and the array-expression path that non-contiguous arrays take) against the
    formula's plain loop, over three steps, so m, v and the bias corrections all change."""
    from minisegnet.kernels.optim.reference import adam_update_reference
    rng = np.random.default_rng(0)
    shape = (5, 7)
    fast = [rng.normal(size=shape).astype(dtype), np.zeros(shape, dtype), np.zeros(shape, dtype)]
    slow = [a.astype(np.float64) for a in fast]
    if not contiguous:
        fast = [np.asfortranarray(a) for a in fast]
    for step in (1, 2, 3):
        g = rng.normal(size=shape)
        cpu.adam_update(fast[0], g.astype(dtype) if contiguous else np.asfortranarray(g.astype(dtype)), fast[1],
                        fast[2], 0.01, (0.9, 0.999), 1e-8, step, weight_decay)
        adam_update_reference(slow[0], g, slow[1], slow[2], 0.01, 0.9, 0.999, 1e-8, step, weight_decay)
    for a, b in zip(fast, slow):
        assert a.dtype == dtype
        np.testing.assert_allclose(a, b, rtol=rtol(dtype) * 10, atol=1e-7 if dtype == np.float32 else 1e-14)


def test_adam_update_refuses_state_of_another_shape_or_dtype():
    p = np.zeros(4, np.float32)
    with pytest.raises(ValueError, match=r"kernels.adam_update: m is a float64 array of shape \(4,\), the "
                                         r"parameter a float32 array of shape \(4,\)"):
        cpu.adam_update(p, np.zeros(4, np.float32), np.zeros(4), np.zeros(4, np.float32), 0.1, (0.9, 0.999),
                        1e-8, 1, 0.0)
    with pytest.raises(ValueError, match=r"kernels.adam_update: g is a float32 array of shape \(5,\)"):
        cpu.adam_update(p, np.zeros(5, np.float32), np.zeros(4, np.float32), np.zeros(4, np.float32), 0.1,
                        (0.9, 0.999), 1e-8, 1, 0.0)


# --- CUDA twins (simulator without a GPU; tiny shapes: each simulated launch is slow) ---------
def cuda_module(name):
    """Import a kernels.*.cuda module; numba-cuda (the dev extra) provides numba.cuda and its simulator."""
    pytest.importorskip("numba.cuda")
    import importlib
    return importlib.import_module(f"minisegnet.kernels.{name}.cuda")


def device_xp():
    if HAS_GPU:
        return pytest.importorskip("cupy")
    return np  # the simulator runs kernels on NumPy arrays


def to_host(a):
    return a.get() if hasattr(a, "get") else a


# Every CUDA test runs a batch of N = 2 images of C = 3 channels (N != C, so a thread that decodes its
# flat index into (n, c) the wrong way round reads the wrong plane and fails), in float64 and in
# float32 (the dtype training runs in). Shapes stay small: a few hundred threads per launch.
SIM_DTYPES = [np.float64, np.float32]
SIM_BATCH = (2, 3)


def rtol(dtype):
    """Sums may be added up in a different order (or, in the simulator, in a different precision)
    than in the reference: a few units in the last place of the dtype."""
    return 1e-12 if dtype == np.float64 else 2e-6


SIM_CONV = [(1, 1, 0, 1), (3, 1, 1, 1), (3, 2, 0, 1), (2, 3, 2, 1), (3, 1, 2, 2), (2, 2, 1, 3), (3, 3, 1, 2)]


@pytest.mark.parametrize("dtype", SIM_DTYPES)
@pytest.mark.parametrize("k,s,p,d", SIM_CONV)
def test_im2col_col2im_cuda_equal_reference_and_cpu(k, s, p, d, dtype):
    kernels = cuda_module("columns")
    xp = device_xp()
    x = sample(SIM_BATCH + (3, 4), dtype)
    g = conv_geometry(k, s, p, d)
    oh, ow = conv_output_size(3, k, s, p, d, "t"), conv_output_size(4, k, s, p, d, "t")
    cols = to_host(kernels.im2col_cuda(xp.asarray(x), g, oh, ow, xp))
    assert cols.dtype == dtype
    np.testing.assert_array_equal(cols, im2col_ref.im2col_reference(x, g, oh, ow))  # a copy: exact
    np.testing.assert_array_equal(cols, cpu.im2col(x, g, oh, ow))
    dx = to_host(kernels.col2im_cuda(xp.asarray(cols), x.shape, g, oh, ow, xp))
    assert dx.dtype == dtype
    np.testing.assert_allclose(dx, im2col_ref.col2im_reference(cols, x.shape, g, oh, ow), rtol=rtol(dtype))
    np.testing.assert_allclose(dx, cpu.col2im(cols, x.shape, g, oh, ow), rtol=rtol(dtype))


@pytest.mark.parametrize("dtype", SIM_DTYPES)
@pytest.mark.parametrize("k,s,p,ceil", [(2, 2, 0, False), (3, 2, 1, True), (3, 1, 1, False), (2, 3, 1, True)])
def test_pooling_cuda_equal_reference_and_cpu(k, s, p, ceil, dtype):
    kernels = cuda_module("pooling")
    xp = device_xp()
    x = sample(SIM_BATCH + (5, 4), dtype)
    x[1, 2] = np.round(x[1, 2])  # ties in the last plane: the first maximum must win on the GPU too
    g = (k, k, s, s, p, p)
    oh, ow = pool_output_size(5, k, s, p, ceil, "t"), pool_output_size(4, k, s, p, ceil, "t")
    out, arg = kernels.max_pool_forward_cuda(xp.asarray(x), g, oh, ow, xp)
    ref_out, ref_arg = pool_ref.max_pool_forward_reference(x, g, oh, ow)
    cpu_out, cpu_arg = cpu.max_pool_forward(x, g, oh, ow)
    assert to_host(out).dtype == dtype
    for expected_out, expected_arg in ((ref_out, ref_arg), (cpu_out, cpu_arg)):
        np.testing.assert_array_equal(to_host(out), expected_out)
        np.testing.assert_array_equal(to_host(arg), expected_arg)
    grad = sample(ref_out.shape, dtype, seed=3)
    dx = to_host(kernels.max_pool_backward_cuda(xp.asarray(grad), arg, x.shape, g, xp))
    assert dx.dtype == dtype
    np.testing.assert_allclose(dx, pool_ref.max_pool_backward_reference(grad, ref_arg, x.shape), rtol=rtol(dtype))
    np.testing.assert_allclose(dx, cpu.max_pool_backward(grad, cpu_arg, x.shape, g), rtol=rtol(dtype))
    avg = to_host(kernels.avg_pool_forward_cuda(xp.asarray(x), g, oh, ow, xp))
    assert avg.dtype == dtype
    np.testing.assert_allclose(avg, pool_ref.avg_pool_forward_reference(x, g, oh, ow), rtol=rtol(dtype))
    np.testing.assert_allclose(avg, cpu.avg_pool_forward(x, g, oh, ow), rtol=rtol(dtype))
    avg_dx = to_host(kernels.avg_pool_backward_cuda(xp.asarray(grad), x.shape, g, xp))
    assert avg_dx.dtype == dtype
    np.testing.assert_allclose(avg_dx, pool_ref.avg_pool_backward_reference(grad, x.shape, g), rtol=rtol(dtype))
    np.testing.assert_allclose(avg_dx, cpu.avg_pool_backward(grad, x.shape, g), rtol=rtol(dtype))


@pytest.mark.parametrize("dtype", SIM_DTYPES)
@pytest.mark.parametrize("in_hw,out_hw,align", BILINEAR_CASES)
def test_bilinear_cuda_equal_reference_and_cpu(in_hw, out_hw, align, dtype):
    kernels = cuda_module("bilinear")
    xp = device_xp()
    x = sample(SIM_BATCH + in_hw, dtype)
    scales = tuple(i / o for i, o in zip(in_hw, out_hw))
    taps = bilinear_taps(in_hw, out_hw, scales, align, x.dtype, xp)
    out = to_host(kernels.bilinear_forward_cuda(xp.asarray(x), taps, xp))
    assert out.dtype == dtype
    np.testing.assert_allclose(out, bilinear_ref.bilinear_forward_reference(x, *out_hw, *scales, align),
                               rtol=rtol(dtype))
    np.testing.assert_allclose(out, cpu.bilinear_forward(x, out_hw, scales, align), rtol=rtol(dtype))
    grad = sample(out.shape, dtype, seed=4)
    dx = to_host(kernels.bilinear_backward_cuda(xp.asarray(grad), x.shape, taps, xp))
    assert dx.dtype == dtype
    # a gather (no atomic adds): the same order of additions on every run
    np.testing.assert_array_equal(dx, to_host(kernels.bilinear_backward_cuda(xp.asarray(grad), x.shape, taps, xp)))
    np.testing.assert_allclose(dx, bilinear_ref.bilinear_backward_reference(grad, x.shape, *scales, align),
                               rtol=rtol(dtype))
    np.testing.assert_allclose(dx, cpu.bilinear_backward(grad, x.shape, scales, align), rtol=rtol(dtype))


@pytest.mark.parametrize("dtype", SIM_DTYPES)
@pytest.mark.parametrize("d", [2, 5])
def test_lattice_filter_cuda_equals_reference_and_cpu(d, dtype):
    """The CRF's splat, blur and slice kernels, for 3 channels, all gathers (no atomic adds: the same result on
    every run). The lattice's weights are float64 whatever the values' dtype (it is built on the host); the
    values set the dtype of the result and of the arithmetic."""
    from minisegnet.kernels.crf import reference as crf_ref
    kernels = cuda_module("crf")
    xp = device_xp()
    features = np.random.default_rng(d).standard_normal((12, d)) * 2
    lattice = cpu.permutohedral_lattice(features)  # built on the host, as on a GPU
    values = np.random.default_rng(1).random((12, 3)).astype(dtype)
    out = to_host(kernels.lattice_filter_cuda(xp.asarray(values), *(xp.asarray(a) for a in lattice), xp))
    assert out.dtype == dtype
    again = to_host(kernels.lattice_filter_cuda(xp.asarray(values), *(xp.asarray(a) for a in lattice), xp))
    np.testing.assert_array_equal(out, again)
    np.testing.assert_allclose(out, crf_ref.lattice_filter_reference(values, *lattice), rtol=rtol(dtype))
    # (the CPU kernel in float64: the library's CRF runs in float64, so no float32 CPU kernel is compiled for it)
    np.testing.assert_allclose(out, cpu.lattice_filter(values.astype(np.float64), lattice), rtol=rtol(dtype))


def test_every_cuda_kernel_compiles_to_ptx_without_a_gpu():
    """The simulator runs kernels as Python; the real compiler (NVVM, sm_90) must accept them too."""
    import os
    import subprocess
    import sys
    pytest.importorskip("numba.cuda")
    script = os.path.join(os.path.dirname(__file__), "cuda_ptx_check.py")
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    result = subprocess.run([sys.executable, script], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("compiled ") == 22


def test_pooling_entry_points_refuse_windows_outside_the_image_and_non_integer_argmax():
    """The kernels read each window's first pixel and index dx with argmax: the entry points check both."""
    x = np.zeros((1, 1, 4, 4), np.float32)
    with pytest.raises(ValueError, match=r"kernels.max_pool_forward: a 3x2 output of an input of shape "
                                         r"\(1, 1, 4, 4\) .* start outside the image"):
        cpu.max_pool_forward(x, (2, 2, 2, 2, 0, 0), 3, 2)
    with pytest.raises(ValueError, match="kernels.avg_pool_forward: a 2x5 output"):
        cpu.avg_pool_forward(x, (2, 2, 2, 2, 0, 0), 2, 5)
    out, argmax = cpu.max_pool_forward(x, (2, 2, 2, 2, 0, 0), 2, 2)
    with pytest.raises(TypeError, match="kernels.max_pool_backward: argmax holds float64"):
        cpu.max_pool_backward(out, argmax.astype(np.float64), x.shape, (2, 2, 2, 2, 0, 0))
    with pytest.raises(ValueError, match=r"kernels.max_pool_backward: geometry \(2, 2, 0, 2, 0, 0\) needs"):
        cpu.max_pool_backward(out, argmax, x.shape, (2, 2, 0, 2, 0, 0))


def test_a_geometry_is_a_named_tuple_and_a_plain_tuple_means_the_same():
    """kernels.Geometry names the eight numbers (dilation defaults to 1, as pooling has none); the entry points
    take it or the plain tuple in the same order, and give the same columns; a wrong count or a pooling with a
    dilation is refused, naming the op and the numbers."""
    g = cpu.Geometry(3, 2, 2, 1, 1, 0, 2, 1)
    assert (g.kernel_h, g.kernel_w, g.stride_h, g.stride_w, g.pad_h, g.pad_w, g.dilation_h, g.dilation_w) == tuple(g)
    assert cpu.Geometry(2, 2, 2, 2, 0, 0) == (2, 2, 2, 2, 0, 0, 1, 1)
    x = sample((2, 3, 7, 6), np.float32)
    oh, ow = conv_output_size(7, 3, 2, 1, 2, "t"), conv_output_size(6, 2, 1, 0, 1, "t")
    np.testing.assert_array_equal(cpu.im2col(x, g, oh, ow), cpu.im2col(x, tuple(g), oh, ow))
    pool = cpu.Geometry(2, 2, 2, 2, 0, 0)
    np.testing.assert_array_equal(cpu.avg_pool_forward(x, pool, 3, 3), cpu.avg_pool_forward(x, tuple(pool)[:6], 3, 3))
    with pytest.raises(ValueError, match=r"kernels.im2col: geometry must have 8 numbers, got \(3, 3, 1, 1, 1, 1\)"):
        cpu.im2col(x, (3, 3, 1, 1, 1, 1), 7, 6)
    with pytest.raises(ValueError, match=r"kernels.avg_pool_forward: pooling has no dilation, got \(2, 1\)"):
        cpu.avg_pool_forward(x, cpu.Geometry(2, 2, 2, 2, 0, 0, 2, 1), 3, 3)


def test_the_serial_twins_give_the_parallel_kernels_numbers_bit_for_bit(monkeypatch):
    """Which twin runs depends on the array's size (kernels/parallel.py), never the numbers: each plane is
    computed by the same loops in the same order either way, so a model trains to the same weights."""
    from minisegnet.kernels import parallel
    x = sample((3, 4, 9, 8))
    runs = []
    for limit in (0, 1 << 62):  # every kernel parallel, then every kernel serial
        monkeypatch.setattr(parallel, "SERIAL_KERNEL_BYTES", limit)
        g = conv_geometry(3, 1, 1, 2)
        cols = cpu.im2col(x, g, 9, 8)
        out, arg = cpu.max_pool_forward(x, (2, 2, 2, 2, 0, 0), 4, 4)
        up = cpu.bilinear_forward(x, (17, 13), (9 / 17, 8 / 13), False)
        runs.append([cols, cpu.col2im(cols, x.shape, g, 9, 8), out, arg, cpu.max_pool_backward(out, arg, x.shape,
                     (2, 2, 2, 2, 0, 0)), cpu.avg_pool_forward(x, (3, 3, 1, 1, 1, 1), 9, 8),
                     cpu.avg_pool_backward(x, x.shape, (3, 3, 1, 1, 1, 1)), up,
                     cpu.bilinear_backward(up, x.shape, (9 / 17, 8 / 13), False)])
    for parallel_result, serial_result in zip(*runs):
        np.testing.assert_array_equal(serial_result, parallel_result)
