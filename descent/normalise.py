"""Make every frame the same kind of picture: 8-bit, one size, grey or colour for the whole video."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace

import cv2
import numpy as np

from descent.errors import UsageError
from descent.frames import Frame, FrameInfo

BLACK_PERCENTILE = 0.1
WHITE_PERCENTILE = 99.9


@dataclass(frozen=True, slots=True)
class SizeConfig:
    """Output size: the most common frame size unless the user asks for another."""

    size: tuple[int, int] | None = None  # exact output WxH; frames are fitted inside, aspect kept
    scale: float | None = None  # multiply the common size


@dataclass(frozen=True, slots=True)
class ToneMap:
    """One mapping from sensor counts to 8 bits for the whole sequence (per frame would flicker)."""

    black: int
    white: int

    def lut(self) -> np.ndarray:
        counts = np.arange(65536, dtype=np.float32)
        scaled = (counts - self.black) * (255.0 / max(self.white - self.black, 1))
        return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def parse_size(text: str) -> tuple[int, int]:
    """`1280x720` -> (1280, 720)."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise UsageError(f"--size {text!r}: give WIDTHxHEIGHT, like 1280x720") from None
    if w < 16 or h < 16:
        raise UsageError(f"--size {text!r}: width and height must be at least 16 pixels")
    return w, h


def common_size(frames: Iterable[FrameInfo]) -> tuple[int, int]:
    """The size most frames have; the others are fitted to it."""
    return Counter(f.size for f in frames).most_common(1)[0][0]


def output_size(common: tuple[int, int], config: SizeConfig) -> tuple[int, int]:
    """The encoded size: even width and height, as 4:2:0 chroma needs."""
    if config.size is not None:
        w, h = config.size
    elif config.scale is not None:
        if config.scale <= 0:
            raise UsageError(f"--scale {config.scale}: must be greater than 0")
        w, h = round(common[0] * config.scale), round(common[1] * config.scale)
    else:
        w, h = common
    return max(2, w - w % 2), max(2, h - h % 2)


def tone_map_from_histogram(histogram: np.ndarray) -> ToneMap:
    """Black and white points at low and high percentiles of the sampled counts."""
    cumulative = np.cumsum(histogram, dtype=np.float64)
    total = cumulative[-1]
    black = int(np.searchsorted(cumulative, total * BLACK_PERCENTILE / 100))
    white = int(np.searchsorted(cumulative, total * WHITE_PERCENTILE / 100))
    return ToneMap(black=black, white=max(white, black + 1))


def sample_histogram(pixels: np.ndarray) -> np.ndarray:
    """Counts of 16-bit values over a sparse sample of a frame's pixels."""
    return np.bincount(pixels.reshape(-1)[::7], minlength=65536)[:65536]


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


def normalise(frames: Iterable[Frame], *, tone: ToneMap | None, colour: bool) -> Iterator[Frame]:
    """8-bit samples and the video's colour layout, frame by frame."""
    lut = tone.lut() if tone is not None else None
    for frame in frames:
        pixels = frame.pixels
        if pixels.dtype == np.uint16:
            pixels = lut[pixels] if lut is not None else (pixels >> 8).astype(np.uint8)
        if colour and pixels.ndim == 2:
            pixels = cv2.cvtColor(pixels, cv2.COLOR_GRAY2BGR)
        elif not colour and pixels.ndim == 3:
            pixels = cv2.cvtColor(pixels, cv2.COLOR_BGR2GRAY)
        yield replace(frame, pixels=pixels)


def fit_frames(frames: Iterable[Frame], *, width: int, height: int) -> Iterator[Frame]:
    """Every frame at the output size (when not stabilising: the warp does this itself)."""
    for frame in frames:
        yield replace(frame, pixels=fit(frame.pixels, width, height))
