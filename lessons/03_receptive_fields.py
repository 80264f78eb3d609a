"""Lesson 3: receptive fields. Which input pixels can a unit depend on?

1. Analytically (Araujo, Norris & Sim, Distill 2019): layer by layer, r_l = r_{l-1} + (k_l - 1) j_{l-1},
   j_l = j_{l-1} s_l, P_l = P_{l-1} + p_l j_{l-1} (minisegnet/inspect.py: receptive_field). We check
   VGG-16 against the article's published table, then read off our FCN-8s, branch by branch.
2. Empirically: backpropagate from one unit to the input; the pixels with a non-zero gradient fill
   exactly the analytic box (inspect.gradient_receptive_field).
3. Effectively (Luo et al., 2016): averaged over random inputs and weights, the gradient is far
   from uniform over that box: it piles up in the middle (inspect.effective_receptive_field).

    python lessons/03_receptive_fields.py [--quick] [--device cpu|cuda] [--out DIR] [--seed S]
"""
import os

from _lesson import lesson_arguments  # first: command line, output folder, off-screen figures

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import minisegnet as msn  # noqa: E402
from minisegnet import nn  # noqa: E402
from minisegnet.inspect import (clip_box, effective_receptive_field, gradient_receptive_field,  # noqa: E402
                                receptive_field, unit_box)
from minisegnet.models import build_model  # noqa: E402

args = lesson_arguments("Lesson 3: receptive fields", quick="fewer random trials, seconds")
TRIALS = 8 if args.quick else 32

# --- 1. Analytic: VGG-16, layer by layer, against the published table -------------------------------
names, layers = [], []
for stage, count in enumerate((2, 2, 3, 3, 3), start=1):
    for i in range(1, count + 1):
        names.append(f"conv{stage}_{i}")
        layers.append(nn.Conv2d(1, 1, 3, padding=1))
    names.append(f"pool{stage}")
    layers.append(nn.MaxPool2d(2))
PUBLISHED = [(3, 1, 1), (5, 1, 2), (6, 2, 2), (10, 2, 4), (14, 2, 6), (16, 4, 6), (24, 4, 10), (32, 4, 14),
             (40, 4, 18), (44, 8, 18), (60, 8, 26), (76, 8, 34), (92, 8, 42), (100, 16, 42), (132, 16, 58),
             (164, 16, 74), (196, 16, 90), (212, 32, 90)]  # Araujo et al., VGG-16: (r, S, P) per layer
rows = receptive_field(nn.Sequential(*layers))
print("1. VGG-16: receptive field size r, effective stride S, effective padding P")
print(f"   {'layer':8s} {'r':>4s} {'S':>3s} {'P':>3s}   published")
matches = 0
for name, row, published in zip(names, rows, PUBLISHED):
    ok = (row.size, row.jump, row.effective_padding) == published
    matches += ok
    print(f"   {name:8s} {row.size:>4d} {row.jump:>3d} {row.effective_padding:>3d}   {published} {'ok' if ok else 'DIFFERS'}")

msn.manual_seed(args.seed)
model = build_model("fcn8s", 9)
print("\n   the lesson FCN-8s, one receptive field per score branch (in input pixels):")
for branch, branch_rows in receptive_field(model).items():
    last = branch_rows[-1]
    print(f"   {branch:36s} r = {last.size:4d}, S = {last.jump:3d}, P = {last.effective_padding:3d}")

# --- 2. Empirical: one unit of stage 3 (stride 8) of a freshly initialised FCN-8s ---------------------
SIZE = 96
stage_layers = model.backbone.stage_layers(2)
stage_row = receptive_field(stage_layers)[-1]
unit = (SIZE // stage_row.jump // 2, SIZE // stage_row.jump // 2)
for p in model.parameters():  # gradient checks and gradient maps in float64
    p.data = p.data.astype(np.float64)
mask, box = gradient_receptive_field(nn.Sequential(*stage_layers), (3, SIZE, SIZE), unit, trials=TRIALS,
                                     seed=args.seed)
analytic = clip_box(unit_box(stage_row, *unit), SIZE, SIZE)
print(f"\n2. unit {unit} of stage 3: analytic box rows {analytic[0]}-{analytic[1]}, cols {analytic[2]}-{analytic[3]}; "
      f"non-zero gradient rows {box[0]}-{box[1]}, cols {box[2]}-{box[3]} ({TRIALS} random inputs)")


# --- 3. Effective receptive field: random weights and inputs, mean |gradient| --------------------------
def fresh_stage_net(seed):
    msn.manual_seed(seed)
    net = build_model("fcn8s", 9)
    for p in net.parameters():
        p.data = p.data.astype(np.float64)
    return nn.Sequential(*net.backbone.stage_layers(2))


erf = effective_receptive_field(fresh_stage_net, (3, SIZE, SIZE), unit, trials=TRIALS // 2, seed=args.seed)
top, bottom, left, right = analytic
inside = erf[top:bottom + 1, left:right + 1]
centre = inside[inside.shape[0] // 4:3 * inside.shape[0] // 4, inside.shape[1] // 4:3 * inside.shape[1] // 4]
share = centre.sum() / inside.sum()
print(f"3. effective receptive field: the central quarter of the box's area holds {100 * share:.0f}% of the gradient")

fig, axes = plt.subplots(1, 2, figsize=(9, 4.2), layout="constrained")
for ax, picture, title in ((axes[0], mask, f"non-zero gradient of unit {unit} (stage 3)"),
                           (axes[1], erf, "effective receptive field (mean |gradient|)")):
    im = ax.imshow(picture, cmap="magma" if picture is erf else "gray")
    ax.add_patch(plt.Rectangle((left - 0.5, top - 0.5), right - left + 1, bottom - top + 1, fill=False, ec="C0", lw=2,
                               label="analytic receptive field"))
    ax.plot(unit[1] * stage_row.jump + (stage_row.jump - 1) / 2, unit[0] * stage_row.jump + (stage_row.jump - 1) / 2,
            "c+", ms=12, label="unit centre")
    ax.set(title=title, xlabel="input x (pixels)", ylabel="input y (pixels)")
axes[0].legend(loc="lower left", fontsize=8)
fig.colorbar(im, ax=axes[1], shrink=0.8, label="mean |d unit / d pixel|")
fig.suptitle(f"Receptive field of one stage-3 unit: r = {stage_row.size} px, stride {stage_row.jump}")
figure = os.path.join(args.out, "03_receptive_fields.png")
fig.savefig(figure, dpi=100)

print(f"\nsummary: VGG-16 rows matching the published table: {matches}/{len(PUBLISHED)}; empirical box equals "
      f"analytic: {tuple(int(v) for v in box) == analytic}; central quarter share {share:.2f}; figure: {figure}")
