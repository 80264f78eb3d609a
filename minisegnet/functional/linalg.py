"""Matrix product (BLAS on the CPU, cuBLAS on the GPU)."""
from ..engine import Function
from .arithmetic import unbroadcast


class MatMul(Function):
    """C = A @ B;  dA = dC @ B^T,  dB = A^T @ dC  (batch dimensions broadcast as in NumPy).

    A vector is first promoted to a matrix (a row on the left, a column on the right),
    so that one formula serves every case. The result dtype is NumPy's; each gradient comes
    back in its input's dtype."""
    name = "matmul"

    @staticmethod
    def forward(ctx, a, b):
        if a.ndim < 1 or b.ndim < 1 or a.shape[-1] != b.shape[-2 if b.ndim > 1 else 0]:
            raise ValueError(f"matmul: inner dimensions differ: {tuple(a.shape)} @ {tuple(b.shape)}")
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        out2 = a2 @ b2
        ctx.save_for_backward(b2 if ctx.needs_input_grad[0] else None,
                              a2 if ctx.needs_input_grad[1] else None)
        ctx.shapes = (a.shape, b.shape, a2.shape, b2.shape, out2.shape)
        ctx.dtypes = (a.dtype, b.dtype)
        return out2.reshape(out2.shape[:-2] + (a2.shape[-2],) * (a.ndim > 1) + (b2.shape[-1],) * (b.ndim > 1))

    @staticmethod
    def backward(ctx, g):
        b2, a2 = ctx.saved
        a_shape, b_shape, a2_shape, b2_shape, out2_shape = ctx.shapes
        g2 = g.reshape(out2_shape)
        da = db = None
        if ctx.needs_input_grad[0]:
            da = unbroadcast(g2 @ b2.swapaxes(-1, -2), a2_shape, ctx.dtypes[0]).reshape(a_shape)
        if ctx.needs_input_grad[1]:
            db = unbroadcast(a2.swapaxes(-1, -2) @ g2, b2_shape, ctx.dtypes[1]).reshape(b_shape)
        return da, db


def matmul(a, b):
    return MatMul.apply(a, b)
