"""The "things and stuff" synthetic dataset: the lecture's points, made visible and measurable.

* **Stuff** (sky, grass, water, brick) fills amorphous regions whose shapes come from smooth
  random fields; each is recognisable by its texture from a small patch.
* **Things** (disc, square, triangle, ring, pole) are objects of a constrained shape, all drawn
  from **one shared colour and texture distribution**, so that only their shape tells them
  apart: a network needs a receptive field that covers the whole object.
* Poles and rings are **thin** (6 pixels: a fifth of a stride-32 output cell), so output resolution matters.
* Stuff pixels dominate and things are small: the **heavy class imbalance** of real data.
* Things are countable and the generator knows each one: an **instance map** (one id per thing)
  comes with every scene, while the semantic labels merge two touching things of one class.

Deterministic from a seed, no downloads: a few hundred 64x64 images take well under a second.
Images are (3, H, W) float32 in [0, 1]; labels (H, W) int64; optionally a one-pixel band around
every object is labelled 255 (ignored), as in PASCAL VOC.
"""
import os
from collections import namedtuple

import numpy as np

SegClass = namedtuple("SegClass", "name kind colour")

CLASSES = (
    SegClass("sky", "stuff", (135, 190, 235)),
    SegClass("grass", "stuff", (70, 150, 60)),
    SegClass("water", "stuff", (30, 80, 160)),
    SegClass("brick", "stuff", (170, 80, 55)),
    SegClass("disc", "thing", (240, 200, 40)),
    SegClass("square", "thing", (230, 60, 200)),
    SegClass("triangle", "thing", (250, 130, 30)),
    SegClass("ring", "thing", (40, 220, 220)),
    SegClass("pole", "thing", (255, 255, 255)),
)
IGNORE_INDEX = 255
STUFF = tuple(i for i, c in enumerate(CLASSES) if c.kind == "stuff")
THINGS = tuple(i for i, c in enumerate(CLASSES) if c.kind == "thing")


def class_colours():
    """(num_classes + 1, 3) uint8 palette; the last row is the colour of ignored pixels (black)."""
    return np.array([c.colour for c in CLASSES] + [(0, 0, 0)], dtype=np.uint8)


def colourise(labels):
    """(H, W) labels -> (H, W, 3) uint8 image in the class colours (255 drawn black)."""
    palette = class_colours()
    return palette[np.where(labels == IGNORE_INDEX, len(CLASSES), labels)]


# --- stuff: region shapes and textures -----------------------------------------------------
def _interpolation_matrix(size, cells):
    """(size, cells + 1) matrix that linearly interpolates a coarse grid to ``size`` samples."""
    position = np.linspace(0, cells, size)
    left = np.minimum(position.astype(int), cells - 1)
    frac = position - left
    m = np.zeros((size, cells + 1))
    m[np.arange(size), left] = 1 - frac
    m[np.arange(size), left + 1] = frac
    return m


def smooth_field(rng, size, cells=3):
    """A smooth random field on a size x size grid (random values on a coarse grid, bilinearly
    interpolated): argmax over a few of them gives amorphous regions."""
    m = _interpolation_matrix(size, cells)
    return m @ rng.standard_normal((cells + 1, cells + 1)) @ m.T


def stuff_texture(kind, rng, size):
    """(3, size, size) texture of one stuff class: its look comes from a few pixels around any point."""
    y, x = np.mgrid[:size, :size] / size
    base = np.array(CLASSES[kind].colour, dtype=np.float64)[:, None, None] / 255
    name = CLASSES[kind].name
    if name == "sky":  # smooth vertical gradient, almost no noise
        shade = 0.75 + 0.35 * (y + 0.2 * rng.random())
        texture = base * shade + 0.01 * rng.standard_normal((1, size, size))
    elif name == "grass":  # strong per-pixel noise
        texture = base * (0.6 + 0.8 * rng.random((1, size, size)))
    elif name == "water":  # waves along a random direction, period ~6 pixels
        angle = rng.uniform(0, np.pi)
        phase = (np.cos(angle) * x + np.sin(angle) * y) * size * 2 * np.pi / 6 + rng.uniform(0, 2 * np.pi)
        texture = base * (0.8 + 0.35 * np.sin(phase))
    else:  # brick: a periodic wall, rows of height 4, bricks 8 wide, offset every other row, light mortar
        yi, xi = np.mgrid[:size, :size]
        oy, ox = rng.integers(0, 8, size=2)
        row = (yi + oy) // 4
        mortar = ((yi + oy) % 4 == 0) | ((xi + ox + 4 * (row % 2)) % 8 == 0)
        texture = np.where(mortar, 0.9, 1.0) * base + np.where(mortar, 0.35, 0.0)
        texture = texture + 0.03 * rng.standard_normal((1, size, size))
    return texture


# --- things: shapes from one shared appearance distribution ----------------------------------
def thing_mask(kind, rng, size):
    """Boolean (size, size) mask of one object of the given thing class at a random place."""
    y, x = np.mgrid[:size, :size].astype(np.float64)
    name = CLASSES[kind].name
    r = rng.uniform(0.15, 0.22) * size
    cy, cx = rng.uniform(r, size - r, size=2)
    # Discs, squares and triangles keep an upright pose (a constrained shape); poles lean at any angle.
    angle = rng.uniform(0, np.pi) if name == "pole" else 0.0
    u = np.cos(angle) * (x - cx) + np.sin(angle) * (y - cy)
    v = -np.sin(angle) * (x - cx) + np.cos(angle) * (y - cy)
    if name == "disc":
        return u ** 2 + v ** 2 <= r ** 2
    if name == "square":
        half = 0.85 * r
        return (np.abs(u) <= half) & (np.abs(v) <= half)
    if name == "triangle":  # equilateral, circumradius 1.2 r: three half-planes
        inside = np.ones_like(u, dtype=bool)
        for k in range(3):
            a = np.pi / 2 + 2 * np.pi * k / 3  # pointing up
            inside &= np.cos(a) * (x - cx) + np.sin(a) * (y - cy) <= 0.6 * r
        return inside
    if name == "ring":  # annulus 6 pixels wide: thin
        d = np.sqrt(u ** 2 + v ** 2)
        return (d <= r) & (d >= r - 6.0)
    # pole: a thin bar, 6 pixels wide and 2.5-3.5 r long
    length = rng.uniform(2.5, 3.5) * r
    return (np.abs(v) <= 3.0) & (np.abs(u) <= length / 2)


def thing_appearance(rng, size):
    """The shared look of every thing: a random colour with mild speckle (no class information)."""
    colour = rng.uniform(0.1, 1.0, size=(3, 1, 1))
    return colour * (0.9 + 0.2 * rng.random((1, size, size)))


def boundary_band(labels):
    """Pixels whose 4-neighbourhood holds another label and touches a thing."""
    is_thing = np.isin(labels, THINGS)
    band = np.zeros_like(labels, dtype=bool)
    for axis in (0, 1):
        differs = np.diff(labels, axis=axis) != 0
        touches = np.maximum(np.take(is_thing, range(labels.shape[axis] - 1), axis=axis),
                             np.take(is_thing, range(1, labels.shape[axis]), axis=axis))
        edge = differs & touches
        if axis == 0:
            band[:-1] |= edge
            band[1:] |= edge
        else:
            band[:, :-1] |= edge
            band[:, 1:] |= edge
    return band


def render_scene(rng, size=64, max_things=4, ignore_boundary=False, instances=False):
    """One image (3, size, size) float32 and its labels (size, size) int64; with ``instances=True``
    also its instance map (size, size) int64: 0 on stuff, k on the pixels of the k-th thing drawn
    (k = 1, 2, ...), later things covering earlier ones as in the labels. The semantic labels give
    two touching things of one class one label, so they cannot tell them apart; the instance map can.
    It is bookkeeping only: it draws no random numbers, so image and labels are the same either way,
    and ``ignore_boundary`` does not touch it (an ignored boundary pixel keeps its thing's id)."""
    present = rng.choice(STUFF, size=rng.integers(2, len(STUFF) + 1), replace=False)
    fields = np.stack([smooth_field(rng, size) for _ in present])
    labels = np.asarray(present)[fields.argmax(axis=0)].astype(np.int64)
    instance_map = np.zeros((size, size), dtype=np.int64)
    image = np.zeros((3, size, size))
    for kind in present:
        region = labels == kind
        image[:, region] = stuff_texture(kind, rng, size)[:, region]
    for number in range(1, rng.integers(1, max_things + 1) + 1):
        kind = int(rng.choice(THINGS))
        mask = thing_mask(kind, rng, size)
        image[:, mask] = thing_appearance(rng, size)[:, mask]
        labels[mask] = kind
        instance_map[mask] = number
    if ignore_boundary:
        labels[boundary_band(labels)] = IGNORE_INDEX
    image = np.clip(image, 0, 1).astype(np.float32)
    return (image, labels, instance_map) if instances else (image, labels)


class ThingsAndStuff:
    """A fixed set of ``n`` rendered scenes, indexable as (image, labels) pairs.

    images (n, 3, size, size) float32, labels (n, size, size) int64, instances (n, size, size) int64
    (each scene's instance map, see ``render_scene``), classes: the class table.
    ``cache_dir`` stores the arrays as .npz and reloads them on the next run.
    """

    classes = CLASSES
    num_classes = len(CLASSES)
    ignore_index = IGNORE_INDEX

    def __init__(self, n=400, size=64, seed=0, max_things=4, ignore_boundary=False, cache_dir=None):
        if n < 1:
            raise ValueError(f"ThingsAndStuff: the dataset needs at least one image, got n={n}")
        if size < 16:
            raise ValueError(f"ThingsAndStuff: images must be at least 16 pixels wide, got size={size}")
        self.n, self.size, self.seed = n, size, seed
        path = None
        if cache_dir is not None:
            name = f"things_and_stuff_n{n}_s{size}_seed{seed}_t{max_things}_ib{int(ignore_boundary)}.npz"
            path = os.path.join(cache_dir, name)
        if path is not None and os.path.exists(path):
            with np.load(path) as data:
                if "instances" in data:  # (a cache written before instance maps existed is rendered again)
                    self.images, self.labels, self.instances = data["images"], data["labels"], data["instances"]
                    return
        rng = np.random.default_rng(seed)
        scenes = [render_scene(rng, size, max_things, ignore_boundary, instances=True) for _ in range(n)]
        self.images = np.stack([s[0] for s in scenes])
        self.labels = np.stack([s[1] for s in scenes])
        self.instances = np.stack([s[2] for s in scenes])
        if path is not None:
            from ..nn.module import save_npz_atomic
            save_npz_atomic(path, {"images": self.images, "labels": self.labels, "instances": self.instances})

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return self.images[i], self.labels[i]

    def class_frequencies(self):
        """Fraction of the labelled pixels that belongs to each class."""
        counts = np.bincount(self.labels[self.labels != IGNORE_INDEX].ravel(), minlength=self.num_classes)
        return counts / counts.sum()


def train_val_split(n_train=400, n_val=100, size=64, seed=0, **kwargs):
    """The default splits: disjoint seeds, so validation scenes are never seen in training."""
    return (ThingsAndStuff(n_train, size, seed=2 * seed, **kwargs),
            ThingsAndStuff(n_val, size, seed=2 * seed + 1, **kwargs))
