"""Each lesson's --quick run, and the claim it makes, checked against what that run measured.

A lesson prints the tables it measured and a summary or claim line drawn from them. The tests
read both back: the summary must agree with the table, the claim must hold for the numbers the
run printed (not for numbers written into the test), and the figure must be a PNG of the size the
lesson draws. Where a quick run (6 epochs on 96 scenes) is too short for the full run's claim,
the test says so and checks what the quick run can show.

The lessons that train share one output folder (``shared_out``), in the order below, so each
model trains once: lesson 4 trains FCN-8s, lesson 8 FCN-32s, lesson 11 the dilated net, and the
others reuse them.
"""
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from matplotlib import image as mpimg

from minisegnet.data import CLASSES, STUFF, THINGS, train_val_split

LESSONS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lessons")
VAL_SCENES, SIZE = 24, 64  # lesson_data with --quick: 96 training and 24 validation scenes of 64x64
NUMBER = r"(-?[\d.]+(?:e[+-]?\d+)?|nan)"


@pytest.fixture(scope="module")
def shared_out(tmp_path_factory):
    """One output folder for the lessons that train: each reuses the models an earlier one cached."""
    return tmp_path_factory.mktemp("lessons")


def run_lesson(name, tmp_path, *extra):
    result = subprocess.run([sys.executable, os.path.join(LESSONS, name), "--quick", "--out", str(tmp_path), *extra],
                            capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def find(pattern, text):
    """The groups of the first match of pattern (a line of the lesson's output), as strings."""
    match = re.search(pattern, text, flags=re.MULTILINE)
    assert match, f"no line matching {pattern!r} in:\n{text}"
    return match.groups()


def table(pattern, text, rows):
    """Every line matching pattern (one table row each); there must be ``rows`` of them."""
    found = re.findall(pattern, text, flags=re.MULTILINE)
    assert len(found) == rows, f"{len(found)} rows matching {pattern!r}, expected {rows}, in:\n{text}"
    return found


def assert_png(path, width, height):
    """The figure exists, decodes as a PNG of width x height pixels (figsize x dpi), and is not blank."""
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    picture = mpimg.imread(path)
    assert picture.shape[:2] == (height, width), (path, picture.shape)
    assert picture[..., :3].std() > 0.01, f"{path} is blank"


def test_lesson_01_every_op_passes_and_a_wrong_backward_is_caught(tmp_path):
    out = run_lesson("01_autodiff_and_gradcheck.py", tmp_path)
    backward, by_hand = find(r"dy/dw from backward: (\[.*\])\n\s+dy/dw by hand\s+: (\[.*\])", out)
    assert backward == by_hand
    rows = re.findall(r"^   (\S.*?)\s+(\d) +(passed|FAILED) +[\d.]+$", out, flags=re.MULTILINE)
    passed, total, caught = find(r"summary: (\d+)/(\d+) ops passed gradcheck; wrong backward caught: (\w+)", out)
    assert len(rows) == int(total) >= 16  # every op family of the lesson's list is in the table
    assert all(result == "passed" for _, _, result in rows) and passed == total
    # the wrong backward fails the very criterion the others pass: |analytic - numeric| > atol + rtol |numeric|
    analytic, numeric, atol, rtol = map(float, find(
        rf"analytic {NUMBER}, numeric {NUMBER}, relative error [\d.]+ \(atol={NUMBER}, rtol={NUMBER}\)", out))
    assert caught == "True" and abs(analytic - numeric) > atol + rtol * abs(numeric)
    assert_png(tmp_path / "01_gradcheck_sigmoid.png", 660, 396)


def test_lesson_02_four_convolutions_agree_and_dilation_is_a_sparse_kernel(tmp_path):
    out = run_lesson("02_convolution_loops_to_kernels.py", tmp_path)
    rows = table(rf"^(naive loops|im2col loops|Numba im2col kernel|Numba CUDA kernel \((?:simulator|GPU)\)).*? "
                 rf"{NUMBER} +{NUMBER}$", out, 4)
    assert rows[3][0] == "Numba CUDA kernel (simulator)"  # the CUDA twin really ran, in the simulator
    loops_seconds, numba_seconds = float(rows[0][1]), float(rows[2][1])  # (table: 4 decimals)
    assert all(float(difference) < 1e-4 for _, _, difference in rows)
    gap = float(find(rf"dilated 3x3 \(d=2\) vs sparse 5x5 kernel: max \|difference\| {NUMBER}", out)[0])
    assert gap < 1e-4  # the same 9 weights spread out: the same convolution
    agree, speedup = find(r"summary: all methods agree within 1e-4: (\w+); Numba speed-up over loops: (\d+)x", out)
    assert agree == "True"
    # from loops to kernels: the compiled kernel beats the formula's Python loops (by the run's own timings)
    assert numba_seconds <= loops_seconds and int(speedup) > 1
    assert_png(tmp_path / "02_convolution.png", 1210, 374)


def test_lesson_03_distill_table_and_empirical_box(tmp_path):
    out = run_lesson("03_receptive_fields.py", tmp_path)
    rows = table(r"^   (conv\d_\d|pool\d) +(\d+) +(\d+) +(\d+)   \((\d+), (\d+), (\d+)\) (ok|DIFFERS)$", out, 18)
    assert all(row[1:4] == row[4:7] and row[7] == "ok" for row in rows)  # every VGG-16 row equals the article's
    analytic, empirical = find(r"analytic box (rows \d+-\d+, cols \d+-\d+); non-zero gradient (rows \d+-\d+, cols \d+-\d+)",
                               out)
    assert analytic == empirical
    top, bottom, left, right = map(int, re.findall(r"\d+", analytic))
    h, w = bottom - top + 1, right - left + 1
    uniform = (3 * h // 4 - h // 4) * (3 * w // 4 - w // 4) / (h * w)  # the central quarter's share of the area
    percent = int(find(r"central quarter of the box's area holds (\d+)% of the gradient", out)[0])
    matches, equal, share = find(r"summary: VGG-16 rows matching the published table: (\d+)/18; empirical box equals "
                                 r"analytic: (\w+); central quarter share ([\d.]+)", out)
    assert matches == "18" and equal == "True" and round(100 * float(share)) == percent
    assert float(share) > uniform  # the central quarter holds more than its share of the gradient: it piles up
    assert_png(tmp_path / "03_receptive_fields.png", 900, 420)


def test_lesson_06_pixel_accuracy_flatters_a_model_that_never_predicts_a_thing(tmp_path):
    out = run_lesson("06_metrics_and_imbalance.py", tmp_path)
    names = ("one class everywhere", "never a thing", "FCN-8s, plain loss", "FCN-8s, class-weighted")
    rows = table(r"^(" + "|".join(names) + r") +" + " +".join([NUMBER] * 5) + "$", out, 4)
    scores = {name: dict(zip(("pixel", "mean_acc", "mean_iou", "fw_iou", "things"), map(float, values)))
              for name, *values in rows}
    summary = list(map(float, find(
        r"summary: never predicting a thing scores pixel accuracy ([\d.]+) but mean IU ([\d.]+); class weights change "
        r"the things' mean accuracy ([\d.]+) -> ([\d.]+) and pixel accuracy ([\d.]+) -> ([\d.]+)", out)))
    never, plain, weighted = scores["never a thing"], scores["FCN-8s, plain loss"], scores["FCN-8s, class-weighted"]
    assert summary == [never["pixel"], never["mean_iou"], plain["things"], weighted["things"], plain["pixel"],
                       weighted["pixel"]]
    # The claim. Never predicting a thing gets every stuff pixel right and every thing pixel wrong, so its
    # pixel accuracy is the stuff share of the validation pixels (over 0.8, as the lesson says), while five
    # of the nine classes score 0: mean accuracy and mean IU are at most 4/9.
    _, val = train_val_split(96, VAL_SCENES, size=SIZE, seed=0)
    stuff_share = float(np.isin(val.labels, STUFF).mean())
    assert never["pixel"] == pytest.approx(stuff_share, abs=5e-4) and stuff_share > 0.8
    assert never["things"] == 0 and never["mean_acc"] <= 4 / 9 and never["mean_iou"] <= 4 / 9
    # one class everywhere: that class is all right, the eight others all wrong
    assert scores["one class everywhere"]["mean_acc"] == pytest.approx(1 / 9, abs=5e-4)
    assert weighted["things"] > plain["things"]  # class weights pull the rare things up
    assert_png(tmp_path / "06_metrics_and_imbalance.png", 1100, 418)


def test_lesson_04_a_unit_depends_on_its_receptive_field_only(shared_out):
    out = run_lesson("04_what_units_see.py", shared_out)
    rows = table(r"^stage (\d) +(\d+) +(\d+) +([\d.]+) +([\d.]+)$", out, 3)
    assert [(stage, r) for stage, r, *_ in rows] == [("1", "6"), ("3", "36"), ("5", "124")]
    layers, worst, smaller, verdict = find(
        rf"worst difference over (\d+) layers' top units {NUMBER}; a field one pixel smaller changes them by up to "
        rf"{NUMBER}\): (\w+)", out)
    assert int(layers) == len(rows)
    # the claim: blanking everything outside the field leaves the unit unchanged (up to float32 rounding),
    # blanking one pixel more does not
    assert float(worst) < 1e-4 < float(smaller) and verdict == "yes"
    # plot_top_patches: two units per layer, 9 patches each
    assert_png(shared_out / "04_what_units_see.png", round(100 * (1.35 * 9 + 1.2)), round(100 * (1.55 * 6 + 0.6)))


def test_lesson_05_occlusion_drops_the_score_where_the_region_is(shared_out):
    out = run_lesson("05_occlusion_sensitivity.py", shared_out)
    rows = re.findall(rf"^ *(\d+) +(\w+) +{NUMBER} +{NUMBER} +{NUMBER} +{NUMBER} +{NUMBER}$", out, flags=re.MULTILINE)
    hits, count, verdict = find(r"covers the scored region in (\d+)/(\d+) scenes: (\w+)", out)
    assert len(rows) == int(count) >= 2
    # (a 6-epoch net may be sure of no thing; then the lesson scores stuff regions, and says which)
    assert [cls for _, cls, *_ in rows] == find(r"regions scored: (.*)$", out)[0].split(", ")
    for _, _, before, max_drop, on_object, away, _ in rows:
        # a mean is at most the maximum (printed to 3 and 2 decimals), a drop in probability at most P itself
        assert float(on_object) <= float(max_drop) + 0.005 and float(max_drop) <= float(before)
        assert float(on_object) > float(away)  # the claim, on average: the drop is where the region is
    assert hits == count and verdict == "yes"  # the claim: the largest drop of every map is on the region
    # the timing line describes this run: 8x8 square at stride 2 on a 64-px scene, batches of 64
    positions, batches, seconds = find(rf"one occlusion map \((\d+) positions, (\d+) batches\): {NUMBER} s", out)
    assert int(positions) == ((SIZE - 8) // 2 + 1) ** 2 and int(batches) == int(positions) // 64 + 1
    assert float(seconds) == pytest.approx(np.mean([float(row[-1]) for row in rows]), abs=0.01)
    assert_png(shared_out / "05_occlusion_sensitivity.png", round(100 * (3.0 * 3 + 0.8)), round(100 * 2.7 * len(rows)))


def per_class_row(title, text):
    """A row of per-class IUs (one column per class, in CLASSES order) and the row's stuff and things means."""
    values = find(rf"^{re.escape(title)} +" + " +".join([NUMBER] * (len(CLASSES) + 2)) + "$", text)
    return np.array(values[:len(CLASSES)], dtype=float), float(values[-2]), float(values[-1])


def test_lesson_07_texture_baseline_gets_stuff_not_things(shared_out):
    out = run_lesson("07_things_vs_stuff.py", shared_out)
    for title in ("texture + linear", "FCN-8s"):
        iou, stuff_mean, things_mean = per_class_row(title, out)
        assert stuff_mean == pytest.approx(np.nanmean(iou[list(STUFF)]), abs=0.01)
        assert things_mean == pytest.approx(np.nanmean(iou[list(THINGS)]), abs=0.01)
    iou, stuff, things = per_class_row("texture + linear", out)
    claim = find(r"mean IU ([\d.]+) on stuff vs ([\d.]+) on things; FCN-8s on things ([\d.]+)\): (\w+)", out)
    assert (float(claim[0]), float(claim[1]), float(claim[2])) == (stuff, things, per_class_row("FCN-8s", out)[2])
    # the claim, by the lesson's own test: stuff more than twice as well as things, and a stuff mean IU over 0.4
    assert stuff > 2 * things and stuff > 0.4 and claim[3] == "yes"
    assert_png(shared_out / "07_things_vs_stuff.png", 1000, 820)  # plot_segmentations: 5 scenes, 4 rows


def test_lesson_08_fcn32s_and_fcn8s_by_distance_to_a_boundary(shared_out):
    """The table's pixel counts are recomputed here from the validation labels with ``boundary_mask``; the
    near/far table and the claim must agree with the band table. What the full run's claim compares (FCN-32s's
    accuracy falls more than FCN-8s's towards boundaries, within stuff) needs trained nets: after the quick
    run's 6 epochs FCN-32s is poor even in the interiors (about 0.57 on stuff more than 4 px from a
    boundary), so it cannot fall far, and the quick run prints NO there. The quick run does show that both
    nets are less accurate near boundaries than inside stuff regions and that FCN-8s beats FCN-32s near them."""
    from minisegnet.metrics import boundary_mask  # (here, to keep this test's imports with it)

    out = run_lesson("08_fcn32s_resolution.py", shared_out)
    assert "stage-5 score map 2x2" in out  # 64 px / stride 32
    rows = table(r"^ +(1|2|3-4|5-8|9-16|> 16) \| +(\d+) +" + NUMBER + " +" + NUMBER + r" \| +(\d+) +" + NUMBER + " +"
                 + NUMBER + "$", out, 6)
    bands = {"stuff": [(int(r[1]), float(r[2]), float(r[3])) for r in rows],  # (pixels, FCN-32s, FCN-8s) per band
             "things": [(int(r[4]), float(r[5]), float(r[6])) for r in rows]}
    # the pixel counts: rings between successive boundary_mask widths, stuff and thing pixels apart
    _, val = train_val_split(96, VAL_SCENES, size=SIZE, seed=0)
    masks = [np.zeros(val.labels.shape, dtype=bool)] + [boundary_mask(val.labels, w) for w in (1, 2, 4, 8, 16)]
    masks.append(np.ones(val.labels.shape, dtype=bool))
    for group, classes in (("stuff", STUFF), ("things", THINGS)):
        of_group = np.isin(val.labels, classes)
        expected = [int((outer & ~inner & of_group).sum()) for inner, outer in zip(masks, masks[1:])]
        assert [pixels for pixels, _, _ in bands[group]] == expected
    # the near (1-2 px) / far (> 4 px) table: pooled from the bands, fall = far - near
    summary = {(group, net): tuple(float(v) for v in values) for group, net, *values in table(
        r"^(stuff|things) +(FCN-32s|FCN-8s) +(\d+) +" + NUMBER + r" +(\d+) +" + NUMBER + " +" + NUMBER + "$", out, 4)}
    for (group, net), (near_px, near, far_px, far, fall) in summary.items():
        column = 1 if net == "FCN-32s" else 2
        for pixels, accuracy, selected in ((near_px, near, bands[group][:2]), (far_px, far, bands[group][3:])):
            assert pixels == sum(b[0] for b in selected)
            pooled = sum(b[0] * b[column] for b in selected if b[0]) / pixels
            assert accuracy == pytest.approx(pooled, abs=1e-3)  # the bands' accuracies have 3 decimals
        assert fall == pytest.approx(far - near, abs=1.5e-3)
    claim = find(r"within stuff \(([\d.]+) vs ([\d.]+)\): (\w+); within things \(([\d.]+) vs ([\d.]+)\): (\w+)$", out)
    for group, (fall32, fall8, verdict) in (("stuff", claim[:3]), ("things", claim[3:])):
        assert (float(fall32), float(fall8)) == (summary[group, "FCN-32s"][4], summary[group, "FCN-8s"][4])
        assert verdict == ("yes" if float(fall32) > float(fall8) else "NO")
    # what 6 epochs establish: within stuff, both nets are less accurate within 2 px of a boundary than more
    # than 4 px away, and near boundaries FCN-8s is more accurate than FCN-32s
    assert summary["stuff", "FCN-32s"][4] > 0 and summary["stuff", "FCN-8s"][4] > 0
    assert summary["stuff", "FCN-8s"][1] > summary["stuff", "FCN-32s"][1]
    assert_png(shared_out / "08_fcn32s_resolution.png", 1050, 760)


def test_lesson_11_dilation_keeps_stride_8_and_costs_memory(shared_out):
    out = run_lesson("11_dilated_convolution.py", shared_out)
    stages = [tuple(map(int, row)) for row in table(
        r"^   (\d) +r = +(\d+), S = +(\d+) +r = +(\d+), S = +(\d+)$", out, 5)]
    for stage, r32, s32, r_dilated, s_dilated in stages:
        assert s32 == 2 ** stage and s_dilated == 2 ** min(stage, 3)  # pooling halves the map; dilation does not
        assert r_dilated >= r32  # and the field still grows at least as fast
    # boundary accuracy, the third column of the validation table
    accuracy = {"fcn32s": find(r"^   FCN-32s \(subsampling\) +[\d.]+ +[\d.]+ +([\d.]+)", out)[0],
                "dilated": find(r"^   dilated \(DeepLab\) +[\d.]+ +[\d.]+ +([\d.]+)", out)[0]}
    memory = {int(size): (float(a), float(b), float(ratio)) for size, a, b, ratio in table(
        r"^ +(\d+)x\d+ +([\d.]+) MiB +([\d.]+) MiB +([\d.]+)$", out, 3)}
    for size, (subsampled, dilated, ratio) in memory.items():
        if subsampled >= 1:  # (the 64x64 row's MiB have too few digits to recompute the ratio)
            assert ratio == pytest.approx(dilated / subsampled, abs=0.01)
    claim = find(r"keeps stride (\d+) \(vs (\d+)\) with a receptive field of (\d+) px \(vs (\d+)\), is more accurate "
                 r"near boundaries \(([\d.]+) vs ([\d.]+)\), and pays ([\d.]+)x the feature-map memory: (\w+)", out)
    assert tuple(map(int, claim[:4])) == (stages[-1][4], stages[-1][2], stages[-1][3], stages[-1][1])
    assert claim[4:6] == (accuracy["dilated"], accuracy["fcn32s"])
    assert float(claim[6]) == pytest.approx(memory[256][2], abs=0.05)
    assert float(accuracy["dilated"]) > float(accuracy["fcn32s"]) and memory[256][2] > 1 and claim[7] == "yes"
    maps = find(r"stage-5 map for a 64x64 image: FCN-32s \(subsampling\) \((\d+), \d+\), dilated \(DeepLab\) \((\d+), \d+\)",
                out)
    assert (int(maps[0]), int(maps[1])) == (SIZE // stages[-1][2], SIZE // stages[-1][4])
    assert_png(shared_out / "11_dilated_convolution.png", 1000, 820)


def test_lesson_12_crf_improves_boundaries_and_mean_iou(shared_out):
    out = run_lesson("12_deeplab_crf.py", shared_out)
    rows = {title: list(map(float, values)) for title, *values in table(
        r"^(dilated net|dilated net \+ CRF) +" + " +".join([NUMBER] * 7) + "$", out, 2)}
    before, after = rows["dilated net"], rows["dilated net + CRF"]  # pixel, mean acc., mean IU, f.w. IU, 1/3/5 px
    claim = find(r"within 3 px of boundaries \(([\d.]+) -> ([\d.]+)\) and mean IU \(([\d.]+) -> ([\d.]+)\): (\w+)", out)
    assert list(map(float, claim[:4])) == [before[5], after[5], before[2], after[2]]
    assert after[5] > before[5] and after[2] > before[2] and claim[4] == "yes"
    per_class = re.findall(r"(\w+) ([\d.]+)->([\d.]+)", find(r"^per-class IU before -> after: (.*)$", out)[0])
    assert [name for name, _, _ in per_class] == [c.name for c in CLASSES]
    assert_png(shared_out / "12_deeplab_crf.png", 1000, 820)


def test_lesson_09_the_half_scale_branch_sees_twice_as_far(shared_out):
    out = run_lesson("09_image_pyramids.py", shared_out)
    branches = {(scale, name): (int(r), int(s)) for scale, name, r, s in table(
        r"^   scale (1\.0|0\.5): (.+?) +r = +(\d+), S = +(\d+)$", out, 6)}
    # the half-size input enters through a 2x2 average pooling: every field and stride doubles, exactly
    for (scale, name), (r, s) in branches.items():
        if scale == "1.0":
            assert branches["0.5", name] == (2 * r, 2 * s)
    half, full, verdict = find(r"the half-scale branch sees (\d+) px of the input where the full-scale one sees (\d+) px: "
                               r"(\w+)", out)
    assert int(full) == max(r for (scale, _), (r, _) in branches.items() if scale == "1.0")
    assert int(half) == 2 * int(full) and verdict == "yes"
    assert_png(shared_out / "09_image_pyramids.png", 1000, 820)


def checkpoints(folder):
    """{model folder: modification time of its checkpoint} for every model cached under folder/models."""
    models = folder / "models"
    return {name: os.stat(models / name / "checkpoint.npz").st_mtime_ns for name in os.listdir(models)}


@pytest.mark.slow
def test_lesson_10_fcn8s_beats_fcn32s_near_boundaries(shared_out):
    cached = checkpoints(shared_out) if (shared_out / "models").exists() else {}
    out = run_lesson("10_skip_connections.py", shared_out)
    rows = {name: list(map(float, values)) for name, *values in table(
        r"^(fcn32s|fcn16s|fcn8s) +" + " +".join([NUMBER] * 7) + "$", out, 3)}
    # pixel acc., mean acc., mean IU, f.w. IU, boundary acc., train loss, train s
    claim = find(r"FCN-8s beats FCN-32s near boundaries \(([\d.]+) vs ([\d.]+)\) and in mean IU \(([\d.]+) vs ([\d.]+)\): "
                 r"(\w+)", out)
    assert list(map(float, claim[:4])) == [rows["fcn8s"][4], rows["fcn32s"][4], rows["fcn8s"][2], rows["fcn32s"][2]]
    assert rows["fcn8s"][4] > rows["fcn32s"][4] and rows["fcn8s"][2] > rows["fcn32s"][2] and claim[4] == "yes"
    assert_png(shared_out / "10_skip_connections.png", 1000, 1025)  # 5 scenes, image + truth + 3 nets
    # models train once: what earlier lessons cached was loaded, not trained again, and a second run
    # of the lesson trains nothing and prints the same table
    trained = checkpoints(shared_out)
    assert all(trained[name] == mtime for name, mtime in cached.items())
    assert {f"{name}_r2_n96_e6_s0" for name in rows} <= set(trained)  # folders named after the recipe tag
    again = run_lesson("10_skip_connections.py", shared_out)
    assert checkpoints(shared_out) == trained
    rows_again = {name: list(map(float, values)) for name, *values in table(
        r"^(fcn32s|fcn16s|fcn8s) +" + " +".join([NUMBER] * 7) + "$", again, 3)}
    assert {name: values[:-1] for name, values in rows_again.items()} == {
        name: values[:-1] for name, values in rows.items()}  # all but the seconds
