"""The CPU-speed issue's lesson-10 target, measured: train lesson 10's three nets (FCN-32s, FCN-16s, FCN-8s)
with the recipe the issue was filed against (240 scenes x 14 epochs, batches of 4, the zoo's optimiser and
schedule otherwise), one after another in one process, into a temporary folder, and print the seconds.

    python benchmarks/lesson10_baseline_recipe.py      (about two minutes on 2 cores; target <= 70 s)
"""
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lessons"))
sys.argv = [sys.argv[0], "--out", tempfile.mkdtemp()]  # nothing cached: every net trains
import _lesson  # noqa: E402

from minisegnet.data import channel_statistics, train_val_split  # noqa: E402

args = _lesson.lesson_arguments("lesson 10's nets with the issue's recipe")
train, val = train_val_split(240, 60, size=64, seed=0)
mean, std = channel_statistics(train)
data = _lesson.LessonData(train, val, mean, std, 14)
started = time.perf_counter()
for name in ("fcn32s", "fcn16s", "fcn8s"):
    t0 = time.perf_counter()
    _lesson.trained_model(name, args, data)
    print(f"{name}: {time.perf_counter() - t0:.1f} s", flush=True)
print(f"three nets: {time.perf_counter() - started:.1f} s (target <= 70 s)")
