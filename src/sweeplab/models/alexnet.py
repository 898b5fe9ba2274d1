"""AlexNet (Krizhevsky et al., 2012), single-tower, without local response normalization."""

from __future__ import annotations

import torch
from torch import nn

from sweeplab.models.layers import (
    SafePool2d,
    conv_block,
    fc_stack,
    first_conv_geometry,
    flat_features,
    initialize,
    positive_int,
    scale_width,
)

CONV_WIDTHS = (96, 256, 384, 384, 256)


class AlexNet(nn.Module):
    """Five conv layers (96, 256, 384, 384, 256), three 3x3 stride-2 max pools, two FC layers of ``fc_width``.

    The first conv is the paper's 11x11 stride 4 only for inputs of 64 px or more, else 3x3 stride 1; pools that would
    not fit the map are skipped, so 28x28 and 224x224 inputs both work. ``width_divisor`` divides every width.
    """

    def __init__(
        self,
        in_shape: tuple[int, int, int],
        num_classes: int,
        *,
        fc_width: int = 4096,
        width_divisor: int = 1,
        activation: str = "relu",
        norm: str = "none",
        dropout: float = 0.5,
        init: str = "default",
    ) -> None:
        super().__init__()
        c1, c2, c3, c4, c5 = (scale_width(width, width_divisor) for width in CONV_WIDTHS)
        kernel, stride, padding = first_conv_geometry(in_shape)

        def conv(cin: int, cout: int, k: int, s: int = 1, p: int = 0) -> list[nn.Module]:
            return list(conv_block(cin, cout, k, stride=s, padding=p, activation=activation, norm=norm))

        def pool() -> SafePool2d:
            return SafePool2d("max", 3, stride=2)

        self.features = nn.Sequential(
            *conv(in_shape[0], c1, kernel, stride, padding), pool(),
            *conv(c1, c2, 5, p=2), pool(),
            *conv(c2, c3, 3, p=1), *conv(c3, c4, 3, p=1), *conv(c4, c5, 3, p=1), pool(),
        )  # fmt: skip
        fc = scale_width(positive_int("fc_width", fc_width), width_divisor)
        self.classifier = fc_stack(
            flat_features(self.features, in_shape), (fc, fc), num_classes, activation=activation, dropout=dropout
        )
        initialize(self, init, activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))
