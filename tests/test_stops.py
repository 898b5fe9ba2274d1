"""Stops have codes: SIGTERM and SIGINT in mid-epoch end train.py, a grid, a sweep and cross-validation with
128 + the signal's number, no traceback, and one line saying how to resume; the resume ends as a run never stopped."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import HELPERS, REPO
from sweeplab.errors import INTERRUPTED_EXIT_CODE, TERMINATED_EXIT_CODE, stop_exit_code

RUN = [
    "data=fake",
    "data.num_samples=400",
    "data.num_test_samples=200",
    "data.noise=4",
    "data.batch_size=32",
    "model=mlp",
    "model.dropout=0.3",
    "optimizer=sgd",
    "optimizer.lr=0.05",
    "scheduler=step",
    "scheduler.step_size=1",
    "scheduler.gamma=0.7",
    "trainer.max_epochs=3",
    "early_stopping.patience=10",
    "logger=csv",
    "progress_bar=false",
    "seed=7",
]
HOLD = ["+callbacks.hold._target_=stop_points.HoldMidEpoch", "+callbacks.hold.epoch=1", "+callbacks.hold.batches=3"]
HISTORY_KEYS = ("train_loss", "train_acc", "val_loss", "val_acc", "lr")


class Command:
    """A root script in its own process group, its output in files, held at a marker until signalled."""

    def __init__(self, script: str, *args: str, cwd: Path, env: dict | None = None) -> None:
        self.out, self.err = cwd / f"{script}.{time.monotonic_ns()}.out", cwd / f"{script}.{time.monotonic_ns()}.err"
        pythonpath = os.pathsep.join(
            filter(
                None, [*(env or {}).get("PYTHONPATH", "").split(os.pathsep), str(HELPERS), os.environ.get("PYTHONPATH")]
            )
        )
        full_env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "OMP_NUM_THREADS": "1",
            **(env or {}),
            "PYTHONPATH": pythonpath,
        }
        with open(self.out, "w") as out, open(self.err, "w") as err:
            self.process = subprocess.Popen(
                [sys.executable, str(REPO / script), *args],
                cwd=cwd,
                env=full_env,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )

    def wait_for(self, marker: Path, timeout: float = 240) -> None:
        """Poll until ``marker`` exists (the process holds there); fail if the process ended first."""
        deadline = time.monotonic() + timeout
        while not marker.exists():
            ended = self.process.poll()
            assert ended is None, f"ended (exit {ended}) before {marker}:\n{self.stderr()[-3000:]}"
            assert time.monotonic() < deadline, f"no {marker} after {timeout}s:\n{self.stderr()[-3000:]}"
            time.sleep(0.05)

    def signal(self, signum: int) -> None:
        os.kill(self.process.pid, signum)

    def finish(self, timeout: float = 240) -> int:
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            raise

    def stderr(self) -> str:
        return self.err.read_text()

    def stdout(self) -> str:
        return self.out.read_text()

    def last_line(self) -> str:
        return self.stderr().strip().splitlines()[-1]

    def kill_if_running(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


@pytest.fixture
def start():
    """Start commands; any still running when the test ends (a failed test) is killed."""
    started: list[Command] = []

    def launch(script: str, *args: str, cwd: Path, env: dict | None = None) -> Command:
        started.append(Command(script, *args, cwd=cwd, env=env))
        return started[-1]

    yield launch
    for command in started:
        command.kill_if_running()


def assert_stopped_cleanly(command: Command, code: int, signum: int) -> str:
    """Exit ``code``, no traceback, the last line names the signal; returns that line."""
    assert command.finish() == code, command.stderr()[-3000:]
    assert "Traceback" not in command.stderr() + command.stdout()
    line = command.last_line()
    assert line.startswith(f"interrupted by {signal.Signals(signum).name}: "), line
    return line


def resume_command(line: str) -> list[str]:
    """The arguments of the ``python train.py ...`` command a stop line gives."""
    words = shlex.split(line.split("run: ", 1)[1])
    assert words[:2] == ["python", "train.py"]
    return words[2:]


def replaced(base: list[str], *overrides: str) -> list[str]:
    """``base`` with ``overrides`` in place of the values of their keys (Hydra refuses a key given twice)."""
    keys = {o.split("=", 1)[0] for o in overrides}
    return [o for o in base if o.split("=", 1)[0] not in keys] + list(overrides)


def results(folder: Path) -> dict:
    return json.loads((folder / "results.json").read_text())


def test_stop_exit_codes_are_128_plus_the_signal():
    assert (INTERRUPTED_EXIT_CODE, TERMINATED_EXIT_CODE, stop_exit_code(signal.SIGHUP)) == (130, 143, 129)


@pytest.fixture(scope="module")
def never_stopped(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("never_stopped")
    done = Command("train.py", *RUN, f"hydra.run.dir={root / 'run'}", cwd=root)  # the same threads as the others
    assert done.finish() == 0, done.stderr()[-3000:]
    return results(root / "run")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_run_stopped_in_mid_epoch_exits_with_the_signals_code_and_resumes_to_the_same_metrics(
    signum, never_stopped, tmp_path, start
):
    run_dir = tmp_path / "run"
    stopped = start("train.py", *RUN, *HOLD, f"hydra.run.dir={run_dir}", cwd=tmp_path)
    stopped.wait_for(run_dir / "stop_here.1")
    stopped.signal(signum)
    line = assert_stopped_cleanly(stopped, stop_exit_code(signum), signum)
    assert not (run_dir / "error.txt").exists()  # a stop is no failure
    record = results(run_dir)
    assert record["status"] == "interrupted" and record["stop_signal"] == signal.Signals(signum).name
    assert record["epochs_run"] == 1  # stopped in the second epoch

    arguments = resume_command(line)
    assert arguments[-2:] == ["resume=true", f"hydra.run.dir={run_dir}"]
    resumed = start("train.py", *arguments, cwd=tmp_path)
    assert resumed.finish() == 0, resumed.stderr()[-3000:]
    after = results(run_dir)
    assert after["status"] == "completed" and after["stop_signal"] is None
    for key in ("test_acc", "test_loss", "best_val_acc", "epochs_run"):
        assert after[key] == never_stopped[key], key
    for key in HISTORY_KEYS:
        assert [row[key] for row in after["history"]] == [row[key] for row in never_stopped["history"]], key


def test_a_grid_stopped_in_job_1_exits_143_and_its_summary_lists_every_job(tmp_path, start):
    root = tmp_path / "grid"
    grid = start(
        "train.py",
        "-m",
        *replaced(RUN, "trainer.max_epochs=2", "seed=1,2,3"),
        "+callbacks.hold._target_=stop_points.HoldMidEpoch",
        "+callbacks.hold.folder='1'",
        f"hydra.sweep.dir={root}",
        cwd=tmp_path,
    )
    grid.wait_for(root / "1" / "stop_here.1")
    grid.signal(signal.SIGTERM)
    line = assert_stopped_cleanly(grid, TERMINATED_EXIT_CODE, signal.SIGTERM)
    assert "1 of 3 jobs completed; to finish the grid, run: " in line
    first, second = line.split("run: ", 1)[1].split(" && ")
    assert "seed=2" in first.split() and first.endswith(f"resume=true hydra.run.dir={root / '1'}")  # from epoch 1
    assert "seed=3" in second.split() and second.endswith(f" hydra.run.dir={root / '2'}") and "resume" not in second
    assert results(root / "0")["status"] == "completed"
    assert results(root / "1")["status"] == "interrupted" and not (root / "2").exists()
    rows = {row["run"]: row for row in _csv_rows(root / "summary.csv")}
    assert {name: row["status"] for name, row in rows.items()} == {"0": "completed", "1": "interrupted", "2": "not run"}
    assert rows["2"]["seed"] == "3"
    assert "| not run" in (root / "summary.md").read_text()


def _csv_rows(path: Path) -> list[dict]:
    import csv  # noqa: PLC0415

    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_a_sweep_stopped_in_trial_0_exits_143_and_the_same_command_finishes_it(tmp_path, start):
    source = tmp_path / "two.yaml"
    source.write_text(
        yaml.safe_dump(
            {
                "overrides": [
                    *replaced(RUN, "trainer.max_epochs=2", "evaluate_test=false"),
                    "+callbacks.hold._target_=stop_points.HoldMidEpoch",
                    "+callbacks.hold.folder=trial_0000",
                ],
                "space": {"optimizer.lr": {"type": "float", "low": 1e-3, "high": 0.1, "log": True}},
                "sampler": {"name": "random", "seed": 0},
                "pruner": {"name": "none"},
                "n_trials": 2,
            }
        )
    )
    study_dir = tmp_path / "study"
    sweep = start("sweep.py", f"sweep={source}", f"sweep.dir={study_dir}", cwd=tmp_path)
    sweep.wait_for(study_dir / "trial_0000" / "stop_here.1")
    sweep.signal(signal.SIGTERM)
    assert sweep.finish() == TERMINATED_EXIT_CODE, sweep.stderr()[-3000:]
    assert "Traceback" not in sweep.stderr() + sweep.stdout()
    assert "run the same command again" in sweep.last_line()

    again = start("sweep.py", f"sweep={source}", f"sweep.dir={study_dir}", cwd=tmp_path)
    assert again.finish() == 0, again.stderr()[-3000:]
    assert "2 of 2 trials finished" in again.stdout()


def test_cross_validation_stopped_in_fold_1_exits_130_and_says_how_to_go_on(tmp_path, start):
    run_dir = tmp_path / "cv"
    cv = start(
        "train.py",
        *replaced(RUN, "trainer.max_epochs=2", "cv.folds=2"),
        "+callbacks.hold._target_=stop_points.HoldMidEpoch",
        "+callbacks.hold.folder=fold_1",
        f"hydra.run.dir={run_dir}",
        cwd=tmp_path,
    )
    cv.wait_for(run_dir / "fold_1" / "stop_here.1")
    cv.signal(signal.SIGINT)
    line = assert_stopped_cleanly(cv, INTERRUPTED_EXIT_CODE, signal.SIGINT)
    assert "run the same command again" in line
    assert len(line.splitlines()) == 1 and not (run_dir / "error.txt").exists()
    report = json.loads((run_dir / "cv_report.json").read_text())
    assert report["status"] == "interrupted" and report["folds_completed"] == 1
    assert "SIGINT" in report["error"]
