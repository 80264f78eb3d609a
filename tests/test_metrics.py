"""Metrics against hand-computed confusion matrices, ignore pixels and absent classes."""
import numpy as np
import pytest

from minisegnet.metrics import (SegmentationMetrics, boundary_accuracy, boundary_mask, confusion_matrix,
                                scores_from_confusion)


def test_confusion_matrix_rows_are_truth_columns_prediction_and_ignore_is_dropped():
    target = np.array([[0, 0, 1], [1, 2, 255]])
    pred = np.array([[0, 1, 1], [2, 2, 0]])
    n = confusion_matrix(pred, target, 3)
    np.testing.assert_array_equal(n, [[1, 1, 0],
                                      [0, 1, 1],
                                      [0, 0, 1]])


def test_fcn_paper_metrics_by_hand():
    n = np.array([[3, 1, 0],
                  [2, 2, 0],
                  [0, 0, 0]])  # class 2 absent from the ground truth
    s = scores_from_confusion(n)
    # t = (4, 4, 0); predicted = (5, 3, 0)
    assert s["pixel_accuracy"] == pytest.approx(5 / 8)
    np.testing.assert_allclose(s["per_class_accuracy"], [3 / 4, 2 / 4, np.nan])
    np.testing.assert_allclose(s["per_class_iou"], [3 / (4 + 5 - 3), 2 / (4 + 3 - 2), np.nan])
    assert s["mean_accuracy"] == pytest.approx((3 / 4 + 2 / 4) / 2)
    assert s["mean_iou"] == pytest.approx((3 / 6 + 2 / 5) / 2)
    assert s["fw_iou"] == pytest.approx((4 * 3 / 6 + 4 * 2 / 5) / 8)


def test_predicting_an_absent_class_still_costs_the_present_ones():
    s = scores_from_confusion(np.array([[1, 1], [0, 0]]))
    assert np.isnan(s["per_class_iou"][1]) and s["mean_iou"] == pytest.approx(0.5)


def test_metrics_accumulate_over_batches_and_take_scores():
    rng = np.random.default_rng(0)
    target = rng.integers(0, 4, size=(3, 5, 6))
    target[0, 0] = 255
    scores = rng.normal(size=(3, 4, 5, 6))
    m = SegmentationMetrics(4)
    m.update(scores[:2], target[:2]).update(scores[2:], target[2:])
    np.testing.assert_array_equal(m.confusion, confusion_matrix(scores.argmax(1), target, 4))
    assert m.compute()["pixel_accuracy"] == pytest.approx((scores.argmax(1) == target)[target != 255].mean())


def test_confusion_matrix_reports_bad_labels():
    with pytest.raises(ValueError, match=r"target labels \[7\] are outside \[0, 3\)"):
        confusion_matrix(np.array([0, 1]), np.array([7, 1]), 3)
    with pytest.raises(ValueError, match=r"prediction labels \[-1\] are outside \[0, 3\)"):
        confusion_matrix(np.array([-1, 1]), np.array([0, 1]), 3)


def test_boundary_band_and_accuracy():
    target = np.zeros((1, 8, 8), dtype=np.int64)
    target[0, :, 4:] = 1  # a vertical edge between columns 3 and 4
    band1 = boundary_mask(target, 1)[0]
    assert band1[:, 3:5].all() and band1.sum() == 16
    band2 = boundary_mask(target, 2)[0]
    assert band2[:, 2:6].all() and band2.sum() == 32
    pred = target.copy()
    pred[0, :, 3] = 1  # wrong on one side of the edge
    assert boundary_accuracy(pred, target, 1) == pytest.approx(0.5)
    assert boundary_accuracy(pred, target, 2) == pytest.approx(0.75)
