"""Metrics against hand-computed confusion matrices, ignore pixels and absent classes."""
import numpy as np
import pytest

from minisegnet.metrics import (SegmentationMetrics, boundary_accuracy, boundary_mask, confusion_among,
                                confusion_matrix, right_shape_rate, scores_from_confusion)


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


def test_predicting_an_absent_class_costs_it_an_iu_of_zero():
    """A class predicted but absent from the ground truth has IU 0 and counts in the mean (FCN's
    score.py: diag / (rows + cols - diag), nanmean); only its accuracy is undefined."""
    s = scores_from_confusion(np.array([[1, 1], [0, 0]]))
    np.testing.assert_allclose(s["per_class_iou"], [0.5, 0.0])
    np.testing.assert_allclose(s["per_class_accuracy"], [0.5, np.nan])
    assert s["mean_iou"] == pytest.approx(0.25) and s["mean_accuracy"] == pytest.approx(0.5)


def test_the_trust_issue_example_gives_the_fcn_mean_iu():
    n = confusion_matrix([0, 0, 0, 2, 1, 1, 1, 2], [0, 0, 0, 0, 1, 1, 1, 1], 3)
    np.testing.assert_array_equal(n, [[3, 0, 1], [0, 3, 1], [0, 0, 0]])
    with np.errstate(invalid="ignore", divide="ignore"):
        fcn_iu = np.diag(n) / (n.sum(axis=1) + n.sum(axis=0) - np.diag(n))  # FCN's score.py
    s = scores_from_confusion(n)
    np.testing.assert_allclose(s["per_class_iou"], fcn_iu)
    assert s["mean_iou"] == pytest.approx(np.nanmean(fcn_iu)) == pytest.approx(0.5)
    assert s["fw_iou"] == pytest.approx((4 * 0.75 + 4 * 0.75) / 8)


def plain_scores(pred, target, num_classes, ignore_index=255):
    """The metrics straight from the label maps, one class at a time, without a confusion matrix."""
    keep = target != ignore_index
    pred, target = pred[keep], target[keep]
    iou, acc, freq = [], [], []
    for c in range(num_classes):
        inter = np.sum((pred == c) & (target == c))
        union = np.sum((pred == c) | (target == c))
        truth = np.sum(target == c)
        iou.append(inter / union if union else np.nan)
        acc.append(inter / truth if truth else np.nan)
        freq.append(truth)
    iou, acc, freq = np.array(iou), np.array(acc), np.array(freq)
    present = freq > 0
    return {"pixel_accuracy": np.mean(pred == target), "mean_accuracy": np.nanmean(acc),
            "mean_iou": np.nanmean(iou), "fw_iou": np.sum(freq[present] * iou[present]) / freq.sum(),
            "per_class_iou": iou, "per_class_accuracy": acc}


@pytest.mark.parametrize("seed", range(6))
def test_scores_equal_the_plain_per_class_formulas(seed):
    """Random maps over 6 classes where the ground truth uses only 0..3 and the prediction 1..4: class 0
    is never predicted, class 4 is predicted but absent, class 5 appears in neither."""
    rng = np.random.default_rng(seed)
    target = rng.integers(0, 4, size=(2, 7, 9))
    target[0, :2] = 255
    pred = np.where(rng.random(target.shape) < 0.5, np.clip(target, 1, 4), rng.integers(1, 5, size=target.shape))
    ours = SegmentationMetrics(6).update(pred, target).compute()
    theirs = plain_scores(pred, target, 6)
    for key in theirs:
        np.testing.assert_allclose(ours[key], theirs[key], rtol=1e-12, err_msg=key)
    assert ours["per_class_iou"][4] == 0 and np.isnan(ours["per_class_iou"][5])
    assert np.isnan(ours["per_class_accuracy"][4])


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


def test_confusion_matrix_refuses_mismatched_shapes_and_fractional_labels():
    target = np.zeros((2, 3), dtype=np.int64)
    with pytest.raises(ValueError, match=r"confusion_matrix: prediction shape \(3, 2\) differs from target shape "
                                         r"\(2, 3\)"):
        confusion_matrix(np.zeros((3, 2), dtype=np.int64), target, 3)
    with pytest.raises(ValueError, match=r"confusion_matrix: prediction labels must be whole class numbers, "
                                         r"got \[1.7\]"):
        confusion_matrix(np.array([[0.0, 1.7, 1.0], [0, 0, 0]]), target, 3)
    with pytest.raises(ValueError, match=r"confusion_matrix: target labels must be whole class numbers, got \[nan\]"):
        confusion_matrix(target, np.full((2, 3), np.nan), 3)
    # whole numbers stored as floats are still labels
    np.testing.assert_array_equal(confusion_matrix(np.array([1.0, 2.0]), np.array([1.0, 255.0]), 3),
                                  [[0, 0, 0], [0, 1, 0], [0, 0, 0]])
    with pytest.raises(ValueError, match=r"confusion_matrix: prediction shape \(6,\)"):
        SegmentationMetrics(3).update(np.zeros(6, dtype=np.int64), target)


def test_boundary_accuracy_refuses_mismatched_shapes_and_fractional_labels():
    target = np.zeros((1, 4, 6), dtype=np.int64)
    target[0, :, 3:] = 1
    with pytest.raises(ValueError, match=r"boundary_accuracy: prediction shape \(1, 6, 4\) differs from target "
                                         r"shape \(1, 4, 6\)"):
        boundary_accuracy(np.zeros((1, 6, 4), dtype=np.int64), target, 1)
    with pytest.raises(ValueError, match=r"boundary_accuracy: prediction labels must be whole class numbers"):
        boundary_accuracy(target + 0.5, target, 1)


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


def test_integer_labels_with_an_extra_axis_are_refused_not_argmaxed():
    with pytest.raises(ValueError, match="shape"):
        SegmentationMetrics(3).update(np.zeros((3, 3, 3), dtype=np.int64), np.zeros((3, 3), dtype=np.int64))


# --- accuracy by distance to the nearest boundary (lesson 8) -------------------------------------------

from minisegnet.metrics import accuracy_by_boundary_distance, boundary_distance  # noqa: E402


def test_boundary_distance_counts_pixels_from_the_edge():
    target = np.zeros((8, 8), dtype=np.int64)
    target[:, 4:] = 1  # a vertical edge between columns 3 and 4
    np.testing.assert_array_equal(boundary_distance(target), np.tile([4, 3, 2, 1, 1, 2, 3, 4], (8, 1)))
    square = np.zeros((1, 7, 7), dtype=np.int64)
    square[0, 3, 3] = 1  # one pixel: it and its 4 neighbours are the edge (boundary_mask compares along
    expected = np.array([[4, 3, 3, 3, 3, 3, 4],  # rows and columns), then the band grows by 3x3 steps
                         [3, 3, 2, 2, 2, 3, 3],
                         [3, 2, 2, 1, 2, 2, 3],
                         [3, 2, 1, 1, 1, 2, 3],
                         [3, 2, 2, 1, 2, 2, 3],
                         [3, 3, 2, 2, 2, 3, 3],
                         [4, 3, 3, 3, 3, 3, 4]])
    np.testing.assert_array_equal(boundary_distance(square)[0], expected)


def test_boundary_distance_without_a_boundary_is_inf_and_ignored_pixels_nan():
    target = np.zeros((2, 5, 5), dtype=np.int64)
    target[1, :, 3:] = 2
    target[1, 0, 0] = 255
    d = boundary_distance(target)
    assert np.isinf(d[0]).all()  # the first scene has one class: no boundary anywhere
    assert np.isnan(d[1, 0, 0]) and d[1, 0, 1] == 1 and d[1, 1, 0] == 1  # an ignored pixel's neighbours are edges
    assert d[1, 1, 1] == 2 and d[1, 3, 0] == 3 and d[1, 0, 2] == 1 and d[1, 4, 4] == 2


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_boundary_distance_agrees_with_every_boundary_mask(seed):
    rng = np.random.default_rng(seed)
    target = rng.integers(0, 3, size=(3, 12, 14)).repeat(3, axis=1)[:, :20]  # blocks, so bands several px wide
    target[0, 5, 5] = 255
    d = boundary_distance(target)
    for width in range(1, 12):
        np.testing.assert_array_equal(d <= width, boundary_mask(target, width))


def test_accuracy_by_boundary_distance_by_hand():
    target = np.zeros((1, 8, 8), dtype=np.int64)
    target[0, :, 4:] = 1  # distances per column: 4 3 2 1 1 2 3 4
    pred = target.copy()
    pred[0, :, 3] = 1  # wrong at distance 1 on class 0's side
    pred[0, :2, 7] = 0  # wrong at distance 4, two pixels of class 1
    pixels, accuracy = accuracy_by_boundary_distance(pred, target, (1, 2))
    np.testing.assert_array_equal(pixels, [16, 16, 32])  # bands 1, 2, > 2
    np.testing.assert_allclose(accuracy, [8 / 16, 1, 30 / 32])
    pixels, accuracy = accuracy_by_boundary_distance(pred, target, (1, 2, 8), classes=[0])
    np.testing.assert_array_equal(pixels, [8, 8, 16, 0])
    np.testing.assert_allclose(accuracy, [0, 1, 1, np.nan])
    pixels, accuracy = accuracy_by_boundary_distance(pred, target, (1, 2, 8), classes=[1])
    np.testing.assert_allclose(accuracy, [1, 1, 14 / 16, np.nan])
    scores = np.eye(2)[pred].transpose(0, 3, 1, 2)  # (N, C, H, W) scores give the same answer
    np.testing.assert_allclose(accuracy_by_boundary_distance(scores, target, (1, 2))[1], [8 / 16, 1, 30 / 32])


def test_accuracy_by_boundary_distance_refuses_bad_edges_and_shapes():
    target = np.zeros((1, 4, 4), dtype=np.int64)
    for edges in ([], [2, 2], [0, 3], [1.5]):
        with pytest.raises(ValueError, match="accuracy_by_boundary_distance: edges must be increasing whole numbers"):
            accuracy_by_boundary_distance(target, target, edges)
    with pytest.raises(ValueError, match=r"accuracy_by_boundary_distance: prediction shape \(1, 4, 3\)"):
        accuracy_by_boundary_distance(target[:, :, :3], target, (1,))
def test_right_shape_rate_counts_only_things_predicted_as_things_by_hand():
    """Classes 0 (stuff), 1, 2, 3 (things). Truth and prediction, one pixel each:
        truth 1 -> 1, 1 -> 1, 1 -> 2, 2 -> 2, 3 -> 1     (things predicted as things: 5, right: 3)
        truth 1 -> 0, 0 -> 3, 0 -> 0                     (a missed thing, stuff taken for a thing: neither)"""
    target = np.array([1, 1, 1, 2, 3, 1, 0, 0])
    pred = np.array([1, 1, 2, 2, 1, 0, 3, 0])
    n = confusion_matrix(pred, target, 4)
    np.testing.assert_array_equal(confusion_among(n, (1, 2, 3)), [[2, 1, 0],
                                                                  [0, 1, 0],
                                                                  [1, 0, 0]])
    assert right_shape_rate(n, (1, 2, 3)) == pytest.approx(3 / 5)
    np.testing.assert_array_equal(confusion_among(n, (3, 1)), [[0, 1], [0, 2]])  # in the order asked
    # a perfect stuff/thing separation that always names the wrong shape scores 0; no thing found: NaN
    assert right_shape_rate(confusion_matrix(np.array([2, 1]), np.array([1, 2]), 3), (1, 2)) == 0.0
    assert np.isnan(right_shape_rate(confusion_matrix(np.array([0, 0]), np.array([1, 2]), 3), (1, 2)))


def test_confusion_among_refuses_classes_outside_the_matrix():
    with pytest.raises(ValueError, match=r"classes \[1, 3\] must be non-empty and within \[0, 3\)"):
        confusion_among(np.eye(3), (1, 3))
    with pytest.raises(ValueError, match="square confusion matrix"):
        right_shape_rate(np.ones((2, 3)), (0,))


def test_painted_at_stride_is_the_truth_at_stride_1_and_loses_what_is_smaller_than_a_block():
    from minisegnet.metrics import painted_at_stride
    labels = np.zeros((1, 8, 8), dtype=np.int64)
    labels[0, :, 4:] = 1            # two halves: aligned with 4x4 blocks
    labels[0, 1, 1] = 2             # one pixel of class 2, inside a block of class 0
    one_hot = painted_at_stride(labels, 3, 1)
    assert one_hot.shape == (1, 3, 8, 8) and (one_hot.argmax(axis=1) == labels).all()
    painted = painted_at_stride(labels, 3, 4).argmax(axis=1)
    assert painted[0, 1, 1] == 0 and not (painted == 2).any()  # the lone pixel is outvoted by its block
    assert (painted[0, :, :3] == 0).all() and (painted[0, :, 5:] == 1).all()  # away from the edge, the halves stay
    np.testing.assert_allclose(painted_at_stride(labels, 3, 4).sum(axis=1), 1.0, rtol=1e-6)  # still a distribution
