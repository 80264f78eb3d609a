"""The distribution carries everything, and the extras ask for a set that works.

The wheel test does what a user does: build a wheel from this repository, install it with pip
into a fresh virtual environment (so pip brings only the runtime dependencies), and import every
module of the package with ``python -I`` from outside the repository. It must not run inside the
development environment: there, the editable install's import hook serves any module the wheel
lacks straight from the source tree, which is how a wheel without ``minisegnet.kernels.crf``
once passed this test.
"""
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement

try:
    import tomllib
except ImportError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

REPO = Path(__file__).resolve().parents[1]

# Where each source folder lands in the installed package: kernels/ is installed as minisegnet.kernels.
SOURCE_ROOTS = {"minisegnet": "minisegnet", "kernels": "minisegnet/kernels"}

# Not part of a wheel's source; copying them would be slow (.venv, out) or could leak stale files into
# the wheel (a build/ folder left by an earlier build).
NOT_SOURCE = shutil.ignore_patterns(".git", ".venv", "build", "dist", "out", "runs", "*.egg-info", "__pycache__",
                                    ".pytest_cache", ".hypothesis", "*.pyc", "*.nbi", "*.nbc")

# Runs in the fresh environment: import the given modules, train one step through the kernels, and
# report where every minisegnet module was loaded from.
IMPORT_EVERYTHING = """
import importlib, json, sys
import numpy as np
for name in json.loads(sys.argv[1]):
    importlib.import_module(name)
import minisegnet as msn
from minisegnet import functional as F, nn, optim
net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=2, dilation=2), nn.ReLU(), nn.MaxPool2d(2),
                    nn.ConvTranspose2d(4, 2, 4, stride=2, padding=1))
x = msn.tensor(np.random.default_rng(0).normal(size=(1, 3, 8, 8)).astype(np.float32))
opt = optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
loss = F.cross_entropy(net(x), np.zeros((1, 8, 8), dtype=np.int64))
loss.backward(); opt.step()
print(json.dumps({name: getattr(module, "__file__", None) for name, module in sys.modules.items()
                  if name == "minisegnet" or name.startswith("minisegnet.")}))
"""


def source_files():
    """Every file the wheel must carry, as {path in the wheel: path in the repository}."""
    files = {}
    for folder, installed_as in SOURCE_ROOTS.items():
        for path in sorted((REPO / folder).rglob("*")):
            if path.is_file() and (path.suffix in (".py", ".cu") or path.name == "README.md") and "__pycache__" not in path.parts:
                files[installed_as + "/" + path.relative_to(REPO / folder).as_posix()] = path
    return files


def module_names():
    """Every module of the package, named as it is imported: kernels/crf/cpu.py is minisegnet.kernels.crf.cpu."""
    names = []
    for wheel_path in source_files():
        if wheel_path.endswith(".py"):
            parts = wheel_path[:-len(".py")].split("/")
            names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return sorted(names)


def run(command, **kwargs):
    result = subprocess.run([str(part) for part in command], capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, f"{' '.join(map(str, command))} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def test_module_names_follow_the_installed_layout():
    names = module_names()
    assert "minisegnet.kernels" in names and "minisegnet.kernels.crf.cpu" in names
    assert "minisegnet.functional.conv" in names and not any(name.startswith("kernels") for name in names)


@pytest.mark.slow
def test_wheel_installs_into_a_fresh_environment_and_every_module_imports_from_it(tmp_path):
    # Build from a copy of the sources, as pip does, so that a build/ folder in the repository cannot add files.
    source = tmp_path / "source"
    shutil.copytree(REPO, source, ignore=NOT_SOURCE)
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", tmp_path / "wheel", source])
    wheel = next((tmp_path / "wheel").glob("minisegnet-*.whl"))
    in_wheel = set(zipfile.ZipFile(wheel).namelist())
    missing = sorted(path for path in source_files() if path not in in_wheel)
    assert not missing, f"{wheel.name} lacks {missing} (the package discovery in setup.py missed them)"

    # A fresh environment holding only what pip installs for the wheel: its runtime dependencies (not even
    # pip: this environment's pip installs into it). --no-compile: byte-compiling all of NumPy, Numba and
    # Matplotlib would take longer than the imports below.
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", venv])
    python = venv / "bin" / "python"
    run([sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-compile", wheel])

    # -I: no PYTHONPATH, no user site-packages, and not the current folder on sys.path. The training step
    # runs with Numba's JIT off: compiling the kernels takes half a minute and is tested elsewhere; here
    # it is the installed code's paths that matter.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    loaded = json.loads(run([python, "-I", "-c", IMPORT_EVERYTHING, json.dumps(module_names())], cwd=elsewhere,
                            env=dict(os.environ, NUMBA_DISABLE_JIT="1")).strip().splitlines()[-1])
    site_packages = Path(run([python, "-I", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             cwd=elsewhere).strip()).resolve()
    assert site_packages.is_relative_to(venv.resolve())
    assert set(module_names()) <= set(loaded)
    strays = {name: file for name, file in loaded.items()
              if file is None or not Path(file).resolve().is_relative_to(site_packages)}
    from_repository = sorted(name for name, file in strays.items() if file and Path(file).resolve().is_relative_to(REPO))
    assert not from_repository, (f"{from_repository} were loaded from the source tree {REPO}, not from the "
                                 f"installed wheel in {site_packages}")
    assert not strays, f"modules loaded from outside the installed wheel in {site_packages}: {strays}"


def extras_requirements():
    with open(REPO / "pyproject.toml", "rb") as f:
        project = tomllib.load(f)["project"]
    return {extra: [Requirement(text) for text in texts] for extra, texts in project["optional-dependencies"].items()}


def test_extras_with_numba_cuda_keep_numpy_below_2_5():
    # numba-cuda 0.30.4 (the newest) fails at import with NumPy 2.5 (numpy.row_stack is gone), and pip picks
    # NumPy 2.5 on Python >= 3.12 unless an extra bounds it; the dev extra's CUDA simulator needs it too.
    # The gpu extra runs the CUDA C kernels through CuPy alone: no numba-cuda, so no bound on NumPy.
    extras = extras_requirements()
    with_numba_cuda = [extra for extra, requirements in extras.items()
                       if any(r.name == "numba-cuda" for r in requirements)]
    assert set(with_numba_cuda) == {"dev", "cuda-twins"}
    assert [r.name for r in extras["gpu"]] == ["cupy-cuda13x"]
    for extra in with_numba_cuda:
        numpy = [r for r in extras[extra] if r.name == "numpy"]
        assert numpy, f"the {extra} extra installs numba-cuda but does not bound numpy"
        assert not numpy[0].specifier.contains("2.5.0"), f"the {extra} extra allows numpy {numpy[0].specifier}"
        assert numpy[0].specifier.contains("2.4.6") and numpy[0].specifier.contains("2.2.6")


def test_library_never_imports_torch_or_cupy_on_the_cpu_path():
    code = ("import sys, numpy as np, minisegnet as msn; from minisegnet import functional as F;"
            "x = msn.tensor(np.ones((1, 1, 4, 4)), requires_grad=True);"
            "F.interpolate_bilinear(F.max_pool2d(F.conv2d(x, msn.tensor(np.ones((1, 1, 3, 3)))), 2), size=4).sum().backward();"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'cupy') or m.startswith('numba.cuda')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip() == "[]"
