"""Read image headers (cheaply, for the whole sequence) and pixels (once per frame)."""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import cv2
import numpy as np

from descent.errors import FrameReadError
from descent.frames import FrameInfo
from descent.sources.products import probe_product
from descent.sources.raw import read_raw
from descent.sources.video import read_video_frame

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_END = b"IEND\xaeB`\x82"
_JPEG_END = b"\xff\xd9"
_TIFF_SIGNATURES = (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+")  # classic and BigTIFF, both byte orders

# Larger than any camera frame: a header claiming more is corrupt (or a decompression bomb), and is
# refused before a decoder allocates for it.
MAX_SIDE_PX = 30_000
MAX_PIXELS = 500_000_000
# Float frames: NaN, infinity and the special values of ISIS and PDS products (-3.4e38 ...) are missing data.
FLOAT_FILL_ABOVE = 1e30

# PNG colour types: channels after alpha is dropped, and the bit depths each allows.
_PNG_TYPES = {0: (1, (1, 2, 4, 8, 16)), 2: (3, (8, 16)), 3: (3, (1, 2, 4, 8)), 4: (1, (8, 16)), 6: (3, (8, 16))}
_PIXEL_DTYPES: dict[int, np.dtype] = {8: np.dtype(np.uint8), 16: np.dtype(np.uint16), 32: np.dtype(np.float32)}


@dataclass(frozen=True, slots=True)
class _Header:
    width: int
    height: int
    channels: int  # 1 or 3: what read_pixels returns (alpha dropped, palettes expanded)
    bit_depth: int  # 8 or 16 (unsigned integers), 32 (float32: float, 32-bit integer and wider samples)


def probe(path: Path, label: Path | None = None, *, product: bool = False) -> FrameInfo:
    """Size, channels and bit depth from the file header or product label, without decoding the pixels.

    Channels and bit depth are those `read_pixels` returns: 1 or 3 channels, 8 or 16 bits, or 32 for
    frames read as float32. A header that is impossible, or larger than MAX_SIDE_PX a side or
    MAX_PIXELS in all, is refused with a FrameReadError.

    `product`: the file is an archive product (data file or label), with `label` beside it if found.
    """
    if product:
        return probe_product(path, label)
    try:
        with path.open("rb") as f:
            header = _read_header(path, f)
    except OSError as exc:
        raise FrameReadError(path, f"cannot read the file ({exc.strerror or exc})") from None
    return FrameInfo(path=path, width=header.width, height=header.height, channels=header.channels,
                     bit_depth=header.bit_depth)


def _read_header(path: Path, f: BinaryIO) -> _Header:
    """The header of a PNG, TIFF, JPEG or BMP (others through Pillow), checked against the size limits."""
    head = f.read(32)
    try:
        if head.startswith(_PNG_SIGNATURE):
            header = _png_header(path, head)
        elif head[:4] in _TIFF_SIGNATURES:
            header = _tiff_header(path, f)
        elif head.startswith(b"\xff\xd8"):
            header = _jpeg_header(path, f)
        elif head.startswith(b"BM"):
            header = _bmp_header(path, f)
        elif not head:
            raise FrameReadError(path, "empty file")
        else:
            f.seek(0)
            header = _pillow_header(path, f)
    except struct.error:
        raise FrameReadError(path, "truncated image header") from None
    if header.width <= 0 or header.height <= 0:
        raise FrameReadError(path, f"impossible header: {header.width}x{header.height} pixels")
    if max(header.width, header.height) > MAX_SIDE_PX or header.width * header.height > MAX_PIXELS:
        raise FrameReadError(path, f"the header claims {header.width}x{header.height} pixels, more than descent "
                                   f"reads ({MAX_SIDE_PX} a side, {MAX_PIXELS // 1_000_000} megapixels): a corrupt "
                                   "file, or not a camera frame")
    return header


def _png_header(path: Path, head: bytes) -> _Header:
    # Pillow reports 16-bit colour PNG as 8-bit RGB, so the IHDR chunk is read directly.
    if len(head) < 29 or head[12:16] != b"IHDR":
        raise FrameReadError(path, "not a valid PNG (no IHDR header)")
    width, height, depth, colour_type = struct.unpack(">IIBB", head[16:26])
    channels, depths = _PNG_TYPES.get(colour_type, (0, ()))
    if depth not in depths:
        raise FrameReadError(path, f"not a valid PNG (colour type {colour_type} with {depth}-bit samples)")
    return _Header(width, height, channels, 16 if depth == 16 else 8)  # low depths and palettes decode to 8 bits


def _tiff_header(path: Path, f: BinaryIO) -> _Header:
    """The first image directory's size and sample layout (classic TIFF and BigTIFF)."""
    f.seek(0)
    head = f.read(16)
    order = "<" if head[:2] == b"II" else ">"
    big = struct.unpack(order + "H", head[2:4])[0] == 43
    (ifd,) = struct.unpack(order + "Q", head[8:16]) if big else struct.unpack(order + "I", head[4:8])
    f.seek(ifd)
    (count,) = struct.unpack(order + ("Q" if big else "H"), f.read(8 if big else 2))
    if not 0 < count <= 4096:
        raise FrameReadError(path, "not a valid TIFF (no image directory)")
    entry_size, inline = (20, 8) if big else (12, 4)
    table = f.read(count * entry_size)
    wanted = {256, 257, 258, 262, 277, 338, 339}
    tags: dict[int, tuple[int, ...]] = {}
    for k in range(count):
        entry = table[k * entry_size : (k + 1) * entry_size]
        tag, kind = struct.unpack(order + "HH", entry[:4])
        if tag not in wanted:
            continue
        (n,) = struct.unpack(order + ("Q" if big else "I"), entry[4 : 12 if big else 8])
        code = {1: "B", 3: "H", 4: "I", 16: "Q"}.get(kind)
        if code is None or not 0 < n <= 64:
            raise FrameReadError(path, f"not a valid TIFF (tag {tag} of type {kind} with {n} values)")
        size = struct.calcsize(code) * n
        raw = entry[entry_size - inline : entry_size - inline + size]
        if size > inline:
            (offset,) = struct.unpack(order + ("Q" if big else "I"), entry[entry_size - inline :])
            position = f.tell()
            f.seek(offset)
            raw = f.read(size)
            f.seek(position)
        tags[tag] = struct.unpack(order + code * n, raw)
    if 256 not in tags or 257 not in tags:
        raise FrameReadError(path, "not a valid TIFF (no image width or length)")
    samples = tags.get(277, (1,))[0]
    extra = len(tags.get(338, ()))
    photometric = tags.get(262, (1 if samples - extra <= 1 else 2,))[0]
    channels = 1 if photometric in (0, 1, 4) else 3  # white- or black-is-zero and masks are grey
    bits = max(tags.get(258, (1,)))
    sample_format = tags.get(339, (1,))[0]  # 1 unsigned, 2 signed, 3 floating point
    if photometric == 3:
        depth = 8  # palette colours are expanded to 8-bit BGR
    elif sample_format == 3 or bits > 16:
        depth = 32
    else:
        depth = 16 if bits > 8 else 8
    return _Header(tags[256][0], tags[257][0], channels, depth)


def _jpeg_header(path: Path, f: BinaryIO) -> _Header:
    """The frame header (SOFn) found by walking the marker segments."""
    f.seek(2)
    while True:
        byte = f.read(1)
        if not byte:
            raise FrameReadError(path, "not a valid JPEG (no frame header)")
        if byte != b"\xff":
            continue
        marker = f.read(1)
        while marker == b"\xff":  # fill bytes
            marker = f.read(1)
        code = marker[0] if marker else 0
        if code in (0x01, *range(0xD0, 0xD8)):
            continue  # markers without a segment
        if code in (0xD9, 0xDA):
            raise FrameReadError(path, "not a valid JPEG (no frame header before the image data)")
        (length,) = struct.unpack(">H", f.read(2))
        if 0xC0 <= code <= 0xCF and code not in (0xC4, 0xC8, 0xCC):
            precision, height, width, components = struct.unpack(">BHHB", f.read(6))
            return _Header(width, height, 1 if components == 1 else 3, 16 if precision > 8 else 8)
        f.seek(length - 2, 1)


def _bmp_header(path: Path, f: BinaryIO) -> _Header:
    f.seek(14)
    (dib_size,) = struct.unpack("<I", f.read(4))
    if dib_size == 12:  # OS/2 1.x core header: 16-bit sizes, 3-byte palette entries
        width, height, _, bpp = struct.unpack("<HHHH", f.read(8))
        used, entry = 0, 3
    elif dib_size >= 40:
        width, height, _, bpp, _, _, _, _, used = struct.unpack("<iiHHIIiiI", f.read(32))
        entry = 4
    else:
        raise FrameReadError(path, f"not a valid BMP (a {dib_size}-byte header)")
    if bpp not in (1, 2, 4, 8, 16, 24, 32):
        raise FrameReadError(path, f"not a valid BMP ({bpp} bits per pixel)")
    channels = 3
    if bpp <= 8:  # decoded grey when every palette entry is grey, as OpenCV does
        f.seek(14 + dib_size)
        entries = min(used or 1 << bpp, 1 << bpp)
        palette = f.read(entries * entry)
        channels = 1 if all(palette[i] == palette[i + 1] == palette[i + 2]
                            for i in range(0, len(palette) - 2, entry)) else 3
    return _Header(width, abs(height), channels, 8)  # a negative height means rows stored top down


def _pillow_header(path: Path, f: BinaryIO) -> _Header:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(f) as img:
            width, height = img.size
            mode = img.mode
    except (UnidentifiedImageError, Image.DecompressionBombError, SyntaxError, ValueError) as exc:
        raise FrameReadError(path, f"not an image descent can read ({exc})") from None
    depth = 32 if mode in ("I", "F") else 16 if mode.startswith("I;16") else 8
    channels = 1 if mode in ("1", "L", "LA", "I", "F") or mode.startswith("I;16") else 3
    return _Header(width, height, channels, depth)


def read_pixels(info: FrameInfo) -> np.ndarray:
    """A frame's pixels, C-contiguous: H x W grey or H x W x 3 BGR, as `probe` described them.

    uint8 or uint16; float32 for frames of bit depth 32 (NaN and infinity kept: they are missing
    data, mapped to black by normalisation). Alpha is dropped. Truncated files are refused. A frame of
    a video comes from its file's decoder (descent.sources.video).
    """
    if info.layout is not None:
        return read_raw(info.layout)
    if info.video is not None:
        return read_video_frame(info)
    return decode_image(info.path)


def decode_image(path: Path) -> np.ndarray:
    """Decode an image file (PNG, JPEG, TIFF, BMP): its header is checked before any pixel is decoded."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise FrameReadError(path, f"cannot read the file ({exc.strerror or exc})") from None
    _check_complete(path, data)
    header = _read_header(path, io.BytesIO(data))
    pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if pixels is None:
        raise FrameReadError(path, "cannot decode the image (corrupt or an unsupported variant)")
    if (pixels.shape[1], pixels.shape[0]) != (header.width, header.height):
        raise FrameReadError(path, f"decoded {pixels.shape[1]}x{pixels.shape[0]}, but the header says "
                                   f"{header.width}x{header.height}")
    return _as_header_says(pixels, header)


def _as_header_says(pixels: np.ndarray, header: _Header) -> np.ndarray:
    """The decoder's array as the header promised it: alpha dropped, the channels and sample type of the probe."""
    if pixels.ndim == 3 and pixels.shape[2] in (2, 4):
        pixels = pixels[:, :, :1] if pixels.shape[2] == 2 else pixels[:, :, :3]  # alpha carries nothing here
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[:, :, 0]
    target = _PIXEL_DTYPES[header.bit_depth]
    if pixels.dtype != target:
        if target.kind == "f":
            pixels = pixels.astype(np.float32)
        elif pixels.dtype == np.uint16 and target == np.uint8:
            pixels = (pixels >> 8).astype(np.uint8)
        elif pixels.dtype == np.uint8:
            pixels = pixels.astype(np.uint16) * np.uint16(257)
        else:
            # Signed samples keep noise below zero around a dark level; black is all a display can show there.
            pixels = np.clip(pixels, 0, 255 if target == np.uint8 else 65535).astype(target)
    if pixels.ndim == 3 and header.channels == 1:
        pixels = cv2.cvtColor(np.ascontiguousarray(pixels), cv2.COLOR_BGR2GRAY)
    elif pixels.ndim == 2 and header.channels == 3:
        pixels = cv2.cvtColor(pixels, cv2.COLOR_GRAY2BGR)
    return np.ascontiguousarray(pixels)


def missing_mask(pixels: np.ndarray) -> np.ndarray | None:
    """H x W: where a float frame has no data (NaN, infinity or a fill value in any channel); None for integers."""
    if pixels.dtype.kind != "f":
        return None
    with np.errstate(invalid="ignore"):
        bad = ~(np.abs(pixels) <= FLOAT_FILL_ABOVE)  # NaN compares false: missing as well
    return bad if bad.ndim == 2 else bad.any(axis=2)


def missing_pixels(pixels: np.ndarray) -> int:
    """How many pixels of a frame are missing data (see missing_mask), shown black. 0 for integer frames."""
    mask = missing_mask(pixels)
    return 0 if mask is None else int(np.count_nonzero(mask))


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
