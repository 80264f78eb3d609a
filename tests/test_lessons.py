"""Each lesson's --quick run, and the claim it makes (what its printed summary says it measured)."""
import os
import re
import subprocess
import sys

import pytest

LESSONS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lessons")


def run_lesson(name, tmp_path, *extra):
    result = subprocess.run([sys.executable, os.path.join(LESSONS, name), "--quick", "--out", str(tmp_path), *extra],
                            capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_lesson_01_every_op_passes_and_a_wrong_backward_is_caught(tmp_path):
    out = run_lesson("01_autodiff_and_gradcheck.py", tmp_path)
    match = re.search(r"summary: (\d+)/(\d+) ops passed gradcheck; wrong backward caught: (\w+)", out)
    assert match and match.group(1) == match.group(2) and int(match.group(2)) >= 16
    assert match.group(3) == "True"
    assert os.path.getsize(tmp_path / "01_gradcheck_sigmoid.png") > 10_000


def test_lesson_02_four_convolutions_agree_and_dilation_is_a_sparse_kernel(tmp_path):
    out = run_lesson("02_convolution_loops_to_kernels.py", tmp_path)
    assert "summary: all methods agree within 1e-4: True" in out
    assert "Numba CUDA kernel (simulator)" in out  # the CUDA twin really ran, in the simulator
    assert os.path.exists(tmp_path / "02_convolution.png")


def test_lesson_03_distill_table_and_empirical_box(tmp_path):
    out = run_lesson("03_receptive_fields.py", tmp_path)
    match = re.search(r"published table: (\d+)/(\d+); empirical box equals analytic: (\w+); central quarter share "
                      r"([\d.]+)", out)
    assert match and match.group(1) == match.group(2) == "18" and match.group(3) == "True"
    assert float(match.group(4)) > 0.4  # a quarter of the area holds far more than a quarter of the gradient
    assert os.path.exists(tmp_path / "03_receptive_fields.png")


def test_lesson_06_pixel_accuracy_flatters_a_model_that_never_predicts_a_thing(tmp_path):
    out = run_lesson("06_metrics_and_imbalance.py", tmp_path)
    match = re.search(r"never predicting a thing scores pixel accuracy ([\d.]+) but mean IU ([\d.]+); class weights "
                      r"change the things' mean accuracy ([\d.]+) -> ([\d.]+)", out)
    assert match, out
    pixel_accuracy, mean_iou, things_plain, things_weighted = map(float, match.groups())
    assert pixel_accuracy > 0.75 and mean_iou < 0.45  # the point of the lesson: 5 of 9 classes get nothing
    assert things_weighted > things_plain  # class weights pull the rare things up
    assert os.path.exists(tmp_path / "06_metrics_and_imbalance.png")


@pytest.mark.slow
def test_lesson_10_fcn8s_beats_fcn32s_near_boundaries(tmp_path):
    out = run_lesson("10_skip_connections.py", tmp_path)
    assert "claim: FCN-8s beats FCN-32s near boundaries" in out and out.strip().splitlines()[-2].endswith("yes")
    assert os.path.exists(tmp_path / "10_skip_connections.png")
    # a second run reuses the cached models instead of retraining
    again = run_lesson("10_skip_connections.py", tmp_path)
    assert re.findall(r"fcn8s +[\d.]+ +[\d.]+ +([\d.]+)", out) == re.findall(r"fcn8s +[\d.]+ +[\d.]+ +([\d.]+)", again)
