"""The record every run folder keeps (run.json, environment.txt, code.patch), tags and notes, and overlays."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
from datetime import datetime
from importlib.metadata import version
from pathlib import Path

import lightning
import numpy as np
import pytest
import torch

from conftest import FAKE_FAST, compose_config, run_cli
from sweeplab.data.datasets import MNISTDataModule
from sweeplab.data.fingerprint import files_fingerprint
from sweeplab.errors import UserInputError
from sweeplab.reports.overlays import curve_of
from sweeplab.reports.run_records import RunRecord, load_runs
from sweeplab.reports.runs_table import build_table
from sweeplab.runs.fit import fit
from sweeplab.runs.provenance import UNTRACKED_PATCH_BYTES, code_state

GIT = ["git", "-c", "user.name=test", "-c", "user.email=test@example.com"]


def git(repo: Path, *args: str) -> str:
    return subprocess.run([*GIT, *args], cwd=repo, capture_output=True, text=True, check=True).stdout


@pytest.fixture
def repo(tmp_path) -> Path:
    """A git repository with one commit: a project a user trains from."""
    root = tmp_path / "project"
    root.mkdir()
    git(root, "init", "-q")
    (root / "notes.md").write_text("first line\n")
    (root / ".gitignore").write_text("outputs/\n")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "start")
    return root


def test_code_state_tells_a_clean_tree_from_changed_and_new_files(repo, tmp_path):
    clean = code_state(repo)
    assert clean.commit == git(repo, "rev-parse", "HEAD").strip() and not clean.dirty and clean.diff == ""
    (repo / "notes.md").write_text("first line\na change\n")
    (repo / "outputs").mkdir()
    (repo / "outputs" / "ignored.txt").write_text("ignored\n")
    (repo / "new_module.py").write_text("VALUE = 3\n")
    (repo / "weights.bin").write_bytes(b"x" * (UNTRACKED_PATCH_BYTES + 1))  # data kept in the tree: named, not copied
    dirty = code_state(repo)
    assert dirty.dirty and dirty.label == f"{clean.commit}-dirty"
    assert "+a change" in dirty.diff and "+VALUE = 3" in dirty.diff and "ignored" not in dirty.diff
    assert dirty.untracked == ("new_module.py", "weights.bin") and "weights.bin" not in dirty.diff
    outside = tmp_path / "not_a_repo"
    outside.mkdir()
    assert code_state(outside).commit is None and code_state(outside).label is None


def test_a_grid_job_records_its_command_parent_machine_packages_code_and_data(repo):
    (repo / "notes.md").write_text("an uncommitted change\n")  # the patch must show it
    grid = ["-m", *FAKE_FAST, "model=mlp", "seed=1,2", "+tags=[baseline,lr-study]", "notes=first try"]
    done = run_cli("train.py", *grid, cwd=repo)
    assert done.returncode == 0, done.stderr[-3000:]
    (root,) = (repo / "outputs" / "multirun").glob("*/*")
    records = [json.loads((root / str(job) / "run.json").read_text()) for job in (0, 1)]
    for job, record in enumerate(records):
        assert record["argv"][1:] == grid and "train.py -m" in record["command"] and record["cwd"] == str(repo)
        assert record["parent"] == {"kind": "multirun", "dir": str(root.resolve()), "index": job}
        assert record["tags"] == ["baseline", "lr-study"] and record["notes"] == "first try"
        assert record["host"]["hostname"] == socket.gethostname() and record["host"]["cpu_count"] == os.cpu_count()
        assert record["host"]["cpu"] and record["host"]["gpus"] == [
            torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())
        ]
        assert (
            record["versions"]["torch_build"] == torch.__version__
            and record["versions"]["lightning"] == lightning.__version__
        )
        assert record["versions"]["cuda"] == torch.version.cuda
        assert record["code"]["commit"] == git(repo, "rev-parse", "HEAD").strip() and record["code"]["dirty"]
        assert datetime.fromisoformat(record["started"]) <= datetime.fromisoformat(record["ended"])
        assert record["data"]["dataset"] == "fake" and len(record["data"]["sha256"]) == 64
        job_dir = root / str(job)
        assert f"torch=={version('torch')}" in (job_dir / "environment.txt").read_text().splitlines()
        assert "+an uncommitted change" in (job_dir / "code.patch").read_text()
        results = json.loads((job_dir / "results.json").read_text())
        assert results["git_commit"] == record["code"]["commit"] + "-dirty"
    assert records[0]["data"]["sha256"] == records[1]["data"]["sha256"]  # the same data, seeds aside

    rows = build_table(load_runs([root]), where="tags=lr-study").rows
    assert len(rows) == 2 and {row["tags"] for row in rows} == {"baseline,lr-study"}
    assert {row["notes"] for row in rows} == {"first try"}
    assert build_table(load_runs([root]), where="tags=other").rows == []


def test_a_clean_tree_leaves_no_patch_and_tags_reach_tensorboard(repo, tmp_path, monkeypatch):
    from test_run_plots import _session_groups

    monkeypatch.chdir(repo)
    run_dir = tmp_path / "run"
    fit(
        compose_config(
            FAKE_FAST
            + [
                "model=mlp",
                "trainer.max_epochs=1",
                "logger=tensorboard",
                "+tags=[baseline]",
                "notes=no augmentation",
                f"paths.output_dir={tmp_path / 'out'}",
            ]
        ),
        run_dir,
    )
    record = json.loads((run_dir / "run.json").read_text())
    assert (
        record["code"]["dirty"] is False and record["code"]["patch"] is None and not (run_dir / "code.patch").exists()
    )
    assert record["parent"] is None and record["tags"] == ["baseline"] and record["notes"] == "no augmentation"
    (group,) = _session_groups(run_dir)
    assert group.hparams["tags"].string_value == "baseline"
    assert group.hparams["notes"].string_value == "no augmentation"


def test_the_data_fingerprint_is_cached_and_changes_with_a_file(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    files = []
    for name, content in (("a.bin", b"one"), ("b.bin", b"two")):
        (data / name).write_bytes(content)
        files.append(data / name)
    cache = tmp_path / "cache"
    first = files_fingerprint(files, cache)
    expected = hashlib.sha256(
        b"".join(f"{f.name}\0{hashlib.sha256(f.read_bytes()).hexdigest()}\n".encode() for f in files)
    ).hexdigest()
    assert first["sha256"] == expected and first["files"] == 2 and first["bytes"] == 6 and not first["cached"]
    again = files_fingerprint(files, cache)
    assert again["cached"] and again["sha256"] == first["sha256"]
    (data / "b.bin").write_bytes(b"TWO")
    os.utime(data / "b.bin", ns=(1, 1))  # a new mtime, as any write gives
    changed = files_fingerprint(files, cache)
    assert not changed["cached"] and changed["sha256"] != first["sha256"]


def test_mnist_is_fingerprinted_by_the_files_torchvision_reads(mnist_dir, tmp_path):
    files = MNISTDataModule(data_dir=mnist_dir).source_files()
    assert sorted(f.name for f in files) == sorted(
        f"{split}-{kind}" for split in ("train", "t10k") for kind in ("images-idx3-ubyte", "labels-idx1-ubyte")
    )
    fingerprint = files_fingerprint(files, tmp_path)
    assert fingerprint["bytes"] == sum(f.stat().st_size for f in files)
    root = files[0].parent.resolve()
    expected = hashlib.sha256(
        b"".join(
            f"{f.name}\0{hashlib.sha256(f.read_bytes()).hexdigest()}\n".encode()
            for f in sorted(f.resolve() for f in files)
        )
    ).hexdigest()
    assert fingerprint["sha256"] == expected and fingerprint["root"] == str(root)


def _history_record(name: str, model: str, seed: int, accs: list[float]) -> RunRecord:
    history = [{"epoch": i + 1, "val_acc": acc, "val_loss": 1 - acc} for i, acc in enumerate(accs)]
    return RunRecord(
        Path(name),
        "completed",
        hparams={"model": model, "seed": seed},
        results={"test_acc": accs[-1], "history": history},
    )


def test_a_seed_group_curve_is_the_mean_with_one_standard_deviation():
    runs = [_history_record(f"r{s}", "lenet", s, accs) for s, accs in enumerate([[0.5, 0.7], [0.6, 0.8], [0.7, 0.75]])]
    curve = curve_of("model=lenet", runs)
    values = np.array([[0.5, 0.7], [0.6, 0.8], [0.7, 0.75]])
    assert curve.runs == 3 and list(curve.epochs) == [1, 2] and "3 seeds" in curve.label
    assert np.allclose(curve.mean["val_acc"], values.mean(axis=0))
    assert np.allclose(curve.std["val_acc"], values.std(axis=0, ddof=1))
    assert np.allclose(curve.mean["val_loss"], 1 - values.mean(axis=0))
    single = curve_of("one", runs[:1])
    assert single.label == "one" and np.allclose(single.std["val_acc"], 0)
    assert curve_of("none", [RunRecord(Path("x"), "failed")]) is None


def test_plot_draws_one_curve_per_row_labelled_by_what_differs(tmp_path, capsys):
    from sweeplab.cli.compare import main as compare

    runs = [
        _history_record(f"{m}{s}", m, s, [0.5 + 0.01 * s, 0.6 + 0.01 * s + 0.1 * (m == "mlp")])
        for m in ("lenet", "mlp")
        for s in (1, 2)
    ]
    for record in runs:
        folder = tmp_path / "grid" / str(record.path)
        (folder / ".hydra").mkdir(parents=True)
        (folder / "results.json").write_text(
            json.dumps({"status": "completed", "hparams": record.hparams, **record.results})
        )
    table = build_table(load_runs([tmp_path / "grid"]), group_seeds=True)
    assert [label for label, _ in table.labelled_runs] == ["model=mlp", "model=lenet"]  # best test_acc first
    assert [len(records) for _, records in table.labelled_runs] == [2, 2]
    picture = tmp_path / "curves.png"
    compare([str(tmp_path / "grid"), "--group-seeds", "--plot", str(picture)])
    assert f"wrote {picture}: 2 curves" in capsys.readouterr().err
    from matplotlib.image import imread

    image = imread(picture)
    assert image.ndim == 3 and image.shape[0] > 300 and image.shape[1] > image.shape[0]


def test_plot_refuses_rows_without_epochs_in_one_line(tmp_path):
    from sweeplab.reports.overlays import write_overlays

    with pytest.raises(UserInputError, match="none of the 2 rows shown logged an epoch"):
        write_overlays([("a", [RunRecord(Path("a"), "failed")]), ("b", [])], tmp_path / "x.png", title="t")
    assert not (tmp_path / "x.png").exists()


def test_each_fold_and_the_refit_name_their_cross_validation_run(tmp_path):
    from sweeplab.cv.crossval import cross_validate

    run_dir = tmp_path / "cv"
    cfg = compose_config(
        FAKE_FAST
        + ["model=mlp", "trainer.max_epochs=1", "cv.folds=2", "cv.refit=true", f"paths.output_dir={tmp_path / 'out'}"]
    )
    assert cross_validate(cfg, run_dir)["status"] == "completed"
    own = json.loads((run_dir / "run.json").read_text())
    assert own["parent"] is None and own["ended"] is not None and own["data"]["dataset"] == "fake"
    for part in ("fold_0", "fold_1", "refit"):
        record = json.loads((run_dir / part / "run.json").read_text())
        assert record["parent"] == {"kind": "cv", "dir": str(run_dir), "index": part}
        assert record["data"]["sha256"] == own["data"]["sha256"]


def test_a_resumed_run_keeps_when_its_first_attempt_ran(tmp_path):
    run_dir = tmp_path / "run"
    base = FAKE_FAST + ["model=mlp", f"paths.output_dir={tmp_path / 'out'}"]
    fit(compose_config(base + ["trainer.max_epochs=1"]), run_dir)
    first = json.loads((run_dir / "run.json").read_text())
    fit(compose_config(base + ["trainer.max_epochs=2", "resume=true"]), run_dir)
    second = json.loads((run_dir / "run.json").read_text())
    assert second["earlier_attempts"] == [{key: first[key] for key in ("started", "ended", "command", "code")}]
    assert json.loads((run_dir / "results.json").read_text())["epochs_run"] == 2
