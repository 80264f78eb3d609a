"""Which packages the distribution carries; everything else is in pyproject.toml.

The repository keeps its kernels in a top-level ``kernels/`` folder, next to ``minisegnet/``,
and installs them as the subpackage ``minisegnet.kernels``. setuptools' automatic discovery
(``[tool.setuptools.packages.find]``) only names packages after their folders, so it would
install them as a top-level ``kernels``; here we find the packages of both folders ourselves
and map ``kernels/`` to ``minisegnet.kernels``. A new subfolder with an ``__init__.py`` in
either folder is picked up without editing this file (tests/test_packaging.py checks that
every source file reaches the wheel).
"""
from setuptools import find_packages, setup

library = find_packages(include=["minisegnet", "minisegnet.*"])
kernels = ["minisegnet.kernels"] + ["minisegnet.kernels." + name for name in find_packages(where="kernels")]

setup(
    packages=library + kernels,
    # Subpackages follow their parent: minisegnet.kernels.crf is read from kernels/crf.
    package_dir={"minisegnet.kernels": "kernels"},
    package_data={"minisegnet.kernels": ["README.md", "*/*.cu"]},  # the CUDA C kernels, compiled at run time
)
