"""Matrix product (BLAS on the CPU, cuBLAS on the GPU)."""
from ..engine import Function
from .arithmetic import unbroadcast


class MatMul(Function):
    """C = A @ B;  dA = dC @ B^T,  dB = A^T @ dC  (batched dims broadcast as in NumPy)."""
    name = "matmul"

    @staticmethod
    def forward(ctx, a, b):
        if a.ndim < 1 or b.ndim < 1 or a.shape[-1] != b.shape[-2 if b.ndim > 1 else 0]:
            raise ValueError(f"matmul: inner dimensions differ: {tuple(a.shape)} @ {tuple(b.shape)}")
        ctx.save_for_backward(b if ctx.needs_input_grad[0] else None,
                              a if ctx.needs_input_grad[1] else None)
        ctx.ndims = (a.ndim, b.ndim)
        ctx.shapes = (a.shape, b.shape)
        return a @ b

    @staticmethod
    def backward(ctx, g):
        b, a = ctx.saved
        na, nb = ctx.ndims
        # Promote vectors to matrices so one formula serves every case.
        if na == 1:
            g = g[..., None, :]
        if nb == 1:
            g = g[..., None]
        da = db = None
        if ctx.needs_input_grad[0]:
            bm = b[:, None] if nb == 1 else b
            da = g @ bm.swapaxes(-1, -2)
            da = da[..., 0, :] if na == 1 else da
            da = unbroadcast(da, ctx.shapes[0])
        if ctx.needs_input_grad[1]:
            am = a[None, :] if na == 1 else a
            db = am.swapaxes(-1, -2) @ g
            db = db[..., 0] if nb == 1 else db
            db = unbroadcast(db, ctx.shapes[1])
        return da, db


def matmul(a, b):
    return MatMul.apply(a, b)
