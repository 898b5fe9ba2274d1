"""`python train.py [overrides]`: train one model (or one per combination with -m)."""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from sweeplab.cli.common import exit_on_user_error
from sweeplab.config.compose import compose_train
from sweeplab.config.locations import CONFIG_DIR, TRAIN_CONFIG
from sweeplab.config.resolvers import register_resolvers


@exit_on_user_error
def run(cfg: DictConfig) -> float | None:
    from sweeplab.cv.folds import cross_validates  # noqa: PLC0415 (input checked: now pay for torch and Lightning)
    from sweeplab.runs.results import COMPLETED, EXIT_CODES  # noqa: PLC0415

    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    if cross_validates(cfg):
        from sweeplab.cv.crossval import cross_validate  # noqa: PLC0415

        report = cross_validate(cfg, run_dir)
        status, error, score = report["status"], report["error"], report.get("best_val_acc")
    else:
        from sweeplab.runs.fit import fit  # noqa: PLC0415

        results = fit(cfg, run_dir)
        status, error, score = results.status, results.error, results.best_val_acc
    if hydra_cfg.mode == RunMode.MULTIRUN:
        return score  # one bad combination must not end the grid
    if status != COMPLETED:
        print(f"run {status}: {error}", file=sys.stderr)
        sys.exit(EXIT_CODES[status])
    return score


@hydra.main(config_path=CONFIG_DIR, config_name=TRAIN_CONFIG, version_base="1.3")
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


def preflight(argv: list[str]) -> None:
    """Compose and check a single run before Hydra starts it (Hydra's own flags: Hydra checks)."""
    if any(arg.startswith("-") for arg in argv):
        return
    cfg = compose_train(argv)
    from sweeplab.cv.folds import check_cv_settings  # noqa: PLC0415 (composed: now pay for torch and Lightning)
    from sweeplab.runs.checks import check_config  # noqa: PLC0415

    check_cv_settings(cfg.get("cv"))
    check_config(cfg)


@exit_on_user_error
def cli() -> None:
    register_resolvers()
    sys.argv[1:] = absolute_config_path(sys.argv[1:])
    preflight(sys.argv[1:])
    main()
