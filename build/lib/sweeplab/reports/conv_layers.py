"""What a convolutional network holds and computes: its conv layers, kernels and feature maps."""

from __future__ import annotations

import torch
from torch import nn


def conv_layers(model: nn.Module) -> list[tuple[str, nn.Conv2d]]:
    """Every ``nn.Conv2d`` of ``model`` with its qualified name, in definition order."""
    return [(name, layer) for name, layer in model.named_modules() if isinstance(layer, nn.Conv2d)]


def first_conv_kernels(model: nn.Module) -> torch.Tensor | None:
    """The first conv layer's filters as images (out_channels, 1 or 3, kH, kW), or None.

    Filters over 1 or 3 input channels are shown as they are (grey or colour);
    filters over any other number are averaged over their input channels.
    """
    layers = conv_layers(model)
    if not layers:
        return None
    weight = layers[0][1].weight.detach().cpu().float()
    return weight if weight.shape[1] in (1, 3) else weight.mean(dim=1, keepdim=True)


@torch.no_grad()
def feature_maps(model: nn.Module, image: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
    """Each conv layer's output (channels, H, W) for one image (C, H, W), via forward hooks."""
    outputs: list[tuple[str, torch.Tensor]] = []
    hooks = [
        layer.register_forward_hook(lambda _layer, _inputs, output, name=name: outputs.append((name, output[0].cpu())))
        for name, layer in conv_layers(model)
    ]
    was_training = model.training
    try:
        model.eval()
        model(image.unsqueeze(0))
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    return outputs
