"""Segmentation metrics, the FCN paper's definitions (Long, Shelhamer & Darrell, sec. 5).

Everything comes from one confusion matrix ``n`` (rows: ground truth i, columns: prediction j;
n_ij = pixels of class i predicted as j), with t_i = sum_j n_ij pixels of class i:

    pixel accuracy       sum_i n_ii / sum_i t_i
    mean accuracy        (1/n_cl) sum_i n_ii / t_i
    mean IU              (1/n_cl) sum_i n_ii / (t_i + sum_j n_ji - n_ii)
    frequency weighted   (sum_k t_k)^-1 sum_i t_i n_ii / (t_i + sum_j n_ji - n_ii)

Pixels labelled ``ignore_index`` are excluded. The means skip NaNs (numpy.nanmean), as the FCN
reference code (``score.py``: ``iu = diag / (rows + cols - diag)``, then ``nanmean``) does:

* a class absent from the ground truth (t_i = 0) has no accuracy of its own (NaN);
* a class has no IU of its own only when it is absent from the ground truth *and* never
  predicted (t_i + sum_j n_ji = 0). A class that is predicted but absent has IU 0 and
  counts in the mean: its false positives are a real error.

The frequency-weighted IU weights each class by t_i, so a class absent from the ground
truth weighs nothing either way.

The last section (``connected_components``, ``count_instances``) is about what no confusion matrix
sees: how many objects a label map holds, against how many its connected regions suggest.
"""
from collections import namedtuple

import numpy as np

from .backend import to_device


def _as_numpy(a):
    data = getattr(a, "data", a)
    return to_device(np.asarray(data) if not hasattr(data, "get") else data, "cpu")


def _labels(pred, target, op):
    """pred and target as integer label arrays of the same shape, or a clear error: a prediction of
    another shape (even with as many pixels) is not pixel-aligned with its target, and a float label
    such as 1.7 is not a class (casting would silently count it as class 1)."""
    pred, target = _as_numpy(pred), _as_numpy(target)
    if pred.shape != target.shape:
        raise ValueError(f"{op}: prediction shape {pred.shape} differs from target shape {target.shape}")
    labels = []
    for name, a in (("prediction", pred), ("target", target)):
        if a.dtype.kind == "f":
            bad = ~np.isfinite(a) | (a != np.floor(a))
            if bad.any():
                raise ValueError(f"{op}: {name} labels must be whole class numbers, got "
                                 f"{np.unique(a[bad])[:10].tolist()}")
            a = a.astype(np.int64)
        elif a.dtype.kind not in "iub":
            raise ValueError(f"{op}: {name} labels must be integers, got dtype {a.dtype}")
        labels.append(a)
    return labels


def confusion_matrix(pred, target, num_classes, ignore_index=255):
    """(num_classes, num_classes) int64 counts; rows ground truth, columns prediction.

    pred and target: integer labels of the same shape (any shape); float arrays are accepted
    only when every value is a whole number."""
    pred, target = _labels(pred, target, "confusion_matrix")
    pred, target = pred.ravel(), target.ravel()
    keep = target != ignore_index
    pred, target = pred[keep], target[keep]
    for name, labels in (("target", target), ("prediction", pred)):
        bad = (labels < 0) | (labels >= num_classes)
        if bad.any():
            raise ValueError(f"confusion_matrix: {name} labels {np.unique(labels[bad])[:10].tolist()} are outside "
                             f"[0, {num_classes}) and are not ignore_index={ignore_index}")
    return np.bincount(num_classes * target.astype(np.int64) + pred.astype(np.int64),
                       minlength=num_classes ** 2).reshape(num_classes, num_classes)


def scores_from_confusion(n):
    """The FCN paper's four numbers, plus per-class accuracy and IU, from a confusion matrix."""
    n = np.asarray(n, dtype=np.float64)
    correct = np.diag(n)
    truth = n.sum(axis=1)           # t_i
    predicted = n.sum(axis=0)       # sum_j n_ji
    union = truth + predicted - correct
    with np.errstate(invalid="ignore", divide="ignore"):
        per_class_accuracy = np.where(truth > 0, correct / truth, np.nan)
        per_class_iou = np.where(union > 0, correct / union, np.nan)  # NaN: neither in truth nor predicted
    total = truth.sum()
    present = truth > 0  # these classes have union > 0, so an IU
    return {
        "pixel_accuracy": correct.sum() / total if total else np.nan,
        "mean_accuracy": np.nanmean(per_class_accuracy) if present.any() else np.nan,
        "mean_iou": np.nanmean(per_class_iou) if (union > 0).any() else np.nan,
        "fw_iou": (truth[present] * per_class_iou[present]).sum() / total if total else np.nan,
        "per_class_iou": per_class_iou,
        "per_class_accuracy": per_class_accuracy,
    }


def confusion_among(confusion, classes):
    """The rows and columns of ``classes`` only, in that order: a (k, k) confusion matrix of the pixels
    that are one of these classes and were predicted as one of them (e.g. the things: which shape was
    taken for which)."""
    n = np.asarray(confusion)
    classes = list(classes)
    if n.ndim != 2 or n.shape[0] != n.shape[1]:
        raise ValueError(f"confusion_among: need a square confusion matrix, got shape {n.shape}")
    if not classes or min(classes) < 0 or max(classes) >= n.shape[0]:
        raise ValueError(f"confusion_among: classes {classes} must be non-empty and within [0, {n.shape[0]})")
    return n[np.ix_(classes, classes)]


def right_shape_rate(confusion, things):
    """Of the pixels that belong to a thing and were predicted as *some* thing, the share predicted as the
    right one:

        sum_{i in T} n_ii / sum_{i in T, j in T} n_ij        (T: the thing classes)

    Things share one colour and texture distribution in the "things and stuff" data, so only an object's
    shape tells a disc from a square; this rate asks "when the net finds an object, does it name the
    right shape?", apart from whether it finds objects at all (a thing predicted as stuff, or stuff as
    a thing, counts in neither part). NaN when no thing pixel was predicted as a thing."""
    among = confusion_among(confusion, things).astype(np.float64)
    total = among.sum()
    return float(np.trace(among) / total) if total else float("nan")


class SegmentationMetrics:
    """Accumulate a confusion matrix over batches; ``compute()`` gives the FCN paper's metrics."""

    def __init__(self, num_classes, ignore_index=255):
        self.num_classes, self.ignore_index = num_classes, ignore_index
        self.confusion = np.zeros((num_classes, num_classes), dtype=np.int64)

    def update(self, pred, target):
        """pred: predicted labels (N, H, W) (or class scores (N, C, H, W), argmax taken); target: (N, H, W)."""
        pred = _as_numpy(pred)
        if pred.ndim == _as_numpy(target).ndim + 1 and np.issubdtype(pred.dtype, np.floating):
            pred = pred.argmax(axis=1)  # only scores are floats: integer labels of another shape are refused below
        self.confusion += confusion_matrix(pred, target, self.num_classes, self.ignore_index)
        return self

    def reset(self):
        self.confusion[:] = 0

    def compute(self):
        return scores_from_confusion(self.confusion)


def boundary_mask(target, width, ignore_index=255):
    """Pixels within ``width`` pixels (Chebyshev distance) of a ground-truth label boundary: the
    "trimap" band of DeepLab's boundary evaluation. target: (H, W) or (N, H, W)."""
    target = _as_numpy(target)
    if target.ndim == 2:
        return boundary_mask(target[None], width, ignore_index)[0]
    edge = np.zeros(target.shape, dtype=bool)
    for axis in (1, 2):
        a = np.take(target, range(target.shape[axis] - 1), axis=axis)
        b = np.take(target, range(1, target.shape[axis]), axis=axis)
        differs = (a != b) | (a == ignore_index) | (b == ignore_index)
        lo = [slice(None)] * 3
        hi = [slice(None)] * 3
        lo[axis], hi[axis] = slice(0, -1), slice(1, None)
        edge[tuple(lo)] |= differs
        edge[tuple(hi)] |= differs
    band = edge.copy()
    for _ in range(max(0, width - 1)):  # grow by one pixel in every direction (3x3 dilation)
        grown = band.copy()
        grown[:, 1:] |= band[:, :-1]
        grown[:, :-1] |= band[:, 1:]
        grown[:, :, 1:] |= grown[:, :, :-1].copy()
        grown[:, :, :-1] |= grown[:, :, 1:].copy()
        band = grown
    return band & (target != ignore_index)


def boundary_accuracy(pred, target, width, ignore_index=255):
    """Pixel accuracy within ``width`` pixels of a ground-truth boundary (the trimap measure DeepLab uses
    to show what output resolution buys). pred: labels (N, H, W) or scores (N, C, H, W)."""
    pred, target = _as_numpy(pred), _as_numpy(target)
    if pred.ndim == target.ndim + 1:
        pred = pred.argmax(axis=1)
    pred, target = _labels(pred, target, "boundary_accuracy")
    band = boundary_mask(target, width, ignore_index)
    if not band.any():
        return np.nan
    return float((pred[band] == target[band]).mean())


# --- Accuracy by distance to the nearest boundary (lesson 8) -----------------------------------------------

def boundary_distance(target, ignore_index=255):
    """Each pixel's Chebyshev distance to the nearest ground-truth label boundary, counted so that

        boundary_mask(target, w) == (boundary_distance(target) <= w)      for every width w >= 1:

    1 for the pixels on either side of a label change, 2 for their neighbours, and so on. A scene
    without any boundary gets inf everywhere; pixels labelled ``ignore_index`` get NaN (they are
    not scored, and their neighbours count as boundary pixels, as in ``boundary_mask``).
    target: (H, W) or (N, H, W) integer labels -> float64 of the same shape."""
    target = _as_numpy(target)
    if target.ndim == 2:
        return boundary_distance(target[None], ignore_index)[0]
    if target.ndim != 3:
        raise ValueError(f"boundary_distance: target must be (H, W) or (N, H, W), got shape {target.shape}")
    ignored = target == ignore_index
    reached = boundary_mask(target, 1, ignore_index) | ignored  # the edge pixels boundary_mask grows from
    distance = np.full(target.shape, np.inf)
    distance[reached] = 1
    step = 1
    while not reached.all() and reached.any():  # grow by one pixel in every direction, as boundary_mask does
        grown = reached.copy()
        grown[:, 1:] |= reached[:, :-1]
        grown[:, :-1] |= reached[:, 1:]
        grown[:, :, 1:] |= grown[:, :, :-1].copy()
        grown[:, :, :-1] |= grown[:, :, 1:].copy()
        step += 1
        if (grown == reached).all():  # scenes without a boundary never fill; stop when nothing grows
            break
        distance[grown & ~reached] = step
        reached = grown
    distance[ignored] = np.nan
    return distance


def accuracy_by_boundary_distance(pred, target, edges, classes=None, ignore_index=255):
    """Pixel accuracy in bands of distance to the nearest ground-truth boundary (``boundary_distance``).

    edges: increasing whole numbers e_1 < ... < e_k; the k + 1 bands are distances 1..e_1,
    e_1+1..e_2, ..., e_(k-1)+1..e_k, and more than e_k (scenes without a boundary included).
    classes: count only pixels whose true class is one of these (e.g. ``data.STUFF``), so that
    bands are compared on like pixels; every class when None.
    pred: labels (N, H, W) or scores (N, C, H, W); target: (N, H, W) or (H, W) with pred alike.
    Returns (pixels, accuracy): int64 and float64 arrays of k + 1 entries, accuracy NaN in an
    empty band."""
    pred, target = _as_numpy(pred), _as_numpy(target)
    if pred.ndim == target.ndim + 1:
        pred = pred.argmax(axis=1 if pred.ndim == 4 else 0)
    pred, target = _labels(pred, target, "accuracy_by_boundary_distance")
    edges = np.asarray(edges)
    if edges.ndim != 1 or len(edges) == 0 or (edges < 1).any() or (np.diff(edges) <= 0).any() \
            or (edges != np.floor(edges)).any():
        raise ValueError(f"accuracy_by_boundary_distance: edges must be increasing whole numbers >= 1, "
                         f"got {edges.tolist()}")
    distance = boundary_distance(target, ignore_index)
    scored = ~np.isnan(distance)
    if classes is not None:
        scored &= np.isin(target, np.asarray(classes))
    band = np.searchsorted(edges, distance[scored], side="left")  # d <= e_1 -> 0, ..., d > e_k -> k
    correct = (pred[scored] == target[scored])
    pixels = np.bincount(band, minlength=len(edges) + 1)
    hits = np.bincount(band, weights=correct, minlength=len(edges) + 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        accuracy = np.where(pixels > 0, hits / pixels, np.nan)
    return pixels.astype(np.int64), accuracy


def painted_at_stride(labels, num_classes, stride):
    """What resolution alone allows: the ground truth painted at stride ``stride``.

    labels (N, H, W) become one-hot maps (N, num_classes, H, W), averaged over stride x stride blocks (what
    one score cell of a stride-s net can hold; ceil mode, so edge blocks are partial) and upsampled back
    x stride bilinearly, as the FCNs upsample their scores, then cropped to (H, W). Its argmax is the best a
    net that knew every answer could label if it scored at stride s: the gap between a net and this
    ceiling is learning, not resolution. Returns float32 scores (N, num_classes, H, W). (Lessons 8 and 10.)"""
    from . import functional as F
    from .engine import tensor
    labels = np.asarray(labels)
    one_hot = (labels[:, None] == np.arange(num_classes)[None, :, None, None]).astype(np.float32)
    coarse = F.avg_pool2d(tensor(one_hot), stride, ceil_mode=True)
    return F.interpolate_bilinear(coarse, scale_factor=stride).numpy()[:, :, :labels.shape[1], :labels.shape[2]]


# --- Instances: what semantic labels cannot count ------------------------------------------------
def connected_components(mask):
    """The 4-connected regions of a boolean mask, numbered.

    mask: (H, W), True (non-zero) on the pixels to group. Two mask pixels are in one component when a
    path of mask pixels joins them, each step one pixel up, down, left or right (4-connectivity: pixels
    that touch only at a corner stay apart). Returns (components, count): components (H, W) int64, 0 off
    the mask and 1..count on it, numbered in the raster order (row by row) of each component's first
    pixel. A flood fill from each mask pixel not yet reached, in plain Python: O(H W), a few ms at 64x64."""
    mask = np.asarray(_as_numpy(mask)).astype(bool)
    if mask.ndim != 2:
        raise ValueError(f"connected_components: need an (H, W) mask, got shape {mask.shape}")
    height, width = mask.shape
    components = np.zeros(mask.shape, dtype=np.int64)
    count = 0
    for y, x in zip(*np.nonzero(mask)):  # raster order
        if components[y, x]:
            continue
        count += 1
        components[y, x] = count
        stack = [(y, x)]
        while stack:
            i, j = stack.pop()
            for a, b in ((i - 1, j), (i + 1, j), (i, j - 1), (i, j + 1)):
                if 0 <= a < height and 0 <= b < width and mask[a, b] and not components[a, b]:
                    components[a, b] = count
                    stack.append((a, b))
    return components, count


InstanceCount = namedtuple("InstanceCount", "instances regions merged")


def count_instances(labels, instances, classes):
    """What one scene's semantic labels can count of its objects, against the objects themselves.

    labels: (H, W) class labels; instances: (H, W) instance ids, 0 where there is none (e.g. the
    ``instances`` of ``ThingsAndStuff``); classes: the countable classes (e.g. ``data.THINGS``).
    For each class c, the regions are the ``connected_components`` of ``labels == c``. Returns
    (instances, regions, merged):

        instances  objects (distinct non-zero ids) with at least one pixel labelled one of ``classes``
        regions    4-connected regions of those classes in the labels: what one can count from them
        merged     objects that share a region with another object of their class: touching (or
                   overlapping) things of one class are one region of the label map, so counting
                   regions cannot tell them apart

    An object cut in two by another thing in front of it counts once in ``instances`` and twice in
    ``regions``, so regions and instances can differ both ways."""
    labels, ids = np.asarray(_as_numpy(labels)), np.asarray(_as_numpy(instances))
    if labels.ndim != 2 or labels.shape != ids.shape:
        raise ValueError(f"count_instances: need (H, W) labels and instance ids of one shape, got {labels.shape} "
                         f"and {ids.shape}")
    objects, merged, regions = set(), set(), 0
    for c in classes:
        components, count = connected_components(labels == c)
        regions += count
        for k in range(1, count + 1):
            inside = set(np.unique(ids[components == k]).tolist()) - {0}
            objects |= inside
            if len(inside) > 1:
                merged |= inside
    return InstanceCount(len(objects), regions, len(merged))

