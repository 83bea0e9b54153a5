"""Headerless arrays described by a label: a small memory-mapped reader.

PDS3 and PDS4 labels describe the same thing in different words: where the array starts in a file,
its sample type and byte order, and how lines, samples and bands are laid out. Both readers turn
that into a RawLayout, and this module reads the pixels: only the bytes of the array are mapped,
and the file size is checked against the layout first, so a truncated product is refused with a
message instead of being read as garbage.
"""

from __future__ import annotations

import numpy as np

from descent.errors import FrameReadError
from descent.frames import BandStorage, RawLayout

SUPPORTED_BANDS = (1, 3)  # grey, or colour with red first


def read_raw(layout: RawLayout) -> np.ndarray:
    """The array as H x W (grey) or H x W x 3 (BGR), uint8 or uint16 in native byte order."""
    try:
        file_size = layout.file.stat().st_size
    except OSError as exc:
        raise FrameReadError(layout.file, f"cannot read the file ({exc.strerror or exc})") from None
    layout.check(file_size)
    try:
        mapped = np.memmap(layout.file, dtype=np.uint8, mode="r", offset=layout.offset, shape=(layout.size_bytes,))
    except (OSError, ValueError) as exc:
        raise FrameReadError(layout.file, f"cannot map the array ({exc})") from None
    rows = mapped.reshape(-1, layout.line_bytes)
    body = rows[:, layout.line_prefix_bytes : layout.line_bytes - layout.line_suffix_bytes]
    samples = np.ascontiguousarray(body).view(layout.dtype)
    if layout.storage is BandStorage.SAMPLE_INTERLEAVED:
        cube = samples.reshape(layout.lines, layout.samples, layout.bands)
    elif layout.storage is BandStorage.LINE_INTERLEAVED:
        cube = samples.reshape(layout.lines, layout.bands, layout.samples).transpose(0, 2, 1)
    else:
        cube = samples.reshape(layout.bands, layout.lines, layout.samples).transpose(1, 2, 0)
    pixels = _to_unsigned(cube, layout)
    if layout.bands == 1:
        return np.ascontiguousarray(pixels[:, :, 0])
    return np.ascontiguousarray(pixels[:, :, 2::-1])  # labels store red first; OpenCV wants BGR


def _to_unsigned(cube: np.ndarray, layout: RawLayout) -> np.ndarray:
    """8- or 16-bit unsigned samples in native order: what the rest of the pipeline reads."""
    kind, size = cube.dtype.kind, cube.dtype.itemsize
    if kind == "u" and size in (1, 2):
        return cube.astype(np.uint8 if size == 1 else np.uint16, copy=False)
    if kind == "i" and size in (1, 2):
        # Signed products keep noise below zero around a dark level; black is all a display can show there.
        return np.clip(cube, 0, None).astype(np.uint8 if size == 1 else np.uint16)
    if kind in "ui" and size == 4:
        return np.clip(cube, 0, 65535).astype(np.uint16)
    raise FrameReadError(layout.file, f"{cube.dtype} samples are not supported; descent reads 8- and 16-bit "
                                      "integer arrays (convert floating-point products to integers first)")
