"""Stratified k-fold splits of the training pool (never the test set), and the checks on cv.*."""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral
from pathlib import Path

import numpy as np
from omegaconf import DictConfig

from sweeplab.constraints import Boolean, Constraints, Interval, Options, check_params
from sweeplab.errors import ConfigError
from sweeplab.files import write_json_atomic

# what cv.* may be whatever the data (the folds must also fit the smallest class: check_folds_fit_classes)
CV_CONSTRAINTS: dict[str, Constraints] = {
    "folds": [Options((0,), "0 (no cross-validation)"), Interval(Integral, 2, None)],
    "repeats": [Interval(Integral, 1, None)],
    "split_seed": [Interval(Integral, 0, None)],
    "refit": [Boolean()],
}


@dataclass(frozen=True)
class Fold:
    """One fold of one repeat: which pool indices train and which validate."""

    index: int  # over all repeats: repeat * folds + fold
    repeat: int
    fold: int
    split_seed: int
    train_indices: np.ndarray
    val_indices: np.ndarray

    @property
    def name(self) -> str:
        return f"fold_{self.index}"


def check_cv_settings(cv: DictConfig | None) -> None:
    """Refuse cv.* values that are wrong whatever the data (before anything is loaded)."""
    check_params(dict(cv or {}), CV_CONSTRAINTS, prefix="cv.")


def cross_validates(cfg: DictConfig) -> bool:
    """Whether ``cfg`` asks for k-fold cross-validation (``cv.folds >= 2``)."""
    return bool((cfg.get("cv") or {}).get("folds"))


def check_folds_fit_classes(folds: int, labels: np.ndarray, classes: list[str] | None = None) -> None:
    """Every fold must be able to hold at least one sample of every class."""
    counts = np.bincount(np.asarray(labels))
    present = np.flatnonzero(counts)
    smallest = int(present[np.argmin(counts[present])])
    name = classes[smallest] if classes and smallest < len(classes) else str(smallest)
    if folds > counts[smallest]:
        raise ConfigError(
            "cv.folds",
            folds,
            f"must be at most {int(counts[smallest])}, the smallest class count of the training pool "
            f"(class {name!r} has {int(counts[smallest])} of {len(labels)} samples)",
        )


def split_seeds(split_seed: int, repeats: int) -> list[int]:
    """The seeds of the repeats: split_seed, split_seed + 1, ..."""
    return [split_seed + repeat for repeat in range(repeats)]


def stratified_folds(labels: np.ndarray, folds: int, repeats: int = 1, split_seed: int = 0) -> list[Fold]:
    """``repeats`` shuffled stratified k-fold splits of a pool with these ``labels``.

    Within a repeat the validation parts are disjoint and cover the pool once; each
    keeps the pool's class proportions. Indices are sorted, so a fold's identity does
    not depend on the order the splitter produced them in.
    """
    from sklearn.model_selection import StratifiedKFold  # noqa: PLC0415 (about 0.2 s: only when cross-validating)

    labels = np.asarray(labels)
    placeholder = np.zeros(len(labels))
    result = []
    for repeat, seed in enumerate(split_seeds(split_seed, repeats)):
        splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
        for fold, (train, val) in enumerate(splitter.split(placeholder, labels)):
            result.append(Fold(repeat * folds + fold, repeat, fold, seed, np.sort(train), np.sort(val)))
    return result


def write_folds(path: str | Path, folds: list[Fold], pool_size: int) -> None:
    """Store every fold's validation indices (a fold trains on the rest of the pool)."""
    write_json_atomic(
        path,
        {
            "pool_size": pool_size,
            "note": "pool indices validated on in each fold; a fold trains on the rest of the pool",
            "folds": [
                {
                    "index": f.index,
                    "repeat": f.repeat,
                    "fold": f.fold,
                    "split_seed": f.split_seed,
                    "train_size": len(f.train_indices),
                    "val_size": len(f.val_indices),
                    "val_indices": f.val_indices.tolist(),
                }
                for f in folds
            ],
        },
    )
