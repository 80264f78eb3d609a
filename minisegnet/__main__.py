"""Command line: ``python -m minisegnet train|evaluate|predict ...``.

    python -m minisegnet train --model fcn8s --epochs 30 --out runs/fcn8s            # synthetic data
    python -m minisegnet train --model fcn8s --voc /data/VOC2012 --out runs/voc --crop 256
    python -m minisegnet evaluate --out runs/fcn8s                                    # metrics table
    python -m minisegnet predict --out runs/fcn8s --count 8                           # overlays PNG

Checkpoints, history.json, curves.png, metrics.json and predictions.png go to --out; a run
started again with the same --out resumes from its last checkpoint.
"""
import argparse
import json
import os
import sys

import numpy as np

from .data import DataLoader, ThingsAndStuff, VOCSegmentation, channel_statistics, colourise, train_val_split
from .models import MODELS, build_model
from .random import manual_seed
from .train import CHECKPOINT, evaluate, fit, load_checkpoint, predict


def _datasets(args):
    if args.voc:
        return VOCSegmentation(args.voc, "train"), VOCSegmentation(args.voc, "val")
    return train_val_split(args.train_size, args.val_size, args.size, seed=args.seed)


def _statistics(train_set):
    mean, std = channel_statistics(train_set)
    return mean.tolist(), std.tolist()


def cmd_train(args):
    manual_seed(args.seed)
    train_set, val_set = _datasets(args)
    num_classes = 21 if args.voc else ThingsAndStuff.num_classes
    model = build_model(args.model, num_classes)
    os.makedirs(args.out, exist_ok=True)
    mean, std = _statistics(train_set)
    with open(os.path.join(args.out, "run.json"), "w") as f:
        json.dump({**vars(args), "num_classes": num_classes, "mean": mean, "std": std}, f, indent=1)
    history = fit(model, train_set, val_set, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                  optimizer=args.optimizer, class_weights="median" if args.class_weights else None, seed=args.seed,
                  out_dir=args.out, resume=True, crop=(args.crop, args.crop) if args.crop else None,
                  mean=mean, std=std, device=args.device)
    last = history[-1]
    print(f"{args.model}: epoch {last['epoch']}, loss {last['train_loss']:.3f}, pixel acc {last['pixel_accuracy']:.3f}, "
          f"mean IU {last['mean_iou']:.3f}, boundary acc {last['boundary_accuracy']:.3f}  -> {args.out}")


def _load_run(args):
    path = os.path.join(args.out, "run.json")
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
    with open(os.path.join(args.out, "metrics.json"), "w") as f:
        json.dump({k: np.asarray(v).tolist() for k, v in scores.items()}, f, indent=1)


def cmd_predict(args):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    run, model, _ = _load_run(args)
    _, val_set = _datasets(run)
    images, labels = next(iter(DataLoader(val_set, args.count)))
    raw = images.copy()
    images = (images - np.asarray(run.mean, np.float32)[:, None, None]) / np.asarray(run.std, np.float32)[:, None, None]
    pred = predict(model, images, device=args.device).argmax(axis=1)
    fig, axes = plt.subplots(3, len(images), figsize=(1.8 * len(images), 5.6), squeeze=False)
    for i in range(len(images)):
        for row, (picture, title) in enumerate(((raw[i].transpose(1, 2, 0), "image"),
                                                (colourise(labels[i]), "truth"), (colourise(pred[i]), "prediction"))):
            axes[row, i].imshow(picture)
            axes[row, i].set_axis_off()
            if i == 0:
                axes[row, i].set_title(title, loc="left", fontsize=9)
    from .data import CLASSES
    handles = [plt.Rectangle((0, 0), 1, 1, facecolor=np.array(c.colour) / 255, edgecolor="0.4", lw=0.5) for c in CLASSES]
    if run.num_classes == len(CLASSES):  # the synthetic classes have names and colours to show
        fig.legend(handles, [c.name for c in CLASSES], loc="lower center", ncol=len(CLASSES), fontsize=7,
                   frameon=False)
    fig.suptitle(f"{run.model}: validation predictions")
    path = os.path.join(args.out, "predictions.png")
    fig.savefig(path, dpi=100, bbox_inches="tight")
    print(f"wrote {path}")


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
            p.add_argument("--epochs", type=int, default=55)
            p.add_argument("--batch-size", type=int, default=4)
            p.add_argument("--lr", type=float, default=0.003)
            p.add_argument("--optimizer", default="adam", choices=["adam", "sgd"])
            p.add_argument("--class-weights", action=argparse.BooleanOptionalAction, default=True,
                           help="median-frequency class weights (rare things count more)")
            p.add_argument("--seed", type=int, default=0)
            p.add_argument("--voc", help="a PASCAL VOC 2012-style directory instead of the synthetic data")
            p.add_argument("--crop", type=int, help="random square crops of this size (VOC images vary in size)")
            p.add_argument("--train-size", type=int, default=400)
            p.add_argument("--val-size", type=int, default=100)
            p.add_argument("--size", type=int, default=64)
        if name == "predict":
            p.add_argument("--count", type=int, default=8)
    args = parser.parse_args(argv)
    {"train": cmd_train, "evaluate": cmd_evaluate, "predict": cmd_predict}[args.command](args)


if __name__ == "__main__":
    main()
