"""The cluster path on a real SLURM cluster: a grid as SLURM jobs, a study's workers as SLURM jobs,
and a job requeued after its first epoch that ends as an uninterrupted one.

``.ci/run`` starts a one-node cluster (``make slurm-up``); elsewhere the SLURM tests are
skipped when no cluster answers, except on CI (``CI`` set), where that is an error.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from conftest import REPO, run_cli
from sweeplab.cluster import current_job, submitit_parameters
from sweeplab.config.launchers import missing_launcher

MARKER = "waiting_for_requeue"  # tests/helpers/wait_for_requeue.py writes it

SMALL = [
    "data=fake",
    "data.num_samples=256",
    "data.num_test_samples=64",
    "data.batch_size=32",
    "logger=csv",
    "progress_bar=false",
]
# dropout and a step schedule: a resume that restored less than everything would end elsewhere
RESUMABLE = [
    *SMALL,
    "data.noise=4",
    "model=mlp",
    "model.dropout=0.3",
    "optimizer=sgd",
    "optimizer.lr=0.05",
    "scheduler=step",
    "scheduler.step_size=1",
    "scheduler.gamma=0.7",
    "trainer.max_epochs=3",
    "seed=7",
]
DEADLINE_S = 600


def cluster_answers() -> bool:
    if shutil.which("sbatch") is None:
        return False
    ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True)
    return ping.returncode == 0 and "UP" in ping.stdout


@pytest.fixture
def slurm():
    if not cluster_answers():
        if os.environ.get("CI"):
            pytest.fail("CI must provide a SLURM cluster (.ci/run starts one with make slurm-up)")
        pytest.skip("no SLURM cluster answers here (make slurm-up starts one)")


def results_of(folder: Path) -> dict:
    return json.loads((folder / "results.json").read_text())


def test_the_job_is_read_from_slurms_variables():
    job = current_job(
        {
            "SLURM_JOB_ID": "41",
            "SLURM_ARRAY_JOB_ID": "40",
            "SLURM_ARRAY_TASK_ID": "1",
            "SLURM_RESTART_COUNT": "2",
            "SLURMD_NODENAME": "n7",
            "SLURM_CPUS_PER_TASK": "4",
        }
    )
    assert job.id == "40_1" and job.restarts == 2 and job.requeued and job.node == "n7" and job.cpus == 4
    assert current_job({"SLURM_JOB_ID": "9"}).to_dict() == {
        "scheduler": "slurm",
        "id": "9",
        "restarts": 0,
        "node": None,
        "cpus": None,
    }
    assert current_job({}) is None


def test_a_machine_without_sbatch_is_told_so(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert "sbatch is not installed here" in missing_launcher("slurm", hydra_plugin=True)
    assert "make slurm-up" in missing_launcher("slurm", hydra_plugin=False)
    assert missing_launcher("slurm_local", hydra_plugin=True) is None  # submitit's local executor needs no SLURM


def test_sweep_cluster_settings_become_submitits_parameters():
    cluster = {
        "partition": "gpu",
        "timeout_min": 30,
        "max_num_timeout": 3,
        "cpus_per_task": 2,
        "gpus_per_node": 1,
        "mem_gb": None,
        "additional_parameters": {"account": "lab"},
        "setup": [],
    }
    assert submitit_parameters({**cluster, "name": "sweep-x"}, "slurm") == {
        "slurm_partition": "gpu",
        "timeout_min": 30,
        "cpus_per_task": 2,
        "gpus_per_node": 1,
        "slurm_additional_parameters": {"account": "lab"},
        "name": "sweep-x",
    }
    assert submitit_parameters({**cluster, "name": "sweep-x"}, "local") == {
        "timeout_min": 30,
        "cpus_per_task": 2,
        "gpus_per_node": 1,
        "name": "sweep-x",
    }


def test_a_grid_through_submitits_local_executor(tmp_path):
    """hydra/launcher=slurm_local: the cluster path without a cluster, the same folders and summary."""
    root = tmp_path / "grid"
    done = run_cli(
        "train.py",
        "-m",
        "hydra/launcher=slurm_local",
        "optimizer=sgd,adam",
        *SMALL,
        "trainer.max_epochs=1",
        f"hydra.sweep.dir={root}",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [results_of(root / str(number)) for number in (0, 1)]
    assert [r["hparams"]["optimizer"] for r in rows] == ["SGD", "Adam"]  # the classes, in job order
    assert all(r["status"] == "completed" and r["job"] is None for r in rows)  # no SLURM job around them
    assert "| sgd" in (root / "summary.md").read_text() and "| adam" in (root / "summary.md").read_text()


def test_a_grid_runs_as_slurm_jobs_with_a_summary(slurm, tmp_path):
    root = tmp_path / "grid"
    done = run_cli(
        "train.py",
        "-m",
        "hydra/launcher=slurm",
        "optimizer=sgd,adam,adamw",
        *SMALL,
        "trainer.max_epochs=1",
        f"hydra.sweep.dir={root}",
        cwd=tmp_path,
        timeout=DEADLINE_S,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    rows = [results_of(root / str(number)) for number in range(3)]
    assert [r["hparams"]["optimizer"] for r in rows] == ["SGD", "Adam", "AdamW"]
    assert all(r["status"] == "completed" and r["test_size"] == 64 for r in rows)
    job_ids = [r["job"]["id"] for r in rows]
    assert len(set(job_ids)) == 3 and all(r["job"]["scheduler"] == "slurm" for r in rows)
    assert {path.name for path in (root / ".submitit").iterdir()} >= set(job_ids)  # each job's own log folder
    summary = (root / "summary.md").read_text()
    assert summary.count("| completed") == 3 and all(f"| {name} " in summary for name in ("sgd", "adam", "adamw"))
    assert "Bypassing sacct error" not in done.stdout + done.stderr  # said once, in sweeplab's words


def _wait_for(condition, what: str, timeout_s: float = DEADLINE_S, process: subprocess.Popen | None = None):
    """Poll ``condition`` until it holds; fail saying ``what`` did not happen (or that ``process`` ended)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if process is not None and process.poll() is not None:
            pytest.fail(f"the command ended ({process.returncode}) before {what}: {process.stderr.read()[-3000:]}")
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


def _run_holding_a_job(command: list[str], cwd: Path, marker: Path, act) -> tuple[subprocess.Popen, str, str, str]:
    """Run ``command`` (tests/helpers importable) until a job writes ``marker`` (WaitForRequeue), call
    ``act(job id)``, and let the command end; returns the process, the job id, stdout and stderr."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO / "tests" / "helpers"), os.environ.get("PYTHONPATH", "")]),
    }
    with subprocess.Popen(
        command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        job_id = _wait_for(
            lambda: marker.is_file() and marker.read_text(), f"{marker.parent.name}'s first epoch", process=process
        )
        act(job_id)
        out, err = process.communicate(timeout=DEADLINE_S)
    return process, job_id, out, err


def _requeue_now(job_id: str) -> None:
    """scontrol requeue, then start the job again at once (SLURM holds a requeued job back for a while)."""
    subprocess.run(["scontrol", "requeue", job_id], check=True)
    _wait_for(lambda: _pending(job_id), "the requeued job to wait for its start")
    subprocess.run(["scontrol", "update", f"jobid={job_id}", "starttime=now"], check=True)


def test_a_requeued_job_resumes_in_its_folder_and_ends_as_an_uninterrupted_one(slurm, tmp_path):
    """Job 0 stops after its first epoch until the test requeues it (scontrol requeue); job 1, the same
    run, is never interrupted. Both end with the same metrics; job 0 in its own folder, restarted once."""
    root = tmp_path / "grid"
    command = [
        sys.executable,
        str(REPO / "train.py"),
        "-m",
        "hydra/launcher=slurm",
        *RESUMABLE,
        "+callbacks.requeue._target_=wait_for_requeue.WaitForRequeue",
        "+callbacks.requeue.epoch=1,99",
        f"hydra.sweep.dir={root}",
    ]

    def requeue(job_id: str) -> None:
        assert (root / "0" / "checkpoints" / "last.ckpt").is_file()  # the epoch it stopped after is saved
        _requeue_now(job_id)

    grid, job_id, out, err = _run_holding_a_job(command, tmp_path, root / "0" / MARKER, requeue)
    assert grid.returncode == 0, out[-2000:] + err[-3000:]
    requeued, uninterrupted = results_of(root / "0"), results_of(root / "1")
    assert requeued["job"]["id"] == job_id and requeued["job"]["restarts"] == 1
    assert requeued["hparams"]["resume"] is True and uninterrupted["hparams"]["resume"] is False  # from last.ckpt
    assert uninterrupted["job"]["restarts"] == 0
    assert requeued["status"] == "completed" and requeued["epochs_run"] == 3
    assert requeued["test_acc"] == uninterrupted["test_acc"] and requeued["test_loss"] == uninterrupted["test_loss"]
    assert [r["val_loss"] for r in requeued["history"]] == [r["val_loss"] for r in uninterrupted["history"]]
    assert [r["lr"] for r in requeued["history"]] == [r["lr"] for r in uninterrupted["history"]]
    assert sorted(p.name for p in root.iterdir() if p.name.isdigit()) == ["0", "1"]  # no second folder
    assert not (root / "0" / "error.txt").exists()  # the interrupted attempt's traceback went with it


def _pending(job_id: str) -> bool:
    state = subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%T"], capture_output=True, text=True).stdout
    return state.strip() == "PENDING"


def test_a_studys_workers_run_as_slurm_jobs_on_a_journal(slurm, tmp_path):
    journal = tmp_path / "shared" / "study.journal"
    done = run_cli(
        "sweep.py",
        "sweep=mnist_lenet",
        "sweep.launcher=slurm",
        "sweep.workers=3",
        "sweep.n_trials=6",
        f"sweep.storage=journal:///{journal}",
        f"sweep.dir={tmp_path / 'study'}",
        *SMALL,
        "trainer.max_epochs=2",
        cwd=tmp_path,
        timeout=DEADLINE_S,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(journal)))
    study = optuna.load_study(study_name="mnist_lenet", storage=storage)
    finished = study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))
    assert len(finished) == 6
    folders = {t.user_attrs["dir"] for t in finished}
    assert len(folders) == 6 and all((Path(folder) / "results.json").is_file() for folder in folders)
    jobs = {t.user_attrs["cluster_job"]["id"] for t in finished}
    assert len(jobs) >= 2  # the trials were shared out between the worker jobs
    assert "6 of 6 trials finished" in done.stdout
    assert (tmp_path / "study" / "report.md").is_file()


def test_a_study_that_does_not_wait_names_its_jobs_and_the_report_command(slurm, tmp_path):
    args = [
        "sweep=mnist_lenet",
        "sweep.launcher=slurm",
        "sweep.wait=false",
        "sweep.n_trials=1",
        f"sweep.dir={tmp_path / 'study'}",
        *SMALL,
        "trainer.max_epochs=1",
    ]
    done = run_cli("sweep.py", *args, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    first = next(line for line in done.stdout.splitlines() if line.startswith("submitted 1 worker jobs: "))
    job_id = first.split(": ")[1]
    try:
        assert f"squeue -j {job_id}" in done.stdout
        assert f"python sweep.py {' '.join(args)} sweep.report_only=true" in done.stdout
        assert (tmp_path / "study" / "study.journal").is_file()  # cluster workers' default storage
    finally:
        subprocess.run(["scancel", job_id], check=False)


def test_a_requeued_worker_finishes_its_trial_and_counts_it_once(slurm, tmp_path):
    """The worker job is requeued in the middle of trial 0: the trial is failed and runs again once,
    and the study ends with exactly n_trials finished trials."""
    study_dir = tmp_path / "study"
    command = [
        sys.executable,
        str(REPO / "sweep.py"),
        "sweep=mnist_lenet",
        "sweep.launcher=slurm",
        "sweep.n_trials=2",
        "sweep.pruner.name=none",
        f"sweep.dir={study_dir}",
        *SMALL,
        "trainer.max_epochs=2",
        "+callbacks.requeue._target_=wait_for_requeue.WaitForRequeue",
        "+callbacks.requeue.epoch=1",
    ]
    sweep, job_id, out, err = _run_holding_a_job(command, tmp_path, study_dir / "trial_0000" / MARKER, _requeue_now)
    assert sweep.returncode == 0, out[-2000:] + err[-3000:]
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(study_dir / "study.journal"))
    )
    trials = optuna.load_study(study_name="mnist_lenet", storage=storage).get_trials()
    finished = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(finished) == 2 and len({t.user_attrs["dir"] for t in finished}) == 2
    interrupted = trials[0]
    assert interrupted.state == TrialState.FAIL and interrupted.user_attrs["status"] == "interrupted"
    retries = [t for t in finished if t.system_attrs.get("failed_trial") == 0]
    assert len(retries) == 1 and retries[0].params == interrupted.params
    assert retries[0].user_attrs["cluster_job"] == {"id": job_id, "restarts": 1}
    assert "2 of 2 trials finished" in out


def test_a_cancelled_job_is_a_row_of_the_summary_and_the_grid_ends(slurm, tmp_path):
    """scancel of one job: no crash and no wait without end (submitit alone cannot tell, without accounting)."""
    root = tmp_path / "grid"
    command = [
        sys.executable,
        str(REPO / "train.py"),
        "-m",
        "hydra/launcher=slurm",
        *RESUMABLE,
        "+callbacks.requeue._target_=wait_for_requeue.WaitForRequeue",
        "+callbacks.requeue.epoch=1,99",
        f"hydra.sweep.dir={root}",
    ]
    grid, job_id, out, err = _run_holding_a_job(
        command, tmp_path, root / "0" / MARKER, lambda job: subprocess.run(["scancel", job], check=True)
    )
    assert grid.returncode == 0, out[-2000:] + err[-3000:]
    assert f"SLURM job {job_id} ended without finishing" in out + err
    assert results_of(root / "0")["status"] == "interrupted" and results_of(root / "1")["status"] == "completed"
    summary = (root / "summary.md").read_text()
    assert "| interrupted" in summary and "| completed" in summary


def test_a_requeued_cross_validation_keeps_its_finished_folds_and_resumes_the_one_it_was_in(slurm, tmp_path):
    """Requeued in fold 1: fold 0 is read back, fold 1 resumes; the report equals an uninterrupted CV run's."""
    root = tmp_path / "grid"
    command = [
        sys.executable,
        str(REPO / "train.py"),
        "-m",
        "hydra/launcher=slurm",
        *RESUMABLE,
        "cv.folds=2",
        "+callbacks.requeue._target_=wait_for_requeue.WaitForRequeue",
        "+callbacks.requeue.epoch=1,99",
        "+callbacks.requeue.folder=fold_1",
        f"hydra.sweep.dir={root}",
    ]
    grid, job_id, out, err = _run_holding_a_job(command, tmp_path, root / "0" / "fold_1" / MARKER, _requeue_now)
    assert grid.returncode == 0, out[-2000:] + err[-3000:]
    reports = [json.loads((root / job / "cv_report.json").read_text()) for job in ("0", "1")]
    assert [r["status"] for r in reports] == ["completed", "completed"]
    requeued, uninterrupted = (
        [(f["run_dir"], f["val_loss"], f["epochs_run"]) for f in r["fold_results"]] for r in reports
    )
    assert requeued == uninterrupted and len(requeued) == 2
    assert results_of(root / "0" / "fold_1")["job"]["restarts"] == 1
    assert results_of(root / "0" / "fold_1")["hparams"]["resume"] is True  # from its checkpoint, not from scratch
    assert results_of(root / "0" / "fold_0")["job"]["restarts"] == 0  # trained once, before the requeue


def test_the_accelerator_is_checked_on_the_jobs_node_not_on_the_login_node(slurm, tmp_path):
    """trainer=gpu is submitted from a machine without a GPU (a login node); the job on a node without one
    is a failed row saying so, in the words train.py uses on that machine."""
    root = tmp_path / "grid"
    done = run_cli(
        "train.py",
        "-m",
        "hydra/launcher=slurm",
        "trainer=gpu",
        "seed=1,2",
        *SMALL,
        "trainer.max_epochs=1",
        f"hydra.sweep.dir={root}",
        cwd=tmp_path,
        timeout=DEADLINE_S,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [results_of(root / str(number)) for number in (0, 1)]
    assert all(
        r["status"] == "failed"
        and "trainer.accelerator='gpu' is invalid: not available here" in r["error"]
        and r["job"]["scheduler"] == "slurm"
        for r in rows
    )
    assert (root / "summary.md").read_text().count("| failed") == 2


@pytest.mark.parametrize(
    "script, args",
    [
        ("train.py", ["-m", "hydra/launcher=slurm", "hydra.launcher.partition=nosuch", "seed=1,2"]),
        ("sweep.py", ["sweep=mnist_lenet", "sweep.launcher=slurm", "sweep.cluster.mem_gb=100000000"]),
    ],
)
def test_jobs_slurm_refuses_are_one_line_in_sbatchs_words(slurm, tmp_path, script, args):
    done = run_cli(script, *args, *SMALL, "trainer.max_epochs=1", cwd=tmp_path)
    assert done.returncode == 2, done.stderr[-3000:]
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: SLURM refused the jobs: sbatch: error:") and "Traceback" not in done.stderr
