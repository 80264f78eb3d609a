"""The distribution carries everything: a wheel built from this repository, installed into an
empty folder and imported from outside the repository, finds its kernels and runs a training step."""
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

SMOKE = """
import numpy as np, minisegnet as msn
from minisegnet import functional as F, nn, optim
import minisegnet.kernels as k
assert k.__file__.startswith({target!r}), k.__file__
net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=2, dilation=2), nn.ReLU(), nn.MaxPool2d(2),
                    nn.ConvTranspose2d(4, 2, 4, stride=2, padding=1))
x = msn.tensor(np.random.default_rng(0).normal(size=(1, 3, 8, 8)).astype(np.float32))
opt = optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
loss = F.cross_entropy(net(x), np.zeros((1, 8, 8), dtype=np.int64))
loss.backward(); opt.step()
print("ok", msn.__file__)
"""


@pytest.mark.slow
def test_wheel_installs_and_imports_outside_the_repository(tmp_path):
    wheel_dir, target, elsewhere = tmp_path / "wheel", tmp_path / "site", tmp_path / "elsewhere"
    elsewhere.mkdir()
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(wheel_dir), str(REPO)], check=True, cwd=tmp_path)
    wheel = next(wheel_dir.glob("minisegnet-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for needed in ("minisegnet/kernels/__init__.py", "minisegnet/kernels/columns/cpu.py",
                   "minisegnet/kernels/pooling/cuda.py", "minisegnet/kernels/bilinear/reference.py",
                   "minisegnet/functional/conv.py"):
        assert needed in names, f"{needed} missing from {wheel.name}"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
                   check=True)
    env = dict(os.environ, PYTHONPATH=str(target))
    result = subprocess.run([sys.executable, "-c", SMOKE.format(target=str(target))], cwd=elsewhere, env=env,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok " + str(target))


def test_library_never_imports_torch_or_cupy_on_the_cpu_path():
    code = ("import sys, numpy as np, minisegnet as msn; from minisegnet import functional as F;"
            "x = msn.tensor(np.ones((1, 1, 4, 4)), requires_grad=True);"
            "F.interpolate_bilinear(F.max_pool2d(F.conv2d(x, msn.tensor(np.ones((1, 1, 3, 3)))), 2), size=4).sum().backward();"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'cupy') or m.startswith('numba.cuda')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip() == "[]"
