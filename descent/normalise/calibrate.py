"""Sensor calibration: dark and flat frames, hot and dead pixels, and vignetting, on the raw counts.

Everything here runs before demosaicing, on the sensor's own pixels. On a mosaic, a pixel's
neighbours of the same colour are two pixels away, so the defect search and repair use that stride.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from descent.errors import UsageError
from descent.parallel import ordered_map

DEFECT_SIGMAS = 8.0  # a pixel this many noise levels off its neighbours' median is suspect in a frame
DEFECT_SHARE = 0.75  # ... and a defect if it is suspect, the same way, in this share of the sampled frames
MIN_DEFECT_FRAMES = 4
STATIC_VARIATION = 0.03  # a neighbourhood varying less than 3% over the sample (exposure aside) does not move
FOLLOWS_SCENE = 0.5  # a pixel whose correlation with its neighbourhood over the sample reaches this follows it


@dataclass(frozen=True, slots=True)
class Defects:
    """Pixels that never follow the scene, and where to take their replacement from."""

    ys: np.ndarray  # defect coordinates
    xs: np.ndarray
    neighbour_ys: np.ndarray  # K x 8 same-colour neighbours of each defect, none of them a defect
    neighbour_xs: np.ndarray

    @classmethod
    def none(cls) -> Defects:
        return cls(*(np.zeros(0, np.intp),) * 2, *(np.zeros((0, 8), np.intp),) * 2)

    def __len__(self) -> int:
        return len(self.ys)

    def repair(self, pixels: np.ndarray) -> np.ndarray:
        """Each defect replaced by the median of its same-colour neighbours (in place; returns pixels)."""
        if len(self.ys):
            pixels[self.ys, self.xs] = np.median(pixels[self.neighbour_ys, self.neighbour_xs], axis=1).astype(
                pixels.dtype)
        return pixels


def _same_colour_median(frame: np.ndarray, stride: int) -> np.ndarray:
    """The median of each pixel's 3x3 same-colour neighbourhood (float32).

    The median of integers is one of them, so it is taken in the frame's own 8 or 16 bits, where
    OpenCV's median filter is several times faster than in float.
    """
    planes = frame if frame.dtype in (np.uint8, np.uint16) else frame.astype(np.float32)
    out = np.empty(frame.shape, np.float32)
    for y in range(stride):
        for x in range(stride):
            out[y::stride, x::stride] = cv2.medianBlur(np.ascontiguousarray(planes[y::stride, x::stride]), 3)
    return out


def _off_neighbours(frame: np.ndarray, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """Where a frame is far above and far below its same-colour neighbours, beyond its noise."""
    residual = frame.astype(np.float32) - _same_colour_median(frame, stride)
    noise = 1.4826 * float(np.median(np.abs(residual[::3, ::3]))) + 1e-3
    return residual > DEFECT_SIGMAS * noise, residual < -DEFECT_SIGMAS * noise


def find_defects(samples: list[np.ndarray], *, stride: int, workers: int = 1) -> Defects:
    """Hot, dead and stuck pixels: pixels that never follow the scene.

    A candidate is off its same-colour neighbours in the same direction in most sampled frames: the
    scene moves under the camera, so a bright rock sits on a given pixel in one or two frames of a
    sample spread over the descent, while a hot pixel sits there in all of them. A candidate is a
    defect if its value does not follow its neighbourhood from frame to frame. The corner of a
    lander's shadow is persistently darker than its neighbours too, but it brightens and darkens
    with them. Where the neighbourhood itself never changes (the lander leg), nothing can be judged,
    and it is left alone. A hot pixel that adds a constant to the scene follows it; a --dark frame
    removes those.
    """
    if len(samples) < MIN_DEFECT_FRAMES or samples[0].ndim != 2:
        return Defects.none()
    # First pass: how often each pixel is off its neighbours, one way or the other. Only counts are
    # kept (a full-size median per sample would be 4 bytes a pixel a frame: gigabytes at 4K).
    high = np.zeros(samples[0].shape, np.uint16)
    low = np.zeros_like(high)
    for above, below in ordered_map(lambda frame: _off_neighbours(frame, stride), samples, workers=workers):
        high += above
        low += below
    needed = DEFECT_SHARE * len(samples)
    ys, xs = np.nonzero((high >= needed) | (low >= needed))
    if len(ys) == 0:
        return Defects.none()
    # Second pass, at the candidates only: does each one follow its neighbourhood from frame to frame?
    ny, nx = _neighbours(ys, xs, samples[0].shape, stride, exclude=False)
    exposure = np.array([max(float(f[::4, ::4].mean()), 1e-3) for f in samples])[:, None]  # divided out
    around = np.stack([np.median(f[ny, nx].astype(np.float32), axis=1) for f in samples]) / exposure
    own = np.stack([f[ys, xs].astype(np.float32) for f in samples]) / exposure
    moving = around.std(axis=0) > STATIC_VARIATION * np.maximum(around.mean(axis=0), 1e-3)
    own_dev, around_dev = own - own.mean(axis=0), around - around.mean(axis=0)
    spread = np.sqrt((own_dev**2).sum(axis=0) * (around_dev**2).sum(axis=0))
    correlation = np.where(spread > 0, (own_dev * around_dev).sum(axis=0) / np.maximum(spread, 1e-12), 0.0)
    stuck = moving & (correlation < FOLLOWS_SCENE)
    ys, xs = ys[stuck], xs[stuck]
    if len(ys) == 0:
        return Defects.none()
    return Defects(ys, xs, *_neighbours(ys, xs, samples[0].shape, stride))


def _neighbours(ys: np.ndarray, xs: np.ndarray, shape: tuple[int, ...], stride: int, *,
                exclude: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The 8 same-colour neighbours of each pixel, reflected at the edges. With `exclude`, neighbours
    that are themselves in the list are replaced by the first one that is not, so that a cluster of
    defects is not repaired from itself."""
    h, w = shape[:2]
    offsets = [(dy * stride, dx * stride) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx]
    ny = np.stack([ys + dy for dy, _ in offsets], axis=1)
    nx = np.stack([xs + dx for _, dx in offsets], axis=1)
    ny = np.where(ny < 0, ny + 2 * stride, np.where(ny >= h, ny - 2 * stride, ny))
    nx = np.where(nx < 0, nx + 2 * stride, np.where(nx >= w, nx - 2 * stride, nx))
    if not exclude:
        return ny, nx
    defect = np.zeros((h, w), bool)
    defect[ys, xs] = True
    bad = defect[ny, nx]
    if bad.any():
        first_clean = np.argmax(~bad, axis=1)
        rows = np.arange(len(ys))
        ny = np.where(bad, ny[rows, first_clean][:, None], ny)
        nx = np.where(bad, nx[rows, first_clean][:, None], nx)
    return ny, nx


def load_calibration_frame(path: Path, *, size: tuple[int, int], what: str) -> np.ndarray:
    """A dark or flat frame as float32 counts, checked against the sequence's frame size."""
    from descent.errors import FrameReadError
    from descent.sources.images import decode_image

    try:
        pixels = decode_image(path)
    except FrameReadError as error:
        raise UsageError(f"--{what} {path}: {error.reason}") from None
    if pixels.ndim == 3:
        raise UsageError(f"--{what} {path}: give the raw single-channel frame (before demosaicing), not colour")
    if (pixels.shape[1], pixels.shape[0]) != size:
        raise UsageError(f"--{what} {path}: {pixels.shape[1]}x{pixels.shape[0]}, but the frames are "
                         f"{size[0]}x{size[1]}; take the calibration frame with the same camera settings")
    return pixels.astype(np.float32)


def flat_gain(flat: np.ndarray, dark: np.ndarray | None, *, stride: int) -> np.ndarray:
    """Per-pixel gain that evens out a flat field; each colour of a mosaic is normalised on its own."""
    signal = flat - dark if dark is not None else flat.copy()
    gain = np.empty_like(signal)
    for y in range(stride):
        for x in range(stride):
            plane = signal[y::stride, x::stride]
            gain[y::stride, x::stride] = float(np.median(plane)) / np.maximum(plane, 1e-3)
    return np.clip(gain, 0.0, 8.0)  # a dead spot in the flat would otherwise amplify noise without bound


def estimate_vignetting(mean_image: np.ndarray, valid: np.ndarray | None = None) -> tuple[float, float]:
    """Radial falloff fitted to a mean frame: log brightness = c + k2 r^2 + k4 r^4, r = 1 at the corners.

    Averaged over a descent the ground is uniform; what remains in the mean frame is the lens.
    Returns (k2, k4): a falloff to 60% at the corners gives k2 + k4 = log(0.6).
    """
    h, w = mean_image.shape
    r2 = _radius_squared(w, h).astype(np.float64)
    use = mean_image > 0 if valid is None else (valid & (mean_image > 0))
    design = np.column_stack([np.ones(use.sum()), r2[use], r2[use] ** 2])
    coeffs, *_ = np.linalg.lstsq(design, np.log(mean_image[use]), rcond=None)
    return float(coeffs[1]), float(coeffs[2])


def _radius_squared(w: int, h: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    return ((xx - (w - 1) / 2) ** 2 + (yy - (h - 1) / 2) ** 2) / np.float32((w / 2) ** 2 + (h / 2) ** 2)


def vignetting_gain(size: tuple[int, int], k2: float, k4: float) -> np.ndarray:
    """The gain that undoes the falloff, at full resolution (float32, H x W)."""
    r2 = _radius_squared(*size)
    return np.exp(-(np.float32(k2) * r2 + np.float32(k4) * r2 * r2)).astype(np.float32)
