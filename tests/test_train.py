"""Training: the loss falls, checkpoints resume to exactly the uninterrupted weights, and bad runs are named."""
import json
import os

import numpy as np
import pytest

import minisegnet as msn
from minisegnet.data import ThingsAndStuff
from minisegnet.models import build_model
from minisegnet.train import fit, load_checkpoint, median_frequency_weights, poly_lr

SMALL = dict(widths=(4, 6, 8, 8, 8), depths=(1, 1, 1, 1, 1))


@pytest.fixture(scope="module")
def data():
    return ThingsAndStuff(12, size=32, seed=0), ThingsAndStuff(4, size=32, seed=1)


def new_model(name="fcn8s", seed=0):
    msn.manual_seed(seed)
    return build_model(name, ThingsAndStuff.num_classes, **SMALL)


def test_a_short_run_reduces_the_loss_and_records_history(data, tmp_path):
    history = fit(new_model(), *data, epochs=4, batch_size=4, lr=0.01, progress=False, out_dir=tmp_path)
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert {"pixel_accuracy", "mean_iou", "fw_iou", "boundary_accuracy"} <= set(history[-1])
    assert json.load(open(tmp_path / "history.json"))[-1]["epoch"] == 4
    assert os.path.exists(tmp_path / "curves.png")
    assert sorted(os.listdir(tmp_path)) == ["checkpoint.npz", "curves.png", "history.json"]


def test_interrupted_run_resumes_to_the_same_weights(data, tmp_path):
    kwargs = dict(epochs=4, batch_size=4, lr=0.01, progress=False, optimizer="sgd", seed=3)
    straight = new_model()
    fit(straight, *data, out_dir=tmp_path / "a", **kwargs)
    interrupted = new_model()
    fit(interrupted, *data, out_dir=tmp_path / "b", stop_after_epoch=2, **kwargs)
    resumed = new_model(seed=99)  # a fresh process would start from other weights: the checkpoint decides
    history = fit(resumed, *data, out_dir=tmp_path / "b", resume=True, **kwargs)
    assert [h["epoch"] for h in history] == [1, 2, 3, 4]
    for (name, a), (_, b) in zip(straight.named_parameters(), resumed.named_parameters()):
        np.testing.assert_array_equal(a.data, b.data, err_msg=name)


def test_resume_refuses_another_architecture_or_class_count(data, tmp_path):
    fit(new_model("fcn32s"), *data, epochs=1, batch_size=4, progress=False, out_dir=tmp_path)
    with pytest.raises(ValueError, match="holds a 'fcn32s' model, but this run trains 'fcn8s'"):
        fit(new_model("fcn8s"), *data, epochs=2, progress=False, out_dir=tmp_path, resume=True)
    other = build_model("fcn32s", 4, **SMALL)
    with pytest.raises(ValueError, match="trained for 9 classes, this model has 4"):
        fit(other, *data, epochs=2, progress=False, out_dir=tmp_path, resume=True)
    assert load_checkpoint(tmp_path / "checkpoint.npz")[2]["epoch"] == 1


def test_nan_loss_and_empty_data_are_reported(data):
    with np.errstate(all="ignore"), pytest.raises(FloatingPointError, match="the loss became nan at epoch 1"):
        fit(new_model(), data[0], epochs=1, batch_size=4, lr=1e30, progress=False, optimizer="sgd")
    with pytest.raises(ValueError, match="training set is empty"):
        fit(new_model(), [], epochs=1)


def test_poly_schedule_and_median_frequency_weights(data):
    assert poly_lr(0.1, 0, 100) == 0.1 and poly_lr(0.1, 100, 100) == 0.0
    assert poly_lr(0.1, 50, 100, power=1.0) == pytest.approx(0.05)
    w = median_frequency_weights(data[0], ThingsAndStuff.num_classes)
    freq = data[0].class_frequencies()
    assert w[np.argmin(np.where(freq > 0, freq, 1))] == w.max()  # the rarest class weighs most
