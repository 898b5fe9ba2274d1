"""Where sweeplab's configs and sweep files are, in a source checkout and in an installed wheel.

``conf/`` and ``sweeps/`` sit at the repository root, and the package maps them to
``sweeplab.conf`` and ``sweeplab.sweep_files`` (``pyproject.toml``): an editable
install finds them in the checkout, a wheel carries them as package data.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

CONFIG_DIR = str(files("sweeplab.conf"))
SWEEPS_DIR = Path(str(files("sweeplab.sweep_files")))
TRAIN_CONFIG = "train"
