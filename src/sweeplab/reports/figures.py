"""Matplotlib figures without pyplot: drawn off-screen (Agg), saved as PNG files.

Figures are built with :class:`matplotlib.figure.Figure` directly, so no global
pyplot state is touched, no window opens, and nothing needs closing: a figure is
freed like any other object once it goes out of scope.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import cast

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from sweeplab.files import write_bytes_atomic

DPI = 100


def new_figure(width_in: float, height_in: float) -> Figure:
    """A blank figure. Margins are set by the caller (``subplots_adjust``): an automatic
    layout engine draws the figure several times and would double the plotting time."""
    figure = Figure(figsize=(width_in, height_in), dpi=DPI)
    FigureCanvasAgg(figure)  # attaches the Agg canvas: figures render without any GUI backend
    return figure


def render_rgb(figure: Figure) -> np.ndarray:
    """The figure as an (H, W, 3) uint8 array (what TensorBoard's ``add_image`` takes)."""
    canvas = cast(FigureCanvasAgg, figure.canvas)  # every figure here is made on an Agg canvas (new_figure)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def png_bytes(rgb: np.ndarray) -> bytes:
    from matplotlib.image import imsave  # noqa: PLC0415 (keeps importing this module light)

    buffer = io.BytesIO()
    imsave(buffer, rgb, format="png")
    return buffer.getvalue()


def save_png(figure_or_rgb: Figure | np.ndarray, path: str | Path) -> Path:
    """Write a figure (or an already rendered image) as a PNG; a kill never leaves half a file.

    Written with :func:`sweeplab.files.write_bytes_atomic` (temporary file, then rename).
    """
    rgb = render_rgb(figure_or_rgb) if isinstance(figure_or_rgb, Figure) else figure_or_rgb
    return write_bytes_atomic(path, png_bytes(rgb))
