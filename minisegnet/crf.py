"""DeepLab's fully connected CRF (Chen et al. 2015; Krähenbühl & Koltun 2011), by mean-field inference.

Every pixel i takes a label x_i. The energy of a labelling is

    E(x) = sum_i U_i(x_i) + sum_{i<j} mu(x_i, x_j) k(i, j)

    U_i(l)  = -log P_i(l)                        (the network's softmax output)
    mu      = Potts: 1 if x_i != x_j, else 0     (disagreeing is what costs)
    k(i, j) = w1 exp(-|p_i - p_j|^2 / (2 theta_alpha^2) - |I_i - I_j|^2 / (2 theta_beta^2))   appearance
            + w2 exp(-|p_i - p_j|^2 / (2 theta_gamma^2))                                      smoothness

with p a pixel's position (in pixels) and I its colour (in 8-bit units, 0-255, as DeepLab
states theta_beta). Every pixel is connected to every other: nearby pixels of similar colour
want one label (appearance), and so do very close pixels whatever their colour (smoothness).

Mean field approximates P(x) by independent Q_i(l). Its update, for Potts, is

    Q_i(l)  <-  softmax_l( -U_i(l) + sum_m w_m sum_{j != i} k_m(i, j) Q_j(l) )

(the Potts cost is "all other labels' messages", and sum_l Q_j(l) = 1 turns that into
"plus my own label's message"). The message is a Gaussian filter of Q over all pixels:

* ``method="exact"``: an N x N kernel matrix, the formula as written, no normalisation. The
  reference, for small images (N = H*W up to ``EXACT_MAX_PIXELS``).
* ``method="fast"``: the permutohedral lattice (Adams et al. 2010; ``kernels/crf/``), which
  filters in O(N) and is what DeepLab's CRF uses. The lattice is built once per image. It equals a
  Gaussian sum up to a constant factor (its cell volume), which we measure on every image against
  exact sums at 64 sampled pixels and divide out; what remains is its approximation error, a few
  per cent of the message (``tests/test_crf.py`` states the tolerance).

Defaults (``DEFAULTS``): DeepLab's w2 = 3, theta_gamma = 3 and 10 iterations; w1 = 10,
theta_alpha = 32 px and theta_beta = 12 (8-bit units) were cross-validated by a grid search on
coarse, FCN-32s-like predictions of 24 validation scenes of the "things and stuff" data
(``benchmarks/crf_search.py``: mean IU 0.520 -> 0.740; the surface is flat near the top, the best
setting, w1 = 15, is 0.008 ahead, and we keep the milder w1 = 10 because stronger smoothing
erases thin structures, lesson 12's poles). Our 64-px scenes are 8 times smaller than VOC's, so theta_alpha is smaller than
DeepLab's (~60-120 px); our textures are noisy, so theta_beta is larger (DeepLab: 3-5).
Those 24 scenes are the first of seed 0's validation split, so a result reported on that split
must not use these defaults as if they were untuned: ``tune`` chooses the parameters for a given
network on scenes the report does not use (lesson 12 does, on fresh scenes neither split draws).
"""
import numpy as np

from . import kernels
from .backend import array_module, to_device
from .functional.activation import softmax_array

DEFAULTS = dict(w1=10.0, theta_alpha=32.0, theta_beta=12.0, w2=3.0, theta_gamma=3.0, iterations=10)
EXACT_MAX_PIXELS = 64 * 64
CALIBRATION_PIXELS = 64


def _check_inputs(probabilities, image):
    if probabilities.ndim != 3:
        raise ValueError(f"dense_crf: probabilities must be (C, H, W), got shape {tuple(probabilities.shape)}")
    if image.ndim != 3 or image.shape[0] != 3 or image.shape[1:] != probabilities.shape[1:]:
        raise ValueError(f"dense_crf: image must be (3, H, W) = (3, {probabilities.shape[1]}, "
                         f"{probabilities.shape[2]}) to match the probabilities, got {tuple(image.shape)}")
    low, high = float(image.min()), float(image.max())
    if low < -0.01 or high > 1.01:
        raise ValueError(f"dense_crf: image values span [{low:.3g}, {high:.3g}]; pass RGB in [0, 1] (the "
                         "dataset's convention; theta_beta is then read in 8-bit units)")


def crf_features(image, theta_alpha, theta_beta, theta_gamma):
    """(appearance (N, 5), smoothness (N, 2)) features, divided by their kernel widths so that each
    kernel is exp(-|f_i - f_j|^2 / 2). image: (3, H, W) RGB in [0, 1]."""
    xp = array_module(image)
    _, h, w = image.shape
    rows, cols = xp.mgrid[:h, :w]
    position = xp.stack([rows.ravel(), cols.ravel()], axis=1).astype(np.float64)
    colour = image.reshape(3, -1).T.astype(np.float64) * 255.0
    appearance = xp.concatenate([position / theta_alpha, colour / theta_beta], axis=1)
    return appearance, position / theta_gamma


def _gaussian_rows(features, rows=None):
    """exp(-|f_i - f_j|^2 / 2) for rows i (all when None) and all j: (len(rows), N), using
    |a - b|^2 = |a|^2 + |b|^2 - 2 a.b so that the bulk of the work is one matrix product."""
    xp = array_module(features)
    chosen = features if rows is None else features[rows]
    squared = (features ** 2).sum(axis=1)
    chosen_squared = squared if rows is None else squared[rows]
    distance2 = xp.maximum(chosen_squared[:, None] + squared[None, :] - 2 * chosen @ features.T, 0)
    return xp.exp(-0.5 * distance2)


def pairwise_matrix(image, w1, theta_alpha, theta_beta, w2, theta_gamma, **_):
    """The exact (N, N) matrix k(i, j) of the energy, with k(i, i) = 0 (a pixel is not its own pair)."""
    if image.shape[1] * image.shape[2] > EXACT_MAX_PIXELS:
        raise ValueError(f"dense_crf: the exact method builds an N x N matrix; {image.shape[1]}x{image.shape[2]} "
                         f"= {image.shape[1] * image.shape[2]} pixels is more than {EXACT_MAX_PIXELS}; "
                         "use method='fast'")
    xp = array_module(image)
    appearance, smoothness = crf_features(image, theta_alpha, theta_beta, theta_gamma)
    k = w1 * _gaussian_rows(appearance) + w2 * _gaussian_rows(smoothness)
    k[xp.arange(k.shape[0]), xp.arange(k.shape[0])] = 0.0
    return k


class LatticeFilter:
    """sum_{j != i} exp(-|f_i - f_j|^2 / 2) v_j for all i at once, by the permutohedral lattice.

    Built once per image (the lattice depends only on the features), applied every iteration."""

    def __init__(self, features):
        self.lattice = kernels.permutohedral_lattice(features)
        xp = array_module(features)
        n = features.shape[0]
        # The lattice's constant factor, measured: exact Gaussian sums at evenly spaced pixels
        # against the lattice's sums of ones there.
        sample = xp.asarray(np.linspace(0, n - 1, min(n, CALIBRATION_PIXELS)).astype(np.int64))
        exact = _gaussian_rows(features, sample).sum()
        approx = kernels.lattice_filter(xp.ones((n, 1), dtype=np.float64), self.lattice)[sample].sum()
        self.factor = float(approx / exact)

    def __call__(self, values):
        # divide out the lattice's factor, then drop each pixel's own term (weight exp(0) = 1)
        return kernels.lattice_filter(values, self.lattice) / self.factor - values


def unary_from_probabilities(probabilities, floor=1e-8):
    """U_i(l) = -log P_i(l) as (N, C), with P floored so a confident zero does not become infinity."""
    xp = array_module(probabilities)
    c = probabilities.shape[0]
    return -xp.log(xp.maximum(probabilities.reshape(c, -1).T.astype(np.float64), floor))


def mean_field_energy(q, unary, pairwise):
    """The mean-field free energy KL(Q || P) + const for Potts, exactly (small images):

        F(Q) = sum_i sum_l Q_i(l) U_i(l) + sum_{i<j} k(i,j) (1 - sum_l Q_i(l) Q_j(l)) + sum_i sum_l Q_i(l) log Q_i(l)

    q, unary: (N, C); pairwise: the (N, N) matrix from ``pairwise_matrix``."""
    xp = array_module(q)
    expected_unary = float((q * unary).sum())
    disagreement = 0.5 * float(pairwise.sum() - (q * (pairwise @ q)).sum())
    entropy = float((q * xp.log(xp.maximum(q, 1e-300))).sum())
    return expected_unary + disagreement + entropy


def dense_crf(probabilities, image, method="fast", return_energies=False, **params):
    """Mean-field inference in DeepLab's fully connected CRF.

    probabilities: (C, H, W) softmax output of a network; image: (3, H, W) RGB in [0, 1] (NumPy, or
    CuPy for the GPU). Parameters (``DEFAULTS`` for any left out): w1, theta_alpha, theta_beta,
    w2, theta_gamma, iterations. Returns Q (C, H, W), the refined probabilities; with
    return_energies=True also the free energy (``mean_field_energy``) before and after every
    iteration (exact method only, since it needs the N x N matrix).
    """
    unknown = set(params) - set(DEFAULTS)
    if unknown:
        raise TypeError(f"dense_crf: unknown parameters {sorted(unknown)}; expected some of {sorted(DEFAULTS)}")
    p = {**DEFAULTS, **params}
    for name in ("theta_alpha", "theta_beta", "theta_gamma"):
        if p[name] <= 0:
            raise ValueError(f"dense_crf: {name} must be positive, got {p[name]}")
    _check_inputs(probabilities, image)
    c, h, w = probabilities.shape
    unary = unary_from_probabilities(probabilities)

    if method == "exact":
        pairwise = pairwise_matrix(image, **p)

        def message(q):
            return pairwise @ q
    elif method == "fast":
        if return_energies:
            raise ValueError("dense_crf: return_energies needs the N x N matrix; use method='exact'")
        appearance, smoothness = crf_features(image, p["theta_alpha"], p["theta_beta"], p["theta_gamma"])
        appearance_filter, smoothness_filter = LatticeFilter(appearance), LatticeFilter(smoothness)

        def message(q):
            return p["w1"] * appearance_filter(q) + p["w2"] * smoothness_filter(q)
    else:
        raise ValueError(f"dense_crf: method must be 'fast' or 'exact', got {method!r}")

    q = softmax_array(-unary, axis=1)
    energies = [mean_field_energy(q, unary, pairwise)] if return_energies else None
    for _ in range(int(p["iterations"])):
        q = softmax_array(-unary + message(q), axis=1)
        if return_energies:
            energies.append(mean_field_energy(q, unary, pairwise))
    q = q.T.reshape(c, h, w)
    return (q, energies) if return_energies else q


def dense_crf_batch(probabilities, images, method="fast", **params):
    """dense_crf over a batch: probabilities (N, C, H, W), images (N, 3, H, W) -> (N, C, H, W) NumPy."""
    return np.stack([to_device(dense_crf(p, i, method=method, **params), "cpu")
                     for p, i in zip(probabilities, images)])


def tune(probabilities, images, labels, grid, ignore_index=255):
    """Choose the CRF's parameters on held-out scenes, by mean IU: run ``dense_crf_batch`` with each
    setting of ``grid`` and score the refined labelling, argmax_l Q_i(l), against the labels.

        mean IU = mean over classes c of  TP_c / (TP_c + FP_c + FN_c)     (``metrics.SegmentationMetrics``)

    probabilities: (N, C, H, W) a network's softmax output; images: (N, 3, H, W) RGB in [0, 1];
    labels: (N, H, W) integers (``ignore_index`` not scored); grid: a sequence of dicts, each naming
    some of ``DEFAULTS``' keys (the rest take their defaults). The scenes must be ones the reported
    results are not measured on, or the tuning leaks into the report.

    Returns (best, scores): scores, [(setting, mean IU)] in grid order; best, the full parameter dict
    ``{**DEFAULTS, **setting}`` of the highest mean IU (the first of equals, in grid order)."""
    from .metrics import SegmentationMetrics

    labels = to_device(labels, "cpu")  # probabilities and images stay where they are: CuPy runs the CRF on the GPU
    if probabilities.ndim != 4 or images.shape != (len(probabilities), 3) + probabilities.shape[2:] \
            or labels.shape != (len(probabilities),) + probabilities.shape[2:]:
        raise ValueError(f"tune: expected probabilities (N, C, H, W), images (N, 3, H, W) and labels (N, H, W) of "
                         f"one N, H, W; got {tuple(probabilities.shape)}, {tuple(images.shape)} and "
                         f"{tuple(labels.shape)}")
    grid = list(grid)
    if not grid:
        raise ValueError("tune: the grid is empty; give at least one setting (a dict, {} for DEFAULTS)")
    for setting in grid:
        unknown = set(setting) - set(DEFAULTS)
        if unknown:
            raise TypeError(f"tune: unknown parameters {sorted(unknown)} in setting {setting}; "
                            f"expected some of {sorted(DEFAULTS)}")
    scores = []
    for setting in grid:
        metrics = SegmentationMetrics(probabilities.shape[1], ignore_index)
        metrics.update(dense_crf_batch(probabilities, images, **setting).argmax(axis=1), labels)
        scores.append((dict(setting), float(metrics.compute()["mean_iou"])))
    best = max(range(len(scores)), key=lambda k: (scores[k][1], -k))  # highest mean IU, first of equals
    return {**DEFAULTS, **scores[best][0]}, scores


def blocky_prediction(labels, num_classes, factor=16, confidence=0.6):
    """An FCN-32s-like stand-in for a network's output, without a network: the one-hot ground truth
    averaged over factor x factor blocks, upsampled bilinearly (blobby edges, thin things smeared
    away), and mixed with the uniform distribution: confidence * blobs + (1 - confidence) / C.
    labels: (H, W) with H, W multiples of factor -> (C, H, W) probabilities. For tests, the CRF
    lesson's parameter search and the benchmarks."""
    h, w = labels.shape
    if h % factor or w % factor:
        raise ValueError(f"blocky_prediction: image {h}x{w} is not a multiple of the block size {factor}")
    onehot = np.eye(num_classes)[np.where(labels < num_classes, labels, 0)].transpose(2, 0, 1)
    blocks = onehot.reshape(num_classes, h // factor, factor, w // factor, factor).mean(axis=(2, 4))
    blobs = kernels.bilinear_forward(blocks[None], (h, w), (1 / factor, 1 / factor), False)[0]
    return confidence * blobs + (1 - confidence) / num_classes
