"""Hostile folders and secrets: locks that are not what they should be, a moved run resumed, a refused sweep.

Each refusal: exit 2, one ``error:`` line naming the file, key or holder, no traceback, and every file that
was there before unchanged (checksums) with no file added.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import FAKE_FAST, run_cli
from sweeplab.processes import process_identity, process_start_time
from sweeplab.runs.folder import LOCK_FILE


def checksums(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
        for p in sorted(root.rglob("*"))
    }


def assert_refused(result: subprocess.CompletedProcess, *named: str) -> str:
    assert result.returncode == 2, result.stderr[-3000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr[-3000:]
    assert "Traceback" not in result.stderr + result.stdout
    for text in named:
        assert text in lines[0], lines[0]
    return lines[0]


def lock_record(pid: int, host: str | None = None) -> str:
    host = host or socket.gethostname()
    started = process_start_time(pid)
    return json.dumps(
        {
            "pid": pid,
            "host": host,
            "process_start": started,
            "since": "2025-01-01T00:00:00+00:00",
            "process": process_identity(host, pid, started),
        }
    )


@pytest.fixture
def live_process():
    holder = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    yield holder
    holder.stdin.close()
    holder.wait()


@pytest.fixture
def used_folder(tmp_path) -> Path:
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "notes.txt").write_text("kept as it is\n")
    return folder


def train_into(folder: Path, *extra: str) -> subprocess.CompletedProcess:
    return run_cli("train.py", *FAKE_FAST, "trainer.max_epochs=1", f"hydra.run.dir={folder}", *extra, cwd=folder.parent)


def test_a_lock_file_holding_junk_is_refused_naming_it(used_folder):
    (used_folder / LOCK_FILE).write_bytes(b"\x00\xffjunk{")
    before = checksums(used_folder)
    assert_refused(train_into(used_folder), str(used_folder / LOCK_FILE), "cannot be read as a run folder lock")
    assert checksums(used_folder) == before


def test_a_lock_that_is_a_folder_is_refused_naming_it(used_folder):
    (used_folder / LOCK_FILE).mkdir()
    before = checksums(used_folder)
    assert_refused(train_into(used_folder), str(used_folder / LOCK_FILE), "is a folder")
    assert checksums(used_folder) == before


def test_a_read_only_lock_of_a_live_process_is_refused_naming_the_holder(used_folder, live_process):
    lock = used_folder / LOCK_FILE
    lock.write_text(lock_record(live_process.pid))
    lock.chmod(0o444)
    before = checksums(used_folder)
    assert_refused(
        train_into(used_folder),
        f"pid {live_process.pid} on {socket.gethostname()}",
        str(used_folder),
        "since 2025-01-01T00:00:00+00:00",
    )
    assert checksums(used_folder) == before


def test_a_lock_of_another_host_is_refused_naming_it(used_folder):
    (used_folder / LOCK_FILE).write_text(lock_record(os.getpid(), host="node-17.cluster"))
    before = checksums(used_folder)
    assert_refused(train_into(used_folder), "on node-17.cluster", str(used_folder / LOCK_FILE))
    assert checksums(used_folder) == before


def test_a_lock_with_no_holder_fields_is_refused_naming_it(used_folder):
    (used_folder / LOCK_FILE).write_text(json.dumps({"pid": "1"}))
    before = checksums(used_folder)
    assert_refused(train_into(used_folder), str(used_folder / LOCK_FILE), "no pid, host, since, process")
    assert checksums(used_folder) == before


def test_a_refused_sweep_leaves_no_folder_and_no_password_with_an_at_sign(tmp_path):
    secret = "p@ss-" + os.urandom(6).hex()
    out = tmp_path / "outputs"
    result = run_cli(
        "sweep.py",
        "sweep=mnist_lenet",
        f"sweep.storage=postgresql+psycopg2://user:{secret}@127.0.0.1:1/db",
        f"paths.output_dir={out}",
        cwd=tmp_path,
    )
    line = assert_refused(result, "sweep.storage", "user:***@127.0.0.1:1/db")
    assert secret not in line and secret.split("@")[1] not in result.stdout + result.stderr
    assert not out.exists()  # neither outputs/sweeps/mnist_lenet nor the folders above it, made by this command


def test_a_refused_sweep_keeps_a_sweep_folder_that_was_there(tmp_path):
    study_dir = tmp_path / "study"
    study_dir.mkdir()
    (study_dir / "mine.txt").write_text("x")
    result = run_cli(
        "sweep.py",
        "sweep=mnist_lenet",
        "sweep.storage=postgresql+psycopg2://user:pw@127.0.0.1:1/db",
        f"sweep.dir={study_dir}",
        cwd=tmp_path,
    )
    assert_refused(result, "sweep.storage")
    assert (study_dir / "mine.txt").read_text() == "x"


def test_a_moved_run_resumes_into_its_new_folder(tmp_path):
    first = tmp_path / "first"
    result = run_cli("train.py", *FAKE_FAST, "trainer.max_epochs=2", f"hydra.run.dir={first}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    moved = tmp_path / "elsewhere" / "moved"
    shutil.copytree(first, moved)
    result = run_cli(
        "train.py", *FAKE_FAST, "trainer.max_epochs=3", "resume=true", f"hydra.run.dir={moved}", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads((moved / "results.json").read_text())
    assert results["status"] == "completed" and results["epochs_run"] == 3
    last = torch.load(moved / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert len(last["sweeplab_history"]) == 3  # the last epoch trained, not the one before
    assert (
        last["global_step"]
        == 3
        * torch.load(first / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)["global_step"]
        // 2
    )
    state = next(value for key, value in last["callbacks"].items() if key.startswith("RunCheckpoint"))
    assert Path(state["best_model_path"]).parent == moved / "checkpoints"
    assert Path(state["last_model_path"]).parent == moved / "checkpoints"
    assert sorted(p.name for p in (moved / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]
    assert not (moved / LOCK_FILE).exists()
