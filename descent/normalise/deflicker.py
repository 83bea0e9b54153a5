"""Deflicker: a gain per frame so that exposure follows a smooth curve, real changes kept.

1. Measure. For each pair of consecutive frames, the ratio of their brightness on the ground they
   share: the current frame aligned onto the previous one by the stabiliser's motion (or as it is,
   when not stabilising), away from masked lander parts, clipped and dark pixels, as the median of
   per-pixel log ratios. Ground that comes into view darker (a crater floor) is not shared, so it
   does not count as flicker.
2. Chain. The ratios add up to each frame's exposure (log) relative to the first frame.
3. Smooth, keeping steps. Steps (an exposure change that lasts) are found where the median of the
   chain over a few frames after a point differs from the median before it by far more than the
   flicker; between steps a Whittaker smoother (no lag, no bias at the ends) gives the smooth
   exposure. The window is centred, so nothing ramps before a step, which ffmpeg's look-ahead
   deflicker does.
4. Correct. Each frame's gain is the smooth exposure over its own.
"""

from __future__ import annotations

import itertools

import cv2
import numpy as np

from descent.smoothing import smoothness_for, whittaker

STEP_SIGMAS = 5.0  # a step must stand out from the flicker by this many standard errors
MIN_STEP = 0.05  # ... and change the exposure by 5% at least: smaller ones are smoothed like flicker
MIN_SHARED_PIXELS = 500
MEDIAN_SAMPLE = 4096  # ratios the trim's centre and spread are taken from
RATIO_PIXELS = 16384  # pixels a pair's aligned brightness ratio is taken over


def brightness_log_ratio(before: np.ndarray, after: np.ndarray, valid: np.ndarray | None = None) -> float | None:
    """log(after / before) on pixels both see well: the ratio of their sums, outliers trimmed.

    The trim (per-pixel ratios beyond 2.5 median absolute deviations of their median) drops pixels
    that do not share the change: a moving shadow, a mismatched edge. Of the rest, the ratio of sums
    is what the frame's brightness follows when a gain is applied; a mean or median of per-pixel
    ratios is not, because cameras add a black offset that their gain does not scale.

    `before` and `after` are aligned 8-bit grey pictures of the same ground; `valid` marks pixels
    that both cover and that are not masked. None when too few pixels qualify.
    """
    usable = (before > 8) & (before < 247) & (after > 8) & (after < 247)
    if valid is not None:
        usable &= valid
    if int(usable.sum()) < MIN_SHARED_PIXELS:
        return None
    old, new = before[usable].astype(np.float32), after[usable].astype(np.float32)
    ratios = new / old
    # The trim's centre and spread need only a sample (medians cost most of this function); the
    # ratio itself is taken over every usable pixel.
    sample = ratios[:: max(1, len(ratios) // MEDIAN_SAMPLE)]
    centre = float(np.median(sample))
    spread = 1.4826 * float(np.median(np.abs(sample - centre))) + 1e-6
    kept = np.abs(ratios - centre) <= 2.5 * spread
    return float(np.log(new[kept].sum() / old[kept].sum()))


def global_log_ratio(before: np.ndarray, after: np.ndarray, mask: np.ndarray | None) -> float | None:
    """log of the ratio of the two frames' mean brightness over unclipped, unmasked pixels.

    For frames that cannot be aligned: pixel by pixel they would compare different ground, but at
    descent frame rates most of the picture is the same ground, so the means follow the exposure.
    """
    means = []
    for picture in (before, after):
        usable = ((picture > 8) & (picture < 247)).astype(np.uint8)
        if mask is not None:
            usable &= (mask > 0).astype(np.uint8)
        if int(usable.sum()) < MIN_SHARED_PIXELS:
            return None
        means.append(cv2.mean(picture, usable)[0])
    return float(np.log(means[1] / means[0]))


def aligned_log_ratio(before: np.ndarray, after: np.ndarray, to_after: np.ndarray | None,
                      mask: np.ndarray | None) -> float | None:
    """brightness_log_ratio after warping `after` onto `before` (2x3 pixel matrix before -> after);
    without a matrix, the global ratio.

    About RATIO_PIXELS pixels, on a regular grid, are plenty for a robust ratio, and pass 1 runs
    this for every pair: on a 512 px analysis copy that is every fourth pixel each way, sixteen
    times cheaper than all of them. So `after` is warped straight onto those pixels of `before`.
    Where `after` does not reach, the warp leaves 0, which brightness_log_ratio already refuses as
    too dark.
    """
    if to_after is None:
        return global_log_ratio(before, after, mask)
    step = max(1, round(np.sqrt(before.size / RATIO_PIXELS)))
    sampled = before[::step, ::step]
    h, w = sampled.shape
    on_grid = to_after @ np.diag([step, step, 1.0])  # sampled pixel -> before pixel -> after pixel
    aligned = cv2.warpAffine(after, on_grid, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                             borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    valid = None if mask is None else mask[::step, ::step] > 0
    return brightness_log_ratio(sampled, aligned, valid)


def exposure_chain(log_ratios: list[float | None]) -> np.ndarray:
    """Each frame's log exposure relative to the first; an unmeasured pair counts as no change."""
    steps = np.array([0.0 if r is None else r for r in log_ratios], np.float64)
    steps[0] = 0.0
    return np.cumsum(steps)


def find_steps(chain: np.ndarray, half_window: int) -> list[int]:
    """Frames where a lasting change starts.

    At each frame, the median of the chain over the frames after it is compared with the median over
    the frames before it. A step stands out from the flicker, changes the exposure by MIN_STEP at
    least, and is the same seen from twice as far, where a steady drift would have doubled: a drift
    is smoothed, however clean the data.
    """
    n = len(chain)
    if n < 2 * 3:
        return []
    steps_between = np.diff(chain)
    noise = 1.4826 * float(np.median(np.abs(steps_between - np.median(steps_between)))) / np.sqrt(2)
    scores = np.zeros(n)
    for j in range(3, n - 2):
        k = min(half_window, j, n - j)
        change = _median_change(chain, j, k)
        if abs(change) < MIN_STEP:
            continue
        if _is_drift(chain, j, k, change, reach=min(2 * half_window, j, n - j)):
            continue
        standard_error = 1.2533 * noise * np.sqrt(2.0 / k) + 1e-9  # of a difference of two medians of k samples
        scores[j] = abs(change) / standard_error
    steps: list[int] = []
    for j in np.argsort(-scores):
        if scores[j] < STEP_SIGMAS:
            break
        if all(abs(int(j) - s) >= half_window for s in steps):
            steps.append(_refine_step(chain, int(j), half_window))
    return sorted(steps)


def _median_change(chain: np.ndarray, j: int, k: int) -> float:
    return float(np.median(chain[j : j + k]) - np.median(chain[j - k : j]))


def _is_drift(chain: np.ndarray, j: int, k: int, change: float, *, reach: int) -> bool:
    """Whether the change at j grows in proportion to the distance it is seen from, as a drift does.

    Seen from w frames instead of k, a step's change stays the same and a drift's is w / k times
    larger: the change is called a drift when it is nearer the second. Twice as far where the chain
    reaches; half as far near its ends.
    """
    w = 2 * k if reach >= 2 * k else max(3, k // 2)
    if w == k:
        return False
    growth = abs(_median_change(chain, j, w)) / abs(change)
    midpoint = (1 + w / k) / 2
    return growth > midpoint if w > k else growth < midpoint


def _refine_step(chain: np.ndarray, near: int, half_window: int) -> int:
    """The boundary near `near` that best splits its surroundings into two levels (least absolute deviations).

    The median test can land a few frames off when the frames at the step flicker; a step placed
    late or early leaves frames of one level at the end of the other's segment, whose smoothing then
    ramps towards them.
    """
    reach = half_window // 2 + 1  # the median test scores a clean step alike over half a window
    lo, hi = max(1, near - reach), min(len(chain) - 1, near + reach)
    start, end = max(0, near - half_window - 2), min(len(chain), near + half_window + 2)

    def cost(b: int) -> float:
        left, right = chain[start:b], chain[b:end]
        return float(np.abs(left - np.median(left)).sum() + np.abs(right - np.median(right)).sum())

    return min(range(lo, hi + 1), key=cost)


def high_frequency_rms(values: np.ndarray, *, period_frames: int) -> float:
    """RMS of what a centred moving average over `period_frames` does not explain: the flicker metric
    of the tests and of scripts/bench_normalise.py (on log brightness)."""
    kernel = np.ones(period_frames) / period_frames
    padded = np.pad(values, (period_frames // 2, period_frames - 1 - period_frames // 2), mode="edge")
    return float(np.sqrt(np.mean((values - np.convolve(padded, kernel, mode="valid")) ** 2)))


def deflicker_gains(log_ratios: list[float | None], *, period_frames: float) -> tuple[np.ndarray, list[int]]:
    """The gain to apply to each frame, and the frames where a lasting step was kept."""
    chain = exposure_chain(log_ratios)
    steps = find_steps(chain, half_window=max(4, round(period_frames / 2)))
    smooth = np.empty_like(chain)
    bounds = [0, *steps, len(chain)]
    for start, end in itertools.pairwise(bounds):
        segment = chain[start:end]
        lam = smoothness_for(min(period_frames, max(len(segment), 3)))
        smooth[start:end] = whittaker(segment, np.ones(len(segment)), lam)
    return np.exp(smooth - chain), steps
