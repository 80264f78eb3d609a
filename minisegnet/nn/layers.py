"""Layers: thin Modules that own parameters and call ``minisegnet.functional``.

Spatial layers keep their geometry as (rows, cols) pairs and declare a
``coordinate_kind`` so that receptive-field and crop-offset tools
(``functional.fusion.coordinate_map``) can read any stack of them. The geometry is
checked when a layer is built, so a bad kernel size or stride fails at the line that
made the layer, not at its first forward pass.
"""
import numpy as np

from .. import functional as F
from ..functional._geometry import (SUPPORTED_FLOATS, as_int, check_at_least, check_float, pair,
                                    scale_pair)
from . import init
from .module import Module, Parameter


def _channels(layer, in_channels, out_channels, groups):
    """Checked (in_channels, out_channels, groups): positive ints, both channel counts divisible by groups."""
    in_channels = as_int(in_channels, layer, "in_channels")
    out_channels = as_int(out_channels, layer, "out_channels")
    groups = as_int(groups, layer, "groups")
    check_at_least((in_channels, out_channels), 1, layer, "in_channels and out_channels")
    check_at_least((groups,), 1, layer, "groups")
    if in_channels % groups or out_channels % groups:
        raise ValueError(f"{layer}: in_channels {in_channels} and out_channels {out_channels} "
                         f"must both be divisible by groups={groups}")
    return in_channels, out_channels, groups


def _conv_geometry(layer, kernel_size, stride, padding, dilation):
    """Checked (kernel_size, stride, padding, dilation) as (rows, cols) pairs."""
    kernel_size, stride = pair(kernel_size, layer, "kernel_size"), pair(stride, layer, "stride")
    padding, dilation = pair(padding, layer, "padding"), pair(dilation, layer, "dilation")
    check_at_least(kernel_size, 1, layer, "kernel_size")
    check_at_least(stride, 1, layer, "stride")
    check_at_least(padding, 0, layer, "padding")
    check_at_least(dilation, 1, layer, "dilation")
    return kernel_size, stride, padding, dilation


def _float_dtype(layer, dtype):
    if np.dtype(dtype) not in SUPPORTED_FLOATS:
        raise TypeError(f"{layer}: dtype {np.dtype(dtype)} is not supported; use float32 or float64")
    return np.dtype(dtype)


def _check_input(layer, x):
    """The input must be floating point and have the layer's dtype (PyTorch refuses a mix too):
    a float64 input would otherwise give a float32 layer float64 outputs and gradients."""
    check_float(x, type(layer).__name__)
    if x.dtype != layer.weight.dtype:
        raise TypeError(f"{type(layer).__name__}: input has dtype {x.dtype} but the layer's weight has dtype "
                        f"{layer.weight.dtype}; convert the input (msn.tensor(x, dtype=np.{layer.weight.dtype})) "
                        f"or build the layer with dtype=np.{x.dtype}")


class Conv2d(Module):
    """y = conv2d(x, weight, bias): weight (C_out, C_in/groups, kH, kW), He-initialised; bias zeros."""
    coordinate_kind = "conv"

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, dtype=np.float32):
        super().__init__()
        in_channels, out_channels, groups = _channels("Conv2d", in_channels, out_channels, groups)
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size, self.stride, self.padding, self.dilation = _conv_geometry(
            "Conv2d", kernel_size, stride, padding, dilation)
        dtype = _float_dtype("Conv2d", dtype)
        self.weight = Parameter(np.empty((out_channels, in_channels // groups) + self.kernel_size, dtype=dtype))
        init.kaiming_normal_(self.weight)
        self.bias = Parameter(np.zeros(out_channels, dtype=dtype)) if bias else None

    def forward(self, x):
        _check_input(self, x)
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, dilation={self.dilation}, groups={self.groups}")


class ConvTranspose2d(Module):
    """Learnable upsampling: weight (C_in, C_out/groups, kH, kW). ``bilinear=True`` starts it as
    exact bilinear interpolation (FCN's initialisation; needs C_in == C_out, groups=1)."""
    coordinate_kind = "transposed"

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0,
                 groups=1, bias=True, dilation=1, bilinear=False, dtype=np.float32):
        super().__init__()
        op = "ConvTranspose2d"
        in_channels, out_channels, groups = _channels(op, in_channels, out_channels, groups)
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size, self.stride, self.padding, self.dilation = _conv_geometry(
            op, kernel_size, stride, padding, dilation)
        self.output_padding = pair(output_padding, op, "output_padding")
        for o, s, d in zip(self.output_padding, self.stride, self.dilation):
            if not 0 <= o < max(s, d):
                raise ValueError(f"{op}: output_padding {o} must be >= 0 and smaller than stride {s} or dilation {d}")
        dtype = _float_dtype(op, dtype)
        self.weight = Parameter(np.empty((in_channels, out_channels // groups) + self.kernel_size, dtype=dtype))
        if bilinear:
            init.bilinear_(self.weight)
        else:
            init.kaiming_normal_(self.weight)
        self.bias = Parameter(np.zeros(out_channels, dtype=dtype)) if bias else None

    def forward(self, x):
        _check_input(self, x)
        return F.conv_transpose2d(x, self.weight, self.bias, self.stride, self.padding,
                                  self.output_padding, self.groups, self.dilation)

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}")


class MaxPool2d(Module):
    coordinate_kind = "pool"

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False):
        super().__init__()
        op = type(self).__name__
        self.kernel_size, self.stride, self.padding, _ = _conv_geometry(
            op, kernel_size, kernel_size if stride is None else stride, padding, 1)
        if self.padding[0] > self.kernel_size[0] // 2 or self.padding[1] > self.kernel_size[1] // 2:
            raise ValueError(f"{op}: padding {self.padding} must be at most half the kernel size {self.kernel_size}")
        self.ceil_mode = ceil_mode

    def forward(self, x):
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool2d(MaxPool2d):
    """Average pooling, count_include_pad=True (see ``F.avg_pool2d``)."""

    def forward(self, x):
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode)


class Upsample(Module):
    """Bilinear resizing to a fixed ``size`` or by ``scale_factor`` (see ``F.interpolate_bilinear``)."""
    coordinate_kind = "resize"

    def __init__(self, size=None, scale_factor=None, align_corners=False):
        super().__init__()
        if (size is None) == (scale_factor is None):
            raise ValueError(f"Upsample: give exactly one of size and scale_factor "
                             f"(got size={size}, scale_factor={scale_factor})")
        if size is not None:
            check_at_least(pair(size, "Upsample", "size"), 1, "Upsample", "size")
        else:
            scale_pair(scale_factor, "Upsample")  # a finite positive number or a pair of them
            if not isinstance(scale_factor, (tuple, list)):
                scale_factor = (scale_factor, scale_factor)
        self.size = size
        self.scale_factor = None if scale_factor is None else tuple(scale_factor)
        self.align_corners = align_corners

    def forward(self, x):
        return F.interpolate_bilinear(x, self.size, self.scale_factor, self.align_corners)

    def extra_repr(self):
        return f"size={self.size}, scale_factor={self.scale_factor}, align_corners={self.align_corners}"


class ReLU(Module):
    def forward(self, x):
        return F.relu(x)


class Sigmoid(Module):
    def forward(self, x):
        return F.sigmoid(x)


class Tanh(Module):
    def forward(self, x):
        return F.tanh(x)


class Identity(Module):
    def forward(self, x):
        return x
