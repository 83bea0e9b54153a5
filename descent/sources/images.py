"""Read image headers (cheaply, for the whole sequence) and pixels (once per frame)."""

from __future__ import annotations

import struct
from pathlib import Path

import cv2
import numpy as np

from descent.errors import FrameReadError
from descent.frames import FrameInfo
from descent.sources.products import probe_product
from descent.sources.raw import read_raw

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_END = b"IEND\xaeB`\x82"
_JPEG_END = b"\xff\xd9"


def probe(path: Path, label: Path | None = None, *, product: bool = False) -> FrameInfo:
    """Size, channels and bit depth from the file header or product label, without decoding the pixels.

    `product`: the file is an archive product (data file or label), with `label` beside it if found.
    """
    if product:
        return probe_product(path, label)
    try:
        with path.open("rb") as f:
            head = f.read(32)
            if head.startswith(_PNG_SIGNATURE):
                return _probe_png(path, head)
        return _probe_with_pillow(path)
    except OSError as exc:
        raise FrameReadError(path, f"cannot read the file ({exc.strerror or exc})") from None


def _probe_png(path: Path, head: bytes) -> FrameInfo:
    # Pillow reports 16-bit colour PNG as 8-bit RGB, so the IHDR chunk is read directly.
    if len(head) < 29 or head[12:16] != b"IHDR":
        raise FrameReadError(path, "not a valid PNG (no IHDR header)")
    width, height, depth, colour_type = struct.unpack(">IIBB", head[16:26])
    channels = 1 if colour_type in (0, 4) else 3
    return FrameInfo(path=path, width=width, height=height, channels=channels, bit_depth=16 if depth == 16 else 8)


def _probe_with_pillow(path: Path) -> FrameInfo:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            width, height = img.size
            mode = img.mode
            bits = img.tag_v2.get(258) if hasattr(img, "tag_v2") else None  # TIFF BitsPerSample
    except (UnidentifiedImageError, SyntaxError, ValueError) as exc:
        raise FrameReadError(path, f"not an image descent can read ({exc})") from None
    if isinstance(bits, tuple):
        bits = bits[0]
    depth = 16 if (bits and int(bits) > 8) or mode.startswith("I;16") else 8
    channels = 1 if mode in ("1", "L", "LA", "I", "F") or mode.startswith("I;16") else 3
    return FrameInfo(path=path, width=width, height=height, channels=channels, bit_depth=depth)


def read_pixels(info: FrameInfo) -> np.ndarray:
    """A frame's pixels: H x W grey or H x W x 3 BGR, uint8 or uint16. Truncated files are refused."""
    if info.layout is not None:
        return read_raw(info.layout)
    return decode_image(info.path)


def decode_image(path: Path) -> np.ndarray:
    """Decode an image file (PNG, JPEG, TIFF, BMP)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise FrameReadError(path, f"cannot read the file ({exc.strerror or exc})") from None
    _check_complete(path, data)
    pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if pixels is None:
        raise FrameReadError(path, "cannot decode the image (corrupt or an unsupported variant)")
    if pixels.ndim == 3 and pixels.shape[2] == 4:
        pixels = pixels[:, :, :3]  # alpha carries nothing for a camera frame
    if pixels.dtype not in (np.uint8, np.uint16):
        raise FrameReadError(path, f"{pixels.dtype} samples are not supported; save as 8- or 16-bit integers")
    return pixels


def _check_complete(path: Path, data: bytes) -> None:
    # Decoders fill a truncated image with grey and print to stderr; catch it before they run.
    if data.startswith(_PNG_SIGNATURE):
        if not data.rstrip(b"\0").endswith(_PNG_END):
            raise FrameReadError(path, "truncated PNG (no IEND chunk at the end of the file)")
    elif data.startswith(b"\xff\xd8"):
        if data.rfind(_JPEG_END, max(0, len(data) - 65536)) < 0:
            raise FrameReadError(path, "truncated JPEG (no end-of-image marker)")
    elif data.startswith(b"BM") and len(data) >= 6:
        (declared,) = struct.unpack("<I", data[2:6])
        if len(data) < declared:
            raise FrameReadError(path, f"truncated BMP ({len(data)} of {declared} bytes)")
    elif not data:
        raise FrameReadError(path, "empty file")
