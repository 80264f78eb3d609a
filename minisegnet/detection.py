"""Pre-convnet *things*: a sliding-window detector on histograms of oriented gradients, then a segmentation
of each detected box.

Before convnets, stuff was segmented by texture classifiers (``texture.py``) and things by detecting
them first (Dalal & Triggs 2005: HOG features and a linear SVM, slid over an image pyramid), then
segmenting out each detected object inside its box. This module builds that pipeline from minisegnet's
own ops:

    hog               gradients by ``F.conv2d`` with fixed [-1, 0, 1] filters, each pixel's gradient voting
                      for its orientation (soft, into the two nearest of ``bins`` unsigned bins), summed
                      over cell x cell pixels (``F.avg_pool2d``), every 2x2 cells L2-normalised (a block)
    pyramid_windows   the image resized at a few scales (``F.interpolate_bilinear``): a window of fixed
                      size in cells covers more of the image at a smaller scale; each window's box
    LinearDetector    a linear classifier over one window's blocks, (background, thing classes); written as
                      a convolution whose kernel is the window, so one ``conv2d`` scores every window of an
                      image at once (the "convolutionalisation" that FCN later applied to whole nets)
    train_detector    cross-entropy and ``optim.Adam``, the library's training pieces
    box_iou, nms      intersection over union of boxes, greedy non-maximum suppression
    detect            all of the above on images: the kept boxes, their classes and scores
    segment_box       inside a box, the pixels nearer in colour to the object than to the box's surround
                      (on the image smoothed by ``F.avg_pool2d``), the largest connected region of them

Boxes are (y0, x0, y1, x1) in pixels of the original image, y1 and x1 exclusive: area (y1 - y0)(x1 - x0).
Everything runs on the CPU in NumPy arrays (the features are small).
"""
from collections import namedtuple

import numpy as np

from . import functional as F
from . import nn, optim
from .engine import Tensor, no_grad
from .random import generator

CELL, BINS = 4, 9           # Dalal & Triggs: 9 unsigned orientation bins; 4-px cells suit 64-px scenes
WINDOW, MARGIN = 8, 1       # a window of 8 x 8 cells; its box is the central 6 x 6 (one cell of context around)

Detections = namedtuple("Detections", "boxes classes scores")  # (K, 4) float, (K,) int, (K,) float


def _images(images, op):
    """(N, C, H, W) float array, or a clear error."""
    a = np.asarray(images.data if isinstance(images, Tensor) else images)
    if a.ndim != 4:
        raise ValueError(f"{op}: images must have shape (N, C, H, W), got shape {a.shape}")
    if a.dtype.kind != "f":
        raise TypeError(f"{op}: images must be floating point, got dtype {a.dtype}")
    return a


def gradients(images):
    """Image gradients by central differences, as HOG takes them.

    images: (N, C, H, W) float -> (magnitude (N, H, W), orientation (N, H, W) in [0, pi)).

        g_x = I(y, x + 1) - I(y, x - 1),  g_y = I(y + 1, x) - I(y - 1, x)   (``F.conv2d``, [-1, 0, 1] filters)

    per channel, the image edge replicated; each pixel keeps the channel with the largest magnitude
    sqrt(g_x^2 + g_y^2) (Dalal & Triggs' rule for colour images), and its unsigned orientation
    atan2(g_y, g_x) mod pi: an edge from dark to bright and one from bright to dark point the same way."""
    x = _images(images, "gradients")
    n, c, h, w = x.shape
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)), mode="edge")
    taps = np.array([-1.0, 0.0, 1.0], dtype=x.dtype)
    with no_grad():
        t = Tensor(np.ascontiguousarray(padded))
        gx = F.conv2d(t, Tensor(np.tile(taps.reshape(1, 1, 1, 3), (c, 1, 1, 1))), groups=c).data[:, :, 1:-1, :]
        gy = F.conv2d(t, Tensor(np.tile(taps.reshape(1, 1, 3, 1), (c, 1, 1, 1))), groups=c).data[:, :, :, 1:-1]
    magnitude = np.sqrt(gx ** 2 + gy ** 2)
    strongest = magnitude.argmax(axis=1)[:, None]
    gx, gy = (np.take_along_axis(g, strongest, axis=1)[:, 0] for g in (gx, gy))
    return np.take_along_axis(magnitude, strongest, axis=1)[:, 0], np.mod(np.arctan2(gy, gx), np.pi)


def hog(images, cell=CELL, bins=BINS, eps=1.0):
    """Histograms of oriented gradients, block-normalised (Dalal & Triggs 2005).

    images: (N, C, H, W) float with H and W multiples of ``cell`` -> (N, 4 bins, H/cell - 1, W/cell - 1).

    1. ``gradients``: magnitude m and unsigned orientation theta of every pixel.
    2. Votes: bin b is centred on b pi / bins; a pixel at p = theta bins / pi gives m (1 - (p - floor p)) to
       bin floor(p) and m (p - floor p) to the next bin (mod bins), so an orientation on a bin centre votes
       for that bin alone.
    3. Cells: the votes summed over each cell x cell square (``F.avg_pool2d`` times cell^2): (N, bins, H/cell, W/cell).
    4. Blocks: the 2 x 2 cells starting at every cell (stride one cell), their 4 bins values concatenated
       and L2-normalised, v / sqrt(|v|^2 + eps^2); eps (in units of summed gradient magnitude) keeps the
       faint gradients of smooth regions from being blown up to full strength."""
    x = _images(images, "hog")
    if cell < 1 or bins < 2:
        raise ValueError(f"hog: need cell >= 1 and bins >= 2, got cell={cell}, bins={bins}")
    h, w = x.shape[2:]
    if h % cell or w % cell or h < 2 * cell or w < 2 * cell:
        raise ValueError(f"hog: image size {h}x{w} must be a multiple of cell={cell} and hold at least 2x2 cells")
    magnitude, theta = gradients(x)
    position = theta * bins / np.pi
    lower = np.floor(position)
    upper_share = position - lower
    lower = lower.astype(np.int64) % bins
    votes = np.zeros((x.shape[0], bins, h, w), dtype=x.dtype)
    for b in range(bins):
        votes[:, b] = magnitude * np.where(lower == b, 1 - upper_share, 0) + \
            magnitude * np.where((lower + 1) % bins == b, upper_share, 0)
    with no_grad():
        cells = F.avg_pool2d(Tensor(votes), cell).data * cell ** 2
    blocks = np.concatenate([cells[:, :, :-1, :-1], cells[:, :, :-1, 1:], cells[:, :, 1:, :-1], cells[:, :, 1:, 1:]],
                            axis=1)
    return blocks / np.sqrt((blocks ** 2).sum(axis=1, keepdims=True) + eps ** 2)


def windows_per_side(size, scale, cell=CELL, window=WINDOW, margin=MARGIN):
    """How many windows fit along a side of ``size`` pixels at ``scale``: the image resized to
    S = round(size scale) pixels, padded by ``margin`` cells on each side, holds
    n = floor(S / cell) + 2 margin cells, so n - window + 1 windows (one per cell of stride); at least 1 window
    is needed (else a ValueError)."""
    scaled = int(round(size * scale))
    count = scaled // cell + 2 * margin - window + 1
    if scaled < cell or count < 1:
        raise ValueError(f"windows_per_side: at scale {scale} a {size}-px side becomes {scaled} px, "
                         f"too small for a window of {window} cells of {cell} px (margin {margin})")
    return count


def pyramid_windows(images, scales, cell=CELL, window=WINDOW, margin=MARGIN, eps=1.0):
    """The HOG blocks of ``images`` at each scale, and the box of every window.

    images: (N, C, H, W) float. Returns one (features, boxes) pair per scale s:
    features (N, 4 bins, n_y + window - 2, n_x + window - 2): the blocks of the image resized to
    round(H s) x round(W s) (``F.interpolate_bilinear``), cropped to whole cells and padded by ``margin``
    cells (edges replicated); boxes (n_y, n_x, 4): window (i, j) spans cells i .. i + window - 1, and its box
    is its central part, cells i + margin .. i + window - margin - 1, mapped back to the original pixels
    (divided by the resizing factor). n_y, n_x: ``windows_per_side``."""
    x = _images(images, "pyramid_windows")
    h, w = x.shape[2:]
    out = []
    for scale in scales:
        n_y, n_x = windows_per_side(h, scale, cell, window, margin), windows_per_side(w, scale, cell, window, margin)
        sh, sw = int(round(h * scale)), int(round(w * scale))
        with no_grad():
            resized = x if (sh, sw) == (h, w) else F.interpolate_bilinear(Tensor(np.ascontiguousarray(x)),
                                                                          size=(sh, sw)).data
        resized = resized[:, :, :sh // cell * cell, :sw // cell * cell]
        pad = margin * cell
        padded = np.pad(resized, ((0, 0), (0, 0), (pad, pad), (pad, pad)), mode="edge")
        features = hog(padded, cell, BINS, eps)
        i, j = np.meshgrid(np.arange(n_y), np.arange(n_x), indexing="ij")
        fy, fx = sh / h, sw / w
        boxes = np.stack([i * cell / fy, j * cell / fx, (i + window - 2 * margin) * cell / fy,
                          (j + window - 2 * margin) * cell / fx], axis=-1)
        out.append((features, boxes))
    return out


def box_iou(a, b):
    """Intersection over union of every box of ``a`` (K, 4) with every box of ``b`` (M, 4) -> (K, M):
    |A n B| / (|A| + |B| - |A n B|), boxes (y0, x0, y1, x1) with y1, x1 exclusive; 0 where both are empty."""
    a, b = np.asarray(a, dtype=np.float64).reshape(-1, 4), np.asarray(b, dtype=np.float64).reshape(-1, 4)
    for name, boxes in (("a", a), ("b", b)):
        if ((boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1])).any():
            raise ValueError(f"box_iou: boxes of {name} must have y1 >= y0 and x1 >= x0, got "
                             f"{boxes[(boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1])][:3].tolist()}")
    top, left = np.maximum(a[:, None, 0], b[None, :, 0]), np.maximum(a[:, None, 1], b[None, :, 1])
    bottom, right = np.minimum(a[:, None, 2], b[None, :, 2]), np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(bottom - top, 0, None) * np.clip(right - left, 0, None)
    area = lambda z: (z[:, 2] - z[:, 0]) * (z[:, 3] - z[:, 1])  # noqa: E731
    union = area(a)[:, None] + area(b)[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def nms(boxes, scores, iou=0.3):
    """Greedy non-maximum suppression: take the best-scoring box, drop every box overlapping it by more than
    ``iou`` (``box_iou``), repeat. boxes (K, 4), scores (K,) -> indices of the kept boxes, best first."""
    boxes, scores = np.asarray(boxes, dtype=np.float64).reshape(-1, 4), np.asarray(scores, dtype=np.float64)
    if scores.shape != (len(boxes),):
        raise ValueError(f"nms: {len(boxes)} boxes but scores of shape {scores.shape}")
    order, keep = list(np.argsort(-scores, kind="stable")), []
    overlaps = box_iou(boxes, boxes)
    while order:
        best = order.pop(0)
        keep.append(int(best))
        order = [k for k in order if overlaps[best, k] <= iou]
    return np.array(keep, dtype=np.int64)


def object_boxes(instances):
    """The square box around each thing of an instance map (H, W) (0: no thing; k: the k-th thing):
    {k: (y0, x0, y1, x1)}, centred on the tight box of its visible pixels, side = its longer side.
    Square, like the detector's windows, so a thin pole at any angle is boxed as the square it turns in."""
    ids = np.asarray(instances)
    if ids.ndim != 2:
        raise ValueError(f"object_boxes: need one (H, W) instance map, got shape {ids.shape}")
    boxes = {}
    for k in np.unique(ids[ids > 0]):
        ys, xs = np.nonzero(ids == k)
        cy, cx = (ys.min() + ys.max() + 1) / 2, (xs.min() + xs.max() + 1) / 2
        half = max(ys.max() + 1 - ys.min(), xs.max() + 1 - xs.min()) / 2
        boxes[int(k)] = (cy - half, cx - half, cy + half, cx + half)
    return boxes


def window_targets(boxes, truth_boxes, truth_classes, positive=0.5, negative=0.2):
    """The class each window should predict: boxes (..., 4) windows' boxes, truth_boxes (M, 4), truth_classes (M,)
    in 1..K -> (...) int64: the class of the truth box it overlaps most when that IoU >= ``positive``, 0
    (background) when its IoU with every truth box is below ``negative``, -1 (left out) in between."""
    if not 0 <= negative <= positive <= 1:
        raise ValueError(f"window_targets: need 0 <= negative <= positive <= 1, got {negative}, {positive}")
    shape = np.shape(boxes)[:-1]
    flat = np.asarray(boxes).reshape(-1, 4)
    if len(truth_boxes) == 0:
        return np.zeros(shape, dtype=np.int64)
    overlaps = box_iou(flat, truth_boxes)
    best = overlaps.max(axis=1)
    target = np.where(best >= positive, np.asarray(truth_classes)[overlaps.argmax(axis=1)],
                      np.where(best < negative, 0, -1))
    return target.astype(np.int64).reshape(shape)


class LinearDetector(nn.Module):
    """Scores (background, K classes) for every window: a linear classifier over a window's HOG blocks,
    written as one convolution whose kernel spans the window's (window - 1) x (window - 1) blocks.

    forward: features (N, 4 bins, h, w) -> scores (N, K + 1, h - window + 2, w - window + 2); on one window's
    blocks (h = w = window - 1) that is (N, K + 1, 1, 1), a plain linear classifier."""

    def __init__(self, num_classes, bins=BINS, window=WINDOW):
        super().__init__()
        self.num_classes, self.window = num_classes, window
        self.classifier = nn.Conv2d(4 * bins, num_classes, window - 1)

    def forward(self, features):
        return self.classifier(features)

    def classify(self, windows):
        """The same linear classifier on windows one at a time, as a matrix product (the convolution would
        build a (window - 1)^2-column im2col for a 1 x 1 output): windows (M, 4 bins, window - 1, window - 1)
        -> scores (M, K + 1) = flat(windows) W^T + b, W the convolution's weight flattened to (K + 1, D)."""
        m = windows.shape[0]
        weight = F.reshape(self.classifier.weight, self.num_classes, -1)
        return F.matmul(F.reshape(windows, m, -1), F.transpose(weight, 1, 0)) + self.classifier.bias


def training_windows(pyramid, truth, negatives=8, positive=0.5, negative=0.2, rng=None):
    """The windows to learn from, taken from ``pyramid_windows``'s output for N images.

    truth: per image, (boxes (M, 4), classes (M,) in 1..K) of its objects. Positives: every window of every
    scale whose box overlaps an object's box by IoU >= ``positive`` (``window_targets``; a few windows per
    object, at neighbouring positions and scales, so each object is seen slightly shifted); negatives:
    ``negatives`` windows per image drawn at random (``rng``, default minisegnet's generator) among those
    with IoU < ``negative`` with every object. Returns features (P, 4 bins, window - 1, window - 1), targets (P,)."""
    rng = generator() if rng is None else rng
    if len(truth) != len(pyramid[0][0]):
        raise ValueError(f"training_windows: truth for {len(truth)} images, features for {len(pyramid[0][0])}")
    window = pyramid[0][0].shape[2] - pyramid[0][1].shape[0] + 2
    features, targets = [], []
    for n, (truth_boxes, truth_classes) in enumerate(truth):
        background = []
        for s, (blocks, boxes) in enumerate(pyramid):
            t = window_targets(boxes, np.asarray(truth_boxes).reshape(-1, 4), truth_classes, positive, negative)
            for i, j in zip(*np.nonzero(t > 0)):
                features.append(blocks[n, :, i:i + window - 1, j:j + window - 1])
                targets.append(t[i, j])
            background += [(s, i, j) for i, j in zip(*np.nonzero(t == 0))]
        for k in rng.choice(len(background), min(negatives, len(background)), replace=False):
            s, i, j = background[k]
            features.append(pyramid[s][0][n, :, i:i + window - 1, j:j + window - 1])
            targets.append(0)
    return np.stack(features), np.array(targets, dtype=np.int64)


def hard_negatives(model, pyramid, truth, threshold=0.5, negative=0.2):
    """Dalal & Triggs' second round: the background windows (IoU < ``negative`` with every object of ``truth``,
    as in ``training_windows``) that ``model`` takes for an object, P(background) < ``threshold``.
    Returns their features (P, 4 bins, window - 1, window - 1), to add as negatives and train again."""
    found = []
    model.eval()
    with no_grad():
        for blocks, boxes in pyramid:
            window = blocks.shape[2] - boxes.shape[0] + 2
            p_background = F.softmax(model(Tensor(blocks.astype(np.float32))), axis=1).data[:, 0]
            for n, (truth_boxes, _) in enumerate(truth):
                t = window_targets(boxes, np.asarray(truth_boxes).reshape(-1, 4),
                                   np.ones(len(truth_boxes), dtype=np.int64), negative, negative)
                for i, j in zip(*np.nonzero((t == 0) & (p_background[n] < threshold))):
                    found.append(blocks[n, :, i:i + window - 1, j:j + window - 1])
    model.train()
    d, w = pyramid[0][0].shape[1], pyramid[0][0].shape[2] - pyramid[0][1].shape[0] + 1
    return np.stack(found) if found else np.zeros((0, d, w, w), dtype=pyramid[0][0].dtype)


def train_detector(model, features, targets, epochs=10, batch_size=256, lr=0.01, weight_decay=1e-4):
    """Fit ``model`` (a ``LinearDetector``) on windows: features (M, 4 bins, window - 1, window - 1) float32,
    targets (M,) in 0..K, by mean cross-entropy with Adam (shuffled by minisegnet's generator). Returns the
    mean loss of each epoch."""
    features, targets = np.asarray(features, dtype=np.float32), np.asarray(targets, dtype=np.int64)
    if len(features) != len(targets) or len(features) == 0:
        raise ValueError(f"train_detector: {len(features)} windows and {len(targets)} targets: need as many, "
                         f"at least one")
    if targets.min() < 0 or targets.max() >= model.num_classes:
        raise ValueError(f"train_detector: targets must be in [0, {model.num_classes}), got "
                         f"{targets.min()}..{targets.max()}")
    optimizer = optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    rng, losses = generator(), []
    for _ in range(epochs):
        order, total = rng.permutation(len(features)), 0.0
        for start in range(0, len(order), batch_size):
            batch = order[start:start + batch_size]
            loss = F.cross_entropy(model.classify(Tensor(features[batch])), targets[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss.data) * len(batch)
        losses.append(total / len(order))
    return losses


def detect(model, images, scales, threshold=0.5, nms_iou=0.3, eps=1.0):
    """Every window of every scale scored by ``model`` in one convolution per scale, softmax over
    (background, K classes); a window is a detection of its best non-background class c when
    P(c) >= ``threshold``; ``nms`` over all scales and classes together (one object, one class).
    images (N, C, H, W) -> N ``Detections`` (boxes (k, 4), classes (k,) in 1..K, scores (k,)), best first."""
    if not 0 <= threshold <= 1 or not 0 <= nms_iou <= 1:
        raise ValueError(f"detect: threshold and nms_iou must be in [0, 1], got {threshold}, {nms_iou}")
    found = [[] for _ in range(len(_images(images, "detect")))]
    model.eval()
    with no_grad():
        for features, boxes in pyramid_windows(images, scales, window=model.window, eps=eps):
            p = F.softmax(model(Tensor(features.astype(np.float32))), axis=1).data  # (N, K + 1, n_y, n_x)
            classes = p[:, 1:].argmax(axis=1) + 1
            scores = np.take_along_axis(p, classes[:, None], axis=1)[:, 0]
            for n in range(len(found)):
                keep = scores[n] >= threshold
                found[n].append((boxes[keep], classes[n][keep], scores[n][keep]))
    model.train()
    out = []
    for per_scale in found:
        boxes, classes, scores = (np.concatenate([s[k] for s in per_scale]) for k in range(3))
        kept = nms(boxes, scores, nms_iou)
        out.append(Detections(boxes.reshape(-1, 4)[kept], classes[kept], scores[kept]))
    return out


def smooth(image, size=3):
    """Each pixel replaced by the mean of the size x size pixels around it (``F.avg_pool2d`` over the image with
    its edges replicated): (C, H, W) -> (C, H, W). Per-pixel noise (grass, a thing's speckle) shrinks by about
    ``size``; edges blur by size // 2 pixels."""
    image = np.asarray(image)
    if image.ndim != 3 or size < 1 or size % 2 == 0:
        raise ValueError(f"smooth: need one (C, H, W) image and an odd size >= 1, got shape {image.shape}, size {size}")
    r = size // 2
    padded = np.pad(image, ((0, 0), (r, r), (r, r)), mode="edge")[None].astype(np.float64)
    with no_grad():
        return F.avg_pool2d(Tensor(padded), size, 1).data[0]


def segment_box(image, box, grow=0.25, ring=2, top=0.1):
    """The object's pixels around a detected box: (H, W) bool, True only inside the grown box.

    image (3, H, W), best ``smooth``-ed first; box (y0, x0, y1, x1). A detector's box is only as precise as its
    window grid, so the box is first grown by ``grow`` times its side on every side (clipped to the image);
    the ``ring`` pixels just outside it sample what surrounds the object, and d(c) is a colour's distance to
    the nearest of those samples. The object's colour is the median of the pixels with the largest d (the
    ``top`` share of the grown box, the pixels least like the surround). A pixel is the object's when its
    colour is nearer the object's colour than d(c) (a nearest-neighbour split between one object colour and
    the colours around it), and only the largest 4-connected region of such pixels is kept (one object per box)."""
    from .metrics import connected_components

    image = np.asarray(image, dtype=np.float64)
    if image.ndim != 3:
        raise ValueError(f"segment_box: need one (C, H, W) image, got shape {image.shape}")
    if not 0 < top <= 1 or grow < 0 or ring < 1:
        raise ValueError(f"segment_box: need 0 < top <= 1, grow >= 0 and ring >= 1, got {top}, {grow}, {ring}")
    h, w = image.shape[1:]
    gy, gx = grow * (box[2] - box[0]), grow * (box[3] - box[1])
    y0, x0 = max(int(np.floor(box[0] - gy)), 0), max(int(np.floor(box[1] - gx)), 0)
    y1, x1 = min(int(np.ceil(box[2] + gy)), h), min(int(np.ceil(box[3] + gx)), w)
    mask = np.zeros((h, w), dtype=bool)
    if y1 <= y0 or x1 <= x0:
        return mask
    outer = np.zeros((h, w), dtype=bool)
    outer[max(y0 - ring, 0):y1 + ring, max(x0 - ring, 0):x1 + ring] = True
    outer[y0:y1, x0:x1] = False
    if not outer.any():  # the box is the whole image: its own border is the surround
        outer[[0, -1], :], outer[:, [0, -1]] = True, True
    surround = image[:, outer].T                                        # (S, C)
    inside = image[:, y0:y1, x0:x1].reshape(image.shape[0], -1).T       # (P, C)
    d = np.sqrt(((inside[:, None, :] - surround[None, :, :]) ** 2).sum(axis=-1)).min(axis=1)
    colour = np.median(inside[d >= np.quantile(d, 1 - top)], axis=0)
    near = (np.sqrt(((inside - colour) ** 2).sum(axis=1)) < d).reshape(y1 - y0, x1 - x0)
    regions, count = connected_components(near)
    if count:
        mask[y0:y1, x0:x1] = regions == np.bincount(regions.ravel())[1:].argmax() + 1
    return mask


def segment_detections(image, detections, smoothing=3, **segment):
    """One label map (H, W) int64 from an image's ``Detections``: the image ``smooth``-ed (``smoothing`` x
    ``smoothing``), each box's ``segment_box`` pixels get its class
    (1..K), the rest 0; boxes are painted from the lowest score to the highest, so the best one wins where
    two overlap."""
    labels = np.zeros(np.shape(image)[1:], dtype=np.int64)
    smoothed = smooth(image, smoothing)
    for k in np.argsort(detections.scores, kind="stable"):
        labels[segment_box(smoothed, detections.boxes[k], **segment)] = detections.classes[k]
    return labels
