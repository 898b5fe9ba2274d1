"""Where a run came from: the record every run folder keeps beside its results.

``run.json`` (:data:`~sweeplab.runs.folder.RECORD_FILE`) says how the run was started
(the command line, its parent: the sweep and trial, the cross-validation run and
fold, the multirun and job number), on what (host, CPU, GPU, Python, torch, CUDA,
Lightning), with which code (the git commit, a dirty flag, the uncommitted diff as
``code.patch``), on which data (the sha256 of the files read), when (start and
end), and the run's tags and notes. ``environment.txt`` lists every installed
package as ``pip freeze`` would. The record is written when the run starts (a
killed run keeps it) and again with its end; ``record_s`` says what it cost.
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
import platform
import shlex
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from sweeplab.files import write_json_atomic, write_text_atomic
from sweeplab.redact import redact_data, redact_text
from sweeplab.runs.folder import FINGERPRINT_CACHE_DIR, PATCH_FILE, RunFolder
from sweeplab.runs.hparams import NOTES, run_tags
from sweeplab.safe_read import UnreadableFile, read_json_file

GIT_TIMEOUT_S = 10
# new files git does not ignore: the first UNTRACKED_PATCH_LIMIT of at most UNTRACKED_PATCH_BYTES each go into
# code.patch (code, not data someone keeps in the repository), the first UNTRACKED_NAMED are named in run.json
UNTRACKED_PATCH_LIMIT, UNTRACKED_PATCH_BYTES, UNTRACKED_NAMED = 50, 256 * 1024, 200
MULTIRUN, SWEEP, CV = "multirun", "sweep", "cv"  # what a run can be part of (its record's parent.kind)
PACKAGES_SHOWN = ("torch", "torchvision", "lightning", "torchmetrics", "hydra-core", "optuna", "sweeplab")


@dataclass(frozen=True)
class Parent:
    """What started a run that is part of something bigger: ``kind`` (``multirun``, ``sweep``, ``cv``), the
    folder of that whole, and the run's place in it (job number, trial number, fold name)."""

    kind: str  # MULTIRUN, SWEEP or CV
    dir: str
    index: int | str
    study: str | None = None  # a sweep's study name

    def to_dict(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if value is not None}


@dataclass(frozen=True)
class CodeState:
    commit: str | None
    dirty: bool  # tracked files changed, or files git does not know yet (not ignored ones)
    diff: str  # the changes as one patch: ``git apply code.patch`` on the commit gives the code that ran
    untracked: tuple[str, ...]
    repository: str | None

    @property
    def label(self) -> str | None:
        return version_label(self.commit, self.dirty)


def version_label(commit: str | None, dirty: bool) -> str | None:
    """``COMMIT`` or ``COMMIT-dirty`` (results.json's ``git_commit``), None outside a repository."""
    if commit is None:
        return None
    return f"{commit}-dirty" if dirty else commit


@dataclass
class RunProvenance:
    """The contents of ``run.json``."""

    command: str
    argv: list[str]
    cwd: str
    started: str
    ended: str | None = None
    parent: dict[str, Any] | None = None
    tags: list[str] = field(default_factory=list)
    notes: str | None = None
    host: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str | None] = field(default_factory=dict)
    code: dict[str, Any] = field(default_factory=dict)  # commit, dirty, patch, untracked, repository
    data: dict[str, Any] | None = None  # dataset, sha256, files, bytes, root, cached
    earlier_attempts: list[dict[str, Any]] = field(default_factory=list)  # a resumed run's: started, ended, code
    record_s: float = 0.0  # what writing the record cost the run

    @property
    def code_version(self) -> str | None:
        return version_label(self.code.get("commit"), bool(self.code.get("dirty")))


def _git(directory: Path, *args: str, check: bool = True) -> str:
    return subprocess.run(
        ["git", *args], cwd=directory, capture_output=True, text=True, timeout=GIT_TIMEOUT_S, check=check
    ).stdout


def code_state(directory: str | Path = ".") -> CodeState:
    """The git commit of ``directory``'s repository and its uncommitted changes: the diff of tracked files,
    and new files git does not ignore (their contents too, up to :data:`UNTRACKED_PATCH_LIMIT` files)."""
    directory = Path(directory)
    try:
        top = _git(directory, "rev-parse", "--show-toplevel").strip()
        commit = _git(directory, "rev-parse", "HEAD").strip()
        diff = _git(directory, "diff", "HEAD", "--binary")
        untracked = tuple(
            _git(directory, "ls-files", "--others", "--exclude-standard", "--full-name", ":/").split("\n")
        )
        untracked = tuple(name for name in untracked if name)
        small = [name for name in untracked[:UNTRACKED_PATCH_LIMIT] if _size(Path(top) / name) <= UNTRACKED_PATCH_BYTES]
        for name in small:  # exit status 1: the files differ, as they do
            diff += _git(Path(top), "diff", "--no-index", "--binary", "--", "/dev/null", name, check=False)
    except (OSError, subprocess.SubprocessError):
        return CodeState(None, False, "", (), None)
    return CodeState(commit, bool(diff or untracked), diff, untracked, top)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def code_directory() -> Path:
    """The repository the run's code comes from: the working folder when it is in one (your project, its
    conf/), else the folder sweeplab is installed from."""
    cwd = Path.cwd()
    if any((folder / ".git").exists() for folder in (cwd, *cwd.parents)):
        return cwd
    return Path(__file__).resolve().parent


@functools.cache
def installed_packages() -> tuple[str, ...]:
    """Every installed distribution as ``name==version``, sorted as ``pip freeze`` sorts them."""
    found: dict[str, str] = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            found.setdefault(name.lower(), f"{name}=={dist.version}")
    return tuple(found[key] for key in sorted(found))


@functools.cache
def machine() -> dict[str, Any]:
    """The host: its name, operating system, CPU model and count, GPUs (names), as torch sees them."""
    import torch  # noqa: PLC0415 (imported by every run already; kept out of this module's import)

    gpus = (
        [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    )
    return {
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "gpus": gpus,
    }


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux), else what the platform reports."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@functools.cache
def versions() -> dict[str, str | None]:
    """Python, CUDA and cuDNN as torch was built with them, and the packages a run depends on."""
    import torch  # noqa: PLC0415

    found = {
        "python": platform.python_version(),
        "torch_build": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": str(torch.backends.cudnn.version()) if torch.backends.cudnn.is_available() else None,
    }
    for name in PACKAGES_SHOWN:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return found


def now() -> str:
    return datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds")


def start_record(
    cfg: DictConfig, run_dir: str | Path, datamodule: Any, parent: Parent | None, code: CodeState | None = None
) -> RunProvenance:
    """Write ``run.json``, ``environment.txt`` and (when the code has uncommitted changes) ``code.patch``
    for a run of ``cfg`` on ``datamodule`` (set up: its data is fingerprinted too). ``code``: the code's state
    read once for many runs (a sweep's trials), else read now."""
    began = time.perf_counter()
    folder = RunFolder(run_dir)
    code = code or code_state(code_directory())
    if code.dirty:
        write_text_atomic(folder.patch, code.diff)  # the code itself: a patch must apply as it is
    else:
        folder.patch.unlink(missing_ok=True)  # a resumed run's earlier patch no longer describes its code
    write_text_atomic(folder.environment, redact_text("\n".join(installed_packages()) + "\n"))
    output_dir = OmegaConf.select(cfg, "paths.output_dir", default=None)
    data = datamodule.data_fingerprint(Path(output_dir) / FINGERPRINT_CACHE_DIR if output_dir else None)
    record = RunProvenance(
        command=shlex.join(["python", *sys.argv]),
        argv=list(sys.argv),
        cwd=os.getcwd(),
        started=now(),
        parent=parent.to_dict() if parent else None,
        tags=run_tags(cfg),
        notes=cfg.get(NOTES),
        host=machine(),
        versions=versions(),
        data={"dataset": datamodule.name, **data},
        code={
            "commit": code.commit,
            "dirty": code.dirty,
            "patch": PATCH_FILE if code.dirty else None,
            "untracked": list(code.untracked[:UNTRACKED_NAMED]),
            "untracked_count": len(code.untracked),
            "repository": code.repository,
        },
        earlier_attempts=_earlier_attempts(folder),
    )
    record.record_s = round(time.perf_counter() - began, 4)
    write_json_atomic(folder.record, redact_data(asdict(record)))
    return record


def _earlier_attempts(folder: RunFolder) -> list[dict[str, Any]]:
    """A resumed run keeps when its earlier attempts ran, and on which code."""
    try:
        earlier = read_json_file(folder.record)
    except UnreadableFile:  # none yet, or damaged: the earlier attempts are not known
        return []
    if not isinstance(earlier, dict):
        return []
    recorded = earlier.get("earlier_attempts")
    attempts = recorded if isinstance(recorded, list) else []
    return [*attempts, {key: earlier.get(key) for key in ("started", "ended", "command", "code")}]


def end_record(run_dir: str | Path, record: RunProvenance) -> None:
    """Rewrite ``run.json`` with the run's end time."""
    record.ended = now()
    write_json_atomic(RunFolder(run_dir).record, redact_data(asdict(record)))
