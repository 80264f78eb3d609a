"""The synthetic dataset (determinism, class balance, the things/stuff design), the VOC loader on a tiny
VOC-style directory made here, and batching with identical augmentation of images and labels."""
import os

import numpy as np
import pytest

from minisegnet.data import (CLASSES, IGNORE_INDEX, STUFF, THINGS, DataLoader, ThingsAndStuff, VOCSegmentation,
                             random_crop_flip, train_val_split, voc_palette)


def test_dataset_is_deterministic_and_cached(tmp_path):
    a, b = ThingsAndStuff(12, seed=3), ThingsAndStuff(12, seed=3)
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert not np.array_equal(a.labels, ThingsAndStuff(12, seed=4).labels)
    cached = ThingsAndStuff(12, seed=3, cache_dir=tmp_path)
    again = ThingsAndStuff(12, seed=3, cache_dir=tmp_path)
    assert len(os.listdir(tmp_path)) == 1
    np.testing.assert_array_equal(cached.images, again.images)
    assert a.images.dtype == np.float32 and a.labels.dtype == np.int64 and a.images.shape == (12, 3, 64, 64)


def test_class_balance_is_heavily_skewed_towards_stuff():
    train, val = train_val_split(200, 20)
    freq = train.class_frequencies()
    assert freq[list(STUFF)].sum() > 0.75          # stuff dominates: 4 classes hold ~82% of the pixels
    assert all(0.01 < freq[t] < 0.07 for t in THINGS)  # every thing is present, and rare (3-5% each)
    assert not np.array_equal(train.images[:20], val.images)


def test_things_share_one_colour_distribution():
    """Only shape tells things apart: their mean colours have the same distribution per class."""
    data = ThingsAndStuff(300, seed=1)
    means = {t: [] for t in THINGS}
    for image, labels in data:
        for t in THINGS:
            if (labels == t).sum() > 10:
                means[t].append(image[:, labels == t].mean())
    overall = np.mean([m for v in means.values() for m in v])
    for t, values in means.items():
        assert abs(np.mean(values) - overall) < 0.08, CLASSES[t].name


def test_ignore_band_marks_object_boundaries():
    data = ThingsAndStuff(5, seed=2, ignore_boundary=True)
    assert (data.labels == IGNORE_INDEX).any()
    assert ThingsAndStuff.num_classes == 9 and len(CLASSES) == 9


def test_dataset_errors():
    with pytest.raises(ValueError, match="at least one image, got n=0"):
        ThingsAndStuff(0)


def test_crop_and_flip_apply_the_same_transform_to_image_and_labels():
    rng = np.random.default_rng(0)
    image = np.arange(2 * 6 * 6, dtype=np.float32).reshape(2, 6, 6)
    labels = np.arange(36).reshape(6, 6)
    for _ in range(10):
        img, lab = random_crop_flip(image, labels, rng, crop=(4, 3))
        assert img.shape == (2, 4, 3) and lab.shape == (4, 3)
        np.testing.assert_array_equal(img[0], lab.astype(np.float32))


def test_loader_batches_shuffle_with_a_seed_and_normalise():
    data = ThingsAndStuff(10, seed=0)
    batches = list(DataLoader(data, 4, shuffle=True, seed=5))
    assert [len(b[0]) for b in batches] == [4, 4, 2]
    again = list(DataLoader(data, 4, shuffle=True, seed=5))
    np.testing.assert_array_equal(batches[0][1], again[0][1])
    images, _ = next(iter(DataLoader(data, 10, mean=[0.5] * 3, std=[0.25] * 3)))
    np.testing.assert_allclose(images, (data.images - 0.5) / 0.25, rtol=1e-6)
    with pytest.raises(ValueError, match="empty"):
        DataLoader([], 4)


def make_voc(root, ids, bad_label=False, missing=None):
    from PIL import Image
    for sub in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        os.makedirs(os.path.join(root, sub), exist_ok=True)
    rng = np.random.default_rng(0)
    for i in ids:
        Image.fromarray(rng.integers(0, 255, size=(10, 12, 3), dtype=np.uint8)).save(f"{root}/JPEGImages/{i}.jpg")
        labels = rng.integers(0, 21, size=(10, 12)).astype(np.uint8)
        labels[0, :] = 255
        if bad_label:
            labels[1, 1] = 30
        png = Image.fromarray(labels, mode="P")
        png.putpalette(voc_palette().ravel().tolist())
        png.save(f"{root}/SegmentationClass/{i}.png")
    with open(f"{root}/ImageSets/Segmentation/train.txt", "w") as f:
        f.write("\n".join(ids + ([missing] if missing else [])) + "\n")


def test_voc_loader_decodes_palette_indices_and_keeps_ignore(tmp_path):
    make_voc(str(tmp_path), ["2007_000001", "2007_000002"])
    voc = VOCSegmentation(str(tmp_path), "train")
    image, labels = voc[1]
    assert len(voc) == 2 and image.shape == (3, 10, 12) and image.dtype == np.float32
    assert labels.dtype == np.int64 and (labels[0] == 255).all() and labels[1:].max() < 21


def test_voc_loader_names_missing_files_and_bad_labels(tmp_path):
    make_voc(str(tmp_path), ["a"], missing="b")
    with pytest.raises(FileNotFoundError, match=r"JPEGImages/b.jpg \(listed in .*train.txt\) does not exist"):
        VOCSegmentation(str(tmp_path), "train")
    make_voc(str(tmp_path / "bad"), ["c"], bad_label=True)
    with pytest.raises(ValueError, match=r"c.png has label values \[30\] outside \[0, 21\)"):
        VOCSegmentation(str(tmp_path / "bad"), "train")[0]
    with pytest.raises(FileNotFoundError, match="split list not found"):
        VOCSegmentation(str(tmp_path), "val")
