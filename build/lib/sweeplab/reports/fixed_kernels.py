"""Hand-made 3x3 kernels (edge detection, blur, sharpen): what a conv layer could learn.

Applied to the same image as a trained network's first layer, they show what a
convolution does before any learning: the classic picture of beginners' courses.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

FIXED_KERNELS: dict[str, torch.Tensor] = {
    "edges (Sobel x)": torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]),
    "edges (Sobel y)": torch.tensor([[-1.0, -2.0, -1.0], [0.0, 0.0, 0.0], [1.0, 2.0, 1.0]]),
    "edges (Laplacian)": torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]]),
    "box blur": torch.full((3, 3), 1.0 / 9.0),
    "sharpen": torch.tensor([[0.0, -1.0, 0.0], [-1.0, 5.0, -1.0], [0.0, -1.0, 0.0]]),
}


def apply_kernel(image: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Convolve every channel of ``image`` (C, H, W) with the 2-D ``kernel``; same size out.

    Borders are padded by reflection, so a flat image stays flat under a blur and
    gives no edges.
    """
    channels = image.shape[0]
    k_h, k_w = kernel.shape
    weight = kernel.to(image.dtype).expand(channels, 1, k_h, k_w)
    padded = F.pad(image.unsqueeze(0), (k_w // 2, (k_w - 1) // 2, k_h // 2, (k_h - 1) // 2), mode="reflect")
    return F.conv2d(padded, weight, groups=channels)[0]


def apply_fixed_kernels(image: torch.Tensor) -> dict[str, torch.Tensor]:
    """Each of :data:`FIXED_KERNELS` applied to ``image`` (C, H, W)."""
    return {name: apply_kernel(image, kernel) for name, kernel in FIXED_KERNELS.items()}
