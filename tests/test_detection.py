"""minisegnet.detection: HOG, sliding windows, the linear detector, NMS and box segmentation, by hand."""
import numpy as np
import pytest

import minisegnet as msn
from minisegnet import detection as D


def edge_image(kind, size=16):
    """(1, 3, size, size): 0 on one side of a straight edge through the middle, 1 on the other."""
    y, x = np.mgrid[:size, :size]
    inside = {"vertical": x >= size // 2, "horizontal": y >= size // 2, "diagonal": x + y >= size,
              "antidiagonal": x - y >= 0}[kind]
    return np.repeat(inside[None, None].astype(np.float32), 3, axis=1)


def bin_energy(blocks, bins):
    """The central block's values summed per orientation bin over its 4 cells: (bins,). (Away from the image
    border: where a diagonal edge meets it, the replicated edge adds a purely horizontal or vertical step.)"""
    middle = blocks.shape[2] // 2, blocks.shape[3] // 2
    return blocks[0, :, middle[0], middle[1]].reshape(4, bins).sum(axis=0)


def test_gradients_of_a_step_by_hand():
    magnitude, orientation = D.gradients(edge_image("vertical", 8))
    # I(x + 1) - I(x - 1): 1 at the two columns beside the step (3 and 4), 0 elsewhere (edges replicated)
    np.testing.assert_allclose(magnitude[0], np.tile([0, 0, 0, 1, 1, 0, 0, 0], (8, 1)))
    assert (orientation[0][magnitude[0] > 0] == 0).all()
    # bright to dark points the other way, but unsigned orientations agree
    _, flipped = D.gradients(1 - edge_image("vertical", 8))
    np.testing.assert_allclose(flipped[0][magnitude[0] > 0], 0, atol=1e-6)


@pytest.mark.parametrize("kind, expected", [("vertical", 0), ("horizontal", 2), ("diagonal", 1),
                                            ("antidiagonal", 3)])
def test_hog_puts_an_edges_energy_in_its_orientation_bin(kind, expected):
    # 4 bins centred on 0, 45, 90 and 135 degrees: a gradient along x (a vertical edge) is 0 degrees,
    # along y 90, along (1, 1) 45 and along (1, -1) 135; each lies on a bin centre, so one bin holds it all
    blocks = D.hog(edge_image(kind), cell=4, bins=4)
    assert blocks.shape == (1, 16, 3, 3)
    energy = bin_energy(blocks, 4)
    assert energy.argmax() == expected
    np.testing.assert_allclose(np.delete(energy, expected), 0, atol=1e-5)


def test_hog_soft_binning_splits_an_orientation_between_the_two_nearest_bins():
    # 45 degrees with 9 bins of 20: p = 2.25, so 3/4 of the magnitude to bin 2 and 1/4 to bin 3
    energy = bin_energy(D.hog(edge_image("diagonal"), cell=4, bins=9), 9)
    assert energy[2] / energy[3] == pytest.approx(3.0, rel=1e-4)
    np.testing.assert_allclose(np.delete(energy, [2, 3]), 0, atol=1e-5)


def test_hog_blocks_are_normalised():
    rng = np.random.default_rng(0)
    blocks = D.hog(rng.random((2, 3, 16, 16)).astype(np.float32), eps=1e-6)
    np.testing.assert_allclose(np.sqrt((blocks ** 2).sum(axis=1)), 1, rtol=1e-4)
    flat = D.hog(np.full((1, 3, 16, 16), 0.5, dtype=np.float32))  # no gradient anywhere: all zeros, no NaN
    assert np.isfinite(flat).all() and (flat == 0).all()


def test_hog_refuses_bad_images():
    with pytest.raises(ValueError, match=r"hog: image size 10x16 must be a multiple of cell=4"):
        D.hog(np.zeros((1, 3, 10, 16), dtype=np.float32))
    with pytest.raises(ValueError, match=r"hog: images must have shape \(N, C, H, W\), got shape \(3, 16, 16\)"):
        D.hog(np.zeros((3, 16, 16), dtype=np.float32))
    with pytest.raises(TypeError, match="hog: images must be floating point"):
        D.hog(np.zeros((1, 3, 16, 16), dtype=np.int64))


def test_window_counts_by_hand():
    # 64 px at scale 1: 16 cells + 2 of margin = 18, windows of 8 cells at a stride of one: 11
    assert D.windows_per_side(64, 1.0) == 11
    # at 1.2: round(76.8) = 77 px, 19 whole cells + 2 = 21 -> 14; at 0.6: 38 px, 9 cells + 2 = 11 -> 4
    assert D.windows_per_side(64, 1.2) == 14 and D.windows_per_side(64, 0.6) == 4
    with pytest.raises(ValueError, match="windows_per_side: at scale 0.2 a 64-px side becomes 13 px"):
        D.windows_per_side(64, 0.2)


def test_pyramid_windows_boxes_and_feature_sizes():
    images = np.random.default_rng(1).random((2, 3, 64, 64)).astype(np.float32)
    (features, boxes), (features_small, boxes_small) = D.pyramid_windows(images, (1.0, 0.5))
    assert boxes.shape == (11, 11, 4) and features.shape == (2, 36, 17, 17)  # 18 cells -> 17 blocks
    # window (i, j) at scale 1: cells i .. i + 7 of the padded image, its box cells i + 1 .. i + 6, minus the
    # one-cell margin: pixels 4i .. 4i + 24 of the scene
    np.testing.assert_allclose(boxes[0, 0], (0, 0, 24, 24))
    np.testing.assert_allclose(boxes[2, 3], (8, 12, 32, 36))
    # at scale 1/2 the same window covers twice the pixels: 48-px boxes at a stride of 8
    assert boxes_small.shape == (3, 3, 4)
    np.testing.assert_allclose(boxes_small[1, 2], (8, 16, 56, 64))


def test_box_iou_by_hand():
    a = [(0, 0, 2, 2), (0, 0, 4, 4)]
    b = [(1, 1, 3, 3), (0, 0, 2, 2), (5, 5, 6, 6)]
    # (0,0,2,2) with (1,1,3,3): intersection 1, union 4 + 4 - 1 = 7; (0,0,4,4) contains (0,0,2,2): 4 / 16
    np.testing.assert_allclose(D.box_iou(a, b), [[1 / 7, 1, 0], [4 / 16, 4 / 16, 0]])
    assert D.box_iou([(1, 1, 1, 1)], [(1, 1, 1, 1)])[0, 0] == 0  # empty boxes: no overlap, no NaN
    with pytest.raises(ValueError, match="box_iou: boxes of b must have y1 >= y0"):
        D.box_iou(a, [(3, 0, 1, 2)])


def test_nms_by_hand():
    boxes = [(0, 0, 10, 10), (1, 0, 11, 10), (20, 20, 30, 30), (0, 1, 10, 11)]
    scores = [0.6, 0.9, 0.5, 0.7]
    # 1 (0.9) first; 0 and 3 overlap it by IoU 90/110 = 0.82 and 81/119 = 0.68 and go; 2 overlaps nothing
    np.testing.assert_array_equal(D.nms(boxes, scores, iou=0.3), [1, 2])
    np.testing.assert_array_equal(D.nms(boxes, scores, iou=0.95), [1, 3, 0, 2])  # nothing suppressed, best first
    assert len(D.nms(np.zeros((0, 4)), [])) == 0
    with pytest.raises(ValueError, match=r"nms: 4 boxes but scores of shape \(3,\)"):
        D.nms(boxes, scores[:3])


def test_object_boxes_are_squares_around_the_visible_pixels():
    instances = np.zeros((20, 20), dtype=np.int64)
    instances[4:6, 2:12] = 1      # a 2 x 10 bar: centre (5, 7), side 10
    instances[10:14, 10:14] = 3   # a 4 x 4 square
    assert D.object_boxes(instances) == {1: (0.0, 2.0, 10.0, 12.0), 3: (10.0, 10.0, 14.0, 14.0)}


def test_window_targets_positive_negative_and_left_out():
    truth = np.array([(0, 0, 10, 10)], dtype=float)
    windows = np.array([(0, 0, 10, 10), (0, 5, 10, 15), (0, 8, 10, 18), (20, 20, 30, 30)], dtype=float)
    # IoU 1, 50/150 = 0.33, 20/180 = 0.11, 0: class 4, left out, background, background
    np.testing.assert_array_equal(D.window_targets(windows, truth, [4]), [4, -1, 0, 0])
    np.testing.assert_array_equal(D.window_targets(windows, np.zeros((0, 4)), []), [0, 0, 0, 0])


def test_the_detector_scores_a_map_as_it_classifies_each_window():
    msn.manual_seed(0)
    model = D.LinearDetector(3, bins=2, window=3)  # 8 channels, a 2 x 2 kernel over the blocks
    blocks = np.random.default_rng(2).random((1, 8, 4, 5)).astype(np.float32)
    with msn.no_grad():
        scores = model(msn.Tensor(blocks)).data  # (1, 3, 3, 4): one score vector per window
        assert scores.shape == (1, 3, 3, 4)
        for i in range(3):
            for j in range(4):
                one = model.classify(msn.Tensor(np.ascontiguousarray(blocks[:, :, i:i + 2, j:j + 2]))).data
                np.testing.assert_allclose(one[0], scores[0, :, i, j], rtol=1e-5, atol=1e-6)


def test_train_detector_learns_separable_windows_and_refuses_bad_targets():
    msn.manual_seed(0)
    rng = np.random.default_rng(3)
    targets = rng.integers(0, 3, 300)
    features = (rng.normal(size=(300, 8, 2, 2)) * 0.3 + targets[:, None, None, None]).astype(np.float32)
    features[:, 4:] *= -1
    model = D.LinearDetector(3, bins=2, window=3)
    losses = D.train_detector(model, features, targets, epochs=20, batch_size=32, lr=0.05)
    assert losses[-1] < 0.5 * losses[0]
    with msn.no_grad():
        predicted = model.classify(msn.Tensor(features)).data.argmax(axis=1)
    assert (predicted == targets).mean() > 0.9
    with pytest.raises(ValueError, match=r"train_detector: targets must be in \[0, 3\), got 0..3"):
        D.train_detector(model, features[:2], np.array([0, 3]))
    with pytest.raises(ValueError, match="train_detector: 2 windows and 3 targets"):
        D.train_detector(model, features[:2], np.array([0, 1, 2]))


def test_segment_box_finds_a_disc_on_noisy_stuff():
    rng = np.random.default_rng(4)
    size = 48
    y, x = np.mgrid[:size, :size]
    disc = (y - 24) ** 2 + (x - 22) ** 2 <= 9 ** 2
    grass = np.array([0.27, 0.59, 0.24])[:, None, None] * (0.6 + 0.8 * rng.random((1, size, size)))  # like grass
    thing = np.array([0.8, 0.3, 0.6])[:, None, None] * (0.9 + 0.2 * rng.random((1, size, size)))
    image = np.where(disc, thing, grass)
    box = (15, 13, 34, 32)  # about the disc, one pixel off: the box is grown before segmenting
    mask = D.segment_box(D.smooth(image), box)
    iou = (mask & disc).sum() / (mask | disc).sum()
    assert iou > 0.9
    labels = D.segment_detections(image, D.Detections(np.array([box], dtype=float), np.array([2]), np.array([0.9])))
    assert set(np.unique(labels)) == {0, 2} and ((labels == 2) & disc).sum() / ((labels == 2) | disc).sum() > 0.9
    with pytest.raises(ValueError, match="segment_box: need one"):
        D.segment_box(image[None], box)
    with pytest.raises(ValueError, match="smooth: need one"):
        D.smooth(image, 2)


def test_detect_finds_a_square_it_was_taught_and_refuses_bad_settings():
    # a detector trained on one scene's windows finds the square in that scene again, with the right class
    rng = np.random.default_rng(5)
    image = (0.3 + 0.05 * rng.random((1, 3, 64, 64))).astype(np.float32)
    image[:, :, 20:40, 24:44] = 0.9
    pyramid = D.pyramid_windows(image, (1.0,))
    msn.manual_seed(0)
    features, targets = D.training_windows(pyramid, [(np.array([(20.0, 24.0, 40.0, 44.0)]), np.array([1]))],
                                           negatives=40)
    assert (targets == 1).sum() > 0 and (targets == 0).sum() == 40
    model = D.LinearDetector(2)
    D.train_detector(model, features, targets, epochs=30, batch_size=16)
    found = D.detect(model, image, (1.0,))[0]
    assert len(found.boxes) == 1 and found.classes[0] == 1
    assert D.box_iou(found.boxes, [(20, 24, 40, 44)])[0, 0] >= 0.5
    with pytest.raises(ValueError, match=r"detect: threshold and nms_iou must be in \[0, 1\], got 1.5, 0.3"):
        D.detect(model, image, (1.0,), threshold=1.5)
