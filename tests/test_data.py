"""The synthetic dataset (determinism, class balance, the things/stuff design), the VOC loader on a tiny
VOC-style directory made here, and batching with identical augmentation of images and labels."""
import os

import numpy as np
import pytest

from minisegnet.data import (CLASSES, IGNORE_INDEX, STUFF, THINGS, DataLoader, ThingsAndStuff, VOCSegmentation,
                             channel_statistics, pad_to, random_crop_flip, train_val_split, voc_colourise,
                             voc_palette)


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


class Sized:
    """A dataset of images of several sizes, like PASCAL VOC (labels: 1, and 255 on the first row if asked)."""

    ignore_index = 255

    def __init__(self, sizes, seed=0, ignore_first_row=True):
        rng = np.random.default_rng(seed)
        self.items = []
        for h, w in sizes:
            labels = np.ones((h, w), dtype=np.int64)
            if ignore_first_row:
                labels[0] = 255
            self.items.append((rng.random((3, h, w)).astype(np.float32), labels))

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


def test_channel_statistics_stream_over_images_of_different_sizes():
    data = Sized([(5, 7), (12, 3), (2, 2), (9, 11)])
    pixels = np.concatenate([image.reshape(3, -1) for image, _ in data.items], axis=1).astype(np.float64)
    mean, std = channel_statistics(data)
    np.testing.assert_allclose(mean, pixels.mean(axis=1), rtol=1e-6)
    np.testing.assert_allclose(std, pixels.std(axis=1) + 1e-6, rtol=1e-6)
    same = ThingsAndStuff(3, size=32, seed=0)  # images of one size: the old stacked formula
    np.testing.assert_allclose(channel_statistics(same)[0], same.images.mean(axis=(0, 2, 3)), rtol=1e-6)


def test_images_smaller_than_the_crop_are_padded_with_ignored_labels():
    rng = np.random.default_rng(0)
    image = np.ones((3, 3, 5), dtype=np.float32)
    labels = np.zeros((3, 5), dtype=np.int64)
    img, lab = random_crop_flip(image, labels, rng, crop=(6, 4), flip=False, fill=[0.5, 0.25, 0.125])
    assert img.shape == (3, 6, 4) and lab.shape == (6, 4)
    np.testing.assert_array_equal(lab[3:], 255)                 # the padded rows are ignored
    np.testing.assert_array_equal(img[:, 3:], np.broadcast_to(np.array([0.5, 0.25, 0.125])[:, None, None], (3, 3, 4)))
    np.testing.assert_array_equal(lab[:3], 0)
    padded, padded_labels = pad_to(image, labels, (2, 8))
    assert padded.shape == (3, 3, 8) and (padded[:, :, 5:] == 0).all() and (padded_labels[:, 5:] == 255).all()


def test_loader_crops_and_pads_images_of_any_size_to_one_batch_shape():
    data = Sized([(20, 28), (9, 40), (12, 10), (30, 30)], ignore_first_row=False)
    batches = list(DataLoader(data, 2, shuffle=True, augment=True, crop=16, mean=[0.5] * 3, std=[0.2] * 3))
    assert [b[0].shape for b in batches] == [(2, 3, 16, 16)] * 2
    images, labels = np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches])
    padded = labels == 255
    assert padded.sum() == (16 * 16 - 12 * 10) + (16 * 16 - 9 * 16)  # the 12x10 and the 9x40 image
    assert (images.transpose(1, 0, 2, 3)[:, padded] == 0).all()     # padded with the mean: 0 once normalised
    assert (labels[~padded] == 1).all()
    with pytest.raises(ValueError, match=r"differ in size \[\(9, 40\), \(20, 28\)\].*crop"):
        next(iter(DataLoader(data, 2)))


def test_voc_palette_is_the_standard_bit_interleaved_colour_map():
    palette = voc_palette()
    assert palette[0].tolist() == [0, 0, 0] and palette[1].tolist() == [128, 0, 0]
    assert palette[12].tolist() == [64, 0, 128] and palette[15].tolist() == [192, 128, 128]
    assert palette[20].tolist() == [0, 64, 128] and palette[255].tolist() == [224, 224, 192]
    labels = np.array([[12, 20], [255, 0]])
    assert voc_colourise(labels).shape == (2, 2, 3) and voc_colourise(labels)[0, 0].tolist() == [64, 0, 128]
