"""FCN skip fusion: crop one score map to another's size at the right offset, then add.

Where does unit u of a feature map sit in the input image? After a stack of
layers it sits at ``start + u * jump`` (input pixels), where each layer updates

    convolution / pooling (kernel k, stride s, padding p, dilation d; span = d(k-1)+1):
        start += ((span - 1)/2 - p) * jump,    jump *= s
    transposed convolution (the inverse map):
        start += (p - (span - 1)/2) / s * jump,    jump /= s
    bilinear upsampling by f (align_corners=False):
        start += (1/f - 1)/2 * jump,    jump /= f

(the same coordinate maps as Caffe's ``coord_map`` that FCN used, and the
"centre of the receptive field" recursion of Araujo et al.). Two maps with the same
jump are aligned grids; the offset at which to crop the bigger one so that it
lines up with the reference is (start_ref - start_big) / jump. ``crop_offset``
computes it from the layers themselves, so no magic number is hard-coded.
"""
from fractions import Fraction

from ._geometry import check_4d, pair
from .shape import getitem


def layer_coordinate_map(layer):
    """(scale, shift) per axis for one layer: output unit u sits at input position shift + scale*u.

    Reads the layer's kernel_size / stride / padding / dilation attributes; layers
    without them (activations, dropout, ...) are the identity.
    """
    kind = getattr(layer, "coordinate_kind", None)
    if kind is None:
        return [(Fraction(1), Fraction(0))] * 2
    maps = []
    for axis in range(2):
        if kind == "resize":
            if layer.scale_factor is None:
                raise ValueError("coordinate_map: an Upsample to a fixed size has no fixed coordinate map; "
                                 "give it a scale_factor")
            f = Fraction(layer.scale_factor[axis]).limit_denominator(1000)
            maps.append((1 / f, (1 / f - 1) / 2))
            continue
        k, s, p = layer.kernel_size[axis], layer.stride[axis], layer.padding[axis]
        d = getattr(layer, "dilation", (1, 1))[axis]
        half_span = Fraction(d * (k - 1), 2)
        if kind == "transposed":
            maps.append((Fraction(1, s), (p - half_span) / s))
        else:
            maps.append((Fraction(s), half_span - p))
    return maps


def coordinate_map(layers):
    """Compose the layers' maps: (start, jump) per axis, in input pixels, as exact fractions."""
    start, jump = [Fraction(0)] * 2, [Fraction(1)] * 2
    for layer in layers:
        for axis, (scale, shift) in enumerate(layer_coordinate_map(layer)):
            start[axis] += shift * jump[axis]
            jump[axis] *= scale
    return list(zip(start, jump))


def crop_offset(layers_to_cropped, layers_to_reference):
    """Offset (oy, ox) at which to crop the map made by ``layers_to_cropped`` so that it lines up
    with the map made by ``layers_to_reference``; both paths start at the same map (e.g. the input).

    Raises ValueError if the two grids have different spacing or the offset is not a
    non-negative whole number of units (then no crop can align them).
    """
    offsets = []
    for axis, ((start_c, jump_c), (start_r, jump_r)) in enumerate(
            zip(coordinate_map(layers_to_cropped), coordinate_map(layers_to_reference))):
        if jump_c != jump_r:
            raise ValueError(f"crop_offset: the maps have different strides on axis {axis} "
                             f"({jump_c} vs {jump_r} input pixels); they cannot be aligned by cropping")
        offset = (start_r - start_c) / jump_c
        if offset.denominator != 1 or offset < 0:
            raise ValueError(f"crop_offset: the maps are misaligned by {offset} units on axis {axis}; "
                             "a crop needs a non-negative whole number")
        offsets.append(int(offset))
    return tuple(offsets)


def crop(x, size, offset):
    """x[:, :, oy:oy+h, ox:ox+w] for size (h, w) and offset (oy, ox): FCN's Crop layer.

    size and offset are ints or pairs of ints; the window must lie inside x and hold a pixel."""
    check_4d(x, "crop")
    (h, w), (oy, ox) = pair(size, "crop", "size"), pair(offset, "crop", "offset")
    if h < 1 or w < 1 or oy < 0 or ox < 0 or oy + h > x.shape[2] or ox + w > x.shape[3]:
        raise ValueError(f"crop: a {h}x{w} window at offset ({oy}, {ox}) does not fit in a "
                         f"{x.shape[2]}x{x.shape[3]} map")
    return getitem(x, (slice(None), slice(None), slice(oy, oy + h), slice(ox, ox + w)))


def crop_and_add(to_crop, reference, offset):
    """FCN's skip fusion (Crop + Eltwise sum): reference + to_crop cropped to reference's size at offset."""
    check_4d(to_crop, "crop_and_add", "to_crop")
    check_4d(reference, "crop_and_add", "reference")
    if to_crop.shape[:2] != reference.shape[:2]:
        raise ValueError(f"crop_and_add: batch and channels differ: {to_crop.shape[:2]} vs {reference.shape[:2]}")
    return reference + crop(to_crop, reference.shape[2:], offset)
