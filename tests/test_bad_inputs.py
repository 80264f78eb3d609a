"""Bad input raises a clear error, before any kernel runs: one table, one row per mistake.

A Numba kernel does no bounds checking, so an op that handed it an empty image or a
mismatched array would read or write outside memory (interpolate_bilinear on an image of
height 0 returned garbage, and its backward aborted the process with "double free or
corruption"). Every row below is such a mistake, and the message must say which op
refused it and which value was wrong.

Each row is ``case(description, call, exception type, *substrings)``: ``call`` makes the
mistake (it takes no argument, or one: a fresh temporary directory, pytest's tmp_path);
the message must contain every substring. To add rows, add them to the table of their
family, or add a new table and list it in ``TABLES``.
"""
import inspect

import numpy as np
import pytest

import minisegnet as msn
from minisegnet import functional as F, kernels, nn


def case(description, call, error, *substrings):
    return pytest.param(call, error, substrings, id=description)


def ones(*shape, dtype=np.float64):
    return msn.tensor(np.ones(shape, dtype=dtype))


def image(dtype=np.float64, shape=(2, 3, 8, 8)):
    return ones(*shape, dtype=dtype)


def weight(dtype=np.float64, shape=(4, 3, 3, 3)):
    return ones(*shape, dtype=dtype)


SUPPORTED = "float32 and float64"

CONV = [
    case("conv2d on uint8 input", lambda: F.conv2d(image(np.uint8), weight(np.uint8)),
         TypeError, "conv2d", "uint8", SUPPORTED),
    case("conv2d on int64 input", lambda: F.conv2d(image(np.int64), weight()), TypeError, "conv2d", "int64"),
    case("conv2d on float16 input", lambda: F.conv2d(image(np.float16), weight(np.float16)),
         TypeError, "conv2d", "float16", SUPPORTED),
    case("conv2d float64 input, float32 weight", lambda: F.conv2d(image(), weight(np.float32)),
         TypeError, "conv2d", "input has dtype float64", "weight has dtype float32", "same dtype"),
    case("conv2d float32 bias on float64", lambda: F.conv2d(image(), weight(), ones(4, dtype=np.float32)),
         TypeError, "conv2d", "bias has dtype float32"),
    case("conv2d kernel size 0", lambda: F.conv2d(image(), weight(shape=(4, 3, 0, 0))),
         ValueError, "conv2d", "(4, 3, 0, 0)"),
    case("conv2d zero output channels", lambda: F.conv2d(image(), weight(shape=(0, 3, 3, 3))),
         ValueError, "conv2d", "(0, 3, 3, 3)"),
    case("conv2d input with C = 0", lambda: F.conv2d(image(shape=(2, 0, 8, 8)), weight(shape=(4, 0, 3, 3))),
         ValueError, "conv2d", "(2, 0, 8, 8)"),
    case("conv2d input with H = 0", lambda: F.conv2d(image(shape=(2, 3, 0, 8)), weight(), padding=2),
         ValueError, "conv2d", "(2, 3, 0, 8)"),
    case("conv2d float stride", lambda: F.conv2d(image(), weight(), stride=1.5), TypeError, "conv2d", "stride", "1.5"),
    case("conv2d bool stride", lambda: F.conv2d(image(), weight(), stride=True), TypeError, "conv2d", "stride", "True"),
    case("conv2d float padding in a pair", lambda: F.conv2d(image(), weight(), padding=(1, 0.5)),
         TypeError, "conv2d", "padding", "(1, 0.5)"),
    case("conv2d 3-element stride", lambda: F.conv2d(image(), weight(), stride=(1, 1, 1)),
         ValueError, "conv2d", "stride", "(1, 1, 1)"),
    case("conv2d negative padding", lambda: F.conv2d(image(), weight(), padding=-1),
         ValueError, "conv2d", "padding", "-1"),
    case("conv2d dilation 0", lambda: F.conv2d(image(), weight(), dilation=0), ValueError, "conv2d", "dilation", "0"),
    case("conv2d groups not dividing channels", lambda: F.conv2d(image(), weight(shape=(4, 1, 3, 3)), groups=2),
         ValueError, "conv2d", "input channels 3", "groups=2"),
    case("conv2d groups 0", lambda: F.conv2d(image(), weight(), groups=0), ValueError, "conv2d", "groups", "0"),
    case("conv2d float groups", lambda: F.conv2d(image(), weight(), groups=1.5), TypeError, "conv2d", "groups", "1.5"),
    case("conv2d weight/input channel mismatch", lambda: F.conv2d(image(), weight(shape=(4, 5, 3, 3))),
         ValueError, "conv2d", "expects 5 input channels", "input has 3"),
    case("conv2d 3-D input", lambda: F.conv2d(image(shape=(3, 8, 8)), weight()), ValueError, "conv2d", "(3, 8, 8)"),
    case("conv2d kernel larger than the input", lambda: F.conv2d(image(), weight(shape=(4, 3, 9, 9))),
         ValueError, "conv2d", "kernel spans 9", "only 8"),
    case("conv2d bias of the wrong size", lambda: F.conv2d(image(), weight(), ones(3)),
         ValueError, "conv2d", "bias has shape (3,)", "(4,)"),
    case("conv_transpose2d on uint8 input",
         lambda: F.conv_transpose2d(image(np.uint8), weight(np.uint8, (3, 2, 2, 2))),
         TypeError, "conv_transpose2d", "uint8", SUPPORTED),
    case("conv_transpose2d on float16 input",
         lambda: F.conv_transpose2d(image(np.float16), weight(np.float16, (3, 2, 2, 2))),
         TypeError, "conv_transpose2d", "float16"),
    case("conv_transpose2d float32 input, float64 weight",
         lambda: F.conv_transpose2d(image(np.float32), weight(shape=(3, 2, 2, 2))),
         TypeError, "conv_transpose2d", "float32", "float64", "same dtype"),
    case("conv_transpose2d input with H = 0",
         lambda: F.conv_transpose2d(image(shape=(2, 3, 0, 8)), weight(shape=(3, 2, 3, 3))),
         ValueError, "conv_transpose2d", "(2, 3, 0, 8)"),
    case("conv_transpose2d kernel size 0",
         lambda: F.conv_transpose2d(image(), weight(shape=(3, 2, 0, 2))),
         ValueError, "conv_transpose2d", "(3, 2, 0, 2)"),
    case("conv_transpose2d float output_padding",
         lambda: F.conv_transpose2d(image(), weight(shape=(3, 2, 2, 2)), stride=2, output_padding=0.5),
         TypeError, "conv_transpose2d", "output_padding", "0.5"),
    case("conv_transpose2d channel mismatch",
         lambda: F.conv_transpose2d(image(), weight(shape=(5, 2, 2, 2))),
         ValueError, "conv_transpose2d", "expects 5 input channels", "input has 3"),
    case("bilinear_kernel of size 0", lambda: F.bilinear_kernel(0), ValueError, "bilinear_kernel", "0"),
    case("bilinear_kernel of float size", lambda: F.bilinear_kernel(2.5), TypeError, "bilinear_kernel", "2.5"),
]

POOLING = [
    case("max_pool2d on uint8 input", lambda: F.max_pool2d(image(np.uint8), 2), TypeError, "max_pool2d", "uint8",
         SUPPORTED),
    case("avg_pool2d on int64 input", lambda: F.avg_pool2d(image(np.int64), 2), TypeError, "avg_pool2d", "int64"),
    case("max_pool2d on float16 input", lambda: F.max_pool2d(image(np.float16), 2), TypeError, "max_pool2d",
         "float16", SUPPORTED),
    case("max_pool2d kernel size 0", lambda: F.max_pool2d(image(), 0), ValueError, "max_pool2d", "kernel_size",
         "(0, 0)"),
    case("max_pool2d float kernel size", lambda: F.max_pool2d(image(), 2.5), TypeError, "max_pool2d", "kernel_size",
         "2.5"),
    case("avg_pool2d float stride", lambda: F.avg_pool2d(image(), 2, stride=1.5), TypeError, "avg_pool2d", "stride",
         "1.5"),
    case("max_pool2d negative padding", lambda: F.max_pool2d(image(), 3, padding=-1), ValueError, "max_pool2d",
         "padding", "-1"),
    case("max_pool2d 3-element kernel size", lambda: F.max_pool2d(image(), (2, 2, 2)), ValueError, "max_pool2d",
         "kernel_size", "(2, 2, 2)"),
    case("max_pool2d input with H = 0", lambda: F.max_pool2d(image(shape=(2, 3, 0, 8)), 1), ValueError,
         "max_pool2d", "(2, 3, 0, 8)"),
    case("avg_pool2d input with C = 0", lambda: F.avg_pool2d(image(shape=(2, 0, 8, 8)), 2), ValueError,
         "avg_pool2d", "(2, 0, 8, 8)"),
    case("max_pool2d padding more than half the kernel", lambda: F.max_pool2d(image(), 2, padding=2), ValueError,
         "max_pool2d", "padding (2, 2)", "(2, 2)"),
]

BILINEAR = [
    # The memory corruption of the trust issue: taps at index -1 of an empty axis.
    case("interpolate_bilinear input with H = 0",
         lambda: F.interpolate_bilinear(image(shape=(1, 1, 0, 4)), size=(3, 3)),
         ValueError, "interpolate_bilinear", "(1, 1, 0, 4)"),
    case("interpolate_bilinear input with W = 0",
         lambda: F.interpolate_bilinear(image(shape=(1, 1, 4, 0)), scale_factor=2),
         ValueError, "interpolate_bilinear", "(1, 1, 4, 0)"),
    case("interpolate_bilinear input with C = 0",
         lambda: F.interpolate_bilinear(image(shape=(1, 0, 4, 4)), size=3),
         ValueError, "interpolate_bilinear", "(1, 0, 4, 4)"),
    case("interpolate_bilinear on uint8 input", lambda: F.interpolate_bilinear(image(np.uint8), size=4),
         TypeError, "interpolate_bilinear", "uint8", SUPPORTED),
    case("interpolate_bilinear on float16 input", lambda: F.interpolate_bilinear(image(np.float16), size=4),
         TypeError, "interpolate_bilinear", "float16"),
    case("interpolate_bilinear size 0", lambda: F.interpolate_bilinear(image(), size=0),
         ValueError, "interpolate_bilinear", "size", "(0, 0)"),
    case("interpolate_bilinear size (4, 0)", lambda: F.interpolate_bilinear(image(), size=(4, 0)),
         ValueError, "interpolate_bilinear", "size", "(4, 0)"),
    case("interpolate_bilinear float size", lambda: F.interpolate_bilinear(image(), size=4.5),
         TypeError, "interpolate_bilinear", "size", "4.5"),
    case("interpolate_bilinear NaN scale_factor", lambda: F.interpolate_bilinear(image(), scale_factor=float("nan")),
         ValueError, "interpolate_bilinear", "scale_factor", "nan"),
    case("interpolate_bilinear infinite scale_factor",
         lambda: F.interpolate_bilinear(image(), scale_factor=(2, float("inf"))),
         ValueError, "interpolate_bilinear", "scale_factor", "inf"),
    case("interpolate_bilinear negative scale_factor", lambda: F.interpolate_bilinear(image(), scale_factor=-2),
         ValueError, "interpolate_bilinear", "scale_factor", "-2"),
    case("interpolate_bilinear 3-element scale_factor",
         lambda: F.interpolate_bilinear(image(), scale_factor=(2, 2, 2)),
         ValueError, "interpolate_bilinear", "scale_factor", "(2, 2, 2)"),
    case("interpolate_bilinear string scale_factor", lambda: F.interpolate_bilinear(image(), scale_factor="2"),
         TypeError, "interpolate_bilinear", "scale_factor", "'2'"),
    case("interpolate_bilinear scale_factor that empties the output",
         lambda: F.interpolate_bilinear(image(), scale_factor=0.1),
         ValueError, "interpolate_bilinear", "(0, 0)"),
]

LOSS = [
    case("cross_entropy on integer logits",
         lambda: F.cross_entropy(ones(2, 3, dtype=np.int64), np.array([0, 1])),
         TypeError, "cross_entropy", "logits", "int64", SUPPORTED),
    case("cross_entropy on float16 logits",
         lambda: F.cross_entropy(ones(2, 3, dtype=np.float16), np.array([0, 1])),
         TypeError, "cross_entropy", "float16"),
    case("cross_entropy with no classes", lambda: F.cross_entropy(ones(2, 0), np.array([0, 1])),
         ValueError, "cross_entropy", "(2, 0)"),
    case("cross_entropy float ignore_index",
         lambda: F.cross_entropy(ones(2, 3), np.array([0, 1]), ignore_index=1.5),
         TypeError, "cross_entropy", "ignore_index", "1.5"),
    case("cross_entropy float targets", lambda: F.cross_entropy(ones(2, 3), np.array([0.0, 1.0])),
         TypeError, "cross_entropy", "integer class labels", "float64"),
]

FUSION_AND_ARITHMETIC = [
    case("crop at a float offset", lambda: F.crop(image(), (4, 4), (1.5, 0)), TypeError, "crop", "offset", "1.5"),
    case("crop to an empty size", lambda: F.crop(image(), (0, 4), (0, 0)), ValueError, "crop", "0x4"),
    case("crop of a 3-D map", lambda: F.crop(image(shape=(3, 8, 8)), (4, 4), (0, 0)), ValueError, "crop", "(3, 8, 8)"),
    case("crop_and_add onto a 3-D reference", lambda: F.crop_and_add(image(), image(shape=(3, 4, 4)), (0, 0)),
         ValueError, "crop_and_add", "(3, 4, 4)"),
    case("power with a string exponent", lambda: F.power(image(), "2"), TypeError, "power", "'2'"),
    case("sum over a float axis", lambda: F.sum(image(), axis=1.5), TypeError, "reduction", "axis", "1.5"),
    case("concatenate of nothing", lambda: F.concatenate([]), ValueError, "concatenate", "none"),
]

LAYERS = [
    case("Conv2d kernel size 0", lambda: nn.Conv2d(3, 4, 0), ValueError, "Conv2d", "kernel_size", "(0, 0)"),
    case("Conv2d float kernel size", lambda: nn.Conv2d(3, 4, 2.5), TypeError, "Conv2d", "kernel_size", "2.5"),
    case("Conv2d stride 0", lambda: nn.Conv2d(3, 4, 3, stride=0), ValueError, "Conv2d", "stride", "(0, 0)"),
    case("Conv2d negative padding", lambda: nn.Conv2d(3, 4, 3, padding=-1), ValueError, "Conv2d", "padding", "-1"),
    case("Conv2d dilation 0", lambda: nn.Conv2d(3, 4, 3, dilation=(1, 0)), ValueError, "Conv2d", "dilation", "(1, 0)"),
    case("Conv2d zero input channels", lambda: nn.Conv2d(0, 4, 3), ValueError, "Conv2d", "in_channels", "0"),
    case("Conv2d groups not dividing channels", lambda: nn.Conv2d(3, 4, 3, groups=2), ValueError, "Conv2d",
         "in_channels 3", "groups=2"),
    case("Conv2d float16 parameters", lambda: nn.Conv2d(3, 4, 3, dtype=np.float16), TypeError, "Conv2d", "float16"),
    case("Conv2d float32 layer, float64 input", lambda: nn.Conv2d(3, 4, 3)(image()), TypeError, "Conv2d",
         "input has dtype float64", "weight has dtype float32"),
    case("Conv2d on uint8 input", lambda: nn.Conv2d(3, 4, 3)(image(np.uint8)), TypeError, "Conv2d", "uint8"),
    case("ConvTranspose2d groups not dividing channels", lambda: nn.ConvTranspose2d(3, 4, 2, groups=2), ValueError,
         "ConvTranspose2d", "in_channels 3", "groups=2"),
    case("ConvTranspose2d output_padding too large", lambda: nn.ConvTranspose2d(2, 2, 4, stride=2, output_padding=2),
         ValueError, "ConvTranspose2d", "output_padding 2"),
    case("ConvTranspose2d float32 layer, float64 input", lambda: nn.ConvTranspose2d(3, 2, 2)(image()), TypeError,
         "ConvTranspose2d", "float64", "float32"),
    case("MaxPool2d kernel size 0", lambda: nn.MaxPool2d(0), ValueError, "MaxPool2d", "kernel_size", "(0, 0)"),
    case("MaxPool2d padding more than half the kernel", lambda: nn.MaxPool2d(3, padding=2), ValueError, "MaxPool2d",
         "padding (2, 2)"),
    case("AvgPool2d float stride", lambda: nn.AvgPool2d(2, stride=1.5), TypeError, "AvgPool2d", "stride", "1.5"),
    case("Upsample with neither size nor scale_factor", lambda: nn.Upsample(), ValueError, "Upsample",
         "exactly one"),
    case("Upsample 3-element scale_factor", lambda: nn.Upsample(scale_factor=(2, 2, 2)), ValueError, "Upsample",
         "scale_factor", "(2, 2, 2)"),
    case("Upsample NaN scale_factor", lambda: nn.Upsample(scale_factor=float("nan")), ValueError, "Upsample", "nan"),
    case("Upsample size 0", lambda: nn.Upsample(size=0), ValueError, "Upsample", "size", "(0, 0)"),
]


def _lattice_for(points):
    return kernels.permutohedral_lattice(np.random.default_rng(0).normal(size=(points, 2)))


CONV_GEOMETRY = (3, 3, 1, 1, 0, 0, 1, 1)  # (kh, kw, sh, sw, ph, pw, dh, dw)

KERNEL_ENTRY_POINTS = [  # minisegnet.kernels called directly: the last check before memory is touched
    case("kernels.im2col on int64", lambda: kernels.im2col(np.ones((1, 1, 4, 4), np.int64), CONV_GEOMETRY, 2, 2),
         TypeError, "kernels.im2col", "int64"),
    case("kernels.im2col stride 0", lambda: kernels.im2col(np.ones((1, 1, 4, 4)), (3, 3, 0, 1, 0, 0, 1, 1), 2, 2),
         ValueError, "kernels.im2col", "(3, 3, 0, 1, 0, 0, 1, 1)"),
    case("kernels.col2im with too few columns",
         lambda: kernels.col2im(np.ones((9, 3)), (1, 1, 4, 4), CONV_GEOMETRY, 2, 2),
         ValueError, "kernels.col2im", "(9, 3)", "(9, 4)"),
    case("kernels.max_pool_forward padding more than half the kernel",
         lambda: kernels.max_pool_forward(np.ones((1, 1, 4, 4)), (2, 2, 2, 2, 2, 2), 3, 3),
         ValueError, "kernels.max_pool_forward", "padding (2, 2)"),
    case("kernels.max_pool_backward argmax outside the image",
         lambda: kernels.max_pool_backward(np.ones((1, 1, 2, 2)), np.full((1, 1, 2, 2), -1), (1, 1, 4, 4),
                                           (2, 2, 2, 2, 0, 0)),
         ValueError, "kernels.max_pool_backward", "argmax", "[0, 16)", "-1"),
    case("kernels.max_pool_backward argmax of another shape",
         lambda: kernels.max_pool_backward(np.ones((1, 1, 2, 2)), np.zeros((1, 1, 3, 3), np.int64), (1, 1, 4, 4),
                                           (2, 2, 2, 2, 0, 0)),
         ValueError, "kernels.max_pool_backward", "(1, 1, 3, 3)", "(1, 1, 2, 2)"),
    case("kernels.avg_pool_backward gradient of another input",
         lambda: kernels.avg_pool_backward(np.ones((1, 2, 2, 2)), (1, 1, 4, 4), (2, 2, 2, 2, 0, 0)),
         ValueError, "kernels.avg_pool_backward", "(1, 2, 2, 2)", "(1, 1, 4, 4)"),
    case("kernels.bilinear_forward on H = 0",
         lambda: kernels.bilinear_forward(np.ones((1, 1, 0, 4)), (3, 3), (0.0, 4 / 3), False),
         ValueError, "kernels.bilinear_forward", "(1, 1, 0, 4)"),
    case("kernels.bilinear_backward gradient of another input",
         lambda: kernels.bilinear_backward(np.ones((2, 1, 3, 3)), (1, 1, 4, 4), (4 / 3, 4 / 3), False),
         ValueError, "kernels.bilinear_backward", "(2, 1, 3, 3)", "(1, 1, 4, 4)"),
    case("kernels.lattice_filter values for another lattice",
         lambda: kernels.lattice_filter(np.ones((4, 1)), _lattice_for(5)),
         ValueError, "kernels.lattice_filter", "(4, 1)", "5 points"),
]

TABLES = [CONV, POOLING, BILINEAR, LOSS, FUSION_AND_ARITHMETIC, LAYERS, KERNEL_ENTRY_POINTS]
CASES = [row for table in TABLES for row in table]


@pytest.mark.parametrize("call,error,substrings", CASES)
def test_bad_input_raises_a_clear_error(call, error, substrings, tmp_path):
    with pytest.raises(error) as raised:
        call(tmp_path) if inspect.signature(call).parameters else call()
    message = str(raised.value)
    for part in substrings:
        assert part in message, f"{part!r} is not in the message {message!r}"


def test_rows_have_unique_descriptions():
    ids = [row.id for row in CASES]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)


# --- an empty batch (N = 0) is not a mistake: it works, as in PyTorch -----------------------------
EMPTY_BATCH = {
    "conv2d": (lambda x, w: F.conv2d(x, w, padding=1), (0, 3, 5, 5), (4, 3, 3, 3), (0, 4, 5, 5)),
    "conv_transpose2d": (lambda x, w: F.conv_transpose2d(x, w, stride=2), (0, 3, 5, 5), (3, 2, 2, 2), (0, 2, 10, 10)),
    "max_pool2d": (lambda x, w: F.max_pool2d(x, 2), (0, 3, 5, 5), None, (0, 3, 2, 2)),
    "avg_pool2d": (lambda x, w: F.avg_pool2d(x, 3, 1, 1), (0, 3, 5, 5), None, (0, 3, 5, 5)),
    "interpolate_bilinear": (lambda x, w: F.interpolate_bilinear(x, size=(7, 3)), (0, 3, 5, 5), None, (0, 3, 7, 3)),
}


@pytest.mark.parametrize("name", list(EMPTY_BATCH))
def test_an_empty_batch_gives_an_empty_result_and_zero_gradients(name):
    op, x_shape, w_shape, out_shape = EMPTY_BATCH[name]
    x = msn.tensor(np.ones(x_shape), requires_grad=True)
    w = None if w_shape is None else msn.tensor(np.ones(w_shape), requires_grad=True)
    y = op(x, w)
    assert y.shape == out_shape
    y.sum().backward()
    assert x.grad.shape == x_shape
    if w is not None:
        np.testing.assert_array_equal(w.grad, np.zeros(w_shape))


# --- NumPy integers are integers: sizes are refused only when they are not whole numbers ------------
def test_numpy_integers_are_accepted_wherever_an_int_is():
    x, w = image(), weight()
    np.testing.assert_array_equal(F.conv2d(x, w, stride=np.int64(2), padding=(np.int32(1), 1), groups=np.int64(1)).data,
                                  F.conv2d(x, w, stride=2, padding=1).data)
    assert F.max_pool2d(x, np.int64(2)).shape == (2, 3, 4, 4)
    assert F.interpolate_bilinear(x, size=(np.int64(5), 3)).shape == (2, 3, 5, 3)
    assert F.interpolate_bilinear(x, scale_factor=np.float32(0.5)).shape == (2, 3, 4, 4)
    assert nn.Conv2d(np.int64(3), 4, np.int64(3), stride=np.int16(2)).stride == (2, 2)
    assert F.crop(x, (np.int64(4), 4), (np.int64(1), 2)).shape == (2, 3, 4, 4)
