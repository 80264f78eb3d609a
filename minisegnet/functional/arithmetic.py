"""Elementwise arithmetic with NumPy broadcasting: add, sub, mul, div, neg, power, exp, log.

Broadcasting copies an input along some axes, so its gradient is the sum of
the output gradient over those axes (``unbroadcast``).

Result dtypes are NumPy's (``numpy.result_type``, with NumPy 2's NEP 50 rule for Python
numbers): an int tensor times 0.5 is float64, as in NumPy, but a Python number never
widens a float tensor, so a float32 tensor times 0.5 stays float32. A NumPy array or
NumPy scalar keeps its own dtype (float32 tensor + float64 array is float64). Each
input's gradient comes back in that input's dtype, so a float32 parameter never gets
a float64 gradient because it met a float64 value.
"""
import numpy as np

from ..backend import array_module
from ..engine import Function, Tensor


def unbroadcast(grad, shape, dtype=None):
    """Sum ``grad`` down to ``shape``, undoing NumPy broadcasting (and cast it to ``dtype`` if given)."""
    if grad.shape != tuple(shape):
        extra = grad.ndim - len(shape)
        grad = grad.sum(axis=tuple(range(extra))) if extra > 0 else grad
        stretched = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
        grad = grad.sum(axis=stretched, keepdims=True) if stretched else grad
    return grad if dtype is None else grad.astype(dtype, copy=False)


def as_operands(a, b):
    """Let one side be a Python number or an array: it becomes a constant Tensor.

    A Python number is "weak" (NEP 50): it takes the tensor's dtype if that dtype can hold
    its kind (float32 tensor * 0.5 -> float32) and NumPy's default otherwise (int tensor
    * 0.5 -> float64). An array keeps its dtype and NumPy's promotion decides.
    """
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        raise TypeError("arithmetic: at least one operand must be a Tensor")
    if not isinstance(a, Tensor):
        a = _constant(a, b)
    if not isinstance(b, Tensor):
        b = _constant(b, a)
    return a, b


def _constant(value, like):
    xp = array_module(like.data)
    if isinstance(value, (bool, int, float, complex)):  # a Python number: weak
        return Tensor(xp.asarray(value, dtype=np.result_type(like.dtype, value)))
    return Tensor(xp.asarray(value))


class Add(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.shapes, ctx.dtypes = (a.shape, b.shape), (a.dtype, b.dtype)
        return a + b

    @staticmethod
    def backward(ctx, g):
        (sa, sb), (da, db) = ctx.shapes, ctx.dtypes
        return (unbroadcast(g, sa, da) if ctx.needs_input_grad[0] else None,
                unbroadcast(g, sb, db) if ctx.needs_input_grad[1] else None)


class Sub(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.shapes, ctx.dtypes = (a.shape, b.shape), (a.dtype, b.dtype)
        return a - b

    @staticmethod
    def backward(ctx, g):
        (sa, sb), (da, db) = ctx.shapes, ctx.dtypes
        return (unbroadcast(g, sa, da) if ctx.needs_input_grad[0] else None,
                unbroadcast(-g, sb, db) if ctx.needs_input_grad[1] else None)


class Mul(Function):
    @staticmethod
    def forward(ctx, a, b):
        # d(ab)/da = b and d(ab)/db = a: keep only the factor the other side needs.
        ctx.save_for_backward(b if ctx.needs_input_grad[0] else None,
                              a if ctx.needs_input_grad[1] else None)
        ctx.shapes, ctx.dtypes = (a.shape, b.shape), (a.dtype, b.dtype)
        return a * b

    @staticmethod
    def backward(ctx, g):
        b, a = ctx.saved
        (sa, sb), (da, db) = ctx.shapes, ctx.dtypes
        return (unbroadcast(g * b, sa, da) if ctx.needs_input_grad[0] else None,
                unbroadcast(g * a, sb, db) if ctx.needs_input_grad[1] else None)


class Div(Function):
    @staticmethod
    def forward(ctx, a, b):
        out = a / b
        ctx.save_for_backward(b, out)
        ctx.shapes, ctx.dtypes = (a.shape, b.shape), (a.dtype, b.dtype)
        return out

    @staticmethod
    def backward(ctx, g):
        b, out = ctx.saved  # d(a/b)/da = 1/b,  d(a/b)/db = -a/b^2 = -out/b
        (sa, sb), (da, db) = ctx.shapes, ctx.dtypes
        return (unbroadcast(g / b, sa, da) if ctx.needs_input_grad[0] else None,
                unbroadcast(-g * out / b, sb, db) if ctx.needs_input_grad[1] else None)


class Neg(Function):
    @staticmethod
    def forward(ctx, a):
        return -a

    @staticmethod
    def backward(ctx, g):
        return -g


class Power(Function):
    """a ** p for a constant exponent p:  d/da = p a^(p-1)."""
    @staticmethod
    def forward(ctx, a, exponent):
        ctx.save_for_backward(a)
        ctx.exponent = exponent
        return a ** exponent

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved
        p = ctx.exponent
        return g * p * a ** (p - 1), None


class Exp(Function):
    @staticmethod
    def forward(ctx, a):
        out = array_module(a).exp(a)
        ctx.save_for_backward(out)  # d exp(a)/da = exp(a)
        return out

    @staticmethod
    def backward(ctx, g):
        (out,) = ctx.saved
        return g * out


class Log(Function):
    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return array_module(a).log(a)

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved
        return g / a


def add(a, b):
    """a + b (broadcasting)."""
    return Add.apply(*as_operands(a, b))


def sub(a, b):
    """a - b (broadcasting)."""
    return Sub.apply(*as_operands(a, b))


def mul(a, b):
    """a * b (broadcasting)."""
    return Mul.apply(*as_operands(a, b))


def div(a, b):
    """a / b (broadcasting)."""
    return Div.apply(*as_operands(a, b))


def neg(a):
    return Neg.apply(a)


def power(a, exponent):
    """a ** exponent for a constant number exponent. The exponent is weak, like any Python
    number: an int tensor squared stays int (as in NumPy), a float32 tensor stays float32."""
    if isinstance(exponent, Tensor):
        raise TypeError("power: the exponent must be a Python number, not a Tensor")
    if isinstance(exponent, (bool, np.bool_)) or not isinstance(exponent, (int, float, np.integer, np.floating)):
        raise TypeError(f"power: the exponent must be a number, got {exponent!r} ({type(exponent).__name__})")
    exponent = int(exponent) if isinstance(exponent, (int, np.integer)) else float(exponent)
    return Power.apply(a, exponent)


def exp(a):
    return Exp.apply(a)


def log(a):
    return Log.apply(a)
