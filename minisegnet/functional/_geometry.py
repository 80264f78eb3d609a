"""Argument checks and output-size formulas shared by the spatial ops, and the geometry of a stack of
layers (where each unit sits in the input and what it sees) that crop offsets and receptive fields share.

The Numba kernels behind these ops do no bounds checking: a wrong shape or size reads or
writes outside an array and corrupts memory instead of raising. So every op checks its
inputs here, before a kernel runs, and says which op and which value is wrong.
"""
import math
from collections import namedtuple
from fractions import Fraction

import numpy as np

SUPPORTED_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _is_int(value):
    """A Python or NumPy integer; bool is refused (stride=True is a mistake, not 1)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _is_real(value):
    return (isinstance(value, (int, float, np.integer, np.floating))
            and not isinstance(value, (bool, np.bool_)))


def as_int(value, op, what):
    """An integer argument as a Python int; a float such as 1.5 is refused, not truncated."""
    if not _is_int(value):
        raise TypeError(f"{op}: {what} must be an int, got {value!r} ({type(value).__name__})")
    return int(value)


def pair(value, op, what):
    """An int or a pair of ints -> (for rows, for columns). NumPy integers are accepted;
    floats, bools and tuples of any other length are refused."""
    values = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(values) != 2:
        raise ValueError(f"{op}: {what} must be an int or a pair of ints, got {len(values)} values {value!r}")
    if not all(_is_int(v) for v in values):
        raise TypeError(f"{op}: {what} must be an int or a pair of ints, got {value!r}")
    return int(values[0]), int(values[1])


def scale_pair(value, op, what="scale_factor"):
    """A positive finite number or a pair of them -> (for rows, for columns)."""
    values = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(values) != 2:
        raise ValueError(f"{op}: {what} must be a number or a pair of numbers, got {len(values)} values {value!r}")
    if not all(_is_real(v) for v in values):
        raise TypeError(f"{op}: {what} must be a number or a pair of numbers, got {value!r}")
    if not all(math.isfinite(v) and v > 0 for v in values):
        raise ValueError(f"{op}: {what} must be finite and positive, got {value!r}")
    return float(values[0]), float(values[1])


def check_4d(x, op, what="input"):
    if x.ndim != 4:
        raise ValueError(f"{op}: {what} must be (N, C, H, W), got shape {tuple(x.shape)}")


def check_float(x, op, what="input"):
    """A differentiable op needs floating point (an integer input would compute in integer
    arithmetic), and the kernels are compiled for float32 and float64 only."""
    if x.dtype not in SUPPORTED_FLOATS:
        raise TypeError(f"{op}: {what} has dtype {x.dtype}; supported dtypes are float32 and float64 "
                        f"(convert first, e.g. msn.tensor(x, dtype=np.float32))")


def check_images(x, op, what="input"):
    """x must be a float32/float64 batch (N, C, H, W) with C, H, W >= 1. N may be 0 (an empty
    batch gives an empty result, as in PyTorch); an empty image has no pixels to read."""
    check_4d(x, op, what)
    check_float(x, op, what)
    if min(x.shape[1:]) < 1:
        raise ValueError(f"{op}: {what} has shape {tuple(x.shape)}; C, H and W must be >= 1 "
                         "(only the batch size N may be 0)")


def check_same_dtype(op, first, second, first_what="input", second_what="weight"):
    """PyTorch's rule for conv: no silent promotion between input and parameters."""
    if first.dtype != second.dtype:
        raise TypeError(f"{op}: {first_what} has dtype {first.dtype} but {second_what} has dtype {second.dtype}; "
                        f"expected {first_what} and {second_what} to have the same dtype")


def check_at_least(values, minimum, op, what):
    if min(values) < minimum:
        raise ValueError(f"{op}: {what} must be >= {minimum}, got {values}")


def conv_output_size(size, kernel, stride, padding, dilation, op):
    """floor((size + 2p - d(k-1) - 1) / s) + 1, refusing an empty output."""
    span = dilation * (kernel - 1) + 1
    if size + 2 * padding < span:
        raise ValueError(f"{op}: kernel spans {span} pixels (kernel {kernel}, dilation {dilation}) "
                         f"but the padded input is only {size + 2 * padding} (size {size}, padding {padding})")
    return (size + 2 * padding - span) // stride + 1


def pool_output_size(size, kernel, stride, padding, ceil_mode, op):
    """PyTorch's rule: floor or ceil of (size + 2p - k)/s, plus 1; with ceil_mode the last
    window must still start inside the image or its left padding (and a window may then be
    larger than the whole input, as when a 1x1 map meets a 2x2 ceil-mode pool)."""
    span = size + 2 * padding - kernel
    out = (-(-span // stride) if ceil_mode else span // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
    if out < 1:
        raise ValueError(f"{op}: kernel {kernel} is larger than the padded input {size + 2 * padding} "
                         f"(size {size}, padding {padding}): the output would be empty")
    return out


# --- Where a unit sits in the input: one recursion for crop offsets and receptive fields ------------------
#
# Along one axis, unit u of the map a stack of layers makes sits at input position centre + u * jump and
# sees the ``size`` input pixels centred there (Araujo et al., Distill 2019; Caffe's ``coord_map`` that FCN
# used to crop). A layer moves, rescales and widens that field; with span = d(k - 1) + 1 (kernel k,
# dilation d), stride s, padding p:
#
#     convolution / pooling      size += (span - 1) jump    centre += ((span - 1)/2 - p) jump    jump *= s
#     transposed convolution     (no window)                centre += (p - (span - 1)/2)/s jump  jump /= s
#     bilinear upsampling by f   (no window)                centre += (1/f - 1)/2 jump           jump /= f
#
# Crop offsets compare the centres of two paths (``fusion.crop_offset``); receptive fields read the sizes
# (``inspect.receptive_field``). Rows and columns are computed separately: a 1x7 kernel widens only columns.
AxisField = namedtuple("AxisField", "size jump centre")
AxisField.__doc__ = """One axis of a unit's field, in input pixels (exact fractions): unit u sees the ``size``
pixels centred on centre + u * jump, i.e. from centre + u * jump - (size - 1)/2 on. ``size`` is None once
an upsampling layer has been met (its output units are not windows of the input)."""

INPUT_FIELD = AxisField(Fraction(1), Fraction(1), Fraction(0))  # a pixel of the input sees itself


def layer_steps(layer):
    """One layer's effect on a field, per axis (rows, cols): (scale, shift, growth), with which an output
    unit u sits at input position shift + scale * u of the layer's input and sees ``growth`` more of its
    units than one (span - 1; None for upsampling, which has no window).

    Reads the layer's ``coordinate_kind`` and kernel_size / stride / padding / dilation (or scale_factor);
    layers without a ``coordinate_kind`` (activations, dropout, ...) are the identity."""
    kind = getattr(layer, "coordinate_kind", None)
    if kind is None:
        return [(Fraction(1), Fraction(0), 0)] * 2
    steps = []
    for axis in range(2):
        if kind == "resize":
            if layer.scale_factor is None:
                raise ValueError("coordinate_map: an Upsample to a fixed size has no fixed coordinate map; "
                                 "give it a scale_factor")
            f = Fraction(layer.scale_factor[axis]).limit_denominator(1000)
            steps.append((1 / f, (1 / f - 1) / 2, None))
            continue
        k, s, p = layer.kernel_size[axis], layer.stride[axis], layer.padding[axis]
        d = getattr(layer, "dilation", (1, 1))[axis]
        half_span = Fraction(d * (k - 1), 2)
        if kind == "transposed":
            steps.append((Fraction(1, s), (p - half_span) / s, None))
        else:  # "conv" or "pool": a window of span input units
            steps.append((Fraction(s), half_span - p, d * (k - 1)))
    return steps


def fields_after_each(layers):
    """The field (rows, cols) of a unit after each layer: a list with one (AxisField, AxisField) per layer."""
    fields, history = (INPUT_FIELD, INPUT_FIELD), []
    for layer in layers:
        step = []
        for (size, jump, centre), (scale, shift, growth) in zip(fields, layer_steps(layer)):
            size = None if size is None or growth is None else size + growth * jump
            step.append(AxisField(size, jump * scale, centre + shift * jump))
        fields = tuple(step)
        history.append(fields)
    return history


def coordinate_map(layers):
    """Where the units of the map made by ``layers`` sit: (start, jump) per axis (rows, cols), in input
    pixels, as exact fractions; unit u sits at start + u * jump (the centre of its field)."""
    history = fields_after_each(layers)
    fields = history[-1] if history else (INPUT_FIELD, INPUT_FIELD)
    return [(f.centre, f.jump) for f in fields]
