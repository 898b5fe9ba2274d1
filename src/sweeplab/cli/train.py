"""`python train.py [overrides]`: train one model (or, with -m, one per combination of a grid).

Before Hydra starts anything, :func:`preflight` composes and checks every run the
command will start (each job of a grid), and checks that the output folder can be
written: bad input is refused in one line, with no folder made and no job trained.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path

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

log = logging.getLogger(__name__)
NEW_RUN_DIR = "SWEEPLAB_NEW_RUN_DIR"  # set by preflight: whether this command makes the run folder


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
        (("-m", "--multirun"), {"action": "store_true"}), (("-cp", "--config-path"), {}),
        (("-cn", "--config-name"), {}), (("-cd", "--config-dir"), {}), (("-c", "--cfg"), {}),
        (("-p", "--package"), {}), (("-i", "--info"), {"nargs": "?", "const": "all"}),
        (("-h", "--help"), {"action": "store_true"}), (("--hydra-help",), {"action": "store_true"}),
        (("--version",), {"action": "store_true"}), (("--resolve",), {"action": "store_true"}),
        (("-sc", "--shell-completion"), {"action": "store_true"}), (("-r", "--run"), {"action": "store_true"}),
        (("--experimental-rerun",), {}),
    ):
        parser.add_argument(*flags, **kwargs)
    args, overrides = parser.parse_known_args(argv)
    modes = [flag for flag, given in (("--run", args.run), ("--multirun", args.multirun), ("--cfg", args.cfg),
                                      ("--info", args.info), ("--shell-completion", args.shell_completion)) if given]
    if len(modes) > 1:
        raise UserInputError(f"{' and '.join(modes)} cannot be given together: only one of --run, --multirun, --cfg, "
                             "--info and --shell-completion")
    unknown = [o for o in overrides if o.startswith("-")]
    if unknown:
        raise UserInputError(f"unknown option {unknown[0]!r}; see python train.py --help")
    return Invocation(
        overrides=overrides, multirun=args.multirun,
        config_dir=str(Path(args.config_path).resolve()) if args.config_path else CONFIG_DIR,
        config_name=args.config_name or TRAIN_CONFIG,
        runs_nothing=bool(args.cfg or args.info or args.help or args.hydra_help or args.version
                          or args.shell_completion or args.experimental_rerun),
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
                raise ConfigError(key, item.input_line, "must be a list of values (range and interval sweeps "
                                  "need an Optuna study: python sweep.py)")
            choices.append([f"{key}={value}" for value in item.sweep_string_iterator()])
        else:
            choices.append([f"{key}={item.get_value_element_as_str()}"])
    return [list(job) for job in itertools.product(*choices)]


def preflight(invocation: Invocation) -> None:
    """Compose and check every run the command will start; check the output folder can be written."""
    jobs = grid_jobs(invocation.overrides) if invocation.multirun else [invocation.overrides]
    configs = []
    for number, job in enumerate(jobs):
        try:
            configs.append(compose_train(job, config_dir=invocation.config_dir, config_name=invocation.config_name))
        except UserInputError as error:
            raise UserInputError(f"job {number} of the grid ({' '.join(job)}): {error}" if invocation.multirun
                                 else str(error)) from None
    launcher = check_launcher(invocation)
    if invocation.runs_nothing:
        return
    if runs_here(launcher):  # a cluster's jobs check their own node (run)
        for cfg in configs:
            refuse_missing_accelerator(cfg)
    configure_console(verbose=bool(configs[0].get("verbose", False)))
    from sweeplab.cv.folds import check_cv_settings  # noqa: PLC0415 (composed: now pay for torch and Lightning)
    from sweeplab.runs.checks import check_config  # noqa: PLC0415

    for number, (job, cfg) in enumerate(zip(jobs, configs)):
        try:
            check_cv_settings(cfg.get("cv"))
            check_config(cfg, on_this_machine=runs_here(launcher))
        except UserInputError as error:
            raise UserInputError(f"job {number} of the grid ({' '.join(job)}): {error}" if invocation.multirun
                                 else str(error)) from None
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
    composed = compose_train(first_job, config_dir=invocation.config_dir, config_name=invocation.config_name,
                             with_hydra=True)
    launcher = composed.hydra.runtime.choices.get("hydra/launcher")
    if launcher in CLUSTER_LAUNCHERS:
        if not invocation.multirun and not invocation.runs_nothing:
            raise ConfigError("hydra/launcher", launcher, "launches the jobs of a grid: add -m (python train.py -m ...)")
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
        raise ConfigError("trainer.accelerator", accelerator, f"not available here: {reason}; train on the CPU with "
                          "trainer=cpu")


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
    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
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
    return score


def say_lr_suggestion(suggestion: float | None, run_dir: Path) -> None:
    from sweeplab.runs.folder import LR_FIND_PNG  # noqa: PLC0415

    if suggestion is None:
        print(f"lr_find: no suggestion: the loss did not fall steadily over the range (see {run_dir / LR_FIND_PNG}); "
              "try another model, data.batch_size or optimizer")
    else:
        print(f"lr_find: suggested optimizer.lr={suggestion:.3g} (see {run_dir / LR_FIND_PNG}); train with the same "
              f"overrides and optimizer.lr={suggestion:.3g}")


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
    preflight(invocation)
    main()


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
