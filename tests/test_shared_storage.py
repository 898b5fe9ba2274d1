"""Workers that start in the same instant on an empty storage: none crashes creating the study, and the
study ends with exactly ``n_trials`` finished trials (PostgreSQL, Optuna's journal file, SQLite).

Optuna alone loses this race on PostgreSQL (issue #1092: ``UniqueViolation`` while two processes create
the schema); :func:`sweeplab.sweeps.study.creation_lock` makes them take turns.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import subprocess
import sys
import uuid

import optuna
import pytest
import sqlalchemy
from optuna.trial import TrialState
from test_sweep import TRIAL_OVERRIDES, write_sweep_file

from conftest import REPO

WORKERS = 3


@pytest.fixture
def empty_postgres_database(postgres_url):
    """The URL of a new, empty database on the test server (dropped afterwards)."""
    url = postgres_url
    name = f"empty_{uuid.uuid4().hex[:10]}"
    server = sqlalchemy.create_engine(
        sqlalchemy.engine.make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT"
    )
    with server.connect() as connection:
        connection.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
    yield sqlalchemy.engine.make_url(url).set(database=name).render_as_string(hide_password=False)
    with server.connect() as connection:
        connection.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    server.dispose()


def _open_together(storage_urls: list[str], barrier, results) -> None:
    from sweeplab.sweeps.settings import find_sweep_file, load_settings  # noqa: PLC0415 (a spawned process)
    from sweeplab.sweeps.study import open_study  # noqa: PLC0415

    settings = dataclasses.replace(load_settings(find_sweep_file("mnist_lenet")), study_name="together")
    outcomes = []
    for url in storage_urls:
        barrier.wait()  # every process opens this storage in the same instant
        try:
            open_study(settings, url)
            outcomes.append("opened")
        except Exception as error:  # noqa: BLE001 (the test reports what went wrong)
            outcomes.append(f"{type(error).__name__}: {str(error).splitlines()[0]}")
    results.put(outcomes)


def test_workers_opening_an_empty_storage_together_make_one_study(tmp_path, empty_postgres_database):
    """Three processes open each kind of empty storage in the same instant (a barrier before each)."""
    journal = tmp_path / "study.journal"
    urls = [f"journal:///{journal}", f"sqlite:///{tmp_path / 'study.db'}", empty_postgres_database]
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(WORKERS), context.Queue()
    processes = [context.Process(target=_open_together, args=(urls, barrier, results)) for _ in range(WORKERS)]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=300) for _ in processes]
    for process in processes:
        process.join(timeout=60)
    assert outcomes == [["opened"] * len(urls)] * WORKERS
    journal_storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(journal)))
    for storage in (journal_storage, *urls[1:]):
        assert optuna.get_all_study_names(storage) == ["together"]


def _sweep_commands_together(storage_url: str, tmp_path, n_trials: int) -> list[subprocess.CompletedProcess]:
    source = write_sweep_file(tmp_path, n_trials=n_trials, overrides=TRIAL_OVERRIDES + ["evaluate_test=false"])
    command = [
        sys.executable,
        str(REPO / "sweep.py"),
        f"sweep={source}",
        f"sweep.storage={storage_url}",
        f"sweep.dir={tmp_path / 'study'}",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    processes = [
        subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(WORKERS)
    ]
    return [subprocess.CompletedProcess(p.args, p.wait(timeout=900), *p.communicate()) for p in processes]


@pytest.mark.parametrize("kind", ["journal", "postgres"])
def test_three_sweep_commands_started_together_on_an_empty_storage(kind, tmp_path, request):
    url = (
        f"journal:///{tmp_path / 'shared' / 'study.journal'}"
        if kind == "journal"
        else request.getfixturevalue("empty_postgres_database")
    )
    n_trials = 4
    done = _sweep_commands_together(url, tmp_path, n_trials)
    for result in done:
        assert result.returncode == 0, result.stdout[-1000:] + result.stderr[-3000:]
        assert "Traceback" not in result.stderr
    storage = (
        optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(url.removeprefix("journal:///")))
        if kind == "journal"
        else url
    )
    study = optuna.load_study(study_name=optuna.get_all_study_names(storage)[0], storage=storage)
    finished = study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))
    assert len(finished) == n_trials
    assert len({t.user_attrs["dir"] for t in finished}) == n_trials


@pytest.mark.parametrize(
    "damage, words",
    [
        (b"garbage{not json\n", "its last line is not JSON"),
        (b"\x00\x01\x02", "its last line is incomplete"),
        (
            b'{"op_code": 0, "worker_id": "w", "study_name": "a", "directions": [1]}\n{"op_co',
            "its last line is incomplete",
        ),
        (
            b'nope\n{"op_code": 0, "worker_id": "w", "study_name": "a", "directions": [1]}\n',
            "a damaged journal, or not one",
        ),
    ],
)
def test_a_damaged_journal_is_refused_before_anything_is_appended(tmp_path, damage, words):
    from sweeplab.errors import ConfigError
    from sweeplab.sweeps.study import open_storage

    journal = tmp_path / "study.journal"
    journal.write_bytes(damage)
    with pytest.raises(ConfigError, match=words):
        open_storage(f"journal:///{journal}", heartbeat_s=60)
    assert journal.read_bytes() == damage


def test_a_sweep_on_a_damaged_journal_ends_in_one_line(tmp_path):
    journal = tmp_path / "study.journal"
    journal.write_bytes(b"not a journal\n")
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "sweep.py"),
            "sweep=mnist_lenet",
            f"sweep.storage=journal:///{journal}",
            f"sweep.dir={tmp_path / 'study'}",
            "data=fake",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert (
        done.stderr.strip()
        .splitlines()[-1]
        .startswith(f"error: sweep.storage='journal:///{journal}' is invalid: is a damaged journal")
    )
    assert journal.read_bytes() == b"not a journal\n"
