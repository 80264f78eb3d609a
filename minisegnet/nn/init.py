"""Weight initialisation, in place on a Parameter's array (always drawn on the CPU, then moved)."""
import math

import numpy as np

from ..functional.conv import bilinear_upsampling_weight
from ..engine import no_grad
from ..random import generator


def _fill(param, values):
    with no_grad():  # as torch.nn.init: an initialisation is not part of any graph
        return param.copy_(values.astype(param.dtype))


def fan_in(shape):
    """Inputs feeding one output unit: C_in/groups * kH * kW for a conv weight (C_out, C_in/groups, kH, kW)."""
    return int(np.prod(shape[1:])) if len(shape) > 1 else int(shape[0])


def kaiming_normal_(param, gain=math.sqrt(2.0)):
    """He et al. (2015): N(0, gain^2 / fan_in), gain sqrt(2) for ReLU, so activations keep their scale."""
    std = gain / math.sqrt(fan_in(param.shape))
    return _fill(param, generator().normal(0.0, std, size=param.shape))


def kaiming_uniform_(param, gain=math.sqrt(2.0)):
    bound = gain * math.sqrt(3.0 / fan_in(param.shape))
    return _fill(param, generator().uniform(-bound, bound, size=param.shape))


def normal_(param, std=0.01):
    return _fill(param, generator().normal(0.0, std, size=param.shape))


def zeros_(param):
    return _fill(param, np.zeros(param.shape))


def constant_(param, value):
    return _fill(param, np.full(param.shape, value))


def bilinear_(param):
    """A (C, C, k, k) transposed-convolution weight that upsamples each channel bilinearly (FCN)."""
    c_in, c_out, kh, kw = param.shape
    if c_in != c_out or kh != kw:
        raise ValueError(f"bilinear_: need a square (C, C, k, k) weight, got {param.shape}")
    return _fill(param, bilinear_upsampling_weight(c_in, kh, np.float64))
