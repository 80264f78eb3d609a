"""The FCN family and its relatives, all on one small VGG-style backbone.

    backbone   five stages of (3x3 conv, ReLU) x k, each followed by 2x2 max pooling
               (ceil mode: the score maps always cover the whole input, whatever its size)
    FCN-32s    score the last stage (1x1 conv), upsample x32 bilinearly, crop to the input
    FCN-16s    ... plus a learnable x2 upsampling (initialised bilinear) fused with the score of
               stage 4 (initialised to zero, as in the FCN paper), then x16
    FCN-8s     ... and once more with stage 3, then x8
    Dilated    stages 4 and 5 keep stride 8: pooling removed, their convolutions dilated 2 and 4
               (DeepLab), optionally followed by Yu & Koltun's context module
    Pyramid    one shared feature extractor applied to the image at several scales (1, 1/2, 1/4, ...:
               each level the one above halved), one classifier on all the levels' features (Farabet et al.)

Two controls for the lecture's two warnings about changing the backbone:
    Shallow    the first three stages only, scored and upsampled x8: fine, but r = 36 px
               ("a shallower network is not very semantic"); shallow2 / shallow1 keep two stages
               (r = 16 px) / one (r = 6 px)
    NoPooling  all five stages with every pooling removed and no dilation: stride 1, r = 19 px
               ("remove subsampling and each unit looks at only a small window")

Every crop offset is derived from the layers (``functional.crop_offset``), none is hard-coded.
"""
import re

import numpy as np

from . import functional as F
from . import nn
from .engine import no_grad

DEFAULT_WIDTHS = (16, 32, 64, 96, 128)
DEFAULT_DEPTHS = (2, 2, 2, 2, 1)


class Stage(nn.Module):
    """(conv 3x3, ReLU) x depth, then 2x2 max pooling unless ``pool`` is False."""

    def __init__(self, in_channels, out_channels, depth, dilation=1, pool=True):
        super().__init__()
        layers = []
        for i in range(depth):
            layers += [nn.Conv2d(in_channels if i == 0 else out_channels, out_channels, 3,
                                 padding=dilation, dilation=dilation), nn.ReLU()]
        if pool:
            layers.append(nn.MaxPool2d(2, 2, ceil_mode=True))
        self.layers = nn.Sequential(*layers)

    def forward(self, x):
        return self.layers(x)


class VGGBackbone(nn.Module):
    """Returns the output of every stage; ``stage_layers(k)`` lists the layers from the input to stage k
    (for receptive fields and crop offsets)."""

    def __init__(self, in_channels=3, widths=DEFAULT_WIDTHS, depths=DEFAULT_DEPTHS, dilations=(1,) * 5,
                 pools=(True,) * 5):
        super().__init__()
        self.widths = tuple(widths)
        self.stages = nn.Sequential(*[
            Stage(in_channels if i == 0 else widths[i - 1], widths[i], depths[i], dilations[i], pools[i])
            for i in range(len(widths))])

    def forward(self, x):
        features = []
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        return features

    def stage_layers(self, k):
        """The layers from the input through stage k (0-based), in order."""
        return [layer for stage in list(self.stages)[:k + 1] for layer in stage.layers]


def _upsample_to(scores, stride, offset, size):
    """Bilinear x``stride`` upsampling of a score map, cropped to ``size`` at ``offset``."""
    return F.crop(F.interpolate_bilinear(scores, scale_factor=stride), size, offset)


class SegmentationModel(nn.Module):
    """Base class: models map (N, 3, H, W) images to (N, num_classes, H, W) class scores."""

    name = "model"

    def config(self):
        return {"name": self.name, "num_classes": self.num_classes}


class FCN(SegmentationModel):
    """FCN-32s (``skips=0``), FCN-16s (1) or FCN-8s (2) on the shared VGG-style backbone."""

    def __init__(self, num_classes, skips=2, widths=DEFAULT_WIDTHS, depths=DEFAULT_DEPTHS, in_channels=3):
        super().__init__()
        if skips not in (0, 1, 2):
            raise ValueError(f"FCN: skips must be 0 (FCN-32s), 1 (FCN-16s) or 2 (FCN-8s), got {skips}")
        self.num_classes, self.skips = num_classes, skips
        self.name = {0: "fcn32s", 1: "fcn16s", 2: "fcn8s"}[skips]
        self.backbone = VGGBackbone(in_channels, widths, depths)
        self.score = nn.Conv2d(widths[4], num_classes, 1)
        if skips >= 1:
            self.score_pool4 = nn.Conv2d(widths[3], num_classes, 1)
            self.upscore2 = nn.ConvTranspose2d(num_classes, num_classes, 4, stride=2, padding=1, bias=False,
                                               bilinear=True)
            nn.init.zeros_(self.score_pool4.weight)  # the skip starts silent: FCN-16s begins as FCN-32s
        if skips >= 2:
            self.score_pool3 = nn.Conv2d(widths[2], num_classes, 1)
            self.upscore_pool4 = nn.ConvTranspose2d(num_classes, num_classes, 4, stride=2, padding=1, bias=False,
                                                    bilinear=True)
            nn.init.zeros_(self.score_pool3.weight)

    def receptive_field_branches(self):
        """Each score map's path from the input (``inspect.receptive_field`` reports them separately)."""
        branches = {"score (stage 5, stride 32)": self.backbone.stage_layers(4) + [self.score]}
        for k, score_layer, _ in self._skips():
            branches[f"score_pool{k + 1} (stage {k + 1}, stride {2 ** (k + 1)})"] = \
                self.backbone.stage_layers(k) + [score_layer]
        return branches

    def fusion_offsets(self):
        """Where each map lines up with the next, derived from the layers (computed once):
        one (oy, ox) per skip for the upsampled coarse scores, and one for the final upsampling."""
        if getattr(self, "_offsets", None) is None:
            layers, offsets = self.backbone.stage_layers(4) + [self.score], []
            for k, score_layer, up in self._skips():
                skip_layers = self.backbone.stage_layers(k) + [score_layer]
                offsets.append(F.crop_offset(layers + [up], skip_layers))
                layers = skip_layers
            stride = 2 ** (5 - self.skips)
            offsets.append(F.crop_offset(layers + [nn.Upsample(scale_factor=stride)], []))
            object.__setattr__(self, "_offsets", offsets)
        return self._offsets

    def _skips(self):
        pairs = ((3, "score_pool4", "upscore2"), (2, "score_pool3", "upscore_pool4"))[:self.skips]
        return [(k, getattr(self, score), getattr(self, up)) for k, score, up in pairs]

    def features(self, x):
        """FCN-32s only: the map its one score layer reads, stage 5's output (N, widths[4], ~H/32, ~W/32).
        (FCN-16s and FCN-8s score three maps and fuse them: there is no single feature map to hand out.)"""
        if self.skips:
            raise ValueError(f"FCN.features: only FCN-32s scores a single feature map; {self.name} fuses "
                             f"{self.skips + 1} score maps")
        return self.backbone(x)[4]

    def scores_to_input(self, scores, size):
        """FCN-32s's scores on stage 5's grid, upsampled x32 and cropped to the input's ``size``."""
        return _upsample_to(scores, 2 ** (5 - self.skips), self.fusion_offsets()[-1], size)

    def forward(self, x, skip_gradients=True):
        """Scores (N, C, H, W). skip_gradients=False gives the same values, but the skip score layers read
        a detached copy of their stage, so no gradient flows back into the backbone through a skip: the
        early stages then learn only from what reaches them through the deeper stages, as in FCN-32s
        (lesson 10 measures what the skips add to the gradient at stage 3: the lecture's red arrows)."""
        features = self.backbone(x)
        scores = self.score(features[4])
        offsets = self.fusion_offsets()
        # Each skip: upsample the coarse scores x2, crop them to the finer map where the two line up, add.
        for (k, score_layer, up), offset in zip(self._skips(), offsets):
            finer = features[k] if skip_gradients else features[k].detach()
            scores = F.crop_and_add(up(scores), score_layer(finer), offset)
        return _upsample_to(scores, 2 ** (5 - self.skips), offsets[-1], x.shape[2:])


def FCN32s(num_classes, **kwargs):
    return FCN(num_classes, skips=0, **kwargs)


def FCN16s(num_classes, **kwargs):
    return FCN(num_classes, skips=1, **kwargs)


def FCN8s(num_classes, **kwargs):
    return FCN(num_classes, skips=2, **kwargs)


class ContextModule(nn.Module):
    """Yu & Koltun's basic context module: 3x3 convolutions on the C score channels with dilations
    1, 1, 2, 4, 8, 16, 1 (ReLU between), then a 1x1 convolution; identity-initialised, so it starts
    by passing the scores through unchanged and learns to aggregate context."""

    DILATIONS = (1, 1, 2, 4, 8, 16, 1)

    def __init__(self, channels, dilations=DILATIONS):
        super().__init__()
        layers = []
        for d in dilations:
            conv = nn.Conv2d(channels, channels, 3, padding=d, dilation=d)
            layers += [conv, nn.ReLU()]
        layers.append(nn.Conv2d(channels, channels, 1))
        self.layers = nn.Sequential(*layers)
        for layer in self.layers:
            if isinstance(layer, nn.Conv2d):
                w = np.zeros(layer.weight.shape)
                centre = layer.kernel_size[0] // 2
                w[np.arange(channels), np.arange(channels), centre, centre] = 1.0
                with no_grad():  # an initialisation, not part of any graph
                    layer.weight.copy_(w)
                nn.init.zeros_(layer.bias)

    def forward(self, x):
        # Scores can be negative; the identity initialisation holds for ReLU only if the input
        # is shifted positive, so the module works on (x - min) and shifts back.
        shift = x.detach().data.min()
        return self.layers(x - shift) + shift


class DilatedFCN(SegmentationModel):
    """DeepLab-style: stages 4 and 5 keep the resolution of stage 3 (output stride 8): their pooling
    is removed and their convolutions dilated 2 and 4, so the receptive field still grows."""

    def __init__(self, num_classes, widths=DEFAULT_WIDTHS, depths=DEFAULT_DEPTHS, context=False, in_channels=3):
        super().__init__()
        self.num_classes, self.name = num_classes, "dilated_context" if context else "dilated"
        self.backbone = VGGBackbone(in_channels, widths, depths, dilations=(1, 1, 1, 2, 4),
                                    pools=(True, True, True, False, False))
        self.score = nn.Conv2d(widths[4], num_classes, 1)
        self.context = ContextModule(num_classes) if context else None

    def receptive_field_branches(self):
        layers = self.backbone.stage_layers(4) + [self.score]
        return {"score (stride 8)": layers + (list(self.context.layers) if self.context is not None else [])}

    def forward(self, x):
        scores = self.score(self.backbone(x)[4])
        if self.context is not None:
            scores = self.context(scores)
        if getattr(self, "_offset", None) is None:  # derived from the layers once
            layers = self.backbone.stage_layers(4) + [self.score] + (list(self.context.layers) if self.context else [])
            object.__setattr__(self, "_offset", F.crop_offset(layers + [nn.Upsample(scale_factor=8)], []))
        return _upsample_to(scores, 8, self._offset, x.shape[2:])


class ShallowFCN(SegmentationModel):
    """Control: the backbone cut after ``stages`` stages (3: stride 8, receptive field 36 px with the default
    depths; 2: stride 4, 16 px), scored by a 1x1 convolution and upsampled to the input. With three stages
    it is FCN-8s's finest branch and nothing deeper; every score comes from a window of r pixels, which
    on the lessons' 64-px scenes (things 19-28 px across) holds a whole object at three stages and only
    part of one at two."""

    def __init__(self, num_classes, widths=DEFAULT_WIDTHS, depths=DEFAULT_DEPTHS, in_channels=3, stages=3):
        super().__init__()
        if stages not in (1, 2, 3, 4):
            raise ValueError(f"ShallowFCN: stages must be 1 to 4 (5 is the whole backbone), got {stages}")
        self.num_classes, self.stages = num_classes, stages
        self.name = "shallow" if stages == 3 else f"shallow{stages}"
        self.backbone = VGGBackbone(in_channels, widths[:stages], depths[:stages])
        self.score = nn.Conv2d(widths[stages - 1], num_classes, 1)

    def receptive_field_branches(self):
        return {f"score (stage {self.stages}, stride {2 ** self.stages})":
                self.backbone.stage_layers(self.stages - 1) + [self.score]}

    def features(self, x):
        """The map the score layer reads: stage ``stages``'s output, (N, widths[stages-1], ~H/2**stages, ~W/2**stages)."""
        return self.backbone(x)[self.stages - 1]

    def scores_to_input(self, scores, size):
        """Scores on the features' grid, upsampled x2**stages and cropped to the input's ``size``."""
        factor = 2 ** self.stages
        if getattr(self, "_offset", None) is None:  # derived from the layers once
            layers = self.backbone.stage_layers(self.stages - 1) + [self.score, nn.Upsample(scale_factor=factor)]
            object.__setattr__(self, "_offset", F.crop_offset(layers, []))
        return _upsample_to(scores, factor, self._offset, size)

    def forward(self, x):
        return self.scores_to_input(self.score(self.features(x)), x.shape[2:])


class NoPoolingNet(SegmentationModel):
    """Control: the full five-stage backbone with every pooling removed and no dilation, so the scores
    keep the input's resolution (stride 1) but each sees only 1 + 2 * (number of 3x3 convolutions)
    pixels: 19 px with the default depths (nine convolutions), against 124 px for FCN-32s.
    Every convolution runs at full resolution: about 26x the arithmetic of FCN-8s on the default widths."""

    def __init__(self, num_classes, widths=DEFAULT_WIDTHS, depths=DEFAULT_DEPTHS, in_channels=3):
        super().__init__()
        self.num_classes, self.name = num_classes, "nopool"
        self.backbone = VGGBackbone(in_channels, widths, depths, pools=(False,) * len(widths))
        self.score = nn.Conv2d(widths[-1], num_classes, 1)

    def receptive_field_branches(self):
        return {"score (stage 5, stride 1)": self.backbone.stage_layers(len(self.backbone.widths) - 1) + [self.score]}

    def forward(self, x):
        return self.score(self.backbone(x)[-1])  # padding 1 on every 3x3 convolution: already H x W


class PyramidFCN(SegmentationModel):
    """Farabet et al.'s multi-scale network: the same feature extractor (shared weights) applied to the
    image at each of ``scales`` (1, 1/2, 1/4, ...: powers of two), and one linear classifier on the
    concatenation of every level's features, upsampled to the finest level (the classifier they trained
    the features with; their image pyramid was also locally normalised, and their full system went on
    to label superpixels or a CRF).

    A 1x1 convolution on a concatenation is the sum of one 1x1 convolution per part, and a 1x1
    convolution commutes with bilinear resizing (its weights mix channels, the resizing mixes
    positions, and the resizing weights sum to 1). So each level is scored by its own 1x1 layer (the
    finest by the base net's ``score``, each coarser one by ``score_level<k>``), its scores resized to
    the finest level's grid and summed, and the sum upsampled to the input as the base net does: the
    same function as Farabet's classifier, written the way the FCNs here write their skips. What is
    shared is the feature extractor; each level's features keep a classifier of their own, so what a
    unit means at 1/4 scale (a larger piece of the scene) is free to count differently from what it
    means at full scale.

    Each level of the pyramid is the one above it halved (bilinear, align_corners=False), as an image
    pyramid is built: on even sizes halving averages 2x2 blocks exactly, so the level at 1/2**k is k
    successive 2x2 average poolings of the image, and enters the receptive-field arithmetic as exactly that.

    ``base``: a net with one feature map and one 1x1 score layer (``features``, ``score``,
    ``scores_to_input``): "fcn32s" or a "shallow" net."""

    def __init__(self, num_classes, scales=(1.0, 0.5), base="fcn32s", **kwargs):
        super().__init__()
        self.halvings = [_halvings(s) for s in scales]
        if not scales or sorted(self.halvings) != self.halvings or self.halvings[0] != 0 \
                or len(set(self.halvings)) != len(scales):
            raise ValueError(f"PyramidFCN: scales must start at 1 and shrink, each once, got {tuple(scales)}")
        self.num_classes, self.scales, self.name = num_classes, tuple(scales), f"pyramid_{base}"
        self.net = build_model(base, num_classes, **kwargs)
        if not hasattr(self.net, "scores_to_input") or getattr(self.net, "skips", 0):
            raise ValueError(f"PyramidFCN: the base net must score one feature map (fcn32s or a shallow net), got {base!r}")
        for k in self.halvings[1:]:
            setattr(self, f"score_level{k}", nn.Conv2d(self.net.score.in_channels, num_classes, 1))

    def level_score_layers(self):
        """The 1x1 score layer of each level, finest first."""
        return [self.net.score] + [getattr(self, f"score_level{k}") for k in self.halvings[1:]]

    def receptive_field_branches(self):
        """Each level's path from the full-size input, in the pixels of that input: named after the level,
        its score layer and its stride in input pixels ("scale 0.25: score_level2 (stage 1, stride 8)")."""
        branches = {}
        (name, layers), = self.net.receptive_field_branches().items()  # e.g. "score (stage 1, stride 2)"
        for s, k, score in zip(self.scales, self.halvings, self.level_score_layers()):
            level_name = re.sub(r"stride (\d+)", lambda m: f"stride {int(m.group(1)) * 2 ** k}", name)
            level_name = level_name.replace("score", "score" if k == 0 else f"score_level{k}", 1)
            branches[f"scale {s}: {level_name}"] = [nn.AvgPool2d(2) for _ in range(k)] + layers[:-1] + [score]
        return branches

    def forward(self, x):
        total, level, level_halvings = None, x, 0
        for k, score in zip(self.halvings, self.level_score_layers()):  # finest first, each level the last halved
            while level_halvings < k:
                level = F.interpolate_bilinear(level, size=tuple(max(1, n // 2) for n in level.shape[2:]))
                level_halvings += 1
            scores = score(self.net.features(level))
            if k:  # to the finest level's feature grid (the 1x1 score layer and the resizing commute)
                scores = F.interpolate_bilinear(scores, size=total.shape[2:])
            total = scores if total is None else total + scores
        return self.net.scores_to_input(total, x.shape[2:])


def _halvings(scale):
    """k for a pyramid scale 1/2**k; any other scale is refused (the levels are halvings)."""
    for k in range(8):
        if scale == 0.5 ** k:
            return k
    raise ValueError(f"PyramidFCN: scales must be 1, 1/2, 1/4, ... (successive halvings), got {scale}")


MODELS = {
    "fcn32s": FCN32s, "fcn16s": FCN16s, "fcn8s": FCN8s,
    "dilated": lambda c, **k: DilatedFCN(c, **k),
    "dilated_context": lambda c, **k: DilatedFCN(c, context=True, **k),
    "pyramid": lambda c, **k: PyramidFCN(c, **k),
    "shallow": lambda c, **k: ShallowFCN(c, **k),
    "shallow1": lambda c, **k: ShallowFCN(c, stages=1, **k),
    "shallow2": lambda c, **k: ShallowFCN(c, stages=2, **k),
    "pyramid_shallow1": lambda c, **k: PyramidFCN(c, scales=(1.0, 0.5, 0.25), base="shallow1", **k),
    "pyramid_shallow2": lambda c, **k: PyramidFCN(c, base="shallow2", **k),
    "nopool": lambda c, **k: NoPoolingNet(c, **k),
    "texture": lambda c, **k: _texture_baseline(c, **k),
}


def _texture_baseline(num_classes, **kwargs):
    from .texture import TextureBaseline  # the pre-convnet baseline (lesson 7)
    return TextureBaseline(num_classes, **kwargs)


def build_model(name, num_classes, **kwargs):
    """A model by name: one of ``MODELS``."""
    if name not in MODELS:
        raise ValueError(f"build_model: unknown model {name!r}; choose one of {sorted(MODELS)}")
    return MODELS[name](num_classes, **kwargs)
