"""Multilayer perceptron on flattened pixels."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from sweeplab.models.layers import fc_stack, initialize


class MLP(nn.Module):
    """Flatten, ``hidden`` fully connected layers, the output layer; Kaiming initialization by default (suits ReLU)."""

    def __init__(
        self,
        in_shape: tuple[int, int, int],
        num_classes: int,
        *,
        hidden: Sequence[int] = (200, 200),
        activation: str = "relu",
        dropout: float = 0.0,
        init: str = "kaiming",
    ) -> None:
        super().__init__()
        self.net = fc_stack(math.prod(in_shape), hidden, num_classes, activation=activation, dropout=dropout)
        initialize(self, init, activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
