"""crf.tune: choosing the CRF's parameters on held-out scenes by mean IU (lesson 12)."""
import numpy as np
import pytest

from minisegnet import crf
from minisegnet.data import CLASSES, ThingsAndStuff
from minisegnet.metrics import SegmentationMetrics


@pytest.fixture(scope="module")
def scenes():
    """Three 32x32 scenes and a coarse, FCN-32s-like prediction of each (blocks of 16 px)."""
    data = ThingsAndStuff(3, 32, seed=7)
    probabilities = np.stack([crf.blocky_prediction(l, len(CLASSES), factor=16) for l in data.labels])
    return probabilities, data.images, data.labels


def mean_iou(labelling, labels):
    return SegmentationMetrics(len(CLASSES)).update(labelling, labels).compute()["mean_iou"]


def test_scores_are_the_refined_mean_iou_in_grid_order_and_best_is_their_argmax(scenes):
    probabilities, images, labels = scenes
    grid = [dict(w1=0.0, w2=0.0), dict(w1=3.0, theta_alpha=8.0), {}]
    best, scores = crf.tune(probabilities, images, labels, grid)
    assert [setting for setting, _ in scores] == grid
    # with both kernels off the message is zero: Q is the network's softmax, so the score is the net's own
    assert scores[0][1] == pytest.approx(mean_iou(probabilities.argmax(axis=1), labels), abs=1e-12)
    for setting, score in scores[1:]:
        refined = crf.dense_crf_batch(probabilities, images, **setting)
        assert score == pytest.approx(mean_iou(refined.argmax(axis=1), labels), abs=1e-12)
    winner = max(range(len(grid)), key=lambda k: scores[k][1])
    assert best == {**crf.DEFAULTS, **grid[winner]}


def test_the_first_of_equal_settings_wins(scenes):
    probabilities, images, labels = scenes
    best, scores = crf.tune(probabilities, images, labels, [dict(w1=0.0, w2=0.0, iterations=1),
                                                            dict(w1=0.0, w2=0.0, iterations=2)])
    assert scores[0][1] == scores[1][1]
    assert best["iterations"] == 1


def test_the_crf_beats_no_crf_on_coarse_predictions(scenes):
    # what tuning is for: on blobby predictions, some setting of the grid does better than none at all
    probabilities, images, labels = scenes
    best, scores = crf.tune(probabilities, images, labels, [dict(w1=0.0, w2=0.0), {}])
    assert scores[1][1] > scores[0][1] and best == crf.DEFAULTS


def test_bad_inputs_are_named(scenes):
    probabilities, images, labels = scenes
    with pytest.raises(ValueError, match="tune: the grid is empty"):
        crf.tune(probabilities, images, labels, [])
    with pytest.raises(TypeError, match=r"tune: unknown parameters \['theta'\]"):
        crf.tune(probabilities, images, labels, [dict(theta=3.0)])
    with pytest.raises(ValueError, match=r"tune: .*got \(3, 9, 32, 32\), \(2, 3, 32, 32\) and \(3, 32, 32\)"):
        crf.tune(probabilities, images[:2], labels, [{}])
    with pytest.raises(ValueError, match=r"tune: .*got \(9, 32, 32\)"):
        crf.tune(probabilities[0], images[0], labels[0], [{}])
