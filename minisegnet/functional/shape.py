"""Ops that move values around without changing them: reshape, transpose,
concatenate, indexing (the FCN crop), constant padding, device copies."""
import numpy as np

from .. import backend
from ..backend import array_module
from ..engine import Function


class Reshape(Function):
    @staticmethod
    def forward(ctx, x, shape):
        ctx.shape = x.shape
        try:
            return x.reshape(shape)
        except ValueError:
            raise ValueError(f"reshape: cannot reshape {tuple(x.shape)} ({x.size} elements) into {shape}") from None

    @staticmethod
    def backward(ctx, g):
        return g.reshape(ctx.shape), None


class Transpose(Function):
    @staticmethod
    def forward(ctx, x, axes):
        if axes is not None and sorted(a % x.ndim for a in axes) != list(range(x.ndim)):
            raise ValueError(f"transpose: axes {axes} are not a permutation of {x.ndim} dimensions")
        ctx.axes = axes
        return x.transpose(axes)

    @staticmethod
    def backward(ctx, g):
        inverse = None if ctx.axes is None else tuple(int(i) for i in np.argsort(np.asarray(ctx.axes) % g.ndim))
        return g.transpose(inverse), None


class Concatenate(Function):
    @staticmethod
    def forward(ctx, axis, *xs):
        ctx.axis = axis
        ctx.sizes = [x.shape[axis] for x in xs]
        ctx.dtypes = [x.dtype for x in xs]  # the result has NumPy's common dtype; each gradient its input's
        try:
            return array_module(xs[0]).concatenate(xs, axis=axis)
        except ValueError:
            shapes = [tuple(x.shape) for x in xs]
            raise ValueError(f"concatenate: shapes {shapes} differ outside axis {axis}") from None

    @staticmethod
    def backward(ctx, g):
        cuts = np.cumsum(ctx.sizes)[:-1].tolist()
        pieces = array_module(g).split(g, cuts, axis=ctx.axis)
        return (None, *(piece.astype(dtype, copy=False) for piece, dtype in zip(pieces, ctx.dtypes)))


class GetItem(Function):
    name = "getitem"

    @staticmethod
    def forward(ctx, x, index):
        # Index arrays are copied: the caller may change theirs before backward, which would
        # silently send the gradient to other elements.
        parts = index if isinstance(index, tuple) else (index,)
        parts = tuple(p.copy() if hasattr(p, "copy") and hasattr(p, "shape") else p for p in parts)
        ctx.shape, ctx.index = x.shape, parts if isinstance(index, tuple) else parts[0]
        return x[index]

    @staticmethod
    def backward(ctx, g):
        xp = array_module(g)
        dx = xp.zeros(ctx.shape, dtype=g.dtype)
        if _is_basic(ctx.index):  # slices and integers pick each element at most once: plain assignment
            dx[ctx.index] = g
        # An integer array may repeat an index: scatter-add, so that every contribution counts
        # (dx[index] += g would keep only one of them).
        elif xp is np:
            np.add.at(dx, ctx.index, g)
        else:
            import cupyx
            cupyx.scatter_add(dx, ctx.index, g)
        return dx, None


def _is_basic(index):
    parts = index if isinstance(index, tuple) else (index,)
    return all(isinstance(p, (slice, int)) or p is None or p is Ellipsis for p in parts)


class Pad(Function):
    @staticmethod
    def forward(ctx, x, pad_width, value):
        ctx.slices = tuple(slice(before, before + n) for (before, _), n in zip(pad_width, x.shape))
        return array_module(x).pad(x, pad_width, mode="constant", constant_values=value)

    @staticmethod
    def backward(ctx, g):
        return g[ctx.slices], None, None


class ToDevice(Function):
    name = "to"

    @staticmethod
    def forward(ctx, x, device):
        ctx.device = backend.device_of(x)
        return backend.to_device(x, device)

    @staticmethod
    def backward(ctx, g):
        return backend.to_device(g, ctx.device), None


def reshape(x, *shape):
    shape = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
    return Reshape.apply(x, shape)


def transpose(x, *axes):
    """Permute axes (``x.transpose(0, 2, 3, 1)``); no axes reverses them."""
    axes = tuple(axes[0]) if len(axes) == 1 and isinstance(axes[0], (tuple, list)) else axes
    return Transpose.apply(x, axes or None)


permute = transpose


def concatenate(tensors, axis=0):
    tensors = list(tensors)
    if not tensors:
        raise ValueError("concatenate: needs at least one tensor, got none")
    return Concatenate.apply(axis, *tensors)


def getitem(x, index):
    """x[index]: slices, integers, and integer/boolean arrays."""
    return GetItem.apply(x, index)


def pad(x, pad_width, value=0.0):
    """Constant padding, NumPy's convention: pad_width is ((before, after), ...) per axis,
    or an int for the same amount everywhere."""
    if isinstance(pad_width, int):
        pad_width = ((pad_width, pad_width),) * x.ndim
    pad_width = tuple(tuple(int(v) for v in p) for p in pad_width)
    if len(pad_width) != x.ndim or any(len(p) != 2 or min(p) < 0 for p in pad_width):
        raise ValueError(f"pad: need one non-negative (before, after) pair per axis for shape {x.shape}, got {pad_width}")
    return Pad.apply(x, pad_width, value)


def to_device(x, device):
    return ToDevice.apply(x, device)
