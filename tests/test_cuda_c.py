"""The CUDA C kernels (kernels/*/*.cu, launched through CuPy on a GPU), checked on any machine:

* NVRTC compiles every one for sm_90, float32 kernels without a float64 instruction and the image
  kernels without a 64-bit integer division (what made the first GPU kernels slow);
* each ``*_gpu`` launcher runs end to end on the host: the same launch (grid, block, arguments) goes
  through the same CUDA C compiled by g++ (tests/host_cuda.py), with NumPy arrays for CuPy's, and must
  give what the plain-loop references and the CPU kernels give, bit for bit on a second run.

On a GPU, tests/test_gpu.py runs them for real through CuPy.
"""
import glob
import itertools
import os

import numpy as np
import pytest

import host_cuda
import nvrtc
from conftest import sample
from minisegnet import kernels as cpu
from minisegnet.kernels import cuda_c
from minisegnet.kernels.bilinear import gpu as bilinear_gpu, reference as bilinear_ref
from minisegnet.kernels.columns import gpu as columns_gpu, reference as im2col_ref
from minisegnet.kernels.crf import gpu as crf_gpu, reference as crf_ref
from minisegnet.kernels.optim import gpu as optim_gpu
from minisegnet.kernels.optim.reference import adam_update_reference
from minisegnet.kernels.pooling import gpu as pooling_gpu, reference as pool_ref
from minisegnet.functional._geometry import conv_output_size, pool_output_size

KERNELS_DIR = os.path.dirname(cuda_c.__file__)
SOURCES = sorted(os.path.relpath(p, KERNELS_DIR) for p in glob.glob(os.path.join(KERNELS_DIR, "*", "*.cu")))

needs_compiler = pytest.mark.skipif(host_cuda.COMPILER is None, reason="no C++ compiler to run CUDA C on the host")


@pytest.fixture(autouse=True)
def kernels_run_on_the_host(monkeypatch):
    """cuda_c.run starts a launch on the host; MAX_GRID_Y = 2, so the kernels' loops over grid rows run."""
    monkeypatch.setattr(cuda_c, "run", host_cuda.run_on_host)
    monkeypatch.setattr(cuda_c, "MAX_GRID_Y", 2)


def rtol(dtype):
    return 1e-12 if dtype == np.float64 else 2e-6


# --- compiled by NVRTC, as CuPy compiles them on a GPU ----------------------------------------------
@pytest.mark.skipif(nvrtc.find_library() is None, reason="NVRTC not installed (the dev extras install it)")
@pytest.mark.parametrize("source", SOURCES)
def test_every_cuda_c_kernel_compiles_with_nvrtc(source):
    names = cuda_c.kernel_names(source)
    ptx, lowered = nvrtc.compile_to_ptx(cuda_c.source_code(source), names)
    bodies = nvrtc.entry_bodies(ptx)
    assert set(lowered.values()) == set(bodies), f"{source}: kernels missing from its '// kernels:' line"
    for name, mangled in lowered.items():
        body = bodies[mangled]
        if "<float>" in name:
            assert ".f64" not in body, f"{name} computes in float64"
        if not name.startswith("adam_update"):  # (its grid-stride loop's trip count is the compiler's own)
            assert not any(op in body for op in ("div.s64", "rem.s64", "div.u64", "rem.u64")), \
                f"{name} divides 64-bit integers"


def test_every_kernel_file_lists_its_kernels_and_every_folder_launches_through_cuda_c():
    assert SOURCES == ["bilinear/bilinear.cu", "columns/columns.cu", "crf/crf.cu", "optim/adam.cu", "pooling/pooling.cu"]
    for source in SOURCES:
        assert cuda_c.kernel_names(source)


# --- run on the host through the very same launches ---------------------------------------------------
@needs_compiler
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("k,s,p,d", [(1, 1, 0, 1), (3, 1, 1, 1), (3, 2, 0, 1), (2, 3, 2, 1), (3, 1, 2, 2),
                                     (2, 2, 1, 3), (3, 3, 1, 2)])
def test_im2col_col2im_cuda_c_equal_reference_and_cpu(k, s, p, d, dtype):
    x = sample((2, 3, 5, 6), dtype)
    g = (k, k, s, s, p, p, d, d)
    oh, ow = conv_output_size(5, k, s, p, d, "t"), conv_output_size(6, k, s, p, d, "t")
    cols = columns_gpu.im2col_gpu(x, g, oh, ow, np)
    assert cols.dtype == dtype
    np.testing.assert_array_equal(cols, im2col_ref.im2col_reference(x, g, oh, ow))  # a copy: exact
    np.testing.assert_array_equal(cols, cpu.im2col(x, g, oh, ow))
    dx = columns_gpu.col2im_gpu(cols, x.shape, g, oh, ow, np)
    assert dx.dtype == dtype
    np.testing.assert_allclose(dx, im2col_ref.col2im_reference(cols, x.shape, g, oh, ow), rtol=rtol(dtype))
    np.testing.assert_allclose(dx, cpu.col2im(cols, x.shape, g, oh, ow), rtol=rtol(dtype))
    np.testing.assert_array_equal(dx, columns_gpu.col2im_gpu(cols, x.shape, g, oh, ow, np))  # a gather: same sums


@needs_compiler
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("k,s,p,ceil", [(k, s, p, c) for k, s, p, c in itertools.product((1, 2, 3), (1, 2, 3), (0, 1),
                                                                                         (False, True)) if p <= k // 2])
def test_pooling_cuda_c_equals_reference_and_cpu(k, s, p, ceil, dtype):
    x = sample((2, 3, 5, 7), dtype)
    x[1, 2] = np.round(x[1, 2])  # ties: the first maximum wins
    x[0, 1, 2, 3] = np.nan  # a NaN wins its windows, as in PyTorch
    g = (k, k, s, s, p, p)
    oh, ow = pool_output_size(5, k, s, p, ceil, "t"), pool_output_size(7, k, s, p, ceil, "t")
    out, arg = pooling_gpu.max_pool_forward_gpu(x, g, oh, ow, np)
    ref_out, ref_arg = pool_ref.max_pool_forward_reference(x, g, oh, ow)
    cpu_out, cpu_arg = cpu.max_pool_forward(x, g, oh, ow)
    assert out.dtype == dtype and arg.dtype == np.int64
    for expected_out, expected_arg in ((ref_out, ref_arg), (cpu_out, cpu_arg)):
        np.testing.assert_array_equal(out, expected_out)
        np.testing.assert_array_equal(arg, expected_arg)
    grad = sample(ref_out.shape, dtype, seed=3)
    dx = pooling_gpu.max_pool_backward_gpu(grad, arg, x.shape, g, np)
    np.testing.assert_allclose(dx, pool_ref.max_pool_backward_reference(grad, ref_arg, x.shape), rtol=rtol(dtype))
    np.testing.assert_allclose(dx, cpu.max_pool_backward(grad, cpu_arg, x.shape, g), rtol=rtol(dtype))
    x = np.nan_to_num(x)
    avg = pooling_gpu.avg_pool_forward_gpu(x, g, oh, ow, np)
    np.testing.assert_allclose(avg, pool_ref.avg_pool_forward_reference(x, g, oh, ow), rtol=rtol(dtype))
    np.testing.assert_allclose(avg, cpu.avg_pool_forward(x, g, oh, ow), rtol=rtol(dtype))
    avg_dx = pooling_gpu.avg_pool_backward_gpu(grad, x.shape, g, np)
    assert avg.dtype == avg_dx.dtype == dtype
    np.testing.assert_allclose(avg_dx, pool_ref.avg_pool_backward_reference(grad, x.shape, g), rtol=rtol(dtype))
    np.testing.assert_allclose(avg_dx, cpu.avg_pool_backward(grad, x.shape, g), rtol=rtol(dtype))


@needs_compiler
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("in_hw,out_hw,align", [((3, 2), (5, 7), True), ((3, 2), (5, 7), False),
                                                ((4, 5), (2, 3), False), ((2, 2), (1, 1), True),
                                                ((3, 4), (6, 8), False), ((8, 8), (64, 64), False)])
def test_bilinear_cuda_c_equals_reference_and_cpu(in_hw, out_hw, align, dtype, monkeypatch):
    # the taps as bilinear_gpu builds them, kept on the host instead of copied to a GPU
    monkeypatch.setattr(bilinear_gpu, "_taps_on", lambda array, i, o, s, a: bilinear_gpu.host_taps(i, o, s, a,
                                                                                                   array.dtype))
    x = sample((2, 3) + in_hw, dtype)
    scales = tuple(i / o for i, o in zip(in_hw, out_hw))
    out = bilinear_gpu.bilinear_forward_gpu(x, out_hw, scales, align, np)
    assert out.dtype == dtype
    np.testing.assert_allclose(out, bilinear_ref.bilinear_forward_reference(x, *out_hw, *scales, align),
                               rtol=rtol(dtype))
    np.testing.assert_allclose(out, cpu.bilinear_forward(x, out_hw, scales, align), rtol=rtol(dtype))
    grad = sample(out.shape, dtype, seed=4)
    dx = bilinear_gpu.bilinear_backward_gpu(grad, x.shape, scales, align, np)
    assert dx.dtype == dtype
    np.testing.assert_array_equal(dx, bilinear_gpu.bilinear_backward_gpu(grad, x.shape, scales, align, np))
    np.testing.assert_allclose(dx, bilinear_ref.bilinear_backward_reference(grad, x.shape, *scales, align),
                               rtol=rtol(dtype))
    np.testing.assert_allclose(dx, cpu.bilinear_backward(grad, x.shape, scales, align), rtol=rtol(dtype))


@needs_compiler
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("d", [2, 5])
def test_lattice_filter_cuda_c_equals_reference_and_cpu(d, dtype):
    """The CRF's splat, blur and slice: all gathers, the same sums on every run; float32 values filter in
    float32 (the lattice's weights, built in float64 on the host, are cast to the values' dtype)."""
    features = np.random.default_rng(d).standard_normal((40, d)) * 2
    lattice = cpu.permutohedral_lattice(features)
    values = np.random.default_rng(1).random((40, 3)).astype(dtype)
    out = crf_gpu.lattice_filter_gpu(values, *lattice, np)
    assert out.dtype == dtype
    np.testing.assert_array_equal(out, crf_gpu.lattice_filter_gpu(values, *lattice, np))
    np.testing.assert_allclose(out, crf_ref.lattice_filter_reference(values, *lattice), rtol=rtol(dtype))
    np.testing.assert_allclose(out, cpu.lattice_filter(values.astype(np.float64), lattice), rtol=rtol(dtype))


@needs_compiler
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
def test_adam_cuda_c_equals_reference(dtype, weight_decay, monkeypatch):
    monkeypatch.setattr(optim_gpu, "MAX_BLOCKS", 2)  # 512 threads for 1500 elements: the grid-stride loop runs
    rng = np.random.default_rng(0)
    fast = [rng.standard_normal(1500).astype(dtype), np.zeros(1500, dtype), np.zeros(1500, dtype)]
    slow = [a.copy() for a in fast]
    for step in range(1, 4):
        g = rng.standard_normal(1500).astype(dtype)
        c1, c2 = 1 / (1 - 0.9 ** step), 1 / (1 - 0.999 ** step)
        optim_gpu.adam_update_gpu(fast[0], g, fast[1], fast[2], 0.01, 0.9, 0.999, 1e-8, c1, c2, weight_decay)
        adam_update_reference(slow[0], g, slow[1], slow[2], 0.01, 0.9, 0.999, 1e-8, step, weight_decay)
    for a, b in zip(fast, slow):  # float32: within 1e-4 of the step size lr (the update's rounding)
        assert a.dtype == dtype
        np.testing.assert_allclose(a, b, rtol=rtol(dtype) * 10, atol=1e-6 if dtype == np.float32 else 1e-14)


@pytest.mark.skipif(nvrtc.find_library() is None, reason="NVRTC not installed (the dev extras install it)")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_launch_passes_arguments_of_the_widths_the_compiled_kernel_takes(dtype, monkeypatch):
    """CuPy copies each argument's bytes into the kernel's parameter buffer without converting them: an int64
    where the kernel takes an int would be garbage on a GPU (C++ on the host would convert it silently). So
    each launch's arguments are held to the parameters of the PTX that NVRTC compiles."""
    launches = []
    monkeypatch.setattr(cuda_c, "run", launches.append)
    x, g = sample((2, 3, 6, 5), dtype), (3, 3, 1, 1, 1, 1, 1, 1)
    cols = columns_gpu.im2col_gpu(x, g, 6, 5, np)
    columns_gpu.col2im_gpu(cols, x.shape, g, 6, 5, np)
    out, argmax = pooling_gpu.max_pool_forward_gpu(x, (2, 2, 2, 2, 0, 0), 3, 2, np)
    pooling_gpu.max_pool_backward_gpu(out, argmax, x.shape, (2, 2, 2, 2, 0, 0), np)
    pooling_gpu.avg_pool_forward_gpu(x, (3, 3, 1, 1, 1, 1), 6, 5, np)
    pooling_gpu.avg_pool_backward_gpu(x, x.shape, (3, 3, 1, 1, 1, 1), np)
    monkeypatch.setattr(bilinear_gpu, "_taps_on", lambda array, i, o, s, a: bilinear_gpu.host_taps(i, o, s, a,
                                                                                                   array.dtype))
    up = bilinear_gpu.bilinear_forward_gpu(x, (12, 10), (0.5, 0.5), False, np)
    bilinear_gpu.bilinear_backward_gpu(up, x.shape, (0.5, 0.5), False, np)
    p = np.zeros(7, dtype)
    optim_gpu.adam_update_gpu(p, p, p, p, 0.1, 0.9, 0.999, 1e-8, 1.0, 1.0, 0.0)
    lattice = cpu.permutohedral_lattice(np.random.default_rng(0).standard_normal((9, 3)))
    crf_gpu.lattice_filter_gpu(np.ones((9, 2), dtype), *lattice, np)
    assert len({launch.kernel.split("<")[0] for launch in launches}) == 12  # every kernel of every .cu file
    for launch in launches:
        ptx, lowered = nvrtc.compile_to_ptx(cuda_c.source_code(launch.source), [launch.kernel])
        expected = nvrtc.entry_parameter_bytes(nvrtc.entry_bodies(ptx)[lowered[launch.kernel]])
        given = [8 if isinstance(a, np.ndarray) else np.dtype(type(a)).itemsize for a in launch.args]
        assert given == expected, f"{launch.kernel}: arguments of {given} bytes, the kernel takes {expected}"


def test_launch_arguments_are_the_c_types_the_kernels_declare():
    x, cols = np.zeros((1, 2, 3, 3), np.float32), np.zeros((1, 18, 9), np.float32)
    launch = columns_gpu.im2col_launch(x, cols, (3, 3, 1, 1, 1, 1, 1, 1), 3, 3)
    assert launch.kernel == "im2col<float>" and launch.block == (cuda_c.THREADS, 1, 1)
    assert all(type(a) is np.int32 for a in launch.args[2:])
    with pytest.raises(ValueError, match="does not fit a 32-bit int"):
        cuda_c.ints(2 ** 31)


def test_the_dispatch_picks_cuda_c_or_the_numba_twins(monkeypatch):
    from minisegnet import kernels
    assert kernels._gpu("columns", "im2col") is columns_gpu.im2col_gpu
    monkeypatch.setattr(kernels, "GPU_KERNELS", "numba")
    from minisegnet.kernels.columns import cuda as columns_numba
    assert kernels._gpu("pooling", "max_pool_forward").__module__.endswith("pooling.cuda")
    assert kernels._gpu("columns", "col2im") is columns_numba.col2im_cuda
    monkeypatch.setattr(kernels, "GPU_KERNELS", "triton")
    with pytest.raises(ValueError, match="MINISEGNET_GPU_KERNELS must be 'cuda-c' or 'numba', got 'triton'"):
        kernels._gpu("columns", "im2col")


def test_the_cuda_c_path_never_imports_numba_cuda():
    """The gpu extra installs CuPy alone (numba-cuda pins NumPy below 2.5): the CUDA C launchers and the
    dispatch must not need numba.cuda. A fresh process, since this test session has the simulator loaded."""
    import subprocess
    import sys
    code = ("import sys, minisegnet.kernels\n"
            "for folder in ('columns', 'pooling', 'bilinear', 'crf', 'optim'):\n"
            "    __import__(f'minisegnet.kernels.{folder}.gpu')\n"
            "print(sorted(m for m in sys.modules if m.startswith('numba.cuda')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
