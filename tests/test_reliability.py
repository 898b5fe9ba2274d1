"""Nothing half-written: checkpoints survive a kill at any moment of their writing, and a full disk."""

from __future__ import annotations

import io
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import FAKE_FAST, REPO, run_cli
from sweeplab.files import write_bytes_atomic
from sweeplab.runs.checkpoints import AtomicCheckpointIO

BIG_MLP = FAKE_FAST + ["model=mlp", "model.hidden=[1500,1500]", "logger=csv", "~callbacks.run_plots"]


def _checkpoint_bytes(number: int) -> bytes:
    """A checkpoint of about 8 MB that says which it is, serialized."""
    buffer = io.BytesIO()
    torch.save({"epoch": number, "state_dict": {"w": torch.full((2_000_000,), float(number))}}, buffer)
    return buffer.getvalue()


def test_a_kill_at_any_moment_of_writing_leaves_the_last_whole_checkpoint(tmp_path):
    """20 writers, each SIGKILLed at a random moment while it rewrites the checkpoint again and again."""
    path = tmp_path / "last.ckpt"
    versions = [_checkpoint_bytes(n) for n in range(3)]
    write_bytes_atomic(path, versions[0])
    rng = random.Random(20261202)
    for attempt in range(20):
        pid = os.fork()
        if pid == 0:  # the writer: nothing but file writes, as the checkpoint IO does them
            try:
                for n in range(10**6):
                    write_bytes_atomic(path, versions[1 + n % 2])
            finally:
                os._exit(0)
        time.sleep(rng.uniform(0, 0.3))  # any moment: the check below must hold for all of them
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)  # never a torn file
        assert checkpoint["epoch"] in (0, 1, 2), attempt
        assert torch.equal(checkpoint["state_dict"]["w"], torch.full((2_000_000,), float(checkpoint["epoch"])))
    AtomicCheckpointIO().save_checkpoint({"epoch": 9, "state_dict": {}}, path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]  # the killed writers' temporaries are gone


def _kill_at_random(argv: list[str], cwd: Path, delay: float) -> int:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO / "tests" / "helpers"), os.environ.get("PYTHONPATH")])),
    }
    process = subprocess.Popen(
        [sys.executable, str(REPO / "train.py"), *argv],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        return process.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGKILL)
        return process.wait()


def _kill_then_resume(tmp_path: Path, tries: int, seed: int) -> None:
    rng = random.Random(seed)
    for attempt in range(tries):
        run_dir = tmp_path / f"run_{attempt}"
        argv = [*BIG_MLP, "trainer.max_epochs=4", "early_stopping.patience=10", f"hydra.run.dir={run_dir}"]
        _kill_at_random(argv, tmp_path, delay=rng.uniform(4, 14))  # start-up takes ~5 s, the run ~10 s
        if (run_dir / "checkpoints" / "last.ckpt").exists():
            torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)  # whole
        resumed = run_cli("train.py", *argv, "resume=true", cwd=tmp_path)
        assert "Traceback" not in resumed.stderr, resumed.stderr[-3000:]
        if resumed.returncode == 0:
            results = json.loads((run_dir / "results.json").read_text())
            assert results["status"] == "completed" and results["epochs_run"] == 4
        else:  # killed before its first checkpoint: nothing to resume, said in one line
            assert resumed.returncode == 2, resumed.stderr[-3000:]
            assert resumed.stderr.strip().splitlines()[-1].startswith("error: resume=True is invalid: there is no")


def test_a_run_killed_at_a_random_moment_resumes_or_is_refused_in_one_line(tmp_path):
    _kill_then_resume(tmp_path, tries=1, seed=1)


@pytest.mark.slow
def test_twenty_runs_killed_at_random_moments_all_resume_or_are_refused_in_one_line(tmp_path):
    _kill_then_resume(tmp_path, tries=20, seed=2)


@pytest.fixture
def small_disk(tmp_path):
    """A tmpfs of 12 MB mounted for the test (root only; skipped where it cannot be mounted)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=12M", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", str(mount)], check=False)


def test_a_full_disk_ends_the_run_in_one_line_and_keeps_the_last_good_checkpoint(small_disk, tmp_path):
    # about 7.8 MB per checkpoint (weights and AdamW's two moments): the first epoch's best.ckpt fits,
    # its last.ckpt does not
    done = run_cli(
        "train.py",
        *BIG_MLP,
        "model.hidden=[500,500]",
        "trainer.max_epochs=3",
        "early_stopping.patience=10",
        f"paths.output_dir={small_disk}",
        cwd=tmp_path,
    )
    assert done.returncode == 2, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    last_line = done.stderr.strip().splitlines()[-1]
    assert last_line.startswith("error: ") and "No space left on device" in last_line and "last.ckpt" in last_line
    (run_dir,) = [p.parent for p in small_disk.rglob("checkpoints")]
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["best.ckpt"]  # no temporary left
    checkpoint = torch.load(run_dir / "checkpoints" / "best.ckpt", weights_only=True)
    assert checkpoint["epoch"] == 0 and len(checkpoint["sweeplab_history"]) == 1
