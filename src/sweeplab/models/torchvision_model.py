"""Any torchvision classification architecture, untrained, adapted to the data's shape."""

from __future__ import annotations

from typing import Any

import torch
import torchvision
from torch import nn

from sweeplab.models.layers import check_choice

# Builders whose defaults do not fit this contract: the auxiliary heads make forward return a tuple in training
# mode (and would get no gradient if it were dropped).
BUILDER_KWARGS: dict[str, dict[str, Any]] = {
    "googlenet": {"aux_logits": False, "init_weights": True},
    "inception_v3": {"aux_logits": False, "init_weights": True},
}


def classification_models() -> list[str]:
    """Names ``torchvision.models.get_model`` accepts for image classification."""
    return torchvision.models.list_models(module=torchvision.models)


def replace_first_conv(model: nn.Module, in_channels: int) -> None:
    """Swap the first ``Conv2d`` of ``model`` for a fresh one reading ``in_channels`` channels (unless it does)."""
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            if module.in_channels == in_channels:
                return
            parent_name, _, attribute = name.rpartition(".")
            # the old conv's geometry as it is (torch types the stored sizes tuple[int, ...], the arguments tuple[int, int])
            geometry: dict[str, Any] = dict(
                kernel_size=module.kernel_size, stride=module.stride, padding=module.padding, dilation=module.dilation
            )
            new = nn.Conv2d(
                in_channels,
                module.out_channels,
                **geometry,
                bias=module.bias is not None,
                padding_mode=module.padding_mode,
            )
            setattr(model.get_submodule(parent_name), attribute, new)
            return
    raise ValueError(f"model.name: {type(model).__name__} has no Conv2d to adapt to {in_channels} channels")


class TorchvisionModel(nn.Module):
    """``torchvision.models.get_model(name, weights=None, num_classes=...)``, its first conv reading ``in_shape[0]``.

    Tried on one zero image when built, so an architecture that cannot handle the input size (a ViT's fixed patch
    grid, Inception v3 on 28x28) fails here with a ValueError naming ``model.name``, not in the first training step.
    Many downsample 32x, so small images reach the classifier as 1x1 maps: that works but wastes most of the network.
    """

    def __init__(self, in_shape: tuple[int, int, int], num_classes: int, *, name: str = "resnet18") -> None:
        super().__init__()
        check_choice("name", name, classification_models())
        builder_kwargs = BUILDER_KWARGS.get(name, {})
        self.net = torchvision.models.get_model(name, weights=None, num_classes=num_classes, **builder_kwargs)
        replace_first_conv(self.net, in_shape[0])
        self._check_runs(name, in_shape)

    def _check_runs(self, name: str, in_shape: tuple[int, int, int]) -> None:
        self.net.eval()
        try:
            with torch.no_grad():
                self.net(torch.zeros(1, *in_shape))
        except (RuntimeError, AssertionError, ValueError) as error:
            raise ValueError(f"model.name={name!r} cannot run on inputs of shape {tuple(in_shape)}: {error}") from error
        finally:
            self.net.train()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
