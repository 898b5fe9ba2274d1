"""Hyperparameter sweeps: Optuna studies (``sweep.py``) and summaries of Hydra multiruns (``train.py -m``).

One module per concept: ``settings`` (the sweep file), ``space`` (the search space),
``plan`` (checks before a study starts), ``study`` (storage, sampler, pruner),
``trial_config`` (a trial's composed and recorded config), ``objective`` (one trial),
``workers`` (processes running trials), ``interrupts`` (Ctrl-C and SIGTERM), ``report`` (what a study leaves behind),
``multirun_summary`` (the Hydra callback for ``train.py -m``).
"""
