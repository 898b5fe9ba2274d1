"""`python train.py [overrides]`: train one model (or one per combination with -m)."""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from sweeplab.cli.common import CONFIG_DIR, exit_on_user_error, register_resolvers
from sweeplab.config.preflight import preflight
from sweeplab.runs.fit import fit

EXIT_CODES = {"completed": 0, "diverged": 3, "failed": 1, "interrupted": 130}


@exit_on_user_error
def run(cfg: DictConfig) -> float | None:
    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    if cfg.get("cv") and cfg.cv.folds:
        from sweeplab.cv.crossval import cross_validate  # noqa: PLC0415 (only CV runs pay for it)

        results = cross_validate(cfg, run_dir)
    else:
        results = fit(cfg, run_dir)
    if hydra_cfg.mode == RunMode.MULTIRUN:
        return results.get("best_val_acc")  # one bad combination must not end the grid
    if results["status"] != "completed":
        print(f"run {results['status']}: {results['error']}", file=sys.stderr)
        sys.exit(EXIT_CODES[results["status"]])
    return results.get("best_val_acc")


@hydra.main(config_path=CONFIG_DIR, config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> float | None:
    return run(cfg)


def absolute_config_path(argv: list[str]) -> list[str]:
    """Make ``--config-path``/``-cp`` absolute: Hydra would read a relative one from this package."""
    fixed = list(argv)
    for i, arg in enumerate(fixed):
        for flag in ("--config-path", "-cp"):
            if arg == flag and i + 1 < len(fixed):
                fixed[i + 1] = str(Path(fixed[i + 1]).resolve())
            elif arg.startswith(flag + "="):
                fixed[i] = f"{flag}={Path(arg.split('=', 1)[1]).resolve()}"
    return fixed


@exit_on_user_error
def cli() -> None:
    register_resolvers()
    sys.argv[1:] = absolute_config_path(sys.argv[1:])
    preflight(CONFIG_DIR, "train", sys.argv[1:])
    main()
