"""The Optuna study behind a sweep: storage, sampler, pruner, and how many trials it still needs.

The study lives in a storage every worker reaches: by default a SQLite file in the
sweep's folder; any Optuna RDB URL (``postgresql+psycopg2://...``) that workers on
several machines share; or Optuna's journal file (``journal:///PATH``), its answer
for a shared (NFS) filesystem, and the default of ``sweep.launcher=slurm``. Opening
the same study again resumes it; workers that open it in the same instant on an empty
storage take turns creating it (:func:`creation_lock`). ``n_trials`` counts finished
trials (complete + pruned) in total, so a second run only adds the missing ones.
A trial whose worker died is failed and run again once: at once when the worker was
on this host, or its SLURM job has ended or restarted (:mod:`sweeplab.sweeps.liveness`);
else once its heartbeat is two intervals old (RDB storages: Optuna's heartbeat). So is
a trial stopped by Ctrl-C or SIGTERM. Opening the study fails such trials first, so a
resumed sweep does not count a dead trial as running. The retry goes on in the original's
folder from its last checkpoint (:mod:`sweeplab.sweeps.objective`).
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import json
import os
import warnings
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np
import optuna
import sqlalchemy
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from optuna.exceptions import ExperimentalWarning
from optuna.storages import BaseStorage, JournalStorage, RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.storages.journal import JournalFileBackend, JournalFileSymlinkLock
from optuna.trial import FrozenTrial, TrialState

from sweeplab.errors import ConfigError, UserInputError
from sweeplab.redact import redact_text
from sweeplab.runs.build import node_target, refusal
from sweeplab.sweeps.liveness import job_left_it, worker_is_gone
from sweeplab.sweeps.settings import OPTUNA_CLASSES, SweepSettings
from sweeplab.sweeps.trials import FINISHED, TAKEN, count_in, places_left  # noqa: F401 (the trial words live there)

SQLITE_FILE = "study.db"
JOURNAL_FILE = "study.journal"
JOURNAL_SCHEME = "journal:///"  # journal:///ABSOLUTE/PATH (journal:///./relative also works)
SQLITE_LOCK_TIMEOUT_S = 120  # workers wait this long for each other's writes
STALE_AFTER_HEARTBEATS = 2
MAX_RETRIES = 1  # a trial whose worker died, or that was interrupted, runs again once
CONSTRAINTS_ATTR = "sweeplab:constraints"  # the study's sweep.constraints, a user attribute (the dashboard shows it)


def default_storage_url(study_dir: Path, launcher: str = "local") -> str:
    """The study's file in its folder: the one already there, else a journal for cluster workers
    (SQLite locks badly on shared filesystems) and SQLite on this machine."""
    study_dir = study_dir.resolve()
    if (study_dir / JOURNAL_FILE).is_file() or (launcher != "local" and not (study_dir / SQLITE_FILE).is_file()):
        return f"{JOURNAL_SCHEME}{study_dir / JOURNAL_FILE}"
    return f"sqlite:///{study_dir / SQLITE_FILE}"


def journal_path(url: str) -> Path | None:
    """The file of a ``journal:///PATH`` URL, or None for another kind of storage."""
    return Path("/" + url[len(JOURNAL_SCHEME) :]).resolve() if url.startswith(JOURNAL_SCHEME) else None


def storage_file(url: str) -> Path | None:
    """The file a SQLite or journal storage keeps the study in (None for a database server)."""
    if url.startswith(JOURNAL_SCHEME):
        return journal_path(url)
    if url.startswith("sqlite"):
        database = sqlalchemy.engine.make_url(url).database
        return Path(database).resolve() if database and database != ":memory:" else None
    return None


def check_storage_url(url: str) -> None:
    """Refuse a storage URL that names no database SQLAlchemy knows, or whose driver is not installed,
    or a journal file in a folder that is not there (before anything is written: opening the
    storage would make a SQLite file)."""
    journal = journal_path(url)
    if journal is not None:
        existing = journal.parent
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        if journal.is_dir() or not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
            reason = (
                "is a folder"
                if journal.is_dir()
                else f"{existing} is a file"
                if not existing.is_dir()
                else f"{existing} is not writable"
            )
            raise ConfigError("sweep.storage", url, f"must name a file this process can write: {reason}")
        return
    try:
        dialect = sqlalchemy.engine.make_url(url).get_dialect()
        getattr(dialect, "import_dbapi", getattr(dialect, "dbapi", lambda: None))()
    except (sqlalchemy.exc.ArgumentError, sqlalchemy.exc.NoSuchModuleError, ImportError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ConfigError(
            "sweep.storage",
            redact_text(url),
            f"cannot be used: {first_line} (an Optuna RDB URL "
            f"such as postgresql+psycopg2://user:pw@host/db, or {JOURNAL_SCHEME}PATH)",
        ) from None


def open_storage(url: str, heartbeat_s: int) -> BaseStorage:
    """The storage ``url`` names (RDB ones with heartbeats); refuses one it cannot open with one line."""
    journal = journal_path(url)
    try:
        if journal is not None:
            return open_journal(journal, url)
        engine_kwargs: dict[str, Any] = {"pool_pre_ping": True}
        if url.startswith("sqlite"):
            engine_kwargs = {"connect_args": {"timeout": SQLITE_LOCK_TIMEOUT_S}}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExperimentalWarning)  # heartbeats are "experimental" in Optuna 5
            return RDBStorage(
                url,
                engine_kwargs=engine_kwargs,
                heartbeat_interval=heartbeat_s,
                grace_period=STALE_AFTER_HEARTBEATS * heartbeat_s,
                heartbeat_stale_trial_callback=retry_callback(),
            )
    except (sqlalchemy.exc.SQLAlchemyError, ImportError, ValueError, OSError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ConfigError("sweep.storage", redact_text(url), f"cannot be opened: {first_line}") from None


def open_journal(path: Path, url: str) -> JournalStorage:
    """Optuna's journal in ``path``; a damaged file is refused before anything is appended to it.

    Optuna reads every line when it opens the journal, but lets the last one pass when it is
    torn or not JSON (another worker may be writing it), and would then append after it and
    fail later, inside a trial. Read under the journal's lock, with no worker writing, a last
    line that is not a whole JSON line is damage.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = JournalFileSymlinkLock(str(path))  # the writers' own lock: no line is being written meanwhile
    lock.acquire()
    try:
        problem = _last_line_problem(path)
    finally:
        lock.release()
    if problem is not None:
        raise ConfigError(
            "sweep.storage",
            url,
            f"is a damaged journal: its last line {problem}; restore the file or give the study another one",
        )
    try:
        return JournalStorage(JournalFileBackend(str(path)))
    except (ValueError, KeyError, TypeError) as error:  # an earlier line that is not JSON, or not Optuna's
        raise ConfigError(
            "sweep.storage",
            url,
            f"is a damaged journal, or not one: {type(error).__name__}: {(str(error).splitlines() or [''])[0]}",
        ) from None


def _last_line_problem(path: Path) -> str | None:
    if not path.is_file() or path.stat().st_size == 0:
        return None
    with open(path, "rb") as handle:
        handle.seek(max(0, path.stat().st_size - (1 << 20)))  # a journal line is far shorter than a MiB
        last = handle.read().splitlines(keepends=True)[-1]
    if not last.endswith(b"\n"):
        return "is incomplete (a write cut off, or not a journal)"
    try:
        json.loads(last)
    except ValueError:
        return "is not JSON (not a journal Optuna wrote)"
    return None


@contextmanager
def creation_lock(url: str) -> Iterator[None]:
    """Hold the storage's lock while its tables and the study are created, so that workers started in
    the same instant on an empty storage take turns (PostgreSQL: an advisory lock, Optuna issue #1092;
    a SQLite or journal file: an flock on FILE.create-lock beside it). Other databases go without."""
    file = storage_file(url)
    if file is not None:
        with _file_lock(file.with_name(file.name + ".create-lock"), url):  # not Optuna's own journal .lock
            yield
    elif url.startswith("postgresql"):
        with _postgres_advisory_lock(url):
            yield
    else:
        yield


@contextmanager
def _file_lock(path: Path, url: str) -> Iterator[None]:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(path, "a")  # noqa: SIM115 (held for the block)
    except OSError as error:
        raise ConfigError("sweep.storage", url, f"cannot be written: {error.strerror}: {path}") from None
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def _postgres_advisory_lock(url: str) -> Iterator[None]:
    key = int.from_bytes(hashlib.sha256(b"sweeplab study creation").digest()[:8], "big", signed=True)
    try:
        engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
        connection = engine.connect()
    except sqlalchemy.exc.SQLAlchemyError as error:
        raise ConfigError(
            "sweep.storage", redact_text(url), f"cannot be opened: {str(error).splitlines()[0]}"
        ) from None
    try:
        connection.execute(sqlalchemy.text("SELECT pg_advisory_lock(:key)"), {"key": key})
        yield
    finally:
        connection.close()  # ends the session, and with it the lock
        engine.dispose()


def build_sampler(spec: dict[str, Any], seed_parts: tuple[int, ...] = ()) -> optuna.samplers.BaseSampler:
    """The sampler named in ``spec`` with its options.

    A seeded sampler is reseeded from ``(seed, *seed_parts)``: each worker, and each
    resumed session, draws its own random numbers instead of repeating the first
    session's start-up trials, and the whole study stays reproducible.
    """
    given = {key: value for key, value in spec.items() if key != "name"}
    options = dict(given)
    if options.get("seed") is not None:
        options["seed"] = int(np.random.SeedSequence([int(options["seed"]), *seed_parts]).generate_state(1)[0])
    if spec["name"] == "cmaes" and importlib.util.find_spec("cmaes") is None:  # Optuna imports it at the first trial
        raise ConfigError("sweep.sampler.name", "cmaes", "needs the cmaes package: pip install cmaes")
    return _construct("sweep.sampler", OPTUNA_CLASSES["sampler"][spec["name"]], options, given)


def build_pruner(spec: dict[str, Any]) -> optuna.pruners.BasePruner:
    options = {key: value for key, value in spec.items() if key != "name"}
    return _construct("sweep.pruner", OPTUNA_CLASSES["pruner"][spec["name"]], options, options)


def _construct(key: str, node: dict[str, Any], options: dict[str, Any], given: dict[str, Any]) -> Any:
    """``hydra.utils.instantiate`` of ``node`` (conf/sweep/_optuna.yaml) with ``options`` over its defaults; its
    target passes sweeplab's trust rule first, and a refusal names the option at fault as the user gave it
    (``given``: before reseeding)."""
    target = node_target(key, node)  # trusted (a target of conf/), or refused before anything is imported
    arguments = {**{k: v for k, v in node.items() if k != "_target_"}, **options}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExperimentalWarning)
            # not recursive: a _target_ nested in a sweep file's option is data, never built
            return instantiate({"_target_": node["_target_"], **arguments}, _convert_="all", _recursive_=False)
    except InstantiationException as error:
        cause = error.__cause__ or error
        raise refusal(key, target, (), {**arguments, **given}, tuple(given), cause) from None


def open_study(settings: SweepSettings, storage_url: str, *, seed_parts: tuple[int, ...] = ()) -> optuna.Study:
    """Create the study, or load it when it exists (a resumed or shared sweep).

    ``seed_parts`` (the worker's index) and the number of trials already stored
    go into the sampler's seed; see :func:`build_sampler`.
    """
    sampler, pruner = build_sampler(settings.sampler), build_pruner(settings.pruner)  # bad options fail here
    if settings.multi_objective:  # Optuna's pruners follow one objective (Trial.report refuses several)
        pruner = optuna.pruners.NopPruner()
    with creation_lock(storage_url):
        storage = open_storage(storage_url, settings.heartbeat_s)
        try:
            study = _create_or_load(settings, storage, sampler, pruner)
        except sqlalchemy.exc.SQLAlchemyError as error:
            raise ConfigError(
                "sweep.storage", redact_text(storage_url), f"cannot be used: {str(error).splitlines()[0]}"
            ) from None
        check_objectives(study, settings)
        if study.metric_names is None:  # a new study (or an older one): plots and the dashboard show the names
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ExperimentalWarning)
                study.set_metric_names(list(settings.metrics))
        if CONSTRAINTS_ATTR not in study.user_attrs:
            study.set_user_attr(CONSTRAINTS_ATTR, [c.text for c in settings.constraints])
    study.sampler = build_sampler(settings.sampler, (*seed_parts, len(study.get_trials(deepcopy=False))))
    fail_dead_trials(study)
    return study


def _create_or_load(
    settings: SweepSettings,
    storage: BaseStorage,
    sampler: optuna.samplers.BaseSampler,
    pruner: optuna.pruners.BasePruner,
) -> optuna.Study:
    """The stored study, loaded quietly (Optuna's ``load_if_exists`` logs a line before a refusal could), else a
    new one; a database without a creation lock may see another worker create it in between."""

    def load() -> optuna.Study:
        return optuna.load_study(study_name=settings.study_name, storage=storage, sampler=sampler, pruner=pruner)

    try:
        storage.get_study_id_from_name(settings.study_name)
    except KeyError:
        pass
    else:
        return load()
    try:
        return optuna.create_study(
            study_name=settings.study_name,
            storage=storage,
            directions=cast(list[Literal["minimize", "maximize"]], list(settings.directions)),  # checked
            sampler=sampler,
            pruner=pruner,
        )
    except optuna.exceptions.DuplicatedStudyError:
        return load()


def check_objectives(study: optuna.Study, settings: SweepSettings) -> None:
    """Refuse settings whose objectives are not the stored study's: Optuna loads a study with its own directions
    whatever ``create_study`` is given, and would go on scoring the new trials the old way."""
    stored = tuple(direction.name.lower() for direction in study.directions)
    names = study.metric_names
    again = (
        f"; to go on with it give sweep.metric={_listed(names)} sweep.direction={_listed(stored)}"
        if names is not None
        else ""
    ) + ", or give a new study another sweep.dir or sweep.study_name"
    if stored != settings.directions:
        raise ConfigError(
            "sweep.direction",
            _one_or_list(settings.directions),
            f"study {settings.study_name!r} in this storage was created to {_listed(stored)}{again}",
        )
    if names is not None and tuple(names) != settings.metrics:
        raise ConfigError(
            "sweep.metric",
            _one_or_list(settings.metrics),
            f"study {settings.study_name!r} in this storage was created for {_listed(names)}{again}",
        )
    # the trials were judged by the study's constraints: stored with it, else those its trials carry
    trials = study.get_trials(deepcopy=False)
    judged_by = study.user_attrs.get(CONSTRAINTS_ATTR, list(dict.fromkeys(k for t in trials for k in t.constraints)))
    if (trials or CONSTRAINTS_ATTR in study.user_attrs) and list(judged_by) != [c.text for c in settings.constraints]:
        raise ConfigError(
            "sweep.constraints",
            [c.text for c in settings.constraints],
            f"study {settings.study_name!r} in this storage judged its trials by "
            f"{'[' + ','.join(judged_by) + ']' if judged_by else 'no constraints'}; give another "
            "sweep.study_name or sweep.dir to use others",
        )


def _one_or_list(values: tuple[str, ...]) -> str | list[str]:
    return values[0] if len(values) == 1 else list(values)


def _listed(values: Sequence[str]) -> str:
    return values[0] if len(values) == 1 else f"[{','.join(values)}]"


def fail_dead_trials(study: optuna.Study, ended_jobs: Collection[str] = ()) -> None:
    """Fail the running trials whose worker is dead, and queue each to run again once.

    A worker of this host that no longer runs, and a worker whose SLURM job is in
    ``ended_jobs`` or was restarted since, are noticed at once (:mod:`sweeplab.sweeps.liveness`);
    others when their heartbeat is stale (Optuna does this before each trial it starts too).
    Doing it on opening the study keeps a trial killed with ``kill -9`` from holding one of
    the ``n_trials`` places.
    """
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if worker_is_gone(trial.user_attrs.get("worker")) or job_left_it(
            trial.user_attrs.get("cluster_job"), ended_jobs
        ):
            study.tell(trial.number, state=TrialState.FAIL)
            queue_retry(study, trial)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


def queue_retry(study: optuna.Study, trial: FrozenTrial) -> None:
    """Queue ``trial`` to run again with the same parameters, as the heartbeat does for a dead worker's trial.

    The retry is a new trial (its own number) that goes on in the original's folder; Optuna's
    ``RetryHeartbeatStaleTrialCallback.retried_trial_number`` names the original.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        retry_callback()(study, trial)


def retry_callback() -> RetryHeartbeatStaleTrialCallback:
    """Optuna's retry: a new WAITING trial with the same parameters, user attributes and pruning reports
    (``inherit_intermediate_values``), linked to the original; the objective resumes it from the original's
    folder and last checkpoint (:func:`sweeplab.sweeps.objective.retried_trial`)."""
    return RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRIES, inherit_intermediate_values=True)


def load_existing_study(settings: SweepSettings, storage_url: str) -> optuna.Study:
    """The stored study, for reports; refuses a study name the storage does not hold."""
    file = storage_file(storage_url)
    if file is not None and not file.is_file():
        raise UserInputError(f"sweep.storage={storage_url}: no such file; run the sweep before asking for its report")
    storage = open_storage(storage_url, settings.heartbeat_s)
    names = optuna.get_all_study_names(storage)
    if settings.study_name not in names:
        raise UserInputError(
            f"sweep.study_name={settings.study_name!r}: no such study in {redact_text(storage_url)} "
            f"(it holds: {', '.join(names) or 'none'})"
        )
    study = optuna.load_study(study_name=settings.study_name, storage=storage)
    check_objectives(study, settings)
    return study
