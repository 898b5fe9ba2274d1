"""compare.py --diff A B: two runs (or two seed groups) side by side, and whether the difference is real."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import FAKE_FAST, run_cli
from sweeplab.cli.compare import main as compare
from sweeplab.reports.diff import flatten

FAKE_GRID = [*FAKE_FAST, "trainer.max_epochs=1"]


# --- synthetic run folders ---------------------------------------------------------------


def _write_run(
    run_dir: Path, *, lr: float, acc: float, dirty: bool, torch_version: str = "2.5.0", extra: dict | None = None
) -> Path:
    """A run folder as train.py leaves it: config, results, run.json, environment.txt, code.patch when dirty."""
    (run_dir / ".hydra").mkdir(parents=True)
    config = {
        "seed": 1,
        "model": {"_target_": "sweeplab.models.lenet.LeNet5", "dropout": 0.0},
        "optimizer": {"lr": lr, "name": "adamw"},
        **(extra or {}),
    }
    (run_dir / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))
    results = {
        "status": "completed",
        "dataset": "mnist",
        "test_acc": acc,
        "best_val_acc": acc - 0.001,
        "epochs_run": 2,
        "train_size": 7200,
        "val_size": 800,
        "test_size": 2000,
        "git_commit": "abc123",
    }
    (run_dir / "results.json").write_text(json.dumps(results))
    record = {
        "code": {"commit": "abc123", "dirty": dirty, "patch": "code.patch" if dirty else None},
        "data": {"dataset": "mnist", "sha256": "f" * 64, "files": 4, "bytes": 1000, "root": "/data"},
        "versions": {"python": "3.11.9", "torch": torch_version, "cuda": "12.4"},
        "host": {"cpu": "AMD EPYC", "cpu_count": 2, "gpus": [], "platform": "Linux", "hostname": "vm"},
    }
    (run_dir / "run.json").write_text(json.dumps(record))
    (run_dir / "environment.txt").write_text(f"numpy==2.1.0\ntorch=={torch_version}\n")
    if dirty:
        (run_dir / "code.patch").write_text(
            "diff --git a/src/train_loop.py b/src/train_loop.py\n--- a/src/train_loop.py\n+++ b/src/train_loop.py\n"
            "@@ -1 +1 @@\n-STEPS = 10\n+STEPS = 20\n"
        )
    return run_dir


@pytest.fixture
def two_runs(tmp_path) -> tuple[Path, Path]:
    return (
        _write_run(tmp_path / "a", lr=0.001, acc=0.9810, dirty=False),
        _write_run(tmp_path / "b", lr=0.01, acc=0.9750, dirty=True, torch_version="2.6.0"),
    )


def _sections(text: str) -> dict[str, str]:
    """The text output cut at its section titles (CONFIG, CODE, ...)."""
    parts = re.split(r"^([A-Z]+)$", text, flags=re.MULTILINE)
    return {title: body for title, body in zip(parts[1::2], parts[2::2], strict=True)}


def test_diff_of_two_runs_shows_each_difference(two_runs, capsys):
    a, b = two_runs
    compare(["--diff", str(a), str(b)])
    sections = _sections(capsys.readouterr().out)
    config_rows = [line.split() for line in sections["CONFIG"].strip().splitlines()[1:-1]]
    assert config_rows == [["optimizer.lr", "0.001", "0.01"]]  # only the key that differs
    assert "1 of 6 config keys differ" in sections["CONFIG"]
    code = sections["CODE"]
    assert re.search(r"dirty\s+no\s+yes", code) and re.search(r"changed files\s+-\s+src/train_loop.py", code)
    assert "B ran with uncommitted changes (code.patch" in code and "A ran on a clean tree" in code
    assert "+-STEPS = 10" in code and "++STEPS = 20" in code  # the patch B ran with, as the diff of the two patches
    assert "the data fingerprints match" in sections["DATA"]
    assert re.search(r"torch\s+2\.5\.0\s+2\.6\.0", sections["PACKAGES"]) and "numpy" not in sections["PACKAGES"]
    assert re.search(r"test_acc\s+0\.9810\s+0\.9750\s+\+0\.0060", sections["METRICS"])
    assert re.search(r"epochs_run\s+2\s+2\s+\+0\b", sections["METRICS"])
    assert "one run on each side: no test" in sections["METRICS"]


def test_diff_as_json_and_markdown(two_runs, capsys):
    a, b = two_runs
    compare(["--diff", str(a), str(b), "--format", "json"])
    document = json.loads(capsys.readouterr().out)
    assert document["config"]["rows"] == [{"key": "optimizer.lr", "A": 0.001, "B": 0.01}]
    assert document["code"]["patch_diff"][-1] == "++STEPS = 20" and document["test"] is None
    assert document["problems"] == []
    compare(["--diff", str(a), str(b), "--format", "md"])
    markdown = capsys.readouterr().out
    assert "## Config" in markdown and "| optimizer.lr | 0.001 | 0.01 |" in markdown and "```diff" in markdown


def test_keys_in_one_run_only_are_marked_absent_and_a_null_is_a_value(tmp_path, capsys):
    a = _write_run(tmp_path / "a", lr=0.001, acc=0.98, dirty=False, extra={"ckpt_path": None})
    b = _write_run(
        tmp_path / "b", lr=0.001, acc=0.98, dirty=False, extra={"ckpt_path": "last.ckpt", "scheduler": {"step_size": 5}}
    )
    compare(["--diff", str(a), str(b), "--format", "json"])
    assert json.loads(capsys.readouterr().out)["config"]["rows"] == [
        {"key": "ckpt_path", "A": None, "B": "last.ckpt"},
        {"key": "scheduler.step_size", "A": "(absent)", "B": 5},
    ]


def test_damaged_and_missing_records_are_named_once_each_and_the_rest_is_shown(two_runs, capsys):
    a, b = two_runs
    (b / "run.json").write_text('{"code": ')
    (a / "environment.txt").unlink()
    (a / "results.json").write_text("not json")
    compare(["--diff", str(a), str(b)])
    captured = capsys.readouterr()
    notes = [line for line in captured.err.splitlines() if line.startswith("note: ")]
    assert len(notes) == 3, captured.err
    assert any(f"{b / 'run.json'}: damaged" in line and line.startswith("note: B: ") for line in notes)
    assert any(f"{a / 'environment.txt'}: missing" in line for line in notes)
    assert any(f"{a / 'results.json'}: damaged" in line for line in notes)
    sections = _sections(captured.out)
    assert "optimizer.lr" in sections["CONFIG"] and re.search(r"test_acc\s+-\s+0\.9750", sections["METRICS"])


@pytest.mark.parametrize(
    "args, message",
    [
        (["--diff", "model=lenet", "model=mlp"], "error: --diff='model=lenet' is invalid: matches none of the 2 runs"),
        (["--diff", "model=lenet and", "model=mlp"], "error: --diff='model=lenet and' is invalid"),
        (["--diff", "optimzer.lr=0.01", "model=mlp"], "did you mean optimizer.lr"),
    ],
)
def test_a_bad_query_ends_with_one_line(two_runs, args, message, capsys):
    root = two_runs[0].parent
    with pytest.raises(SystemExit) as stop:
        compare([str(root), *args])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and len(err.strip().splitlines()) == 1 and message in err, err


def test_a_folder_without_a_run_ends_with_one_line(two_runs, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit) as stop:
        compare(["--diff", str(two_runs[0]), str(tmp_path / "empty")])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err.count("\n") == 1 and "holds no run" in err
    with pytest.raises(SystemExit) as stop:
        compare(["--diff", str(two_runs[0]), str(two_runs[1]), "--format", "csv"])
    assert stop.value.code == 2 and "with --diff one of text, md, json" in capsys.readouterr().err


# --- real runs ----------------------------------------------------------------------------


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=repo, check=True, capture_output=True
    )


@pytest.fixture(scope="module")
def grid(tmp_path_factory) -> dict[str, Path]:
    """A real grid model=lenet,mlp seed=1,2,3 (fake data, one epoch) made in a clean git repository, then one
    more lenet run after an uncommitted change to a source file of that repository."""
    root = tmp_path_factory.mktemp("diff")
    repo, out = root / "project", root / "out"
    repo.mkdir()
    (repo / "augment.py").write_text("FLIP = False\n")
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "start")
    done = run_cli("train.py", "-m", "model=lenet,mlp", "seed=1,2,3", *FAKE_GRID, f"paths.output_dir={out}", cwd=repo)
    assert done.returncode == 0, done.stderr[-3000:]
    (multirun,) = (out / "multirun").glob("*/*")
    (repo / "augment.py").write_text("FLIP = True\n")
    done = run_cli("train.py", "model=lenet", "seed=1", *FAKE_GRID, f"paths.output_dir={root / 'dirty'}", cwd=repo)
    assert done.returncode == 0, done.stderr[-3000:]
    (dirty,) = (path.parent for path in (root / "dirty").rglob("results.json"))
    return {"multirun": multirun, "dirty": dirty}


def _configs(folders) -> list[dict]:
    return [flatten(yaml.safe_load((folder / ".hydra" / "config.yaml").read_text())) for folder in folders]


def test_groups_diff_shows_only_differing_keys_and_the_group_seeds_test(grid, capsys):
    """Acceptance 1 (on fake data): model differs, the data match, the test is --group-seeds' to 4 decimals."""
    multirun = grid["multirun"]
    # test_loss: on fake data the mlp's accuracy can be 1.0 for every seed (no spread to test), its loss varies
    compare([str(multirun), "--diff", "model=lenet", "model=mlp", "--format", "json", "--metric", "test_loss"])
    document = json.loads(capsys.readouterr().out)
    assert len(document["a"]["runs"]) == len(document["b"]["runs"]) == 3
    keys = {row["key"] for row in document["config"]["rows"]}
    assert "model" in keys and "seed" not in keys
    configs_a = _configs(Path(p) for p in document["a"]["runs"])
    configs_b = _configs(Path(p) for p in document["b"]["runs"])
    for key in {key for config in configs_a + configs_b for key in config} - {"model"}:
        values_a = {json.dumps(c.get(key, "(absent)")) for c in configs_a}
        values_b = {json.dumps(c.get(key, "(absent)")) for c in configs_b}
        assert (key in keys) == (values_a != values_b), key
    assert document["data"]["notes"] == ["the data fingerprints match: both sides read the same files"]
    test = document["test"]

    compare([str(multirun), "--group-seeds", "--metric", "test_loss"])
    line = capsys.readouterr().out.strip().splitlines()[-1]
    found = re.search(
        r"^- (model=\w+) vs (model=\w+): test_loss ([\d.]+) (higher|lower) \(95% interval of the "
        r"difference \[([-+][\d.]+), ([-+][\d.]+)\]\), Welch's t-test p=(\S+) \(df ([\d.]+)\)",
        line,
    )
    assert found, line
    first, _, size, word, low, high, p_value, dof = found.groups()
    sign = 1 if first == "model=lenet" else -1  # --group-seeds tests the best group minus the second
    assert test["metric"] == "test_loss"
    difference = (float(size) if word == "higher" else -float(size)) * sign
    interval = sorted((sign * float(low), sign * float(high)))
    assert round(test["difference"], 4) == pytest.approx(difference, abs=1e-12)
    assert [round(test["low"], 4), round(test["high"], 4)] == pytest.approx(interval, abs=1e-12)
    assert float(f"{test['p_value']:.3g}") == pytest.approx(float(p_value)) and f"{test['dof']:.1f}" == dof


def test_the_diff_shows_the_uncommitted_change_and_which_run_was_dirty(grid, capsys):
    """Acceptance 2: the same config, one run made after an uncommitted change to augment.py."""
    (clean,) = (
        path.parent
        for path in grid["multirun"].glob("*/results.json")
        if {"seed": 1, "model": "LeNet5"}.items() <= json.loads(path.read_text())["hparams"].items()
    )
    compare(["--diff", str(clean), str(grid["dirty"])])
    sections = _sections(capsys.readouterr().out)
    config_keys = {line.split()[0] for line in sections["CONFIG"].strip().splitlines()[1:-1]}
    assert config_keys <= {"paths.output_dir"}, sections["CONFIG"]  # the same config, written elsewhere
    code = sections["CODE"]
    assert re.search(r"dirty\s+no\s+yes", code), code
    assert re.search(r"changed files\s+-\s+augment.py", code), code
    assert "B ran with uncommitted changes" in code and "A ran on a clean tree" in code
    assert "+-FLIP = False" in code and "++FLIP = True" in code
