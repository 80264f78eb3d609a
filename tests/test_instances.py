"""Instances: the scene generator's instance maps (which leave every image and label as they were),
``connected_components`` (4-connectivity) and ``count_instances`` (what semantic labels can count)."""
import hashlib
import os

import numpy as np
import pytest

from minisegnet.data import STUFF, THINGS, ThingsAndStuff, render_scene
from minisegnet.metrics import connected_components, count_instances

# sha256 (first 16 hex digits) of images.tobytes() + labels.tobytes(), computed before instance maps
# existed: (ThingsAndStuff(40, seed=s), ThingsAndStuff(40, size=48, seed=s, max_things=6, ignore_boundary=True))
HASHES_BEFORE = {0: ("9a0895991d19ae8e", "8be16b54151d36d7"),
                 1: ("5ad41d8330e41d9e", "7e99ae9077a913d7"),
                 2: ("e6070c5b8c637e0a", "231bd25fcc79a568")}


def digest(data):
    h = hashlib.sha256()
    h.update(data.images.tobytes())
    h.update(data.labels.tobytes())
    return h.hexdigest()[:16]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_instance_maps_leave_images_and_labels_unchanged(seed):
    plain = ThingsAndStuff(40, seed=seed)
    other = ThingsAndStuff(40, size=48, seed=seed, max_things=6, ignore_boundary=True)
    assert (digest(plain), digest(other)) == HASHES_BEFORE[seed]
    # and render_scene itself: the same random stream gives the same scene with or without the map
    for ignore_boundary in (False, True):
        image, labels = render_scene(np.random.default_rng(seed), ignore_boundary=ignore_boundary)
        image2, labels2, _ = render_scene(np.random.default_rng(seed), ignore_boundary=ignore_boundary,
                                          instances=True)
        np.testing.assert_array_equal(image, image2)
        np.testing.assert_array_equal(labels, labels2)


def test_instance_map_marks_each_thing_with_one_id():
    data = ThingsAndStuff(30, seed=5)
    assert data.instances.shape == data.labels.shape and data.instances.dtype == np.int64
    for labels, ids in zip(data.labels, data.instances):
        assert np.array_equal(ids == 0, np.isin(labels, STUFF))  # 0 exactly on stuff
        for k in np.unique(ids[ids > 0]):
            assert len(np.unique(labels[ids == k])) == 1  # one thing, one class
            assert labels[ids == k][0] in THINGS
        assert ids.max() <= 4  # at most max_things things, numbered from 1


def test_instance_maps_are_cached(tmp_path):
    first = ThingsAndStuff(8, seed=3, cache_dir=tmp_path)
    again = ThingsAndStuff(8, seed=3, cache_dir=tmp_path)
    assert len(os.listdir(tmp_path)) == 1
    np.testing.assert_array_equal(first.instances, again.instances)


def propagation_reference(mask):
    """Components by another route: every mask pixel starts with its own index and repeatedly takes the
    smallest index among itself and its 4 neighbours in the mask, until nothing changes."""
    big = mask.size + 1
    ids = np.where(mask, np.arange(mask.size).reshape(mask.shape), big)
    while True:
        padded = np.pad(ids, 1, constant_values=big)
        smallest = np.minimum.reduce([ids, padded[:-2, 1:-1], padded[2:, 1:-1], padded[1:-1, :-2], padded[1:-1, 2:]])
        smallest = np.where(mask, smallest, big)
        if np.array_equal(smallest, ids):
            return ids
        ids = smallest


def test_connected_components_small_cases():
    mask = np.array([[1, 1, 0, 1],
                     [0, 1, 0, 1],
                     [1, 0, 0, 1],
                     [1, 1, 1, 1]], dtype=bool)
    components, count = connected_components(mask)
    # the top-left pair is one region; (2, 0) touches it only at a corner, so it joins the U on the right
    assert count == 2
    np.testing.assert_array_equal(components, [[1, 1, 0, 2],
                                               [0, 1, 0, 2],
                                               [2, 0, 0, 2],
                                               [2, 2, 2, 2]])
    assert connected_components(np.zeros((3, 5), bool))[1] == 0
    full, n = connected_components(np.ones((3, 5), bool))
    assert n == 1 and (full == 1).all()
    chequer = (np.add.outer(np.arange(4), np.arange(4)) % 2).astype(bool)  # corners only: every pixel alone
    assert connected_components(chequer)[1] == 8


def test_connected_components_agree_with_a_propagation_reference():
    rng = np.random.default_rng(0)
    for density in (0.3, 0.5, 0.6, 0.7):
        mask = rng.random((24, 31)) < density
        components, count = connected_components(mask)
        reference = propagation_reference(mask)
        assert set(np.unique(components[mask])) == set(range(1, count + 1))
        assert len(np.unique(reference[mask])) == count
        pairs = set(zip(components[mask].tolist(), reference[mask].tolist()))
        assert len(pairs) == count  # the same partition: each component is exactly one reference region
        assert (components[~mask] == 0).all()


def test_connected_components_refuses_a_batch():
    with pytest.raises(ValueError, match=r"connected_components: need an \(H, W\) mask, got shape \(2, 3, 3\)"):
        connected_components(np.ones((2, 3, 3), bool))


def test_count_instances_sees_merges_and_splits():
    disc, square = THINGS[0], THINGS[1]
    labels = np.zeros((6, 8), dtype=np.int64)  # stuff class 0 everywhere
    ids = np.zeros((6, 8), dtype=np.int64)
    labels[0:2, 0:2], ids[0:2, 0:2] = disc, 1  # two discs side by side: one region
    labels[0:2, 2:4], ids[0:2, 2:4] = disc, 2
    labels[0:2, 5:7], ids[0:2, 5:7] = square, 3  # a square touching nothing of its class
    labels[3:6, 0:3], ids[3:6, 0:3] = square, 4  # a square cut in two by a disc in front of it
    labels[3:6, 1], ids[3:6, 1] = disc, 5
    assert count_instances(labels, ids, THINGS) == (5, 5, 2)  # regions: discs {1, 2}, {5}; squares {3}, {4}, {4}
    assert count_instances(labels, ids, [square]) == (2, 3, 0)
    with pytest.raises(ValueError, match=r"count_instances: .* got \(6, 8\) and \(6, 7\)"):
        count_instances(labels, ids[:, :7], THINGS)


def test_count_instances_on_generated_scenes():
    """Every object has a region, an object merged with none has regions of its own, and a merge takes two."""
    data = ThingsAndStuff(40, seed=0)
    for labels, ids in zip(data.labels, data.instances):
        objects, regions, merged = count_instances(labels, ids, THINGS)
        assert objects == len(np.unique(ids[ids > 0]))
        assert merged != 1 and merged <= objects
        assert regions >= objects - merged + (merged > 0)
