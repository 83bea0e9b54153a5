"""Bayer mosaics: detect one and its phase, demosaic it, and balance its colour over the sequence.

Pattern names give the colours of the top-left 2x2 block, row by row: RGGB is red at (0, 0),
green at (0, 1) and (1, 0), blue at (1, 1). OpenCV names the same layouts differently
(from the second row), hence the table below.

Detection looks at the four sub-lattices of the mosaic, each a quarter-size picture. Along one
diagonal direction there are two kinds of neighbouring pairs: (0,0)-(1,1) and (0,1)-(1,2). In a
grey image both are the same picture one diagonal step apart and differ alike, whatever the scene's
texture direction (a low sun makes it strongly directional). In a mosaic one kind is green-green
(nearly equal) and the other red-blue (different channels with different gains). The same holds
along the other diagonal with the roles swapped, so the product of the two directions' ratios tells
a mosaic and where its greens are; sub-lattice means that differ tell it too. Which of the two
non-green sites is red cannot be told from the mosaic alone: the brighter one is taken as red
(true of raw data of the reddish ground of Mars and of most sensors under sunlight on the Moon),
and `--bayer PATTERN` settles it when the user knows.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from descent.errors import UsageError
from descent.options import BAYER_PATTERNS

PATTERNS = BAYER_PATTERNS
METHODS = ("edge-aware", "vng", "bilinear")
_OPENCV = {
    ("RGGB", "bilinear"): cv2.COLOR_BayerRGGB2BGR, ("RGGB", "edge-aware"): cv2.COLOR_BayerRGGB2BGR_EA,
    ("RGGB", "vng"): cv2.COLOR_BayerRGGB2BGR_VNG,
    ("BGGR", "bilinear"): cv2.COLOR_BayerBGGR2BGR, ("BGGR", "edge-aware"): cv2.COLOR_BayerBGGR2BGR_EA,
    ("BGGR", "vng"): cv2.COLOR_BayerBGGR2BGR_VNG,
    ("GRBG", "bilinear"): cv2.COLOR_BayerGRBG2BGR, ("GRBG", "edge-aware"): cv2.COLOR_BayerGRBG2BGR_EA,
    ("GRBG", "vng"): cv2.COLOR_BayerGRBG2BGR_VNG,
    ("GBRG", "bilinear"): cv2.COLOR_BayerGBRG2BGR, ("GBRG", "edge-aware"): cv2.COLOR_BayerGBRG2BGR_EA,
    ("GBRG", "vng"): cv2.COLOR_BayerGBRG2BGR_VNG,
}
MEAN_SPREAD = 0.04  # sub-lattice means differing by more than 4% cannot be a grey picture
PAIR_CONTRAST = 1.3  # one diagonal pair differing 1.3x more than the other: green-green against red-blue


@dataclass(frozen=True, slots=True)
class MosaicGuess:
    """What detection found: a pattern or None (grey), with the evidence for the report."""

    pattern: str | None
    mean_spread: float  # largest relative difference of a sub-lattice mean from their average
    pair_contrast: float  # red-blue pairs' difference over green-green pairs', along the same diagonals


def _lattices(mosaic: np.ndarray) -> list[np.ndarray]:
    h, w = mosaic.shape[0] // 2 * 2, mosaic.shape[1] // 2 * 2
    return [mosaic[y:h:2, x:w:2].astype(np.float32) for y in (0, 1) for x in (0, 1)]  # 00, 01, 10, 11


def detect_mosaic(samples: list[np.ndarray]) -> MosaicGuess:
    """A Bayer pattern from single-channel frames of a sequence, or None when they are grey."""
    # Neighbouring cells are compared: a frame under 4 pixels a side has none (and nothing to demosaic).
    if not samples or any(s.ndim != 2 or min(s.shape) < 4 for s in samples):
        return MosaicGuess(None, 0.0, 1.0)
    means = np.zeros(4)
    log_ratio = 0.0  # > 0: the 01 and 10 sites pair up more closely than 00 and 11 do (greens at 01, 10)
    for sample in samples:
        p00, p01, p10, p11 = _lattices(sample)
        means += [float(p.mean()) for p in (p00, p01, p10, p11)]
        # Down-right neighbours: (0,0)-(1,1) and (0,1)-(1,2); down-left: (0,1)-(1,0) and (0,2)-(1,1).
        down_right = _difference(p00, p11) / _difference(p01[:, :-1], p10[:, 1:])
        down_left = _difference(p00[:, 1:], p11[:, :-1]) / _difference(p01, p10)
        log_ratio += float(np.log(down_right * down_left)) / 2 / len(samples)
    spread = float(np.abs(means / means.mean() - 1).max()) if means.mean() > 0 else 0.0
    contrast = float(np.exp(abs(log_ratio)))
    if spread < MEAN_SPREAD and contrast < PAIR_CONTRAST:
        return MosaicGuess(None, spread, contrast)
    m00, m01, m10, m11 = means
    greens_on_anti_diagonal = log_ratio > 0  # then red and blue sit at 00 and 11
    red_first = bool(m00 >= m11 if greens_on_anti_diagonal else m01 >= m10)
    pattern = {(True, True): "RGGB", (True, False): "BGGR", (False, True): "GRBG", (False, False): "GBRG"}[
        (greens_on_anti_diagonal, red_first)]
    return MosaicGuess(pattern, spread, contrast)


def _difference(a: np.ndarray, b: np.ndarray) -> float:
    return float(cv2.norm(a, b, cv2.NORM_L1)) / a.size + 1e-6


def parse_pattern(text: str) -> str:
    """--bayer: a pattern, `auto` or `none`."""
    value = text.strip().upper()
    if value in PATTERNS:
        return value
    if value.lower() in ("auto", "none"):
        return value.lower()
    raise UsageError(f"--bayer {text!r}: choose auto, none, {', '.join(PATTERNS)}")


def demosaic(mosaic: np.ndarray, pattern: str, method: str = "edge-aware") -> np.ndarray:
    """BGR from a mosaic, at the same bit depth. VNG reads 8-bit mosaics only (OpenCV's limit)."""
    if method == "vng" and mosaic.dtype != np.uint8:
        raise UsageError("--demosaic vng reads 8-bit mosaics only; use edge-aware for deeper data")
    return cv2.cvtColor(mosaic, _OPENCV[(pattern, method)])


def binned_grey(mosaic: np.ndarray) -> np.ndarray:
    """Half-size grey from a mosaic: each 2x2 block averaged, one red, two green, one blue.

    What motion and brightness are measured on: no colour is needed, and the mosaic's 2x2
    pattern would otherwise look like texture that moves with the camera's pixels, not the ground.
    """
    h, w = mosaic.shape[0] // 2 * 2, mosaic.shape[1] // 2 * 2
    return cv2.resize(mosaic[:h, :w], (w // 2, h // 2), interpolation=cv2.INTER_AREA)


def grey_world(channel_means: np.ndarray) -> tuple[float, float, float]:
    """Blue, green and red gains that make the sequence's average grey (green kept as it is)."""
    b, g, r = (float(v) for v in channel_means)
    return (g / b if b > 0 else 1.0, 1.0, g / r if r > 0 else 1.0)


def parse_white_balance(text: str) -> tuple[float, float, float]:
    """--wb R,G,B gains, returned in OpenCV's B, G, R order."""
    try:
        r, g, b = (float(v) for v in text.split(","))
    except ValueError:
        raise UsageError(f"--wb {text!r}: give three gains R,G,B like 1.9,1,1.4") from None
    if min(r, g, b) <= 0:
        raise UsageError(f"--wb {text!r}: gains must be greater than 0")
    return (b, g, r)
