"""Every command shown in README.md and docs/ runs as shown, checked without training anything.

The commands are collected from the fenced code blocks of the Markdown files: each line that
starts (after an optional ``$ ``) with ``python train.py``, ``python sweep.py``,
``python compare.py``, ``python predict.py``, ``python visualize.py`` or a ``sweeplab-*``
command. ``train.py`` and ``sweep.py`` commands are composed in this process and checked as the
commands check them before their first run (``check_config``, the sweep's plan: settings, space,
bounds); the other commands' arguments are parsed. A command followed in its block by a line
``error: ...`` is shown failing on purpose and must be refused. So a renamed key or option fails
here, not in a reader's terminal.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import REPO
from sweeplab.cli import compare, predict, visualize
from sweeplab.cli.sweep import split_arguments
from sweeplab.cli.train import grid_jobs, parse_invocation
from sweeplab.config.compose import compose_train
from sweeplab.config.locations import CONFIG_DIR
from sweeplab.errors import UserInputError

DOCS = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
FENCE = re.compile(r"^\s*(```|~~~)")
COMMAND = re.compile(
    r"^(?:\$ )?(?P<line>(?:python (?P<script>train|sweep|compare|predict|visualize)\.py"
    r"|sweeplab-(?P<console>train|sweep|compare|predict|visualize))(?:\s.*)?)$"
)
MINIMUM = 40  # the docs show more; fewer means the collection broke


@dataclass(frozen=True)
class DocCommand:
    source: str  # FILE:LINE
    script: str  # train, sweep, compare, predict, visualize
    argv: tuple[str, ...]
    refused: bool  # shown failing: the next line of its block is "error: ..."

    def __str__(self) -> str:
        return f"{self.source}: {self.script} {' '.join(self.argv)}"


def commands_in(path: Path, environment: dict[str, str]) -> list[DocCommand]:
    """The commands of ``path``'s fenced code blocks (continued lines joined, ``$VAR`` expanded)."""
    found, in_block, lines = [], False, path.read_text().splitlines()
    joined: list[tuple[int, str]] = []
    for number, text in enumerate(lines, 1):
        if FENCE.match(text):
            in_block = not in_block
            joined.append((number, "```"))
            continue
        if not in_block:
            continue
        if joined and joined[-1][1].endswith("\\") and joined[-1][1] != "```":
            joined[-1] = (joined[-1][0], joined[-1][1][:-1] + " " + text.strip())
        else:
            joined.append((number, text.strip()))
    for index, (number, text) in enumerate(joined):
        match = COMMAND.match(text)
        if match is None:
            continue
        words = shlex.split(match["line"], comments=True)
        argv = tuple(_expand(word, environment) for word in words[2 if match["script"] else 1 :])
        refused = index + 1 < len(joined) and joined[index + 1][1].startswith("error:")
        where = path.relative_to(REPO) if path.is_relative_to(REPO) else path
        found.append(DocCommand(f"{where}:{number}", match["script"] or match["console"], argv, refused))
    return found


def _expand(word: str, environment: dict[str, str]) -> str:
    return re.sub(r"\$(\w+)", lambda m: environment.get(m[1], m[0]), word)


def collect(environment: dict[str, str]) -> list[DocCommand]:
    return [command for path in DOCS for command in commands_in(path, environment)]


def check_train(argv: tuple[str, ...], checked: dict) -> None:
    """Compose and check every job as ``train.py`` would before its first run (not this machine's
    accelerator: the docs show GPU commands, and the machine running the tests need not have one)."""
    from sweeplab.cv.folds import check_cv_settings
    from sweeplab.runs.checks import check_config

    invocation = parse_invocation(list(argv))
    if invocation.config_dir != CONFIG_DIR:  # a sweep's best.yaml: a file the docs' run made, not here
        return
    jobs = grid_jobs(invocation.overrides) if invocation.multirun else [invocation.overrides]
    if any(o.lstrip("+~").startswith(("hydra/", "hydra.")) for o in invocation.overrides):
        compose_train(jobs[0], with_hydra=True)  # Hydra's own settings: hydra/launcher=..., hydra.launcher.*
    for job in jobs:
        if tuple(job) not in checked:
            cfg = compose_train(job)
            check_cv_settings(cfg.get("cv"))
            check_config(cfg, on_this_machine=False)
            checked[tuple(job)] = True


def check_sweep(argv: tuple[str, ...], monkeypatch) -> None:
    """The sweep's settings, search space, bounds and training overrides, as ``sweep.py`` checks them."""
    import sweeplab.sweeps.settings as sweep_settings
    from sweeplab.sweeps import plan
    from sweeplab.sweeps.settings import find_sweep_file, load_settings

    monkeypatch.setattr(plan, "runs_here", lambda launcher: False)  # as for train: no accelerator check
    monkeypatch.setattr(sweep_settings, "missing_launcher", lambda *_, **__: None)  # nor sbatch (SLURM pages)
    name, sweep_args, training = split_arguments(argv)
    settings = load_settings(find_sweep_file(name), sweep_args)
    plan.plan_sweep(settings, tuple(training), command_line=argv)


PARSERS = {"compare": compare.parser, "predict": predict.parser, "visualize": visualize.parser}


def check_command(command: DocCommand, monkeypatch, checked: dict) -> None:
    if command.script == "train":
        check_train(command.argv, checked)
    elif command.script == "sweep":
        check_sweep(command.argv, monkeypatch)
    else:
        PARSERS[command.script]().parse_args(list(command.argv))


@pytest.fixture
def environment(tmp_path, monkeypatch) -> dict[str, str]:
    monkeypatch.chdir(tmp_path)  # anything a check might write lands here
    (tmp_path / "data").mkdir()
    return {"DATA_DIR": str(tmp_path / "data")}


def test_every_command_in_the_docs_composes_and_passes_the_checks(environment, monkeypatch):
    commands = collect(environment)
    assert len(commands) >= MINIMUM, [str(c) for c in commands]
    assert {c.script for c in commands} >= {"train", "sweep", "compare", "predict", "visualize"}
    failures, checked = [], {}
    for command in commands:
        try:
            check_command(command, monkeypatch, checked)
            outcome = None if not command.refused else "was shown failing, but it is accepted"
        except UserInputError as error:
            outcome = None if command.refused else f"error: {error}"
        except SystemExit as stop:  # argparse refuses with a usage line and exit code 2
            outcome = None if command.refused else f"refused by the argument parser (exit {stop.code})"
        if outcome is not None:
            failures.append(f"{command}\n    {outcome}")
    assert not failures, "\n".join(failures)


def test_a_renamed_key_in_a_doc_command_fails_the_check(tmp_path, environment, monkeypatch):
    page = tmp_path / "page.md"
    page.write_text(
        "```bash\npython train.py optimizer.lr=0.01 data.data_dir=$DATA_DIR\n"
        "python train.py optimizer.learning_rate=0.01 data.data_dir=$DATA_DIR\n```\n"
    )
    good, renamed = commands_in(page, environment)
    check_command(good, monkeypatch, {})
    with pytest.raises(UserInputError, match="optimizer.learning_rate"):
        check_command(renamed, monkeypatch, {})


def test_continued_lines_comments_prompts_and_shown_errors_are_read_as_a_reader_reads_them(tmp_path, environment):
    page = tmp_path / "page.md"
    page.write_text(
        "text `python train.py inline=ignored`\n```text\n$ python train.py model=lenett\n"
        "error: model='lenett' is invalid\n```\n```bash\npython sweep.py sweep=mnist_lenet \\\n"
        "    sweep.n_trials=2   # two trials\npython compare.py RUN_DIR --top 5\n```\n"
    )
    commands = commands_in(page, environment)
    assert [(c.script, c.argv, c.refused) for c in commands] == [
        ("train", ("model=lenett",), True),
        ("sweep", ("sweep=mnist_lenet", "sweep.n_trials=2"), False),
        ("compare", ("RUN_DIR", "--top", "5"), False),
    ]


def test_the_run_folder_reference_names_every_key_of_results_json_and_run_json():
    from sweeplab.runs.provenance import RunProvenance
    from sweeplab.runs.results import RunResults

    page = (REPO / "docs" / "reference" / "run-folder.md").read_text()
    documented = set(re.findall(r"`(\w+)`", page))
    for record in (RunResults, RunProvenance):
        missing = set(record.__dataclass_fields__) - documented
        assert not missing, f"{record.__name__} keys missing from docs/reference/run-folder.md: {sorted(missing)}"


def test_the_docs_use_data_dir_not_the_build_machines_folders():
    for path in DOCS:
        text = path.read_text()
        assert "shared/data" not in text, path
        assert "2-core" not in text, path
