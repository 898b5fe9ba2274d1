"""Where to look next: the last lines of a finished run, grid or sweep.

A command that ends with a figure and nothing else leaves the reader to find the
folder and remember the commands that open it; these lines name both, with paths
the reader can paste (relative to the current folder when the output lies below it).
The wording lives here only, so that train.py, a grid's summary and sweep.py say it alike.
"""

from __future__ import annotations

import shlex
from pathlib import Path


def shown_path(path: Path, cwd: Path | None = None) -> str:
    """``path`` as a reader pastes it: relative to ``cwd`` (default: the current folder) when below it."""
    path = Path(path).absolute()
    here = (cwd or Path.cwd()).absolute()
    try:
        text = str(path.relative_to(here)) or "."
    except ValueError:
        text = str(path)
    return shlex.quote(text)


def _block(heading: str, commands: list[tuple[str, str]]) -> str:
    width = max(len(command) for command, _ in commands)
    return "\n".join([heading, "next:"] + [f"  {command:<{width}}  # {what}" for command, what in commands])


def run_next_steps(run_dir: Path, *, predicts: bool = True, cwd: Path | None = None) -> str:
    """The lines that end a finished run: its folder, then the commands that open it.

    ``predicts=False`` for a run without a model of its own to predict with (a cross-validation's folder).
    """
    run = shown_path(run_dir, cwd)
    commands = [
        (f"tensorboard --logdir {run}", "curves, hyperparameters, images"),
        (f"python compare.py {shown_path(Path(run_dir).parent, cwd)}", "this run beside the others of its folder"),
    ]
    if predicts:
        commands.append((f"python predict.py {run} IMAGES...", "its predictions for your images"))
    return _block(f"run folder: {run}", commands)


def grid_next_steps(grid_dir: Path, *, cwd: Path | None = None) -> str:
    """The lines that end a grid (``train.py -m``): its summary, then the commands that open its runs."""
    grid = shown_path(grid_dir, cwd)
    return _block(
        f"grid folder: {grid} (summary: {shown_path(Path(grid_dir) / 'summary.md', cwd)})",
        [
            (f"tensorboard --logdir {grid}", "every run's curves, the HParams tab compares them"),
            (f"python compare.py {grid} --plot curves.png", "the table, and the runs' validation curves overlaid"),
            (f"python predict.py {shown_path(Path(grid_dir) / '0', cwd)} IMAGES...", "one run's predictions (job 0)"),
        ],
    )


def sweep_next_steps(sweep_dir: Path, *, cwd: Path | None = None) -> str:
    """The lines that end a sweep: its folder, then the commands that open its trials."""
    sweep = shown_path(sweep_dir, cwd)
    return _block(
        f"sweep folder: {sweep}",
        [
            (f"tensorboard --logdir {sweep}", "every trial's curves, the HParams tab compares them"),
            (f"python compare.py {sweep} --top 5", "the best five trials"),
            (
                f"python predict.py {shown_path(Path(sweep_dir) / 'trial_0000', cwd)} IMAGES...",
                "a trial's predictions (any trial_NNNN)",
            ),
        ],
    )
