"""Bilinear resizing to any output size (kernels in ``minisegnet.kernels.bilinear``).

Source coordinates follow PyTorch exactly (see ``kernels/bilinear/reference.py``):
align_corners=True maps corner centres onto corner centres, src = dst (in-1)/(out-1);
align_corners=False maps pixel areas, src = (dst + 0.5) in/out - 0.5 clamped at 0,
where in/out is 1/scale_factor when a scale factor was given.
"""
import math

from .. import kernels
from ..engine import Function
from ._geometry import check_at_least, check_images, pair, scale_pair


class Bilinear(Function):
    name = "interpolate_bilinear"

    @staticmethod
    def forward(ctx, x, out_hw, scales, align_corners):
        ctx.x_shape, ctx.scales, ctx.align_corners = x.shape, scales, align_corners
        return kernels.bilinear_forward(x, out_hw, scales, align_corners)

    @staticmethod
    def backward(ctx, g):
        return kernels.bilinear_backward(g, ctx.x_shape, ctx.scales, ctx.align_corners), None, None, None


def interpolate_bilinear(x, size=None, scale_factor=None, align_corners=False):
    """Resize x (N, C, H, W) to ``size`` = (H_out, W_out) or by ``scale_factor``
    (H_out = floor(H * scale_factor)); give exactly one of the two.

    size: an int or a pair of ints >= 1;  scale_factor: a finite positive number or a pair.
    x: float32 or float64 with C, H, W >= 1 (N may be 0).
    """
    op = "interpolate_bilinear"
    # An empty input would make the kernels read outside it (they do no bounds checking).
    check_images(x, op)
    if (size is None) == (scale_factor is None):
        raise ValueError(f"{op}: give exactly one of size and scale_factor (got size={size}, scale_factor={scale_factor})")
    in_hw = tuple(x.shape[2:])
    if size is not None:
        out_hw = pair(size, op, "size")
        check_at_least(out_hw, 1, op, "size")
        scales = tuple(i / o for i, o in zip(in_hw, out_hw))
    else:
        factors = scale_pair(scale_factor, op)
        out_hw = tuple(int(math.floor(i * f)) for i, f in zip(in_hw, factors))
        if min(out_hw) < 1:
            raise ValueError(f"{op}: output size {out_hw} is empty (input {in_hw}, scale_factor {scale_factor})")
        scales = tuple(1.0 / f for f in factors)
    return Bilinear.apply(x, out_hw, scales, bool(align_corners))
