"""What a trained network learned, as pictures: first-layer kernels and every conv layer's
feature maps for one test image, next to what fixed kernels (edges, blur, sharpen) do to it.

``python visualize.py RUN_DIR`` writes ``kernels.png``, ``feature_maps.png`` and
``fixed_kernels.png`` into the run folder (see :func:`visualize_run`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from sweeplab.errors import ConfigError, UserInputError
from sweeplab.reports.conv_layers import conv_layers, feature_maps, first_conv_kernels
from sweeplab.reports.figures import new_figure, save_png
from sweeplab.reports.fixed_kernels import FIXED_KERNELS, apply_fixed_kernels
from sweeplab.reports.run_model import load_run_model
from sweeplab.reports.tiles import TileLayout, draw_tiles, grid_shape, scale_each
from sweeplab.runs.folder import FEATURE_MAPS_PNG, FIXED_KERNELS_PNG, KERNELS_PNG

MAX_CHANNELS_SHOWN = 64  # per layer; wide layers (512 channels) would give unreadable tiles
MAX_COLS = 16
KERNEL_TILE_INCHES = 1.0
MAP_TILE_INCHES = 0.55
TITLE_INCHES = 0.3
IMAGE_INCHES = 1.2  # the input image above the feature maps


@dataclass
class Visualization:
    """What :func:`visualize_run` wrote, and how many tiles each picture has."""

    files: list[Path] = field(default_factory=list)
    kernel_layout: TileLayout | None = None
    feature_map_layouts: list[TileLayout] = field(default_factory=list)
    image_index: int = 0


def visualize_run(
    run_dir: str | Path,
    *,
    image_index: int = 0,
    out_dir: str | Path | None = None,
    overrides: Sequence[str] = (),
) -> Visualization:
    """Write the run's kernels, feature maps and fixed-kernel pictures for test image ``image_index``."""
    restored = load_run_model(run_dir, overrides)
    model, datamodule = restored.model, restored.datamodule
    if not conv_layers(model):
        raise UserInputError(
            f"{str(run_dir)!r}: model {type(model).__name__} has no Conv2d layer, so no kernels or feature maps to show"
        )
    test_size = len(datamodule.test_labels)
    if not 0 <= image_index < test_size:
        raise ConfigError("--image", image_index, f"an index into the {test_size} test images, 0 to {test_size - 1}")
    out_dir = Path(out_dir) if out_dir is not None else restored.run_dir
    image = datamodule.normalize(datamodule.test_images[image_index : image_index + 1])[0].cpu()
    label = int(datamodule.test_labels[image_index])
    with torch.no_grad():
        predicted = int(model(image.unsqueeze(0)).argmax(dim=1))
    classes = datamodule.classes
    caption = f"test image {image_index}: true {classes[label]}, predicted {classes[predicted]}"

    result = Visualization(image_index=image_index)
    kernels = first_conv_kernels(model)
    assert kernels is not None  # the model has a Conv2d layer: checked above
    figure, result.kernel_layout = plot_kernels(kernels, conv_layers(model)[0][0])
    result.files.append(save_png(figure, out_dir / KERNELS_PNG))
    figure, result.feature_map_layouts = plot_feature_maps(feature_maps(model, image), image, caption)
    result.files.append(save_png(figure, out_dir / FEATURE_MAPS_PNG))
    result.files.append(save_png(plot_fixed_kernels(image, caption), out_dir / FIXED_KERNELS_PNG))
    return result


def _show_image(ax: Axes, image: torch.Tensor, title: str, cmap: str = "gray") -> None:
    """One (C, H, W) image stretched to [0, 1]: grey for one channel, colour for three."""
    picture = scale_each(image.unsqueeze(0))[0]
    if picture.shape[0] == 3:
        ax.imshow(picture.permute(1, 2, 0).numpy(), interpolation="nearest")
    else:
        ax.imshow(picture.mean(dim=0).numpy(), cmap=cmap, interpolation="nearest")
    ax.set_title(title, fontsize=8)
    ax.set_axis_off()


def _stacked_figure(width_in: float, heights_in: Sequence[float]) -> tuple[Figure, list[Axes]]:
    """A figure of axes stacked top to bottom, ``heights_in[i]`` inches tall, each under a title line."""
    total = sum(heights_in) + TITLE_INCHES * (len(heights_in) + 1)  # + the figure's own title
    figure = new_figure(width_in, total)
    axes, top = [], total - TITLE_INCHES
    for height in heights_in:
        top -= TITLE_INCHES
        axes.append(figure.add_axes((0.01, (top - height) / total, 0.98, height / total)))
        top -= height
    return figure, axes


def plot_kernels(kernels: torch.Tensor, layer_name: str = "first conv layer") -> tuple[Figure, TileLayout]:
    """One tile per filter of the first conv layer (grey for 1 input channel, colour for 3)."""
    count, in_channels, k_h, k_w = kernels.shape
    rows, cols = grid_shape(count, MAX_COLS)
    width, height = max(3.0, cols * KERNEL_TILE_INCHES), rows * KERNEL_TILE_INCHES * k_h / k_w
    figure, (ax,) = _stacked_figure(width, [height])
    layout = draw_tiles(ax, kernels, max_cols=MAX_COLS)
    figure.suptitle(f"{layer_name}: {count} filters of {in_channels}x{k_h}x{k_w}", fontsize=9, y=0.99, va="top")
    return figure, layout


def plot_feature_maps(
    maps: Sequence[tuple[str, torch.Tensor]],
    image: torch.Tensor,
    caption: str = "",
) -> tuple[Figure, list[TileLayout]]:
    """The input image, then each conv layer's output channels, one tile per channel."""
    shown = [(name, output, output[:MAX_CHANNELS_SHOWN]) for name, output in maps]
    grids = [grid_shape(len(channels), MAX_COLS) for _, _, channels in shown]
    heights = [
        rows * MAP_TILE_INCHES * ch.shape[1] / ch.shape[2] for (rows, _), (_, _, ch) in zip(grids, shown, strict=True)
    ]
    width = max(4.0, max((cols for _, cols in grids), default=1) * MAP_TILE_INCHES)
    figure, (image_ax, *layer_axes) = _stacked_figure(width, [IMAGE_INCHES, *heights])
    _show_image(image_ax, image, caption or "input")
    layouts = []
    for ax, (name, output, channels) in zip(layer_axes, shown, strict=True):
        layouts.append(draw_tiles(ax, channels.unsqueeze(1), max_cols=MAX_COLS, cmap="viridis"))
        of_total = f"first {len(channels)} of " if len(channels) < len(output) else ""
        ax.set_title(f"{name}: {of_total}{len(output)} channels, {output.shape[1]}x{output.shape[2]}", fontsize=8)
    figure.suptitle("feature maps: each conv layer's outputs", fontsize=9, y=0.995, va="top")
    return figure, layouts


def plot_fixed_kernels(image: torch.Tensor, caption: str = "") -> Figure:
    """Fixed 3x3 kernels (top row, with their weights) and what each does to ``image`` (bottom row)."""
    filtered = apply_fixed_kernels(image)
    columns = 1 + len(filtered)
    figure = new_figure(1.8 * columns, 4.0)
    axes = figure.subplots(2, columns)
    figure.subplots_adjust(left=0.01, right=0.99, bottom=0.02, top=0.86, wspace=0.1, hspace=0.25)
    _show_image(axes[0][0], image, "input")
    axes[1][0].set_axis_off()
    for column, (name, output) in enumerate(filtered.items(), start=1):
        _draw_kernel_weights(axes[0][column], FIXED_KERNELS[name], name)
        _show_image(axes[1][column], output, name)
    figure.suptitle(f"fixed kernels applied with conv2d to {caption or 'one image'}", fontsize=9)
    return figure


def _draw_kernel_weights(ax: Axes, kernel: torch.Tensor, title: str) -> None:
    limit = float(kernel.abs().max()) or 1.0
    ax.imshow(kernel.numpy(), cmap="RdBu_r", vmin=-limit, vmax=limit)
    for (row, col), value in np.ndenumerate(kernel.numpy()):
        ax.text(
            col,
            row,
            f"{value:.2g}",
            ha="center",
            va="center",
            fontsize=7,
            color="white" if abs(value) > limit / 2 else "black",
        )
    ax.set_title(title, fontsize=8)
    ax.set_axis_off()
