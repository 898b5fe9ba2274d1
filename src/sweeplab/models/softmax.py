"""Softmax regression: one linear layer on the flattened pixels."""

from __future__ import annotations

import math

import torch
from torch import nn

from sweeplab.models.layers import initialize


class SoftmaxRegression(nn.Module):
    """Multinomial logistic regression; the softmax lives in the cross-entropy loss. ``init="xavier"`` uses the
    sigmoid gain (1), the natural choice for a linear model."""

    def __init__(self, in_shape: tuple[int, int, int], num_classes: int, *, init: str = "default") -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(math.prod(in_shape), num_classes))
        initialize(self, init, "sigmoid")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
