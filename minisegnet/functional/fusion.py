"""FCN skip fusion: crop one score map to another's size at the right offset, then add.

Where does unit u of a feature map sit in the input image? After a stack of
layers it sits at ``start + u * jump`` (input pixels): ``coordinate_map``, from
``_geometry``, where the same recursion also gives receptive fields (the layer-by-layer
rules are written out there; they are Caffe's ``coord_map`` that FCN used, and the
"centre of the receptive field" recursion of Araujo et al.). Two maps with the same
jump are aligned grids; the offset at which to crop the bigger one so that it
lines up with the reference is (start_ref - start_big) / jump. ``crop_offset``
computes it from the layers themselves, so no magic number is hard-coded.
"""
from ._geometry import check_4d, coordinate_map, pair
from .shape import getitem


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
