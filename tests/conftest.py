"""Shared fixtures: composed configs, the offline MNIST copy, running the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from sweeplab.config.compose import compose_train
from sweeplab.config.resolvers import register_resolvers
from sweeplab.config.trust import TRUSTED_TARGETS_ENV

REPO = Path(__file__).resolve().parents[1]
SHARED_MNIST = REPO.parent / "shared" / "data" / "mnist-10k"

register_resolvers()
torch.set_num_threads(min(2, torch.get_num_threads()))

# small, fast settings for synthetic-data runs
FAKE_FAST = [
    "data=fake",
    "data.num_samples=256",
    "data.num_test_samples=64",
    "data.batch_size=32",
    "trainer.max_epochs=2",
    "logger=csv",
    "progress_bar=false",
]


def compose_config(overrides: list[str] | None = None):
    """The config `python train.py OVERRIDES` would run, without Hydra's run folder."""
    return compose_train(list(overrides or []))


@pytest.fixture
def make_config():
    return compose_config


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The real MNIST files (CI sets DATA_DIR; locally ../shared/data/mnist-10k)."""
    for candidate in (os.environ.get("DATA_DIR"), SHARED_MNIST):
        if candidate and (Path(candidate) / "MNIST" / "raw").is_dir():
            return Path(candidate)
    if os.environ.get("CI"):
        pytest.fail("CI must have the offline MNIST copy (DATA_DIR or ../shared/data/mnist-10k)")
    pytest.skip("offline MNIST copy not found")


HELPERS = Path(__file__).resolve().parent / "helpers"
# Test callbacks are code sweeplab does not ship: they are trusted the one documented way (sweeplab.config.trust),
# for the modules of tests/helpers and those tests write into their own folder.
TEST_TARGET_MODULES = sorted(path.stem for path in HELPERS.glob("*.py")) + ["broken_callback", "faulty_callbacks"]
os.environ[TRUSTED_TARGETS_ENV] = ",".join(
    filter(None, [os.environ.get(TRUSTED_TARGETS_ENV), *(f"{module}." for module in TEST_TARGET_MODULES)])
)


def run_cli(
    script: str, *args: str, cwd: Path, timeout: float = 600, env: dict | None = None
) -> subprocess.CompletedProcess:
    """Run a root script (train.py, sweep.py, ...) as a user would, in ``cwd``.

    ``tests/helpers`` is importable, so ``+callbacks.x._target_=module.Class`` can add test callbacks.
    """
    pythonpath = os.pathsep.join(filter(None, [str(HELPERS), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "HYDRA_FULL_ERROR": "0", "PYTHONPATH": pythonpath, **(env or {})}
    return subprocess.run(
        [sys.executable, str(REPO / script), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def only_run_dir(root: Path) -> Path:
    """The single run folder (holding results.json) below ``root``."""
    found = sorted(path.parent for path in root.rglob("results.json"))
    assert len(found) == 1, f"expected one run under {root}, found {found}"
    return found[0]


URL_VARIABLE = "SWEEPLAB_TEST_POSTGRES_URL"  # .ci/run starts a PostgreSQL server and sets it


@pytest.fixture
def postgres_url() -> str:
    """The test server's URL; a skip here, a failure in CI (which must provide the server)."""
    url = os.environ.get(URL_VARIABLE)
    if not url:
        if os.environ.get("CI"):
            pytest.fail(f"CI must provide a PostgreSQL server: {URL_VARIABLE} is not set (.ci/run sets it)")
        pytest.skip(f"{URL_VARIABLE} is not set")
    return url
