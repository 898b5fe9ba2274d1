"""VGG (Simonyan & Zisserman, 2014), built from a list of (num_convs, channels) blocks."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from sweeplab.models.layers import (
    SafePool2d,
    conv_block,
    fc_stack,
    flat_features,
    initialize,
    positive_int,
    scale_width,
)

VGG11 = ((1, 64), (1, 128), (2, 256), (2, 512), (2, 512))


def parse_conv_arch(conv_arch: Sequence[Sequence[int]]) -> list[tuple[int, int]]:
    """``conv_arch`` as (num_convs, channels) int pairs, or a ValueError naming ``model.conv_arch``."""
    error = ValueError(f"model.conv_arch={conv_arch!r} must be a list of [num_convs, channels] pairs of positive ints")
    try:
        pairs = [tuple(pair) for pair in conv_arch]
    except TypeError:
        raise error from None
    if not pairs or any(
        len(pair) != 2 or any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in pair) for pair in pairs
    ):
        raise error
    return pairs  # type: ignore[return-value]


class VGG(nn.Module):
    """VGG blocks (``num_convs`` 3x3 convs, then a 2x2 max pool), then two FC layers; VGG-11 by default.

    On small inputs the map reaches 1x1 before the last blocks, whose pools are then skipped (:class:`SafePool2d`)
    instead of failing. ``width_divisor`` divides every conv width and ``fc_width``.
    """

    def __init__(
        self,
        in_shape: tuple[int, int, int],
        num_classes: int,
        *,
        conv_arch: Sequence[Sequence[int]] = VGG11,
        fc_width: int = 4096,
        width_divisor: int = 1,
        activation: str = "relu",
        norm: str = "batch",
        dropout: float = 0.2,
        init: str = "default",
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = in_shape[0]
        for num_convs, channels in parse_conv_arch(conv_arch):
            out = scale_width(channels, width_divisor)
            for _ in range(num_convs):
                layers += conv_block(width, out, 3, padding=1, activation=activation, norm=norm)
                width = out
            layers.append(SafePool2d("max", 2))
        self.features = nn.Sequential(*layers)
        fc = scale_width(positive_int("fc_width", fc_width), width_divisor)
        self.classifier = fc_stack(
            flat_features(self.features, in_shape), (fc, fc), num_classes, activation=activation, dropout=dropout
        )
        initialize(self, init, activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))
