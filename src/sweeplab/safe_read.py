"""The one safe reader of what others hand sweeplab: images and JSON files, with limits checked first.

Every image (training folders, ``predict.py``) and every JSON file of a run folder
(``results.json``, ``run.json``, ``cv_report.json``) is read here. A file that is too
large, too deeply nested or not what it claims to be raises :class:`UnreadableFile`,
one line naming the file: a command refuses it (one file asked for) or warns and goes
on without it (many files listed).

Images are converted by one function, :func:`image_pixels`, for every split and for
prediction: 16-bit and float pixels are scaled to 8 bits (not clipped), palette and
CMYK images become RGB, transparent pixels are laid on black, then the channels and the
size are the run's.
"""

from __future__ import annotations

import io
import json
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from sweeplab.errors import UserInputError

MAX_IMAGE_PIXELS = 89_478_485  # width x height read from the header (Pillow's own warning bound: 1/4 GB of RGBA)
MAX_JSON_DEPTH = 64  # nested arrays and objects: a run's records nest 4 deep
MAX_JSON_BYTES = 512 * 2**20
SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")  # PNG and TIFF 16-bit grayscale open as one of these
GRAY_MODES = ("1", "L", "LA", "La", "F", *SIXTEEN_BIT_MODES)
CONVERSION_VERSION = 2  # bump when image_pixels changes what it returns (decoded-image caches are keyed by it)


class UnreadableFile(UserInputError):
    """A file that cannot be read safely: missing, too large, too deeply nested, or damaged; the message names it."""


def _one_line(error: BaseException, limit: int = 200) -> str:
    return " ".join(str(error).split())[:limit] or type(error).__name__


# --- JSON ----------------------------------------------------------------------------------


_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


def json_depth(text: str) -> int:
    """The deepest nesting of arrays and objects in JSON ``text``, counted without recursion (strings skipped)."""
    brackets = _NOT_BRACKET.sub("", _JSON_STRING.sub("", text)).encode()
    if not brackets:
        return 0
    codes = np.frombuffer(brackets, dtype=np.uint8)
    steps = np.where((codes == ord("[")) | (codes == ord("{")), 1, -1)
    return int(np.cumsum(steps).max())


def _json_depth_exceeds(text: str, limit: int) -> bool:
    """Whether ``text`` nests deeper than ``limit``: a fast path when it holds no more brackets than that."""
    brackets = text.count("[") + text.count("{")
    return brackets > limit and json_depth(text) > limit


def read_json_file(path: str | Path, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """The parsed JSON of ``path``; :class:`UnreadableFile` naming it when it is missing, larger than
    :data:`MAX_JSON_BYTES`, nested deeper than ``max_depth``, or not JSON."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_JSON_BYTES:
            raise UnreadableFile(f"{path} is too large to be a run's record ({size} bytes, at most {MAX_JSON_BYTES})")
        text = path.read_text(encoding="utf-8")
    except UnreadableFile:
        raise
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else _one_line(error)
        raise UnreadableFile(f"cannot read {path}: {reason}") from None
    if _json_depth_exceeds(text, max_depth):
        raise UnreadableFile(f"cannot read {path}: nested deeper than {max_depth} levels, which no run's record is")
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError, ValueError) as error:
        raise UnreadableFile(f"cannot read {path}: {_one_line(error)}") from None


# --- images --------------------------------------------------------------------------------


def open_image(path: str | Path, content: bytes | None = None):
    """The image of ``path`` (or of its ``content``, already read), header read, pixels not yet decoded;
    :class:`UnreadableFile` naming the file when it is no image or its header claims more than
    :data:`MAX_IMAGE_PIXELS` pixels (a decompression bomb is refused before decoding)."""
    from PIL import Image  # noqa: PLC0415

    try:
        with warnings.catch_warnings():  # the bound below replaces Pillow's warning (and its error at twice it)
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path if content is None else io.BytesIO(content))
    except Image.DecompressionBombError as error:  # Pillow's own bound, twice its warning's: beyond ours too
        claimed = re.search(r"\((\d+) pixels\)", str(error))
        raise UnreadableFile(
            f"{path} claims {claimed.group(1) if claimed else 'more'} pixels, more than "
            f"{MAX_IMAGE_PIXELS} (a decompression bomb?): not decoded"
        ) from None
    except Exception as error:  # noqa: BLE001 (not an image at all, an unknown format, an unreadable file)
        raise UnreadableFile(f"{path} cannot be read: not an image sweeplab can decode ({_one_line(error)})") from None
    width, height = image.size
    if width * height > MAX_IMAGE_PIXELS:
        image.close()
        raise UnreadableFile(
            f"{path} claims {width * height} pixels ({width}x{height}), more than "
            f"{MAX_IMAGE_PIXELS} (a decompression bomb?): not decoded"
        )
    return image


def image_channels(mode: str) -> int:
    """1 for the grayscale modes of Pillow, 3 for every other (palette, RGB, RGBA, CMYK, YCbCr...)."""
    return 1 if mode in GRAY_MODES else 3


def _eight_bit(image):
    """16-bit and float grayscale scaled to ``L`` (65535 or 1.0 -> 255), not clipped at 255 as Pillow's
    ``convert`` does; other modes unchanged."""
    from PIL import Image  # noqa: PLC0415

    if image.mode not in (*SIXTEEN_BIT_MODES, "F"):
        return image
    values = np.asarray(image, dtype=np.float64)
    scale = 255.0 / 65535.0
    if image.mode == "F":  # float images: [0, 1] when they stay in it, else 8-bit values
        scale = 255.0 if values.size and np.nanmax(values) <= 1.0 else 1.0
    values = np.nan_to_num(values * scale, nan=0.0, posinf=255.0, neginf=0.0)
    return Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8), mode="L")


def _flattened(image):
    """Palette, transparency and CMYK images as ``L`` or ``RGB``; transparent pixels laid on black."""
    from PIL import Image  # noqa: PLC0415

    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif image.mode == "PA":
        image = image.convert("RGBA")
    if image.mode in ("LA", "La", "RGBA", "RGBa"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        flat = Image.alpha_composite(background, rgba).convert("RGB")
        return flat.convert("L") if image.mode in ("LA", "La") else flat
    return image


def image_pixels(image, channels: int, size: tuple[int, int]) -> np.ndarray:
    """The one conversion of every image sweeplab reads: 8 bits, ``channels`` (1 or 3) and ``size``
    (width, height), as a uint8 array (H, W) for one channel, (H, W, 3) for three."""
    from PIL import Image  # noqa: PLC0415

    image = _flattened(_eight_bit(image))
    image = image.convert("L" if channels == 1 else "RGB")
    if image.size != tuple(size):
        image = image.resize(tuple(size), Image.Resampling.BILINEAR)
    return np.asarray(image, dtype=np.uint8)


def read_image_pixels(
    path: str | Path, channels: int, size: tuple[int, int], content: bytes | None = None
) -> np.ndarray:
    """:func:`image_pixels` of the file ``path``; :class:`UnreadableFile` naming it when it cannot be decoded."""
    with open_image(path, content) as image:
        try:
            return image_pixels(image, channels, size)
        except Exception as error:  # noqa: BLE001 (a truncated file: the header read, the pixels do not)
            raise UnreadableFile(f"{path} cannot be decoded: {_one_line(error)}") from None
