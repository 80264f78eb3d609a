"""Batching with seeded shuffling, augmentation applied identically to image and labels, normalisation."""
import numpy as np


def normalise(images, mean, std):
    """(x - mean) / std per channel; images (N, 3, H, W) or (3, H, W)."""
    mean = np.asarray(mean, dtype=np.float32).reshape(-1, 1, 1)
    std = np.asarray(std, dtype=np.float32).reshape(-1, 1, 1)
    return (images - mean) / std


def channel_statistics(dataset):
    """Per-channel mean and standard deviation over a dataset (for ``normalise``)."""
    images = np.stack([dataset[i][0] for i in range(len(dataset))])
    return images.mean(axis=(0, 2, 3)), images.std(axis=(0, 2, 3)) + 1e-6


def random_crop_flip(image, labels, rng, crop=None, flip=True):
    """The same random crop (to ``crop`` = (h, w)) and horizontal flip for the image and its labels."""
    if crop is not None:
        h, w = crop
        if h > labels.shape[0] or w > labels.shape[1]:
            raise ValueError(f"random_crop_flip: crop {crop} is larger than the image {labels.shape}")
        y = rng.integers(0, labels.shape[0] - h + 1)
        x = rng.integers(0, labels.shape[1] - w + 1)
        image, labels = image[:, y:y + h, x:x + w], labels[y:y + h, x:x + w]
    if flip and rng.random() < 0.5:
        image, labels = image[:, :, ::-1], labels[:, ::-1]
    return np.ascontiguousarray(image), np.ascontiguousarray(labels)


class DataLoader:
    """Iterate over (images (B, 3, H, W) float32, labels (B, H, W) int64) batches.

    shuffle: a new order every epoch, drawn from a generator seeded with ``seed`` (so runs repeat);
    augment: random crop (``crop``) and horizontal flip, identical for image and labels;
    mean/std: per-channel normalisation of the images.
    """

    def __init__(self, dataset, batch_size=16, shuffle=False, seed=0, augment=False, crop=None,
                 mean=None, std=None, drop_last=False):
        if len(dataset) == 0:
            raise ValueError("DataLoader: the dataset is empty")
        if batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be >= 1, got {batch_size}")
        self.dataset, self.batch_size, self.shuffle = dataset, batch_size, shuffle
        self.augment, self.crop, self.drop_last = augment, crop, drop_last
        self.mean, self.std = mean, std
        self.rng = np.random.default_rng(seed)

    def __len__(self):
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self):
        order = self.rng.permutation(len(self.dataset)) if self.shuffle else np.arange(len(self.dataset))
        for start in range(0, len(order), self.batch_size):
            chosen = order[start:start + self.batch_size]
            if self.drop_last and len(chosen) < self.batch_size:
                return
            pairs = [self.dataset[int(i)] for i in chosen]
            if self.augment:
                pairs = [random_crop_flip(img, lab, self.rng, self.crop) for img, lab in pairs]
            images = np.stack([p[0] for p in pairs]).astype(np.float32)
            if self.mean is not None:
                images = normalise(images, self.mean, self.std)
            yield images, np.stack([p[1] for p in pairs]).astype(np.int64)
