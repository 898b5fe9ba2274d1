"""The learning-rate range test: ``python train.py lr_find=true`` (Lightning's Tuner.lr_find).

A short run raises the learning rate exponentially from ``min_lr`` to ``max_lr``, batch
by batch, and records the loss; the suggestion is where the loss falls fastest. It
writes ``lr_find.png`` (loss against learning rate, the suggestion marked) and trains
nothing else: train afterwards with the suggested ``optimizer.lr``.
"""

from __future__ import annotations

import io
import logging
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, cast

import lightning.pytorch as pl
from lightning.pytorch.tuner import Tuner
from omegaconf import DictConfig

from sweeplab.files import write_bytes_atomic
from sweeplab.runs.build import build_datamodule, build_module, build_trainer
from sweeplab.runs.folder import LR_FIND_PNG
from sweeplab.runs.provenance import end_record, start_record

if TYPE_CHECKING:
    from matplotlib.figure import Figure

log = logging.getLogger(__name__)
MIN_LR, MAX_LR, STEPS = 1e-6, 1.0, 100


def find_learning_rate(cfg: DictConfig, run_dir: Path, on_start: Callable[[], None] | None = None) -> float | None:
    """The suggested ``optimizer.lr`` for ``cfg`` (None when the loss curve gives none); writes the plot."""
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = build_datamodule(cfg)
    datamodule.prepare_data()
    datamodule.setup("fit")
    module = build_module(cfg, datamodule)
    trainer = build_trainer(cfg, run_dir, [])
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    if on_start is not None:
        on_start()
    record = start_record(cfg, run_dir, datamodule, parent=None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "the loss curve gives no suggestion": said below instead
        finder = Tuner(trainer).lr_find(
            module,
            datamodule=datamodule,
            min_lr=MIN_LR,
            max_lr=MAX_LR,
            num_training=int(min(STEPS, trainer.num_training_batches or STEPS)),
            update_attr=False,
        )
        suggestion = finder.suggestion() if finder is not None else None
    if finder is not None:
        figure = cast("Figure", finder.plot(suggest=suggestion is not None, show=False))  # show=False: the figure
        figure.axes[0].set_title(
            f"learning-rate range test: suggested optimizer.lr={suggestion:.3g}"
            if suggestion
            else "learning-rate range test: no suggestion (the loss never fell steadily)"
        )
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=100)
        write_bytes_atomic(Path(run_dir) / LR_FIND_PNG, buffer.getvalue())
        import matplotlib.pyplot as plt  # noqa: PLC0415 (Lightning draws the plot with pyplot)

        plt.close(figure)
    end_record(run_dir, record)
    return suggestion
