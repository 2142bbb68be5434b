"""Reading images from users and datasets without trusting them.

Every image physforge decodes from a user path or from dataset bytes goes through
:func:`load_image`. It reads the header first and refuses, with an error that names the
file and the problem, anything that is not a decodable picture of sane size: empty files,
files whose contents are not the type their extension claims, truncated or corrupt data,
and decompression bombs (a few kB of PNG that would expand to gigapixels), before any
pixel buffer is allocated.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from physforge.errors import ImageInputError

__all__ = ["ImageInputError", "ImageLimits", "load_image", "DEFAULT_LIMITS"]

# Formats that each extension may hold (as PIL names them). A mismatch means the file is
# not what it says, which is refused rather than guessed at.
_EXTENSION_FORMATS = {
    ".png": {"PNG"},
    ".jpg": {"JPEG", "MPO"},
    ".jpeg": {"JPEG", "MPO"},
    ".bmp": {"BMP", "DIB"},
    ".gif": {"GIF"},
    ".webp": {"WEBP"},
    ".tif": {"TIFF"},
    ".tiff": {"TIFF"},
    ".ppm": {"PPM"},
    ".pgm": {"PPM"},
}
# Only formats with well-exercised decoders are accepted, whatever the extension.
_ALLOWED_FORMATS = frozenset().union(*_EXTENSION_FORMATS.values())


@dataclass(frozen=True)
class ImageLimits:
    """Size limits that :func:`load_image` enforces.

    ``min_side``: smallest accepted width or height, px. ``max_side``: largest width or
    height, px. ``max_pixels``: largest width × height, checked from the header before any
    decoding (the decompression-bomb guard). ``max_bytes``: largest encoded size, bytes.
    """

    min_side: int = 8
    max_side: int = 16384
    max_pixels: int = 40_000_000
    max_bytes: int = 100 * 1024 * 1024

    def __post_init__(self) -> None:
        for name in ("min_side", "max_side", "max_pixels", "max_bytes"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"ImageLimits.{name} must be a positive int (got {value!r})")
        if self.min_side > self.max_side:
            raise ValueError(f"ImageLimits.min_side ({self.min_side}) exceeds max_side ({self.max_side})")


DEFAULT_LIMITS = ImageLimits()


def load_image(
    source: str | Path | bytes | bytearray | memoryview,
    *,
    min_side: int | None = None,
    max_side: int | None = None,
    max_pixels: int | None = None,
    max_bytes: int | None = None,
    name: str | None = None,
) -> np.ndarray:
    """Decode ``source`` (a file path or the encoded bytes) into ``(H, W, 3) uint8`` RGB.

    Keyword limits override :data:`DEFAULT_LIMITS` (see :class:`ImageLimits` for units).
    ``name`` labels in-memory bytes in error messages (default ``"<bytes>"``). Alpha is
    dropped, grey is expanded to three channels, EXIF rotation is applied, and of an
    animated image only the first frame is returned.

    Raises :class:`ImageInputError` (a ``ValueError``) naming the file and the problem.
    """
    limits = ImageLimits(
        min_side=DEFAULT_LIMITS.min_side if min_side is None else min_side,
        max_side=DEFAULT_LIMITS.max_side if max_side is None else max_side,
        max_pixels=DEFAULT_LIMITS.max_pixels if max_pixels is None else max_pixels,
        max_bytes=DEFAULT_LIMITS.max_bytes if max_bytes is None else max_bytes,
    )
    label, data, extension = _read_source(source, name, limits)
    return _decode(label, data, extension, limits)


def _read_source(source, name, limits: ImageLimits) -> tuple[str, bytes, str | None]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        label = name or "<bytes>"
        if len(data) > limits.max_bytes:
            raise ImageInputError(label, f"{len(data)} bytes exceeds the {limits.max_bytes}-byte limit (max_bytes)")
        extension = Path(name).suffix.lower() if name else None
    elif isinstance(source, (str, Path)):
        path = Path(source)
        label = name or str(path)
        if not path.exists():
            raise ImageInputError(label, "file not found")
        if not path.is_file():
            raise ImageInputError(label, "not a regular file")
        size = path.stat().st_size
        if size > limits.max_bytes:
            raise ImageInputError(label, f"{size} bytes exceeds the {limits.max_bytes}-byte limit (max_bytes)")
        try:
            data = path.read_bytes()
        except OSError as error:
            raise ImageInputError(label, f"cannot be read: {error.strerror or error}") from None
        extension = path.suffix.lower()
    else:
        raise TypeError(f"load_image: source must be a path or bytes, got {type(source).__name__}")
    if not data:
        raise ImageInputError(label, "file is empty (0 bytes); expected a PNG/JPEG image")
    return label, data, extension


def _decode(label: str, data: bytes, extension: str | None, limits: ImageLimits) -> np.ndarray:
    from PIL import Image, ImageOps, UnidentifiedImageError

    with warnings.catch_warnings():
        # PIL warns (and only above 2x raises) on large images; our own header check below
        # is the guard, so its warning is turned into an error rather than printed.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        Image.init()  # registers every plugin, so the allow-list below names only real ones
        formats = sorted(_ALLOWED_FORMATS & set(Image.OPEN))
        try:
            # Image.open parses only the header; no pixel buffer exists yet.
            picture = Image.open(io.BytesIO(data), formats=formats)
        except UnidentifiedImageError:
            _explain_unidentified(label, data)
            raise ImageInputError(label, "not a recognised image (accepted: PNG, JPEG, BMP, GIF, WEBP, TIFF, PPM); "
                                         "the file may be of another type behind its extension") from None
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
            raise ImageInputError(label, f"decompression bomb refused: {error}") from None
        except Exception as error:  # PIL's header parsers raise many types on corrupt data
            raise ImageInputError(label, f"corrupt image header ({type(error).__name__}: {error})") from None
        with picture:
            fmt = picture.format
            allowed = _EXTENSION_FORMATS.get(extension or "")
            if allowed is not None and fmt not in allowed:
                raise ImageInputError(label, f"contents are {fmt}, not what the extension {extension!r} says; "
                                             "rename the file or convert it")
            width, height = picture.size
            _check_size(label, width, height, limits)
            try:
                picture.load()
                picture = ImageOps.exif_transpose(picture)
                rgb = _to_rgb(picture)
            except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
                raise ImageInputError(label, f"decompression bomb refused: {error}") from None
            except Exception as error:  # truncated/corrupt data: OSError, SyntaxError, zlib.error, ...
                reason = "truncated" if "truncated" in str(error) else "corrupt"
                raise ImageInputError(label, f"{reason} image data, cannot decode "
                                             f"({type(error).__name__}: {error})") from None
    array = np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8))
    if array.ndim != 3 or array.shape[2] != 3:
        raise ImageInputError(label, f"decoded to shape {array.shape}, expected (H, W, 3)")
    # EXIF rotation swaps sides, so the sides are checked again on the decoded array.
    _check_size(label, array.shape[1], array.shape[0], limits)
    return array


_MAGIC = {b"\x89PNG\r\n\x1a\n": "PNG", b"\xff\xd8\xff": "JPEG", b"GIF8": "GIF", b"BM": "BMP",
          b"II*\x00": "TIFF", b"MM\x00*": "TIFF", b"P6": "PPM", b"P5": "PPM"}


def _explain_unidentified(label: str, data: bytes) -> None:
    """Say more than PIL does when bytes start like an image but its header is refused."""
    for magic, fmt in _MAGIC.items():
        if data.startswith(magic):
            if fmt == "PNG" and len(data) >= 24 and data[12:16] == b"IHDR":
                width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
                if width == 0 or height == 0:
                    raise ImageInputError(label, f"zero-size image ({width}x{height} px)")
            raise ImageInputError(label, f"starts like a {fmt} file but its header is corrupt or truncated")


def _check_size(label: str, width: int, height: int, limits: ImageLimits) -> None:
    if width <= 0 or height <= 0:
        raise ImageInputError(label, f"zero-size image ({width}x{height} px)")
    if width * height > limits.max_pixels:
        raise ImageInputError(label, f"{width}x{height} px = {width * height} pixels exceeds the "
                                     f"{limits.max_pixels}-pixel limit (max_pixels); possible decompression bomb")
    if max(width, height) > limits.max_side:
        raise ImageInputError(label, f"{width}x{height} px: a side exceeds {limits.max_side} px (max_side); "
                                     "downscale the image")
    if min(width, height) < limits.min_side:
        raise ImageInputError(label, f"{width}x{height} px is too small: both sides must be at least "
                                     f"{limits.min_side} px (min_side)")


def _to_rgb(picture):
    from PIL import Image

    if picture.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        # High-bit-depth grey: scale to 8 bits by its range instead of clipping to white.
        values = np.asarray(picture, dtype=np.float64)
        finite = values[np.isfinite(values)]
        low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        scaled = np.nan_to_num((values - low) / max(high - low, 1e-12), nan=0.0, posinf=1.0, neginf=0.0)
        grey = np.clip(np.round(scaled * 255.0), 0, 255).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2)
    if picture.mode in ("RGBA", "LA", "PA") or (picture.mode == "P" and "transparency" in picture.info):
        # Transparent pixels become white, not whatever colour the encoder stored under them.
        rgba = picture.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return picture.convert("RGB")
