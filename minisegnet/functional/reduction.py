"""Reductions over axes: sum, mean, max (with keepdims)."""
from ..backend import array_module
from ..engine import Function
from ._geometry import as_int


def _normalise_axis(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    axes = tuple(axis) if isinstance(axis, (tuple, list)) else (axis,)
    axes = tuple(as_int(a, "reduction", "axis") for a in axes)
    for a in axes:
        if not -ndim <= a < ndim:
            raise ValueError(f"reduction: axis {a} is out of range for a tensor with {ndim} dimensions")
    return tuple(sorted(a % ndim for a in axes))


def _expand(g, axes, keepdims):
    """Put back the reduced axes (size 1) so ``g`` broadcasts against the input."""
    if keepdims:
        return g
    xp = array_module(g)
    return xp.expand_dims(g, axes) if axes else g


class Sum(Function):
    @staticmethod
    def forward(ctx, x, axis, keepdims):
        ctx.axes = _normalise_axis(axis, x.ndim)
        ctx.keepdims, ctx.shape = keepdims, x.shape
        return x.sum(axis=ctx.axes, keepdims=keepdims)

    @staticmethod
    def backward(ctx, g):
        xp = array_module(g)
        return xp.broadcast_to(_expand(g, ctx.axes, ctx.keepdims), ctx.shape).copy(), None, None


class Max(Function):
    """Maximum over axes. Where several elements tie for the maximum, the gradient
    is shared equally between them (the subgradient that keeps max symmetric)."""

    @staticmethod
    def forward(ctx, x, axis, keepdims):
        axes = _normalise_axis(axis, x.ndim)
        out = x.max(axis=axes, keepdims=True)
        ctx.save_for_backward(x == out)
        ctx.axes, ctx.keepdims = axes, keepdims
        return out if keepdims else out.squeeze(axis=axes)

    @staticmethod
    def backward(ctx, g):
        (is_max,) = ctx.saved
        share = is_max / is_max.sum(axis=ctx.axes, keepdims=True)
        return _expand(g, ctx.axes, ctx.keepdims) * share.astype(g.dtype), None, None


def sum(x, axis=None, keepdims=False):  # noqa: A001 - the name users expect
    return Sum.apply(x, axis, keepdims)


def mean(x, axis=None, keepdims=False):
    count = 1
    for a in _normalise_axis(axis, x.ndim):
        count *= x.shape[a]
    return Sum.apply(x, axis, keepdims) * (1.0 / count)


def max(x, axis=None, keepdims=False):  # noqa: A001
    return Max.apply(x, axis, keepdims)
