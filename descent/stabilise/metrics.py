"""How steady a video is, measured on its decoded frames: the figures the benchmark and tests use.

Jitter is the RMS of the high-frequency part of the inter-frame motion, in output pixels:
translation, rotation (as the arc it moves a point at the frame edge) and zoom (likewise), each
minus its own smooth trend (periods longer than `period_frames` are the flight, not the shake).
Interframe PSNR (ITF) is the usual companion figure, though blur and borders flatter it.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from descent.smoothing import smoothness_for, whittaker
from descent.stabilise.motion import analysis_copy, estimate_motion, find_corners

JITTER_PERIOD_FRAMES = 15.0


def interframe_motion(frames: Iterable[np.ndarray]) -> np.ndarray:
    """(n-1) x 4 motions in pixels of the frames given: dx, dy, rotation arc, zoom arc (NaN if unmeasured)."""
    rows = []
    previous = corners = None
    width = 0
    guess = None
    for frame in frames:
        width = frame.shape[1]
        image = analysis_copy(frame)
        if previous is not None:
            result = estimate_motion(previous, image, corners, guess=guess)
            if result is None:
                rows.append([np.nan] * 4)
            else:
                t = result[0]
                guess = t
                rows.append([t.tx * width, t.ty * width, t.angle_rad * width / 2, t.log_scale * width / 2])
        previous, corners = image, find_corners(image)
    return np.array(rows, np.float64).reshape(-1, 4)


def jitter_px(motion: np.ndarray, period_frames: float = JITTER_PERIOD_FRAMES) -> float:
    """RMS of what is left of each motion component after removing its trend slower than the period."""
    good = ~np.isnan(motion).any(axis=1)
    series = motion[good]
    if len(series) < 5:
        return float("nan")
    lam = smoothness_for(period_frames)
    weights = np.ones(len(series))
    high = np.column_stack([series[:, k] - whittaker(series[:, k], weights, lam) for k in range(4)])
    return float(np.sqrt(np.mean(np.sum(high**2, axis=1))))


def interframe_psnr(frames: Iterable[np.ndarray]) -> float:
    """Mean PSNR between consecutive frames (higher is steadier)."""
    values = []
    previous = None
    for frame in frames:
        current = frame.astype(np.float64)
        if previous is not None:
            mse = float(np.mean((current - previous) ** 2))
            values.append(99.0 if mse == 0 else 10 * np.log10(255.0**2 / mse))
        previous = current
    return float(np.mean(values)) if values else float("nan")
