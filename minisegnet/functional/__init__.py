"""The differentiable ops, one family per file (``from minisegnet import functional as F``)."""
from .activation import log_softmax, relu, sigmoid, softmax, tanh
from .arithmetic import add, div, exp, log, mul, neg, power, sub
from .conv import bilinear_kernel, bilinear_upsampling_weight, conv2d, conv_transpose2d
from .fusion import coordinate_map, crop, crop_and_add, crop_offset
from .linalg import matmul
from .loss import cross_entropy
from .pooling import avg_pool2d, max_pool2d
from .reduction import max, mean, sum  # noqa: A004 - the names users expect
from .shape import concatenate, getitem, pad, permute, reshape, transpose
from .upsample import interpolate_bilinear

__all__ = [
    "add", "sub", "mul", "div", "neg", "power", "exp", "log",
    "relu", "sigmoid", "tanh", "softmax", "log_softmax",
    "sum", "mean", "max", "matmul",
    "reshape", "transpose", "permute", "concatenate", "getitem", "pad",
    "cross_entropy",
    "conv2d", "conv_transpose2d", "bilinear_kernel", "bilinear_upsampling_weight",
    "max_pool2d", "avg_pool2d", "interpolate_bilinear",
    "coordinate_map", "crop", "crop_offset", "crop_and_add",
]
