"""A small end-to-end demo: build a tiny fully convolutional net, check its gradients,
and train it for a few steps on a toy segmentation task.

    python -m minisegnet.demo [--steps 40] [--seed 0]

Every number it prints is measured by this run.
"""
import argparse
import time

import numpy as np

import minisegnet as msn
from minisegnet import functional as F, nn, optim


class TinyFCN(nn.Module):
    """conv -> pool -> dilated conv -> 1x1 class scores -> learnable 2x upsampling (bilinear init)."""

    def __init__(self, num_classes=3, width=8, dtype=np.float32):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 3, padding=1, dtype=dtype)
        self.pool = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(width, width, 3, padding=2, dilation=2, dtype=dtype)
        self.score = nn.Conv2d(width, num_classes, 1, dtype=dtype)
        self.up = nn.ConvTranspose2d(num_classes, num_classes, 4, stride=2, padding=1, bilinear=True, dtype=dtype)

    def forward(self, x):
        h = F.relu(self.conv1(x))
        h = F.relu(self.conv2(self.pool(h)))
        return self.up(self.score(h))


def toy_segmentation(n, size, rng):
    """Images with a bright disc and a dark square on noise; labels 0 background, 1 disc, 2 square."""
    images = rng.normal(0, 0.3, size=(n, 3, size, size))
    labels = np.zeros((n, size, size), dtype=np.int64)
    yy, xx = np.mgrid[:size, :size]
    for i in range(n):
        cy, cx, r = rng.integers(4, size - 4, size=2).tolist() + [rng.integers(2, 4)]
        disc = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
        sy, sx = rng.integers(0, size - 5, size=2)
        square = (yy >= sy) & (yy < sy + 5) & (xx >= sx) & (xx < sx + 5) & ~disc
        images[i][:, disc] += 1.5
        images[i][:, square] -= 1.5
        labels[i][disc], labels[i][square] = 1, 2
    return images.astype(np.float32), labels


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    msn.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)

    # 1. Gradient check of the whole network in float64: backward agrees with central differences.
    net64 = TinyFCN(dtype=np.float64)
    x64 = msn.tensor(rng.normal(size=(1, 3, 8, 8)), requires_grad=True)
    labels64 = rng.integers(0, 3, size=(1, 8, 8))
    start = time.perf_counter()
    params = [x64] + net64.parameters()
    msn.gradcheck(lambda *_: F.cross_entropy(net64(x64), labels64), *params, max_elements=40)
    print(f"gradcheck of TinyFCN (input + {len(params) - 1} parameter tensors, float64): passed "
          f"in {time.perf_counter() - start:.2f} s")

    # 2. A few optimizer steps in float32 on a toy segmentation task.
    images, labels = toy_segmentation(16, 24, rng)
    net = TinyFCN()
    opt = optim.Adam(net.parameters(), lr=0.02)
    x = msn.tensor(images)
    start = time.perf_counter()
    print(f"{'step':>5} {'loss':>8} {'pixel acc':>10}")
    for step in range(args.steps + 1):
        scores = net(x)
        loss = F.cross_entropy(scores, labels)
        if step % 10 == 0:
            accuracy = (scores.data.argmax(axis=1) == labels).mean()
            print(f"{step:>5} {loss.item():>8.4f} {accuracy:>10.3f}")
        if step == args.steps:
            break
        opt.zero_grad()
        loss.backward()
        opt.step()
    print(f"{args.steps} training steps on {images.shape} in {time.perf_counter() - start:.2f} s")


if __name__ == "__main__":
    main()
