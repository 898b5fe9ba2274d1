"""Hyperparameter sweeps: Optuna studies (``sweep.py``) and summaries of Hydra multiruns (``train.py -m``).

One module per concept: ``settings`` (the sweep settings, a Hydra config group), ``trials`` (what a stored trial is:
finished, surplus, feasible, best, on the front), ``space`` (the search space),
``plan`` (checks before a study starts), ``study`` (storage, sampler, pruner),
``trial_config`` (a trial's composed and recorded config), ``objective`` (one trial),
``workers`` (processes running trials), ``cluster_workers`` (workers as SLURM jobs),
``liveness`` (whether a trial's worker still runs), ``interrupts`` (Ctrl-C and SIGTERM), ``report`` (what a study leaves behind).
The multirun summary of ``train.py -m`` is :mod:`sweeplab.reports.multirun_summary`.
"""
