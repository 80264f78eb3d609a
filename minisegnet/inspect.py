"""Seeing inside the network: receptive fields (analytic and empirical), the effective receptive
field, top-activating patches, and occlusion sensitivity.

Analytic receptive fields follow Araujo, Norris & Sim, "Computing Receptive Fields of
Convolutional Neural Networks" (Distill, 2019). For layers l = 1..L with kernel k_l (dilation
counted as an effective kernel d(k-1)+1), stride s_l and left padding p_l, from the input up,
on each axis (rows and columns separately: a 1x7 kernel widens the field only along columns):

    r_l = r_{l-1} + (k_l - 1) j_{l-1}        receptive field size (r_0 = 1)
    j_l = j_{l-1} s_l                        effective stride, "jump" (j_0 = 1)
    P_l = P_{l-1} + p_l j_{l-1}              effective padding (P_0 = 0)

and unit u of layer l sees input pixels u j_l - P_l ... u j_l - P_l + r_l - 1 (padding does not
change the size, only where the window sits): a rectangle, rows and columns each by their own
numbers. The recursion is ``functional._geometry.fields_after_each``, the same code that places
the units for FCN's crop offsets (``functional.crop_offset``), so the two cannot disagree; P_l is
read from it as (r_l - 1)/2 minus the centre of unit 0's field.
"""
import heapq
from collections import namedtuple

import numpy as np

from . import functional as F
from .backend import to_device
from .engine import no_grad, tensor
from .functional._geometry import fields_after_each
from .functional.activation import softmax_array


class LayerRF(namedtuple("LayerRF", "name kind kernel stride padding dilation sizes jumps effective_paddings")):
    """One row of a receptive-field table: the layer (kernel, stride, padding, dilation as (rows, cols)) and
    the field of its units per axis (rows, cols): ``sizes`` r, ``jumps`` j and ``effective_paddings`` P, in
    input pixels. Unit (y, x) sees rows y j[0] - P[0] ... + r[0] - 1 and columns x j[1] - P[1] ... + r[1] - 1.

    ``size``, ``jump`` and ``effective_padding`` give the single number of a square field (the Distill
    tables' columns) and refuse a field that differs between rows and columns."""

    def _one(self, what, pair):
        if pair[0] != pair[1]:
            raise ValueError(f"receptive_field: {self.name} ({self.kind}) has {what} {pair[0]} along rows but "
                             f"{pair[1]} along columns; read .{what}s for both")
        return pair[0]

    @property
    def size(self):
        return self._one("size", self.sizes)

    @property
    def jump(self):
        return self._one("jump", self.jumps)

    @property
    def effective_padding(self):
        return self._one("effective_padding", self.effective_paddings)


def spatial_layers(model_or_layers, prefix=""):
    """(name, layer) for every convolution / pooling / resizing layer, in the order data meets them."""
    if isinstance(model_or_layers, (list, tuple)):
        items = [(f"{prefix}{i}", layer) for i, layer in enumerate(model_or_layers)]
    elif getattr(model_or_layers, "coordinate_kind", None) is not None:
        return [(prefix.rstrip(".") or type(model_or_layers).__name__, model_or_layers)]
    else:
        items = [(f"{prefix}{name}", child) for name, child in model_or_layers._modules.items()]
    found = []
    for name, layer in items:
        if getattr(layer, "coordinate_kind", None) is not None:
            found.append((name, layer))
        elif hasattr(layer, "_modules"):
            found += spatial_layers(layer, prefix=f"{name}.")
    return found


def receptive_field_table(layers):
    """One LayerRF row per spatial layer of a path from the input (a list, or an nn.Sequential)."""
    named = spatial_layers(layers)
    for name, layer in named:
        if layer.coordinate_kind in ("transposed", "resize"):
            raise ValueError(f"receptive_field: {name} is an upsampling layer ({type(layer).__name__}); describe "
                             "each branch from the input up to its score layer, before any upsampling")
    rows = []
    for (name, layer), fields in zip(named, fields_after_each([layer for _, layer in named])):
        sizes = tuple(_whole(f.size) for f in fields)
        jumps = tuple(_whole(f.jump) for f in fields)
        paddings = tuple(_whole((f.size - 1) / 2 - f.centre) for f in fields)
        rows.append(LayerRF(name, type(layer).__name__, tuple(layer.kernel_size), tuple(layer.stride),
                            tuple(layer.padding), tuple(getattr(layer, "dilation", (1, 1))), sizes, jumps, paddings))
    return rows


def _whole(fraction):
    """Window layers alone keep every field number a whole number of pixels."""
    assert fraction.denominator == 1, fraction
    return int(fraction)


def receptive_field(model_or_layers):
    """Analytic receptive fields. For a plain stack (list or nn.Sequential): a list of LayerRF rows.
    For a model with several branches (FCN skips, a dilated net with a context module, an image
    pyramid): a dict branch name -> rows, from the model's ``receptive_field_branches()``."""
    branches = getattr(model_or_layers, "receptive_field_branches", None)
    if branches is None:
        return receptive_field_table(model_or_layers)
    return {name: receptive_field_table(layers) for name, layers in branches().items()}


def unit_box(row, y, x):
    """The input pixels (top, bottom, left, right), inclusive, that unit (y, x) of a layer sees."""
    (size_y, size_x), (jump_y, jump_x), (pad_y, pad_x) = row.sizes, row.jumps, row.effective_paddings
    top, left = y * jump_y - pad_y, x * jump_x - pad_x
    return top, top + size_y - 1, left, left + size_x - 1


def clip_box(box, height, width):
    top, bottom, left, right = box
    return max(top, 0), min(bottom, height - 1), max(left, 0), min(right, width - 1)


def _unit_boxes(row, h, w):
    """(h, w, 4): ``unit_box`` of every unit of an h x w map."""
    return np.array([[unit_box(row, y, x) for x in range(w)] for y in range(h)])


def _fields_inside(boxes, height, width):
    """(h, w) bool: the units whose whole field lies inside a height x width image (they saw no padding)."""
    return (boxes[..., 0] >= 0) & (boxes[..., 1] <= height - 1) & (boxes[..., 2] >= 0) & (boxes[..., 3] <= width - 1)


# The crop offset between two layers' maps, as FCN's skip fusion uses it, is ``functional.crop_offset``;
# it is re-exported here beside the receptive fields it is computed from.
crop_offset = F.crop_offset


# --- empirical receptive fields ------------------------------------------------------------------
def input_gradient(fn, inputs, unit, channel=None):
    """|d fn(x)[n, channel, y, x] / d x| summed over input channels: (N, H, W), one map per image.
    channel=None takes every channel at that position (the sum of their gradients)."""
    x = tensor(np.asarray(inputs, dtype=np.float64), requires_grad=True)
    out = fn(x)
    seed = np.zeros(out.shape)
    seed[:, slice(None) if channel is None else channel, unit[0], unit[1]] = 1.0
    out.backward(to_device(seed, out.device) if out.device != "cpu" else seed)
    return np.abs(to_device(x.grad, "cpu")).sum(axis=1)


def gradient_receptive_field(fn, input_shape, unit, channel=None, trials=4, seed=0):
    """Which input pixels have a non-zero gradient for one unit: the union over ``trials`` random
    inputs (max pooling and ReLU route the gradient along data-dependent paths, so one input can
    light up less than the whole field). Returns (mask (H, W) bool, box (top, bottom, left, right))."""
    rng = np.random.default_rng(seed)
    grads = input_gradient(fn, rng.standard_normal((trials,) + tuple(input_shape)), unit, channel)
    mask = (grads > 0).any(axis=0)
    rows, cols = np.nonzero(mask)
    box = (rows.min(), rows.max(), cols.min(), cols.max()) if rows.size else None
    return mask, box


def effective_receptive_field(build_fn, input_shape, unit, channel=None, trials=8, seed=0):
    """Luo et al. (2016): the mean absolute input gradient of one unit over random inputs and random
    weights (``build_fn(seed)`` returns a freshly initialised network function). It fills only the
    centre of the theoretical receptive field, falling off like a Gaussian."""
    rng = np.random.default_rng(seed)
    total = np.zeros(input_shape[1:])
    for t in range(trials):
        fn = build_fn(seed + t)
        total += input_gradient(fn, rng.standard_normal((1,) + tuple(input_shape)), unit, channel)[0]
    return total / trials


# --- what units respond to -------------------------------------------------------------------------
def top_activating_patches(activation_fn, images, channel, row, k=9, batch_size=32, fill=0.5):
    """R-CNN's visualisation (Girshick et al.): scan ``images`` (N, 3, H, W) in batches, keep the k
    largest activations of one channel of a layer (``activation_fn(x)`` returns that layer's map),
    and crop each one's receptive field (``row``: the layer's LayerRF) from its image, padded with
    ``fill`` where the field leaves the image. Returns [(value, image index, (y, x), patch (3, r_rows, r_cols))]."""
    best = []  # a min-heap of (value, image, y, x)
    with no_grad():
        for start in range(0, len(images), batch_size):
            acts = activation_fn(tensor(images[start:start + batch_size])).numpy()[:, channel]
            for i, a in enumerate(acts):
                flat = np.argsort(a.ravel())[-k:]
                for f in flat:
                    y, x = divmod(int(f), a.shape[1])
                    item = (float(a[y, x]), start + i, y, x)
                    if len(best) < k:
                        heapq.heappush(best, item)
                    elif item > best[0]:
                        heapq.heapreplace(best, item)
    results = []
    for value, index, y, x in sorted(best, reverse=True):
        top, bottom, left, right = unit_box(row, y, x)
        image = images[index]
        patch = np.full((image.shape[0],) + row.sizes, fill, dtype=image.dtype)
        t, b, l, r = clip_box((top, bottom, left, right), image.shape[1], image.shape[2])
        patch[:, t - top:b - top + 1, l - left:r - left + 1] = image[:, t:b + 1, l:r + 1]
        results.append((value, index, (y, x), patch))
    return results


class TopActivation(namedtuple("TopActivation", "index y x value field box")):
    """One of a channel's top activations: unit (y, x) of image ``index`` fired with ``value``. ``field`` is the
    unit's whole receptive field (top, bottom, left, right), inclusive, in input pixels (it may reach past the
    image, where the network saw zero padding); ``box`` is the part of it inside the image:
    ``image[:, top:bottom + 1, left:right + 1]`` is the crop."""


def top_activations(activation_fn, images, channel, k, row, one_per_image=True, inside=False, batch_size=32):
    """R-CNN's question for one unit (Girshick et al.): which image regions make it fire hardest?

    ``activation_fn(x)`` maps a batch (n, C_in, H, W) of ``images`` (N, C_in, H, W) to a layer's map
    (n, C, h, w); ``row`` is that layer's LayerRF (``receptive_field(layers)[-1]``), which places unit (y, x)
    in the image. The images are scanned in batches of ``batch_size`` without keeping the maps.

    Returns the k largest activations a[n, channel, y, x] as TopActivation(index, y, x, value, field, box),
    largest first; equal values in the order (image index, y, x), the first in row-major order first.
    With ``one_per_image`` (the default) each image contributes at most one, its largest,

        top-k of  { (max_{y,x} a[n, channel, y, x], n) : n = 0 .. N-1 },

    so the k crops come from k different images (without it, one image's neighbouring units, which see
    almost the same pixels, can fill the whole list). With ``inside`` only units whose whole receptive field
    lies inside the image compete (0 <= y j - P and y j - P + r - 1 <= H - 1, the same for columns), so each
    crop shows everything its unit saw; a unit on the border also sees zero padding, which no crop can show.
    ``channel`` may also be a sequence of channels: the network then runs once and the result is one such
    list per channel, in that order."""
    several = not isinstance(channel, (int, np.integer))
    channels = [int(c) for c in channel] if several else [int(channel)]
    images = np.asarray(images)
    if images.ndim != 4:
        raise ValueError(f"top_activations: images must be (N, C, H, W), got shape {images.shape}")
    n_images, height, width = images.shape[0], images.shape[2], images.shape[3]
    if k < 1:
        raise ValueError(f"top_activations: k must be at least 1, got k={k}")
    if one_per_image and k > n_images:
        raise ValueError(f"top_activations: k={k} activations from different images (one_per_image=True), but "
                         f"there are only {n_images} images")
    # candidates per channel: (value, image, y, x) arrays, at most k kept between batches
    best = [tuple(np.empty(0, dtype=d) for d in (np.float64, np.int64, np.int64, np.int64)) for _ in channels]
    with no_grad():
        for start in range(0, n_images, batch_size):
            acts = activation_fn(tensor(images[start:start + batch_size])).numpy()
            n, depth, h, w = acts.shape
            if start == 0:
                wrong = [c for c in channels if not 0 <= c < depth]
                if wrong:
                    raise ValueError(f"top_activations: channel {wrong[0]} does not exist; the layer has {depth} "
                                     f"channels (0 .. {depth - 1})")
                allowed = np.ones((h, w), dtype=bool)
                if inside:
                    allowed = _fields_inside(_unit_boxes(row, h, w), height, width)
                    if not allowed.any():
                        raise ValueError(f"top_activations: inside=True, but no unit's receptive field "
                                         f"({row.sizes[0]}x{row.sizes[1]} px) lies inside the {height}x{width} "
                                         "images")
                units = int(allowed.sum())
                if k > n_images * units:
                    where = " with the whole field inside" if inside else ""
                    raise ValueError(f"top_activations: k={k} activations, but {n_images} images x {units} units"
                                     f"{where} ({h}x{w} maps) give only {n_images * units}")
            for c, channel_maps in enumerate(acts[:, channels].transpose(1, 0, 2, 3)):
                if np.isnan(channel_maps).any():
                    raise ValueError(f"top_activations: channel {channels[c]} has NaN activations")
                flat = np.where(allowed, channel_maps, -np.inf).reshape(n, h * w)  # (-inf: never chosen)
                if one_per_image:  # each image's largest unit (argmax: the first in row-major order on ties)
                    where = flat.argmax(axis=1)
                    index, cell = np.arange(n), where
                else:
                    index, cell = np.divmod(np.arange(n * h * w), h * w)
                values = flat[index, cell].astype(np.float64)
                y, x = np.divmod(cell, w)
                merged = [np.concatenate(pair) for pair in zip(best[c], (values, start + index, y, x))]
                order = np.lexsort((merged[3], merged[2], merged[1], -merged[0]))[:k]
                best[c] = tuple(m[order] for m in merged)
    results = []
    for values, index, ys, xs in best:
        found = []
        for value, i, y, x in zip(values, index, ys, xs):
            field = unit_box(row, int(y), int(x))
            found.append(TopActivation(int(i), int(y), int(x), float(value), field, clip_box(field, height, width)))
        results.append(found)
    return results if several else results[0]


def unit_responses(activation_fn, images, labels, row, classes, batch_size=32):
    """What a layer's units say where they see one of ``classes``: the data of a linear probe.

    ``activation_fn`` maps a batch (n, C_in, H, W) of ``images`` to the layer's map (n, C, h, w); ``labels``
    (N, H, W) are the images' classes and ``row`` the layer's LayerRF. A unit counts when its whole
    receptive field lies inside the image (as ``top_activations(..., inside=True)``: it saw no padding)
    and the class at the centre of its field is one of ``classes``.

    Returns (responses (units, C): the C channels' activations at each counted unit, float64;
    centre (units,): the centre class, as an index into ``classes``; scene (units,): its image)."""
    images, labels, classes = np.asarray(images), np.asarray(labels), [int(c) for c in classes]
    if images.ndim != 4 or labels.shape != (images.shape[0],) + images.shape[2:]:
        raise ValueError(f"unit_responses: images (N, C, H, W) and labels (N, H, W) of the same scenes, got "
                         f"shapes {images.shape} and {labels.shape}")
    height, width = images.shape[2:]
    lookup = np.full(max(int(labels.max()), max(classes)) + 1, -1)
    lookup[classes] = np.arange(len(classes))  # class id -> its index in classes; -1: not counted
    responses, centres, scenes = [], [], []
    with no_grad():
        for start in range(0, len(images), batch_size):
            acts = activation_fn(tensor(images[start:start + batch_size])).numpy()
            n, _, h, w = acts.shape
            if start == 0:  # every batch has the same map size: its fields once
                boxes = _unit_boxes(row, h, w)
                inside = _fields_inside(boxes, height, width)
                cy = np.clip((boxes[..., 0] + boxes[..., 1]) // 2, 0, height - 1)
                cx = np.clip((boxes[..., 2] + boxes[..., 3]) // 2, 0, width - 1)
            centre = lookup[labels[start:start + n][:, cy, cx]]             # (n, h, w)
            counted = inside[None] & (centre >= 0)
            responses.append(acts.transpose(0, 2, 3, 1)[counted].astype(np.float64))
            centres.append(centre[counted])
            scenes.append(np.nonzero(counted)[0] + start)
    return np.concatenate(responses), np.concatenate(centres), np.concatenate(scenes)


def linear_probe(features, targets, train, steps=500, lr=0.05, per_example=False):
    """Alain & Bengio's linear probe: how much of ``targets`` a linear read-out of ``features`` recovers.

    features (M, C) and integer targets (M,) in [0, K); ``train`` (M,) bool marks the examples the probe
    learns from, the others score it. Each feature is standardised with the training examples' mean and
    standard deviation, then a softmax classifier  p(k | f) = softmax(f W + b)_k  is fitted to the training
    examples with the library's own ops (cross-entropy, Adam, full batch, ``steps`` steps, from W = 0 and
    b = 0: the problem is convex, so no random start is needed and the result is reproducible).

    Returns the share of the held-out examples whose target is the probe's most probable class; with
    ``per_example``, the (M_held_out,) bool array behind it, one entry per held-out example in order
    (for a bootstrap over the scenes they came from)."""
    from .optim import Adam
    features, targets, train = np.asarray(features, np.float64), np.asarray(targets), np.asarray(train, bool)
    if features.ndim != 2 or targets.shape != (len(features),) or train.shape != targets.shape:
        raise ValueError(f"linear_probe: features (M, C), targets (M,) and train (M,), got shapes {features.shape}, "
                         f"{targets.shape} and {train.shape}")
    if not train.any() or train.all():
        raise ValueError(f"linear_probe: needs examples to learn from and to score ({int(train.sum())} of "
                         f"{len(train)} marked train)")
    mean, std = features[train].mean(axis=0), features[train].std(axis=0)
    standard = (features - mean) / np.where(std > 0, std, 1.0)
    classes = int(targets.max()) + 1
    w = tensor(np.zeros((standard.shape[1], classes)), requires_grad=True)
    b = tensor(np.zeros(classes), requires_grad=True)
    optimizer = Adam([w, b], lr=lr)
    x, y = tensor(standard[train]), targets[train]
    for _ in range(steps):
        optimizer.zero_grad()
        F.cross_entropy(F.matmul(x, w) + b, y).backward()
        optimizer.step()
    with no_grad():
        guess = (F.matmul(tensor(standard[~train]), w) + b).numpy().argmax(axis=1)
    hits = guess == targets[~train]
    return hits if per_example else float(hits.mean())


def occlusion_sensitivity(model, image, target_class, size=8, stride=2, fill=None, region=None, batch_size=64,
                          device="cpu", score="probability", exclude_covered=False):
    """Zeiler & Fergus: slide a ``size`` x ``size`` square of colour ``fill`` (default: the image's mean)
    over the image with ``stride`` and record how much the score of ``target_class`` drops.

    The score is measured over ``region`` (a boolean (H, W) mask of the segmentation output), or over the
    whole image when region is None (an image-level score):

        score="probability"   the mean softmax probability of the class over the region
        score="accuracy"      the share of the region's pixels labelled the class (argmax of the scores)

    With ``exclude_covered`` the pixels under the square are left out of the region at each position, so the
    score asks what covering one part does to the *rest* (whether the uncovered pixels are still labelled
    right), not whether the covered pixels are. A position whose square covers the whole region scores NaN.
    The occluded copies are evaluated in batches. Returns (heat (rows, cols) of drops, baseline score,
    positions: the (top, left) corner of each occluder)."""
    c, h, w = image.shape
    if size > min(h, w):
        raise ValueError(f"occlusion_sensitivity: occluder size {size} is larger than the image {h}x{w}")
    if score not in ("probability", "accuracy"):
        raise ValueError(f"occlusion_sensitivity: score must be 'probability' or 'accuracy', got {score!r}")
    fill = image.mean(axis=(1, 2)) if fill is None else np.broadcast_to(np.asarray(fill, dtype=image.dtype), (c,))
    mask = np.ones((h, w), dtype=bool) if region is None else np.asarray(region, dtype=bool)
    if mask.shape != (h, w):
        raise ValueError(f"occlusion_sensitivity: region has shape {mask.shape}, the image is {h}x{w}")
    if not mask.any():
        raise ValueError("occlusion_sensitivity: the region is empty")
    tops, lefts = range(0, h - size + 1, stride), range(0, w - size + 1, stride)
    positions = [(t, l) for t in tops for l in lefts]

    def pixel_scores(batch):
        """(n, H, W): each output pixel's probability of the class, or 1.0 where it is labelled the class."""
        with no_grad():
            out = model(tensor(batch, device=device)).numpy()
        if score == "accuracy":
            return (out.argmax(axis=1) == target_class).astype(np.float64)
        return softmax_array(out, axis=1)[:, target_class]

    def scored_region(t, l):
        if not exclude_covered:
            return mask
        uncovered = mask.copy()
        uncovered[t:t + size, l:l + size] = False
        return uncovered

    model.eval()
    before = pixel_scores(image[None])[0]
    baseline = float(before[mask].mean())
    drops = []
    for start in range(0, len(positions), batch_size):
        corners = positions[start:start + batch_size]
        batch = np.repeat(image[None], len(corners), axis=0)
        for b, (t, l) in enumerate(corners):
            batch[b, :, t:t + size, l:l + size] = fill[:, None, None]
        after = pixel_scores(batch)
        for b, (t, l) in enumerate(corners):
            scored = scored_region(t, l)  # the same pixels before and after: only the occluder differs
            drops.append(float(before[scored].mean() - after[b][scored].mean()) if scored.any() else float("nan"))
    model.train()
    return np.array(drops).reshape(len(tops), len(lefts)), baseline, positions
