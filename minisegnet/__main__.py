"""Command line: ``python -m minisegnet train|evaluate|predict ...``.

    python -m minisegnet train --model fcn8s --epochs 30 --out runs/fcn8s            # synthetic data
    python -m minisegnet train --model fcn8s --voc /data/VOC2012 --out runs/voc --crop 256
    python -m minisegnet evaluate --out runs/fcn8s                                    # metrics table
    python -m minisegnet predict --out runs/fcn8s --count 8                           # overlays PNG

Checkpoints, history.json, curves.png, metrics.json and predictions.png go to --out; run.json
records the settings. ``train`` again with the same --out and the same settings resumes from the
last checkpoint (--epochs may grow); with other settings it is refused before any file is touched,
unless --overwrite asks to replace the run.
"""
import argparse
import json
import os
import sys

import numpy as np

from .data import (VOC_CLASSES, ThingsAndStuff, VOCSegmentation, channel_statistics, colourise, normalise,
                   train_val_split, voc_colourise, voc_palette)
from .models import MODELS, build_model
from .random import manual_seed
from .train import CHECKPOINT, CURVES, HISTORY, evaluate, fit, load_checkpoint, predict, write_json

RUN = "run.json"
# The settings that define a run: resuming with any of them changed would train on other data, or with
# another recipe, and leave run.json describing neither. (--epochs may change: a run can be extended.)
SETTINGS = ("model", "voc", "crop", "seed", "optimizer", "lr", "batch_size", "class_weights")
SYNTHETIC_SETTINGS = ("train_size", "val_size", "size")  # what the synthetic data depends on


def _datasets(args):
    if args.voc:
        return VOCSegmentation(args.voc, "train"), VOCSegmentation(args.voc, "val")
    return train_val_split(args.train_size, args.val_size, args.size, seed=args.seed)


def _statistics(train_set):
    mean, std = channel_statistics(train_set)
    return mean.tolist(), std.tolist()


def _flag(name):
    return "--" + name.replace("_", "-")


def _differences(previous, args):
    """'--seed: the run has 0, this command asks for 1' for each setting that differs."""
    keys = SETTINGS + (() if args.voc else SYNTHETIC_SETTINGS)
    differ = []
    for key in keys:
        before, now = previous.get(key), getattr(args, key)
        if key == "voc" and before is not None:
            before = os.path.abspath(before)  # run.json holds an absolute path; older ones may not
        if before != now:
            differ.append(f"{_flag(key)}: the run has {before!r}, this command asks for {now!r}")
    return differ


def _previous_run(args):
    """The settings of the run already in --out (None if there is none); exits, touching nothing,
    when that run cannot be resumed with these settings and --overwrite was not given."""
    run_file, checkpoint = os.path.join(args.out, RUN), os.path.join(args.out, CHECKPOINT)
    if args.overwrite:
        return None
    if not os.path.exists(run_file):
        if os.path.exists(checkpoint):
            sys.exit(f"train: {checkpoint} exists but {run_file} does not, so its settings are unknown; nothing "
                     "was changed. Use another --out, or pass --overwrite to replace it")
        return None
    try:
        with open(run_file) as f:
            previous = json.load(f)
    except ValueError as e:
        sys.exit(f"train: {run_file} is not valid JSON ({e}); nothing was changed. Use another --out, or pass "
                 "--overwrite to replace the run")
    differ = _differences(previous, args)
    if differ:
        sys.exit(f"train: {args.out} holds a run with other settings; nothing was changed.\n  "
                 + "\n  ".join(differ)
                 + "\nRepeat the run's settings to resume it, use another --out, or pass --overwrite to replace it.")
    return previous


def cmd_train(args):
    if args.voc:
        args.voc = os.path.abspath(args.voc)  # evaluate and predict may run from another folder
    previous = _previous_run(args)  # first: a refused run must not touch --out
    manual_seed(args.seed)
    train_set, val_set = _datasets(args)
    num_classes = 21 if args.voc else ThingsAndStuff.num_classes
    model = build_model(args.model, num_classes)
    if previous is not None:  # resuming: the checkpoint was trained with these statistics
        mean, std = previous["mean"], previous["std"]
    else:
        mean, std = _statistics(train_set)
    os.makedirs(args.out, exist_ok=True)
    if args.overwrite:  # the old run's files go before run.json describes the new one
        for name in (RUN, CHECKPOINT, HISTORY, CURVES, "metrics.json", "predictions.png"):
            if os.path.exists(os.path.join(args.out, name)):
                os.remove(os.path.join(args.out, name))
    settings = {k: v for k, v in vars(args).items() if k not in ("command", "overwrite")}
    write_json(os.path.join(args.out, RUN), {**settings, "num_classes": num_classes, "mean": mean, "std": std})
    history = fit(model, train_set, val_set, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                  optimizer=args.optimizer, class_weights="median" if args.class_weights else None, seed=args.seed,
                  out_dir=args.out, resume=True, crop=args.crop, mean=mean, std=std, device=args.device)
    last = history[-1]
    print(f"{args.model}: epoch {last['epoch']}, loss {last['train_loss']:.3f}, pixel acc {last['pixel_accuracy']:.3f}, "
          f"mean IU {last['mean_iou']:.3f}, boundary acc {last['boundary_accuracy']:.3f}  -> {args.out}")


def _load_run(args):
    path = os.path.join(args.out, RUN)
    if not os.path.exists(path):
        sys.exit(f"no run in {args.out}: train one first (python -m minisegnet train --out {args.out})")
    with open(path) as f:
        run = argparse.Namespace(**json.load(f))
    model = build_model(run.model, run.num_classes)
    model_state, _, meta = load_checkpoint(os.path.join(args.out, CHECKPOINT))
    model.load_state_dict(model_state)
    return run, model.to(args.device), meta


def cmd_evaluate(args):
    run, model, meta = _load_run(args)
    _, val_set = _datasets(run)
    scores = evaluate(model, val_set, device=args.device, mean=run.mean, std=run.std)
    print(f"{'model':>16} {'pixel acc.':>10} {'mean acc.':>10} {'mean IU':>8} {'f.w. IU':>8} {'boundary':>9}")
    print(f"{run.model:>16} {scores['pixel_accuracy']:>10.3f} {scores['mean_accuracy']:>10.3f} "
          f"{scores['mean_iou']:>8.3f} {scores['fw_iou']:>8.3f} {scores['boundary_accuracy']:>9.3f}")
    write_json(os.path.join(args.out, "metrics.json"), scores)  # undefined metrics (NaN) as null


def cmd_predict(args):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    run, model, _ = _load_run(args)
    _, val_set = _datasets(run)
    pairs = [val_set[i] for i in range(min(args.count, len(val_set)))]
    # One image at a time: VOC images differ in size.
    pred = [predict(model, normalise(image[None], run.mean, run.std), device=args.device).argmax(axis=1)[0]
            for image, _ in pairs]
    paint = voc_colourise if run.voc else colourise  # each data set in its own colours
    fig, axes = plt.subplots(3, len(pairs), figsize=(1.8 * len(pairs), 5.6), squeeze=False)
    for i, (image, labels) in enumerate(pairs):
        for row, (picture, title) in enumerate(((image.transpose(1, 2, 0), "image"),
                                                (paint(labels), "truth"), (paint(pred[i]), "prediction"))):
            axes[row, i].imshow(picture)
            axes[row, i].set_axis_off()
            if i == 0:
                axes[row, i].set_title(title, loc="left", fontsize=9)
    from .data import CLASSES
    if run.voc:
        names, colours = VOC_CLASSES, voc_palette()[:len(VOC_CLASSES)]
    else:
        names, colours = [c.name for c in CLASSES], [c.colour for c in CLASSES]
    handles = [plt.Rectangle((0, 0), 1, 1, facecolor=np.array(c) / 255, edgecolor="0.4", lw=0.5) for c in colours]
    fig.legend(handles, names, loc="upper center", bbox_to_anchor=(0.5, 0.02), ncol=min(len(names), 9), fontsize=7,
               frameon=False)  # below the images (bbox_inches="tight" makes room)
    fig.suptitle(f"{run.model}: validation predictions")
    path = os.path.join(args.out, "predictions.png")
    fig.savefig(path, dpi=100, bbox_inches="tight")
    print(f"wrote {path}")


def _positive(kind):
    """An argparse type: a number of type ``kind`` that must be > 0 (else a message naming the value)."""
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a positive {kind.__name__}, got {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {text}")
        return value
    return parse


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m minisegnet", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("train", "evaluate", "predict"):
        p = sub.add_parser(name)
        p.add_argument("--out", required=True, help="run directory (checkpoints, history, figures)")
        p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
        if name == "train":
            p.add_argument("--model", default="fcn8s", choices=sorted(MODELS))
            # The defaults are the recipe measured in benchmarks/README.md (FCN-8s: mean IU 0.75 in 4.5 min, 2 cores).
            p.add_argument("--epochs", type=_positive(int), default=55)
            p.add_argument("--batch-size", type=_positive(int), default=4)
            p.add_argument("--lr", type=_positive(float), default=0.003)
            p.add_argument("--optimizer", default="adam", choices=["adam", "sgd"])
            p.add_argument("--class-weights", action=argparse.BooleanOptionalAction, default=True,
                           help="median-frequency class weights (rare things count more)")
            p.add_argument("--seed", type=int, default=0)
            p.add_argument("--voc", help="a PASCAL VOC 2012-style directory instead of the synthetic data")
            p.add_argument("--crop", type=_positive(int),
                           help="random square crops of this size (VOC images vary in size); smaller images are "
                                "padded, labels with 255 (ignored), the image with the mean (0 once normalised)")
            p.add_argument("--train-size", type=_positive(int), default=400)
            p.add_argument("--val-size", type=_positive(int), default=100)
            p.add_argument("--size", type=_positive(int), default=64)
            p.add_argument("--overwrite", action="store_true",
                           help="replace the run in --out (otherwise a run with other settings is refused)")
        if name == "predict":
            p.add_argument("--count", type=_positive(int), default=8)
    args = parser.parse_args(argv)
    {"train": cmd_train, "evaluate": cmd_evaluate, "predict": cmd_predict}[args.command](args)


if __name__ == "__main__":
    main()
