"""What every lesson script shares: its command line, an output folder, and off-screen figures.

    args = lesson_arguments("Lesson 3: receptive fields", quick="fewer random trials, seconds")

gives --quick, --device cpu|cuda, --out DIR (created) and --seed S (seeds minisegnet's generator).
Importing this module first also switches matplotlib to its file-only backend, so lessons run on
machines without a screen.
"""
import argparse
import os

import matplotlib

matplotlib.use("Agg")

import minisegnet as msn  # noqa: E402


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
