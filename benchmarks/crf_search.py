"""The cross-validation behind ``crf.DEFAULTS`` (w1, theta_alpha, theta_beta; w2 = 3 and theta_gamma = 3
are DeepLab's): a grid search on coarse, FCN-32s-like predictions (``crf.blocky_prediction``: the
ground truth averaged over 16x16 blocks, upsampled, 60% confident) of 24 validation scenes, scored
by mean IU and boundary accuracy (3 px). Prints the ten best settings.

    python benchmarks/crf_search.py          (about a minute on 2 cores)
"""
import itertools

import numpy as np

from minisegnet import crf
from minisegnet.data import CLASSES, train_val_split
from minisegnet.metrics import SegmentationMetrics, boundary_accuracy


def main():
    _, val = train_val_split(4, 24, size=64, seed=0)
    coarse = np.stack([crf.blocky_prediction(l, len(CLASSES), factor=16) for l in val.labels])

    def score(probabilities):
        metrics = SegmentationMetrics(len(CLASSES))
        metrics.update(probabilities.argmax(axis=1), val.labels)
        return metrics.compute()["mean_iou"], boundary_accuracy(probabilities, val.labels, 3)

    print("no CRF: mean IU %.3f, boundary accuracy %.3f" % score(coarse))
    results = []
    for w1, theta_alpha, theta_beta in itertools.product((3, 6, 10, 15), (8, 16, 32), (8, 12, 16, 32)):
        refined = crf.dense_crf_batch(coarse, val.images, w1=w1, theta_alpha=theta_alpha, theta_beta=theta_beta)
        results.append((score(refined), w1, theta_alpha, theta_beta))
    print(f"{'w1':>4s} {'theta_alpha':>11s} {'theta_beta':>10s} {'mean IU':>8s} {'boundary acc.':>14s}")
    for (iou, boundary), w1, theta_alpha, theta_beta in sorted(results, reverse=True)[:10]:
        print(f"{w1:>4g} {theta_alpha:>11g} {theta_beta:>10g} {iou:>8.3f} {boundary:>14.3f}")


if __name__ == "__main__":
    main()
