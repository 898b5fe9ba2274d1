"""The fingerprint of a dataset: the sha256 of the files a run read, so two runs can tell whether they saw the same data.

Hashing the full MNIST (55 MB) takes a fraction of a second and 60,000 JPEG files a
few seconds, so the result is cached by the list of files with their sizes and
modification times: a run on unchanged files stats them and reads one small file.
A file that changes (new bytes, new mtime) is hashed again. Data generated in memory
(``data=fake``) has no files: its fingerprint is that of the tensors themselves.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from sweeplab.files import write_json_atomic

log = logging.getLogger(__name__)
CHUNK = 1 << 20


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def files_fingerprint(files: Sequence[Path], cache_dir: Path | None,
                      known: Mapping[str, str] | None = None) -> dict[str, Any]:
    """``{"sha256", "files", "bytes", "cached"}`` of ``files``: the sha256 over each file's name (relative
    to the folder they share) and its own sha256, read from ``cache_dir`` while the files are unchanged.
    ``known`` holds the sha256 of files already read (by absolute path), which are not read again."""
    paths = sorted(name if os.path.isabs(name) else os.path.abspath(name) for name in map(os.fspath, files))
    stats = [os.stat(f) for f in paths]
    root = os.path.commonpath(list({os.path.dirname(f) for f in paths})) if paths else os.sep
    start = len(root.rstrip(os.sep)) + 1
    listing = [[f[start:], s.st_size, s.st_mtime_ns] for f, s in zip(paths, stats, strict=True)]
    key = hashlib.sha256(json.dumps([str(root), listing]).encode()).hexdigest()[:32]
    cache = cache_dir / f"{key}.json" if cache_dir is not None else None
    cached = _read_cached(cache)
    if cached is not None:
        return {**cached, "cached": True}
    hashes = dict(known or {})
    unread = [path for path in paths if path not in hashes]
    with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 1) * 2)) as pool:  # reads and hashes release the GIL
        hashes.update(zip(unread, pool.map(file_sha256, unread), strict=True))
    digest = hashlib.sha256()
    for (name, _, _), path in zip(listing, paths, strict=True):
        digest.update(f"{name}\0{hashes[path]}\n".encode())
    record = {"sha256": digest.hexdigest(), "files": len(paths), "bytes": sum(s.st_size for s in stats), "root": root}
    if cache is not None:
        try:
            write_json_atomic(cache, record)
        except OSError as error:  # a read-only or full disk costs the next run a re-hash, nothing more
            log.warning("could not cache the data fingerprint in %s: %s", cache_dir, error.strerror)
    return {**record, "cached": False}


def tensors_fingerprint(tensors: Sequence[torch.Tensor]) -> dict[str, Any]:
    """The sha256 of the tensors' bytes (data made in memory, which no file holds)."""
    digest = hashlib.sha256()
    for tensor in tensors:
        digest.update(str((tuple(tensor.shape), str(tensor.dtype))).encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return {"sha256": digest.hexdigest(), "files": 0, "bytes": sum(t.numel() * t.element_size() for t in tensors),
            "root": None, "cached": False}


def _read_cached(cache: Path | None) -> dict[str, Any] | None:
    if cache is None or not cache.is_file():
        return None
    try:
        record = json.loads(cache.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None  # a damaged cache entry: hash again, and write it whole
    return record if isinstance(record, dict) and isinstance(record.get("sha256"), str) else None
