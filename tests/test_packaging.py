"""The package ships everything it reads: every module, the Hydra configs and the sweep files."""

from __future__ import annotations

from pathlib import Path

import tomllib

from conftest import REPO
from sweeplab.config.locations import CONFIG_DIR, SWEEPS_DIR

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
SETUPTOOLS = PYPROJECT["tool"]["setuptools"]
ROOTS = {"sweeplab.conf": REPO / "conf", "sweeplab.sweep_files": REPO / "sweeps"}


def data_packages() -> dict[str, Path]:
    """Every folder of conf/ and sweeps/ that holds YAML files, by the package name it installs as."""
    found = {}
    for package, root in ROOTS.items():
        for folder in {path.parent for path in root.rglob("*.yaml")} | {root}:
            found[".".join([package, *folder.relative_to(root).parts])] = folder
    return found


def test_every_package_of_src_and_every_config_folder_is_listed():
    code = {".".join(p.relative_to(REPO / "src").parent.parts) for p in (REPO / "src").rglob("__init__.py")}
    assert set(SETUPTOOLS["packages"]) == code | set(data_packages())
    assert SETUPTOOLS["package-dir"] == {"": "src", "sweeplab.conf": "conf", "sweeplab.sweep_files": "sweeps"}


def test_every_yaml_file_is_package_data_of_its_folders_package():
    patterns = SETUPTOOLS["package-data"]
    for package, folder in data_packages().items():
        shipped = {path for pattern in patterns.get(package, []) for path in folder.glob(pattern)}
        assert set(folder.glob("*.yaml")) <= shipped, package


def test_the_console_commands_are_the_root_scripts_entry_points():
    scripts = PYPROJECT["project"]["scripts"]
    for name in ("train", "sweep", "compare", "predict", "visualize"):
        assert scripts[f"sweeplab-{name}"] == f"sweeplab.cli.{name}:cli"
        assert f"from sweeplab.cli.{name} import cli" in (REPO / f"{name}.py").read_text()


def test_the_configs_are_found_through_the_package_not_the_current_folder():
    assert Path(CONFIG_DIR) == REPO / "conf" and (Path(CONFIG_DIR) / "train.yaml").is_file()
    assert SWEEPS_DIR == REPO / "sweeps" and (SWEEPS_DIR / "mnist_lenet.yaml").is_file()
