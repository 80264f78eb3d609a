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

# the recipe tag the lessons name their model folders after (lessons/_lesson.py), read without importing the
# lessons' module (it parses the command line on import)
with open(os.path.join(os.path.dirname(__file__), "..", "lessons", "_lesson.py")) as _f:
    RECIPE_TAG = re.search(r'^RECIPE_TAG = "(\w+)"$', _f.read(), re.M).group(1)

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
    # per class, plain -> weighted: the things' mean accuracy of the summary is the mean of the thing rows
    per_class = {name: tuple(map(float, values)) for name, *values in table(
        rf"^(\w+) +(?:stuff|thing) +{NUMBER} +{NUMBER} -> {NUMBER} +{NUMBER} -> {NUMBER}$", out, len(CLASSES))}
    thing_rows = [per_class[CLASSES[c].name] for c in THINGS]
    assert np.mean([row[1] for row in thing_rows]) == pytest.approx(plain["things"], abs=2e-3)
    assert np.mean([row[2] for row in thing_rows]) == pytest.approx(weighted["things"], abs=2e-3)
    raised, total, names, verdict = find(r"raise the accuracy \(recall\) of the rare things, (\d+)/(\d+) thing classes "
                                         r"\((.*)\): (\w+)$", out)
    assert int(total) == len(THINGS) and int(raised) == sum(row[2] > row[1] for row in thing_rows)
    assert verdict == ("yes" if weighted["things"] > plain["things"] else "NO")
    # intersection over union of one object: the counts add up and give the IU the metrics compute
    truth, guess, inter, union, iou, from_metrics = find(
        rf"\|truth\| (\d+), \|prediction\| (\d+), \|intersection\| (\d+), \|union\| (\d+): IU = {NUMBER} "
        rf"\(SegmentationMetrics on this scene: {NUMBER}\)", out)
    truth, guess, inter, union = map(int, (truth, guess, inter, union))
    assert union == truth + guess - inter and inter <= min(truth, guess)
    assert float(iou) == pytest.approx(inter / union, abs=5e-4) and iou == from_metrics
    pixel_gap, iou_gap, verdict = find(rf"puts 'never a thing' {NUMBER} below FCN-8s, mean IU {NUMBER} below: (\w+)$", out)
    assert float(pixel_gap) == pytest.approx(plain["pixel"] - never["pixel"], abs=1.5e-3)
    assert float(iou_gap) == pytest.approx(plain["mean_iou"] - never["mean_iou"], abs=1.5e-3)
    assert verdict == ("yes" if float(iou_gap) > max(float(pixel_gap), 0) else "NO")
    assert weighted["things"] > plain["things"]  # class weights pull the rare things up, even after 6 epochs
    assert_png(tmp_path / "06_metrics_and_imbalance.png", 1430, 418)
    assert_png(tmp_path / "06_intersection_over_union.png", 1100, 270)


def test_lesson_04_top_patches_one_per_scene_and_a_probe_per_stage(shared_out):
    out = run_lesson("04_what_units_see.py", shared_out)
    # which layers' fields fit in the scene: exactly those the lesson scans
    fits = table(r"^stage (\d) +(\d+) +(\d+)  (yes|no)$", out, 5)
    assert all((int(r) <= SIZE) == (verdict == "yes") for _, r, _, verdict in fits)
    used = [(stage, r) for stage, r, _, verdict in fits if verdict == "yes"]
    k, scenes = map(int, find(r"^top-(\d+) patches per channel, one per scene \((\d+) scenes\)", out))
    assert scenes == VAL_SCENES
    rows = table(r"^stage (\d) +(\d+) +(\d+)/(\d+) +(\d+) +(\d+) +" + " +".join([NUMBER] * 4) + "$", out, len(used))
    assert [(stage, r) for stage, r, *_ in rows] == used and len(used) >= 2
    strides = {stage: int(stride) for stage, _, stride, _ in fits}
    stats = []
    for stage, _, inside, units, channels, firing, *values in rows:
        assert int(units) == (SIZE // strides[stage]) ** 2 and 0 < int(inside) <= int(units)
        assert 0 < int(firing) <= int(channels)
        purity, purity_chance, things, things_chance = map(float, values)
        # purity: the share of k patches on their most frequent class, so between 1/k and 1
        assert 1 / k - 0.005 <= min(purity, purity_chance) and max(purity, purity_chance) <= 1
        assert 0 <= min(things, things_chance) and max(things, things_chance) <= 1
        # what even a 6-epoch net shows: a unit's top patches are purer than random units
        assert purity > purity_chance
        stats.append((purity, purity_chance, things, things_chance))
    # the same channels split by the kind of their most frequent class: the split adds up to the table above
    kinds = table(r"^stage (\d) +(\d+)/(\d+) +([\d.]+|-) +(\d+)/(\d+) +([\d.]+|-)$", out, len(rows))
    for (stage, n_stuff, of_stuff, p_stuff, n_thing, of_thing, p_thing), row, (purity, *_) in zip(kinds, rows, stats):
        assert stage == row[0] and of_stuff == of_thing == row[5] and int(n_stuff) + int(n_thing) == int(row[5])
        parts = [int(n) * float(p) for n, p in ((n_stuff, p_stuff), (n_thing, p_thing)) if int(n)]
        assert sum(parts) / int(row[5]) == pytest.approx(purity, abs=0.01)
    # the linear probe: one row per scanned layer, accuracies between 0 and 1, the units of every stage
    probe = table(r"^stage (\d) +(\d+) \| +(\d+) +" + NUMBER + " +" + NUMBER + " +" + NUMBER + r" \| +(\d+) +" + NUMBER
                  + " +" + NUMBER + "$", out, len(used))
    assert [(stage, r) for stage, r, *_ in probe] == used
    for stage, _, thing_units, *values in probe:
        assert 0 < int(thing_units) < int(values[3]) and all(0 <= float(v) <= 1 for v in values[:3] + values[4:])
    accuracy, at_init, majority = (np.array([float(p[i]) for p in probe]) for i in (3, 4, 5))
    gain = np.round(accuracy - at_init, 2)
    # the paired bootstrap over the scoring scenes: every step (stage k+1 - stage k), then the deepest minus
    # each stage not already a step; each interval ordered
    scored, intervals = find(r"^the probe on things, 95% of 1000 bootstrap draws of the (\d+) scoring scenes: (.*)$",
                             out)
    assert int(scored) == VAL_SCENES - VAL_SCENES // 2
    pairs = [(int(b), int(a), float(lo), float(hi)) for b, a, lo, hi in
             re.findall(r"stage (\d) - stage (\d) ([-+][\d.]+) to ([-+][\d.]+)", intervals)]
    stages = [int(stage) for stage, _ in used]
    assert [(b, a) for b, a, *_ in pairs] == list(zip(stages[1:], stages)) + [(stages[-1], a) for a in stages[:-2]]
    assert all(lo <= hi for *_, lo, hi in pairs)
    steps = pairs[:len(stages) - 1]
    over = [pair for pair in pairs if pair[0] == stages[-1]]  # the deepest minus every shallower stage
    # the claim, decided by the numbers the run printed (the quick net need not say yes)
    claim = find(r"^claim: deeper layers are more class-specific: a linear probe names the object under a unit more "
                 r"often at the deepest stage than at every earlier one, and no stage significantly less often than "
                 r"the one before, beyond the noise of which scenes are scored \((.*); stage 1, .*: "
                 r"([\d.]+(?:, [\d.]+)*); the deepest above the majority guess, ([\d.]+)\), and training, not only the "
                 r"larger window, made the difference: the deepest stage gained most over the same net before "
                 r"training \(gain ([-+\d., ]+)\): (yes|NO)$", out)
    verdicts = ["higher" if lo > 0 else "lower" if hi < 0 else "not distinguishable" for *_, lo, hi in steps]
    assert claim[0] == "; ".join(f"stage {b} vs stage {a}: {v}" for (b, a, *_), v in zip(steps, verdicts))
    assert [float(v) for v in claim[1].split(", ")] == accuracy.tolist() and float(claim[2]) == majority[-1]
    assert [float(v) for v in claim[3].split(", ")] == pytest.approx(gain.tolist(), abs=1e-9)
    expected = (all(lo > 0 for *_, lo, _ in over) and all(hi > 0 for *_, hi in steps)
                and accuracy[-1] > majority[-1] and gain[-1] > gain[:-1].max())
    assert claim[4] == ("yes" if expected else "NO")
    # plot_top_activations: per layer its purest stuff channel, its purest thing channel if any, its median one
    shown, crops = map(int, find(r"^figure: .*04_what_units_see\.png \((\d+) channels x (\d+) crops\)", out))
    assert crops == k and len(rows) <= shown <= 3 * len(rows)  # (a channel shown once, whatever roles it fills)
    assert_png(shared_out / "04_what_units_see.png", round(100 * (1.2 * k + 1.7)), round(100 * (1.45 * shown + 0.5)))


def test_lesson_05_covering_part_of_an_object_mislabels_the_rest(shared_out):
    out = run_lesson("05_occlusion_sensitivity.py", shared_out)
    rows = re.findall(rf"^ *(\d+) +(\w+) +{NUMBER} +{NUMBER} +{NUMBER} +{NUMBER} +{NUMBER}$", out, flags=re.MULTILINE)
    wins, count, verdict = find(r"more than covering its context does, in (\d+)/(\d+) scenes: (\w+)", out)
    assert len(rows) == int(count) >= 2
    # (a 6-epoch net may get no thing right; then the lesson scores stuff regions, and says which)
    assert [cls for _, cls, *_ in rows] == find(r"regions scored: (.*)$", out)[0].split(", ")
    for _, _, before, worst, on_object, on_context, _ in rows:
        # shares of pixels: the worst position leaves between 0 and what was right before
        assert 0 <= float(worst) <= float(before) <= 1
    # the count agrees with the table (a tie at 3 decimals may have gone either way)
    pairs = [(float(on_object), float(on_context)) for *_, on_object, on_context, _ in rows]
    assert sum(a > b for a, b in pairs) <= int(wins) <= sum(a >= b for a, b in pairs)
    assert verdict == ("yes" if wins == count else "NO")
    # the worst line is the largest drop of the table
    scene, before, after = find(rf"worst position: scene (\d+), the uncovered pixels right {NUMBER} -> {NUMBER}", out)
    drops = {row[0]: float(row[2]) - float(row[3]) for row in rows}
    assert float(before) - float(after) == pytest.approx(max(drops.values()), abs=0.011) and scene in drops
    # the timing line describes this run: 8x8 square at stride 2 on a 64-px scene, batches of 64
    positions, batches, seconds = find(rf"one occlusion map \((\d+) positions, (\d+) batches\): {NUMBER} s", out)
    assert int(positions) == ((SIZE - 8) // 2 + 1) ** 2 and int(batches) == int(positions) // 64 + 1
    assert float(seconds) == pytest.approx(np.mean([float(row[-1]) for row in rows]), abs=0.01)
    assert_png(shared_out / "05_occlusion_sensitivity.png", round(100 * (3.0 * 3 + 0.8)), round(100 * 2.7 * len(rows)))


def per_class_row(title, text):
    """A row of per-class IUs (one column per class, in CLASSES order) and the row's stuff and things means."""
    values = find(rf"^{re.escape(title)} +" + " +".join([NUMBER] * (len(CLASSES) + 2)) + "$", text)
    return np.array(values[:len(CLASSES)], dtype=float), float(values[-2]), float(values[-1])


def thing_confusion(title, text):
    """The confusion among the thing classes printed under ``title`` (rows true, columns predicted): the
    (k, k) counts, each row's printed total and right share, and the summary line's right-shape rate,
    pixel total, uniform chance and the chance for the model's mix of predicted classes."""
    names = [CLASSES[t].name for t in THINGS]
    row = r"\n  (\w+) +" + " +".join([r"(\d+)"] * len(THINGS)) + r" \| +(\d+) +" + NUMBER
    header = rf"^{re.escape(title)} +" + " +".join(n[:8] for n in names) + r" \| +total +right"
    groups = find(header + row * len(THINGS), text)
    rows = [groups[i:i + len(THINGS) + 3] for i in range(0, len(groups), len(THINGS) + 3)]
    assert [r[0] for r in rows] == names
    counts = np.array([[int(v) for v in r[1:len(THINGS) + 1]] for r in rows])
    totals, right = np.array([int(r[-2]) for r in rows]), np.array([float(r[-1]) for r in rows])
    rate, pixels, uniform, chance = find(rf"^{re.escape(title)}: right shape {NUMBER} of (\d+) pixels; chance {NUMBER} "
                                         rf"\(1/{len(THINGS)}\), {NUMBER} for its mix of predicted classes$", text)
    return counts, totals, right, (float(rate), int(pixels), float(uniform), float(chance))


def test_lesson_07_texture_names_stuff_not_shapes_and_labels_merge_instances(shared_out):
    """The per-class IU table, the confusion among the thing classes (texture baseline and FCN-8s) and the
    instance counts, each re-read and checked against the others and against the validation scenes. After
    the quick run's 6 epochs FCN-8s names no shape reliably (it may call every thing one class), so the quick
    run checks the texture half of the first claim, and that the claim line says what its numbers say."""
    from minisegnet.metrics import count_instances  # (here, to keep this test's imports with it)

    out = run_lesson("07_things_vs_stuff.py", shared_out)
    for title in ("texture + linear", "FCN-8s"):
        iou, stuff_mean, things_mean = per_class_row(title, out)
        assert stuff_mean == pytest.approx(np.nanmean(iou[list(STUFF)]), abs=0.01)
        assert things_mean == pytest.approx(np.nanmean(iou[list(THINGS)]), abs=0.01)
    _, val = train_val_split(96, VAL_SCENES, size=SIZE, seed=0)
    shapes = {}
    for title in ("texture + linear", "FCN-8s"):
        counts, totals, right, (rate, pixels, uniform, chance) = thing_confusion(title, out)
        assert (counts.sum(axis=1) == totals).all() and counts.sum() == pixels  # rows sum to their totals
        # a row holds the pixels of that class predicted as some thing: at most all of the class's pixels
        assert all(total <= (val.labels == t).sum() for t, total in zip(THINGS, totals))
        for row, total, share, k in zip(counts, totals, right, range(len(THINGS))):
            assert np.isnan(share) if total == 0 else share == pytest.approx(row[k] / total, abs=0.005)
        assert rate == pytest.approx(np.trace(counts) / pixels, abs=0.005) and uniform == pytest.approx(1 / len(THINGS),
                                                                                                        abs=0.005)
        assert chance == pytest.approx((counts.sum(axis=1) * counts.sum(axis=0)).sum() / pixels ** 2, abs=0.005)
        shapes[title] = (rate, chance)
    _, stuff, things = per_class_row("texture + linear", out)
    claim = find(rf"^claim: texture histograms tell stuff apart but name a thing's shape hardly better than chance "
                 rf"\(within 0.1 of it\), FCN-8s names the shape "
                 rf"\(texture: stuff mean IU {NUMBER}, things {NUMBER}, right shape {NUMBER} vs chance {NUMBER}; "
                 rf"FCN-8s right shape {NUMBER} vs chance {NUMBER}\): (yes|NO)$", out)
    (texture_rate, texture_chance), (fcn_rate, fcn_chance) = shapes["texture + linear"], shapes["FCN-8s"]
    assert tuple(map(float, claim[:6])) == (stuff, things, texture_rate, texture_chance, fcn_rate, fcn_chance)
    # the claim, by the numbers above: stuff well segmented (over 0.4, more than twice the things), the texture
    # baseline's right-shape rate within 0.1 of chance for its mix, FCN-8s's more than 1/5 above chance for its
    # own mix and above the baseline's
    texture_half = stuff > 0.4 and stuff > 2 * things and abs(texture_rate - texture_chance) < 0.1
    assert claim[6] == ("yes" if texture_half and fcn_rate > fcn_chance + 0.2 and fcn_rate > texture_rate else "NO")
    assert texture_half
    # instances: the things are the generator's (distinct ids), the merges count_instances's
    objects, regions, merged, scenes = map(int, find(
        r"^instances in the \d+ validation scenes: (\d+) things \(the generator's instance maps\); the semantic labels "
        r"show (\d+) connected thing regions; (\d+) things share a region with another thing of their class "
        r"\(in (\d+) scenes\)$", out))
    counts = [count_instances(labels, ids, THINGS) for labels, ids in zip(val.labels, val.instances)]
    assert objects == sum(len(np.unique(ids[ids > 0])) for ids in val.instances)
    assert (regions, merged, scenes) == (sum(c.regions for c in counts), sum(c.merged for c in counts),
                                         sum(c.merged > 0 for c in counts))
    verdict = find(rf"^claim: semantic labels do not separate instances \({merged} of {objects} things share a region "
                   r"with another thing of their class\): (yes|NO)$", out)[0]
    assert verdict == "yes" and merged > 0  # the claim: some things share their region with another of their class
    assert_png(shared_out / "07_things_vs_stuff.png", 1000, 820)  # plot_segmentations: 5 scenes, 4 rows
    assert_png(shared_out / "07_instances.png", 720, round(100 * (2.75 * 2 + 0.9)))  # plot_instances: 2 scenes


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
    claim = find(r"within stuff \(([\d.]+) vs ([\d.]+)\): (\w+)$", out)
    assert (float(claim[0]), float(claim[1])) == (summary["stuff", "FCN-32s"][4], summary["stuff", "FCN-8s"][4])
    assert claim[2] == ("yes" if float(claim[0]) > float(claim[1]) else "NO")
    right = find(r"fewer thing pixels right than FCN-8s \(([\d.]+)% vs ([\d.]+)%\), in every distance band that "
                 r"holds thing pixels: (\w+)$", out)
    pooled = [sum(b[0] * b[column] for b in bands["things"] if b[0]) / sum(b[0] for b in bands["things"])
              for column in (1, 2)]
    assert [float(right[0]), float(right[1])] == pytest.approx([100 * p for p in pooled], abs=0.1)
    every_band = all(b[1] < b[2] for b in bands["things"] if b[0])
    assert right[2] == ("yes" if float(right[0]) < float(right[1]) and every_band else "NO")
    # the stride-32 ceiling: the truth painted at stride 32, recomputed here from the validation labels
    from minisegnet.metrics import painted_at_stride
    oracle, again = find(r"the ground truth itself painted at stride 32 labels ([\d.]+)% of the thing pixels right, "
                         r"where FCN-8s gets ([\d.]+)%\)$", out)
    things = np.isin(val.labels, THINGS)
    painted = painted_at_stride(val.labels, 9, 32).argmax(axis=1)
    assert float(oracle) == pytest.approx(100 * (painted[things] == val.labels[things]).mean(), abs=0.06)
    assert again == right[1]
    # what 6 epochs establish: within stuff, both nets are less accurate within 2 px of a boundary than more
    # than 4 px away, and near boundaries FCN-8s is more accurate than FCN-32s
    assert summary["stuff", "FCN-32s"][4] > 0 and summary["stuff", "FCN-8s"][4] > 0
    assert summary["stuff", "FCN-8s"][1] > summary["stuff", "FCN-32s"][1]
    assert_png(shared_out / "08_fcn32s_resolution.png", 1050, 760)


def test_lesson_11_dilation_against_its_controls_and_its_memory(shared_out):
    """The table's structure is checked exactly (fields and strides follow from the layers); the claims must be
    the verdicts of the printed numbers. After the quick run's 6 epochs the controls can beat the weak deep nets,
    so only the claims a quick run can show are asserted as yes: dilation keeps stride 8 with the largest field,
    and its stages 4-5 cost more memory."""
    out = run_lesson("11_dilated_convolution.py", shared_out)
    rows = {title: tuple(float(v) for v in values) for title, *values in table(
        r"^(no pooling, no dilation|shallow \(stages 1-2\)|FCN-32s|FCN-8s \(skips\)|dilated \(DeepLab\)) +(\d+) +(\d+) +"
        + " +".join([NUMBER] * 6) + "$", out, 5)}
    # r and S from the layers: 9 convolutions and no pooling: 19 px at stride 1; two stages: 16 px at stride 4;
    # five stages: 124 px, stride 32 for FCN-32s, 8 through the skips of FCN-8s; dilation 2 and 4 grows it to 164
    assert {title: values[:2] for title, values in rows.items()} == {
        "no pooling, no dilation": (19, 1), "shallow (stages 1-2)": (16, 4), "FCN-32s": (124, 32),
        "FCN-8s (skips)": (124, 8), "dilated (DeepLab)": (164, 8)}
    r, stride, miou, things, shape, boundary, mib, late = range(8)
    nopool, shallow, f32, f8, d = (rows[t] for t in ("no pooling, no dilation", "shallow (stages 1-2)", "FCN-32s",
                                                     "FCN-8s (skips)", "dilated (DeepLab)"))
    assert shallow[late] == 0 and nopool[mib] > d[mib] > 0  # no stages 4-5; full resolution everywhere costs most
    vgg = {name: tuple(map(float, v)) for name, *v in table(
        rf"^(FCN-8s \(skips\)|dilated \(DeepLab\)) +{NUMBER} MiB in all, +{NUMBER} MiB in stages 4-5$", out, 2)}
    claims = re.findall(r"^  (.*): (yes|NO)$", out, flags=re.MULTILINE)
    assert len(claims) == 4
    small_window, less_semantic, keeps_stride, costs_memory = (answer == "yes" for _, answer in claims)
    assert claims[0][0].startswith("removing subsampling") and claims[3][0].startswith("not a panacea")
    # the controls are held to FCN-8s
    assert small_window == (nopool[miou] < f8[miou] and nopool[things] < f8[things])
    assert less_semantic == (shallow[shape] < f8[shape])
    assert keeps_stride == (d[boundary] > f32[boundary] and d[miou] > f32[miou])
    lesson_ratio, vgg_ratio = map(float, find(r"keep ([\d.]+)x the activation memory of FCN-8s's \(([\d.]+)x", out))
    assert lesson_ratio == pytest.approx(d[late] / f8[late], abs=0.02)
    assert vgg_ratio == pytest.approx(vgg["dilated (DeepLab)"][1] / vgg["FCN-8s (skips)"][1], abs=0.02)
    assert costs_memory and min(lesson_ratio, vgg_ratio) > 1
    assert_png(shared_out / "11_dilated_convolution.png", 1000, round(100 * 2.05 * 7))


def test_lesson_12_crf_tuned_on_fresh_scenes_improves_boundaries_and_reports_thin_classes(shared_out):
    out = run_lesson("12_deeplab_crf.py", shared_out)
    # the tuning table: one row per setting of the grid; the chosen setting is the row of the highest mean IU
    settings = [tuple(map(float, row)) for row in table(
        r"^ +" + " +".join([NUMBER] * 4) + "$", out, int(find(r"^tuning: (\d+) settings x", out)[0]))]
    chosen = tuple(map(float, find(rf"^chosen by mean IU on the tuning scenes: w1 = {NUMBER}, theta_alpha = {NUMBER}, "
                                   rf"theta_beta = {NUMBER}$", out)))
    scores = {setting[:3]: setting[3] for setting in settings}
    assert len(scores) == len(settings) and scores[chosen] == max(scores.values())
    # the tuning scenes are not the validation scenes: their seed is neither split's (2s, 2s + 1 for --seed 0)
    assert int(find(r"on the \d+ tuning scenes \(seed (\d+)\)", out)[0]) not in (0, 1)

    rows = {title: list(map(float, values)) for title, *values in table(
        r"^(dilated net|dilated net \+ CRF) +" + " +".join([NUMBER] * 7) + "$", out, 2)}
    before, after = rows["dilated net"], rows["dilated net + CRF"]  # pixel, mean acc., mean IU, f.w. IU, 1/3/5 px
    *numbers, verdict = find(rf"^claim: the CRF improves accuracy \(pixel acc. {NUMBER} -> {NUMBER}\), mostly near "
                             rf"boundaries \(within 3 px {NUMBER} -> {NUMBER}\), and mean IU \({NUMBER} -> {NUMBER}\): "
                             r"(yes|NO)$", out)
    assert list(map(float, numbers)) == [before[0], after[0], before[5], after[5], before[2], after[2]]
    # the verdict follows from the printed numbers (unless a comparison is a tie at their 3 decimals)
    margins = [after[0] - before[0], (after[5] - before[5]) - (after[0] - before[0]), after[2] - before[2]]
    if all(abs(m) > 0.0015 for m in margins):
        assert verdict == ("yes" if all(m > 0 for m in margins) else "NO")

    per_class = {name: (kind, float(b), float(a), float(change)) for name, kind, b, a, change in table(
        rf"^(\w+) +(stuff|thing|thing \(thin\)) +{NUMBER} +{NUMBER} +([+-](?:[\d.]+|nan))$", out, len(CLASSES))}
    assert list(per_class) == [c.name for c in CLASSES]
    assert {name for name, (kind, *_) in per_class.items() if kind == "thing (thin)"} == {"ring", "pole"}
    for name, (kind, b, a, change) in per_class.items():
        assert kind.startswith(CLASSES[[c.name for c in CLASSES].index(name)].kind)
        assert change == pytest.approx(a - b, abs=0.0015, nan_ok=True)
    for group, members in (("stuff", STUFF), ("things", THINGS)):
        b, a = map(float, find(rf"^{group} \(mean\) +{NUMBER} +{NUMBER} +[+-](?:[\d.]+|nan)$", out))
        assert b == pytest.approx(np.nanmean([per_class[CLASSES[i].name][1] for i in members]), abs=0.0015)
        assert a == pytest.approx(np.nanmean([per_class[CLASSES[i].name][2] for i in members]), abs=0.0015)
    # where the thin classes' pixels go: three shares before and three after, each set summing to 1
    for name, *shares in table(rf"^(ring|pole) pixels labelled \1 {NUMBER} -> {NUMBER}, another thing {NUMBER} "
                               rf"-> {NUMBER}, stuff {NUMBER} -> {NUMBER} \(before -> after the CRF\)$", out, 2):
        before_shares, after_shares = list(map(float, shares[0::2])), list(map(float, shares[1::2]))
        assert sum(before_shares) == pytest.approx(1, abs=0.002) and sum(after_shares) == pytest.approx(1, abs=0.002)
    ring_change, pole_change, low, high, least = find(
        r"^thin structures, both 6 px wide \(IU change ring ([+-][\d.]+), pole ([+-][\d.]+)\): the pole gains least of all "
        r"classes from the CRF \(the others ([+-][\d.]+) to ([+-][\d.]+)\): (yes|NO)$", out)
    assert (float(ring_change), float(pole_change)) == pytest.approx((per_class["ring"][3], per_class["pole"][3]), abs=0.0015)
    others = [change for name, (_, _, _, change) in per_class.items() if name != "pole" and not np.isnan(change)]
    assert (float(low), float(high)) == pytest.approx((min(others), max(others)), abs=0.0015)
    if abs(float(pole_change) - float(low)) > 0.0015:  # a tie within the rounding could go either way
        assert least == ("yes" if float(pole_change) < float(low) else "NO")
    assert_png(shared_out / "12_deeplab_crf.png", 1000, 820)


def test_lesson_09_each_halving_doubles_what_the_shared_net_sees(shared_out):
    out = run_lesson("09_image_pyramids.py", shared_out)
    branches = {scale: (int(r), int(s)) for scale, name, r, s in table(
        r"^   scale (1\.0|0\.5|0\.25): (.+?) +r = +(\d+), S = +(\d+)$", out, 3)}
    # each level is the one above halved, a 2x2 average pooling: the field and the stride double, exactly
    full, half, quarter = branches["1.0"], branches["0.5"], branches["0.25"]
    assert full == (6, 2)  # the first stage: two 3x3 convolutions and a 2x2 pooling
    assert half == (2 * full[0], 2 * full[1]) and quarter == (2 * half[0], 2 * half[1])
    # the things are larger than the one-scale window (the lesson's premise)
    assert find(r"validation scenes of (\d+)x\d+", out)[0] == str(SIZE)
    span, count = map(int, find(r"a thing in the validation scenes spans (\d+) px from top to bottom \(median of (\d+)\)",
                                out))
    _, val = train_val_split(96, VAL_SCENES, size=SIZE, seed=0)
    heights = [int((ids == k).any(axis=1).sum()) for ids in val.instances for k in np.unique(ids[ids > 0])]
    assert (span, count) == (round(np.median(heights)), len(heights)) and span > full[0]
    coarse_r, full_r, verdict = find(r"the quarter-scale branch sees (\d+) px of the input where the full-scale one sees "
                                     r"(\d+) px: (\w+)", out)
    assert (int(coarse_r), int(full_r)) == (quarter[0], full[0]) and verdict == "yes"
    rows = {title: tuple(map(float, values)) for title, *values in table(
        r"^   (one stage, one scale|one stage, scales 1, 1/2, 1/4) +" + " +".join([NUMBER] * 5) + "$", out, 2)}
    one, pyramid = rows["one stage, one scale"], rows["one stage, scales 1, 1/2, 1/4"]
    things_p, things_1, shape_p, shape_1, verdict = find(
        rf"things IU {NUMBER} vs {NUMBER}, right shape {NUMBER} vs {NUMBER}: (\w+)$", out)
    assert (float(things_p), float(things_1), float(shape_p), float(shape_1)) == (pyramid[2], one[2], pyramid[3], one[3])
    # the verdict needs the gain beyond the scene-to-scene noise: the bootstrap's 2.5% bounds above 0
    t_lo, t_hi, s_lo, s_hi = map(float, find(r"things IU ([+-][\d.]+) to ([+-][\d.]+), right shape ([+-][\d.]+) to "
                                             r"([+-][\d.]+)$", out))
    assert t_lo <= t_hi and s_lo <= s_hi
    assert verdict == ("yes" if t_lo > 0 and s_lo > 0 else "NO")
    # which things gain: each thing class's pixel count, from the labels, and two shares of it
    found = re.findall(rf"(\w+) \((\d+) px\) {NUMBER} -> {NUMBER}", find(r"^which things: pixels labelled right, one "
                                                                      r"scale -> pyramid: (.+)$", out)[0])
    present = [k for k in THINGS if (val.labels == k).any()]
    assert [(name, int(n)) for name, n, _, _ in found] == [(CLASSES[k].name, int((val.labels == k).sum())) for k in present]
    assert all(0 <= float(x) <= 1 for _, _, *shares in found for x in shares)
    ratio = float(find(r"the price: ([\d.]+)x the time per scene", out)[0])
    # the time ratio of the unrounded times: within what the table's rounding (to 0.005 ms) and its own allow
    assert (pyramid[4] - 0.005) / (one[4] + 0.005) - 0.005 <= ratio <= (pyramid[4] + 0.005) / (one[4] - 0.005) + 0.005
    assert_png(shared_out / "09_image_pyramids.png", 1000, 820)
    # the pyramid's folder carries its design tag (lessons/_lesson.py: DESIGNS), so an older design's checkpoint
    # is never resumed into these layers; the one-scale net's carries none
    trained = checkpoints(shared_out)
    assert {f"pyramid_shallow1_concat_{RECIPE_TAG}_n96_e6_s0", f"shallow1_{RECIPE_TAG}_n96_e6_s0"} <= set(trained)


def checkpoints(folder):
    """{model folder: modification time of its checkpoint} for every model cached under folder/models."""
    models = folder / "models"
    return {name: os.stat(models / name / "checkpoint.npz").st_mtime_ns for name in os.listdir(models)}


@pytest.mark.slow
def test_lesson_10_fcn8s_beats_fcn32s_near_boundaries(shared_out):
    cached = checkpoints(shared_out) if (shared_out / "models").exists() else {}
    out = run_lesson("10_skip_connections.py", shared_out)
    rows = {name: list(map(float, values)) for name, *values in table(
        r"^(fcn32s|fcn16s|fcn8s) +" + " +".join([NUMBER] * 8) + "$", out, 3)}
    # pixel acc., mean acc., mean IU, f.w. IU, boundary acc., right shape, train loss, train s
    claim = find(r"FCN-8s beats FCN-32s near boundaries \(([\d.]+) vs ([\d.]+)\) and in mean IU \(([\d.]+) vs ([\d.]+)\): "
                 r"(\w+)", out)
    assert list(map(float, claim[:4])) == [rows["fcn8s"][4], rows["fcn32s"][4], rows["fcn8s"][2], rows["fcn32s"][2]]
    assert rows["fcn8s"][4] > rows["fcn32s"][4] and rows["fcn8s"][2] > rows["fcn32s"][2] and claim[4] == "yes"
    # right shape: the claim line repeats the table (FCN-32s may label no thing at all: NaN, said in words)
    shape8, shape32, verdict = find(r"names the right shape of a thing more often than FCN-32s \(([\d.]+) vs (.+)\): (\w+)$",
                                    out)
    assert float(shape8) == rows["fcn8s"][5]
    if np.isnan(rows["fcn32s"][5]):
        assert shape32 == "it labels no thing pixel as a thing" and verdict == ("yes" if float(shape8) > 0 else "NO")
    else:
        assert float(shape32) == rows["fcn32s"][5] and verdict == ("yes" if float(shape8) > float(shape32) else "NO")
    # resolution's ceiling: the truth painted at strides 32, 16, 8 beside each net's own mean IU and boundary accuracy
    ceilings = {int(stride): tuple(map(float, v)) for stride, *v in table(
        rf"^ +(32|16|8) +{NUMBER} +{NUMBER} +{NUMBER} +{NUMBER}$", out, 3)}
    for stride, name in ((32, "fcn32s"), (16, "fcn16s"), (8, "fcn8s")):
        assert (ceilings[stride][1], ceilings[stride][3]) == (rows[name][2], rows[name][4])
    assert ceilings[32][0] < ceilings[16][0] < ceilings[8][0]  # a finer stride can paint more of the truth
    # the red arrows: per-stage gradient norms through the deep path and through the skips; the ratio column and
    # the claim agree with them; stage 5 feeds no skip, so nothing reaches it that way (exactly 0)
    stages = {int(k): (float(a), float(b), float(r)) for k, a, b, r in table(
        rf"^ +([1-5]) +{NUMBER} +{NUMBER} +{NUMBER}$", out, 5)}
    for deep, skip, ratio in stages.values():
        assert ratio == pytest.approx(skip / deep, abs=0.01 + 0.01 * ratio)
    assert stages[5][1] == 0
    g3, g4, g5, verdict = find(r"stages they read, ([\d.]+)x \(stage 3\) and ([\d.]+)x \(stage 4\) what arrives through "
                               r"the deep path, and nothing into stage 5 \(([\d.]+)x\): (\w+)$", out)
    assert (float(g3), float(g4), float(g5)) == (stages[3][2], stages[4][2], stages[5][2])
    assert verdict == ("yes" if min(stages[3][1], stages[4][1]) > 0 and stages[5][1] == 0 else "NO")
    assert_png(shared_out / "10_skip_connections.png", 1000, 1025)  # 5 scenes, image + truth + 3 nets
    # models train once: what earlier lessons cached was loaded, not trained again, and a second run
    # of the lesson trains nothing and prints the same table
    trained = checkpoints(shared_out)
    assert all(trained[name] == mtime for name, mtime in cached.items())
    # folders named after the net and the recipe tag
    for name in rows:
        assert f"{name}_{RECIPE_TAG}_n96_e6_s0" in trained, name
    again = run_lesson("10_skip_connections.py", shared_out)
    assert checkpoints(shared_out) == trained
    rows_again = {name: list(map(float, values)) for name, *values in table(
        r"^(fcn32s|fcn16s|fcn8s) +" + " +".join([NUMBER] * 8) + "$", again, 3)}
    np.testing.assert_equal({name: values[:-1] for name, values in rows_again.items()},
                            {name: values[:-1] for name, values in rows.items()})  # all but the seconds (NaN == NaN)


def test_lesson_13_the_tail_the_ignored_band_and_other(shared_out):
    """The pixel counts and the band's share are recomputed here from the generator; the tables, the
    claims and the figures must agree with each other. The quick run's nets are short-trained, so only
    the agreement is checked, and what holds whatever the nets learned: merging predictions after the
    fact can only turn errors into hits."""
    out = run_lesson("13_the_data.py", shared_out)
    # 1. the tail: every class once, most to least frequent, the counts of the training scenes
    rows = table(r"^  (\d)  (\w+) +(?:stuff|thing) +(\d+) px +([\d.]+)%$", out, len(CLASSES))
    counts = {name: int(px) for _, name, px, _ in rows}
    train, val = train_val_split(96, VAL_SCENES, size=SIZE, seed=0)
    assert counts == {c.name: int((train.labels == i).sum()) for i, c in enumerate(CLASSES)}
    assert [int(rank) for rank, *_ in rows] == list(range(1, len(CLASSES) + 1))
    assert [px for _, _, px, _ in rows] == sorted((px for _, _, px, _ in rows), key=int, reverse=True)
    most, least, ratio = find(rf"most / least frequent: (\w+) / (\w+) = {NUMBER}x$", out)
    assert (most, least) == (rows[0][1], rows[-1][1])
    assert float(ratio) == pytest.approx(counts[most] / counts[least], abs=0.05)
    rarest, merged, same = find(r"the 3 rarest classes here: (.*); merged into 'other' below: (.*): "
                                r"(the same|NOT the same)$", out)
    assert rarest.split(", ") == sorted(name for _, name, _, _ in rows[-3:])
    assert same == ("the same" if rarest == merged else "NOT the same")
    # 2. the band: its share of the training pixels, as the generator draws it
    band_train, band_val = train_val_split(96, VAL_SCENES, size=SIZE, seed=0, ignore_boundary=True)
    share = float(find(r"the boundary band .* holds ([\d.]+)% of the training pixels", out)[0])
    assert share == pytest.approx(100 * (band_train.labels == 255).mean(), abs=0.05)
    val_share = float(find(r"the ([\d.]+)% of pixels in the band skipped", out)[0])
    assert val_share == pytest.approx(100 * (band_val.labels == 255).mean(), abs=0.05)
    # pixel acc., mean IU, 1 px, 3 px, beyond 3 px, on band, VOC mean IU
    band = {name: list(map(float, values)) for name, *values in table(
        r"^(full labels|band ignored) +" + " +".join([NUMBER] * 7) + "$", out, 2)}
    # 3. "other": kept mean IU and other IU are the per-class rows; mean IU their mean
    merged_rows = {name: list(map(float, values)) for name, *values in table(
        r"^(full labels, merged after|rare merged) +" + " +".join([NUMBER] * 5) + "$", out, 2)}
    per_class = table(rf"^  (\w+) +{NUMBER} -> {NUMBER}$", out, len(CLASSES) - 2)
    assert [name for name, _, _ in per_class][-1] == "other"
    for column, title in ((1, "full labels, merged after"), (2, "rare merged")):
        ious = np.array([float(row[column]) for row in per_class])
        pixel, mean_iou, kept, other, _ = merged_rows[title]
        assert other == ious[-1] and kept == pytest.approx(np.nanmean(ious[:-1]), abs=1e-3)
        assert mean_iou == pytest.approx(np.nanmean(ious), abs=1e-3)
    # merging after the fact turns some errors into hits and never a hit into an error
    assert merged_rows["full labels, merged after"][0] >= band["full labels"][0]
    # 4. the claims repeat the tables and follow from them
    on, off, verdict = find(rf"labels {NUMBER} of the band's pixels right and {NUMBER} of the others: (\w+)$", out)
    assert float(on) == band["full labels"][5] and verdict == ("yes" if float(on) < float(off) else "NO")
    p = val_share / 100  # pixel accuracy = p on + (1 - p) off
    assert band["full labels"][0] == pytest.approx(p * float(on) + (1 - p) * float(off), abs=2e-3)
    claimed_share, ignored, full, cost, little, verdict = find(
        rf"ignoring the boundary band \(([\d.]+)% of the training pixels unlabelled\) costs little accuracy away from "
        rf"boundaries: more than \d+ px away {NUMBER} vs {NUMBER} with full labels, a cost of {NUMBER} \(little: under "
        rf"{NUMBER}\): (\w+)$", out)
    assert float(claimed_share) == share
    assert (float(ignored), float(full)) == (band["band ignored"][4], band["full labels"][4])
    assert float(cost) == pytest.approx(float(full) - float(ignored), abs=1.5e-3)
    assert verdict == ("yes" if float(cost) < float(little) else "NO")
    ignored, full, cost = find(rf"measured: ignoring the boundary band in training costs mean IU, scored VOC's way "
                               rf"\(the band skipped in validation too\): {NUMBER} vs {NUMBER}, a cost of {NUMBER}$", out)
    assert (float(ignored), float(full)) == (band["band ignored"][6], band["full labels"][6])
    assert float(cost) == pytest.approx(float(full) - float(ignored), abs=1.5e-3)
    after, trained, change = find(rf"changes the mean IU of the 7 classes from {NUMBER} to {NUMBER} \(([+-][\d.]+)\)$", out)
    assert float(trained) == merged_rows["rare merged"][1]
    assert float(after) == merged_rows["full labels, merged after"][1]
    assert float(change) == pytest.approx(float(trained) - float(after), abs=1.5e-3)
    merged, full, verdict = find(rf"raises the mean IU a benchmark reports: the merged net on the 7 classes {NUMBER}, "
                                 rf"the full-label net on the 9 {NUMBER}: (\w+)$", out)
    assert (float(merged), float(full)) == (merged_rows["rare merged"][1], band["full labels"][1])
    assert verdict == ("yes" if float(merged) > float(full) else "NO")
    rare_ious = [float(v) for v in find(rf"own IU of \w+ {NUMBER}, \w+ {NUMBER}, \w+ {NUMBER} \(mean {NUMBER}\)", out)]
    assert rare_ious[3] == pytest.approx(np.nanmean(rare_ious[:3]), abs=1e-3)
    other, replaced, verdict = find(rf"'other' scores IU {NUMBER}, the 3 classes it replaces {NUMBER} on their own "
                                    r"\(mean IU, full-label net\): (\w+)$", out)
    assert float(other) == merged_rows["rare merged"][3] and float(replaced) == rare_ious[3]
    assert verdict == ("yes" if float(other) > float(replaced) else "NO")
    gain, question, plain_other, trained = map(float, find(
        rf"\(of that gain, ([-+][\d.]+), asking the coarser question gives ([-+][\d.]+): the full-label net, its "
        rf"predictions merged after, scores 'other' {NUMBER}; training on the merged labels adds ([-+][\d.]+)\)$", out))
    assert plain_other == merged_rows["full labels, merged after"][3]
    assert gain == pytest.approx(float(other) - float(replaced), abs=1.5e-3)
    assert question == pytest.approx(plain_other - float(replaced), abs=1.5e-3)
    assert gain == pytest.approx(question + trained, abs=1.5e-3)
    assert_png(shared_out / "13_long_tail.png", 800, 360)
    assert_png(shared_out / "13_ignored_band.png", 800, 1025)  # 4 scenes: image, truth, band, 2 nets
    assert_png(shared_out / "13_rare_merged.png", 1140, 820)   # 4 scenes x 6 columns


def test_lesson_14_detect_then_segment_finds_things_the_texture_classifier_cannot(shared_out):
    """The window counts, the training and validation things (recounted from the generator's instance maps),
    the table of things' IU and right-shape rates, and the two closing lines, each checked against the others.
    The quick run's texture baseline and FCN-8s are short-trained, so the comparison with FCN-8s is only checked
    to say what its numbers say; the claim against the texture baseline is checked as the lesson decides it."""
    from minisegnet.detection import object_boxes, windows_per_side  # (here, to keep this test's imports with it)

    out = run_lesson("14_detect_then_segment.py", shared_out)
    scales = find(r"^HOG windows of 8x8 cells of 4 px, at scales ([\d., ]+): ", out)[0].split(", ")
    per_scale = table(r"(\d+)x(\d+) windows \(box (\d+) px\)", out, len(scales))
    for scale, (rows, columns, box) in zip(map(float, scales), per_scale):
        assert int(rows) == int(columns) == windows_per_side(SIZE, scale)
        assert int(box) == round(6 * 4 / (round(SIZE * scale) / SIZE))  # the central 6 cells, back in scene pixels
    train, val = train_val_split(96, VAL_SCENES, size=SIZE, seed=0)
    scenes, things = map(int, find(r"^training windows from (\d+) scenes \((\d+) things\)", out))
    assert things == sum(len(object_boxes(ids)) for ids in train.instances[:scenes])
    kept, found, total, right, per_class = find(r"^detections on the \d+ validation scenes: (\d+) boxes kept .*; "
                                                r"(\d+) of the (\d+) things have one at IoU >= 0.5, (\d+) of them with "
                                                r"the right shape: (.*)$", out)
    kept, found, total, right = map(int, (kept, found, total, right))
    assert total == sum(len(object_boxes(ids)) for ids in val.instances) and right <= found <= min(total, kept)
    per_class = [re.fullmatch(r"(\w+) (\d+)/(\d+)", part).groups() for part in per_class.split(", ")]
    assert [name for name, _, _ in per_class] == [CLASSES[t].name for t in THINGS]
    assert sum(int(r) for _, r, _ in per_class) == right and all(int(r) <= int(n) for _, r, n in per_class)
    for t, (_, _, n) in zip(THINGS, per_class):  # the things of each class, recounted from the instance maps
        assert int(n) == sum(len(np.unique(ids[labels == t])) for labels, ids in zip(val.labels, val.instances))
    rows = {name: np.array(values, dtype=float) for name, *values in table(
        r"^(texture \+ linear|detect, segment|FCN-8s) +" + " +".join([NUMBER] * (len(THINGS) + 2)) + "$", out, 3)}
    for name, values in rows.items():
        assert values[len(THINGS)] == pytest.approx(np.nanmean(values[:len(THINGS)]), abs=0.01), name
    ours, texture, fcn = rows["detect, segment"], rows["texture + linear"], rows["FCN-8s"]
    claim = find(rf"^claim: detecting things first, then segmenting the detected boxes, finds things the texture "
                 rf"classifier cannot \(things mean IU {NUMBER} vs {NUMBER}, right shape {NUMBER} vs {NUMBER}\): "
                 r"(yes|NO)$", out)
    assert tuple(map(float, claim[:4])) == (ours[-2], texture[-2], ours[-1], texture[-1])
    holds = ours[-2] > texture[-2] and ours[-1] > texture[-1]  # (printed to 2 decimals: a tie could go either way)
    tie = ours[-2] == texture[-2] or ours[-1] == texture[-1]
    assert (tie or claim[4] == ("yes" if holds else "NO")) and claim[4] == "yes"
    against = find(rf"^against FCN-8s: things mean IU {NUMBER} vs {NUMBER}, right shape {NUMBER} vs {NUMBER} "
                   r"\(detect-then-segment (above|below) FCN-8s on things\)$", out)
    assert tuple(map(float, against[:4])) == (ours[-2], fcn[-2], ours[-1], fcn[-1])
    assert against[0] == against[1] or against[4] == ("above" if float(against[0]) > float(against[1]) else "below")
    shown = int(find(r"^figure: .*14_detect_then_segment.png \((\d+) scenes\)", out)[0])
    assert 1 <= shown <= 4
    assert_png(shared_out / "14_detect_then_segment.png", 1020, round(100 * (2.05 * shown + 0.8)))


def test_the_kernel_warm_up_draws_no_random_number_and_the_lessons_say_when_it_compiled(tmp_path):
    """lesson_arguments warms the CPU kernels up before seeding: the warm-up must not touch the generator (or
    a lesson's models would depend on whether the cache was cold), and a lesson prints the compile line
    exactly when the warm-up took longer than loading cached kernels does."""
    import minisegnet as msn
    sys.path.insert(0, LESSONS)
    try:
        import _lesson
    finally:
        sys.path.remove(LESSONS)
    state = msn.random.get_state()
    seconds = _lesson.warm_up_kernels()
    assert seconds > 0 and msn.random.get_state() == state
    out = run_lesson("03_receptive_fields.py", tmp_path)
    compiled = re.findall(r"^Numba kernels ready in ([\d.]+) s: compiled", out, flags=re.MULTILINE)
    assert len(compiled) <= 1 and all(float(s) > _lesson.COMPILE_SECONDS for s in compiled)
