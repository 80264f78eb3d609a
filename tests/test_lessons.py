"""Each lesson's --quick run, and the claim it makes (what its printed summary says it measured)."""
import os
import re
import subprocess
import sys

import pytest

LESSONS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lessons")


@pytest.fixture(scope="module")
def shared_out(tmp_path_factory):
    """One output folder for the lessons that train: each reuses the models an earlier one cached."""
    return tmp_path_factory.mktemp("lessons")


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


def test_lesson_04_a_unit_depends_on_its_receptive_field_only(shared_out):
    out = run_lesson("04_what_units_see.py", shared_out)
    match = re.search(r"worst difference over 3 layers' top units ([\d.e+-]+); a field one pixel smaller changes them by "
                      r"up to ([\d.]+)\): yes", out)
    assert match, out
    assert float(match.group(1)) < 1e-4 < float(match.group(2))
    assert os.path.getsize(shared_out / "04_what_units_see.png") > 10_000


def test_lesson_05_occlusion_drops_the_score_where_the_region_is(shared_out):
    out = run_lesson("05_occlusion_sensitivity.py", shared_out)
    match = re.search(r"covers the scored region in (\d+)/(\d+) scenes: yes", out)
    assert match and match.group(1) == match.group(2) and int(match.group(2)) >= 2, out
    seconds = float(re.search(r"841 positions, 14 batches\): ([\d.]+) s", out).group(1))
    assert seconds > 0
    assert os.path.exists(shared_out / "05_occlusion_sensitivity.png")


def test_lesson_07_texture_baseline_gets_stuff_not_things(shared_out):
    out = run_lesson("07_things_vs_stuff.py", shared_out)
    match = re.search(r"mean IU ([\d.]+) on stuff vs ([\d.]+) on things", out)
    assert match, out
    stuff, things = map(float, match.groups())
    assert stuff > 0.4 and things < stuff / 2
    assert os.path.exists(shared_out / "07_things_vs_stuff.png")


def test_lesson_08_fcn32s_is_wrong_near_boundaries(shared_out):
    out = run_lesson("08_fcn32s_resolution.py", shared_out)
    assert "stage-5 score map 2x2" in out
    match = re.search(r"within 2 px of a boundary than more than 16 px away \(([\d.]+) vs ([\d.]+)\): yes", out)
    assert match, out
    assert float(match.group(1)) + 0.1 < float(match.group(2))


def test_lesson_11_dilation_keeps_stride_8_and_costs_memory(shared_out):
    out = run_lesson("11_dilated_convolution.py", shared_out)
    match = re.search(r"keeps stride (\d+) \(vs (\d+)\) with a receptive field of (\d+) px \(vs (\d+)\), is more "
                      r"accurate near boundaries \(([\d.]+) vs ([\d.]+)\), and pays ([\d.]+)x the feature-map memory: yes",
                      out)
    assert match, out
    assert match.group(1, 2) == ("8", "32") and int(match.group(3)) >= int(match.group(4))
    assert float(match.group(7)) > 1


def test_lesson_12_crf_improves_boundaries_and_mean_iou(shared_out):
    out = run_lesson("12_deeplab_crf.py", shared_out)
    match = re.search(r"within 3 px of boundaries \(([\d.]+) -> ([\d.]+)\) and mean IU \(([\d.]+) -> ([\d.]+)\): yes", out)
    assert match, out
    before, after, iou_before, iou_after = map(float, match.groups())
    assert after > before and iou_after > iou_before
    assert os.path.exists(shared_out / "12_deeplab_crf.png")


def test_lesson_09_the_half_scale_branch_sees_twice_as_far(shared_out):
    out = run_lesson("09_image_pyramids.py", shared_out)
    match = re.search(r"the half-scale branch sees (\d+) px of the input where the full-scale one sees (\d+) px: yes", out)
    assert match, out
    assert int(match.group(1)) == 2 * int(match.group(2))
    assert os.path.exists(shared_out / "09_image_pyramids.png")


@pytest.mark.slow
def test_lesson_10_fcn8s_beats_fcn32s_near_boundaries(tmp_path):
    out = run_lesson("10_skip_connections.py", tmp_path)
    assert "claim: FCN-8s beats FCN-32s near boundaries" in out and out.strip().splitlines()[-2].endswith("yes")
    assert os.path.exists(tmp_path / "10_skip_connections.png")
    # a second run reuses the cached models instead of retraining
    again = run_lesson("10_skip_connections.py", tmp_path)
    assert re.findall(r"fcn8s +[\d.]+ +[\d.]+ +([\d.]+)", out) == re.findall(r"fcn8s +[\d.]+ +[\d.]+ +([\d.]+)", again)
