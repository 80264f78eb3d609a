"""kernels/parallel.py: a convolution's batch split over threads, a few images per piece, gives the
numbers of the plain reference and of the same convolution run as one piece."""
import threading

import numpy as np
import pytest

import minisegnet as msn
from minisegnet import functional as F, kernels
from minisegnet.kernels import parallel
from minisegnet.kernels.columns.reference import conv2d_reference

# (kernel, stride, padding, dilation, groups): strided, padded, dilated, grouped, pointwise
GEOMETRIES = [(3, 1, 1, 1, 1), (3, 2, 0, 1, 1), (3, 1, 2, 2, 1), (2, 3, 1, 1, 2), (1, 1, 0, 1, 1), (1, 1, 0, 1, 3)]


@pytest.fixture
def split(monkeypatch):
    """Every batch of two or more images split over 3 threads (uneven shares on purpose), one image per
    piece, however small the batch, so the tiny shapes of a test take the path a training step takes."""
    if not parallel._blas_controllers():
        pytest.skip("this NumPy's BLAS does not let its threads be set, so batches are never split")
    monkeypatch.setattr(parallel, "THREADS", 3)
    monkeypatch.setattr(parallel, "SERIAL_BYTES", 0)
    monkeypatch.setattr(parallel, "PIECE_BYTES", 1)


@pytest.fixture
def one_piece(monkeypatch):
    monkeypatch.setattr(parallel, "THREADS", 1)


@pytest.fixture
def two_threads(monkeypatch):
    """Two cores, and a BLAS whose threads can be set (else nothing is split or run alone)."""
    if not parallel._blas_controllers():
        pytest.skip("this NumPy's BLAS does not let its threads be set")
    monkeypatch.setattr(parallel, "THREADS", 2)


def recording(seen, result):
    """A ``work`` that records where each piece ran: (lo, hi, kernels single-threaded?, on the main thread?,
    BLAS's thread counts), and returns ``result(lo)``."""
    blas = parallel._blas_controllers()

    def work(lo, hi):
        seen.append((lo, hi, parallel.single_threaded(), threading.current_thread() is threading.main_thread(),
                     [controller.get_num_threads() for controller in blas]))
        return result(lo)
    return work


def test_over_images_covers_the_batch_in_order_on_worker_threads_with_a_one_thread_blas(split):
    blas = parallel._blas_controllers()
    before = [controller.get_num_threads() for controller in blas]
    seen = []
    work = recording(seen, lambda lo: lo)
    assert parallel.worker_count(np.zeros((7, 1)), 8) == 3
    assert kernels.over_images(np.zeros((7, 1)), work, bytes_per_image=8) == list(range(7))  # image order
    assert sorted(piece[:2] for piece in seen) == [(i, i + 1) for i in range(7)]
    assert all(serial and not on_main for _, _, serial, on_main, _ in seen)
    assert all(threads == [1] * len(blas) for *_, threads in seen)
    assert not parallel.single_threaded()
    assert [controller.get_num_threads() for controller in blas] == before  # given back


def test_a_small_batch_runs_alone_in_the_calling_thread_with_serial_kernels_and_a_one_thread_blas(two_threads):
    """Below SERIAL_BYTES of columns no thread is woken: not ours, not Numba's pool, not BLAS's second one."""
    blas = parallel._blas_controllers()
    before = [controller.get_num_threads() for controller in blas]
    seen = []
    work = recording(seen, lambda lo: "done")
    small = parallel.SERIAL_BYTES // 8 - 1  # bytes per image: 8 images just under the line
    assert parallel.worker_count(np.zeros((8, 1)), small) == 1
    assert kernels.over_images(np.zeros((8, 1)), work, bytes_per_image=small) == ["done"]
    assert seen == [(0, 8, True, True, [1] * len(blas))]
    assert not parallel.single_threaded()
    assert [controller.get_num_threads() for controller in blas] == before  # given back
    assert parallel.worker_count(np.zeros((8, 1)), small + 1) == 2  # at the line: split over the cores


def test_an_error_in_a_small_batch_reaches_the_caller_and_blas_gets_its_threads_back(two_threads):
    blas = parallel._blas_controllers()
    before = [controller.get_num_threads() for controller in blas]

    def work(lo, hi):
        raise ValueError("this batch is bad")

    with pytest.raises(ValueError, match="this batch is bad"):
        kernels.over_images(np.zeros((2, 1)), work, bytes_per_image=8)
    assert [controller.get_num_threads() for controller in blas] == before and not parallel.single_threaded()


def test_a_worker_error_reaches_the_caller_and_blas_gets_its_threads_back(split):
    blas = parallel._blas_controllers()
    before = [controller.get_num_threads() for controller in blas]

    def work(lo, hi):
        if lo == 4:
            raise ValueError("image 4 is bad")

    with pytest.raises(ValueError, match="image 4 is bad"):
        kernels.over_images(np.zeros((6, 1)), work, bytes_per_image=8)
    assert [controller.get_num_threads() for controller in blas] == before


def test_shares_and_pieces_cover_every_image_once():
    for n, workers in [(7, 3), (2, 2), (16, 2), (5, 4)]:
        shares = parallel.shares(n, workers)
        assert len(shares) == workers and shares[0][0] == 0 and shares[-1][1] == n
        assert all(a[1] == b[0] for a, b in zip(shares, shares[1:]))
        assert max(hi - lo for lo, hi in shares) - min(hi - lo for lo, hi in shares) <= 1
    assert parallel.pieces(3, 10, bytes_per_image=100, piece_bytes=250) == [(3, 5), (5, 7), (7, 9), (9, 10)]
    assert parallel.pieces(0, 3, bytes_per_image=1000, piece_bytes=10) == [(0, 1), (1, 2), (2, 3)]  # >= 1 image


def test_no_split_for_one_image_a_tiny_batch_or_inside_a_worker(monkeypatch):
    monkeypatch.setattr(parallel, "THREADS", 2)
    assert parallel.worker_count(np.zeros((1, 3, 64, 64)), 1 << 30) == 1
    assert parallel.worker_count(np.zeros((8, 1)), 8) == 1  # 64 bytes of columns: threads cost more
    monkeypatch.setattr(parallel._local, "single_threaded", True, raising=False)
    assert parallel.worker_count(np.zeros((8, 1)), 1 << 30) == 1  # never nested


def _conv_and_grads(op, x, w, b, k, s, p, d, groups):
    xt, wt, bt = (msn.tensor(a, requires_grad=True) for a in (x, w, b))
    if op == "conv2d":
        y = F.conv2d(xt, wt, bt, s, p, d, groups)
    else:
        y = F.conv_transpose2d(xt, wt, bt, s, p, 0, groups, d)
    upstream = np.random.default_rng(7).normal(size=y.shape).astype(x.dtype)
    (y * msn.tensor(upstream)).sum().backward()
    return y.data, xt.grad, wt.grad, bt.grad


def _inputs(op, k, groups, dtype, n=5):
    rng = np.random.default_rng(k * 10 + groups)
    c_in, c_out = 3 * groups, 2 * groups
    w_shape = (c_out, c_in // groups, k, k) if op == "conv2d" else (c_in, c_out // groups, k, k)
    return (rng.normal(size=(n, c_in, 7, 6)).astype(dtype), rng.normal(size=w_shape).astype(dtype),
            rng.normal(size=c_out).astype(dtype))


@pytest.mark.parametrize("op", ["conv2d", "conv_transpose2d"])
@pytest.mark.parametrize("k,s,p,d,groups", GEOMETRIES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_split_batch_gives_the_numbers_of_one_piece_and_of_the_reference(op, k, s, p, d, groups, dtype,
                                                                          monkeypatch):
    x, w, b = _inputs(op, k, groups, dtype)
    monkeypatch.setattr(parallel, "THREADS", 1)
    whole = _conv_and_grads(op, x, w, b, k, s, p, d, groups)
    if not parallel._blas_controllers():
        pytest.skip("this NumPy's BLAS does not let its threads be set, so batches are never split")
    monkeypatch.setattr(parallel, "THREADS", 3)
    monkeypatch.setattr(parallel, "SERIAL_BYTES", 0)
    monkeypatch.setattr(parallel, "PIECE_BYTES", 1)
    pieces = _conv_and_grads(op, x, w, b, k, s, p, d, groups)
    tolerance = 1e-5 if dtype == np.float32 else 1e-12
    for a, c in zip(whole, pieces):
        assert a.dtype == c.dtype == dtype
        np.testing.assert_allclose(c, a, rtol=tolerance, atol=tolerance)
    if op == "conv2d":
        np.testing.assert_allclose(pieces[0], conv2d_reference(x.astype(np.float64), w.astype(np.float64), b,
                                                               (s, s), (p, p), (d, d), groups),
                                   rtol=tolerance, atol=tolerance)
    again = _conv_and_grads(op, x, w, b, k, s, p, d, groups)
    for a, c in zip(pieces, again):
        np.testing.assert_array_equal(a, c)  # the same sum in the same order: bit for bit


@pytest.mark.parametrize("op", ["conv2d", "conv_transpose2d"])
def test_split_convolutions_gradcheck_in_float64(op, split):
    rng = np.random.default_rng(3)
    x = msn.tensor(rng.normal(size=(4, 4, 5, 6)), requires_grad=True)
    if op == "conv2d":
        w = msn.tensor(rng.normal(size=(4, 2, 3, 3)), requires_grad=True)
        assert msn.gradcheck(lambda x, w: F.conv2d(x, w, stride=2, padding=1, dilation=(1, 2), groups=2), x, w,
                             max_elements=40)
    else:
        w = msn.tensor(rng.normal(size=(4, 3, 4, 4)), requires_grad=True)
        assert msn.gradcheck(lambda x, w: F.conv_transpose2d(x, w, stride=2, padding=1), x, w, max_elements=40)


def test_conv2d_saves_its_input_not_its_columns():
    """The columns of a 3x3 convolution are 9x its input; backward rebuilds them a piece at a time, so a
    training step holds x (and the weight), not the columns."""
    rng = np.random.default_rng(0)
    x = msn.tensor(rng.normal(size=(4, 8, 16, 16)).astype(np.float32), requires_grad=True)
    w = msn.tensor(rng.normal(size=(8, 8, 3, 3)).astype(np.float32), requires_grad=True)
    y = F.conv2d(x, w, padding=1)
    saved_bytes = sum(a.nbytes for a in y._ctx.saved if a is not None)
    assert saved_bytes == x.data.nbytes + w.data.nbytes


def _freed_memory_setting(env):
    """What keep_freed_memory() returns in a fresh process with the environment ``env`` added."""
    import os
    import subprocess
    import sys
    code = "import minisegnet.backend as b; print(b.keep_freed_memory())"
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "GLIBC_TUNABLES", "MINISEGNET_"))}
    out = subprocess.run([sys.executable, "-c", code], env={**clean, **env}, capture_output=True, text=True, check=True)
    return out.stdout.strip()


@pytest.mark.skipif(not __import__("sys").platform.startswith("linux"), reason="glibc's malloc is Linux's")
def test_freed_memory_is_kept_for_reuse_unless_the_user_says_otherwise():
    """On glibc the setting is made; MINISEGNET_KEEP_FREED_MEMORY=0 or a MALLOC_* tunable of the user's own
    leaves malloc alone."""
    import platform
    if platform.libc_ver()[0] != "glibc":
        pytest.skip("not glibc")
    assert _freed_memory_setting({}) == "True"
    assert _freed_memory_setting({"MINISEGNET_KEEP_FREED_MEMORY": "0"}) == "False"
    assert _freed_memory_setting({"MALLOC_ARENA_MAX": "2"}) == "False"


FAULTS_PER_STEP = """
import resource, sys
import numpy as np
import minisegnet as msn
from minisegnet import functional as F, optim
from minisegnet.models import build_model
msn.manual_seed(0)
model = build_model("fcn8s", 9)
opt = optim.Adam(model.parameters(), lr=1e-3)
x = msn.tensor(np.random.default_rng(0).random((4, 3, 64, 64), dtype=np.float32))
labels = np.random.default_rng(1).integers(0, 9, (4, 64, 64))
def step():
    opt.zero_grad()
    F.cross_entropy(model(x), labels).backward()
    opt.step()
for _ in range(3):
    step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(4):
    step()
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 4)
"""


def test_a_training_steps_arrays_come_back_without_page_faults():
    """The reason for keep_freed_memory: after a warm-up, an FCN-8s training step faults in (almost) no
    fresh pages, where glibc's defaults returned freed blocks to the OS and faulted them in again on the
    next step (2337 faults per step measured at N4, 13340 at N16)."""
    import os
    import platform
    import subprocess
    import sys
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        pytest.skip("glibc only")
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "GLIBC_TUNABLES", "MINISEGNET_"))}

    def faults(**env):
        run = subprocess.run([sys.executable, "-c", FAULTS_PER_STEP], env={**clean, **env}, capture_output=True,
                             text=True, check=True)
        return float(run.stdout.strip())
    kept, returned = faults(), faults(MINISEGNET_KEEP_FREED_MEMORY="0")
    assert kept < 100 and returned > 10 * kept, (kept, returned)
