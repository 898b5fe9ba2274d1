"""Matplotlib figures without pyplot: drawn off-screen (Agg), saved as PNG files.

Figures are built with :class:`matplotlib.figure.Figure` directly, so no global
pyplot state is touched, no window opens, and nothing needs closing: a figure is
freed like any other object once it goes out of scope.
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

DPI = 100


def new_figure(width_in: float, height_in: float) -> Figure:
    """A blank figure. Margins are set by the caller (``subplots_adjust``): an automatic
    layout engine draws the figure several times and would double the plotting time."""
    figure = Figure(figsize=(width_in, height_in), dpi=DPI)
    FigureCanvasAgg(figure)  # attaches the Agg canvas: figures render without any GUI backend
    return figure


def render_rgb(figure: Figure) -> np.ndarray:
    """The figure as an (H, W, 3) uint8 array (what TensorBoard's ``add_image`` takes)."""
    figure.canvas.draw()
    return np.asarray(figure.canvas.buffer_rgba())[..., :3].copy()


def png_bytes(rgb: np.ndarray) -> bytes:
    from matplotlib.image import imsave  # noqa: PLC0415 (keeps importing this module light)

    buffer = io.BytesIO()
    imsave(buffer, rgb, format="png")
    return buffer.getvalue()


def save_png(figure_or_rgb: Figure | np.ndarray, path: str | Path) -> Path:
    """Write a figure (or an already rendered image) as a PNG; a kill never leaves half a file.

    The bytes go to a temporary file in the same folder that is then renamed over
    ``path``, as :func:`sweeplab.runs.files.write_text_atomic` does for text.
    """
    rgb = render_rgb(figure_or_rgb) if isinstance(figure_or_rgb, Figure) else figure_or_rgb
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(png_bytes(rgb))
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
