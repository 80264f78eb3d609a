"""Bad inputs to runs (fit, the command line, checkpoints, VOC folders): each row is one mistake, the error
type it must raise, and what its message must contain: the op or flag and the offending value or file."""
import os

import numpy as np
import pytest

import minisegnet as msn
from minisegnet import nn
from minisegnet.__main__ import main
from minisegnet.data import DataLoader, ThingsAndStuff, VOCSegmentation, random_crop_flip, voc_palette
from minisegnet.models import build_model
from minisegnet.train import fit, load_checkpoint

SMALL = dict(widths=(4, 6, 8, 8, 8), depths=(1, 1, 1, 1, 1))
TINY = ["--train-size", "4", "--val-size", "2", "--size", "32", "--batch-size", "2", "--no-class-weights"]


def small_model():
    msn.manual_seed(0)
    return build_model("fcn32s", ThingsAndStuff.num_classes, **SMALL)


def data():
    return ThingsAndStuff(4, size=32, seed=0)


def checkpoint(folder):
    """A real checkpoint written by fit: folder/checkpoint.npz."""
    fit(small_model(), data(), epochs=1, batch_size=4, progress=False, out_dir=folder)
    return str(folder / "checkpoint.npz")


def truncated_checkpoint(folder):
    path = checkpoint(folder)
    with open(path, "rb") as f:
        head = f.read(os.path.getsize(path) // 2)
    with open(path, "wb") as f:  # as a copy cut short, or a disk that filled up, leaves it
        f.write(head)
    return path


def voc_folder(root, spoil):
    """A one-image VOC-style folder whose JPEG or PNG ``spoil`` damages; returns the damaged file."""
    from PIL import Image
    for sub in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        os.makedirs(root / sub, exist_ok=True)
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(
        root / "JPEGImages/a.jpg")
    png = Image.fromarray(np.zeros((40, 48), dtype=np.uint8), mode="P")
    png.putpalette(voc_palette().ravel().tolist())
    png.save(root / "SegmentationClass/a.png")
    (root / "ImageSets/Segmentation/train.txt").write_text("a\n")
    return str(spoil(root))


def truncate_jpeg(root):
    path = root / "JPEGImages/a.jpg"
    path.write_bytes(path.read_bytes()[:len(path.read_bytes()) // 2])
    return path


def garble_png(root):
    path = root / "SegmentationClass/a.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"not a png at all" * 8)
    return path


def all_ignored():
    image = np.random.default_rng(0).random((3, 32, 32)).astype(np.float32)
    return [(image, np.full((32, 32), 255, dtype=np.int64))] * 2


# Each case: tmp_path -> (call that must raise, strings its message must contain).
def fit_epochs_zero(tmp):
    return lambda: fit(small_model(), data(), epochs=0, progress=False), ["fit: epochs", "got 0"]


def fit_epochs_negative(tmp):
    return lambda: fit(small_model(), data(), epochs=-2, progress=False), ["fit: epochs", "got -2"]


def cli(flag, value):
    def case(tmp):
        return lambda: main(["train", "--out", str(tmp / "run"), *TINY, flag, value]), [f"argument {flag}", value]
    case.__name__ = f"cli_{flag[2:].replace('-', '_')}_{value}"
    return case


def loader_negative_crop(tmp):
    return lambda: DataLoader(data(), 2, augment=True, crop=(-4, -4)), ["DataLoader: crop", "(-4, -4)"]


def fit_zero_crop(tmp):
    return lambda: fit(small_model(), data(), epochs=1, crop=0, progress=False), ["crop", "got 0"]


def crop_flip_zero_height(tmp):
    image, labels = data()[0]
    rng = np.random.default_rng(0)
    return lambda: random_crop_flip(image, labels, rng, crop=(0, 5)), ["random_crop_flip: crop", "(0, 5)"]


def load_truncated_checkpoint(tmp):
    path = truncated_checkpoint(tmp)
    return lambda: load_checkpoint(path), ["load_checkpoint: cannot read", path]


def load_garbage_checkpoint(tmp):
    path = str(tmp / "checkpoint.npz")
    with open(path, "wb") as f:
        f.write(b"these bytes are no zip archive")
    return lambda: load_checkpoint(path), ["load_checkpoint: cannot read", path]


def load_state_dict_truncated(tmp):
    path = truncated_checkpoint(tmp)
    return lambda: nn.load_state_dict(path), ["load_state_dict: cannot read", path]


def load_checkpoint_of_a_state_dict(tmp):
    path = str(tmp / "weights.npz")
    nn.save_state_dict(small_model(), path)
    return lambda: load_checkpoint(path), [path, "no 'meta' entry"]


def resume_from_truncated_checkpoint(tmp):
    path = truncated_checkpoint(tmp)
    return lambda: fit(small_model(), data(), epochs=2, progress=False, out_dir=tmp, resume=True), [path]


def evaluate_truncated_checkpoint(tmp):
    out = tmp / "run"
    path = truncated_checkpoint(out)
    (out / "run.json").write_text('{"model": "fcn32s", "num_classes": 9}')
    return lambda: main(["evaluate", "--out", str(out)]), ["cannot read", path]


def voc_truncated_jpeg(tmp):
    path = voc_folder(tmp, truncate_jpeg)
    return lambda: VOCSegmentation(str(tmp), "train")[0], ["VOCSegmentation: cannot read", path]


def voc_garbled_png(tmp):
    path = voc_folder(tmp, garble_png)
    return lambda: VOCSegmentation(str(tmp), "train")[0], ["VOCSegmentation: cannot read", path]


def fit_all_ignored_batch(tmp):
    return (lambda: fit(small_model(), all_ignored(), epochs=1, batch_size=2, progress=False),
            ["fit: batch 1 of epoch 1", "no labelled pixel", "ignore_index=255"])


def fit_over_an_earlier_run(tmp):
    path = checkpoint(tmp)
    return lambda: fit(small_model(), data(), epochs=1, progress=False, out_dir=tmp), [path, "overwrite=True"]


def fit_resume_and_overwrite(tmp):
    return (lambda: fit(small_model(), data(), epochs=1, progress=False, out_dir=tmp, resume=True, overwrite=True),
            ["resume=True", "overwrite=True"])


CASES = [
    (fit_epochs_zero, ValueError),
    (fit_epochs_negative, ValueError),
    (cli("--epochs", "0"), SystemExit),                  # was an IndexError after the run
    (cli("--crop", "-4"), SystemExit),                   # was an error deep in conv2d
    (cli("--crop", "0"), SystemExit),                    # was silently no crop
    (cli("--batch-size", "0"), SystemExit),
    (cli("--lr", "-0.1"), SystemExit),
    (loader_negative_crop, ValueError),
    (fit_zero_crop, ValueError),
    (crop_flip_zero_height, ValueError),
    (load_truncated_checkpoint, OSError),
    (load_garbage_checkpoint, OSError),
    (load_state_dict_truncated, OSError),
    (load_checkpoint_of_a_state_dict, ValueError),
    (resume_from_truncated_checkpoint, OSError),
    (evaluate_truncated_checkpoint, OSError),
    (voc_truncated_jpeg, OSError),
    (voc_garbled_png, OSError),
    (fit_all_ignored_batch, ValueError),                 # was "lower the learning rate"
    (fit_over_an_earlier_run, FileExistsError),
    (fit_resume_and_overwrite, ValueError),
]


@pytest.mark.parametrize("make, error", CASES, ids=[make.__name__ for make, _ in CASES])
def test_bad_input_raises_a_clear_error(make, error, tmp_path, capsys):
    call, needles = make(tmp_path)
    with pytest.raises(error) as raised:
        call()
    message = str(raised.value) + capsys.readouterr().err  # argparse prints its message, then exits
    for needle in needles:
        assert needle in message, f"{needle!r} not in {message!r}"
