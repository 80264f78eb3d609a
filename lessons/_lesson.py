"""What every lesson script shares: its command line, an output folder, off-screen figures, and the
one training recipe whose models later lessons reuse.

    args = lesson_arguments("Lesson 3: receptive fields", quick="fewer random trials, seconds")

gives --quick, --device cpu|cuda, --out DIR (created) and --seed S (seeds minisegnet's generator).
Importing this module first also switches matplotlib to its file-only backend, so lessons run on
machines without a screen.

    data = lesson_data(args)                       # the "things and stuff" scenes every lesson uses
    model, history, seconds = trained_model("fcn8s", args, data)

trains a model with the lessons' recipe, or loads it from OUT/models/ when an earlier lesson (or
an earlier run) already trained it, so lesson 4 reuses lesson 10's FCN-8s, lesson 12 lesson 11's
dilated net, and so on.
"""
import argparse
import os
import time
from collections import namedtuple

import matplotlib

matplotlib.use("Agg")

import minisegnet as msn  # noqa: E402
from minisegnet.data import channel_statistics, train_val_split  # noqa: E402
from minisegnet.models import build_model  # noqa: E402
from minisegnet.train import fit  # noqa: E402

LessonData = namedtuple("LessonData", "train val mean std epochs")


def lesson_arguments(description, quick="a reduced version that runs in seconds"):
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help=quick)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--out", default="out/lessons", help="where figures and cached models go")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    msn.manual_seed(args.seed)
    return args


def lesson_data(args):
    """240 training and 60 validation 64x64 scenes (96 / 24 with --quick) and the training length."""
    n_train, n_val, epochs = (96, 24, 6) if args.quick else (240, 60, 14)
    train_set, val_set = train_val_split(n_train, n_val, size=64, seed=args.seed)
    mean, std = channel_statistics(train_set)
    return LessonData(train_set, val_set, mean, std, epochs)


def trained_model(name, args, data):
    """(model, history, seconds spent training) for ``build_model(name)`` trained with the lessons' recipe
    (plain cross-entropy, Adam, lr 0.003 with the poly schedule, batches of 4), cached in
    OUT/models/<name>_n<N>_e<E>_s<seed>/ and resumed from there."""
    msn.manual_seed(args.seed)  # the same initialisation whichever lesson trains it first
    model = build_model(name, 9)
    run_dir = os.path.join(args.out, "models", f"{name}_n{len(data.train)}_e{data.epochs}_s{args.seed}")
    started = time.perf_counter()
    history = fit(model, data.train, val_set=None, mean=data.mean, std=data.std, out_dir=run_dir, resume=True,
        epochs=data.epochs, batch_size=4, lr=0.003, optimizer="adam", seed=args.seed, device=args.device,
        progress=False)
    return model, history, time.perf_counter() - started
