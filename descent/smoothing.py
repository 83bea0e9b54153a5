"""Whittaker smoothing: the one smoother of camera paths (stabilise) and exposure curves (deflicker).

Least squares with a penalty on the second difference keeps constant-rate change exactly, has no
lag and no bias at the ends, and holds a still stretch still, which a moving average does not.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def whittaker(values: np.ndarray, weights: np.ndarray, smoothness: float, *, passes: int = 1) -> np.ndarray:
    """Minimise sum w (z - y)^2 + smoothness * sum (second difference of z)^2, in O(n).

    The normal equations (W + smoothness D^T D) z = W y are symmetric, positive definite and
    pentadiagonal; they are solved by banded LDL^T elimination. With `passes`, the result is
    smoothed again: each pass keeps straight lines, and the cut between kept and removed periods
    gets sharper (give smoothness_for the same number of passes).
    """
    smoothed = np.asarray(values, np.float64)
    for _ in range(passes):
        smoothed = _whittaker_pass(smoothed, weights, smoothness)
    return smoothed


def _whittaker_pass(values: np.ndarray, weights: np.ndarray, smoothness: float) -> np.ndarray:
    if len(values) < 3 or smoothness <= 0:
        return np.asarray(values, np.float64).copy()
    return penalised_smooth(values, weights, np.full(len(values) - 2, smoothness))


def penalised_smooth(values: np.ndarray, weights: np.ndarray, penalty: np.ndarray) -> np.ndarray:
    """Minimise sum w (z - y)^2 + sum penalty[k] (z[k] - 2 z[k+1] + z[k+2])^2, in O(n).

    The Whittaker smoother with a weight of its own for each second difference: 0 lets the curve
    break (a step) or bend (a kink) there. The normal equations are pentadiagonal, symmetric and
    positive definite: banded LDL^T elimination.
    """
    n = len(values)
    if n < 3:
        return np.asarray(values, np.float64).copy()
    a0 = np.asarray(weights, np.float64).copy()  # main diagonal
    a1 = np.zeros(n - 1)  # first off-diagonal
    a2 = np.asarray(penalty, np.float64).copy()  # second off-diagonal
    # Each row (1, -2, 1) of D, weighted, adds its outer product to D^T P D.
    a0[:-2] += penalty
    a0[1:-1] += 4 * penalty
    a0[2:] += penalty
    a1[:-1] -= 2 * penalty
    a1[1:] -= 2 * penalty
    d0, d1, d2 = a0.tolist(), a1.tolist(), a2.tolist()
    diag = [0.0] * n
    l1 = [0.0] * (n + 1)  # l1[i] = L[i, i-1]
    l2 = [0.0] * (n + 2)  # l2[i] = L[i, i-2]
    for i in range(n):
        diag[i] = d0[i] - l1[i] ** 2 * (diag[i - 1] if i >= 1 else 0.0) - l2[i] ** 2 * (diag[i - 2] if i >= 2 else 0.0)
        if i + 2 < n:
            l2[i + 2] = d2[i] / diag[i]
        if i + 1 < n:
            l1[i + 1] = (d1[i] - (l2[i + 1] * l1[i] * diag[i - 1] if i >= 1 else 0.0)) / diag[i]
    y = (np.asarray(weights, np.float64) * np.asarray(values, np.float64)).tolist()
    for i in range(1, n):
        y[i] -= l1[i] * y[i - 1] + (l2[i] * y[i - 2] if i >= 2 else 0.0)
    z = [y[i] / diag[i] for i in range(n)]
    for i in range(n - 2, -1, -1):
        z[i] -= l1[i + 1] * z[i + 1] + (l2[i + 2] * z[i + 2] if i + 2 < n else 0.0)
    return np.array(z)


def smoothness_for(period_frames: float, *, passes: int = 1) -> float:
    """The Whittaker weight whose response, after `passes` passes, is one half at this period (in frames).

    One pass has response 1 / (1 + smoothness * (2 sin(pi / period))^4).
    """
    period = max(period_frames, 2.5)
    return (2 ** (1 / passes) - 1) / (2 * math.sin(math.pi / period)) ** 4


def shortest_period_frames(video_times_s: Sequence[float], *, video_s: float,
                           capture_times_s: Sequence[float] | None = None, period_s: float | None = None) -> float:
    """The shortest period of change a smoother keeps, in captured frames: what is faster than
    `video_s` of the output video is removed (it shakes or flickers on screen, however slow it was
    when captured), and with `capture_times_s`, what is faster than `period_s` capture seconds too.

    `video_times_s` is each captured frame's time in the output video (frame i shown at
    sum(repeats[:i]) / fps; a frame not shown takes the time of the next one). The rates are
    medians, so a sequence whose rate varies gets one period, the one of its typical frame. At
    least 2 frames.
    """
    video_step = _median_step(video_times_s)
    frames = video_s / video_step if video_step else 2.0
    if period_s is not None and capture_times_s is not None:
        capture_step = _median_step(capture_times_s)
        if capture_step:
            frames = max(frames, period_s / capture_step)
    return max(frames, 2.0)


def _median_step(times_s: Sequence[float]) -> float | None:
    steps = np.diff(np.asarray(times_s, np.float64))
    steps = steps[steps > 0]
    return float(np.median(steps)) if len(steps) else None
