"""Argument checks and output-size formulas shared by the spatial ops."""


def pair(value, op, what):
    """An int or a pair of ints -> (for rows, for columns)."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{op}: {what} must be an int or a pair, got {value!r}")
        return int(value[0]), int(value[1])
    return int(value), int(value)


def check_4d(x, op, what="input"):
    if x.ndim != 4:
        raise ValueError(f"{op}: {what} must be (N, C, H, W), got shape {tuple(x.shape)}")


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
