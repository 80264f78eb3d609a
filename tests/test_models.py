"""Every model: forward and backward on odd input sizes, the FCN initialisation rules, derived offsets."""
import numpy as np
import pytest

import minisegnet as msn
from minisegnet import functional as F, nn
from minisegnet.models import MODELS, FCN8s, FCN16s, build_model

SIZES = [(32, 32), (27, 41)]


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("size", SIZES)
def test_every_model_maps_any_input_size_to_full_resolution_scores(name, size):
    msn.manual_seed(0)
    model = build_model(name, 5, **({} if name == "texture" else dict(widths=(4, 4, 6, 6, 6))))
    x = msn.tensor(np.random.default_rng(0).normal(size=(2, 3) + size).astype(np.float32))
    scores = model(x)
    assert scores.shape == (2, 5) + size
    F.cross_entropy(scores, np.zeros((2,) + size, dtype=np.int64)).backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None and p.grad.shape == p.shape, pname


def test_fcn8s_starts_as_bilinear_upsampling_of_its_coarsest_scores():
    """FCN paper: the skip score layers are zero-initialised and the x2 upsamplings bilinear, so before
    training FCN-8s outputs the stage-5 scores upsampled bilinearly (x2, x2, then x8); the finer stages
    only come in as training moves their score layers away from zero."""
    msn.manual_seed(1)
    fcn8 = FCN8s(3, widths=(4, 4, 6, 6, 6))
    assert np.all(fcn8.score_pool4.weight.data == 0) and np.all(fcn8.score_pool3.weight.data == 0)
    np.testing.assert_allclose(fcn8.upscore2.weight.data[0, 0], F.bilinear_kernel(4))
    assert np.all(fcn8.upscore2.weight.data[0, 1] == 0)
    x = msn.tensor(np.random.default_rng(1).normal(size=(1, 3, 64, 64)).astype(np.float32))
    coarse = fcn8.score(fcn8.backbone(x)[4])
    up = msn.tensor(F.bilinear_upsampling_weight(3, 4))
    expected = F.conv_transpose2d(F.conv_transpose2d(coarse, up, stride=2, padding=1) + fcn8.score_pool4.bias.reshape(1, 3, 1, 1),
                                  up, stride=2, padding=1) + fcn8.score_pool3.bias.reshape(1, 3, 1, 1)
    expected = F.interpolate_bilinear(expected, scale_factor=8)
    np.testing.assert_allclose(fcn8(x).data, expected.data, rtol=1e-5, atol=1e-6)


def test_fusion_offsets_come_from_the_layers():
    model = FCN16s(2, widths=(4, 4, 4, 4, 4))
    layers = model.backbone.stage_layers(4) + [model.score, model.upscore2]
    assert F.crop_offset(layers, model.backbone.stage_layers(3) + [model.score_pool4]) == (0, 0)
    (start, jump), _ = F.coordinate_map(model.backbone.stage_layers(4))
    assert (start, jump) == (15.5, 32)  # unit u of stage 5 sits at 32u + 15.5 in the image


def test_dilated_network_keeps_stride_8_with_a_growing_receptive_field():
    model = build_model("dilated", 2, widths=(4, 4, 4, 4, 4))
    (_, jump), _ = F.coordinate_map(model.backbone.stage_layers(4))
    assert jump == 8
    x = msn.tensor(np.zeros((1, 3, 40, 40), dtype=np.float32))
    assert [f.shape[2] for f in model.backbone(x)] == [20, 10, 5, 5, 5]


def test_context_module_starts_as_the_identity():
    from minisegnet.models import ContextModule
    module = ContextModule(3)
    x = msn.tensor(np.random.default_rng(2).normal(size=(1, 3, 9, 9)).astype(np.float32))
    np.testing.assert_allclose(module(x).data, x.data, rtol=1e-5, atol=1e-6)


def test_unknown_model_is_named():
    with pytest.raises(ValueError, match="unknown model 'fcn4s'"):
        build_model("fcn4s", 3)


def test_texture_descriptors_are_local_histograms():
    """Each of the 15 responses falls in exactly one of 5 bins, so away from the border (where the
    9x9 average counts the zero padding) each response's 5 bin shares sum to 1."""
    from minisegnet.texture import TextureBaseline, filter_bank
    bank = filter_bank()
    np.testing.assert_allclose((bank ** 2).sum(axis=(1, 2, 3)), 1.0, rtol=1e-5)
    np.testing.assert_allclose(bank[2:].sum(axis=(1, 2, 3)), 0.0, atol=1e-5)  # derivative filters: zero mean
    model = TextureBaseline(4)
    x = msn.tensor(np.random.default_rng(0).normal(size=(1, 3, 24, 24)).astype(np.float32))
    shares = model.descriptors(x).data.reshape(1, 15, 5, 24, 24)
    np.testing.assert_allclose(shares[..., 4:-4, 4:-4].sum(axis=2), 1.0, rtol=1e-5)
    assert [name for name, _ in model.named_parameters()] == ["classifier.weight", "classifier.bias"]


def test_shallow_control_is_fcn8s_finest_branch_alone_stride_8_and_36_px():
    """Three stages of (conv 3x3, conv 3x3, pool 2x2), by hand: r = 5, 6 (jump 2); 6 + 2*2*2 = 14, 16 (jump 4);
    16 + 2*2*4 = 32, 36 (jump 8). The 1x1 score layer adds nothing."""
    from minisegnet.inspect import receptive_field
    model = build_model("shallow", 5)
    assert [w.shape[0] for w in (model.backbone.stages[-1].layers[0].weight, model.score.weight)] == [64, 5]
    (branch, rows), = receptive_field(model).items()
    assert "stride 8" in branch and (rows[-1].size, rows[-1].jump) == (36, 8)
    assert receptive_field(FCN8s(5))["score_pool3 (stage 3, stride 8)"][-1].size == 36  # the same branch
    x = msn.tensor(np.zeros((1, 3, 40, 24), dtype=np.float32))
    assert [f.shape[2:] for f in model.backbone(x)] == [(20, 12), (10, 6), (5, 3)]


def test_a_two_stage_shallow_control_sees_16_px_at_stride_4_and_scores_every_pixel():
    """Two stages, by hand: r = 5, 6 (jump 2), then 6 + 2*2*2 = 14, 16 (jump 4). Its scores, upsampled x4 and
    cropped where they line up, cover the input exactly, whatever its size; stages outside 1-4 are refused."""
    from minisegnet.inspect import receptive_field
    model = build_model("shallow2", 5)
    (branch, rows), = receptive_field(model).items()
    assert "stage 2, stride 4" in branch and (rows[-1].size, rows[-1].jump) == (16, 4)
    assert model.config()["name"] == "shallow2" and build_model("pyramid_shallow2", 5).net.stages == 2
    x = msn.tensor(np.random.default_rng(0).random((2, 3, 30, 22)).astype(np.float32))
    assert model(x).shape == (2, 5, 30, 22)
    with pytest.raises(ValueError, match="ShallowFCN: stages must be 1 to 4 \\(5 is the whole backbone\\), got 5"):
        build_model("shallow", 5, stages=5)


def test_a_pyramid_level_is_the_one_above_halved_so_the_quarter_level_is_a_4x4_average():
    """pyramid_shallow1: the first stage on the image at 1, 1/2 and 1/4. Halving (bilinear, align_corners=False)
    averages 2x2 blocks exactly, so the 1/4 level is the 4x4 block average. The model is Farabet's: one linear
    classifier (a 1x1 convolution) on the concatenation of every level's features, upsampled to the finest
    level's grid, then upsampled to the input as the base net does; the fields per branch are 6, 12 and 24 px."""
    from minisegnet.inspect import receptive_field
    msn.manual_seed(0)
    model = build_model("pyramid_shallow1", 4)
    x = np.random.default_rng(1).random((2, 3, 32, 32)).astype(np.float32)
    quarter = x.reshape(2, 3, 8, 4, 8, 4).mean(axis=(3, 5))
    np.testing.assert_allclose(F.avg_pool2d(msn.tensor(x), 4).numpy(), quarter, rtol=1e-6)
    levels = [x, x.reshape(2, 3, 16, 2, 16, 2).mean(axis=(3, 5)), quarter]
    features = [model.net.backbone(msn.tensor(level))[0] for level in levels]  # stage 1: 16x16, 8x8, 4x4
    stacked = F.concatenate([features[0]] + [F.interpolate_bilinear(f, size=(16, 16)) for f in features[1:]], axis=1)
    layers = model.level_score_layers()
    classifier = nn.Conv2d(stacked.shape[1], 4, 1)  # the one classifier, its weights the levels' side by side
    classifier.load_state_dict({"weight": np.concatenate([layer.weight.numpy() for layer in layers], axis=1),
                                "bias": sum(layer.bias.numpy() for layer in layers)})
    expected = model.net.scores_to_input(classifier(stacked), (32, 32)).numpy()
    np.testing.assert_allclose(model(msn.tensor(x)).numpy(), expected, rtol=1e-4, atol=1e-5)
    assert len({id(layer) for layer in layers}) == 3 and layers[0] is model.net.score  # a classifier part per level
    fields = [(rows[-1].size, rows[-1].jump) for rows in receptive_field(model).values()]
    assert fields == [(6, 2), (12, 4), (24, 8)]
    with pytest.raises(ValueError, match=r"PyramidFCN: scales must be 1, 1/2, 1/4, ... \(successive halvings\), got 0.3"):
        build_model("pyramid", 4, scales=(1.0, 0.3))
    with pytest.raises(ValueError, match=r"PyramidFCN: scales must start at 1 and shrink, each once, got \(0.5, 1.0\)"):
        build_model("pyramid", 4, scales=(0.5, 1.0))
    with pytest.raises(ValueError, match=r"PyramidFCN: scales must start at 1 and shrink, each once, got \(\)"):
        build_model("pyramid", 4, scales=())
    with pytest.raises(ValueError, match=r"PyramidFCN: the base net must score one feature map .*got 'fcn8s'"):
        build_model("pyramid", 4, base="fcn8s")


def test_no_pooling_control_keeps_full_resolution_and_sees_19_px():
    """Nine 3x3 convolutions at stride 1 (depths 2, 2, 2, 2, 1), no pooling, no dilation: r = 1 + 2 * 9 = 19,
    jump 1; every stage output has the input's size. The gradient of one output unit reaches exactly
    a 19x19 box of input pixels around it."""
    from minisegnet.inspect import gradient_receptive_field, receptive_field
    model = build_model("nopool", 5, widths=(4, 4, 6, 6, 6))
    (branch, rows), = receptive_field(model).items()
    assert "stride 1" in branch and (rows[-1].size, rows[-1].jump) == (19, 1)
    assert not any(isinstance(layer, msn.nn.MaxPool2d) for layer in model.backbone.stage_layers(4))
    x = msn.tensor(np.zeros((1, 3, 30, 26), dtype=np.float32))
    assert [f.shape[2:] for f in model.backbone(x)] == [(30, 26)] * 5
    assert (receptive_field(build_model("nopool", 5, depths=(1, 1, 1, 1, 1)))["score (stage 5, stride 1)"][-1].size
            == 11)  # five convolutions: 1 + 2 * 5
    for p in model.parameters():  # gradient_receptive_field works in float64
        p.data = p.data.astype(np.float64)
    _, box = gradient_receptive_field(model, (3, 32, 32), (16, 16), trials=4)
    assert box == (16 - 9, 16 + 9, 16 - 9, 16 + 9)


def test_skip_gradients_off_keeps_the_scores_and_blocks_the_gradient_through_the_skips():
    """skip_gradients=False: the same scores; the skip score layers still learn (their input values are
    the same), but the backbone gets only what comes through stages 4-5. At initialisation the skip
    score layers are zero, so they pass no gradient back anyway and both ways agree exactly."""
    msn.manual_seed(3)
    model = FCN8s(4, widths=(4, 4, 6, 6, 6))
    x = msn.tensor(np.random.default_rng(3).normal(size=(2, 3, 32, 32)).astype(np.float32))
    labels = np.random.default_rng(4).integers(0, 4, size=(2, 32, 32))

    def gradients(skip_gradients):
        model.zero_grad()
        scores = model(x, skip_gradients=skip_gradients)
        F.cross_entropy(scores, labels).backward()
        return scores.data, {name: p.grad.copy() for name, p in model.named_parameters()}

    (on, g_on), (off, g_off) = gradients(True), gradients(False)
    np.testing.assert_array_equal(on, off)
    for name in g_on:
        np.testing.assert_allclose(g_on[name], g_off[name], rtol=1e-6, atol=1e-9, err_msg=name)
    with msn.no_grad():
        model.score_pool3.weight.copy_(np.random.default_rng(5).normal(size=model.score_pool3.weight.shape))
    (on, g_on), (off, g_off) = gradients(True), gradients(False)
    np.testing.assert_array_equal(on, off)
    np.testing.assert_allclose(g_on["score_pool3.weight"], g_off["score_pool3.weight"], rtol=1e-6)
    stage3 = "backbone.stages.2.layers.0.weight"
    assert np.abs(g_on[stage3] - g_off[stage3]).max() > 1e-3 * np.abs(g_on[stage3]).max()
    np.testing.assert_allclose(g_on["backbone.stages.4.layers.0.weight"], g_off["backbone.stages.4.layers.0.weight"],
                               rtol=1e-5, atol=1e-9)  # stage 5 has no skip: its gradient is the same either way
