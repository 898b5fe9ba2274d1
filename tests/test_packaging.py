"""The package ships everything it reads: every module, the Hydra configs and the sweep files."""

from __future__ import annotations

import tomllib
from pathlib import Path

from conftest import REPO
from sweeplab.config.locations import CONFIG_DIR, SWEEPS_DIR

SETUPTOOLS = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]


def test_every_package_of_src_is_listed_and_the_configs_are_package_data():
    found = {".".join(p.relative_to(REPO / "src").parent.parts) for p in (REPO / "src").rglob("__init__.py")}
    assert set(SETUPTOOLS["packages"]) == found | {"sweeplab.conf", "sweeplab.sweep_files"}
    assert SETUPTOOLS["package-dir"] == {"": "src", "sweeplab.conf": "conf", "sweeplab.sweep_files": "sweeps"}
    patterns = SETUPTOOLS["package-data"]
    for package, folder in (("sweeplab.conf", REPO / "conf"), ("sweeplab.sweep_files", REPO / "sweeps")):
        shipped = {p for pattern in patterns[package] for p in folder.glob(pattern)}
        assert set(folder.rglob("*.yaml")) <= shipped


def test_the_configs_are_found_through_the_package_not_the_current_folder():
    assert Path(CONFIG_DIR) == REPO / "conf" and (Path(CONFIG_DIR) / "train.yaml").is_file()
    assert SWEEPS_DIR == REPO / "sweeps" and (SWEEPS_DIR / "mnist_lenet.yaml").is_file()
