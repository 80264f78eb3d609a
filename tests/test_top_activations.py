"""inspect.top_activations: a channel's k largest activations over a set of images, at most one per image,
each with its unit's receptive field clipped to the image. Checked by hand on tiny hand-made maps."""
import numpy as np
import pytest

import minisegnet as msn
from minisegnet import nn
from minisegnet.inspect import TopActivation, receptive_field, top_activations, unit_box

ONE_PIXEL = receptive_field([nn.Conv2d(1, 1, 1)])[-1]  # r = 1, j = 1, P = 0: unit (y, x) sees pixel (y, x)


def hand_made(maps):
    """Images whose first pixel holds their index, and an activation function that returns the hand-made
    maps (N, C, h, w) of exactly the images it is given (so batching cannot mix them up)."""
    maps = np.asarray(maps, dtype=np.float32)
    images = np.zeros((len(maps), 1, 6, 6), dtype=np.float32)
    images[:, 0, 0, 0] = np.arange(len(maps))

    def activation_fn(x):
        return msn.tensor(maps[x.numpy()[:, 0, 0, 0].astype(int)])
    return activation_fn, images


# three images, one channel, 2x3 units: image 0 holds the two largest values
MAPS = [[[[9, 0, 8],
          [0, 0, 0]]],
        [[[0, 0, 0],
          [0, 7, 0]]],
        [[[5, 0, 0],
          [0, 0, 1]]]]


def found(result):
    return [(t.index, t.y, t.x, t.value) for t in result]


@pytest.mark.parametrize("batch_size", [1, 2, 32])
def test_one_per_image_keeps_each_images_largest_and_orders_them(batch_size):
    fn, images = hand_made(MAPS)
    top = top_activations(fn, images, 0, k=3, row=ONE_PIXEL, batch_size=batch_size)
    assert found(top) == [(0, 0, 0, 9.0), (1, 1, 1, 7.0), (2, 0, 0, 5.0)]  # not image 0's 8: one per image
    assert all(isinstance(t, TopActivation) for t in top)
    # without the rule, image 0 gives two of the three
    assert found(top_activations(fn, images, 0, k=3, row=ONE_PIXEL, one_per_image=False,
                                 batch_size=batch_size)) == [(0, 0, 0, 9.0), (0, 0, 2, 8.0), (1, 1, 1, 7.0)]
    assert found(top_activations(fn, images, 0, k=1, row=ONE_PIXEL, batch_size=batch_size)) == [(0, 0, 0, 9.0)]


@pytest.mark.parametrize("batch_size", [1, 3])
def test_ties_go_to_the_lower_image_index_then_the_first_unit_in_row_major_order(batch_size):
    fn, images = hand_made([[[[1, 4, 4],
                              [4, 0, 0]]],
                            [[[4, 0, 0],
                              [0, 0, 0]]],
                            [[[0, 0, 0],
                              [0, 0, 4]]]])
    assert found(top_activations(fn, images, 0, k=3, row=ONE_PIXEL, batch_size=batch_size)) == [
        (0, 0, 1, 4.0), (1, 0, 0, 4.0), (2, 1, 2, 4.0)]
    assert found(top_activations(fn, images, 0, k=4, row=ONE_PIXEL, one_per_image=False, batch_size=batch_size)) == [
        (0, 0, 1, 4.0), (0, 0, 2, 4.0), (0, 1, 0, 4.0), (1, 0, 0, 4.0)]


def test_several_channels_give_one_list_each_from_one_scan():
    maps = np.concatenate([np.asarray(MAPS), -np.asarray(MAPS)], axis=1)  # channel 1: the negatives
    calls = []
    fn, images = hand_made(maps)
    counted = lambda x: calls.append(1) or fn(x)  # noqa: E731
    both = top_activations(counted, images, [1, 0], k=2, row=ONE_PIXEL)
    assert len(calls) == 1
    assert both[1] == top_activations(fn, images, 0, k=2, row=ONE_PIXEL)
    # channel 1 is -MAPS: each image's largest is its first zero in row-major order
    assert found(both[0]) == [(0, 0, 1, 0.0), (1, 0, 0, 0.0)]


def test_fields_are_placed_by_the_layer_and_clipped_to_the_image():
    """A 3x3 convolution (padding 1) then 2x2 pooling: r = 4, j = 2, P = 1, so unit (y, x) sees rows
    2y - 1 .. 2y + 2 and columns 2x - 1 .. 2x + 2 of the 6x6 images."""
    row = receptive_field([nn.Conv2d(1, 1, 3, padding=1), nn.MaxPool2d(2, 2)])[-1]
    assert (row.size, row.jump, row.effective_padding) == (4, 2, 1)
    fn, images = hand_made([[[[0, 0, 0], [0, 0, 0], [0, 0, 3]]],
                            [[[2, 0, 0], [0, 0, 0], [0, 0, 0]]],
                            [[[0, 0, 0], [0, 1, 0], [0, 0, 0]]]])
    corner, first, inside = top_activations(fn, images, 0, k=3, row=row)
    assert (corner.index, corner.y, corner.x) == (0, 2, 2)
    assert corner.field == (3, 6, 3, 6) and corner.box == (3, 5, 3, 5)  # row and column 6 are padding
    assert first.field == (-1, 2, -1, 2) and first.box == (0, 2, 0, 2)
    assert inside.field == inside.box == (1, 4, 1, 4) == unit_box(row, 1, 1)


def test_inside_keeps_only_units_whose_whole_field_is_in_the_image():
    """The same layer (r = 4, j = 2, P = 1) on 6x6 images: only unit (1, 1) sees rows and columns 1 .. 4
    without padding; units 0 and 2 of each axis reach row (column) -1 or 6."""
    row = receptive_field([nn.Conv2d(1, 1, 3, padding=1), nn.MaxPool2d(2, 2)])[-1]
    fn, images = hand_made([[[[9, 9, 9], [9, 1, 9], [9, 9, 9]]],
                            [[[0, 0, 0], [0, 3, 0], [0, 0, 0]]]])
    top = top_activations(fn, images, 0, k=2, row=row, inside=True)
    assert found(top) == [(1, 1, 1, 3.0), (0, 1, 1, 1.0)]
    assert all(t.field == t.box == (1, 4, 1, 4) for t in top)
    assert found(top_activations(fn, images, 0, k=2, row=row)) == [(0, 0, 0, 9.0), (1, 1, 1, 3.0)]
    with pytest.raises(ValueError, match=r"top_activations: k=3 activations, but 2 images x 1 units with the whole "
                                         r"field inside \(3x3 maps\) give only 2"):
        top_activations(fn, images, 0, k=3, row=row, one_per_image=False, inside=True)
    wide = receptive_field([nn.Conv2d(1, 1, 7, padding=3)])[-1]
    with pytest.raises(ValueError, match=r"top_activations: inside=True, but no unit's receptive field \(7x7 px\) "
                                         r"lies inside the 6x6 images"):
        top_activations(hand_made(np.zeros((2, 1, 6, 6)))[0], images, 0, k=1, row=wide, inside=True)


def test_a_real_layer_gives_its_largest_activations():
    msn.manual_seed(0)
    images = np.random.default_rng(0).random((10, 3, 12, 12)).astype(np.float32)
    conv = nn.Conv2d(3, 2, 3, padding=1)
    acts = conv(msn.tensor(images)).numpy()[:, 1]
    top = top_activations(conv, images, 1, k=5, row=receptive_field([conv])[-1], batch_size=4)
    per_image = acts.reshape(10, -1).max(axis=1)
    np.testing.assert_allclose([t.value for t in top], np.sort(per_image)[::-1][:5], rtol=1e-6)
    assert [t.index for t in top] == list(np.argsort(-per_image, kind="stable")[:5])
    assert len({t.index for t in top}) == 5
    for t in top:
        assert acts[t.index, t.y, t.x] == pytest.approx(t.value)
    everywhere = top_activations(conv, images, 1, k=5, row=receptive_field([conv])[-1], one_per_image=False)
    np.testing.assert_allclose([t.value for t in everywhere], np.sort(acts.ravel())[::-1][:5], rtol=1e-6)


def test_bad_requests_name_the_function_and_the_numbers():
    fn, images = hand_made(MAPS)
    with pytest.raises(ValueError, match=r"top_activations: k=4 activations from different images "
                                         r"\(one_per_image=True\), but there are only 3 images"):
        top_activations(fn, images, 0, k=4, row=ONE_PIXEL)
    with pytest.raises(ValueError, match=r"top_activations: k=19 activations, but 3 images x 6 units \(2x3 maps\) "
                                         r"give only 18"):
        top_activations(fn, images, 0, k=19, row=ONE_PIXEL, one_per_image=False)
    with pytest.raises(ValueError, match=r"top_activations: channel 1 does not exist; the layer has 1 channels"):
        top_activations(fn, images, 1, k=2, row=ONE_PIXEL)
    with pytest.raises(ValueError, match=r"top_activations: k must be at least 1, got k=0"):
        top_activations(fn, images, 0, k=0, row=ONE_PIXEL)
    with pytest.raises(ValueError, match=r"top_activations: images must be \(N, C, H, W\), got shape \(3, 6, 6\)"):
        top_activations(fn, images[:, 0], 0, k=1, row=ONE_PIXEL)
    nan_fn, nan_images = hand_made(np.where(np.asarray(MAPS) == 7, np.nan, MAPS))
    with pytest.raises(ValueError, match=r"top_activations: channel 0 has NaN activations"):
        top_activations(nan_fn, nan_images, 0, k=1, row=ONE_PIXEL)
