"""Deflicker: a gain per frame so that exposure follows a smooth curve, real changes kept.

What is flicker is decided by how the video plays: an exposure swing faster than about a second of
the VIDEO flickers on screen, whatever the capture rate (auto-exposure hunting over 7 frames at
2.5 frames/s is 2.8 s of capture time, and a 4 Hz flicker when each frame is shown once at 30 fps).
`flicker_period_frames` turns the playback (each frame's time in the video) into that period.

1. Measure. For each pair of consecutive frames, the ratio of their brightness on the ground they
   share: the current frame aligned onto the previous one by the stabiliser's motion (or as it is,
   when not stabilising), away from masked lander parts, clipped and dark pixels. Ground that comes
   into view darker (a crater floor) is not shared, so it does not count as flicker.
2. Chain. The ratios add up to each frame's exposure (log) relative to the first frame. An
   unmeasured pair (None) is a break: the exposure change across it is unknown, and the curve is cut
   there as at a step.
3. Find steps: exposure changes that last. A step stands out from the flicker at some scale (one
   frame for a clean cut, many frames under heavy noise: each scale is judged against the spread of
   the same statistic over the whole sequence, so hunting, noise and random walks set their own
   bar), or by its whole trace in what a smooth curve leaves (a matched filter); it still holds a
   flicker period later (a swing that comes back within a flicker period is no step); its medians
   move too (a burst is no step); two levels tell it better than a straight line (a drift, the slow
   darkening of dust, is not a step).
   Where the flicker blurs which frame it starts on, a later one nearly as good is taken: a step
   shown early is the ramp before it that a look-ahead filter makes.
4. Find kinks: the exposure's rate of change changing at once (dust rolling in, brightening the
   picture by half in a second of video). A smooth curve would round the corner off and move the
   frames around it by several percent; a kink is where lines fitted either side differ in slope,
   against that statistic's spread over the sequence, and where two lines fit better than a step.
5. Smooth. One Whittaker curve (no lag, no bias at the ends), whose response is one half at twice
   the flicker period, cut at each step and break (nothing before a step depends on what comes
   after it, so nothing ramps before it) and free to bend at each kink; robust weights (Huber) so
   that a burst of one frame does not pull the curve.
6. Correct. Each frame's gain is the smooth exposure (with its steps) over its own.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from descent.smoothing import penalised_smooth, shortest_period_frames, smoothness_for, whittaker

FLICKER_VIDEO_S = 1.0  # exposure swings faster than this much of the video are flicker
SMOOTH_PER_FLICKER = 2.0  # the smooth exposure's response is one half at this many flicker periods
STEP_SIGMAS = 5.0  # a step stands out from the spread of its statistic over the sequence by this much
MIN_STEP = 0.05  # ... and changes the exposure by 5% at least: smaller ones are smoothed like flicker
LASTING = 0.5  # a flicker period on, at least this share of a step is still there
HUBER_K = 2.5  # residuals beyond this many robust standard deviations weigh less in the smooth curve
ROBUST_PASSES = 3
MATCHED_SIGMAS = 4.0  # ... or, for the matched filter (a step's whole trace), by this much
KINK_SIGMAS = 4.0  # a change of slope stands out from the spread of its statistic by this much
LATE_SHARE = 0.25  # a later split within this share of the step's size of the best is taken (see _refine_step)
MIN_KINK = 0.0015  # a change of slope (per frame) a smooth curve would round by 0.5% at most
MIN_SPREAD = 1e-3  # below 0.1% nothing is visible: robust scales are not taken smaller
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


def flicker_period_frames(video_times_s: Sequence[float], *, capture_times_s: Sequence[float] | None = None,
                          period_s: float | None = None) -> float:
    """The flicker period in frames: exposure swings faster than FLICKER_VIDEO_S of video are flicker,
    and with `period_s` (capture seconds, --deflicker-period) those faster than that as well
    (descent.smoothing.shortest_period_frames)."""
    return shortest_period_frames(video_times_s, video_s=FLICKER_VIDEO_S, capture_times_s=capture_times_s,
                                  period_s=period_s)


def exposure_chain(log_ratios: Sequence[float | None]) -> np.ndarray:
    """Each frame's log exposure relative to the first; an unmeasured pair counts as no change."""
    steps = np.array([0.0 if r is None else r for r in log_ratios], np.float64)
    steps[0] = 0.0
    return np.cumsum(steps)


def deflicker_gains(log_ratios: Sequence[float | None], *,
                    period_frames: float) -> tuple[np.ndarray, list[int]]:
    """The gain to apply to each frame, and the frames where a lasting step was kept.

    `log_ratios[i]` is log(brightness of frame i / frame i-1) on shared ground, None where it was not
    measured (the first entry is ignored); `period_frames` comes from flicker_period_frames.
    Exposure swings faster than the period are taken out; steps and slower changes are kept. A
    sequence shorter than one period is left as it is: within it a swing cannot be told from a change.
    """
    if len(log_ratios) < period_frames:
        return np.ones(len(log_ratios)), []
    chain = exposure_chain(log_ratios)
    unmeasured = [i for i in range(1, len(chain)) if log_ratios[i] is None]
    # Kinks are found twice: roughly before the steps (so that the dust's onset is not read as a
    # step), then on the chain with the steps taken out.
    rough_kinks = find_kinks(chain, period_frames=period_frames, breaks=unmeasured)
    steps = find_steps(chain, period_frames=period_frames, breaks=unmeasured, kinks=rough_kinks)
    breaks = sorted({*steps, *unmeasured})
    kinks = find_kinks(_without_steps(chain, breaks, period_frames), period_frames=period_frames, breaks=breaks)
    smooth = smooth_exposure(chain, breaks, kinks=kinks,
                             smoothness=smoothness_for(SMOOTH_PER_FLICKER * period_frames))
    return np.exp(smooth - chain), steps


def find_steps(chain: np.ndarray, *, period_frames: float, breaks: Sequence[int] = (),
               kinks: Sequence[int] = ()) -> list[int]:
    """Frames where a lasting change starts (none at the breaks, which are free anyway).

    Two statistics make candidates. At each frame and scale w (1, 2, 4 ... frames, the flicker
    period and twice it), the mean of the w frames after less the mean of the w before, against
    that statistic's spread over the whole sequence at that scale: white noise sets a high bar at
    one frame and a low one at many, a random walk the reverse, so each step is judged where it is
    clearest. And what a smooth curve (bending at `kinks`) leaves of the chain, correlated with what
    it leaves of a step: the whole of a step's trace, against that correlation's spread away from
    its peak, so that a step under heavy noise, which no one scale shows, is found.
    A candidate stands out STEP_SIGMAS times (MATCHED_SIGMAS for the matched filter) and is kept
    when, over a whole flicker period on either side, the change is MIN_STEP or more and the same,
    within a factor 1 / LASTING, as what the scale saw; the medians move with the means (a burst of
    one frame moves only the means); its last half still holds it (a swing that comes back within a
    flicker period is not a step); and it is no drift. None within half a flicker period of an end,
    where lasting cannot be told.
    The strongest is taken, removed, and the search repeated.
    """
    n = len(chain)
    period = max(3, round(period_frames))
    if n < 6:
        return []
    # A scale needs room on both sides of a change to be judged at all.
    scales = [w for w in [*(2**k for k in range(8) if 2**k < period), period, 2 * period] if 2 * w < n]
    if not scales:
        return []
    work = chain.copy()
    excluded = np.zeros(n + 1, bool)
    excluded[list(breaks)] = True
    steps: list[int] = []
    smoothness = smoothness_for(SMOOTH_PER_FLICKER * period_frames)
    template = _step_template(period, smoothness)
    for _ in range(n // period + 1):  # steps closer than a flicker period are not told apart from flicker
        spreads = {w: 1.4826 * float(np.median(np.abs(_changes(work, w)[w : n - w + 1]))) + 1e-9 for w in scales}
        flicker = work - smooth_exposure(work, breaks, kinks=kinks, smoothness=smoothness)
        matched = np.abs(_matched(flicker, template))
        peak = int(np.argmax(matched))
        away = np.ones(n, bool)
        away[max(0, peak - 2 * period) : peak + 2 * period + 1] = False
        matched /= 1.4826 * float(np.median(matched[away])) + 1e-9 if away.any() else np.inf  # the peak's own
        # trace is a step's, not the flicker's: it would set the bar by itself
        best = _strongest_candidate(work, spreads, matched * STEP_SIGMAS / MATCHED_SIGMAS, excluded, period)
        if best is None:
            break
        seen_at, at, change = best
        if at not in steps:  # refined onto a step already kept, it is the rest of that one
            steps.append(at)
        for j in (seen_at, at):  # neither is found again
            excluded[max(0, j - 1) : j + 2] = True
        work[at:] -= change
    return sorted(steps)


def _changes(chain: np.ndarray, w: int) -> np.ndarray:
    """At each frame j, the mean of chain[j : j + w] less the mean of the w frames before (0 near the ends)."""
    n = len(chain)
    sums = np.concatenate([[0.0], np.cumsum(chain)])
    means = (sums[w:] - sums[:-w]) / w  # means[j] = mean of chain[j : j + w]
    change = np.zeros(n)
    if 2 * w <= n:
        change[w : n - w + 1] = means[w:] - means[: n - 2 * w + 1]
    return change


def _step_template(period: int, smoothness: float) -> np.ndarray:
    """What a smooth curve leaves of a unit step at frame 0 (frames -3 periods to 3 periods), unit norm."""
    reach = 3 * period
    step = (np.arange(-4 * period, 4 * period) >= 0).astype(np.float64)
    left = step - whittaker(step, np.ones(len(step)), smoothness)
    t = left[period : period + 2 * reach]
    return t / np.linalg.norm(t)


def _matched(flicker: np.ndarray, template: np.ndarray) -> np.ndarray:
    """At each frame, the correlation of the flicker around it with the template (centred on the frame)."""
    half = len(template) // 2
    padded = np.pad(flicker, (half, len(template) - half - 1))
    return np.correlate(padded, template, mode="valid")


def _strongest_candidate(chain: np.ndarray, spreads: dict[int, float], matched: np.ndarray, excluded: np.ndarray,
                         period: int) -> tuple[int, int, float] | None:
    """(where it stands out, where it starts, its size) of the strongest lasting change, if any;
    `matched` is the matched-filter score of each frame, already over its spread."""
    n = len(chain)
    score = matched.copy()
    scale_at = np.full(n, period)
    for w, spread in spreads.items():
        if 2 * w > n:
            break
        s = np.abs(_changes(chain, w)) / max(spread, MIN_SPREAD * np.sqrt(2 / w))
        better = s > score
        score[better], scale_at[better] = s[better], w
    score[excluded[:n]] = 0.0
    for j in np.argsort(-score):
        if score[j] < STEP_SIGMAS:
            return None
        found = _lasting_change(chain, int(j), int(scale_at[j]), period)
        if found is not None:
            return int(j), *found
    return None


def _lasting_change(chain: np.ndarray, j: int, w: int, period: int) -> tuple[int, float] | None:
    """(where, how much) when the change at j seen over w frames is a step; None for a swing or a drift."""
    n = len(chain)
    k = min(period, j, n - j)
    if k < max(3, period // 2):
        return None  # too near an end to tell whether it lasts
    # The median for what the scale saw (a burst of one frame moves the mean of a few frames), over
    # three frames at least: judged on one frame, the fall after a burst just past a step is as
    # large as the step and lasts as long, and the step was put there.
    near = min(max(w, 3), j, n - j)
    seen = float(np.median(chain[j : j + near]) - np.median(chain[j - near : j]))
    change = _mean_change(chain, j, k)
    if abs(change) < MIN_STEP or change * seen <= 0 or not LASTING <= seen / change <= 1 / LASTING:
        return None  # too small, or not the same change at both scales: a swing, or a drift seen close up
    robust = float(np.median(chain[j : j + k]) - np.median(chain[j - k : j]))
    if robust * change <= 0 or abs(robust) < LASTING * abs(change):
        return None  # the means moved, the medians did not: a burst, not a step
    if k >= 4:
        late = float(np.mean(chain[j + k // 2 : j + k]) - np.mean(chain[j - k : j - k // 2]))
        if late * change <= 0 or abs(late) < LASTING * abs(change):
            return None  # a swing that comes back within a flicker period
    if _is_drift(chain, j, k):
        return None
    at = _refine_step(chain, j, max(w, 2), abs(change))
    size = _mean_change(chain, at, min(k, at, n - at))
    return (at, size) if abs(size) >= MIN_STEP else None


def _mean_change(chain: np.ndarray, j: int, k: int) -> float:
    """The mean of the k frames from j less the mean of the k before: means, not medians, because
    the median of a hunting swing two frames long lands on one side of it."""
    return float(np.mean(chain[j : j + k]) - np.mean(chain[j - k : j]))


def _is_drift(chain: np.ndarray, j: int, k: int) -> bool:
    """Whether the k frames either side of j are told by a straight line at least as well as by two
    levels meeting at j: a drift (the slow darkening of dust, a ramp's start near an end), not a step.
    """
    around = chain[j - k : j + k]
    x = np.arange(len(around), dtype=np.float64)
    line = np.polyval(np.polyfit(x, around, 1), x)
    levels = np.where(x < k, np.mean(around[:k]), np.mean(around[k:]))
    return float(np.sum((around - line) ** 2)) <= float(np.sum((around - levels) ** 2))


def _refine_step(chain: np.ndarray, near: int, reach: int, size: float) -> int:
    """The boundary near `near` that best splits its surroundings into two levels (least absolute
    deviations), or a later one that is nearly as good.

    Under flicker the best split can land a frame early: a frame before the step that flickered
    towards the new level looks like part of it. Shown early, a step is a jump before the real one;
    shown a frame late, it is a frame of the old level, a flicker of the step's size. So the latest
    split whose cost is within LATE_SHARE of the step of the best is taken.
    """
    lo, hi = max(1, near - reach), min(len(chain) - 1, near + reach)
    start, end = max(0, lo - reach - 2), min(len(chain), hi + reach + 2)

    def cost(b: int) -> float:
        left, right = chain[start:b], chain[b:end]
        return float(np.abs(left - np.median(left)).sum() + np.abs(right - np.median(right)).sum())

    costs = {b: cost(b) for b in range(lo, hi + 1)}
    best = min(costs, key=costs.__getitem__)
    return max(b for b in range(best, hi + 1) if costs[b] <= costs[best] + LATE_SHARE * size)


def smooth_exposure(chain: np.ndarray, breaks: Sequence[int], *, kinks: Sequence[int] = (),
                    smoothness: float) -> np.ndarray:
    """The smooth exposure: a Whittaker curve, cut at the breaks (steps and unmeasured pairs) and free
    to bend at the kinks, with robust (Huber) weights so that a burst of one frame does not pull it."""
    n = len(chain)
    penalty = np.full(max(n - 2, 0), smoothness)
    for b in breaks:  # the second differences that span frames b - 1 and b
        penalty[max(0, b - 2) : b] = 0.0
    for k in kinks:
        if 1 <= k <= n - 2:
            penalty[k - 1] = 0.0
    weights = np.ones(n)
    for _ in range(ROBUST_PASSES):
        curve = penalised_smooth(chain, weights, penalty)
        residual = np.abs(chain - curve)
        scale = max(1.4826 * float(np.median(residual)), MIN_SPREAD)
        weights = np.minimum(1.0, HUBER_K * scale / np.maximum(residual, 1e-12))
    return curve


def _without_steps(chain: np.ndarray, breaks: Sequence[int], period_frames: float) -> np.ndarray:
    """The chain with each step and break taken out (the mean change over a flicker period either side)."""
    work = chain.copy()
    k = max(3, round(period_frames))
    bounds = [0, *breaks, len(chain)]
    for left, at, right in zip(bounds, bounds[1:], bounds[2:], strict=False):
        a, b = max(left, at - k), min(right, at + k)
        work[at:] -= float(np.median(work[at:b]) - np.median(work[a:at]))
    return work


def find_kinks(chain: np.ndarray, *, period_frames: float, breaks: Sequence[int] = ()) -> list[int]:
    """Frames where the exposure's rate of change changes at once (dust rolling in), which a smooth
    curve would round off: the slope of a line fitted over k frames after less the one before, at k
    of one and two flicker periods, judged against that statistic's spread over the sequence."""
    n = len(chain)
    period = max(3, round(period_frames))
    kinks: list[int] = []
    seen: list[int] = []
    x = np.arange(n, dtype=np.float64)
    sums = np.concatenate([[0.0], np.cumsum(chain)])
    moments = np.concatenate([[0.0], np.cumsum(x * chain)])
    score = np.zeros(n)
    size = np.zeros(n)
    reach = np.full(n, period)
    for k in (period, 2 * period):
        if 2 * k > n:
            break
        s = np.arange(n - k + 1)
        sy = sums[s + k] - sums[s]
        slope = ((moments[s + k] - moments[s]) - (s + (k - 1) / 2) * sy) / (k * (k * k - 1) / 12)
        change = np.zeros(n)
        change[k : n - k + 1] = slope[k:] - slope[: n - 2 * k + 1]
        spread = 1.4826 * float(np.median(np.abs(change[k : n - k + 1]))) + 1e-12
        z = np.abs(change) / max(spread, MIN_KINK / STEP_SIGMAS)
        better = z > score
        score[better], size[better], reach[better] = z[better], change[better], k
    for b in breaks:
        score[max(0, b - period // 2) : b + period // 2 + 1] = 0.0
    for j in np.argsort(-score):
        if score[j] < KINK_SIGMAS:
            break
        if abs(size[j]) < MIN_KINK or any(abs(int(j) - q) < period for q in seen):
            continue
        seen.append(int(j))
        at = _refine_kink(chain, int(j), period)
        if at is not None:
            kinks.append(at)
    return sorted(kinks)


def _refine_kink(chain: np.ndarray, near: int, k: int) -> int | None:
    """The frame near `near` where two lines meeting there fit the 2k frames around it best; None
    when a step there fits them better (the slopes beside a step that is not yet found differ too)."""
    n = len(chain)
    lo, hi = max(2, near - k // 2), min(n - 2, near + k // 2)
    start, end = max(0, lo - k), min(n, hi + k)
    x = np.arange(start, end, dtype=np.float64)
    y = chain[start:end]

    def cost(p: int, jump: bool) -> float:
        h = np.maximum(0.0, x - p)
        columns = [np.ones_like(x), x - near, h, h * h / k]
        if jump:
            columns[2] = (x >= p).astype(np.float64)
        design = np.stack(columns, axis=1)
        fit, *_ = np.linalg.lstsq(design, y, rcond=None)
        return float(np.sum((y - design @ fit) ** 2))

    costs = {p: cost(p, False) for p in range(lo, hi + 1)}
    best = min(costs, key=costs.__getitem__)
    if min(cost(p, True) for p in range(lo, hi + 1)) < costs[best]:
        return None
    return best


def high_frequency_rms(values: np.ndarray, *, period_frames: int) -> float:
    """RMS of what a centred moving average over `period_frames` does not explain (on log brightness).

    A moving average leaks: periods of two to four times its length count partly. flicker_rms is
    the sharper measure."""
    kernel = np.ones(period_frames) / period_frames
    padded = np.pad(values, (period_frames // 2, period_frames - 1 - period_frames // 2), mode="edge")
    return float(np.sqrt(np.mean((values - np.convolve(padded, kernel, mode="valid")) ** 2)))


def flicker_rms(values: np.ndarray, *, period_frames: float) -> float:
    """RMS of the part of `values` (log brightness per frame) with periods shorter than `period_frames`:
    the flicker metric of the tests and of scripts/bench_normalise.py.

    A sharp cut in the Fourier domain. The line through the end values is taken off and the rest
    continued by its point reflection, so that neither a jump nor a kink joins the ends: a smooth
    change of brightness, however steep at the ends, counts as none.
    """
    x = np.asarray(values, np.float64)
    if len(x) < 3:
        return 0.0
    x = x - np.linspace(x[0], x[-1], len(x))
    odd = np.concatenate([x, -x[-2:0:-1]])
    spectrum = np.fft.rfft(odd)
    spectrum[np.fft.rfftfreq(len(odd)) < 1 / period_frames] = 0
    return float(np.sqrt(np.mean(np.fft.irfft(spectrum, len(odd))[: len(x)] ** 2)))
