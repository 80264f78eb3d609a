"""Elementwise arithmetic with NumPy broadcasting: add, sub, mul, div, neg, power, exp, log.

Broadcasting copies an input along some axes, so its gradient is the sum of
the output gradient over those axes (``unbroadcast``).
"""
from ..backend import array_module
from ..engine import Function, Tensor


def unbroadcast(grad, shape):
    """Sum ``grad`` down to ``shape``, undoing NumPy broadcasting."""
    if grad.shape == tuple(shape):
        return grad
    extra = grad.ndim - len(shape)
    grad = grad.sum(axis=tuple(range(extra))) if extra > 0 else grad
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    return grad.sum(axis=stretched, keepdims=True) if stretched else grad


def as_operands(a, b):
    """Let one side be a Python number or array: it becomes a constant of the other side's dtype."""
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        raise TypeError("arithmetic: at least one operand must be a Tensor")
    if not isinstance(a, Tensor):
        a = Tensor(array_module(b.data).asarray(a, dtype=b.dtype))
    if not isinstance(b, Tensor):
        b = Tensor(array_module(a.data).asarray(b, dtype=a.dtype))
    return a, b


class Add(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.shapes = (a.shape, b.shape)
        return a + b

    @staticmethod
    def backward(ctx, g):
        sa, sb = ctx.shapes
        return (unbroadcast(g, sa) if ctx.needs_input_grad[0] else None,
                unbroadcast(g, sb) if ctx.needs_input_grad[1] else None)


class Sub(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.shapes = (a.shape, b.shape)
        return a - b

    @staticmethod
    def backward(ctx, g):
        sa, sb = ctx.shapes
        return (unbroadcast(g, sa) if ctx.needs_input_grad[0] else None,
                unbroadcast(-g, sb) if ctx.needs_input_grad[1] else None)


class Mul(Function):
    @staticmethod
    def forward(ctx, a, b):
        # d(ab)/da = b and d(ab)/db = a: keep only the factor the other side needs.
        ctx.save_for_backward(b if ctx.needs_input_grad[0] else None,
                              a if ctx.needs_input_grad[1] else None)
        ctx.shapes = (a.shape, b.shape)
        return a * b

    @staticmethod
    def backward(ctx, g):
        b, a = ctx.saved
        sa, sb = ctx.shapes
        return (unbroadcast(g * b, sa) if ctx.needs_input_grad[0] else None,
                unbroadcast(g * a, sb) if ctx.needs_input_grad[1] else None)


class Div(Function):
    @staticmethod
    def forward(ctx, a, b):
        out = a / b
        ctx.save_for_backward(b, out)
        ctx.shapes = (a.shape, b.shape)
        return out

    @staticmethod
    def backward(ctx, g):
        b, out = ctx.saved  # d(a/b)/da = 1/b,  d(a/b)/db = -a/b^2 = -out/b
        sa, sb = ctx.shapes
        return (unbroadcast(g / b, sa) if ctx.needs_input_grad[0] else None,
                unbroadcast(-g * out / b, sb) if ctx.needs_input_grad[1] else None)


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
    """a ** exponent for a Python number exponent."""
    if isinstance(exponent, Tensor):
        raise TypeError("power: the exponent must be a Python number, not a Tensor")
    return Power.apply(a, float(exponent))


def exp(a):
    return Exp.apply(a)


def log(a):
    return Log.apply(a)
