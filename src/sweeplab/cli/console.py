"""What a command shows on the terminal: sweeplab's own lines, and Lightning's only with ``verbose=true``.

Lightning prints a dozen lines a run that say nothing about it (which accelerators
exist, a product tip, checkpoint restores, advice that does not apply to sweeplab's
in-memory loaders and once-per-epoch logging); a command configures the console
once, here, before any run starts.
"""

from __future__ import annotations

import importlib
import logging
import warnings

LIBRARY_LOGGERS = ("lightning.pytorch", "lightning.fabric")
NOISE = (  # warnings that do not apply to sweeplab's runs
    r".*isinstance\(treespec, LeafSpec\)",  # a deprecation inside Lightning, not in sweeplab's code
    r"The number of training batches \(\d+\) is smaller than the logging interval",  # sweeplab logs per epoch
    r".*does not have many workers",  # the in-memory loaders need none
    r"Experiment logs directory .* exists and is not empty",  # the CSV log sits in the run folder
    r"Checkpoint directory .* exists and is not empty",  # a resumed run
    r"The `srun` command is available on your system but is not used",  # a SLURM login node: jobs are submitted
)


def configure_console(verbose: bool) -> None:
    """Keep Lightning to its warnings and drop the :data:`NOISE`, unless ``verbose``."""
    if verbose:
        return
    importlib.import_module("lightning.pytorch")  # it sets its loggers' levels when imported: set them after

    for name in LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    for pattern in NOISE:
        warnings.filterwarnings("ignore", message=pattern)
