"""After cross-validation: train once on the whole pool and test once (``cv.refit=true``).

The folds have chosen nothing but the number of epochs: round(mean best epoch).
The refit trains on every pool image for exactly that many epochs, with no early
stopping and no checkpoint selection, because there is no held-out data left to
select on; the final weights are tested once. Fit still needs a validation set,
so it validates on the pool itself: those numbers are kept as ``pool_acc`` /
``pool_loss`` (accuracy on its own training data) and never used as an estimate.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from omegaconf import DictConfig, open_dict

from sweeplab.data.datamodule import InMemoryDataModule
from sweeplab.runs.build import node_target
from sweeplab.runs.fit import fit
from sweeplab.runs.folder import REFIT_DIR
from sweeplab.runs.provenance import CV, Parent


def refit_epochs(best_epochs: list[int]) -> int:
    """round(mean best epoch of the folds), at least 1."""
    return max(1, round(float(np.mean(best_epochs))))


def refit_config(cfg: DictConfig, epochs: int) -> DictConfig:
    """``cfg`` for ``epochs`` epochs without early stopping; the last weights are the ones kept."""
    refit_cfg = copy.deepcopy(cfg)
    with open_dict(refit_cfg):
        refit_cfg.trainer.max_epochs = epochs
        for name, spec in list((refit_cfg.get("callbacks") or {}).items()):
            built_class = _callback_class(f"callbacks.{name}", spec)
            if issubclass(built_class, EarlyStopping):
                refit_cfg.callbacks[name] = None
            elif issubclass(built_class, ModelCheckpoint):
                spec.monitor = None  # keeps the latest epoch: nothing to select on
    return refit_cfg


def _callback_class(key: str, spec: DictConfig | None) -> type:
    """The class a callback node builds (``object`` for a disabled node or a factory function), resolved from its
    ``_target_`` through the same rule as every built node: subclasses of Lightning's callbacks are found too."""
    if not spec or "_target_" not in spec:
        return object
    target = node_target(key, spec)
    return target if isinstance(target, type) else object


def refit_on_pool(cfg: DictConfig, run_dir: str | Path, datamodule: InMemoryDataModule, epochs: int) -> dict[str, Any]:
    """Train on the whole pool for ``epochs`` epochs in ``run_dir/refit`` and test once."""
    pool = np.arange(len(datamodule.pool_labels))
    results = fit(
        refit_config(cfg, epochs),
        Path(run_dir) / REFIT_DIR,
        split=(pool, pool),
        datamodule=datamodule,
        evaluate_test=True,
        parent=Parent(CV, str(run_dir), REFIT_DIR),
    )
    last = results.history[-1] if results.history else {}
    return {
        "status": results.status,
        "error": results.error,
        "run_dir": REFIT_DIR,
        "epochs": epochs,
        "epochs_run": results.epochs_run,
        "train_size": results.train_size,
        "test_acc": results.test_acc,
        "test_loss": results.test_loss,
        "test_size": results.test_size,
        "pool_acc": last.get("val_acc"),
        "pool_loss": last.get("val_loss"),
        "duration_s": results.duration_s,
    }
