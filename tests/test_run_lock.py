"""One writer per run folder: ``RUN_DIR/.lock`` (:func:`sweeplab.runs.start.run_folder_lock`)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import FAKE_FAST, HELPERS, REPO
from sweeplab.errors import UserInputError
from sweeplab.processes import process_identity, process_start_time, this_process
from sweeplab.runs.folder import LOCK_FILE
from sweeplab.runs.start import RunFolderBusy, lock_holder_record, run_folder_lock


def dead_pid() -> int:
    """The id of a process that has ended."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def write_lock(folder: Path, pid: int, started: str | None, host: str | None = None) -> Path:
    host = host or socket.gethostname()
    folder.mkdir(parents=True, exist_ok=True)
    lock = folder / LOCK_FILE
    lock.write_text(
        json.dumps(
            {
                "pid": pid,
                "host": host,
                "process_start": started,
                "since": "2025-01-01T00:00:00+00:00",
                "process": process_identity(host, pid, started),
            }
        )
    )
    return lock


def test_two_train_runs_started_at_once_on_one_folder_one_is_refused(tmp_path):
    run_dir = tmp_path / "run"
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "HYDRA_FULL_ERROR": "0",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(HELPERS), os.environ.get("PYTHONPATH")])),
    }
    command = [sys.executable, str(REPO / "train.py"), *FAKE_FAST, "trainer.max_epochs=2", f"hydra.run.dir={run_dir}"]
    runs = [
        subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outcomes = [(run.wait(timeout=600), *run.communicate()) for run in runs]
    codes = sorted(code for code, _, _ in outcomes)
    assert codes == [0, 2], [err[-2000:] for _, _, err in outcomes]
    refused_err = next(err for code, _, err in outcomes if code == 2)
    lines = refused_err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in refused_err
    winner = next(run for run, (code, _, _) in zip(runs, outcomes, strict=True) if code == 0)
    assert f"pid {winner.pid} on {socket.gethostname()}" in lines[0]
    assert str(run_dir) in lines[0] and "since" in lines[0]
    results = json.loads((run_dir / "results.json").read_text())
    assert results["status"] == "completed" and results["epochs_run"] == 2
    log = (run_dir / "train.log").read_text()
    assert log.count("completed:") == 1 and log.count("epoch 1/2") == 1
    rows = [line for line in (run_dir / "metrics.csv").read_text().splitlines()[1:] if line.split(",")[0] == "0"]
    assert len(rows) == 1  # one run's first epoch
    assert not (run_dir / LOCK_FILE).exists()  # released at the end


def test_a_lock_of_a_dead_process_is_taken_over(tmp_path, caplog):
    folder = tmp_path / "run"
    write_lock(folder, dead_pid(), "12345")
    with run_folder_lock(folder):
        holder = json.loads((folder / LOCK_FILE).read_text())
        assert holder["pid"] == os.getpid() and holder["process"] == this_process()
    assert not (folder / LOCK_FILE).exists()
    assert any("took over the lock" in r.getMessage() and str(folder) in r.getMessage() for r in caplog.records)


def test_a_lock_of_a_reused_pid_is_taken_over(tmp_path):
    folder = tmp_path / "run"
    write_lock(folder, os.getpid(), "1")  # this pid, but another start time: its holder is gone
    with run_folder_lock(folder):
        assert json.loads((folder / LOCK_FILE).read_text())["process"] == this_process()


def test_a_lock_of_a_live_process_is_refused_and_left_alone(tmp_path):
    folder = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        lock = write_lock(folder, holder.pid, process_start_time(holder.pid))
        before = lock.read_bytes()
        with pytest.raises(RunFolderBusy) as refused, run_folder_lock(folder):
            pytest.fail("the lock was taken")
        assert f"pid {holder.pid} on {socket.gethostname()}" in str(refused.value)
        assert "since 2025-01-01T00:00:00+00:00" in str(refused.value) and str(folder.resolve()) in str(refused.value)
        assert lock.read_bytes() == before and sorted(p.name for p in folder.iterdir()) == [LOCK_FILE]
    finally:
        holder.stdin.close()
        holder.wait()


def test_this_process_own_lock_with_its_real_start_time_held_elsewhere_is_refused(tmp_path):
    folder = tmp_path / "run"
    write_lock(folder, os.getpid(), process_start_time(os.getpid()))  # as if another part of it held the folder
    with pytest.raises(RunFolderBusy, match=f"pid {os.getpid()}"), run_folder_lock(folder):
        pass


def test_another_hosts_lock_is_never_taken_over(tmp_path):
    folder = tmp_path / "run"
    write_lock(folder, dead_pid(), "1", host="some-other-host")
    with pytest.raises(RunFolderBusy, match="on some-other-host"), run_folder_lock(folder):
        pass


def test_nested_holders_in_one_process_share_the_lock(tmp_path):
    folder = tmp_path / "run"
    with run_folder_lock(folder):
        with run_folder_lock(folder / "."):
            assert (folder / LOCK_FILE).is_file()
        assert (folder / LOCK_FILE).is_file()  # the outer holder still holds it
    assert not (folder / LOCK_FILE).exists()


def test_the_lock_is_released_when_the_block_fails(tmp_path):
    folder = tmp_path / "run"
    with pytest.raises(ValueError), run_folder_lock(folder):
        raise ValueError("boom")
    assert not (folder / LOCK_FILE).exists()


def test_junk_in_the_lock_file_is_refused_naming_it(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / LOCK_FILE).write_text("not json {")
    with pytest.raises(UserInputError, match=r"\.lock cannot be read as a run folder lock"), run_folder_lock(folder):
        pass
    assert (folder / LOCK_FILE).read_text() == "not json {"


def test_the_holder_record_names_pid_host_and_start():
    record = lock_holder_record()
    assert record["pid"] == os.getpid() and record["host"] == socket.gethostname()
    assert record["process"] == this_process() and record["since"]
