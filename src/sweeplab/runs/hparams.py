"""The hyperparameters of a run as flat, plain values (for TensorBoard, checkpoints, tables)."""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf

from sweeplab.redact import redact_data

# groups whose values describe where things go or how they are shown, not the experiment
NOT_HYPERPARAMETERS = ("paths", "logger", "callbacks", "hydra", "progress_bar")
# flat keys (and prefixes) that say where or how a run runs, not what it trains: a resume may change them,
# and TensorBoard's HParams tab leaves them out
RUN_SETTINGS = (
    "resume",
    "ckpt_path",
    "evaluate_test",
    "finite_check_every",
    "verbose",
    "lr_find",
    "early_stopping.patience",
    "data.data_dir",
    "data.download",
    "data.on_device",
    "data.eval_batch_size",
    "model.compile",
    "model.channels_last",
    "optimizer.fused",
    "trainer.accelerator",
    "trainer.devices",
    "trainer.num_sanity_val_steps",
    "trainer.log_every_n_steps",
    "trainer.limit_val_batches",
    "trainer.limit_test_batches",
    "trainer.deterministic",
    "cv.",
)
# labels a person gives a run (+tags=[baseline,lr-study] notes="..."): recorded and shown, not what it trains
TAGS, NOTES = "tags", "notes"
LABELS = (TAGS, NOTES)
SHOWN_FIRST = (
    "model",
    "optimizer",
    "optimizer.lr",
    "optimizer.weight_decay",
    "data.batch_size",
    "model.dropout",
    "scheduler",
    "trainer.max_epochs",
    "seed",
    *LABELS,
)  # what people vary most, first in the HParams tab


def run_tags(cfg: DictConfig) -> list[str]:
    """The run's tags: ``+tags=[a,b]`` (or one ``+tags=a``), none when not given."""
    value = cfg.get(TAGS)
    if value is None:
        return []
    return [str(value)] if isinstance(value, str) else [str(tag) for tag in value]


def join_tags(tags: list[str]) -> str:
    """Tags as one value of a table or of TensorBoard's HParams tab: ``baseline,lr-study``."""
    return ",".join(tags)


def split_tags(value: Any) -> list[str]:
    return [tag for tag in str(value).split(",") if tag] if value else []


def flat_hparams(cfg: DictConfig) -> dict[str, Any]:
    """``{"optimizer.lr": 0.001, "optimizer": "AdamW", ...}``: every leaf of the config.

    A ``_target_`` becomes the group's own entry holding the class name, so tables
    show ``model=LeNet5`` rather than a dotted import path.
    """
    container = OmegaConf.to_container(cfg, resolve=True)
    flat: dict[str, Any] = {}

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in NOT_HYPERPARAMETERS and not prefix:
                    continue
                if key == "_target_":
                    flat[prefix] = str(value).rsplit(".", 1)[-1]
                elif key != "_partial_":
                    walk(value, f"{prefix}.{key}" if prefix else str(key))
        elif isinstance(node, (list, tuple)):
            flat[prefix] = str(list(node))
        else:
            flat[prefix] = node

    walk(container, "")
    if TAGS in flat:
        flat[TAGS] = join_tags(run_tags(cfg))
    return redact_data(flat)  # results.json, checkpoints, TensorBoard, tables: no secret written down


def log_hparams(logger: Any, hparams: dict[str, Any], metrics: dict[str, Any], status: str) -> None:
    """Fill TensorBoard's HParams tab: the run's status and hyperparameters (the most varied first, no run
    settings) and its final ``metrics`` as ``hp/NAME``, NaN where it has none (TensorBoard takes one run's
    list of metrics for every run: each run logs the same names).

    ``logger`` is any Lightning logger; only a TensorBoard logger has an HParams tab.
    """
    from lightning.pytorch.loggers import TensorBoardLogger  # noqa: PLC0415 (keeps this module light)

    if not isinstance(logger, TensorBoardLogger):
        return
    shown = [k for k in SHOWN_FIRST if k in hparams] + sorted(
        k for k in hparams if k not in SHOWN_FIRST and not k.startswith(RUN_SETTINGS)
    )
    plain = {
        "status": status,
        **{k: hparams[k] if isinstance(hparams[k], (int, float, str, bool)) else str(hparams[k]) for k in shown},
    }
    values = {f"hp/{key}": float("nan") if value is None else float(value) for key, value in metrics.items()}
    logger.log_hyperparams(plain, metrics=values)
    logger.finalize("success")
