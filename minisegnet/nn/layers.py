"""Layers: thin Modules that own parameters and call ``minisegnet.functional``.

Spatial layers keep their geometry as (rows, cols) pairs and declare a
``coordinate_kind`` so that receptive-field and crop-offset tools
(``functional.fusion.coordinate_map``) can read any stack of them.
"""
import numpy as np

from .. import functional as F
from ..functional._geometry import pair
from . import init
from .module import Module, Parameter


class Conv2d(Module):
    """y = conv2d(x, weight, bias): weight (C_out, C_in/groups, kH, kW), He-initialised; bias zeros."""
    coordinate_kind = "conv"

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, dtype=np.float32):
        super().__init__()
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"Conv2d: in_channels {in_channels} and out_channels {out_channels} "
                             f"must both be divisible by groups={groups}")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = pair(kernel_size, "Conv2d", "kernel_size")
        self.stride = pair(stride, "Conv2d", "stride")
        self.padding = pair(padding, "Conv2d", "padding")
        self.dilation = pair(dilation, "Conv2d", "dilation")
        self.weight = Parameter(np.empty((out_channels, in_channels // groups) + self.kernel_size, dtype=dtype))
        init.kaiming_normal_(self.weight)
        self.bias = Parameter(np.zeros(out_channels, dtype=dtype)) if bias else None

    def forward(self, x):
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
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = pair(kernel_size, "ConvTranspose2d", "kernel_size")
        self.stride = pair(stride, "ConvTranspose2d", "stride")
        self.padding = pair(padding, "ConvTranspose2d", "padding")
        self.output_padding = pair(output_padding, "ConvTranspose2d", "output_padding")
        self.dilation = pair(dilation, "ConvTranspose2d", "dilation")
        self.weight = Parameter(np.empty((in_channels, out_channels // groups) + self.kernel_size, dtype=dtype))
        if bilinear:
            init.bilinear_(self.weight)
        else:
            init.kaiming_normal_(self.weight)
        self.bias = Parameter(np.zeros(out_channels, dtype=dtype)) if bias else None

    def forward(self, x):
        return F.conv_transpose2d(x, self.weight, self.bias, self.stride, self.padding,
                                  self.output_padding, self.groups, self.dilation)

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}")


class MaxPool2d(Module):
    coordinate_kind = "pool"

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False):
        super().__init__()
        self.kernel_size = pair(kernel_size, "MaxPool2d", "kernel_size")
        self.stride = self.kernel_size if stride is None else pair(stride, "MaxPool2d", "stride")
        self.padding = pair(padding, "MaxPool2d", "padding")
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
        self.size = size
        if scale_factor is not None and not isinstance(scale_factor, (tuple, list)):
            scale_factor = (scale_factor, scale_factor)
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
