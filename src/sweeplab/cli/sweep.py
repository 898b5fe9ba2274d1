"""`python sweep.py sweep=NAME [sweep.KEY=VALUE ...] [training overrides]`: run an Optuna study.

``sweep=NAME`` picks ``sweeps/NAME.yaml`` (or a path to a YAML file);
``sweep.KEY=VALUE`` changes a sweep setting (``conf/sweep/default.yaml`` lists
them; Hydra's override grammar, as for every argument); every other argument is a
training override, as for train.py, applied to every trial (``cv.folds=K`` with
K >= 2 cross-validates each trial). ``--cfg job`` prints the composed settings and
the trials' base training config, and runs nothing. Running the same command again resumes the study; Ctrl-C or SIGTERM
stop it cleanly (the running trial is recorded as failed and queued to run again).
``sweep.launcher=slurm sweep.workers=K`` runs K workers as SLURM jobs (README: Running
on a cluster).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from omegaconf import OmegaConf

from sweeplab.cli.common import command
from sweeplab.cli.console import configure_console
from sweeplab.config.compose import compose_train
from sweeplab.config.resolvers import register_resolvers
from sweeplab.errors import UserInputError
from sweeplab.stops import exit_code_of_stop
from sweeplab.sweeps.interrupts import RESUME_HINT, stop_cleanly_on_signals
from sweeplab.sweeps.settings import compose_settings, find_sweep_file, load_settings

if TYPE_CHECKING:
    from sweeplab.sweeps.plan import SweepPlan

USAGE = "python sweep.py [--cfg job] sweep=NAME [sweep.KEY=VALUE ...] [training overrides]"
SHOW_CONFIG = ("--cfg", "-c")  # as Hydra's flag: the config that would run, and nothing run


def config_request(argv: Sequence[str]) -> tuple[bool, list[str]]:
    """``(whether --cfg job was given, the other arguments)``."""
    rest, show = list(argv), False
    for flag in SHOW_CONFIG:
        if flag in rest:
            at = rest.index(flag)
            value = rest[at + 1] if at + 1 < len(rest) else None
            if value != "job":
                raise UserInputError(
                    f"{flag} {value or ''}: only {flag} job is known (the composed config); usage: {USAGE}".replace(
                        " :", ":"
                    )
                )
            del rest[at : at + 2]
            show = True
    return show, rest


def split_arguments(argv: Sequence[str]) -> tuple[str | None, list[str], list[str]]:
    """``(sweep name, sweep.KEY=VALUE arguments, training overrides)``."""
    name, sweep_args, training = None, [], []
    for argument in argv:
        if argument.startswith("-"):
            raise UserInputError(f"unknown option {argument!r}; usage: {USAGE}")
        key = argument.split("=", 1)[0]
        if key == "sweep":
            name = argument.split("=", 1)[1] if "=" in argument else None
        elif key.lstrip("+~").startswith("sweep."):
            sweep_args.append(argument)
        else:
            training.append(argument)
    return name, sweep_args, training


@command
def run(argv: Sequence[str]) -> int:
    """Check the arguments, then run (or resume) the study and write its report; returns the exit status."""
    try:
        show_config, argv = config_request(argv)
        name, sweep_args, training_overrides = split_arguments(argv)
        settings = load_settings(find_sweep_file(name), sweep_args)
        if show_config:
            print(composed_config_text(find_sweep_file(name), sweep_args, training_overrides))
            return 0
        from sweeplab.sweeps.plan import plan_sweep  # noqa: PLC0415 (torch and Lightning only once a config composes)

        configure_console(verbose=False)

        plan = plan_sweep(settings, tuple(training_overrides), command_line=tuple(argv))
        from sweeplab.sweeps.session import run_sweep  # noqa: PLC0415

        status = run_leaving_no_refused_folder(plan, run_sweep)
        if status == 0 and (plan.settings.launcher == "local" or plan.settings.wait):  # a report was written
            from sweeplab.reports.next_steps import sweep_next_steps  # noqa: PLC0415

            print(sweep_next_steps(plan.study_dir))
        return status
    except KeyboardInterrupt:  # stopped outside the trials: while checking the input or writing the report
        print(RESUME_HINT, file=sys.stderr)
        return exit_code_of_stop()


def composed_config_text(source: Path, sweep_args: Sequence[str], training_overrides: Sequence[str]) -> str:
    """The ``sweep:`` settings as composed, then the training config every trial starts from, as YAML."""
    settings = compose_settings(source, sweep_args)
    base = compose_train([*settings["overrides"], *training_overrides])
    return OmegaConf.to_yaml({"sweep": settings, **cast(dict[str, Any], OmegaConf.to_container(base))})


def cli() -> None:
    if any(arg in ("-h", "--help") for arg in sys.argv[1:]):
        print(__doc__)
        sys.exit(0)
    register_resolvers()
    stop_cleanly_on_signals()
    sys.exit(run(sys.argv[1:]))


def run_leaving_no_refused_folder(plan: SweepPlan, run_sweep: Callable[[SweepPlan], int]) -> int:
    """``run_sweep(plan)``; when it is refused (it raises) before the study wrote anything but its log, the sweep
    folder and the parents this command made are removed again: a refused command leaves no folder it made."""
    made = [folder for folder in [plan.study_dir, *plan.study_dir.parents] if not folder.exists()]
    try:
        return run_sweep(plan)
    except BaseException:
        from sweeplab.sweeps.log_setup import LOG_FILE  # noqa: PLC0415

        if made and plan.study_dir.is_dir() and {p.name for p in plan.study_dir.iterdir()} <= {LOG_FILE}:
            (plan.study_dir / LOG_FILE).unlink(missing_ok=True)
            for folder in made:  # the deepest first
                try:
                    folder.rmdir()
                except OSError:
                    break
        raise
