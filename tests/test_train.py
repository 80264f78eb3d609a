"""Training: the loss falls, checkpoints resume to exactly the uninterrupted weights, no run is overwritten or
littered by mistake, history.json is valid JSON, evaluation takes images of any size, and bad runs are named."""
import json
import os

import numpy as np
import pytest

import minisegnet as msn
from minisegnet.data import ThingsAndStuff
from minisegnet.models import build_model
from minisegnet.metrics import SegmentationMetrics
from minisegnet.train import (evaluate, fit, load_checkpoint, median_frequency_weights, poly_lr, predict,
                              same_size_batches)

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
    # the same name and classes, other layers (another version of the model, other widths): named, not a bare key list
    wider = build_model("fcn32s", ThingsAndStuff.num_classes, widths=(4, 6, 8, 8, 12), depths=(1, 1, 1, 1, 1))
    with pytest.raises(ValueError, match=r"resume: .*checkpoint.npz holds a 'fcn32s' model whose layers differ from this "
                                         r"one's \(load_state_dict \(FCN\): .*\); it was saved by another version or configuration"):
        fit(wider, *data, epochs=2, progress=False, out_dir=tmp_path, resume=True)
    assert load_checkpoint(tmp_path / "checkpoint.npz")[2]["epoch"] == 1


def test_nan_loss_and_empty_data_are_reported(data):
    with np.errstate(all="ignore"), pytest.raises(FloatingPointError, match="the loss became nan at epoch 1"):
        fit(new_model(), data[0], epochs=1, batch_size=4, lr=1e30, progress=False, optimizer="sgd")
    with pytest.raises(ValueError, match="training set is empty"):
        fit(new_model(), [], epochs=1)


def test_poly_schedule_and_median_frequency_weights(data):
    assert poly_lr(0.1, 0, 100) == 0.1 and poly_lr(0.1, 100, 100) == 0.0
    assert poly_lr(0.1, 50, 100, power=1.0) == pytest.approx(0.05)
    # a linear warm-up over the first 10 iterations: 1/10, 2/10, ... of the poly rate, then the poly rate itself
    assert poly_lr(0.1, 0, 100, power=1.0, warmup=10) == pytest.approx(0.1 * 0.1)
    assert poly_lr(0.1, 4, 100, power=1.0, warmup=10) == pytest.approx(0.096 * 0.5)
    assert poly_lr(0.1, 9, 100, power=1.0, warmup=10) == poly_lr(0.1, 9, 100, power=1.0)
    assert poly_lr(0.1, 50, 100, power=1.0, warmup=10) == poly_lr(0.1, 50, 100, power=1.0)
    with pytest.raises(ValueError, match="fit: warmup must be a number of iterations >= 0, got -1"):
        fit(new_model(), data[0], epochs=1, warmup=-1)
    w = median_frequency_weights(data[0], ThingsAndStuff.num_classes)
    freq = data[0].class_frequencies()
    assert w[np.argmin(np.where(freq > 0, freq, 1))] == w.max()  # the rarest class weighs most


def test_fit_refuses_to_overwrite_an_earlier_run_unless_asked(data, tmp_path):
    fit(new_model(), *data, epochs=1, batch_size=4, progress=False, out_dir=tmp_path, seed=1)
    before = (tmp_path / "checkpoint.npz").read_bytes()
    with pytest.raises(FileExistsError, match=r"checkpoint.npz holds an earlier run; pass resume=True .* "
                                              r"overwrite=True"):
        fit(new_model(), *data, epochs=1, batch_size=4, progress=False, out_dir=tmp_path, seed=2)
    assert (tmp_path / "checkpoint.npz").read_bytes() == before
    with pytest.raises(ValueError, match="pass one of them"):
        fit(new_model(), *data, epochs=1, progress=False, out_dir=tmp_path, resume=True, overwrite=True)
    history = fit(new_model(), *data, epochs=2, batch_size=4, progress=False, out_dir=tmp_path, seed=2,
                  overwrite=True)
    assert [h["epoch"] for h in history] == [1, 2]
    assert load_checkpoint(tmp_path / "checkpoint.npz")[2]["epoch"] == 2
    assert [h["epoch"] for h in json.load(open(tmp_path / "history.json"))] == [1, 2]


def forbid_nan(constant):
    raise ValueError(f"not JSON: {constant}")


def test_history_json_writes_undefined_metrics_as_null(tmp_path):
    """A class absent from the validation set has no IU (NaN in memory): JSON has no NaN, so null."""
    image = np.random.default_rng(0).random((3, 32, 32)).astype(np.float32)
    only_sky = [(image, np.zeros((32, 32), dtype=np.int64))] * 2  # one class, no boundary: NaN IUs and trimap
    history = fit(new_model(), only_sky, only_sky, epochs=1, batch_size=2, progress=False, out_dir=tmp_path)
    assert np.isnan(history[0]["boundary_accuracy"]) and np.isnan(history[0]["per_class_iou"][1])
    saved = json.loads((tmp_path / "history.json").read_text(), parse_constant=forbid_nan)
    assert saved[0]["boundary_accuracy"] is None and saved[0]["per_class_iou"][1] is None
    assert saved[0]["pixel_accuracy"] == history[0]["pixel_accuracy"]


def test_evaluate_scores_images_of_any_size_exactly(data):
    """Images of different sizes go in batches of one size; the scores are those of image-by-image."""
    model = new_model()
    rng = np.random.default_rng(0)
    mixed = [(rng.random((3, h, w)).astype(np.float32), rng.integers(0, 9, (h, w))) for h, w in
             [(20, 28), (20, 28), (9, 40), (33, 17), (33, 17), (33, 17)]]
    together = evaluate(model, mixed, batch_size=4, mean=[0.5] * 3, std=[0.25] * 3)
    confusion = SegmentationMetrics(9)
    for image, labels in mixed:
        scores = predict(model, (image[None] - 0.5) / 0.25)
        confusion.update(scores.argmax(axis=1), labels[None])
    expected = confusion.compute()
    for key in ("pixel_accuracy", "mean_iou", "fw_iou"):
        assert together[key] == pytest.approx(expected[key], rel=1e-12), key
    np.testing.assert_array_equal(together["confusion"], confusion.confusion)  # what the scores came from
    assert [len(b[0]) for b in same_size_batches(mixed, 4)] == [2, 1, 3]


def test_median_frequency_weights_count_images_of_any_size():
    data = [(None, np.array([[0, 0, 1]])), (None, np.array([[0], [2], [255]]))]
    w = median_frequency_weights(data, 3)  # counts 3, 1, 1: median freq 1/5
    np.testing.assert_allclose(w, [1 / 3, 1, 1], rtol=1e-6)


KILLED_WRITER = """
import os, signal, sys
import numpy as np
from minisegnet.nn import save_npz_atomic

def die_half_way(f, **arrays):
    f.write(b"PK half a checkpoint")
    f.flush()
    os.kill(os.getpid(), signal.SIGKILL)  # no except, no finally: the temporary stays

np.savez = die_half_way
save_npz_atomic(sys.argv[1], {"w": np.zeros(3)})
"""


def test_a_write_killed_half_way_leaves_a_temporary_that_the_next_write_removes(tmp_path):
    import subprocess
    import sys
    path = tmp_path / "checkpoint.npz"
    msn.nn.save_npz_atomic(path, {"w": np.ones(3)})
    killed = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(path)])
    assert killed.returncode == -9
    leftovers = [f for f in os.listdir(tmp_path) if f.startswith(".tmp-")]
    assert len(leftovers) == 1 and np.load(path)["w"].tolist() == [1, 1, 1]  # the old checkpoint is intact
    msn.nn.save_npz_atomic(path, {"w": np.full(3, 2.0)})
    assert os.listdir(tmp_path) == ["checkpoint.npz"]
    assert np.load(path)["w"].tolist() == [2, 2, 2]


def test_stale_temporary_cleaning_spares_live_writers_and_other_files(tmp_path):
    """Only dead writers' temporaries of this target go: a temporary whose writer still holds its
    lock, another target's temporary and the user's own files stay."""
    fcntl = pytest.importorskip("fcntl")
    names = {"dead": ".tmp-model.npz-abc123xy.npz", "legacy": ".tmp-k2j4h5g6.npz",
             "live": ".tmp-model.npz-live0001.npz", "other target": ".tmp-other.npz-abc123xy.npz",
             "user's": "model.tmp-1.npz", "longer target": ".tmp-model.npz-x.npz-abc123xy.npz"}
    for name in names.values():
        (tmp_path / name).write_bytes(b"PK")
    with open(tmp_path / names["live"], "rb") as live:
        fcntl.flock(live.fileno(), fcntl.LOCK_EX)
        msn.nn.save_npz_atomic(tmp_path / "model.npz", {"w": np.zeros(2)})
    left = set(os.listdir(tmp_path))
    assert names["dead"] not in left and names["legacy"] not in left
    assert {names["live"], names["other target"], names["user's"], names["longer target"], "model.npz"} == left
