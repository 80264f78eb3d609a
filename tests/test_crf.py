"""The fully connected CRF: the permutohedral lattice against its plain-loop reference and the exact
Gaussian sum, the fast mean-field path against the exact one, the energy, and what it is for."""
import math

import numpy as np
import pytest

from minisegnet import crf
from minisegnet.data import CLASSES, render_scene, train_val_split
from minisegnet.kernels import lattice_filter, permutohedral_lattice
from minisegnet.kernels.crf import reference
from minisegnet.metrics import boundary_accuracy


def scene(size, seed=0):
    return render_scene(np.random.default_rng(seed), size=size)


def appearance_features(image, theta_alpha=6.0, theta_beta=20.0):
    return crf.crf_features(image, theta_alpha, theta_beta, 3.0)[0]


@pytest.mark.parametrize("d", [1, 2, 5])
def test_lattice_cpu_kernel_equals_reference(d):
    features = np.random.default_rng(d).standard_normal((60, d)) * 2
    corners, weights, neighbours = reference.build_lattice_reference(features)
    fast = permutohedral_lattice(features)
    np.testing.assert_array_equal(fast[0], corners)
    np.testing.assert_allclose(fast[1], weights, rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(fast[2], neighbours)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=1e-12)  # barycentric weights
    values = np.random.default_rng(1).random((60, 3))
    np.testing.assert_allclose(lattice_filter(values, fast), reference.lattice_filter_reference(values, *fast),
                               rtol=1e-12)


def test_lattice_corners_enclose_the_point():
    """The barycentric weights rebuild the lifted point from its simplex's corners."""
    features = np.random.default_rng(0).standard_normal((20, 3)) * 3
    scale = reference.scale_factors(3)
    for f in features:
        lifted = reference.elevate(f, scale)
        rem0, rank, barycentric = reference.enclosing_simplex(lifted)
        assert abs(lifted.sum()) < 1e-9
        assert (barycentric[:4] >= -1e-12).all()
        corners = [np.array(reference.corner_key(rem0, rank, r) + (0,)) for r in range(4)]
        for corner in corners:
            corner[-1] = -corner[:-1].sum()
        np.testing.assert_allclose(sum(w * c for w, c in zip(barycentric, corners)), lifted, atol=1e-9)


@pytest.mark.parametrize("dims,tolerance", [("smoothness", 0.06), ("appearance", 0.12)])
def test_lattice_message_matches_the_exact_gaussian_sum(dims, tolerance):
    """After dividing out its measured factor, the lattice message is within a few per cent (RMS,
    relative) of the exact sum over all pairs: the known accuracy of the permutohedral lattice."""
    image, _ = scene(32)
    appearance, smoothness = crf.crf_features(image, 8.0, 20.0, 3.0)
    features = smoothness if dims == "smoothness" else appearance
    values = np.random.default_rng(0).random((features.shape[0], 4))
    exact = crf._gaussian_rows(features) @ values - values
    approx = crf.LatticeFilter(features)(values)
    rms = math.sqrt(((approx - exact) ** 2).mean() / (exact ** 2).mean())
    assert rms < tolerance, rms


def test_mean_field_update_is_the_formula_in_plain_loops():
    """One exact iteration against the Potts update written with every label pair, no normalisation:
    Q_i(l) ~ exp(-U_i(l) - sum_{l'} mu(l, l') sum_{j != i} k(i, j) Q_j(l'))."""
    image, _ = scene(16)
    image = image[:, :4, :5]
    probabilities = np.random.default_rng(2).dirichlet(np.ones(3), size=(4, 5)).transpose(2, 0, 1)
    params = dict(w1=2.0, theta_alpha=2.0, theta_beta=30.0, w2=1.5, theta_gamma=1.0)
    q0 = probabilities.reshape(3, -1).T
    positions = [(y, x) for y in range(4) for x in range(5)]
    colours = image.reshape(3, -1).T.astype(np.float64) * 255
    expected = np.zeros_like(q0)
    for i, pi in enumerate(positions):
        for label in range(3):
            cost = -math.log(q0[i, label])
            for j, pj in enumerate(positions):
                if j == i:
                    continue
                distance2 = (pi[0] - pj[0]) ** 2 + (pi[1] - pj[1]) ** 2
                k = (params["w1"] * math.exp(-distance2 / (2 * 2.0 ** 2)
                                             - ((colours[i] - colours[j]) ** 2).sum() / (2 * 30.0 ** 2))
                     + params["w2"] * math.exp(-distance2 / 2))
                for other in range(3):
                    cost += (other != label) * k * q0[j, other]
            expected[i, label] = math.exp(-cost)
    expected /= expected.sum(axis=1, keepdims=True)
    q = crf.dense_crf(probabilities, image, method="exact", iterations=1, **params)
    np.testing.assert_allclose(q.reshape(3, -1).T, expected, rtol=1e-10)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fast_path_agrees_with_exact(seed):
    """Stated tolerance: mean |Q_fast - Q_exact| < 0.02 and at least 95% of pixels take the same label.
    (Near-ties can flip a few pixels completely, so a max-difference bound would say nothing.)"""
    image, labels = scene(32, seed)
    probabilities = crf.blocky_prediction(labels, len(CLASSES), factor=8)
    exact = crf.dense_crf(probabilities, image, method="exact")
    fast = crf.dense_crf(probabilities, image, method="fast")
    assert np.abs(fast - exact).mean() < 0.02
    assert (fast.argmax(axis=0) == exact.argmax(axis=0)).mean() >= 0.95
    np.testing.assert_allclose(fast.sum(axis=0), 1.0, rtol=1e-12)


@pytest.mark.parametrize("params", [{}, dict(w1=3.0, theta_alpha=6.0, theta_beta=40.0), dict(w1=0.0, w2=5.0)])
def test_mean_field_energy_does_not_increase(params):
    image, labels = scene(32, seed=3)
    probabilities = crf.blocky_prediction(labels, len(CLASSES), factor=8)
    _, energies = crf.dense_crf(probabilities, image, method="exact", return_energies=True, **params)
    assert len(energies) == 11
    assert all(b <= a + 1e-9 * abs(a) for a, b in zip(energies, energies[1:])), energies
    assert energies[-1] < energies[0]


def test_crf_sharpens_a_coarse_prediction_near_boundaries():
    """DeepLab's point, on the synthetic data: a blobby FCN-32s-like prediction gets much better
    within 3 px of the true boundaries once the CRF pulls labels to the image's edges."""
    _, val = train_val_split(1, 8, size=64, seed=0)
    coarse = np.stack([crf.blocky_prediction(l, len(CLASSES), factor=16) for l in val.labels])
    refined = crf.dense_crf_batch(coarse, val.images)
    before, after = boundary_accuracy(coarse, val.labels, 3), boundary_accuracy(refined, val.labels, 3)
    assert after > before + 0.15, (before, after)


def test_crf_errors_name_the_op_and_the_numbers():
    image, labels = scene(16)
    probabilities = crf.blocky_prediction(labels, 9, factor=8)
    with pytest.raises(ValueError, match=r"dense_crf: image values span \[\d+, 255\]; pass RGB in \[0, 1\]"):
        crf.dense_crf(probabilities, np.clip(image * 255, 0, 255).round(), method="fast")
    with pytest.raises(ValueError, match=r"dense_crf: image must be \(3, H, W\) = \(3, 16, 16\).*\(3, 8, 8\)"):
        crf.dense_crf(probabilities, image[:, :8, :8])
    with pytest.raises(ValueError, match="theta_beta must be positive, got 0"):
        crf.dense_crf(probabilities, image, theta_beta=0)
    with pytest.raises(TypeError, match=r"unknown parameters \['sigma'\]"):
        crf.dense_crf(probabilities, image, sigma=3)
    big_image, big_labels = scene(80)
    with pytest.raises(ValueError, match="80x80 = 6400 pixels is more than 4096; use method='fast'"):
        crf.dense_crf(crf.blocky_prediction(big_labels, 9, factor=16), big_image, method="exact")
