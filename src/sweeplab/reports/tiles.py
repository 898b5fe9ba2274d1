"""Many small images (digits, filters, feature maps) drawn as one mosaic on one axes.

One ``imshow`` of a mosaic is much faster than one axes per tile, which matters
because run plots are drawn at the end of every run.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from matplotlib.axes import Axes

GAP = 1  # pixels between tiles


@dataclass(frozen=True)
class TileLayout:
    """Where the tiles went: ``tiles`` images on a ``rows`` x ``cols`` grid."""

    rows: int
    cols: int
    tiles: int


def grid_shape(count: int, max_cols: int | None = None) -> tuple[int, int]:
    """A near-square (rows, cols) grid for ``count`` tiles, at most ``max_cols`` wide."""
    cols = max(1, math.ceil(math.sqrt(count)))
    if max_cols:
        cols = min(cols, max_cols)
    return max(1, math.ceil(count / cols)), cols


def scale_each(images: torch.Tensor) -> torch.Tensor:
    """Stretch every image (N, ...) on its own to [0, 1]; a constant image becomes 0.5."""
    flat = images.detach().float().flatten(1)
    low, high = flat.min(dim=1, keepdim=True).values, flat.max(dim=1, keepdim=True).values
    span = high - low
    scaled = torch.where(span > 0, (flat - low) / span.clamp_min(1e-12), torch.full_like(flat, 0.5))
    return scaled.view_as(images)


def mosaic(images: torch.Tensor, rows: int, cols: int, label_band: int = 0) -> np.ndarray:
    """Images (N, C, H, W), C = 1 or 3, in [0, 1], placed on a grid; gaps are NaN (1 channel) or white.

    ``label_band`` leaves that many empty pixel rows above every tile for its label.
    """
    n, channels, height, width = images.shape
    cell_h, cell_w = height + GAP + label_band, width + GAP
    canvas = np.full((rows * cell_h + GAP, cols * cell_w + GAP, channels), np.nan if channels == 1 else 1.0)
    pixels = images.permute(0, 2, 3, 1).cpu().numpy()
    for index in range(n):
        row, col = divmod(index, cols)
        top, left = row * cell_h + GAP + label_band, col * cell_w + GAP
        canvas[top : top + height, left : left + width] = pixels[index]
    return canvas[..., 0] if channels == 1 else canvas


def draw_tiles(
    ax: Axes,
    images: torch.Tensor,
    labels: Sequence[str] | None = None,
    *,
    max_cols: int | None = None,
    cmap: str = "gray",
    label_size: float = 6.0,
    label_band: int = 0,
) -> TileLayout:
    """Draw images (N, C, H, W) with C = 1 or 3, each stretched to [0, 1], as one mosaic.

    Returns the layout, so callers (and tests) know how many tiles were drawn.
    """
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"draw_tiles takes (N, 1 or 3, H, W) images, got shape {tuple(images.shape)}")
    rows, cols = grid_shape(len(images), max_cols)
    band = label_band if labels else 0
    picture = mosaic(scale_each(images), rows, cols, band)
    ax.imshow(picture, cmap=cmap, vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.set_axis_off()
    if labels:
        height, width = images.shape[2:]
        for index, label in enumerate(labels[: len(images)]):
            row, col = divmod(index, cols)
            x = col * (width + GAP) + GAP + width / 2
            y = row * (height + GAP + band) + GAP + band - 0.5
            ax.text(x, y, label, ha="center", va="bottom", fontsize=label_size, linespacing=1.0)
    return TileLayout(rows, cols, len(images))
