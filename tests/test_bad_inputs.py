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
import os

import numpy as np
import pytest

import minisegnet as msn
from minisegnet import functional as F, kernels, nn, optim
from minisegnet.__main__ import main
from minisegnet.data import DataLoader, ThingsAndStuff, VOCSegmentation, random_crop_flip, voc_palette
from minisegnet.models import build_model
from minisegnet.train import fit, load_checkpoint


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
         lambda: kernels.col2im(np.ones((1, 9, 3)), (1, 1, 4, 4), CONV_GEOMETRY, 2, 2),
         ValueError, "kernels.col2im", "(1, 9, 3)", "(1, 9, 4)"),
    case("kernels.col2im with the images of another batch",
         lambda: kernels.col2im(np.ones((2, 9, 4)), (1, 1, 4, 4), CONV_GEOMETRY, 2, 2),
         ValueError, "kernels.col2im", "(2, 9, 4)", "(1, 9, 4)"),
    case("kernels.col2im on a 2-D (C*kh*kw, N*L) matrix",
         lambda: kernels.col2im(np.ones((9, 4)), (1, 1, 4, 4), CONV_GEOMETRY, 2, 2),
         ValueError, "kernels.col2im", "3 dimensions", "(9, 4)"),
    case("kernels.col2im with a 3-D x_shape",
         lambda: kernels.col2im(np.ones((1, 9, 4)), (1, 4, 4), CONV_GEOMETRY, 2, 2),
         ValueError, "kernels.col2im", "x_shape", "(1, 4, 4)"),
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

def _adam_state_of_two_parameters():
    params = [nn.Parameter(np.ones(3)), nn.Parameter(np.ones(2))]
    adam = optim.Adam(params, lr=0.1)
    for p in params:
        p.grad = np.ones(p.shape)
    adam.step()
    return adam.state_dict()


OPTIMIZER_STATE = [
    case("optimizer state from a bigger model",
         lambda: optim.Adam([nn.Parameter(np.ones(3))], lr=0.1).load_state_dict(_adam_state_of_two_parameters()),
         ValueError, "Adam.load_state_dict", "for 2 parameters", "has 1"),
    case("optimizer state from a smaller model",
         lambda: optim.Adam([nn.Parameter(np.ones(3)), nn.Parameter(np.ones(2)), nn.Parameter(np.ones(1))], lr=0.1)
         .load_state_dict(_adam_state_of_two_parameters()),
         ValueError, "Adam.load_state_dict", "for 2 parameters", "has 3"),
    case("Adam state loaded into SGD",
         lambda: optim.SGD([nn.Parameter(np.ones(3)), nn.Parameter(np.ones(2))], lr=0.1, momentum=0.9)
         .load_state_dict(_adam_state_of_two_parameters()),
         ValueError, "SGD.load_state_dict", "Adam's, not SGD's"),
    case("optimizer state of another shape",
         lambda: optim.Adam([nn.Parameter(np.ones(4)), nn.Parameter(np.ones(2))], lr=0.1)
         .load_state_dict(_adam_state_of_two_parameters()),
         ValueError, "Adam.load_state_dict", "(3,)", "(4,)"),
    case("optimizer state without step_count",
         lambda: optim.SGD([nn.Parameter(np.ones(3))], lr=0.1).load_state_dict({"lr": np.asarray(0.1)}),
         ValueError, "SGD.load_state_dict", "'step_count'"),
]

TABLES = [CONV, POOLING, BILINEAR, LOSS, FUSION_AND_ARITHMETIC, LAYERS, KERNEL_ENTRY_POINTS, OPTIMIZER_STATE]
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


# --- runs: fit, the command line, checkpoints, VOC folders -----------------------------------------
# These rows build what they spoil (a checkpoint, a VOC folder) in a fresh temporary directory, so a
# row is a function of that directory returning the call and the strings its message must contain
# (paths are known only then).
SMALL = dict(widths=(4, 6, 8, 8, 8), depths=(1, 1, 1, 1, 1))
TINY = ["--train-size", "4", "--val-size", "2", "--size", "32", "--batch-size", "2", "--no-class-weights"]


def small_model():
    msn.manual_seed(0)
    return build_model("fcn32s", ThingsAndStuff.num_classes, **SMALL)


def data():
    return ThingsAndStuff(4, size=32, seed=0)


def checkpoint(folder):
    """A real checkpoint written by fit: folder/checkpoint.npz."""
    fit(small_model(), data(), epochs=1, batch_size=4, progress=False, out_dir=folder)
    return str(folder / "checkpoint.npz")


def truncated_checkpoint(folder):
    path = checkpoint(folder)
    with open(path, "rb") as f:
        head = f.read(os.path.getsize(path) // 2)
    with open(path, "wb") as f:  # as a copy cut short, or a disk that filled up, leaves it
        f.write(head)
    return path


def voc_folder(root, spoil):
    """A one-image VOC-style folder whose JPEG or PNG ``spoil`` damages; returns the damaged file."""
    from PIL import Image
    for sub in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        os.makedirs(root / sub, exist_ok=True)
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(
        root / "JPEGImages/a.jpg")
    png = Image.fromarray(np.zeros((40, 48), dtype=np.uint8), mode="P")
    png.putpalette(voc_palette().ravel().tolist())
    png.save(root / "SegmentationClass/a.png")
    (root / "ImageSets/Segmentation/train.txt").write_text("a\n")
    return str(spoil(root))


def truncate_jpeg(root):
    path = root / "JPEGImages/a.jpg"
    path.write_bytes(path.read_bytes()[:len(path.read_bytes()) // 2])
    return path


def garble_png(root):
    path = root / "SegmentationClass/a.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"not a png at all" * 8)
    return path


def all_ignored():
    image = np.random.default_rng(0).random((3, 32, 32)).astype(np.float32)
    return [(image, np.full((32, 32), 255, dtype=np.int64))] * 2


# Each case: tmp_path -> (call that must raise, strings its message must contain).
def fit_epochs_zero(tmp):
    return lambda: fit(small_model(), data(), epochs=0, progress=False), ["fit: epochs", "got 0"]


def fit_epochs_negative(tmp):
    return lambda: fit(small_model(), data(), epochs=-2, progress=False), ["fit: epochs", "got -2"]


def cli(flag, value):
    def case(tmp):
        return lambda: main(["train", "--out", str(tmp / "run"), *TINY, flag, value]), [f"argument {flag}", value]
    case.__name__ = f"cli_{flag[2:].replace('-', '_')}_{value}"
    return case


def loader_negative_crop(tmp):
    return lambda: DataLoader(data(), 2, augment=True, crop=(-4, -4)), ["DataLoader: crop", "(-4, -4)"]


def fit_zero_crop(tmp):
    return lambda: fit(small_model(), data(), epochs=1, crop=0, progress=False), ["crop", "got 0"]


def crop_flip_zero_height(tmp):
    image, labels = data()[0]
    rng = np.random.default_rng(0)
    return lambda: random_crop_flip(image, labels, rng, crop=(0, 5)), ["random_crop_flip: crop", "(0, 5)"]


def load_truncated_checkpoint(tmp):
    path = truncated_checkpoint(tmp)
    return lambda: load_checkpoint(path), ["load_checkpoint: cannot read", path]


def load_garbage_checkpoint(tmp):
    path = str(tmp / "checkpoint.npz")
    with open(path, "wb") as f:
        f.write(b"these bytes are no zip archive")
    return lambda: load_checkpoint(path), ["load_checkpoint: cannot read", path]


def load_state_dict_truncated(tmp):
    path = truncated_checkpoint(tmp)
    return lambda: nn.load_state_dict(path), ["load_state_dict: cannot read", path]


def load_checkpoint_of_a_state_dict(tmp):
    path = str(tmp / "weights.npz")
    nn.save_state_dict(small_model(), path)
    return lambda: load_checkpoint(path), [path, "no 'meta' entry"]


def resume_from_truncated_checkpoint(tmp):
    path = truncated_checkpoint(tmp)
    return lambda: fit(small_model(), data(), epochs=2, progress=False, out_dir=tmp, resume=True), [path]


def evaluate_truncated_checkpoint(tmp):
    out = tmp / "run"
    path = truncated_checkpoint(out)
    (out / "run.json").write_text('{"model": "fcn32s", "num_classes": 9}')
    return lambda: main(["evaluate", "--out", str(out)]), ["cannot read", path]


def voc_truncated_jpeg(tmp):
    path = voc_folder(tmp, truncate_jpeg)
    return lambda: VOCSegmentation(str(tmp), "train")[0], ["VOCSegmentation: cannot read", path]


def voc_garbled_png(tmp):
    path = voc_folder(tmp, garble_png)
    return lambda: VOCSegmentation(str(tmp), "train")[0], ["VOCSegmentation: cannot read", path]


def fit_all_ignored_batch(tmp):
    return (lambda: fit(small_model(), all_ignored(), epochs=1, batch_size=2, progress=False),
            ["fit: batch 1 of epoch 1", "no labelled pixel", "ignore_index=255"])


def fit_over_an_earlier_run(tmp):
    path = checkpoint(tmp)
    return lambda: fit(small_model(), data(), epochs=1, progress=False, out_dir=tmp), [path, "overwrite=True"]


def fit_resume_and_overwrite(tmp):
    return (lambda: fit(small_model(), data(), epochs=1, progress=False, out_dir=tmp, resume=True, overwrite=True),
            ["resume=True", "overwrite=True"])


RUNS = [
    (fit_epochs_zero, ValueError),
    (fit_epochs_negative, ValueError),
    (cli("--epochs", "0"), SystemExit),                  # was an IndexError after the run
    (cli("--crop", "-4"), SystemExit),                   # was an error deep in conv2d
    (cli("--crop", "0"), SystemExit),                    # was silently no crop
    (cli("--batch-size", "0"), SystemExit),
    (cli("--lr", "-0.1"), SystemExit),
    (loader_negative_crop, ValueError),
    (fit_zero_crop, ValueError),
    (crop_flip_zero_height, ValueError),
    (load_truncated_checkpoint, OSError),
    (load_garbage_checkpoint, OSError),
    (load_state_dict_truncated, OSError),
    (load_checkpoint_of_a_state_dict, ValueError),
    (resume_from_truncated_checkpoint, OSError),
    (evaluate_truncated_checkpoint, OSError),
    (voc_truncated_jpeg, OSError),
    (voc_garbled_png, OSError),
    (fit_all_ignored_batch, ValueError),                 # was "lower the learning rate"
    (fit_over_an_earlier_run, FileExistsError),
    (fit_resume_and_overwrite, ValueError),
]


@pytest.mark.parametrize("make, error", RUNS, ids=[make.__name__ for make, _ in RUNS])
def test_bad_run_input_raises_a_clear_error(make, error, tmp_path, capsys):
    call, needles = make(tmp_path)
    with pytest.raises(error) as raised:
        call()
    message = str(raised.value) + capsys.readouterr().err  # argparse prints its message, then exits
    for needle in needles:
        assert needle in message, f"{needle!r} not in {message!r}"
