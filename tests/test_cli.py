"""``python -m minisegnet train | evaluate | predict`` end to end: a tiny synthetic run, a run that another
command must not overwrite or mix with other settings, and a tiny PASCAL VOC-style folder with images of
several sizes, some smaller than the crop."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from minisegnet.__main__ import main

TINY = ["--train-size", "8", "--val-size", "4", "--size", "32", "--batch-size", "4", "--no-class-weights"]


def run(*args, cwd):
    result = subprocess.run([sys.executable, "-m", "minisegnet", *args], capture_output=True, text=True, cwd=cwd)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_train_then_resume_evaluate_and_predict(tmp_path):
    out = str(tmp_path / "run")
    tiny = [*TINY, "--model", "fcn16s"]
    run("train", "--out", out, "--epochs", "1", *tiny, cwd=tmp_path)
    text = run("train", "--out", out, "--epochs", "2", *tiny, cwd=tmp_path)  # resumes at epoch 2
    assert "fcn16s: epoch 2" in text
    assert [h["epoch"] for h in json.load(open(f"{out}/history.json"))] == [1, 2]
    table = run("evaluate", "--out", out, cwd=tmp_path)
    assert "mean IU" in table and "fcn16s" in table
    assert "pixel_accuracy" in json.load(open(f"{out}/metrics.json"))
    assert "predictions.png" in run("predict", "--out", out, "--count", "3", cwd=tmp_path)


def snapshot(folder):
    """Every file's bytes and modification time."""
    return {name: ((folder / name).read_bytes(), os.stat(folder / name).st_mtime_ns) for name in os.listdir(folder)}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A one-epoch FCN-32s run, evaluated (so it has metrics.json too)."""
    out = tmp_path_factory.mktemp("trained") / "run"
    main(["train", "--out", str(out), "--epochs", "1", "--model", "fcn32s", *TINY])
    main(["evaluate", "--out", str(out)])
    return out


@pytest.mark.parametrize("change, was, asked", [
    (["--model", "fcn16s"], "'fcn32s'", "'fcn16s'"),
    (["--seed", "1"], "0", "1"),
    (["--size", "48"], "32", "48"),
    (["--optimizer", "sgd"], "'adam'", "'sgd'"),
])
def test_train_refuses_another_runs_settings_before_touching_a_file(trained, tmp_path, change, was, asked):
    out = tmp_path / "run"
    shutil.copytree(trained, out)
    before = snapshot(out)
    with pytest.raises(SystemExit) as refused:  # argparse: the last occurrence of a flag wins
        main(["train", "--out", str(out), "--epochs", "2", *TINY, "--model", "fcn32s", *change])
    message = str(refused.value.code)
    assert f"{change[0]}: the run has {was}, this command asks for {asked}" in message
    assert "nothing was changed" in message and "--overwrite" in message
    assert snapshot(out) == before


def test_train_overwrite_replaces_the_run_and_its_scores(trained, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(trained, out)
    main(["train", "--out", str(out), "--epochs", "1", *TINY, "--model", "fcn16s", "--seed", "1", "--overwrite"])
    settings = json.load(open(out / "run.json"))
    assert settings["model"] == "fcn16s" and settings["seed"] == 1 and "overwrite" not in settings
    assert "metrics.json" not in os.listdir(out)  # the old run's scores went with it
    main(["evaluate", "--out", str(out)])


def test_train_refuses_a_checkpoint_without_run_json(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "checkpoint.npz").write_bytes(b"someone else's")
    with pytest.raises(SystemExit, match="checkpoint.npz exists but .*run.json does not"):
        main(["train", "--out", str(out), "--epochs", "1", *TINY])
    assert os.listdir(out) == ["checkpoint.npz"]


VOC_SIZES = {"train": [(40, 52), (20, 30), (33, 21), (52, 40), (24, 24)],   # (20, 30), (33, 21): smaller than 24
             "val": [(36, 44), (17, 25), (30, 30)]}


def make_voc(root, sizes=VOC_SIZES):
    """A VOC-style folder: JPEG images, palette PNG labels (classes 0, 1, 15 and 255 on the edges), split lists."""
    from PIL import Image

    from minisegnet.data import voc_palette
    for sub in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        os.makedirs(os.path.join(root, sub), exist_ok=True)
    rng = np.random.default_rng(0)
    for split, shapes in sizes.items():
        ids = [f"2007_{split}{i:03d}" for i in range(len(shapes))]
        for image_id, (h, w) in zip(ids, shapes):
            labels = np.zeros((h, w), dtype=np.uint8)
            labels[h // 4:h // 2, w // 4:] = 1
            labels[h // 2:, : w // 2] = 15
            labels[h // 4, :] = 255  # VOC's boundary band
            picture = (np.stack([labels * 15, labels * 7, 255 - labels * 9], axis=-1)
                       + rng.integers(0, 30, (h, w, 3))).clip(0, 255).astype(np.uint8)
            Image.fromarray(picture).save(f"{root}/JPEGImages/{image_id}.jpg")
            png = Image.fromarray(labels, mode="P")
            png.putpalette(voc_palette().ravel().tolist())
            png.save(f"{root}/SegmentationClass/{image_id}.png")
        with open(f"{root}/ImageSets/Segmentation/{split}.txt", "w") as f:
            f.write("\n".join(ids) + "\n")


def forbid_nan(constant):
    raise ValueError(f"not JSON: {constant}")


def test_voc_train_evaluate_predict_on_images_of_several_sizes(tmp_path):
    voc, out = tmp_path / "VOC2012", tmp_path / "runs" / "voc"
    make_voc(str(voc))
    text = run("train", "--model", "fcn32s", "--voc", "VOC2012", "--crop", "24", "--epochs", "1",
               "--batch-size", "2", "--out", "runs/voc", cwd=tmp_path)
    assert "fcn32s: epoch 1" in text
    settings = json.load(open(out / "run.json"))
    assert settings["voc"] == str(voc) and settings["num_classes"] == 21  # absolute: evaluate runs from anywhere
    assert "mean IU" in run("evaluate", "--out", str(out), cwd=voc)
    metrics = json.loads((out / "metrics.json").read_text(), parse_constant=forbid_nan)
    assert metrics["per_class_iou"][2] is None  # bicycle is in no image: no IU, and JSON has no NaN
    assert len(metrics["per_class_iou"]) == 21
    json.loads((out / "history.json").read_text(), parse_constant=forbid_nan)
    assert "predictions.png" in run("predict", "--out", str(out), "--count", "3", cwd=tmp_path)
    assert (out / "predictions.png").stat().st_size > 0
