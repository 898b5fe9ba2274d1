"""ResNet (He et al., 2015) with basic blocks; ResNet-18 by default."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from sweeplab.models.layers import (
    conv_block,
    global_avg_pool,
    initialize,
    make_activation,
    make_dropout,
    make_stem,
    positive_ints,
    scale_width,
)


class BasicBlock(nn.Module):
    """Two 3x3 convs with norm, added to the input (through a 1x1 conv projection when
    the stride or width changes), then the activation."""

    def __init__(self, in_channels: int, out_channels: int, *, stride: int, activation: str, norm: str) -> None:
        super().__init__()
        self.body = nn.Sequential(
            *conv_block(in_channels, out_channels, 3, stride=stride, padding=1, activation=activation, norm=norm),
            *conv_block(out_channels, out_channels, 3, padding=1, activation=None, norm=norm),
        )
        needs_projection = stride != 1 or in_channels != out_channels
        self.shortcut = (
            conv_block(in_channels, out_channels, 1, stride=stride, activation=None, norm=norm)
            if needs_projection
            else nn.Identity()
        )
        self.activation = make_activation(activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(self.body(x) + self.shortcut(x))


class ResNet(nn.Module):
    """A stem, then one stage per entry of ``blocks`` (ResNet-18: [2, 2, 2, 2]) of that many basic blocks, the width
    doubling and the map halving from stage to stage, then global average pooling and a linear layer.

    The stem is CIFAR-style (3x3 stride-1 conv, no max pool) for inputs under 64 px and the ImageNet one (7x7 stride 2,
    max pool) otherwise. ``width_divisor`` divides the base width 64. With the defaults the parameter count equals
    torchvision's resnet18.
    """

    def __init__(
        self,
        in_shape: tuple[int, int, int],
        num_classes: int,
        *,
        blocks: Sequence[int] = (2, 2, 2, 2),
        width_divisor: int = 1,
        activation: str = "relu",
        norm: str = "batch",
        dropout: float = 0.0,
        init: str = "default",
    ) -> None:
        super().__init__()
        width = scale_width(64, width_divisor)
        layers: list[nn.Module] = [make_stem(in_shape, width, activation=activation, norm=norm)]
        in_width = width
        for stage, count in enumerate(positive_ints("blocks", blocks)):
            out_width = width * 2**stage
            for index in range(count):
                stride = 2 if stage > 0 and index == 0 else 1
                layers.append(BasicBlock(in_width, out_width, stride=stride, activation=activation, norm=norm))
                in_width = out_width
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(global_avg_pool(), make_dropout(dropout), nn.Linear(in_width, num_classes))
        initialize(self, init, activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))
