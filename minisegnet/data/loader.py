"""Batching with seeded shuffling, augmentation applied identically to image and labels, normalisation."""
import numpy as np


def normalise(images, mean, std):
    """(x - mean) / std per channel; images (N, 3, H, W) or (3, H, W)."""
    mean = np.asarray(mean, dtype=np.float32).reshape(-1, 1, 1)
    std = np.asarray(std, dtype=np.float32).reshape(-1, 1, 1)
    return (images - mean) / std


def channel_statistics(dataset):
    """Per-channel mean and standard deviation over every pixel of a dataset (for ``normalise``).

    Streamed one image at a time, so the images may differ in size (PASCAL VOC) and never need to
    fit in memory together: each image's mean and sum of squared deviations M2 are merged into
    the running ones with Chan et al.'s pairwise update (exact, and stable unlike sum of x^2):
        n = n_a + n_b,  mean = mean_a + d n_b / n,  M2 = M2_a + M2_b + d^2 n_a n_b / n,  d = mean_b - mean_a
    std = sqrt(M2 / n) (the population value, as numpy's ``std``) + 1e-6.
    """
    if len(dataset) == 0:
        raise ValueError("channel_statistics: the dataset is empty")
    count, mean, m2 = 0, None, None
    for i in range(len(dataset)):
        image = np.asarray(dataset[i][0], dtype=np.float64)
        pixels = image.reshape(image.shape[0], -1)
        n_b = pixels.shape[1]
        mean_b = pixels.mean(axis=1)
        m2_b = ((pixels - mean_b[:, None]) ** 2).sum(axis=1)
        if mean is None:
            count, mean, m2 = n_b, mean_b, m2_b
            continue
        if mean_b.shape != mean.shape:
            raise ValueError(f"channel_statistics: image {i} has {mean_b.size} channels, the first had {mean.size}")
        n = count + n_b
        delta = mean_b - mean
        mean = mean + delta * n_b / n
        m2 = m2 + m2_b + delta ** 2 * count * n_b / n
        count = n
    return mean.astype(np.float32), (np.sqrt(m2 / count) + 1e-6).astype(np.float32)


def pad_to(image, labels, size, fill=0.0, ignore_index=255):
    """Pad an image (C, H, W) and its labels (H, W) at the bottom and right to at least ``size`` = (h, w).

    The labels are padded with ``ignore_index``, so padded pixels never count in the loss or the
    metrics (FCN and DeepLab do the same); the image with ``fill``: a number or one value per
    channel. Images already large enough come back unchanged.
    """
    h, w = labels.shape
    extra_h, extra_w = max(size[0] - h, 0), max(size[1] - w, 0)
    if extra_h == 0 and extra_w == 0:
        return image, labels
    padded = np.empty((image.shape[0], h + extra_h, w + extra_w), dtype=image.dtype)
    padded[:] = np.asarray(fill, dtype=image.dtype).reshape(-1, 1, 1)
    padded[:, :h, :w] = image
    padded_labels = np.full((h + extra_h, w + extra_w), ignore_index, dtype=labels.dtype)
    padded_labels[:h, :w] = labels
    return padded, padded_labels


def _check_crop(crop, op):
    """``crop`` as a pair of positive ints (h, w), or None; anything else is an error naming ``op``."""
    if crop is None:
        return None
    pair = tuple(crop) if np.ndim(crop) == 1 else (crop, crop)
    if len(pair) != 2 or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 1
                                 for v in pair):
        raise ValueError(f"{op}: crop must be None or positive (h, w) integers, got {crop!r}")
    return int(pair[0]), int(pair[1])


def random_crop_flip(image, labels, rng, crop=None, flip=True, fill=0.0, ignore_index=255):
    """The same random crop (to ``crop`` = (h, w)) and horizontal flip for the image and its labels.

    An image smaller than the crop is first padded up to it (``pad_to``: labels with
    ``ignore_index``, the image with ``fill``), as FCN's and DeepLab's VOC pipelines do.
    """
    crop = _check_crop(crop, "random_crop_flip")
    if crop is not None:
        h, w = crop
        image, labels = pad_to(image, labels, crop, fill, ignore_index)
        y = rng.integers(0, labels.shape[0] - h + 1)
        x = rng.integers(0, labels.shape[1] - w + 1)
        image, labels = image[:, y:y + h, x:x + w], labels[y:y + h, x:x + w]
    if flip and rng.random() < 0.5:
        image, labels = image[:, :, ::-1], labels[:, ::-1]
    return np.ascontiguousarray(image), np.ascontiguousarray(labels)


class DataLoader:
    """Iterate over (images (B, 3, H, W) float32, labels (B, H, W) int64) batches.

    shuffle: a new order every epoch, drawn from a generator seeded with ``seed`` (so runs repeat);
    augment: random crop (``crop`` = (h, w) or one int) and horizontal flip, identical for image and
    labels; images smaller than the crop are padded (labels with the dataset's ``ignore_index``,
    255 by default; the image with ``mean`` when given, so padded pixels are 0 after normalisation,
    the value the convolutions' own zero padding uses; with zeros otherwise);
    mean/std: per-channel normalisation of the images.
    Images of different sizes (PASCAL VOC) can share a batch only once cropped to one size;
    otherwise use batch_size=1.
    """

    def __init__(self, dataset, batch_size=16, shuffle=False, seed=0, augment=False, crop=None,
                 mean=None, std=None, drop_last=False):
        if len(dataset) == 0:
            raise ValueError("DataLoader: the dataset is empty")
        if batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be >= 1, got {batch_size}")
        self.dataset, self.batch_size, self.shuffle = dataset, batch_size, shuffle
        self.augment, self.crop, self.drop_last = augment, _check_crop(crop, "DataLoader"), drop_last
        self.mean, self.std = mean, std
        self.ignore_index = getattr(dataset, "ignore_index", 255)
        self.rng = np.random.default_rng(seed)

    def __len__(self):
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self):
        order = self.rng.permutation(len(self.dataset)) if self.shuffle else np.arange(len(self.dataset))
        fill = 0.0 if self.mean is None else self.mean
        for start in range(0, len(order), self.batch_size):
            chosen = order[start:start + self.batch_size]
            if self.drop_last and len(chosen) < self.batch_size:
                return
            pairs = [self.dataset[int(i)] for i in chosen]
            if self.augment:
                pairs = [random_crop_flip(img, lab, self.rng, self.crop, fill=fill, ignore_index=self.ignore_index)
                         for img, lab in pairs]
            sizes = sorted({tuple(p[1].shape) for p in pairs})
            if len(sizes) > 1:
                raise ValueError(f"DataLoader: the images of one batch differ in size {sizes} (items "
                                 f"{[int(i) for i in chosen]}); crop them to one size (augment=True, crop=...) "
                                 "or use batch_size=1")
            images = np.stack([p[0] for p in pairs]).astype(np.float32)
            if self.mean is not None:
                images = normalise(images, self.mean, self.std)
            yield images, np.stack([p[1] for p in pairs]).astype(np.int64)
