"""Augmentation applied to whole batches of tensors (on whatever device they live)."""

from __future__ import annotations

import math
from numbers import Integral, Real

import torch
import torch.nn.functional as F

from sweeplab.constraints import Boolean, Interval


class BatchAugment:
    """Random rotation, translation (a random crop of a padded image) and flips.

    Every sample gets its own random parameters, but the whole batch is warped by
    one ``grid_sample`` call, so this costs about one extra conv layer and never
    touches PIL or the CPU when the batch is on a GPU.

    Args:
        rotation: maximum rotation in degrees (uniform in [-rotation, rotation]).
        translate: maximum shift in pixels on each axis, like padding by
            ``translate`` and cropping back to the original size.
        hflip: flip half of the images horizontally.
    """

    parameter_constraints = {
        "rotation": [Interval(Real, 0, 180)],
        "translate": [Interval(Integral, 0, None)],
        "hflip": [Boolean()],
    }

    def __init__(self, rotation: float = 0.0, translate: int = 0, hflip: bool = False) -> None:
        self.rotation = float(rotation)
        self.translate = int(translate)
        self.hflip = bool(hflip)

    @property
    def enabled(self) -> bool:
        return self.rotation > 0 or self.translate > 0 or self.hflip

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        if not self.enabled:
            return images
        n, _, height, width = images.shape
        device, dtype = images.device, images.dtype
        angle = (torch.rand(n, device=device) * 2 - 1) * math.radians(self.rotation)
        cos, sin = torch.cos(angle), torch.sin(angle)
        flip = torch.ones(n, device=device)
        if self.hflip:
            flip = torch.where(torch.rand(n, device=device) < 0.5, -1.0, 1.0)
        # translation in normalized coordinates: pixels * 2 / size, whole pixels only
        shift = torch.randint(-self.translate, self.translate + 1, (n, 2), device=device).to(dtype)
        theta = torch.zeros(n, 2, 3, device=device, dtype=dtype)
        theta[:, 0, 0] = cos * flip
        theta[:, 0, 1] = -sin
        theta[:, 1, 0] = sin * flip
        theta[:, 1, 1] = cos
        theta[:, 0, 2] = shift[:, 0] * 2 / width
        theta[:, 1, 2] = shift[:, 1] * 2 / height
        grid = F.affine_grid(theta, list(images.shape), align_corners=False)
        return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)
