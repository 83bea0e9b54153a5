"""Bit depth: one curve from sensor counts to 8 bits for the whole sequence, and optional local contrast.

Per-frame stretching would flicker and erase real brightness changes, so the black and white points
come from percentiles of a sample of frames spread over the sequence. Per-frame gains (deflicker)
and per-channel gains (white balance) are folded into the same lookup table, so a frame is mapped
in one pass whatever is applied.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

BLACK_PERCENTILE = 0.1
WHITE_PERCENTILE = 99.9


@dataclass(frozen=True, slots=True)
class ToneMap:
    """Sensor counts -> 8 bits: linear from black to white, then a display gamma."""

    black: int
    white: int
    gamma: float = 1.0  # > 1 brightens the shadows (2.2 for linear sensor data shown on a display)
    levels: int = 65536  # 256 for 8-bit input

    def lut(self, gain: float = 1.0) -> np.ndarray:
        """The table for one frame; `gain` multiplies the counts first (exposure correction, white balance)."""
        counts = np.arange(self.levels, dtype=np.float32) * np.float32(gain)
        scaled = np.clip((counts - self.black) / max(self.white - self.black, 1), 0.0, 1.0)
        if self.gamma != 1.0:
            scaled = scaled ** np.float32(1.0 / self.gamma)
        return np.rint(scaled * 255.0).astype(np.uint8)

    def apply(self, pixels: np.ndarray, gains: tuple[float, ...]) -> np.ndarray:
        """Map a grey (one gain) or BGR (one gain per channel) frame to 8 bits."""
        if pixels.ndim == 2:
            return _lookup(pixels, self.lut(gains[0]))
        channels = [_lookup(pixels[:, :, c], self.lut(gains[c])) for c in range(3)]
        return cv2.merge(channels)


IDENTITY_8BIT = ToneMap(black=0, white=255, levels=256)


def _lookup(plane: np.ndarray, lut: np.ndarray) -> np.ndarray:
    if plane.dtype == np.uint8:
        return cv2.LUT(plane, lut[:256])
    return np.take(lut, plane)


def sample_histogram(pixels: np.ndarray) -> np.ndarray:
    """Counts of 16-bit values over a sparse sample of a frame's pixels."""
    return np.bincount(pixels.reshape(-1)[::7], minlength=65536)[:65536]


def tone_map_from_histogram(histogram: np.ndarray, *, gamma: float = 1.0) -> ToneMap:
    """Black and white points at low and high percentiles of the sampled counts."""
    cumulative = np.cumsum(histogram, dtype=np.float64)
    total = cumulative[-1]
    black = int(np.searchsorted(cumulative, total * BLACK_PERCENTILE / 100))
    white = int(np.searchsorted(cumulative, total * WHITE_PERCENTILE / 100))
    return ToneMap(black=black, white=max(white, black + 1), gamma=gamma)


def bits_used(histogram: np.ndarray) -> int:
    """The bits the samples really use: 10 for a 10-bit camera in 16-bit words."""
    highest = int(np.flatnonzero(histogram)[-1]) if histogram.any() else 0
    return max(1, highest.bit_length())


def local_contrast(pixels: np.ndarray) -> np.ndarray:
    """CLAHE: more local contrast in flat ground without blowing out bright rims. On lightness for colour."""
    clahe = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8))
    if pixels.ndim == 2:
        return clahe.apply(pixels)
    lab = cv2.cvtColor(pixels, cv2.COLOR_BGR2LAB)
    lab[:, :, 0] = clahe.apply(np.ascontiguousarray(lab[:, :, 0]))
    return cv2.cvtColor(lab, cv2.COLOR_LAB2BGR)
