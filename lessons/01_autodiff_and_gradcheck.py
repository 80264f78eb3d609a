"""Lesson 1: autodiff and gradient checks.

Every number a segmentation network learns from comes out of one backward pass. This lesson
builds a small graph by hand, runs backward, and then asks the question every test in this
library asks: does backward compute the derivative of forward? It answers it for every op,
with central differences in float64 (``msn.gradcheck``), and then breaks one op on purpose
to show what a failing check looks like.

    python lessons/01_autodiff_and_gradcheck.py [--quick] [--device cpu|cuda] [--out DIR] [--seed S]

Library code to read alongside: minisegnet/engine.py (Tensor, Function, backward: the chain
rule in one short file) and minisegnet/gradcheck.py.
"""
import os
import time

from _lesson import lesson_arguments  # first: command line, output folder, off-screen figures

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import minisegnet as msn  # noqa: E402
from minisegnet import functional as F  # noqa: E402

args = lesson_arguments("Lesson 1: autodiff and gradient checks", quick="smaller inputs, seconds")
rng = np.random.default_rng(args.seed)


def leaf(*shape, low=-1.0, high=1.0):
    """A float64 input that requires grad: gradient checks need float64's 16 digits."""
    return msn.tensor(rng.uniform(low, high, size=shape), requires_grad=True, device=args.device)


# --- 1. A graph by hand ---------------------------------------------------------------------
# y = sum(relu(w * x + b)^2). Each op records a node; backward visits them in reverse.
x, w, b = leaf(4), leaf(4), leaf(1)
y = (F.relu(w * x + b) ** 2).sum()
y.backward()
by_hand = 2 * np.maximum(w.numpy() * x.numpy() + b.numpy(), 0) * x.numpy()  # dy/dw, chain rule on paper
print("1. dy/dw from backward:", np.round(msn.backend.to_device(w.grad, "cpu"), 4))
print("   dy/dw by hand      :", np.round(by_hand, 4) + 0.0)  # + 0.0 turns -0.0 into 0.0

# --- 2. Gradient-check every op -------------------------------------------------------------
# gradcheck perturbs each input element by +-eps and compares (f(x+eps) - f(x-eps)) / 2 eps with backward.
n = 3 if args.quick else 5
image = lambda c=2, h=n + 2, w_=n + 3: leaf(2, c, h, w_)  # noqa: E731
distinct = lambda: msn.tensor(rng.permutation(2 * 2 * (n + 2) * (n + 3)).reshape(2, 2, n + 2, n + 3) / 10.0,  # noqa: E731
                              requires_grad=True, device=args.device)  # no ties: max pooling is differentiable
labels = rng.integers(0, 3, size=(2, n, n))
labels[0, 0, 0] = 255  # an ignored pixel
CHECKS = [
    ("add (broadcast)", lambda a, c: a + c, [leaf(3, 4), leaf(1, 4)]),
    ("mul / div", lambda a, c: a * c / (c * c + 1), [leaf(3, 4), leaf(3, 4)]),
    ("power, exp, log", lambda a: (a ** 3).exp().log() + a ** 0.5, [leaf(3, 4, low=0.2, high=2)]),
    ("relu, sigmoid, tanh", lambda a: F.relu(a) + F.sigmoid(a) * F.tanh(a), [leaf(3, 4)]),
    ("sum, mean, max", lambda a: F.sum(a, axis=0) + F.mean(a, axis=1, keepdims=True) + F.max(a, axis=0),
     [leaf(3, 4)]),
    ("matmul", F.matmul, [leaf(3, 4), leaf(4, 2)]),
    ("reshape, transpose, concat, index, pad",
     lambda a: F.pad(F.concatenate([a.reshape(4, 3).transpose(), a[:, 1:]], axis=1), 1), [leaf(3, 4)]),
    ("softmax, log_softmax", lambda a: F.softmax(a, 1) * F.log_softmax(a, 1), [leaf(2, 3, 4)]),
    ("cross_entropy (weights, ignore 255)", lambda z: F.cross_entropy(z, labels, weight=np.array([1.0, 2.0, 0.5])),
     [leaf(2, 3, n, n)]),
    ("conv2d (stride 2, dilation 2)", lambda a, k: F.conv2d(a, k, stride=2, padding=2, dilation=2),
     [image(), leaf(3, 2, 3, 3)]),
    ("conv2d depthwise", lambda a, k: F.conv2d(a, k, padding=1, groups=2), [image(), leaf(2, 1, 3, 3)]),
    ("conv_transpose2d", lambda a, k: F.conv_transpose2d(a, k, stride=2, padding=1), [image(), leaf(2, 3, 4, 4)]),
    ("max_pool2d (ceil mode)", lambda a: F.max_pool2d(a, 3, 2, 1, ceil_mode=True), [distinct()]),
    ("avg_pool2d", lambda a: F.avg_pool2d(a, 3, 2, 1), [image()]),
    ("interpolate_bilinear", lambda a: F.interpolate_bilinear(a, size=(2 * n + 1, 3 * n)), [image()]),
    ("crop_and_add (FCN skip)", lambda a, c: F.crop_and_add(a, c, (1, 2)), [image(), leaf(2, 2, n, n)]),
]
print(f"\n2. gradcheck of every op (float64, central differences, device={args.device})")
print(f"   {'op':40s} {'inputs':>7s} {'result':>8s} {'seconds':>8s}")
results = []
for name, fn, inputs in CHECKS:
    start = time.perf_counter()
    passed = msn.gradcheck(fn, *inputs, max_elements=40 if args.quick else 120, raise_on_failure=False)
    results.append((name, passed))
    print(f"   {name:40s} {len(inputs):>7d} {'passed' if passed else 'FAILED':>8s} {time.perf_counter() - start:>8.2f}")


# --- 3. A deliberately wrong backward fails the check ----------------------------------------
# The derivative of sigmoid is s(1 - s). Forget the (1 - s) and the check catches it at once.
class WrongSigmoid(msn.Function):
    @staticmethod
    def forward(ctx, a):
        s = 1 / (1 + np.exp(-a))
        ctx.save_for_backward(s)
        return s

    @staticmethod
    def backward(ctx, grad):
        (s,) = ctx.saved
        return grad * s  # wrong: should be grad * s * (1 - s)


bad_input = msn.tensor(rng.uniform(-2, 2, size=(2, 3)), requires_grad=True)
try:
    msn.gradcheck(WrongSigmoid.apply, bad_input)
    wrong_caught = False
except msn.GradcheckError as error:
    wrong_caught = True
    print(f"\n3. a wrong backward (sigmoid' = s instead of s(1-s)) is caught:\n   {error}")

# --- 4. Figure: analytic vs numeric derivative of the broken and the correct sigmoid ---------
grid = np.linspace(-4, 4, 81)
eps = 1e-6
numeric = (1 / (1 + np.exp(-(grid + eps))) - 1 / (1 + np.exp(-(grid - eps)))) / (2 * eps)
t = msn.tensor(grid, requires_grad=True)
F.sigmoid(t).sum().backward()
right = msn.backend.to_device(t.grad, "cpu")
t2 = msn.tensor(grid, requires_grad=True)
WrongSigmoid.apply(t2).sum().backward()
fig, ax = plt.subplots(figsize=(6, 3.6))
ax.plot(grid, numeric, "k-", lw=4, alpha=0.3, label="numeric (central differences)")
ax.plot(grid, right, "C0--", label="backward of F.sigmoid")
ax.plot(grid, t2.grad, "C3:", lw=2, label="backward of WrongSigmoid")
ax.set(title="Gradient check of sigmoid: backward vs central differences", xlabel="x", ylabel="d sigmoid / dx")
ax.legend(fontsize=8)
fig.tight_layout()
figure = os.path.join(args.out, "01_gradcheck_sigmoid.png")
fig.savefig(figure, dpi=110)

passed = sum(p for _, p in results)
print(f"\nsummary: {passed}/{len(results)} ops passed gradcheck; wrong backward caught: {wrong_caught}; figure: {figure}")
