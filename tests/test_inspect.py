"""Receptive fields (the Distill tables for AlexNet and VGG-16; empirical = analytic on the library's
FCN), the effective receptive field, top-k patches and occlusion sensitivity."""
import numpy as np
import pytest

import minisegnet as msn
from minisegnet import functional as F, nn
from minisegnet.inspect import (clip_box, effective_receptive_field, gradient_receptive_field,
                                occlusion_sensitivity, receptive_field, top_activating_patches, unit_box)
from minisegnet.models import build_model


def alexnet():
    return nn.Sequential(nn.Conv2d(3, 1, 11, stride=4), nn.ReLU(), nn.MaxPool2d(3, 2),
                         nn.Conv2d(1, 1, 5, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
                         nn.Conv2d(1, 1, 3, padding=1), nn.Conv2d(1, 1, 3, padding=1), nn.Conv2d(1, 1, 3, padding=1),
                         nn.MaxPool2d(3, 2))


def vgg16():
    layers = []
    for count in (2, 2, 3, 3, 3):
        layers += [nn.Conv2d(1, 1, 3, padding=1) for _ in range(count)] + [nn.MaxPool2d(2)]
    return nn.Sequential(*layers)


def test_alexnet_matches_the_distill_table():
    """Araujo et al. (Distill 2019), table 1: receptive field size, effective stride, effective padding."""
    rows = receptive_field(alexnet())
    assert [(r.size, r.jump, r.effective_padding) for r in rows] == [
        (11, 4, 0), (19, 8, 0), (51, 8, 16), (67, 16, 16), (99, 16, 32), (131, 16, 48), (163, 16, 64), (195, 32, 64)]


def test_vgg16_matches_the_distill_table():
    rows = receptive_field(vgg16())
    assert [(r.size, r.jump, r.effective_padding) for r in rows] == [
        (3, 1, 1), (5, 1, 2), (6, 2, 2), (10, 2, 4), (14, 2, 6), (16, 4, 6), (24, 4, 10), (32, 4, 14), (40, 4, 18),
        (44, 8, 18), (60, 8, 26), (76, 8, 34), (92, 8, 42), (100, 16, 42), (132, 16, 58), (164, 16, 74),
        (196, 16, 90), (212, 32, 90)]


def test_dilation_counts_as_an_effective_kernel_and_branches_are_reported_separately():
    rows = receptive_field([nn.Conv2d(1, 1, 3, padding=2, dilation=2), nn.Conv2d(1, 1, 3, dilation=4)])
    assert [r.size for r in rows] == [5, 13]
    branches = receptive_field(build_model("fcn8s", 3, widths=(2, 2, 2, 2, 2)))
    assert list(branches) == ["score (stage 5, stride 32)", "score_pool4 (stage 4, stride 16)",
                              "score_pool3 (stage 3, stride 8)"]
    assert [b[-1].jump for b in branches.values()] == [32, 16, 8]
    pyramid = receptive_field(build_model("pyramid", 3, base="fcn32s", widths=(2, 2, 2, 2, 2)))
    full, half = pyramid["scale 1.0: score (stage 5, stride 32)"], pyramid["scale 0.5: score_level1 (stage 5, stride 64)"]
    assert half[-1].jump == 2 * full[-1].jump
    with pytest.raises(ValueError, match="upsampling layer"):
        receptive_field([nn.Conv2d(1, 1, 3), nn.ConvTranspose2d(1, 1, 4, stride=2)])


@pytest.mark.parametrize("stage", [1, 2, 3])
def test_empirical_box_equals_the_analytic_box_on_the_library_fcn(stage):
    """Backpropagate from one unit: the pixels with a non-zero gradient fill exactly the analytic box
    (clipped at the image border)."""
    msn.manual_seed(0)
    model = build_model("fcn8s", 3, widths=(8, 8, 8, 8, 8))
    layers = model.backbone.stage_layers(stage)
    row = receptive_field(layers)[-1]
    size = 72
    unit = (size // row.jump // 2, size // row.jump // 2 - 1)
    net = nn.Sequential(*layers)
    model.to("cpu")
    for p in model.parameters():
        p.data = p.data.astype(np.float64)
    _, box = gradient_receptive_field(net, (3, size, size), unit, channel=0, trials=32)
    assert box == clip_box(unit_box(row, *unit), size, size)


def test_a_1x7_convolution_has_a_1x7_field_and_strides_count_per_axis():
    (row,) = receptive_field([nn.Conv2d(1, 1, (1, 7))])
    assert row.sizes == (1, 7) and row.jumps == (1, 1) and row.effective_paddings == (0, 0)
    assert unit_box(row, 2, 3) == (2, 2, 3, 9)
    with pytest.raises(ValueError, match=r"receptive_field: 0 \(Conv2d\) has size 1 along rows but 7 along "
                                         r"columns; read .sizes"):
        row.size
    rows = receptive_field([nn.Conv2d(1, 1, 3, stride=(1, 2), padding=(1, 0)), nn.Conv2d(1, 1, (3, 2), padding=1)])
    assert [(r.sizes, r.jumps, r.effective_paddings) for r in rows] == [((3, 3), (1, 2), (1, 0)),
                                                                        ((5, 5), (1, 2), (2, 2))]
    assert rows[0].size == 3 and rows[1].size == 5  # square fields still read as one number
    with pytest.raises(ValueError, match="has jump 1 along rows but 2 along columns"):
        rows[1].jump


def non_square_net(dtype=np.float64):
    msn.manual_seed(0)
    return nn.Sequential(nn.Conv2d(2, 3, (1, 7), padding=(0, 3), dtype=dtype), nn.ReLU(),
                         nn.MaxPool2d((3, 2), stride=(2, 1), padding=(1, 0)),
                         nn.Conv2d(3, 3, (5, 3), stride=(1, 2), padding=(2, 1), dilation=(2, 1), dtype=dtype),
                         nn.ReLU(), nn.Conv2d(3, 2, (3, 1), dtype=dtype))


@pytest.mark.parametrize("unit", [(3, 4), (0, 0), (5, 8)])
def test_empirical_box_equals_the_analytic_box_on_a_non_square_net(unit):
    """Rows and columns grow differently (1x7, 3x2 pool with strides (2, 1), a dilated 5x3 with strides
    (1, 2), 3x1): the pixels with a non-zero gradient fill exactly the analytic rectangle, clipped."""
    net = non_square_net()
    row = receptive_field(net)[-1]
    assert row.sizes == (1 + 2 + 16 + 4, 7 + 1 + 2 + 0) and row.jumps == (2, 2)
    shape = (2, 24, 22)
    _, box = gradient_receptive_field(net, shape, unit, channel=1, trials=24)
    assert box == clip_box(unit_box(row, *unit), *shape[1:])


def test_receptive_fields_and_crop_offsets_place_units_alike():
    """The box of unit (y, x) is centred where ``coordinate_map`` (crop offsets' geometry) puts the unit."""
    net = non_square_net()
    row = receptive_field(net)[-1]
    (start_y, jump_y), (start_x, jump_x) = F.coordinate_map(list(net))
    for y, x in [(0, 0), (3, 5)]:
        top, bottom, left, right = unit_box(row, y, x)
        assert ((top + bottom) / 2, (left + right) / 2) == (start_y + y * jump_y, start_x + x * jump_x)
        assert (bottom - top + 1, right - left + 1) == row.sizes


def test_effective_receptive_field_is_concentrated_near_the_centre():
    """Four 3x3 layers: a 9x9 theoretical field, but most of the gradient sits in its middle (Luo et al.)."""
    def build(seed):
        msn.manual_seed(seed)
        return nn.Sequential(*[layer for _ in range(4)
                               for layer in (nn.Conv2d(8, 8, 3, padding=1, dtype=np.float64), nn.ReLU())])
    erf = effective_receptive_field(build, (8, 21, 21), (10, 10), trials=16)
    assert np.all(erf[:6] == 0) and np.all(erf[15:] == 0) and np.all(erf[:, :6] == 0)  # nothing outside 9x9
    centre = erf[9:12, 9:12].mean()
    ring = np.concatenate([erf[6, 6:15], erf[14, 6:15], erf[6:15, 6], erf[6:15, 14]]).mean()
    assert centre > 5 * ring


def test_top_activating_patches_are_the_largest_activations_with_their_fields():
    msn.manual_seed(0)
    images = np.random.default_rng(0).random((10, 3, 12, 12)).astype(np.float32)
    conv = nn.Conv2d(3, 2, 3, padding=1)
    row = receptive_field([conv])[-1]
    found = top_activating_patches(conv, images, channel=1, row=row, k=5, batch_size=4)
    values = [v for v, *_ in found]
    all_acts = np.sort(conv(msn.tensor(images)).numpy()[:, 1].ravel())[::-1][:5]
    np.testing.assert_allclose(values, all_acts, rtol=1e-6)
    value, index, (y, x), patch = found[0]
    assert patch.shape == (3, 3, 3)
    top, bottom, left, right = unit_box(row, y, x)
    expected = np.pad(images[index], ((0, 0), (1, 1), (1, 1)), constant_values=0.5)[:, top + 1:bottom + 2,
                                                                                     left + 1:right + 2]
    np.testing.assert_array_equal(patch, expected)


def test_occlusion_finds_the_object_that_the_decision_depends_on():
    """A 'model' whose class-1 score is the brightness inside a square: occluding the square drops it."""
    class Bright(nn.Module):
        def forward(self, x):
            mean = F.mean(x, axis=1, keepdims=True)
            return F.concatenate([mean * 0.0, mean * 8.0 - 4.0], axis=1)
    image = np.zeros((3, 24, 24), dtype=np.float32)
    image[:, 8:14, 10:16] = 1.0
    heat, baseline, positions = occlusion_sensitivity(Bright(), image, target_class=1, size=4, stride=2, fill=0.0,
                                                      batch_size=7)
    assert heat.shape == (11, 11) and len(positions) == 121
    t, l = positions[int(np.argmax(heat))]
    assert 6 <= t <= 12 and 8 <= l <= 14  # the occluder sat on the bright square
    assert heat.min() >= -1e-6 and heat[0, 0] == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="occluder size 30 is larger than the image 24x24"):
        occlusion_sensitivity(Bright(), image, 1, size=30)


def test_occlusion_of_the_uncovered_pixels_tells_a_local_decision_from_a_global_one():
    """score='accuracy', exclude_covered=True: does covering one part change the labels of the *rest*?
    A per-pixel decision (brightness here) never does; a decision from the whole image (the mean brightness,
    as a shape is judged from the whole object) flips every uncovered pixel once enough of the object is hidden."""
    class Local(nn.Module):  # class 1 where the pixel is bright
        def forward(self, x):
            mean = F.mean(x, axis=1, keepdims=True)
            return F.concatenate([mean * 0.0, mean * 8.0 - 4.0], axis=1)

    class Global(nn.Module):  # class 1 everywhere when the image's mean brightness is over 3/64
        def forward(self, x):
            mean = F.mean(x, axis=(1, 2, 3), keepdims=True)
            return F.concatenate([x[:, :1] * 0.0, x[:, :1] * 0.0 + (mean * 64.0 - 3.0)], axis=1)

    image = np.zeros((3, 24, 24), dtype=np.float32)
    image[:, 8:14, 10:16] = 1.0                                   # 36 bright pixels: mean 36/576 = 4/64
    region = image[0] > 0
    kwargs = dict(target_class=1, size=4, stride=2, fill=0.0, region=region, score="accuracy", exclude_covered=True)
    local, baseline, _ = occlusion_sensitivity(Local(), image, **kwargs)
    assert baseline == 1.0 and np.nanmax(np.abs(local)) == 0  # the uncovered bright pixels stay right
    heat, baseline, positions = occlusion_sensitivity(Global(), image, **kwargs)
    assert baseline == 1.0
    for (t, l), drop in zip(positions, heat.ravel()):
        covered = int(region[t:t + 4, l:l + 4].sum())
        if covered == 16:   # 20/576 < 3/64: the whole image turns to class 0, the uncovered 20 pixels with it
            assert drop == 1.0
        elif covered == 0:  # nothing of the object hidden: nothing changes
            assert drop == 0.0
    # score='probability' without exclusion is the original measure; a square covering the whole region is NaN
    full, _, _ = occlusion_sensitivity(Local(), image, 1, size=6, stride=2, fill=0.0, region=image[0] > 0.5,
                                       score="accuracy", exclude_covered=True)
    assert np.isnan(full[4, 5]) and not np.isnan(full[0, 0])
    with pytest.raises(ValueError, match="score must be 'probability' or 'accuracy', got 'iou'"):
        occlusion_sensitivity(Local(), image, 1, score="iou")
    with pytest.raises(ValueError, match=r"region has shape \(3, 3\), the image is 24x24"):
        occlusion_sensitivity(Local(), image, 1, region=np.ones((3, 3), dtype=bool))


def test_top_activating_patches_of_a_rectangular_field_are_rectangles():
    msn.manual_seed(0)
    images = np.random.default_rng(1).random((4, 3, 6, 7)).astype(np.float32)
    conv = nn.Conv2d(3, 1, (1, 3), padding=(0, 1))
    row = receptive_field([conv])[-1]
    value, index, (y, x), patch = top_activating_patches(conv, images, channel=0, row=row, k=3)[0]
    assert patch.shape == (3, 1, 3)
    expected = np.pad(images[index], ((0, 0), (0, 0), (1, 1)), constant_values=0.5)[:, y:y + 1, x:x + 3]
    np.testing.assert_array_equal(patch, expected)


def test_unit_responses_are_the_inside_units_centred_on_the_classes():
    from minisegnet.inspect import unit_responses
    rng = np.random.default_rng(0)
    images = rng.random((5, 3, 12, 10))
    labels = rng.integers(0, 4, size=(5, 12, 10))
    conv = nn.Conv2d(3, 6, 3, stride=2, padding=1, dtype=np.float64)
    row = receptive_field([conv])[-1]
    responses, centre, scene = unit_responses(lambda x: conv(x), images, labels, row, [3, 0], batch_size=2)
    acts = conv(msn.tensor(images)).numpy()
    expected = []  # one unit at a time, by the definition
    for n in range(acts.shape[0]):
        for y in range(acts.shape[2]):
            for x in range(acts.shape[3]):
                top, bottom, left, right = unit_box(row, y, x)
                if top < 0 or left < 0 or bottom >= 12 or right >= 10:
                    continue  # the field reaches into the padding
                c = labels[n, (top + bottom) // 2, (left + right) // 2]
                if c in (3, 0):
                    expected.append((acts[n, :, y, x], [3, 0].index(c), n))
    assert len(responses) == len(expected) > 0
    np.testing.assert_array_equal(responses, np.array([e[0] for e in expected]))
    assert centre.tolist() == [e[1] for e in expected] and scene.tolist() == [e[2] for e in expected]
    with pytest.raises(ValueError, match=r"unit_responses: images \(N, C, H, W\) and labels"):
        unit_responses(lambda x: x, images, labels[:3], row, [0, 1])


def test_a_linear_probe_reads_a_linear_code_and_not_noise():
    from minisegnet.inspect import linear_probe
    rng = np.random.default_rng(0)
    targets = rng.integers(0, 3, 600)
    train = np.arange(600) < 400
    code = np.eye(3)[targets] * 2.0 + rng.normal(0, 0.5, (600, 3))  # each class lifts its own feature
    mixed = code @ rng.normal(size=(3, 8))                              # the same code spread over 8 features
    assert linear_probe(mixed, targets, train) > 0.9
    noise = rng.normal(size=(600, 8))
    assert abs(linear_probe(noise, targets, train) - 1 / 3) < 0.1       # chance: nothing to read
    with pytest.raises(ValueError, match="linear_probe: needs examples to learn from and to score"):
        linear_probe(noise, targets, np.ones(600, bool))
    hits = linear_probe(mixed, targets, train, per_example=True)  # one per held-out example, in order
    assert hits.shape == (200,) and hits.dtype == bool and hits.mean() == linear_probe(mixed, targets, train)
