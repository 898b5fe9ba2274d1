"""Random number generator state, saved in checkpoints so a resumed run continues identically.

Dropout masks and augmentation draw from the global generators; restoring them
with the weights makes a run killed after epoch N and resumed produce the same
numbers as one never interrupted. Only tensors and ints are stored, so the
checkpoint still loads with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import random

import torch


def capture_rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "python": _python_state_as_lists(random.getstate())}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _python_state_as_lists(state: tuple) -> list:
    version, internal, gauss = state
    return [version, list(internal), gauss]
