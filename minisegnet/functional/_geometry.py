"""Argument checks and output-size formulas shared by the spatial ops.

The Numba kernels behind these ops do no bounds checking: a wrong shape or size reads or
writes outside an array and corrupts memory instead of raising. So every op checks its
inputs here, before a kernel runs, and says which op and which value is wrong.
"""
import math

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
