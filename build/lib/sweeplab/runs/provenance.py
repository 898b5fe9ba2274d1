"""Where a run came from: the code version."""

from __future__ import annotations

import subprocess
from pathlib import Path


def git_commit(directory: str | Path = ".") -> str | None:
    """The commit checked out in ``directory`` (with ``-dirty`` for local changes), or None."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=directory, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=directory, capture_output=True, text=True, timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{commit}-dirty" if dirty else commit
