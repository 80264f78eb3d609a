"""Activations: relu, sigmoid, tanh, and the numerically stable softmax / log_softmax."""
from ..backend import array_module
from ..engine import Function


class ReLU(Function):
    @staticmethod
    def forward(ctx, x):
        mask = x > 0
        ctx.save_for_backward(mask)  # the gradient passes where the input was positive
        return x * mask

    @staticmethod
    def backward(ctx, g):
        (mask,) = ctx.saved
        return g * mask


class Sigmoid(Function):
    @staticmethod
    def forward(ctx, x):
        xp = array_module(x)
        # 1/(1+e^-x) overflows e^-x for very negative x; the tanh form does not.
        out = 0.5 * (xp.tanh(0.5 * x) + 1)  # float32 stays float32; an int input gives NumPy's float
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        (s,) = ctx.saved
        return g * s * (1 - s)


class Tanh(Function):
    @staticmethod
    def forward(ctx, x):
        out = array_module(x).tanh(x)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        (t,) = ctx.saved
        return g * (1 - t * t)


def softmax_array(x, axis):
    """softmax on a plain array: exp(x - max) / sum exp(x - max), so exp never overflows."""
    xp = array_module(x)
    e = xp.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def log_softmax_array(x, axis):
    """log_softmax on a plain array: (x - max) - log sum exp(x - max), so exp never overflows."""
    xp = array_module(x)
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))


class LogSoftmax(Function):
    """log_softmax(x)_i = x_i - log sum_j exp(x_j), computed as (x - max) - log sum exp(x - max)."""
    name = "log_softmax"

    @staticmethod
    def forward(ctx, x, axis):
        out = log_softmax_array(x, axis)
        ctx.save_for_backward(out)
        ctx.axis = axis
        return out

    @staticmethod
    def backward(ctx, g):
        (out,) = ctx.saved
        xp = array_module(out)
        # d/dx_j: g_j - softmax_j * sum_i g_i
        return g - xp.exp(out) * g.sum(axis=ctx.axis, keepdims=True), None


class Softmax(Function):
    @staticmethod
    def forward(ctx, x, axis):
        out = softmax_array(x, axis)
        ctx.save_for_backward(out)
        ctx.axis = axis
        return out

    @staticmethod
    def backward(ctx, g):
        (s,) = ctx.saved
        # d softmax_i / d x_j = s_i (delta_ij - s_j)
        return s * (g - (g * s).sum(axis=ctx.axis, keepdims=True)), None


def relu(x):
    """max(x, 0); the gradient at exactly 0 is taken as 0."""
    return ReLU.apply(x)


def sigmoid(x):
    return Sigmoid.apply(x)


def tanh(x):
    return Tanh.apply(x)


def softmax(x, axis=1):
    """exp(x) / sum exp(x) along ``axis`` (default 1, the class axis of NCHW scores)."""
    return Softmax.apply(x, axis)


def log_softmax(x, axis=1):
    return LogSoftmax.apply(x, axis)
