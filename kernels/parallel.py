"""One core per share of the batch: how a convolution uses every core of a CPU.

A convolution is im2col (a Numba kernel), a matrix product (BLAS), and in backward two more
products and col2im. Each piece can use every core on its own: Numba's ``prange`` splits the
(image, channel) planes, OpenBLAS splits each product. But a convolution's products are skinny
(64 x 288 times 288 x 4096 for a 32->64 layer on 64x64 images), and OpenBLAS's own split of
them is poor: on a 2-core machine its two threads reached 40-50 GFLOP/s where one thread alone
reached 38 (benchmarks/README.md).

So on the CPU we split the *batch* instead. ``over_images(images, work, bytes_per_image)`` gives each core a
contiguous share of the images, and each worker thread runs the whole convolution for its share
(im2col, product, col2im) with a one-thread BLAS and the serial twin of each Numba kernel. The
images are independent, so the workers never write the same memory, and the only shared result,
a weight gradient, is returned per piece and summed by the caller in a fixed order: the result
does not depend on which thread finished first.

Within its share, a worker goes a few images at a time (``piece_bytes``): one piece's columns
are built, used, and dropped, so a convolution never holds the columns of the whole batch.

Two kinds of threads must never compete for the same cores (a 5x slowdown measured when
Numba's and OpenBLAS's pools did): while the workers run, BLAS is set to one thread (restored
afterwards) and the kernels called from a worker run their serial twins (``single_threaded()``).
A small batch (less than ``SERIAL_BYTES`` of columns: the lesson net's deeper layers at batch 4) is
not split at all: it runs in the calling thread alone, with a one-thread BLAS and the serial
kernels. Waking a sleeping thread costs about 100 us on a shared VM (a worker of ours, a Numba
``prange`` pool, OpenBLAS's second thread each pay it), which is more than such a layer's work
gains from a second core (benchmarks/README.md).

When none of that can be arranged (BLAS threads out of our control, a single core, one large
image, or a CuPy array, whose GPU already runs the whole batch in parallel) ``work(0, n)`` runs
once in the calling thread, with every pool as usual.
"""
import threading
from concurrent.futures import ThreadPoolExecutor, wait

import numba

from ..backend import is_cupy_array

#: a piece of at most this many bytes of columns (at least one image): a few MB, so the columns of
#: a piece are used while they are still in the last-level cache, and memory stays small.
PIECE_BYTES = 4 << 20
#: below this many bytes of columns for the whole batch, waking threads costs more than it saves: the
#: work runs in the calling thread, single-threaded throughout. An FCN-8s step at batch 4 took 25.8 ms
#: with 1 MB here, against 28.9 ms with the old rule (split above 256 KB, every pool awake below it).
SERIAL_BYTES = 1 << 20

#: how many threads split a batch; None: as many as Numba uses (NUMBA_NUM_THREADS, all cores by default).
THREADS = None

_local = threading.local()
# One split or small batch at a time: two callers would each save and restore BLAS's thread count. That
# count is one per process (NumPy's pthreads OpenBLAS), so while a convolution holds it at one thread, a
# product in any other Python thread runs on one thread too (minisegnet itself is single-threaded).
_lock = threading.Lock()
_pool = None
_blas = None


#: a Numba kernel (im2col, pooling, bilinear) called outside a worker runs its serial twin when the array it
#: reads or writes is smaller than this: below it, waking Numba's thread pool (about 120 us on a shared VM)
#: costs more than a second core saves. 2 MB: the lesson nets' pooling and upsampling at batch 4; an FCN-8s
#: step took 0.92x the time of one that always woke the pool (benchmarks/README.md).
SERIAL_KERNEL_BYTES = 2 << 20


def serial_kernel(nbytes):
    """Whether a Numba kernel over an array of ``nbytes`` should run its serial twin here."""
    return single_threaded() or nbytes < SERIAL_KERNEL_BYTES


def single_threaded():
    """True where kernels must run their serial twins: inside ``over_images``'s worker threads (one per
    core already) and while a small batch runs alone in the calling thread."""
    return getattr(_local, "single_threaded", False)


def _blas_controllers():
    """The BLAS libraries NumPy loaded, as threadpoolctl controllers ([] when none can be
    controlled, e.g. Apple's Accelerate: then the batch is not split)."""
    global _blas
    if _blas is None:
        try:
            from threadpoolctl import ThreadpoolController
            _blas = list(ThreadpoolController().select(user_api="blas").lib_controllers)
        except Exception:  # threadpoolctl missing or unable to read this process's libraries
            _blas = []
    return _blas


def _threads():
    return THREADS or numba.get_num_threads()


def _executor(threads):
    """The pool of worker threads, kept between calls (starting threads costs ~50 us each)."""
    global _pool
    if _pool is None or _pool._max_workers != threads:
        if _pool is not None:
            _pool.shutdown(wait=False)
        _pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="minisegnet")
    return _pool


def _ours_to_arrange(images):
    """A NumPy batch, outside a worker, with a BLAS whose threads can be set: only then do we choose the threads."""
    return not is_cupy_array(images) and not single_threaded() and bool(_blas_controllers())


def _is_small(images, bytes_per_image):
    """Too little work for a second core: under SERIAL_BYTES of columns for the whole batch."""
    return images.shape[0] * bytes_per_image < SERIAL_BYTES


def worker_count(images, bytes_per_image):
    """How many threads ``over_images`` would use for this batch (1: no split)."""
    if not _ours_to_arrange(images) or _is_small(images, bytes_per_image):
        return 1
    threads = min(_threads(), images.shape[0])
    return threads if threads >= 2 else 1


def shares(n_images, workers):
    """[(lo, hi), ...]: ``workers`` contiguous shares of the images, sizes differing by at most one."""
    bounds = [n_images * k // workers for k in range(workers + 1)]
    return list(zip(bounds[:-1], bounds[1:]))


def pieces(lo, hi, bytes_per_image, piece_bytes=None):
    """[(lo, hi), ...]: consecutive pieces of the images lo..hi-1 of at most ``piece_bytes`` (default
    PIECE_BYTES) of columns, one image at least."""
    step = max(1, (piece_bytes or PIECE_BYTES) // max(1, bytes_per_image))
    return [(start, min(start + step, hi)) for start in range(lo, hi, step)]


def _run_share(work, share_pieces):
    if not getattr(_local, "blas_limited", False):
        # An OpenMP build of BLAS keeps one limit per thread: set it in this (long-lived) worker.
        for controller in _blas_controllers():
            if getattr(controller, "threading_layer", None) == "openmp":
                controller.set_num_threads(1)
        _local.blas_limited = True
    _local.single_threaded = True
    try:
        return [work(lo, hi) for lo, hi in share_pieces]
    finally:
        _local.single_threaded = False


def over_images(images, work, bytes_per_image):
    """Call ``work(lo, hi)`` on consecutive pieces of the batch ``images`` (N, ...), covering the
    images 0..N-1, and return the list of what it returned, in image order (so a sum over it is
    the same on every run).

    bytes_per_image: the size of one image's columns, which decides how many images go in a piece.
    """
    n_images = images.shape[0]
    workers = worker_count(images, bytes_per_image)
    if workers == 1:
        if _ours_to_arrange(images) and _is_small(images, bytes_per_image):
            with _lock:  # it too sets BLAS's threads and gives them back
                return _run_alone(work, n_images, _blas_controllers())
        return [work(0, n_images)]
    plans = [pieces(lo, hi, bytes_per_image) for lo, hi in shares(n_images, workers)]
    blas = _blas_controllers()
    with _lock:
        return _run_split(work, plans, blas)


def _run_alone(work, n_images, blas):
    """``work(0, n)`` in the calling thread with a one-thread BLAS and the serial kernels: no thread is woken."""
    before = [controller.get_num_threads() for controller in blas]
    try:  # (the limits set inside: whatever happens, every controller gets its count back)
        for controller in blas:
            controller.set_num_threads(1)
        _local.single_threaded = True
        return [work(0, n_images)]
    finally:
        _local.single_threaded = False
        for controller, threads in zip(blas, before):
            controller.set_num_threads(threads)


def _run_split(work, plans, blas):
    before = [controller.get_num_threads() for controller in blas]
    try:
        for controller in blas:  # a pthreads build (NumPy's wheels) has one limit for the whole process
            controller.set_num_threads(1)
        futures = [_executor(_threads()).submit(_run_share, work, plan) for plan in plans]
        wait(futures)  # every worker done before BLAS gets its threads back, even if one raised
        results = [future.result() for future in futures]  # re-raises a worker's exception here
    finally:
        for controller, threads in zip(blas, before):
            controller.set_num_threads(threads)
    return [result for share in results for result in share]
