"""LeNet-5 (LeCun et al., 1998): two 5x5 conv layers (6, 16 channels), then 120-84-classes."""

from __future__ import annotations

import torch
from torch import nn

from sweeplab.models.layers import POOLS, check_choice, fc_stack, flat_features, initialize, make_activation


class LeNet5(nn.Module):
    """LeNet-5 for any input shape: the modern variant (ReLU, max pooling) by default; ``activation="sigmoid",
    pool="avg"`` gives the classic network. The first conv pads by 2 so 28x28 inputs behave like the paper's 32x32."""

    def __init__(
        self,
        in_shape: tuple[int, int, int],
        num_classes: int,
        *,
        activation: str = "relu",
        pool: str = "max",
        dropout: float = 0.0,
        init: str = "default",
    ) -> None:
        super().__init__()
        check_choice("pool", pool, tuple(POOLS))
        self.features = nn.Sequential(
            nn.Conv2d(in_shape[0], 6, kernel_size=5, padding=2),
            make_activation(activation),
            POOLS[pool](kernel_size=2, stride=2),
            nn.Conv2d(6, 16, kernel_size=5),
            make_activation(activation),
            POOLS[pool](kernel_size=2, stride=2),
        )
        self.classifier = fc_stack(
            flat_features(self.features, in_shape), (120, 84), num_classes, activation=activation, dropout=dropout
        )
        initialize(self, init, activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))
