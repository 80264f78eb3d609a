"""What every lesson script shares: its command line, an output folder, off-screen figures, and the
one training recipe whose models later lessons reuse (the lessons' model zoo).

    args = lesson_arguments("Lesson 3: receptive fields", quick="fewer random trials, seconds")

gives --quick, --device cpu|cuda, --out DIR (created) and --seed S (seeds minisegnet's generator).
Importing this module first also switches matplotlib to its file-only backend, so lessons run on
machines without a screen.

    data = lesson_data(args)                       # the "things and stuff" scenes every lesson uses
    model, history, training = trained_model("fcn8s", args, data)
    print(f"FCN-8s: {training}")                   # "trained in 104 s" or "loaded from cache (trained in 104 s)"

trains a model with the lessons' recipe, or loads it from OUT/models/ when an earlier lesson (or
an earlier run) already trained it, so lesson 4 reuses lesson 10's FCN-8s, lesson 12 lesson 11's
dilated net, and so on. Lesson 13's two nets learn from other labels of the same scenes:

    model, history, training = trained_model("fcn8s", args, data, labels="band_ignored")
    scored, names = lesson_labels(data, "rare_merged")   # the data and class names such a net learns

Run this file to train the whole zoo at once and see what each net reaches:

    python lessons/_lesson.py [--quick] [--out DIR] [--seed S]
"""
import argparse
import json
import os
import time
from collections import namedtuple

import matplotlib
import numpy as np

matplotlib.use("Agg")

import minisegnet as msn  # noqa: E402
from minisegnet.data import (CLASSES, STUFF, Relabelled, ThingsAndStuff, channel_statistics,  # noqa: E402
                             merge_classes, train_val_split)
from minisegnet.models import build_model  # noqa: E402
from minisegnet.train import fit  # noqa: E402

LessonData = namedtuple("LessonData", "train val mean std epochs")

# --- The recipe ----------------------------------------------------------------------------------
# Measured with FCN-8s on the 60 validation scenes of seed 0 (lessons/README.md): for the same number
# of steps, many distinct scenes seen a few times each beat few scenes seen many times (9600 steps:
# 1200 scenes x 8 epochs, mean IU 0.70; 480 x 20, 0.66), and lr 0.005 beats 0.003 (8000 steps: 0.70
# vs 0.65); the old recipe, 240 x 14 at lr 0.003, reached 0.49. Models are cached in a folder named
# after RECIPE_TAG: change the tag whenever a value below changes, so a model trained with an older
# recipe is never resumed (or reused) as if it were this one.
# Recipe r3 adds a linear warm-up of the learning rate over the first 300 steps (of 2400; train.poly_lr):
# with Adam at 0.005 from the first step, FCN-8s of seed 2 reached mean IU 0.651 and right shape 0.760
# (training loss 0.284); warmed up, 0.737 and 0.879 (loss 0.224), seed 0 0.704 -> 0.716 (the same 96-102 s).
# The warm-up also ended FCN-32s's stall at 0.005 (recipe r2, seed 0: training loss 1.69 for four epochs, 1.45 at
# the end, mean IU 0.14), which had made it train at 0.002; with r3 at 0.005, seeds 0-2: loss 1.130 / 1.126 /
# 1.135, mean IU 0.219 / 0.223 / 0.219 (at 0.002: 1.136 / 1.133 / 1.141, 0.214 / 0.217 / 0.220), so every net
# now trains at the recipe's rate.
RECIPE_TAG = "r3"
N_TRAIN, N_VAL, EPOCHS = 1200, 60, 8
QUICK_N_TRAIN, QUICK_N_VAL, QUICK_EPOCHS = 96, 24, 6
BATCH_SIZE, LR = 4, 0.005  # Adam, the poly schedule (lr * (1 - step / steps) ** 0.9), random flips
WARMUP_SHARE = 8  # the first 1/8 of the steps warm up: 300 of the 2400 (the quick recipe: 18 of 144)
# Nets that differ from the recipe, and why:
#   nopool    every convolution at full resolution costs it ~16x FCN-8s per 64x64 scene, so it trains
#             on random 24x24 crops (its units see 19 px, so a crop still holds whole windows), for
#             half the epochs
#   texture   a linear classifier on fixed descriptors converges in a fraction of the steps: 2 epochs
#             (the full recipe only; --quick trains every net alike)
# Nets whose layers changed after recipe r3's models were first cached, tagged in their folder name so that an
# old checkpoint is never offered to the new layers (fit would refuse it, and the lesson would stop):
#   pyramid_shallow1  "concat": one classifier on all levels' features (Farabet's), where r3 first shared one
#                     score layer across the levels
DESIGNS = {"pyramid_shallow1": "concat"}
CROPS = {"nopool": 24}
FULL_RECIPE_EPOCHS = {"texture": 2, "nopool": 4}
# Nets that learn from other labels of the same training scenes, with the same recipe (lesson 13):
#   band_ignored  the band around every thing (data.boundary_band, about 8% of the pixels) labelled 255 in the
#                 training labels, so the loss skips it, as PASCAL VOC marks it; validation keeps the full labels
#   rare_merged   the three thing classes with the fewest training pixels (RARE) merged into one class "other"
#                 (data.merge_classes), in the training and validation labels: 7 classes instead of 9
RARE = ("triangle", "ring", "pole")
ZOO = (("fcn32s", None, None), ("fcn16s", None, None), ("fcn8s", None, None), ("fcn8s", "median", None),
       ("dilated", None, None), ("nopool", None, None), ("shallow2", None, None), ("shallow1", None, None),
       ("pyramid_shallow1", None, None),
       ("fcn8s", None, "band_ignored"), ("fcn8s", None, "rare_merged"))
# (name, class weights, training labels): every net a lesson trains


def lesson_arguments(description, quick="a reduced version that runs in seconds"):
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help=quick)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--out", default="out/lessons", help="where figures and cached models go")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    if args.device == "cpu":
        seconds = warm_up_kernels()
        if seconds > COMPILE_SECONDS:
            print(f"Numba kernels ready in {seconds:.1f} s: compiled, as on the first run after an install (or after a "
                  "kernel changed); they are cached now, and later runs load them in a fraction of a second")
    msn.manual_seed(args.seed)
    return args


COMPILE_SECONDS = 2.0  # loading the cached kernels takes 0.2-0.5 s on 2 cores; compiling them all 7-17 s


def warm_up_kernels():
    """Run the CPU kernels a lesson's training uses once, on tiny inputs, and return the seconds it took.

    Numba compiles each kernel the first time it is called in a process that finds no cached machine
    code (``cache=True`` keeps it beside the source), so the first lesson after an install would hide
    seconds of compiling inside its first training step. Calling them here first makes that cost visible
    and paid once. The inputs are fixed arrays, so no random number is drawn."""
    from minisegnet import functional as F, kernels
    started = time.perf_counter()
    x = msn.tensor(np.ones((4, 16, 32, 32), dtype=np.float32), requires_grad=True)  # big enough to split
    w = msn.tensor(np.ones((16, 16, 3, 3), dtype=np.float32), requires_grad=True)   # the batch over cores
    up = msn.tensor(np.ones((16, 16, 4, 4), dtype=np.float32), requires_grad=True)
    y = F.avg_pool2d(F.max_pool2d(F.conv2d(x, w, padding=1), 2, ceil_mode=True), 3, 1, 1)
    y = F.interpolate_bilinear(F.conv_transpose2d(y, up, stride=2, padding=1), size=(32, 32))
    y.sum().backward()
    p = np.ones(8, dtype=np.float32)
    kernels.adam_update(p, p.copy(), np.zeros_like(p), np.zeros_like(p), 1e-3, (0.9, 0.999), 1e-8, 1, 0.0)
    return time.perf_counter() - started


def lesson_data(args):
    """1200 training and 60 validation 64x64 scenes (96 / 24 with --quick) and the training length."""
    n_train, n_val, epochs = (QUICK_N_TRAIN, QUICK_N_VAL, QUICK_EPOCHS) if args.quick else (N_TRAIN, N_VAL, EPOCHS)
    train_set, val_set = train_val_split(n_train, n_val, size=64, seed=args.seed)
    mean, std = channel_statistics(train_set)
    return LessonData(train_set, val_set, mean, std, epochs)


def lesson_labels(data, labels=None):
    """(data, class names) for a net that learns from ``labels``: None, the plain labels (``data`` itself);
    "band_ignored", the same training scenes with their boundary band labelled 255 (validation unchanged);
    "rare_merged", the RARE classes merged into "other" in the training and validation labels."""
    names = tuple(c.name for c in CLASSES)
    if labels is None:
        return data, names
    if labels == "band_ignored":  # the generator draws no extra random numbers for the band: same images
        train = ThingsAndStuff(len(data.train), data.train.size, seed=data.train.seed, ignore_boundary=True)
        return data._replace(train=train), names
    if labels == "rare_merged":
        lookup, names = merge_classes(names, RARE)
        return data._replace(train=Relabelled(data.train, lookup), val=Relabelled(data.val, lookup)), names
    raise ValueError(f"lesson_labels: labels must be None, 'band_ignored' or 'rare_merged', got {labels!r}")


class Training(namedtuple("Training", "seconds loaded")):
    """How a lesson got its model. seconds: what its training took, summed over the epochs of its
    history (so also when it was loaded: the time it took when it was trained); loaded: True when
    this run found it finished in the cache and trained nothing."""

    def __str__(self):
        return f"loaded from cache (trained in {self.seconds:.0f} s)" if self.loaded else f"trained in {self.seconds:.0f} s"


def model_folder(name, args, data, class_weights=None, labels=None):
    """OUT/models/<name>[_weighted][_<labels>][_<design>]_<recipe tag>_n<N>_e<epochs>_s<seed>: one folder per net,
    recipe and seed; <labels> names the training labels of lesson 13's nets (lesson_labels), <design> a net whose
    layers changed under this recipe (DESIGNS)."""
    label = name + ("_weighted" if class_weights is not None else "") + (f"_{labels}" if labels else "")
    label += f"_{DESIGNS[name]}" if name in DESIGNS else ""
    epochs = data.epochs if args.quick else FULL_RECIPE_EPOCHS.get(name, data.epochs)
    return os.path.join(args.out, "models", f"{label}_{RECIPE_TAG}_n{len(data.train)}_e{epochs}_s{args.seed}"), epochs


def trained_model(name, args, data, class_weights=None, labels=None):
    """(model, history, Training) for ``build_model(name)`` trained with the lessons' recipe (cross-entropy,
    plain or with ``class_weights`` such as "median"; Adam, lr 0.005 with the poly
    schedule after a linear warm-up over the first 1/8 of the steps, batches of 4,
    random flips) on the training labels ``labels`` (see ``lesson_labels``), cached in ``model_folder(...)``
    and resumed from there."""
    data, names = lesson_labels(data, labels)
    msn.manual_seed(args.seed)  # the same initialisation whichever lesson trains it first
    model = build_model(name, len(names))
    run_dir, epochs = model_folder(name, args, data, class_weights, labels)
    history_file = os.path.join(run_dir, "history.json")
    done_before = 0
    if os.path.exists(history_file):
        with open(history_file) as f:
            done_before = len(json.load(f))
    warmup = -(-len(data.train) // BATCH_SIZE) * epochs // WARMUP_SHARE  # (batches per epoch, rounded up)
    history = fit(model, data.train, val_set=None, mean=data.mean, std=data.std, out_dir=run_dir, resume=True,
                  epochs=epochs, batch_size=BATCH_SIZE, lr=LR, optimizer="adam", class_weights=class_weights,
                  crop=CROPS.get(name), seed=args.seed, device=args.device, progress=False, warmup=warmup)
    return model, history, Training(sum(record["seconds"] for record in history), loaded=done_before >= epochs)


if __name__ == "__main__":
    # Train (or load) every net of the zoo, in order, and say what each reaches on the validation scenes.
    from minisegnet.metrics import right_shape_rate
    from minisegnet.train import evaluate

    args = lesson_arguments("The lessons' model zoo: train every net the lessons use", quick="the quick recipe")
    data = lesson_data(args)
    print(f"recipe {RECIPE_TAG}: {len(data.train)} training scenes x {data.epochs} epochs, batches of {BATCH_SIZE}, "
          f"Adam lr {LR} (poly, the first 1/{WARMUP_SHARE} of the steps warming up); {len(data.val)} validation scenes; seed {args.seed}")
    print(f"{'net':24s} {'train s':>8s} {'train loss':>10s} {'pixel acc.':>10s} {'mean IU':>8s} {'right shape':>11s} "
          f"{'boundary acc.':>13s}  how")
    total = 0.0
    for name, class_weights, labels in ZOO:
        model, history, training = trained_model(name, args, data, class_weights, labels)
        scored, names = lesson_labels(data, labels)  # the merged net is scored on the merged labels
        s = evaluate(model, scored.val, device=args.device, mean=data.mean, std=data.std, boundary_width=3)
        things = [i for i, class_name in enumerate(names) if class_name not in {CLASSES[c].name for c in STUFF}]
        total += training.seconds
        label = name + (" weighted" if class_weights else "") + (f" {labels}" if labels else "")
        print(f"{label:24s} {training.seconds:>8.0f} {history[-1]['train_loss']:>10.3f} {s['pixel_accuracy']:>10.3f} "
              f"{s['mean_iou']:>8.3f} {right_shape_rate(s['confusion'], things):>11.3f} {s['boundary_accuracy']:>13.3f}"
              f"  {training}", flush=True)
    print(f"the whole zoo: {total:.0f} s of training ({total / 60:.1f} min)")
