"""Writing run files so that a kill never leaves half a file behind."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def write_bytes_atomic(path: str | Path, data: bytes | memoryview) -> Path:
    """Write to a temporary file in the same folder, flushed to disk, then renamed over ``path``:
    a kill or a full disk leaves the previous file whole. An OSError names ``path``."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as error:
        raise OSError(error.errno, error.strerror, str(path)) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates files readable by the owner only
        os.replace(tmp, path)
    except BaseException as error:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(error, OSError):
            raise OSError(error.errno, error.strerror, str(path)) from None
        raise
    return path


def remove_stale_temporaries(path: str | Path) -> None:
    """Remove the temporary files a killed :func:`write_bytes_atomic` of ``path`` left behind."""
    path = Path(path)
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        stale.unlink(missing_ok=True)


def write_text_atomic(path: str | Path, text: str) -> Path:
    return write_bytes_atomic(path, text.encode())


def write_json_atomic(path: str | Path, data: Any) -> Path:
    return write_text_atomic(path, json.dumps(data, indent=2, default=_plain) + "\n")


def _plain(value: Any) -> Any:
    """JSON for the few non-JSON types a run produces (paths, tensors, numpy numbers)."""
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def read_json(path: str | Path) -> Any:
    """The parsed JSON of ``path``, through the one safe reader (:func:`sweeplab.safe_read.read_json_file`):
    a missing, damaged, oversized or too deeply nested file raises its one line naming the file."""
    from sweeplab.safe_read import read_json_file  # noqa: PLC0415 (numpy: only for readers)

    return read_json_file(path)
