"""Merging rare classes into "other" (minisegnet/data/merge.py): the lookup table, labels and datasets through it,
and the claim it rests on: a merged prediction scored on merged labels counts a confusion between two merged
classes as right."""
import numpy as np
import pytest

from minisegnet.data import CLASSES, IGNORE_INDEX, Relabelled, ThingsAndStuff, merge_classes, relabel
from minisegnet.metrics import confusion_matrix

NAMES = [c.name for c in CLASSES]


def test_merge_classes_keeps_order_and_appends_other():
    lookup, names = merge_classes(NAMES, ("triangle", "ring", "pole"))
    assert names == ("sky", "grass", "water", "brick", "disc", "square", "other")
    np.testing.assert_array_equal(lookup, [0, 1, 2, 3, 4, 5, 6, 6, 6])
    assert lookup.dtype == np.int64
    # merging classes in the middle renumbers the ones after them
    lookup, names = merge_classes(["a", "b", "c", "d"], ["b"], other="rest")
    np.testing.assert_array_equal(lookup, [0, 3, 1, 2])
    assert names == ("a", "c", "d", "rest")


@pytest.mark.parametrize("merged, message", [((), "at least one"), (("sky", "cloud"), r"\['cloud'\] are not among"),
                                              (("ring", "ring"), "named twice")])
def test_merge_classes_refuses_bad_input(merged, message):
    with pytest.raises(ValueError, match="merge_classes: .*" + message):
        merge_classes(NAMES, merged)
    with pytest.raises(ValueError, match="cannot be called 'sky'"):
        merge_classes(NAMES, ("ring",), other="sky")


def test_relabel_maps_every_pixel_and_keeps_ignored_ones():
    lookup, _ = merge_classes(NAMES, ("triangle", "ring", "pole"))
    labels = np.array([[0, 6, 7], [8, IGNORE_INDEX, 5]])
    np.testing.assert_array_equal(relabel(labels, lookup), [[0, 6, 6], [6, IGNORE_INDEX, 5]])
    assert relabel(labels, lookup).dtype == np.int64
    with pytest.raises(ValueError, match=r"relabel: labels \[9, 254\] are outside \[0, 9\)"):
        relabel(np.array([9, 254, 3]), lookup)
    with pytest.raises(ValueError, match="relabel: labels must be integers"):
        relabel(np.array([1.0]), lookup)
    with pytest.raises(ValueError, match="relabel: lookup must be a 1-d integer array"):
        relabel(labels, lookup.astype(float))


def test_relabelled_dataset_shares_images_and_counts_merged_pixels():
    data = ThingsAndStuff(6, seed=2, ignore_boundary=True)
    lookup, names = merge_classes(NAMES, ("triangle", "ring", "pole"))
    merged = Relabelled(data, lookup)
    assert len(merged) == 6 and merged.num_classes == len(names) == 7 and merged.images is data.images
    image, labels = merged[3]
    assert image is data.images[3] or np.shares_memory(image, data.images)
    np.testing.assert_array_equal(labels, relabel(data.labels[3], lookup))
    assert (labels == IGNORE_INDEX).sum() == (data.labels[3] == IGNORE_INDEX).sum() > 0  # the band stays ignored
    freq, old = merged.class_frequencies(), data.class_frequencies()
    assert freq[-1] == pytest.approx(old[6:].sum()) and np.allclose(freq[:-1], old[:6])


def test_merging_after_the_fact_turns_confusions_among_merged_classes_into_hits():
    """The fair comparison of lesson 13: a 9-class prediction merged with the same table."""
    lookup, names = merge_classes(NAMES, ("triangle", "ring", "pole"))
    truth = np.array([6, 7, 8, 4, 0])
    guess = np.array([7, 8, 6, 5, 0])  # every thing wrong on 9 classes; the three rare ones right once merged
    assert np.trace(confusion_matrix(guess, truth, 9)) == 1
    merged = confusion_matrix(relabel(guess, lookup), relabel(truth, lookup), len(names))
    assert np.trace(merged) == 4 and merged[names.index("other"), names.index("other")] == 3
