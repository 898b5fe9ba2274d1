"""The hyperparameters of a run as flat, plain values (for TensorBoard, checkpoints, tables)."""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf

# groups whose values describe where things go or how they are shown, not the experiment
NOT_HYPERPARAMETERS = ("paths", "logger", "callbacks", "hydra", "progress_bar")


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
    return flat


def log_hparams(logger: Any, hparams: dict[str, Any], metrics: dict[str, Any], status: str) -> None:
    """Fill TensorBoard's HParams tab: the run's hyperparameters and status, and its final ``metrics``.

    ``logger`` is any Lightning logger; only a TensorBoard logger has an HParams tab.
    Metrics without a value are left out; each is shown as ``hp/NAME``.
    """
    from lightning.pytorch.loggers import TensorBoardLogger  # noqa: PLC0415 (keeps this module light)

    if not isinstance(logger, TensorBoardLogger):
        return
    plain = {key: (value if isinstance(value, (int, float, str, bool)) else str(value)) for key, value in hparams.items()}
    plain["status"] = status
    values = {f"hp/{key}": float(value) for key, value in metrics.items() if value is not None}
    logger.log_hyperparams(plain, metrics=values)
    logger.finalize("success")
