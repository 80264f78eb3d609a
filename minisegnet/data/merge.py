"""Merging classes into one "other" class: the common answer to a heavy tail of rare classes.

Real datasets hold a few classes with most of the pixels and a long tail of classes with few; one
answer is to annotate only the common classes and mark everything else as "other". Here that is a
lookup table from the old labels to the new ones, applied to label maps or to a whole dataset:

    lookup, names = merge_classes([c.name for c in CLASSES], ("triangle", "ring", "pole"))
    # lookup = [0, 1, 2, 3, 4, 5, 6, 6, 6]    names = (sky, grass, water, brick, disc, square, other)
    relabel(labels, lookup)                   # new[p] = lookup[old[p]]; ignored pixels (255) stay ignored
    Relabelled(dataset, lookup)               # the same images, every label map through the table

The same table merges a net's predictions (argmax labels of the old classes), so a net trained on all
classes can be scored on the merged ones, like a net trained on the merged labels.
"""
import numpy as np

from .things_and_stuff import IGNORE_INDEX


def merge_classes(names, merged, other="other"):
    """The lookup table that merges some classes into one.

    names: the n class names, in label order; merged: the names of the classes to merge (at least
    one, each in ``names``, no repeats). The classes kept keep their order and are renumbered
    0, 1, ..., k - 1; every merged class becomes class k, named ``other`` (which must not be a kept
    name). Returns (lookup, new_names): lookup (n,) int64 with lookup[c] the new label of class c,
    new_names the k kept names followed by ``other`` (k + 1 names)."""
    names, merged = list(names), list(merged)
    if not merged:
        raise ValueError("merge_classes: name at least one class to merge, got none")
    unknown = [m for m in merged if m not in names]
    if unknown:
        raise ValueError(f"merge_classes: {unknown} are not among the {len(names)} classes {names}")
    if len(set(merged)) != len(merged):
        raise ValueError(f"merge_classes: a class is named twice in {merged}")
    kept = [n for n in names if n not in merged]
    if other in kept:
        raise ValueError(f"merge_classes: the merged class cannot be called {other!r}: a kept class has that name")
    lookup = np.array([len(kept) if n in merged else kept.index(n) for n in names], dtype=np.int64)
    return lookup, tuple(kept) + (other,)


def relabel(labels, lookup, ignore_index=IGNORE_INDEX):
    """Labels through a lookup table: new[p] = lookup[labels[p]], and ``ignore_index`` stays ``ignore_index``.

    labels: integer class labels of any shape, each in [0, len(lookup)) or ``ignore_index``;
    lookup: (n,) integers (e.g. from ``merge_classes``). Returns int64 labels of the same shape."""
    labels, lookup = np.asarray(labels), np.asarray(lookup)
    if lookup.ndim != 1 or lookup.dtype.kind not in "iu":
        raise ValueError(f"relabel: lookup must be a 1-d integer array, got shape {lookup.shape} dtype {lookup.dtype}")
    if labels.dtype.kind not in "iu":
        raise ValueError(f"relabel: labels must be integers, got dtype {labels.dtype}")
    ignored = labels == ignore_index
    bad = ~ignored & ((labels < 0) | (labels >= len(lookup)))
    if bad.any():
        raise ValueError(f"relabel: labels {np.unique(labels[bad])[:10].tolist()} are outside [0, {len(lookup)}) "
                         f"and are not ignore_index={ignore_index}")
    return np.where(ignored, ignore_index, lookup[np.where(ignored, 0, labels)]).astype(np.int64)


class Relabelled:
    """A dataset with its labels through a lookup table: the same images, (image, relabel(labels)) pairs.

    dataset: anything with ``images`` (N, 3, H, W) and ``labels`` (N, H, W) arrays (``ThingsAndStuff``);
    lookup: (n,) integers, n the dataset's number of classes. ``num_classes`` becomes lookup.max() + 1,
    ``ignore_index`` stays the dataset's; the images are shared, not copied."""

    def __init__(self, dataset, lookup):
        self.ignore_index = getattr(dataset, "ignore_index", IGNORE_INDEX)
        self.images = dataset.images
        self.labels = relabel(dataset.labels, lookup, self.ignore_index)
        self.num_classes = int(np.max(lookup)) + 1
        self.n = len(self.labels)

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return self.images[i], self.labels[i]

    def class_frequencies(self):
        """Fraction of the labelled pixels that belongs to each (new) class."""
        counts = np.bincount(self.labels[self.labels != self.ignore_index].ravel(), minlength=self.num_classes)
        return counts / counts.sum()
