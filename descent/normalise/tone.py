"""Bit depth: one curve from sensor counts to 8 bits for the whole sequence, and optional local contrast.

Per-frame stretching would flicker and erase real brightness changes, so the black and white points
come from percentiles of a sample of frames spread over the sequence. Per-frame gains (deflicker)
and per-channel gains (white balance) are folded into the same lookup table, so a frame is mapped
in one pass whatever is applied.

Floating-point frames (calibrated science products) first become 16-bit counts by one linear scale
for the whole sequence, found from the same sample (`float_range`); NaN, infinity and fill values
are missing data (descent.sources.images.missing_mask) and become 0, which every tone curve shows black.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from descent.sources.images import FLOAT_FILL_ABOVE, missing_mask

BLACK_PERCENTILE = 0.1
WHITE_PERCENTILE = 99.9
# The float values mapped to 16 bits: a little beyond the sample's extreme percentiles, so that an
# outlier or a fill value (-3.4e38) does not squeeze the scene into a few counts, and so that frames
# brighter than the sample (or lifted by a deflicker gain) keep some headroom.
FLOAT_RANGE_PERCENTILES = (0.01, 99.99)
FLOAT_RANGE_MARGIN = 0.25  # of the percentile span, each side (never beyond the sample's finite extremes)
FLOAT_DEFAULT_RANGE = (0.0, 1.0)  # float frames with no finite sample: the usual convention for float images


# Video-range luma (16 black, 235 white) to 0-255, saturated and rounded as ffmpeg's conversion to
# gray rounds it: grey videos are read as their Y plane and stretched by this table (see ToneMap.apply).
VIDEO_RANGE_TABLE = np.clip(np.rint((np.arange(256) - 16) * (255 / 219)), 0, 255).astype(np.uint8)


@dataclass(frozen=True, slots=True)
class ToneMap:
    """Sensor counts -> 8 bits: linear from black to white, then a display gamma."""

    black: int
    white: int
    gamma: float = 1.0  # > 1 brightens the shadows (2.2 for linear sensor data shown on a display)
    levels: int = 65536  # 256 for 8-bit input

    def lut(self, gain: float = 1.0, *, exposure: float = 1.0) -> np.ndarray:
        """The table for one frame. `gain` multiplies the counts first (white balance); `exposure` (the
        deflicker gain) multiplies them above black, as an exposure scales the signal and not the
        camera's black offset, and as the brightness ratios it comes from were measured (on
        analysis copies, above black)."""
        counts = np.arange(self.levels, dtype=np.float32) * np.float32(gain)
        scaled = np.clip((counts - self.black) * np.float32(exposure) / max(self.white - self.black, 1), 0.0, 1.0)
        if self.gamma != 1.0:
            scaled = scaled ** np.float32(1.0 / self.gamma)
        return np.rint(scaled * 255.0).astype(np.uint8)

    def apply(self, pixels: np.ndarray, gains: tuple[float, ...], *, exposure: float = 1.0,
              first: np.ndarray | None = None) -> np.ndarray:
        """Map a grey (one gain) or BGR (one gain per channel) frame to 8 bits, `exposure` above black.

        `first` (256 entries, 8-bit grey only) is a table the pixels go through before the curve:
        composed with it, so the frame is still looked up once (VIDEO_RANGE_TABLE for a grey video)."""
        if pixels.ndim == 2:
            lut = self.lut(gains[0], exposure=exposure)
            return _lookup(pixels, lut if first is None else lut[first])
        channels = [_lookup(pixels[:, :, c], self.lut(gains[c], exposure=exposure)) for c in range(3)]
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


def float_range(samples: list[np.ndarray]) -> tuple[float, float] | None:
    """The float values that map to 0 and 65535 for the whole sequence, from a sample of its float frames.

    None when the sample holds no floating-point frame. Missing data (NaN, infinity, fill values) is left out.
    """
    floats = [s.reshape(-1)[::7] for s in samples if s.dtype.kind == "f"]
    if not floats:
        return None
    values = np.concatenate(floats)
    with np.errstate(invalid="ignore"):
        values = values[np.abs(values) <= FLOAT_FILL_ABOVE]
    if not values.size:
        return FLOAT_DEFAULT_RANGE
    low, high = (float(v) for v in np.percentile(values, FLOAT_RANGE_PERCENTILES))
    margin = FLOAT_RANGE_MARGIN * (high - low)
    low, high = max(float(values.min()), low - margin), min(float(values.max()), high + margin)
    if high <= low:  # a constant scene: put it mid-scale
        return low - 0.5, low + 0.5
    return low, high


def float_to_counts(pixels: np.ndarray, value_range: tuple[float, float]) -> np.ndarray:
    """Float samples as 16-bit counts by the sequence's linear scale; a pixel missing in any channel is 0."""
    low, high = value_range
    missing = missing_mask(pixels)  # one channel missing is the pixel missing: black, not a colour cast
    values = np.clip(pixels.astype(np.float32), np.float32(low), np.float32(high))  # first: no overflow below
    scaled = (values - np.float32(low)) * np.float32(65535.0 / (high - low))
    if missing is not None:
        scaled[missing] = 0.0  # NaN among them: never cast
    return np.rint(scaled).astype(np.uint16)
