"""The engines that run jobs on a cluster: ``hydra/launcher=slurm|slurm_local`` for a ``train.py -m``
grid (``conf/hydra/launcher/``), ``sweep.launcher`` for a study's workers. Both are submitit's, an
extra (``pip install 'sweeplab[slurm]'``); this module says, without importing it, what is missing."""

from __future__ import annotations

import importlib.util

from sweeplab.cluster import missing_scheduler

CLUSTER_LAUNCHERS = ("slurm", "slurm_local")  # submitit's SLURM executor, and its local one (same folders)
SLURM_EXTRA = "pip install 'sweeplab[slurm]'"


def runs_here(launcher: str | None) -> bool:
    """Whether the jobs of ``launcher`` run on this machine (so its accelerator is theirs): not SLURM's."""
    return launcher != "slurm"


def missing_launcher(name: str, *, hydra_plugin: bool) -> str | None:
    """Why launcher ``name`` cannot submit jobs from here, or None (also for launchers that are not a cluster's).

    ``hydra_plugin``: the grid's launcher, which needs hydra-submitit-launcher as well as submitit.
    """
    if name not in CLUSTER_LAUNCHERS:
        return None
    modules = ("submitit", "hydra_plugins.hydra_submitit_launcher") if hydra_plugin else ("submitit",)
    absent = [module.split(".")[-1].replace("_", "-") for module in modules if importlib.util.find_spec(module) is None]
    if absent:
        return f"needs {' and '.join(absent)}, not installed: {SLURM_EXTRA}"
    return missing_scheduler() if name == "slurm" else None
