"""Network in Network (Lin et al., 2013): mlpconv blocks and global average pooling, no FC layer."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from sweeplab.models.layers import (
    SafePool2d,
    conv_block,
    first_conv_geometry,
    global_avg_pool,
    initialize,
    make_dropout,
    scale_width,
)


def nin_block(
    in_channels: int,
    out_channels: int,
    kernel_size: int,
    *,
    stride: int = 1,
    padding: int = 0,
    activation: str,
    norm: str,
    last: bool = False,
) -> nn.Sequential:
    """A conv followed by two 1x1 convs (a per-pixel MLP), each with norm and activation. In the ``last`` block the
    final 1x1 conv is bare: its channels are the class scores, which an activation would clip (ReLU) or squash."""
    knobs: dict[str, Any] = dict(activation=activation, norm=norm)
    final: dict[str, Any] = dict(activation=None, norm="none") if last else knobs
    return nn.Sequential(
        *conv_block(in_channels, out_channels, kernel_size, stride=stride, padding=padding, **knobs),
        *conv_block(out_channels, out_channels, 1, **knobs),
        *conv_block(out_channels, out_channels, 1, **final),
    )


class NiN(nn.Module):
    """NiN blocks of 96, 256, 384 channels with 3x3 stride-2 max pools, dropout, then a block with one channel per
    class whose maps are averaged into the logits.

    The first conv is 11x11 stride 4 for inputs of 64 px or more, else 3x3 stride 1. ``width_divisor`` divides the
    hidden widths (not the class channels).
    """

    def __init__(
        self,
        in_shape: tuple[int, int, int],
        num_classes: int,
        *,
        width_divisor: int = 1,
        activation: str = "relu",
        norm: str = "batch",
        dropout: float = 0.5,
        init: str = "default",
    ) -> None:
        super().__init__()
        c1, c2, c3 = (scale_width(width, width_divisor) for width in (96, 256, 384))
        kernel, stride, padding = first_conv_geometry(in_shape)
        knobs: dict[str, Any] = dict(activation=activation, norm=norm)
        self.net = nn.Sequential(
            nin_block(in_shape[0], c1, kernel, stride=stride, padding=padding, **knobs), SafePool2d("max", 3, stride=2),
            nin_block(c1, c2, 5, padding=2, **knobs), SafePool2d("max", 3, stride=2),
            nin_block(c2, c3, 3, padding=1, **knobs), SafePool2d("max", 3, stride=2),
            make_dropout(dropout),
            nin_block(c3, num_classes, 3, padding=1, last=True, **knobs),
            global_avg_pool(),
        )  # fmt: skip
        initialize(self, init, activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
