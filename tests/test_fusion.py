"""FCN skip fusion: crop offsets derived from the layers, crop, crop-and-add."""
import numpy as np
import pytest

import minisegnet as msn
from minisegnet import functional as F, nn
from conftest import leaf


def vgg16_fcn_layers(pad_first=100):
    """VGG-16's convolution/pooling stack as FCN used it (conv1_1 padded by 100), up to each pool."""
    def conv(c_in, c_out, pad=1):
        return nn.Conv2d(c_in, c_out, 3, padding=pad)
    stages, layers, c = [], [], 3
    for i, (width, count) in enumerate([(4, 2), (4, 2), (4, 3), (4, 3), (4, 3)]):
        for j in range(count):
            layers += [conv(c, width, pad_first if (i, j) == (0, 0) else 1), nn.ReLU()]
            c = width
        layers.append(nn.MaxPool2d(2, 2, ceil_mode=True))
        stages.append(list(layers))
    return stages  # stages[k]: the layers from the input to pool(k+1)


def test_crop_offsets_reproduce_the_published_fcn_numbers():
    """The offsets in FCN's prototxts (Long et al., fcn.berkeleyvision.org): 19 for FCN-32s,
    5 and 27 for FCN-16s, 5, 9 and 31 for FCN-8s."""
    pool3, pool4, pool5 = (s for s in vgg16_fcn_layers()[2:])
    fc = [nn.Conv2d(4, 4, 7), nn.ReLU(), nn.Conv2d(4, 4, 1), nn.ReLU(), nn.Conv2d(4, 2, 1)]
    score_fr = pool5 + fc
    up = lambda f: nn.ConvTranspose2d(2, 2, 2 * f, stride=f, bias=False)  # noqa: E731

    assert F.crop_offset(score_fr + [up(32)], []) == (19, 19)                 # FCN-32s: upscore vs data
    upscore2 = score_fr + [up(2)]
    assert F.crop_offset(pool4, upscore2) == (5, 5)                           # score_pool4c
    assert F.crop_offset(upscore2 + [up(16)], []) == (27, 27)                 # FCN-16s: upscore16 vs data
    upscore_pool4 = upscore2 + [up(2)]
    assert F.crop_offset(pool3, upscore_pool4) == (9, 9)                      # score_pool3c
    assert F.crop_offset(upscore_pool4 + [up(8)], []) == (31, 31)             # FCN-8s: upscore8 vs data


def test_crop_offset_refuses_misaligned_maps():
    with pytest.raises(ValueError, match="different strides on axis 0"):
        F.crop_offset([nn.MaxPool2d(2)], [])
    with pytest.raises(ValueError, match="misaligned by 1/2 units"):
        F.crop_offset([], [nn.MaxPool2d(2), nn.ConvTranspose2d(1, 1, 1, stride=2)])


def test_crop_and_add_on_a_small_fcn_with_a_non_trivial_offset():
    """A padded conv stack whose skip map is larger than the upsampled coarse map; the fusion
    must line the two up at the offset derived from the layers, and gradients must flow to both."""
    msn.manual_seed(0)
    stem = [nn.Conv2d(1, 2, 3, padding=4), nn.ReLU()]
    down = [nn.MaxPool2d(2), nn.Conv2d(2, 2, 3)]
    up = nn.ConvTranspose2d(2, 2, 4, stride=2, bias=False, bilinear=True)
    offset = F.crop_offset(stem, stem + down + [up])
    assert offset == (1, 1)  # stem starts at -3, the upsampled map at -2: one pixel apart

    x = msn.tensor(np.random.default_rng(0).normal(size=(1, 1, 12, 10)).astype(np.float32))  # the layers' dtype
    skip = nn.Sequential(*stem)(x)
    coarse = up(nn.Sequential(*down)(skip))
    fused = F.crop_and_add(skip, coarse, offset)
    assert fused.shape == coarse.shape
    np.testing.assert_allclose(fused.data - coarse.data,
                               skip.data[:, :, 1:1 + coarse.shape[2], 1:1 + coarse.shape[3]], rtol=1e-5, atol=1e-6)
    a, b = leaf(skip.data), leaf(coarse.data)
    assert msn.gradcheck(lambda s, c: F.crop_and_add(s, c, offset), a, b)


def test_crop_errors():
    x = leaf(np.ones((1, 2, 5, 5)))
    with pytest.raises(ValueError, match=r"crop: a 4x4 window at offset \(2, 0\) does not fit in a 5x5 map"):
        F.crop(x, (4, 4), (2, 0))
    with pytest.raises(ValueError, match="crop_and_add: batch and channels differ"):
        F.crop_and_add(x, leaf(np.ones((1, 3, 2, 2))), (0, 0))


def test_coordinate_map_of_dilated_and_resize_layers():
    (start, jump), _ = F.coordinate_map([nn.Conv2d(1, 1, 3, dilation=2), nn.MaxPool2d(2)])
    assert (start, jump) == (2.5, 2)
    (start, jump), _ = F.coordinate_map([nn.MaxPool2d(2), nn.Upsample(scale_factor=2)])
    assert (start, jump) == (0.0, 1)
