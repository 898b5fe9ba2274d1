"""`python train.py [overrides]`: train one model (or, with -m, one per combination of a grid).

Before Hydra starts anything, :func:`preflight` composes and checks every run the
command will start (each job of a grid), and checks that the output folder can be
written: bad input is refused in one line, with no folder made and no job trained.

A stop signal (:mod:`sweeplab.stops`) ends the command with 128 + its number and one
line saying what to run to resume (:func:`resume_hint`); a stopped grid still writes its
summary, listing the jobs not run.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import os
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from hydra.types import RunMode
from omegaconf import DictConfig

from sweeplab.cli.common import BUG_REPORT_DIR, command, exit_for, user_error_message
from sweeplab.cli.console import configure_console
from sweeplab.cluster import current_job, quiet_missing_accounting, use_allotted_cpus
from sweeplab.config.compose import compose_train
from sweeplab.config.launchers import CLUSTER_LAUNCHERS, missing_launcher, runs_here
from sweeplab.config.locations import CONFIG_DIR, TRAIN_CONFIG
from sweeplab.config.resolvers import register_resolvers
from sweeplab.devices import missing_accelerator
from sweeplab.errors import ConfigError, UserInputError
from sweeplab.stops import SAME_COMMAND_AGAIN, say_how_to_resume, stop_signal_of

log = logging.getLogger(__name__)
NEW_RUN_DIR = "SWEEPLAB_NEW_RUN_DIR"  # set by preflight: whether this command makes the run folder
FOLDER_KEYS = ("hydra.run.dir", "hydra.sweep.dir", "hydra.sweep.subdir", "resume", "ckpt_path")  # a resume sets its own


@dataclass
class Progress:
    """What the command has started so far (the runs of a grid, in order): what a stop says, and a stopped
    grid's summary, are made from it."""

    run_dirs: dict[int, Path] = field(default_factory=dict)  # job number (0 for a single run) -> its folder
    grid_dir: Path | None = None
    sort_by: str = "best_val_acc"  # the multirun summary's
    cross_validates: bool = False


PROGRESS = Progress()


@dataclass(frozen=True)
class Invocation:
    """What the command line asks for: Hydra's own flags, and the overrides."""

    overrides: list[str]
    multirun: bool
    config_dir: str
    config_name: str
    runs_nothing: bool  # --cfg, --info, --help...: Hydra prints and ends


def parse_invocation(argv: list[str]) -> Invocation:
    """Hydra's flags as its own parser reads them (the flags that matter here)."""
    parser = argparse.ArgumentParser(prog="train.py", add_help=False)
    for flags, kwargs in (
        (("-m", "--multirun"), {"action": "store_true"}),
        (("-cp", "--config-path"), {}),
        (("-cn", "--config-name"), {}),
        (("-cd", "--config-dir"), {}),
        (("-c", "--cfg"), {}),
        (("-p", "--package"), {}),
        (("-i", "--info"), {"nargs": "?", "const": "all"}),
        (("-h", "--help"), {"action": "store_true"}),
        (("--hydra-help",), {"action": "store_true"}),
        (("--version",), {"action": "store_true"}),
        (("--resolve",), {"action": "store_true"}),
        (("-sc", "--shell-completion"), {"action": "store_true"}),
        (("-r", "--run"), {"action": "store_true"}),
        (("--experimental-rerun",), {}),
    ):
        parser.add_argument(*flags, **cast(dict[str, Any], kwargs))
    args, overrides = parser.parse_known_args(argv)
    modes = [
        flag
        for flag, given in (
            ("--run", args.run),
            ("--multirun", args.multirun),
            ("--cfg", args.cfg),
            ("--info", args.info),
            ("--shell-completion", args.shell_completion),
        )
        if given
    ]
    if len(modes) > 1:
        raise UserInputError(
            f"{' and '.join(modes)} cannot be given together: only one of --run, --multirun, --cfg, "
            "--info and --shell-completion"
        )
    unknown = [o for o in overrides if o.startswith("-")]
    if unknown:
        raise UserInputError(f"unknown option {unknown[0]!r}; see python train.py --help")
    return Invocation(
        overrides=overrides,
        multirun=args.multirun,
        config_dir=str(Path(args.config_path).resolve()) if args.config_path else CONFIG_DIR,
        config_name=args.config_name or TRAIN_CONFIG,
        runs_nothing=bool(
            args.cfg
            or args.info
            or args.help
            or args.hydra_help
            or args.version
            or args.shell_completion
            or args.experimental_rerun
        ),
    )


def grid_jobs(overrides: list[str]) -> list[list[str]]:
    """The overrides of every job of a ``-m`` grid, as Hydra's basic sweeper forms them."""
    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except HydraException as error:
        raise UserInputError(f"cannot parse the overrides: {str(error).splitlines()[0]}") from None
    choices = []
    for item in parsed:
        key = item.get_key_element()
        if item.is_sweep_override():
            if not item.is_discrete_sweep():
                raise ConfigError(
                    key,
                    item.input_line,
                    "must be a list of values (range and interval sweeps need an Optuna study: python sweep.py)",
                )
            choices.append([f"{key}={value}" for value in item.sweep_string_iterator()])
        else:
            choices.append([cast(str, item.input_line)])  # as typed: a quoted '1' stays a string
    return [list(job) for job in itertools.product(*choices)]


def preflight(invocation: Invocation) -> None:
    """Compose and check every run the command will start; check the output folder can be written."""
    jobs = grid_jobs(invocation.overrides) if invocation.multirun else [invocation.overrides]
    configs = []
    for number, job in enumerate(jobs):
        try:
            configs.append(compose_train(job, config_dir=invocation.config_dir, config_name=invocation.config_name))
        except UserInputError as error:
            raise UserInputError(
                f"job {number} of the grid ({' '.join(job)}): {error}" if invocation.multirun else str(error)
            ) from None
    if invocation.config_dir != CONFIG_DIR:  # a config read from disk (best.yaml) builds only trusted targets
        from sweeplab.config.trust import check_config_dir_targets  # noqa: PLC0415

        check_config_dir_targets(invocation.config_dir, invocation.config_name, jobs[0])
    launcher = check_launcher(invocation)
    if invocation.runs_nothing:
        return
    if runs_here(launcher):  # a cluster's jobs check their own node (run)
        for cfg in configs:
            refuse_missing_accelerator(cfg)
    configure_console(verbose=bool(configs[0].get("verbose", False)))
    from sweeplab.cv.folds import check_cv_settings  # noqa: PLC0415 (composed: now pay for torch and Lightning)
    from sweeplab.runs.checks import check_config  # noqa: PLC0415

    for number, (job, cfg) in enumerate(zip(jobs, configs, strict=True)):
        try:
            check_cv_settings(cfg.get("cv"))
            check_config(cfg, on_this_machine=runs_here(launcher))
        except UserInputError as error:
            raise UserInputError(
                f"job {number} of the grid ({' '.join(job)}): {error}" if invocation.multirun else str(error)
            ) from None
    folder_key = "hydra.sweep.dir" if invocation.multirun else "hydra.run.dir"
    explicit = [o.split("=", 1)[1] for o in invocation.overrides if o.split("=", 1)[0] == folder_key]
    target = Path(explicit[-1]) if explicit else Path(str(configs[0].paths.output_dir))
    check_writable(folder_key if explicit else "paths.output_dir", target, make=not explicit)
    os.environ[NEW_RUN_DIR] = "0" if explicit and target.exists() else "1"


def check_launcher(invocation: Invocation) -> str | None:
    """Compose Hydra's own settings once (``hydra/launcher=...``, ``hydra.launcher.partition=...``: a typo
    is refused in one line), and refuse a cluster launcher that cannot submit from here; returns its name."""
    hydra_overrides = [o for o in invocation.overrides if o.lstrip("+~").startswith(("hydra/", "hydra."))]
    if not hydra_overrides:
        return None
    first_job = grid_jobs(invocation.overrides)[0] if invocation.multirun else invocation.overrides
    composed = compose_train(
        first_job, config_dir=invocation.config_dir, config_name=invocation.config_name, with_hydra=True
    )
    launcher = composed.hydra.runtime.choices.get("hydra/launcher")
    if launcher in CLUSTER_LAUNCHERS:
        if not invocation.multirun and not invocation.runs_nothing:
            raise ConfigError(
                "hydra/launcher", launcher, "launches the jobs of a grid: add -m (python train.py -m ...)"
            )
        reason = missing_launcher(launcher, hydra_plugin=True)
        if reason is not None:
            raise ConfigError("hydra/launcher", launcher, f"cannot submit jobs: {reason}")
        register_cluster_launchers()
        quiet_missing_accounting()
    return launcher


def register_cluster_launchers() -> None:
    """Register sweeplab's launchers with Hydra by hand: Hydra finds plugins by walking the ``hydra_plugins``
    folders, which an editable install (``pip install -e``) does not have."""
    from hydra.core.plugins import Plugins  # noqa: PLC0415

    from hydra_plugins.sweeplab_launchers.launchers import LocalLauncher, SlurmLauncher  # noqa: PLC0415

    for launcher in (SlurmLauncher, LocalLauncher):
        Plugins.instance().register(launcher)


def refuse_missing_accelerator(cfg: DictConfig) -> None:
    """An accelerator this machine does not have is refused before torch or Lightning is even imported."""
    accelerator = cfg.trainer.get("accelerator", "cpu")
    reason = missing_accelerator(accelerator)
    if reason is not None:
        raise ConfigError(
            "trainer.accelerator", accelerator, f"not available here: {reason}; train on the CPU with trainer=cpu"
        )


def check_writable(key: str, folder: Path, *, make: bool) -> None:
    """``folder`` is a folder this process can write into (``make``: made now if it is not there yet,
    else only its nearest existing parent is checked)."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(key, str(folder), f"must be a folder, but {existing} is a file")
    try:
        if make:
            folder.mkdir(parents=True, exist_ok=True)
            existing = folder
    except OSError as error:
        raise ConfigError(key, str(folder), f"cannot be made: {error.strerror}") from None
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(key, str(folder), f"must be a folder you can write: {existing} is not writable")


def run(cfg: DictConfig) -> float | None:
    """One run (or one job of a grid): check what its folder holds, record it, train it."""
    hydra_cfg = cast(DictConfig, HydraConfig.get())  # a DictConfig at run time (HydraConf is its schema)
    run_dir = Path(hydra_cfg.runtime.output_dir)
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    note_progress(cfg, hydra_cfg, run_dir)
    try:
        if current_job() is not None:  # a cluster's job: on its node, with its cores
            use_allotted_cpus()
            refuse_missing_accelerator(cfg)
        return _train(cfg, run_dir, hydra_cfg, folder_is_new=multirun or os.environ.get(NEW_RUN_DIR, "1") == "1")
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as error:  # noqa: BLE001 (Hydra would print its own traceback: the boundary is here)
        if not multirun:
            exit_for(error)
        # one job must not end the grid: it is recorded (results.json, error.txt) and the summary shows it
        from sweeplab.runs.start import record_failed_job  # noqa: PLC0415

        reason = user_error_message(error) or f"{type(error).__name__}: {error}"
        log.error("job %s failed: %s", hydra_cfg.job.num, reason)
        record_failed_job(cfg, run_dir, hydra_cfg, list(hydra_cfg.overrides.task), reason)
        return None


def _train(cfg: DictConfig, run_dir: Path, hydra_cfg: DictConfig, folder_is_new: bool) -> float | None:
    from sweeplab.cv.folds import cross_validates  # noqa: PLC0415 (checked: now pay for torch and Lightning)
    from sweeplab.reports.next_steps import run_next_steps  # noqa: PLC0415
    from sweeplab.runs.folder import RunFolder  # noqa: PLC0415
    from sweeplab.runs.provenance import MULTIRUN, Parent  # noqa: PLC0415
    from sweeplab.runs.results import COMPLETED, EXIT_CODES  # noqa: PLC0415
    from sweeplab.runs.start import starting_run  # noqa: PLC0415

    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    parent = Parent(MULTIRUN, str(Path(hydra_cfg.sweep.dir).resolve()), int(hydra_cfg.job.num)) if multirun else None

    with starting_run(cfg, run_dir, hydra_cfg, list(hydra_cfg.overrides.task), folder_is_new=folder_is_new) as start:
        BUG_REPORT_DIR.append(run_dir)
        if cfg.get("lr_find"):
            from sweeplab.runs.lr_find import find_learning_rate  # noqa: PLC0415

            say_lr_suggestion(find_learning_rate(cfg, run_dir, on_start=start), run_dir)
            return None
        if cross_validates(cfg):
            from sweeplab.cv.crossval import cross_validate  # noqa: PLC0415

            report = cross_validate(cfg, run_dir, on_start=start, parent=parent)
            status, error, score = report["status"], report["error"], report.get("best_val_acc")
        else:
            from sweeplab.runs.fit import fit  # noqa: PLC0415

            results = fit(cfg, run_dir, on_start=start, parent=parent)
            status, error, score = results.status, results.error, results.best_val_acc
    if not multirun and status != COMPLETED:
        print(f"run {status}: {error}", file=sys.stderr)
        sys.exit(EXIT_CODES[status])
    if not multirun:
        # predict.py needs the run's best checkpoint: a cross-validation's folder and a smoke test have none
        print(run_next_steps(run_dir, predicts=RunFolder(run_dir).best_checkpoint.is_file()))
    return score


def say_lr_suggestion(suggestion: float | None, run_dir: Path) -> None:
    from sweeplab.runs.folder import LR_FIND_PNG  # noqa: PLC0415

    if suggestion is None:
        print(
            f"lr_find: no suggestion: the loss did not fall steadily over the range (see {run_dir / LR_FIND_PNG}); "
            "try another model, data.batch_size or optimizer"
        )
    else:
        print(
            f"lr_find: suggested optimizer.lr={suggestion:.3g} (see {run_dir / LR_FIND_PNG}); train with the same "
            f"overrides and optimizer.lr={suggestion:.3g}"
        )


def note_progress(cfg: DictConfig, hydra_cfg: DictConfig, run_dir: Path) -> None:
    """Remember the run (or the grid's job) this command starts now."""
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    PROGRESS.run_dirs[int(hydra_cfg.job.num) if multirun else 0] = run_dir
    from sweeplab.cv.folds import cross_validates  # noqa: PLC0415 (the one switch; a run is starting: numpy is in)

    PROGRESS.cross_validates = cross_validates(cfg)
    if multirun:
        PROGRESS.grid_dir = Path(hydra_cfg.sweep.dir)
        summary = (hydra_cfg.get("callbacks") or {}).get("multirun_summary") or {}
        PROGRESS.sort_by = str(summary.get("sort_by", PROGRESS.sort_by))


def resume_hint(invocation: Invocation, progress: Progress) -> str:
    """What a stopped ``train.py`` says to resume: the exact command(s)."""
    if not progress.run_dirs:
        return f"no run had started: {SAME_COMMAND_AGAIN}"
    if invocation.multirun:
        return _finish_grid_hint(invocation, progress)
    if progress.cross_validates:
        return f"cross-validation starts again from its first fold: {SAME_COMMAND_AGAIN}"
    return f"to resume, run: {_continue_command(invocation, invocation.overrides, progress.run_dirs[0])}"


def _continue_command(invocation: Invocation, overrides: list[str], run_dir: Path, *, started: bool = True) -> str:
    """The command that finishes one run in ``run_dir``: a resume from its last checkpoint, else a new start there."""
    from sweeplab.runs.folder import RunFolder  # noqa: PLC0415

    config = ([] if invocation.config_dir == CONFIG_DIR else ["--config-path", invocation.config_dir]) + (
        [] if invocation.config_name == TRAIN_CONFIG else ["--config-name", invocation.config_name]
    )
    kept = [o for o in overrides if o.split("=", 1)[0].lstrip("+~") not in FOLDER_KEYS]
    resumes = started and RunFolder(run_dir).last_checkpoint.is_file()
    return shlex.join(
        ["python", "train.py", *config, *kept, *(["resume=true"] if resumes else []), f"hydra.run.dir={run_dir}"]
    )


def _finish_grid_hint(invocation: Invocation, progress: Progress) -> str:
    """The jobs of a stopped grid left to run: the interrupted one resumed, the others started in their folders."""
    from sweeplab.runs.folder import RunFolder  # noqa: PLC0415
    from sweeplab.runs.results import COMPLETED, RunResults  # noqa: PLC0415

    jobs = grid_jobs(invocation.overrides)
    grid_dir = progress.grid_dir or Path(".")
    commands = []
    for number, job in enumerate(jobs):
        run_dir = progress.run_dirs.get(number)
        if run_dir is not None:
            try:
                if RunResults.read(RunFolder(run_dir).results).status == COMPLETED:
                    continue
            except UserInputError:
                pass
        commands.append(
            _continue_command(invocation, job, run_dir or grid_dir / str(number), started=run_dir is not None)
        )
    if not commands:
        return f"every job had ended; the summary: {grid_dir / 'summary.md'}"
    completed = len(jobs) - len(commands)
    return f"{completed} of {len(jobs)} jobs completed; to finish the grid, run: {' && '.join(commands)}"


def write_stopped_grid_summary(invocation: Invocation, progress: Progress) -> None:
    """A stopped grid's summary: the jobs that ran (the interrupted one with them), and the jobs not run."""
    if progress.grid_dir is None:
        return
    from sweeplab.reports.multirun_summary import write_summary  # noqa: PLC0415

    not_run = {
        number: [o for o in job if o.split("=", 1)[0] not in FOLDER_KEYS]
        for number, job in enumerate(grid_jobs(invocation.overrides))
        if number not in progress.run_dirs
    }
    try:
        write_summary(progress.grid_dir, progress.sort_by, not_run=not_run)
    except OSError as error:  # the stop is what the command reports
        log.error("no summary of the stopped grid: %s", error)


@hydra.main(config_path=CONFIG_DIR, config_name=TRAIN_CONFIG, version_base="1.3")
def main(cfg: DictConfig) -> float | None:
    return run(cfg)


@command
def cli() -> None:
    """The entry point of train.py."""
    register_resolvers()
    invocation = parse_invocation(sys.argv[1:])
    if invocation.config_dir != CONFIG_DIR:  # Hydra would read a relative --config-path from this package
        sys.argv[1:] = [a for a in _with_absolute_config_path(sys.argv[1:], invocation.config_dir)]
    try:
        preflight(invocation)
        main()
    except BaseException as error:
        if stop_signal_of(error) is not None:  # the boundary ends the command; say first how to resume
            if invocation.multirun:
                write_stopped_grid_summary(invocation, PROGRESS)
            say_how_to_resume(resume_hint(invocation, PROGRESS))
        raise


def _with_absolute_config_path(argv: list[str], config_dir: str) -> list[str]:
    fixed, skip = [], False
    for i, arg in enumerate(argv):
        if skip:
            skip = False
            continue
        if arg in ("--config-path", "-cp") and i + 1 < len(argv):
            fixed += [arg, config_dir]
            skip = True
        elif arg.startswith(("--config-path=", "-cp=")):
            fixed.append(f"{arg.split('=', 1)[0]}={config_dir}")
        else:
            fixed.append(arg)
    return fixed
