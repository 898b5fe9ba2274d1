"""`python sweep.py sweep=NAME [sweep.KEY=VALUE ...] [training overrides]`: run an Optuna study.

``sweep=NAME`` picks ``sweeps/NAME.yaml`` (or a path to a YAML file);
``sweep.KEY=VALUE`` changes a sweep setting (``conf/sweep/default.yaml`` lists
them); every other argument is a training override, as for train.py, applied to
every trial. Running the same command again resumes the study; Ctrl-C or SIGTERM
stop it cleanly (the running trial is recorded as failed and queued to run again).
``sweep.launcher=slurm sweep.workers=K`` runs K workers as SLURM jobs (README: Running
on a cluster).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from sweeplab.cli.common import command
from sweeplab.cli.console import configure_console
from sweeplab.config.resolvers import register_resolvers
from sweeplab.errors import INTERRUPTED_EXIT_CODE, UserInputError
from sweeplab.sweeps.interrupts import RESUME_HINT, stop_cleanly_on_signals
from sweeplab.sweeps.settings import find_sweep_file, load_settings

USAGE = "python sweep.py sweep=NAME [sweep.KEY=VALUE ...] [training overrides]"


def split_arguments(argv: Sequence[str]) -> tuple[str | None, list[str], list[str]]:
    """``(sweep name, sweep.KEY=VALUE arguments, training overrides)``."""
    name, sweep_args, training = None, [], []
    for argument in argv:
        if argument.startswith("-"):
            raise UserInputError(f"unknown option {argument!r}; usage: {USAGE}")
        key = argument.split("=", 1)[0]
        if key == "sweep":
            name = argument.split("=", 1)[1] if "=" in argument else None
        elif key.startswith("sweep."):
            sweep_args.append(argument)
        else:
            training.append(argument)
    return name, sweep_args, training


@command
def run(argv: Sequence[str]) -> int:
    """Check the arguments, then run (or resume) the study and write its report; returns the exit status."""
    try:
        name, sweep_args, training_overrides = split_arguments(argv)
        settings = load_settings(find_sweep_file(name), sweep_args)
        from sweeplab.sweeps.plan import plan_sweep  # noqa: PLC0415 (torch and Lightning only once a config composes)

        configure_console(verbose=False)

        plan = plan_sweep(settings, tuple(training_overrides), command_line=tuple(argv))
        from sweeplab.sweeps.session import run_sweep  # noqa: PLC0415

        return run_sweep(plan)
    except KeyboardInterrupt:  # stopped outside the trials: while checking the input or writing the report
        print(RESUME_HINT, file=sys.stderr)
        return INTERRUPTED_EXIT_CODE


def cli() -> None:
    if any(arg in ("-h", "--help") for arg in sys.argv[1:]):
        print(__doc__)
        sys.exit(0)
    register_resolvers()
    stop_cleanly_on_signals()
    sys.exit(run(sys.argv[1:]))
