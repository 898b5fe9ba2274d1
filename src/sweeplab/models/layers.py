"""Building blocks shared by the architectures: the knobs every model exposes.

Every knob is validated here, so a bad value fails when the model is built with a ``ValueError`` naming
``model.KNOB``, the value and what is allowed, rather than deep inside PyTorch during the first training step.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Literal, cast

import torch
from torch import nn

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
}
POOLS: dict[str, type[nn.Module]] = {"max": nn.MaxPool2d, "avg": nn.AvgPool2d}
NORMS = ("batch", "none")
INITS = ("default", "kaiming", "xavier")

LARGE_INPUT = 64
"""Inputs whose smaller side has at least this many pixels get the papers' ImageNet stems (large strided first
convs); smaller ones (MNIST, CIFAR) a 3x3 stride-1 first conv, so early layers do not shrink 28x28 to nothing."""


def check_choice(knob: str, value: str, allowed: Collection[str]) -> None:
    if value not in allowed:
        raise ValueError(f"model.{knob}={value!r} is not one of {', '.join(allowed)}")


def positive_int(knob: str, value: object) -> int:
    """``value`` if it is an int >= 1 (not a bool), else a ``ValueError`` naming ``model.<knob>``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"model.{knob}={value!r} must be a positive integer")
    return value


def positive_ints(knob: str, values: Sequence[object]) -> tuple[int, ...]:
    """Each of ``values`` as by :func:`positive_int`; accepts Hydra ListConfigs."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise ValueError(f"model.{knob}={values!r} must be a list of positive integers")
    try:
        return tuple(positive_int(knob, value) for value in values)
    except ValueError:
        raise ValueError(f"model.{knob}={list(values)!r} must be a list of positive integers") from None


def scale_width(width: int, divisor: int) -> int:
    """``width // divisor``, at least 1: the ``width_divisor`` knob that shrinks models for CPUs."""
    return max(1, width // positive_int("width_divisor", divisor))


def is_large_input(in_shape: Sequence[int]) -> bool:
    """Whether ``in_shape`` (C, H, W) is big enough for an ImageNet-style stem."""
    return min(in_shape[1], in_shape[2]) >= LARGE_INPUT


def make_activation(name: str) -> nn.Module:
    check_choice("activation", name, tuple(ACTIVATIONS))
    return ACTIVATIONS[name]()


def make_norm2d(kind: str, channels: int) -> nn.Module:
    """Batch norm for ``kind='batch'``, identity for ``'none'``."""
    check_choice("norm", kind, NORMS)
    return nn.BatchNorm2d(channels) if kind == "batch" else nn.Identity()


def make_dropout(p: float) -> nn.Dropout:
    """``nn.Dropout(p)``, rejecting probabilities outside [0, 1) with the knob's name."""
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p < 1.0:
        raise ValueError(f"model.dropout={p!r} must be a probability in [0, 1)")
    return nn.Dropout(float(p))


def conv_block(
    in_channels: int,
    out_channels: int,
    kernel_size: int,
    *,
    stride: int = 1,
    padding: int = 0,
    activation: str | None = "relu",
    norm: str = "none",
) -> nn.Sequential:
    """Conv, optional batch norm, activation (none when ``activation`` is None). The conv has no bias when batch norm
    follows it: the norm's shift replaces it."""
    check_choice("norm", norm, NORMS)
    layers = [
        nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=norm == "none"),
        make_norm2d(norm, out_channels),
    ]
    if activation is not None:
        layers.append(make_activation(activation))
    return nn.Sequential(*layers)


class SafePool2d(nn.Module):
    """Max or average pooling that passes a map smaller than its window through unchanged: deep stacks (VGG, AlexNet,
    NiN) shrink a 28x28 input to 1x1 before the last pool, where a plain pool would raise."""

    def __init__(self, kind: str = "max", kernel_size: int = 2, stride: int | None = None, padding: int = 0) -> None:
        super().__init__()
        check_choice("pool", kind, tuple(POOLS))
        self.pool = POOLS[kind](kernel_size, stride=stride, padding=padding)
        self.kernel_size = kernel_size
        self.padding = padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x if min(x.shape[-2:]) + 2 * self.padding < self.kernel_size else self.pool(x)


def make_stem(in_shape: Sequence[int], out_channels: int, *, activation: str, norm: str) -> nn.Sequential:
    """First layers of ResNet and GoogLeNet: the ImageNet stem (7x7 stride-2 conv, 3x3 stride-2 max pool) for large
    inputs; for small ones a CIFAR-style 3x3 stride-1 conv without pooling, since a 4x reduction would leave a 28x28
    image only 7x7 before the first real stage."""
    if is_large_input(in_shape):
        return nn.Sequential(
            *conv_block(in_shape[0], out_channels, 7, stride=2, padding=3, activation=activation, norm=norm),
            nn.MaxPool2d(3, stride=2, padding=1),
        )
    return conv_block(in_shape[0], out_channels, 3, padding=1, activation=activation, norm=norm)


def first_conv_geometry(in_shape: Sequence[int]) -> tuple[int, int, int]:
    """(kernel, stride, padding) of AlexNet's and NiN's first conv: the paper's 11x11 stride 4 for large inputs."""
    return (11, 4, 2) if is_large_input(in_shape) else (3, 1, 1)


def fc_stack(
    in_features: int, hidden: Sequence[int], num_classes: int, *, activation: str, dropout: float
) -> nn.Sequential:
    """Flatten, then ``[Linear, activation, Dropout]`` per hidden width, then the output layer."""
    layers: list[nn.Module] = [nn.Flatten()]
    width = in_features
    for size in positive_ints("hidden", hidden):
        layers += [nn.Linear(width, size), make_activation(activation), make_dropout(dropout)]
        width = size
    layers.append(nn.Linear(width, num_classes))
    return nn.Sequential(*layers)


def global_avg_pool() -> nn.Sequential:
    """Average each channel over the whole map, giving ``(N, C)``: no flatten size to know."""
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())


def flat_features(features: nn.Module, in_shape: Sequence[int]) -> int:
    """Features per sample that ``features`` outputs for ``in_shape``, by a forward pass on one zero image, so no
    flatten size is ever hard-coded."""
    was_training = features.training
    features.eval()
    with torch.no_grad():
        out = features(torch.zeros(1, *in_shape))
    features.train(was_training)
    return out[0].numel()


def initialize(model: nn.Module, scheme: str, nonlinearity: str = "relu") -> nn.Module:
    """Re-initialize conv and linear weights with ``scheme`` (default keeps PyTorch's) and zero their biases; norm
    layers keep (1, 0). ``nonlinearity``, the model's activation, picks the gain (GELU counts as ReLU)."""
    check_choice("init", scheme, INITS)
    if scheme == "default":
        return model
    gain_name = (
        cast(Literal["relu", "leaky_relu", "tanh", "sigmoid"], nonlinearity)
        if nonlinearity in ("relu", "leaky_relu", "tanh", "sigmoid")
        else "relu"
    )
    for layer in model.modules():
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            if scheme == "kaiming":
                nn.init.kaiming_normal_(layer.weight, nonlinearity=gain_name)
            else:
                nn.init.xavier_uniform_(layer.weight, gain=nn.init.calculate_gain(gain_name))
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
    return model
