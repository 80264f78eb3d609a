"""The pre-convnet baseline: texture histograms and a linear classifier.

Before convnets, "stuff" was segmented by its texture (Malik et al.; Shotton et al.'s
TextonBoost): filter the image with a fixed bank of Gaussian-derivative filters, describe each
pixel by the *histogram* of the responses in a patch around it, and classify that descriptor.
Nothing here is learned except the classifier, and the patch has no notion of shape, which is
why it handles stuff (amorphous, recognisable from a small patch) and not things (recognisable
only by their outline).

    responses   a bank of 12 fixed 9x9 filters on the grey image (Gaussians, Laplacians of
                Gaussian, first and second derivatives in 4 orientations), plus the 3 colour channels
    histogram   each response quantised into 5 bins (one-hot), averaged over a patch x patch
                window (``F.avg_pool2d``): the share of the patch in each bin
    classifier  a 1x1 convolution: a linear softmax classifier per pixel, trained with ``fit``
"""
import numpy as np

from . import functional as F
from . import nn
from .backend import array_module, to_device
from .engine import Tensor, no_grad

EDGES = (-0.5, -0.15, 0.15, 0.5)  # bin edges for responses of unit-norm filters on normalised images


def _gaussian_derivatives(sigma, radius):
    y, x = np.mgrid[-radius:radius + 1, -radius:radius + 1].astype(np.float64)
    return y, x, np.exp(-(x ** 2 + y ** 2) / (2 * sigma ** 2))


def filter_bank(radius=4):
    """(12, 1, 2r+1, 2r+1) filters, each with unit L2 norm (derivative filters also zero mean)."""
    filters = []
    for sigma in (1.0, 2.0):  # blurs: local brightness
        _, _, g = _gaussian_derivatives(sigma, radius)
        filters.append(g)
    for sigma in (1.0, 2.0):  # Laplacians of Gaussian: blobs and spots
        y, x, g = _gaussian_derivatives(sigma, radius)
        filters.append((x ** 2 + y ** 2 - 2 * sigma ** 2) * g)
    for angle in np.arange(4) * np.pi / 4:  # edges and bars in 4 orientations
        y, x, g = _gaussian_derivatives(1.5, radius)
        u = np.cos(angle) * x + np.sin(angle) * y
        filters.append(u * g)
        filters.append((u ** 2 / 1.5 ** 2 - 1) * g)
    bank = []
    for i, f in enumerate(filters):
        if i >= 2:
            f = f - f.mean()
        bank.append(f / np.sqrt((f ** 2).sum()))
    return np.stack(bank)[:, None].astype(np.float32)


class TextureBaseline(nn.Module):
    """Per-pixel texture-histogram descriptors (fixed) and a linear classifier (learned)."""

    name = "texture"

    def __init__(self, num_classes, patch=9, bins=len(EDGES) + 1):
        super().__init__()
        self.num_classes, self.patch = num_classes, patch
        self.bank = filter_bank()  # a plain array, not a Parameter: never trained
        channels = (self.bank.shape[0] + 3) * bins
        self.classifier = nn.Conv2d(channels, num_classes, 1)

    def config(self):
        return {"name": self.name, "num_classes": self.num_classes}

    def descriptors(self, x):
        """(N, 3, H, W) normalised images -> (N, (12 + 3) * 5, H, W) local histograms."""
        with no_grad():
            xp = array_module(x.data)
            bank = Tensor(to_device(self.bank, x.device))
            grey = x.mean(axis=1, keepdims=True)
            responses = F.concatenate([F.conv2d(grey, bank, padding=self.bank.shape[-1] // 2), x], axis=1).data
            bins = xp.digitize(responses, xp.asarray(EDGES, dtype=responses.dtype))  # (N, 15, H, W) in 0..4
            onehot = (bins[:, :, None] == xp.arange(len(EDGES) + 1)[None, None, :, None, None])
            n, c, b, h, w = onehot.shape
            onehot = Tensor(onehot.reshape(n, c * b, h, w).astype(responses.dtype))
            return F.avg_pool2d(onehot, self.patch, 1, self.patch // 2)

    def forward(self, x):
        return self.classifier(self.descriptors(x))
