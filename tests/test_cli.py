"""``python -m minisegnet train | evaluate | predict`` end to end on a tiny synthetic run."""
import json
import subprocess
import sys


def run(*args, cwd):
    result = subprocess.run([sys.executable, "-m", "minisegnet", *args], capture_output=True, text=True, cwd=cwd)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_train_then_resume_evaluate_and_predict(tmp_path):
    out = str(tmp_path / "run")
    tiny = ["--train-size", "8", "--val-size", "4", "--size", "32", "--batch-size", "4", "--model", "fcn16s",
            "--no-class-weights"]
    run("train", "--out", out, "--epochs", "1", *tiny, cwd=tmp_path)
    text = run("train", "--out", out, "--epochs", "2", *tiny, cwd=tmp_path)  # resumes at epoch 2
    assert "fcn16s: epoch 2" in text
    assert [h["epoch"] for h in json.load(open(f"{out}/history.json"))] == [1, 2]
    table = run("evaluate", "--out", out, cwd=tmp_path)
    assert "mean IU" in table and "fcn16s" in table
    assert "pixel_accuracy" in json.load(open(f"{out}/metrics.json"))
    assert "predictions.png" in run("predict", "--out", out, "--count", "3", cwd=tmp_path)
