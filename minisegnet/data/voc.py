"""PASCAL VOC 2012-style segmentation data: JPEGImages/*.jpg, SegmentationClass/*.png (palette
images whose pixel values are class indices, 255 on object boundaries = ignored), and
ImageSets/Segmentation/{train,val}.txt listing the image ids of each split."""
import os

import numpy as np

VOC_CLASSES = ("background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair",
               "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
               "train", "tvmonitor")


def voc_palette(n=256):
    """VOC's colour map: class index -> (r, g, b), the bits of the index interleaved over the colours'
    bits from the top (bit 0 -> red 128, bit 1 -> green 128, bit 2 -> blue 128, bit 3 -> red 64, ...):
    1 aeroplane (128, 0, 0), 15 person (192, 128, 128), 255 boundary/ignore (224, 224, 192)."""
    palette = np.zeros((n, 3), dtype=np.uint8)
    for i in range(n):
        c, r, g, b = i, 0, 0, 0
        for bit in range(8):
            r |= ((c >> 0) & 1) << (7 - bit)
            g |= ((c >> 1) & 1) << (7 - bit)
            b |= ((c >> 2) & 1) << (7 - bit)
            c >>= 3
        palette[i] = (r, g, b)
    return palette


def voc_colourise(labels):
    """(H, W) labels (0..20, 255 ignored) -> (H, W, 3) uint8 image in VOC's own colours (the colours of
    the SegmentationClass PNGs; ignored pixels in VOC's cream boundary colour)."""
    return voc_palette()[np.asarray(labels)]


class VOCSegmentation:
    """The images and labels of one split of a VOC-style directory.

    images: float32 (3, H, W) in [0, 1]; labels: int64 (H, W) with 255 kept as ignore.
    A missing or unreadable file raises an error that names it; label values that are neither
    a class index nor 255 are reported with the files they occur in.
    """

    ignore_index = 255

    def __init__(self, root, split="train", num_classes=len(VOC_CLASSES)):
        from PIL import Image  # Pillow comes with matplotlib
        self._image = Image
        self.root, self.split, self.num_classes = root, split, num_classes
        list_file = os.path.join(root, "ImageSets", "Segmentation", f"{split}.txt")
        if not os.path.isfile(list_file):
            raise FileNotFoundError(f"VOCSegmentation: split list not found: {list_file}")
        with open(list_file) as f:
            self.ids = [line.strip() for line in f if line.strip()]
        if not self.ids:
            raise ValueError(f"VOCSegmentation: {list_file} lists no images")
        for image_id in self.ids:
            for path in (self._image_path(image_id), self._label_path(image_id)):
                if not os.path.isfile(path):
                    raise FileNotFoundError(f"VOCSegmentation: {path} (listed in {list_file}) does not exist")

    def _image_path(self, image_id):
        return os.path.join(self.root, "JPEGImages", f"{image_id}.jpg")

    def _label_path(self, image_id):
        return os.path.join(self.root, "SegmentationClass", f"{image_id}.png")

    def _open(self, path):
        try:
            image = self._image.open(path)
            image.load()  # open() reads only the header: a truncated or corrupt body fails here
            return image
        except Exception as e:  # PIL raises several kinds; name the file either way
            raise OSError(f"VOCSegmentation: cannot read {path}: {e}") from e

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, i):
        image_id = self.ids[i]
        image = np.asarray(self._open(self._image_path(image_id)).convert("RGB"), dtype=np.float32) / 255
        label_image = self._open(self._label_path(image_id))
        if label_image.mode != "P":
            raise ValueError(f"VOCSegmentation: {self._label_path(image_id)} is a {label_image.mode} image, "
                             "expected a palette (P) image whose values are class indices")
        labels = np.asarray(label_image, dtype=np.int64)
        if labels.shape != image.shape[:2]:
            raise ValueError(f"VOCSegmentation: {image_id}: image is {image.shape[:2]}, labels are {labels.shape}")
        bad = np.unique(labels[(labels >= self.num_classes) & (labels != self.ignore_index)])
        if bad.size:
            raise ValueError(f"VOCSegmentation: {self._label_path(image_id)} has label values {bad.tolist()} "
                             f"outside [0, {self.num_classes}) that are not {self.ignore_index}")
        return image.transpose(2, 0, 1).copy(), labels
