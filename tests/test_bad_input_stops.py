"""Hostile stops: signals at awkward moments, repeated, to a resume, to the readers. Each ends with the signal's
code (128 + its number), one line, no traceback, and the files that were there before unchanged."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image
from test_stops import RUN, Command, assert_stopped_cleanly, replaced, results, resume_command
from test_stops import start as start  # noqa: PLC0414 (the fixture, used by name)

from conftest import HELPERS, REPO
from sweeplab.errors import INTERRUPTED_EXIT_CODE, TERMINATED_EXIT_CODE, stop_exit_code

QUICK = replaced(RUN, "trainer.max_epochs=2")
HOLD = ["+callbacks.hold._target_=stop_points.HoldMidEpoch", "+callbacks.hold.batches=3"]


def checksums(folder: Path, *names: str) -> dict[str, str]:
    """sha256 of the files ``names`` (globs) below ``folder``."""
    found = sorted(p for name in names for p in folder.glob(name) if p.is_file())
    assert found, f"nothing matches {names} in {folder}"
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in found}


def hold_on_open(tmp_path: Path, ending: str, marker: Path) -> dict:
    """The environment of a command that holds when it opens a file whose path ends with ``ending``."""
    hooks = tmp_path / "hooks"
    hooks.mkdir(exist_ok=True)
    (hooks / "sitecustomize.py").write_text("import stop_points\nstop_points.install_from_env()\n")
    return {"PYTHONPATH": f"{hooks}", "SWEEPLAB_TEST_HOLD_ON_OPEN": ending, "SWEEPLAB_TEST_HOLD_MARKER": str(marker)}


@pytest.fixture(scope="module")
def stopped_twice(tmp_path_factory):
    """A run sent SIGTERM twice in a row in mid-epoch 2; its checkpoints' checksums from before the signals."""
    root = tmp_path_factory.mktemp("stopped_twice")
    run_dir = root / "run"
    command = Command("train.py", *QUICK, *HOLD, "+callbacks.hold.times=2", f"hydra.run.dir={run_dir}", cwd=root)
    try:
        command.wait_for(run_dir / "stop_here.1")
        before = checksums(run_dir, "checkpoints/*.ckpt", ".hydra/*.yaml")
        command.signal(signal.SIGTERM)
        command.signal(signal.SIGTERM)
        command.finish()
    finally:
        command.kill_if_running()
    return root, run_dir, command, before


def test_sigterm_twice_in_a_row_stops_once(stopped_twice):
    _, run_dir, command, before = stopped_twice
    line = assert_stopped_cleanly(command, TERMINATED_EXIT_CODE, signal.SIGTERM)
    assert line.endswith(f"resume=true hydra.run.dir={run_dir}")
    assert command.stderr().count("interrupted by") == 1  # the second signal was ignored
    assert checksums(run_dir, "checkpoints/*.ckpt", ".hydra/*.yaml") == before  # no half-epoch checkpoint
    assert results(run_dir)["stop_signal"] == "SIGTERM" and not (run_dir / "error.txt").exists()


def test_sigterm_to_a_resume_stops_it_with_its_checkpoints_as_they_were(stopped_twice, start):
    root, run_dir, command, _ = stopped_twice
    before = checksums(run_dir, "checkpoints/*.ckpt")  # a resume records its own .hydra/ (resume=true)
    resume = start("train.py", *resume_command(command.last_line()), cwd=root)
    resume.wait_for(run_dir / "stop_here.2")  # the resume holds in its own epoch 2
    resume.signal(signal.SIGTERM)
    line = assert_stopped_cleanly(resume, TERMINATED_EXIT_CODE, signal.SIGTERM)
    assert line.endswith(f"resume=true hydra.run.dir={run_dir}")
    assert checksums(run_dir, "checkpoints/*.ckpt") == before
    assert results(run_dir)["status"] == "interrupted"


def test_sigterm_while_the_config_is_checked_leaves_no_folder(tmp_path, start):
    run_dir, marker = tmp_path / "never_made", tmp_path / "checking"
    command = start(
        "train.py",
        *QUICK,
        "+callbacks.check._target_=stop_points.HoldWhileChecked",
        f"+callbacks.check.marker={marker}",
        f"hydra.run.dir={run_dir}",
        cwd=tmp_path,
    )
    command.wait_for(marker)
    command.signal(signal.SIGTERM)
    line = assert_stopped_cleanly(command, TERMINATED_EXIT_CODE, signal.SIGTERM)
    assert "no run had started: run the same command again" in line
    assert not run_dir.exists()


def test_sigint_in_the_test_phase_after_training(tmp_path, start):
    run_dir = tmp_path / "run"
    command = start(
        "train.py",
        *QUICK,
        "+callbacks.hold._target_=stop_points.HoldMidEpoch",
        "+callbacks.hold.phase=test",
        "+callbacks.hold.batches=1",
        f"hydra.run.dir={run_dir}",
        cwd=tmp_path,
    )
    command.wait_for(run_dir / "stop_here.1")
    before = checksums(run_dir, "checkpoints/*.ckpt")
    command.signal(signal.SIGINT)
    line = assert_stopped_cleanly(command, INTERRUPTED_EXIT_CODE, signal.SIGINT)
    assert line.endswith(f"resume=true hydra.run.dir={run_dir}")
    assert checksums(run_dir, "checkpoints/*.ckpt") == before
    record = results(run_dir)
    assert record["status"] == "interrupted" and record["stop_signal"] == "SIGINT" and record["epochs_run"] == 2


def test_sighup_stops_a_run_with_129_unless_it_runs_under_nohup(tmp_path, start):
    hung_up, under_nohup = tmp_path / "hup", tmp_path / "nohup"
    command = start("train.py", *QUICK, *HOLD, f"hydra.run.dir={hung_up}", cwd=tmp_path)
    command.wait_for(hung_up / "stop_here.1")
    command.signal(signal.SIGHUP)
    assert_stopped_cleanly(command, stop_exit_code(signal.SIGHUP), signal.SIGHUP)
    assert results(hung_up)["stop_signal"] == "SIGHUP"

    nohup = subprocess.Popen(  # nohup: SIGHUP ignored from the start, and it stays ignored
        ["nohup", sys.executable, str(REPO / "train.py"), *QUICK, *HOLD, f"hydra.run.dir={under_nohup}"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(HELPERS)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        marker = under_nohup / "stop_here.1"
        deadline = time.monotonic() + 240
        while not marker.exists():
            assert nohup.poll() is None and time.monotonic() < deadline, nohup.stderr.read()[-3000:]
            time.sleep(0.05)
        nohup.send_signal(signal.SIGHUP)
        marker.with_name(marker.name + ".release").write_text("")  # the hold goes on: the signal did nothing
        _, err = nohup.communicate(timeout=240)
    finally:
        if nohup.poll() is None:
            nohup.kill()
    assert nohup.returncode == 0, err[-3000:]
    assert results(under_nohup)["status"] == "completed"


def test_sigterm_while_compare_reads_a_run(stopped_twice, tmp_path, start):
    root, run_dir, _, _ = stopped_twice
    before = checksums(run_dir, "*.json", "checkpoints/*.ckpt")
    marker = tmp_path / "reading"
    command = start("compare.py", str(run_dir), cwd=tmp_path, env=hold_on_open(tmp_path, "results.json", marker))
    command.wait_for(marker)
    command.signal(signal.SIGTERM)
    line = assert_stopped_cleanly(command, TERMINATED_EXIT_CODE, signal.SIGTERM)
    assert line == "interrupted by SIGTERM: to resume, run the same command again"
    assert checksums(run_dir, "*.json", "checkpoints/*.ckpt") == before


def test_sigterm_while_predict_reads_an_image(stopped_twice, tmp_path, start):
    _, run_dir, _, _ = stopped_twice
    image, marker = tmp_path / "digit.png", tmp_path / "reading"
    Image.new("L", (28, 28), 128).save(image)
    before = checksums(run_dir, "*.json", "checkpoints/*.ckpt") | checksums(tmp_path, "digit.png")
    command = start(
        "predict.py", str(run_dir), str(image), cwd=tmp_path, env=hold_on_open(tmp_path, "digit.png", marker)
    )
    command.wait_for(marker)
    command.signal(signal.SIGTERM)
    assert_stopped_cleanly(command, TERMINATED_EXIT_CODE, signal.SIGTERM)
    assert checksums(run_dir, "*.json", "checkpoints/*.ckpt") | checksums(tmp_path, "digit.png") == before
