"""interpolate_bilinear: both coordinate conventions, sizes and scale factors, gradchecks, PyTorch, errors."""
import numpy as np
import pytest

import minisegnet as msn
from minisegnet import functional as F, nn
from minisegnet.kernels.bilinear.reference import bilinear_forward_reference, source_taps
from conftest import assert_matches_torch, leaf, requires_torch, to_torch, torch

SIZES = [(1, 1), (3, 5), (5, 7), (10, 16), (17, 9), (4, 4)]


def image(seed=0, shape=(2, 3, 5, 4)):
    return leaf(np.random.default_rng(seed).normal(size=shape))


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("align_corners", [False, True])
def test_bilinear_to_a_size_reference_and_gradcheck(size, align_corners):
    x = image(size[0])
    y = F.interpolate_bilinear(x, size=size, align_corners=align_corners)
    scales = (5 / size[0], 4 / size[1])
    np.testing.assert_allclose(y.data, bilinear_forward_reference(x.data, *size, *scales, align_corners), rtol=1e-12)
    assert msn.gradcheck(lambda t: F.interpolate_bilinear(t, size=size, align_corners=align_corners), x,
                         max_elements=60)


@pytest.mark.parametrize("scale", [2, 3, 0.5, 1.7, (2, 1.5)])
@pytest.mark.parametrize("align_corners", [False, True])
def test_bilinear_by_scale_factor_gradcheck(scale, align_corners):
    x = image(3)
    assert msn.gradcheck(lambda t: F.interpolate_bilinear(t, scale_factor=scale, align_corners=align_corners), x,
                         max_elements=60)


def test_source_coordinates_follow_the_two_conventions():
    # align_corners=True, 3 -> 5: src = dst * 2/4 = 0, .5, 1, 1.5, 2
    i0, i1, lam = source_taps(3, 5, None, True)
    np.testing.assert_array_equal(i0, [0, 0, 1, 1, 2])
    np.testing.assert_allclose(lam, [0, 0.5, 0, 0.5, 0])
    # align_corners=False, 2 -> 4: src = (dst + .5)/2 - .5 = -.25 (clamped to 0), .25, .75, 1.25 (last row clipped)
    i0, i1, lam = source_taps(2, 4, 0.5, False)
    np.testing.assert_array_equal(i0, [0, 0, 0, 1])
    np.testing.assert_array_equal(i1, [1, 1, 1, 1])
    np.testing.assert_allclose(lam, [0, 0.25, 0.75, 0.25])


def test_source_taps_are_computed_once_per_size_and_cannot_be_corrupted():
    """The taps are a Python loop; forward and backward through the same resize reuse them."""
    from minisegnet.kernels import cached_source_taps
    cached_source_taps.cache_clear()
    x = image(6, shape=(1, 2, 6, 7))
    y = F.interpolate_bilinear(x, size=(13, 9))
    y.sum().backward()
    F.interpolate_bilinear(x, size=(13, 9))
    info = cached_source_taps.cache_info()
    assert info.misses == 2 and info.hits == 4  # rows and columns: 2 computed, then forward, backward, forward
    i0, i1, lam = cached_source_taps(6, 13, 6 / 13, False)
    for array, expected in zip((i0, i1, lam), source_taps(6, 13, 6 / 13, False)):
        np.testing.assert_array_equal(array, expected)
        with pytest.raises(ValueError, match="read-only"):
            array[0] = 1


def test_upsampling_a_constant_keeps_it_constant_and_identity_size_is_identity():
    x = leaf(np.full((1, 1, 3, 4), 2.5))
    assert np.allclose(F.interpolate_bilinear(x, size=(7, 11)).data, 2.5)
    y = image(4)
    np.testing.assert_allclose(F.interpolate_bilinear(y, size=(5, 4)).data, y.data)


@requires_torch
@pytest.mark.parametrize("size,scale", [((7, 11), None), ((3, 2), None), ((1, 6), None), (None, 2), (None, 1.7),
                                        (None, (0.5, 3))])
@pytest.mark.parametrize("align_corners", [False, True])
def test_bilinear_matches_torch(size, scale, align_corners):
    x = image(5)
    tx = to_torch(x.data, True)
    ours = F.interpolate_bilinear(x, size=size, scale_factor=scale, align_corners=align_corners)
    theirs = torch.nn.functional.interpolate(tx, size=size, scale_factor=scale, mode="bilinear",
                                             align_corners=align_corners)
    assert_matches_torch(ours, theirs, [(x, tx)])


def test_bilinear_errors():
    x = image()
    with pytest.raises(ValueError, match="interpolate_bilinear: give exactly one of size and scale_factor"):
        F.interpolate_bilinear(x)
    with pytest.raises(ValueError, match="give exactly one"):
        F.interpolate_bilinear(x, size=4, scale_factor=2)
    with pytest.raises(ValueError, match=r"interpolate_bilinear: output size \(0, 0\) is empty"):
        F.interpolate_bilinear(x, scale_factor=0.1)


def test_upsample_layer():
    assert nn.Upsample(scale_factor=2)(image()).shape == (2, 3, 10, 8)
    assert nn.Upsample(size=(6, 6), align_corners=True)(image()).shape == (2, 3, 6, 6)


@requires_torch
@pytest.mark.parametrize("align_corners", [False, True])
def test_an_empty_batch_matches_torch(align_corners):
    x = leaf(np.zeros((0, 2, 5, 4)))
    tx = to_torch(x.data, True)
    ours = F.interpolate_bilinear(x, size=(7, 3), align_corners=align_corners)
    theirs = torch.nn.functional.interpolate(tx, size=(7, 3), mode="bilinear", align_corners=align_corners)
    assert ours.shape == tuple(theirs.shape) == (0, 2, 7, 3)
    assert_matches_torch(ours, theirs, [(x, tx)])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bilinear_keeps_its_dtype(dtype):
    """Integer images are refused (tests/test_bad_inputs.py): uint8 used to cast the weights to 0."""
    x = msn.tensor(np.arange(16, dtype=dtype).reshape(1, 1, 4, 4), requires_grad=True)
    y = F.interpolate_bilinear(x, scale_factor=1.5)
    y.sum().backward()
    assert y.dtype == dtype and x.grad.dtype == dtype
    assert 0 < y.data.mean() < 15
