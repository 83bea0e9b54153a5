"""One output size for the whole video: frames of other sizes are fitted inside it."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, replace

import cv2
import numpy as np

from descent.errors import UsageError
from descent.frames import Frame, FrameInfo
from descent.options import MAX_VIDEO_SIDE_PX


@dataclass(frozen=True, slots=True)
class SizeConfig:
    """Output size: the most common frame size unless the user asks for another."""

    size: tuple[int, int] | None = None  # exact output WxH; frames are fitted inside, aspect kept
    scale: float | None = None  # multiply the common size


def parse_size(text: str) -> tuple[int, int]:
    """`1280x720` -> (1280, 720)."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise UsageError(f"--size {text!r}: give WIDTHxHEIGHT, like 1280x720") from None
    if w < 16 or h < 16:
        raise UsageError(f"--size {text!r}: width and height must be at least 16 pixels")
    if w > MAX_VIDEO_SIDE_PX or h > MAX_VIDEO_SIDE_PX:
        raise UsageError(f"--size {text!r}: the encoders take at most {MAX_VIDEO_SIDE_PX} pixels a side")
    return w, h


def common_size(frames: Iterable[FrameInfo]) -> tuple[int, int]:
    """The size most frames have; the others are fitted to it."""
    return Counter(f.size for f in frames).most_common(1)[0][0]


def output_size(common: tuple[int, int], config: SizeConfig) -> tuple[int, int]:
    """The encoded size: even width and height, as 4:2:0 chroma needs."""
    if config.size is not None:
        w, h = config.size
    elif config.scale is not None:
        if not (math.isfinite(config.scale) and config.scale > 0):
            raise UsageError(f"--scale {config.scale}: give a number greater than 0, like 0.5")
        w, h = round(common[0] * config.scale), round(common[1] * config.scale)
    else:
        w, h = common
    return max(2, w - w % 2), max(2, h - h % 2)


def fit(pixels: np.ndarray, width: int, height: int) -> np.ndarray:
    """Scale to fit inside width x height with the aspect kept, centred on black."""
    h, w = pixels.shape[:2]
    if (w, h) == (width, height):
        return pixels
    factor = min(width / w, height / h)
    new_w, new_h = max(1, round(w * factor)), max(1, round(h * factor))
    interpolation = cv2.INTER_AREA if factor < 1 else cv2.INTER_CUBIC
    resized = cv2.resize(pixels, (new_w, new_h), interpolation=interpolation)
    if (new_w, new_h) == (width, height):
        return resized
    canvas = np.zeros((height, width, *pixels.shape[2:]), pixels.dtype)
    x, y = (width - new_w) // 2, (height - new_h) // 2
    canvas[y : y + new_h, x : x + new_w] = resized
    return canvas


def fit_frame(frame: Frame, *, width: int, height: int) -> Frame:
    """A frame at the output size (when not stabilising: the warp does this itself)."""
    return replace(frame, pixels=fit(frame.pixels, width, height))
