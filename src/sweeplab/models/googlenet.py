"""GoogLeNet (Szegedy et al., 2014): a stem, nine Inception blocks, global average pooling; without the paper's
auxiliary classifiers and local response normalization."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from sweeplab.models.layers import conv_block, global_avg_pool, initialize, make_dropout, make_stem, scale_width

# Per Inception block: (1x1, (3x3 reduce, 3x3), (5x5 reduce, 5x5), pool proj), as in
# the paper's Table 1; stages 3, 4 and 5 are separated by 3x3 stride-2 max pools.
STAGES = (
    ((64, (96, 128), (16, 32), 32), (128, (128, 192), (32, 96), 64)),
    (
        (192, (96, 208), (16, 48), 64),
        (160, (112, 224), (24, 64), 64),
        (128, (128, 256), (24, 64), 64),
        (112, (144, 288), (32, 64), 64),
        (256, (160, 320), (32, 128), 128),
    ),
    ((256, (160, 320), (32, 128), 128), (384, (192, 384), (48, 128), 128)),
)


class Inception(nn.Module):
    """Four parallel paths concatenated along channels: 1x1; 1x1 then 3x3; 1x1 then 5x5;
    3x3 max pool then 1x1. All preserve the spatial size."""

    def __init__(
        self,
        in_channels: int,
        c1: int,
        c2: tuple[int, int],
        c3: tuple[int, int],
        c4: int,
        *,
        activation: str,
        norm: str,
    ) -> None:
        super().__init__()
        knobs: dict[str, Any] = dict(activation=activation, norm=norm)

        def reduce_then(reduced: int, out: int, kernel: int) -> nn.Sequential:
            return nn.Sequential(
                *conv_block(in_channels, reduced, 1, **knobs),
                *conv_block(reduced, out, kernel, padding=kernel // 2, **knobs),
            )

        self.paths = nn.ModuleList(
            [
                conv_block(in_channels, c1, 1, **knobs),
                reduce_then(*c2, 3),
                reduce_then(*c3, 5),
                nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1), *conv_block(in_channels, c4, 1, **knobs)),
            ]
        )
        self.out_channels = c1 + c2[1] + c3[1] + c4

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([path(x) for path in self.paths], dim=1)


class GoogLeNet(nn.Module):
    """GoogLeNet with the paper's widths divided by ``width_divisor``.

    Inputs of 64 px or more get the paper's 7x7 stride-2 stem with max pooling; smaller ones a 3x3 stride-1 conv, so a
    28x28 image still has a 4x4 map in the last stage. ``norm="batch"`` gives the batch-normalized variant (as in
    torchvision).
    """

    def __init__(
        self,
        in_shape: tuple[int, int, int],
        num_classes: int,
        *,
        width_divisor: int = 1,
        activation: str = "relu",
        norm: str = "batch",
        dropout: float = 0.4,
        init: str = "default",
    ) -> None:
        super().__init__()

        def w(width: int) -> int:
            return scale_width(width, width_divisor)

        knobs: dict[str, Any] = dict(activation=activation, norm=norm)
        layers: list[nn.Module] = [
            make_stem(in_shape, w(64), **knobs),
            *conv_block(w(64), w(64), 1, **knobs),
            *conv_block(w(64), w(192), 3, padding=1, **knobs),
        ]
        width = w(192)
        for stage in STAGES:
            layers.append(nn.MaxPool2d(3, stride=2, padding=1))
            for c1, (r2, c2), (r3, c3), c4 in stage:
                block = Inception(width, w(c1), (w(r2), w(c2)), (w(r3), w(c3)), w(c4), **knobs)
                layers.append(block)
                width = block.out_channels
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(global_avg_pool(), make_dropout(dropout), nn.Linear(width, num_classes))
        initialize(self, init, activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))
