"""The smallest CNN: one 3x3 conv layer with max pooling, one hidden FC layer, the output layer."""

from __future__ import annotations

import torch
from torch import nn

from sweeplab.models.layers import conv_block, fc_stack, flat_features, initialize, positive_int


class ThreeLayerCNN(nn.Module):
    """conv 3x3 (``channels``, padding 1) + activation + 2x2 max pool -> FC ``hidden`` -> classes."""

    def __init__(
        self,
        in_shape: tuple[int, int, int],
        num_classes: int,
        *,
        channels: int = 32,
        hidden: int = 128,
        activation: str = "relu",
        dropout: float = 0.0,
        init: str = "default",
    ) -> None:
        super().__init__()
        self.features = nn.Sequential(
            *conv_block(in_shape[0], positive_int("channels", channels), 3, padding=1, activation=activation),
            nn.MaxPool2d(2),
        )
        self.classifier = fc_stack(
            flat_features(self.features, in_shape), (hidden,), num_classes, activation=activation, dropout=dropout
        )
        initialize(self, init, activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))
