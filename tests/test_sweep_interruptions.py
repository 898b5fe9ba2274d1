"""Nothing lost: a killed, interrupted or stopped sweep resumes to exactly n_trials; a broken trial never ends it."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import FrozenTrial, TrialState

from conftest import FAKE_FAST, HELPERS, REPO
from sweeplab.cli.sweep import run as sweep_command
from sweeplab.errors import INTERRUPTED_EXIT_CODE, TERMINATED_EXIT_CODE
from sweeplab.sweeps.interrupts import RESUME_HINT, InterruptOnce
from sweeplab.sweeps.liveness import this_worker, worker_is_gone
from sweeplab.sweeps.settings import load_settings
from sweeplab.sweeps.study import FINISHED, open_study, places_left

HEARTBEAT_S = 2
BASE = FAKE_FAST + ["model=mlp", "evaluate_test=false"]
LR_RANGE = {"optimizer.lr": {"type": "float", "low": 1e-3, "high": 0.1, "log": True}}


def write_sweep(folder: Path, **settings) -> Path:
    content = {
        "overrides": BASE,
        "space": LR_RANGE,
        "sampler": {"name": "random", "seed": 0},
        "pruner": {"name": "none"},
        "heartbeat_s": HEARTBEAT_S,
        **settings,
    }
    path = folder / "sweep_file.yaml"
    path.write_text(yaml.safe_dump(content, sort_keys=False))
    return path


def trials_of(study_dir: Path) -> list[FrozenTrial]:
    storage = f"sqlite:///{study_dir / 'study.db'}"
    return optuna.load_study(study_name="sweep_file", storage=storage).get_trials()


def in_state(trials: list[FrozenTrial], *states: TrialState) -> list[FrozenTrial]:
    return [t for t in trials if t.state in states]


class SweepProcess:
    """``python sweep.py ...`` in its own process group, its output in files (a full pipe would block it)."""

    def __init__(self, source: Path, study_dir: Path, log_name: str, *extra: str) -> None:
        self.out, self.err = study_dir.parent / f"{log_name}.out", study_dir.parent / f"{log_name}.err"
        env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "OMP_NUM_THREADS": "1",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(HELPERS), os.environ.get("PYTHONPATH")])),
        }
        with open(self.out, "w") as out, open(self.err, "w") as err:
            self.process = subprocess.Popen(
                [sys.executable, str(REPO / "sweep.py"), f"sweep={source}", f"sweep.dir={study_dir}", *extra],
                cwd=study_dir.parent,
                env=env,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )

    def wait_until(self, condition: Callable[[], bool], what: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            ended = self.process.poll()
            assert ended is None, f"sweep ended (exit {ended}) before {what}:\n{self.stderr()[-3000:]}"
            assert time.monotonic() < deadline, f"no {what} after {timeout}s:\n{self.stderr()[-3000:]}"
            time.sleep(0.05)

    def finish(self, timeout: float = 300) -> int:
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            raise

    def stdout(self) -> str:
        return self.out.read_text()

    def stderr(self) -> str:
        return self.err.read_text()

    def kill_if_running(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


@pytest.fixture
def launch():
    """Start ``sweep.py`` processes; any still running when the test ends (a failed test) are killed."""
    launched: list[SweepProcess] = []

    def start(source: Path, study_dir: Path, log_name: str, *extra: str) -> SweepProcess:
        launched.append(SweepProcess(source, study_dir, log_name, *extra))
        return launched[-1]

    yield start
    for sweep in launched:
        sweep.kill_if_running()


def started(study_dir: Path, number: int) -> Callable[[], bool]:
    """True once trial ``number`` runs: its config is written when it starts."""
    return (study_dir / f"trial_{number:04d}" / ".hydra" / "config.yaml").is_file


def training(study_dir: Path, number: int) -> Callable[[], bool]:
    """True once trial ``number`` trains: ``fit`` writes the model summary just before ``trainer.fit``."""
    return (study_dir / f"trial_{number:04d}" / "model_summary.txt").is_file


def assert_no_process_left(group: int, timeout: float = 10) -> None:
    """No process of the sweep's group is left (multiprocessing's resource tracker takes a moment to end)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.killpg(group, signal.SIGKILL)
    pytest.fail(f"processes of the sweep's group {group} were still running {timeout}s after it ended")


def assert_n_finished_in_their_own_folders(study_dir: Path, n_trials: int) -> list[FrozenTrial]:
    trials = trials_of(study_dir)
    finished = in_state(trials, *FINISHED)
    assert len(finished) == n_trials
    assert not in_state(trials, TrialState.RUNNING, TrialState.WAITING)
    folders = [Path(t.user_attrs["dir"]) for t in finished]
    assert len(set(folders)) == n_trials
    for trial, folder in zip(finished, folders, strict=True):
        assert folder == study_dir / f"trial_{folder_number(trial):04d}"
        assert json.loads((folder / "results.json").read_text())["status"] in ("completed", "pruned")
    started_trials = {f"trial_{folder_number(t):04d}" for t in trials if t.datetime_start is not None}
    assert {p.name for p in study_dir.glob("trial_*")} == started_trials  # one folder per trial that ran, no other
    return trials


def folder_number(trial: FrozenTrial) -> int:
    """The number in a trial's folder name: a retried trial goes on in its original's folder."""
    return trial.system_attrs.get("failed_trial", trial.number)


def retry_of(trials: list[FrozenTrial], original: FrozenTrial) -> FrozenTrial:
    retries = [t for t in trials if t.system_attrs.get("failed_trial") == original.number]
    assert len(retries) == 1, f"trial {original.number} retried {len(retries)} times"
    assert retries[0].params == original.params and retries[0].number > original.number
    return retries[0]


# --- kill -9, Ctrl-C, SIGTERM ---------------------------------------------------------------
def test_the_first_stop_signal_interrupts_and_repeats_are_ignored():
    handler = InterruptOnce()
    with pytest.raises(KeyboardInterrupt, match="stopped by SIGTERM"):
        handler(signal.SIGTERM, None)
    assert handler(signal.SIGINT, None) is None and handler(signal.SIGTERM, None) is None
    assert handler.received == "SIGTERM"


def test_a_sweep_killed_during_a_trial_resumes_at_once_to_exactly_n_trials(tmp_path, launch):
    # the sweep kills itself (SIGKILL) as trial 2 starts its second epoch: no race, no waiting for heartbeats
    kill = [
        "+callbacks.kill._target_=kill_after_epoch.KillAfterEpoch",
        "+callbacks.kill.epoch=1",
        "+callbacks.kill.folder=trial_0002",
        "+callbacks.kill.once=true",
    ]  # its retry resumes in trial_0002
    source, study_dir = write_sweep(tmp_path, n_trials=6, overrides=BASE + kill), tmp_path / "study"
    first = launch(source, study_dir, "first")
    assert first.finish() == -signal.SIGKILL
    killed = in_state(trials_of(study_dir), TrialState.RUNNING)
    assert [t.number for t in killed] == [2]
    assert len(in_state(trials_of(study_dir), *FINISHED)) == 2

    again = launch(source, study_dir, "again")  # at once: the dead worker's process id is gone
    assert again.finish() == 0, again.stderr()[-3000:]
    assert "6 of 6 trials finished" in again.stdout()
    trials = assert_n_finished_in_their_own_folders(study_dir, 6)
    dead = next(t for t in trials if t.number == 2)
    assert dead.state == TrialState.FAIL
    retry = retry_of(trials, dead)
    assert retry.state in FINISHED and retry.user_attrs["dir"] == str(study_dir / "trial_0002")
    assert retry.user_attrs["resumed_from_epoch"] == 1  # its original's last checkpoint held epoch 1
    assert [t.number for t in in_state(trials, TrialState.FAIL)] == [2]


def test_ctrl_c_and_sigterm_stop_cleanly_and_the_same_command_completes_the_study(tmp_path, launch):
    source, study_dir = write_sweep(tmp_path, n_trials=3), tmp_path / "study"
    ctrl_c = launch(source, study_dir, "ctrl_c")
    ctrl_c.wait_until(training(study_dir, 1), "trial 1")
    os.killpg(ctrl_c.process.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
    assert ctrl_c.finish() == INTERRUPTED_EXIT_CODE, ctrl_c.stderr()[-3000:]
    assert ctrl_c.stderr().strip().splitlines()[-1] == RESUME_HINT
    assert "Traceback" not in ctrl_c.stderr()  # a stop is no crash
    trials = trials_of(study_dir)
    interrupted = next(t for t in trials if t.number == 1)
    assert interrupted.state == TrialState.FAIL and interrupted.user_attrs["status"] == "interrupted"
    assert "SIGINT" in interrupted.user_attrs["error"]
    assert json.loads((study_dir / "trial_0001" / "results.json").read_text())["status"] == "interrupted"
    retry = retry_of(trials, interrupted)
    assert retry.state == TrialState.WAITING and retry.number == 2

    summary = study_dir / "trial_0001" / "model_summary.txt"  # the retry trains in its original's folder
    first_attempt = summary.stat().st_mtime_ns
    sigterm = launch(source, study_dir, "sigterm")
    sigterm.wait_until(lambda: summary.stat().st_mtime_ns != first_attempt, "the retry of trial 1")
    os.kill(sigterm.process.pid, signal.SIGTERM)  # to the process only, as `kill PID` does
    assert sigterm.finish() == TERMINATED_EXIT_CODE, sigterm.stderr()[-3000:]  # 128 + SIGTERM
    assert sigterm.stderr().strip().splitlines()[-1] == RESUME_HINT
    stopped = next(t for t in trials_of(study_dir) if t.number == 2)
    assert stopped.state == TrialState.FAIL and "SIGTERM" in stopped.user_attrs["error"]

    resumed = launch(source, study_dir, "resumed")
    assert resumed.finish() == 0, resumed.stderr()[-3000:]
    assert "3 of 3 trials finished" in resumed.stdout()
    trials = assert_n_finished_in_their_own_folders(study_dir, 3)
    assert [t.number for t in in_state(trials, TrialState.FAIL)] == [1, 2]
    assert_no_process_left(resumed.process.pid)


@pytest.mark.slow  # two spawned workers: ~30 s more on two cores
def test_sigterm_to_the_main_process_stops_its_workers_too(tmp_path, launch):
    source, study_dir = write_sweep(tmp_path, n_trials=4), tmp_path / "study"
    sweep = launch(source, study_dir, "workers", "sweep.workers=2")
    sweep.wait_until(lambda: training(study_dir, 0)() and training(study_dir, 1)(), "two trials training")
    os.kill(sweep.process.pid, signal.SIGTERM)
    assert sweep.finish(timeout=120) == TERMINATED_EXIT_CODE, sweep.stderr()[-3000:]
    assert RESUME_HINT in sweep.stderr()
    assert_no_process_left(sweep.process.pid)
    trials = trials_of(study_dir)
    assert not in_state(trials, TrialState.RUNNING)
    stopped = in_state(trials, TrialState.FAIL)
    assert stopped and all("SIGTERM" in t.user_attrs["error"] for t in stopped)
    assert len(in_state(trials, TrialState.WAITING)) == len(stopped)  # each queued to run again


def _a_dead_worker() -> str:
    """The identity of a worker process of this host that has ended."""
    child = subprocess.run(
        [sys.executable, "-c", "from sweeplab.sweeps.liveness import this_worker; print(this_worker())"],
        capture_output=True,
        text=True,
        check=True,
    )
    return child.stdout.strip()


def test_opening_the_study_fails_a_dead_workers_trial_at_once_and_queues_its_retry(tmp_path):
    settings = load_settings(write_sweep(tmp_path, n_trials=2))
    url = f"sqlite:///{tmp_path / 'study.db'}"
    study = open_study(settings, url)
    study.tell(study.ask(), 0.5)
    alive, dead = study.ask(), study.ask()
    alive.set_user_attr("worker", this_worker())  # this process: still running its trial
    dead.set_user_attr("worker", _a_dead_worker())
    assert places_left(study, settings.n_trials) == 0  # both running trials hold a place
    reopened = open_study(settings, url)
    trials = reopened.get_trials()
    assert trials[dead.number].state == TrialState.FAIL and trials[alive.number].state == TrialState.RUNNING
    assert [t.state for t in trials if t.system_attrs.get("failed_trial") == dead.number] == [TrialState.WAITING]
    assert places_left(reopened, settings.n_trials) == 0  # the alive trial and the one finished


def test_a_worker_is_gone_only_when_its_process_of_this_host_is():
    assert not worker_is_gone(this_worker())
    assert worker_is_gone(_a_dead_worker())
    assert not worker_is_gone("some-other-host:1:0")  # left to the heartbeat
    host, pid, _ = this_worker().split(":")
    assert worker_is_gone(f"{host}:{pid}:1")  # this process id, but another process's start time: reused


# --- trials that break -----------------------------------------------------------------------
def test_a_diverging_trial_fails_with_its_reason_and_the_sweep_completes(tmp_path):
    space = {"optimizer.lr": {"type": "categorical", "choices": [1e6, 0.01]}}
    seeded = {"name": "random", "seed": 3}  # its first pick is 1e6, then 0.01 twice (Optuna 5's RandomSampler)
    source = write_sweep(
        tmp_path, overrides=BASE + ["optimizer=sgd"], space=space, sampler=seeded, n_trials=2, max_failures=10
    )
    study_dir = tmp_path / "study"
    assert sweep_command([f"sweep={source}", f"sweep.dir={study_dir}"]) == 0
    trials = assert_n_finished_in_their_own_folders(study_dir, 2)
    diverged = in_state(trials, TrialState.FAIL)
    assert diverged, "the seeded sampler is expected to try lr=1e6 (choose another seed if Optuna's changed)"
    assert {t.params["optimizer.lr"] for t in diverged} == {1e6}
    assert {t.params["optimizer.lr"] for t in in_state(trials, TrialState.COMPLETE)} == {0.01}
    rows = {int(row["number"]): row for row in csv.DictReader((study_dir / "trials.csv").read_text().splitlines())}
    for trial in diverged:
        assert trial.user_attrs["status"] == "diverged" and "training loss became" in trial.user_attrs["error"]
        results = json.loads((study_dir / f"trial_{trial.number:04d}" / "results.json").read_text())
        assert results["status"] == "diverged" and results["epochs_run"] == 0  # stopped inside the first epoch
        assert results["error"] in trial.user_attrs["error"]
        assert rows[trial.number]["state"] == "FAIL" and rows[trial.number]["status"] == "diverged"
        assert "training loss became" in rows[trial.number]["error"]


FAULTY_CALLBACK = '''
from pathlib import Path

from lightning.pytorch.callbacks import Callback


class FailOnce(Callback):
    """Raise when training first starts; the marker file lets later trials train."""

    def __init__(self, marker: str) -> None:
        self.marker = Path(marker)

    def on_train_start(self, trainer, pl_module) -> None:
        if not self.marker.exists():
            self.marker.touch()
            raise RuntimeError("deliberate failure as training starts")
'''


def test_an_exception_in_one_trial_keeps_its_traceback_and_the_sweep_goes_on(tmp_path, monkeypatch):
    (tmp_path / "faulty_callbacks.py").write_text(FAULTY_CALLBACK)
    monkeypatch.syspath_prepend(str(tmp_path))
    breaking = [
        "+callbacks.faulty._target_=faulty_callbacks.FailOnce",
        f"+callbacks.faulty.marker={tmp_path / 'failed_once'}",
    ]
    source = write_sweep(tmp_path, overrides=BASE + breaking, n_trials=2)
    study_dir = tmp_path / "study"
    assert sweep_command([f"sweep={source}", f"sweep.dir={study_dir}"]) == 0
    trials = assert_n_finished_in_their_own_folders(study_dir, 2)
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.COMPLETE, TrialState.COMPLETE]
    failed = trials[0]
    assert failed.user_attrs["status"] == "failed"
    assert "deliberate failure as training starts" in failed.user_attrs["error"]
    traceback = (study_dir / "trial_0000" / "error.txt").read_text()
    assert traceback.startswith("Traceback (most recent call last):")
    assert "faulty_callbacks.py" in traceback and "RuntimeError: deliberate failure as training starts" in traceback
    assert traceback.strip().splitlines()[-1] in failed.user_attrs["error"]
    results = json.loads((study_dir / "trial_0000" / "results.json").read_text())
    assert results["status"] == "failed" and results["test_acc"] is None  # nothing claims success
    assert "2 complete, 0 pruned, 1 failed" in (study_dir / "report.md").read_text()
