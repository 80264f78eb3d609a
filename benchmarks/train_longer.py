"""Has a lesson net converged? Train it with the lessons' recipe (lessons/_lesson.py) for 2x and 4x the
epochs, and compare the training loss and the validation scores with the zoo's run. The poly schedule
stretches with the epochs, so each length is its own run (cached beside the zoo's nets, named by its epochs).

    python benchmarks/train_longer.py [--nets fcn32s fcn16s] [--factors 1 2 4] [--seed S]

FCN-32s at 8 epochs takes about 90 s on 2 cores; 4x that, about 7 minutes.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lessons"))
sys.argv, argv = sys.argv[:1], sys.argv[1:]  # the lessons' own parser reads sys.argv: give it none of ours
import _lesson  # noqa: E402

from minisegnet.data import STUFF, THINGS  # noqa: E402
from minisegnet.metrics import right_shape_rate  # noqa: E402
from minisegnet.train import evaluate  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nets", nargs="+", default=["fcn32s", "fcn16s"])
    parser.add_argument("--factors", nargs="+", type=int, default=[1, 2, 4])
    parser.add_argument("--seed", type=int, default=0)
    ours = parser.parse_args(argv)
    special = [name for name in ours.nets if name in _lesson.FULL_RECIPE_EPOCHS]
    if special:
        parser.error(f"{special} train for their own number of epochs (lessons/_lesson.py: FULL_RECIPE_EPOCHS), "
                     "not the recipe's: this script cannot stretch them")
    sys.argv += ["--seed", str(ours.seed)]
    args = _lesson.lesson_arguments("train longer")
    data = _lesson.lesson_data(args)
    print(f"{'net':8s} {'epochs':>6s} {'train s':>8s} {'train loss':>10s} {'mean IU':>8s} {'stuff IU':>9s} "
          f"{'things IU':>10s} {'right shape':>11s}")
    for name in ours.nets:
        for factor in ours.factors:
            longer = data._replace(epochs=data.epochs * factor)
            model, history, training = _lesson.trained_model(name, args, longer)
            s = evaluate(model, data.val, device=args.device, mean=data.mean, std=data.std)
            iou = s["per_class_iou"]
            print(f"{name:8s} {len(history):>6d} {training.seconds:>8.0f} {history[-1]['train_loss']:>10.3f} "
                  f"{s['mean_iou']:>8.3f} {iou[list(STUFF)].mean():>9.3f} {iou[list(THINGS)].mean():>10.3f} "
                  f"{right_shape_rate(s['confusion'], THINGS):>11.3f}", flush=True)


if __name__ == "__main__":
    main()
