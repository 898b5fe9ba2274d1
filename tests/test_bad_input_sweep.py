"""Sweep settings composed by Hydra: more bad input, each refused in one line naming the key (exit 2, no traceback,
nothing written). The bad-input table of every command is tests/test_bad_input.py."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import yaml

from conftest import FAKE_FAST
from sweeplab.cli.sweep import run as sweep_command
from sweeplab.errors import USER_ERROR_EXIT_CODE

FAST = [o for o in FAKE_FAST if not o.startswith("logger=")]
SPACE = {"optimizer.lr": {"type": "float", "low": 1e-3, "high": 0.1, "log": True}}
FILES = {
    "fine": {"overrides": FAST, "space": SPACE},
    "wrong_type": {"overrides": FAST, "space": SPACE, "n_trials": "many"},
    "retired": {"overrides": FAST, "space": SPACE, "objective": "cv"},
}

CASES = [  # (arguments, words the one line holds)
    (["sweep=wrong_type"], ["sweep.n_trials='many' is invalid: must be an integer", "wrong_type.yaml"]),
    (["sweep=retired"], ["sweep.objective='cv' is invalid: no longer a setting", "cv.folds >= 2", "retired.yaml"]),
    (["sweep=fine", "sweep.report_only=maybe"], ["sweep.report_only='maybe' is invalid: must be true or false"]),
    (
        ["sweep=fine", "sweep.pruner.n_startup_trials=-1"],
        ["sweep.pruner.n_startup_trials=-1 is invalid", "MedianPruner refuses it"],
    ),
    (
        ["sweep=fine", "sweep.metric=[val_acc,num_params]", "sweep.direction=[maximize,minimize]", "cv.folds=3"],
        ["cv.folds=3 is invalid: cross-validates each trial", "a trade-off study"],
    ),
    (["--cfg", "all", "sweep=fine"], ["--cfg all: only --cfg job is known"]),
    (
        ["sweep=fine", "sweep.cluster.timeout_min=soon"],
        ["sweep.cluster.timeout_min='soon' is invalid: must be an integer"],
    ),
]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sweep_workspace")
    (root / "sweeps").mkdir()
    for name, content in FILES.items():
        (root / "sweeps" / f"{name}.yaml").write_text(yaml.safe_dump(content, sort_keys=False))
    return root


def checksums(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.mark.parametrize("argv, words", CASES, ids=[" ".join(c[0][-2:]) for c in CASES])
def test_bad_sweep_settings_are_refused_in_one_line_naming_the_key(argv, words, workspace, monkeypatch, capsys, caplog):
    monkeypatch.chdir(workspace)
    before = checksums(workspace)
    with pytest.raises(SystemExit) as stop:
        sweep_command(argv)
    captured = capsys.readouterr()
    assert stop.value.code == USER_ERROR_EXIT_CODE, captured.err
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    assert "Traceback" not in captured.err and "Traceback" not in caplog.text and captured.out == ""
    for word in words:
        assert word in lines[0], lines[0]
    assert checksums(workspace) == before
    assert not (workspace / "outputs").exists()


def test_cfg_job_prints_the_composed_settings_and_runs_nothing(workspace, monkeypatch, capsys):
    monkeypatch.chdir(workspace)
    before = checksums(workspace)
    assert (
        sweep_command(
            ["--cfg", "job", "sweep=fine", "sweep.n_trials=3", "sweep.sampler.name=random", "trainer.max_epochs=1"]
        )
        == 0
    )
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["sweep"]["n_trials"] == 3 and printed["sweep"]["sampler"] == {"name": "random", "seed": 0}
    assert printed["sweep"]["space"] == SPACE and printed["sweep"]["max_failures"] == 5  # conf/sweep/default.yaml
    assert printed["trainer"]["max_epochs"] == 1 and printed["data"]["num_samples"] == 256  # the trials' base config
    assert checksums(workspace) == before and not (workspace / "outputs").exists()
