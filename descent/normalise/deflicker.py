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
   move too (a burst is no step); two levels tell it better than a straight line, and, where the
   flicker is white, better than a line that bends once (a drift, the slow darkening of dust, dust
   rolling in, is not a step).
   Where the flicker blurs which frame it starts on, a later one nearly as good is taken: a step
   shown early is the ramp before it that a look-ahead filter makes. Then each step is placed
   (place_steps) by the level difference that locates a step best under this flicker, and sized
   (step_jumps) by the one that measures its size best around it: the two frames beside it under
   a random walk, means over whole swings under hunting, lines under a climb. A step that this
   size puts under MIN_STEP is dropped.
4. Find kinks: the exposure's rate of change changing at once (dust rolling in, brightening the
   picture by half in a second of video). A smooth curve would round the corner off and move the
   frames around it by several percent; a kink is where lines fitted either side differ in slope,
   against that statistic's spread over the sequence, and where two lines fit better than a step.
5. Smooth. The steps, at their measured sizes, are taken out; one Whittaker curve (no lag), whose
   response is one half at twice the flicker period, cut at each unmeasured pair and free to bend at
   each kink, is fitted to the rest, with robust weights (Huber) so that a burst of one frame does
   not pull it, and continued past both ends by the parabola the last frames follow (a curve with a
   second-difference penalty runs straight at an end, and the dust's climb curves to the last
   frame); then the steps are put back.
6. Correct. Each frame's gain is the smooth exposure (with its steps) over its own.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from descent.smoothing import penalised_smooth, shortest_period_frames, smoothness_for, whittaker

FLICKER_VIDEO_S = 1.0  # exposure swings faster than this much of the video are flicker
SMOOTH_PER_FLICKER = 2.0  # the smooth exposure's response is one half at this many flicker periods
END_SIGMAS = 12.0  # a step this clear is kept even within half a flicker period of an end ...
END_FRAMES = 5  # ... if it has this many frames on either side (medians of 5: two bursts in a row are no step)
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
BEND_FRAMES = 5  # a step whose size is best measured over this many frames or more is checked against a bend
EXTEND_PERIODS = 0.5  # the smooth curve is continued this many flicker periods past each end ...
EXTEND_FIT = 6  # ... by a parabola fitted to this many times as many frames there
PLACE_REACH = 2  # place_steps moves a step by this many frames at most
NEAR_PERIODS = 1  # a step's size is measured the way the flicker within this many flicker periods of it allows best
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
    steps = place_steps(chain, steps, unmeasured, period_frames=period_frames)
    # Measured where the flicker hides it least, a step must still be one: the onset of dust (flat,
    # then climbing) passes the tests of find_steps, but the lines either side of it meet.
    breaks = sorted({*steps, *unmeasured})
    jumps = step_jumps(chain, steps, breaks, period_frames=period_frames)
    if any(abs(size) < MIN_STEP for size in jumps.values()):  # measured again: the others' room changed
        steps = [s for s in steps if abs(jumps[s]) >= MIN_STEP]
        breaks = sorted({*steps, *unmeasured})
        jumps = step_jumps(chain, steps, breaks, period_frames=period_frames)
    kinks = find_kinks(_without_steps(chain, breaks, period_frames), period_frames=period_frames, breaks=breaks)
    smooth = smooth_exposure(chain, breaks, kinks=kinks, jumps=jumps,
                             extend_frames=max(3, round(EXTEND_PERIODS * period_frames)),
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
    flicker period is not a step); and it is no drift. Within half a flicker period of an end, where
    lasting cannot be told, only one that stands out END_SIGMAS times.
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
        found = _lasting_change(chain, int(j), int(scale_at[j]), period, clear=score[j] >= END_SIGMAS)
        if found is not None:
            return int(j), *found
    return None


def _lasting_change(chain: np.ndarray, j: int, w: int, period: int, *, clear: bool = False) -> tuple[int, float] | None:
    """(where, how much) when the change at j seen over w frames is a step; None for a swing or a drift.

    Within half a flicker period of an end, whether a change lasts cannot be told, and only a `clear`
    one (standing out END_SIGMAS times from the flicker) is judged, on the frames there are: smoothed
    as flicker, a clean 25% step 9 frames before the end of a flicker-free sequence moved those frames
    by 23%.
    """
    n = len(chain)
    k = min(period, j, n - j)
    if k < (END_FRAMES if clear else max(3, period // 2)):
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
    if _is_drift(chain, j, k, bends=jump_measure(chain, [], period_frames=period, near=j).frames >= BEND_FRAMES):
        return None
    at = _refine_step(chain, j, max(w, 2), abs(change))
    size = _mean_change(chain, at, min(k, at, n - at))
    return (at, size) if abs(size) >= MIN_STEP else None


def _mean_change(chain: np.ndarray, j: int, k: int) -> float:
    """The mean of the k frames from j less the mean of the k before: means, not medians, because
    the median of a hunting swing two frames long lands on one side of it."""
    return float(np.mean(chain[j : j + k]) - np.mean(chain[j - k : j]))


def _is_drift(chain: np.ndarray, j: int, k: int, *, bends: bool) -> bool:
    """Whether the k frames either side of j are told at least as well by a continuous curve as by two
    levels meeting at j: a drift (the slow darkening of dust, a ramp's start near an end), not a step.

    The curve is a straight line; with `bends`, also a line that bends once anywhere in the window
    (dust rolling in: flat, then climbing), which two levels can fit better than one straight line.
    Only for flicker that is white at the scale of a step (its size is best measured over many frames,
    jump_measure): under a random walk or slow hunting a bent line also fits the flicker's own
    excursions around a real step.
    """
    around = chain[j - k : j + k]
    x = np.arange(len(around), dtype=np.float64)
    line = np.polyval(np.polyfit(x, around, 1), x)
    levels = np.where(x < k, np.mean(around[:k]), np.mean(around[k:]))
    continuous = float(np.sum((around - line) ** 2))
    if bends and len(around) > 6:
        knots = np.arange(2, len(around) - 2, dtype=np.float64)
        hinge = np.maximum(0.0, x[None, :] - knots[:, None])
        designs = np.stack([np.ones_like(hinge), np.broadcast_to(x, hinge.shape), hinge], axis=2)
        continuous = min(continuous, float(np.min(_residuals(designs, around))))
    return continuous <= float(np.sum((around - levels) ** 2))


def _residuals(designs: np.ndarray, values: np.ndarray) -> np.ndarray:
    """The sum of squares least squares leaves of `values` with each design (models x rows x columns)."""
    normal = np.einsum("mri,mrj->mij", designs, designs)
    rhs = np.einsum("mri,r->mi", designs, values)
    fits = np.linalg.solve(normal + 1e-12 * np.eye(designs.shape[2]), rhs[..., None])[..., 0]
    return np.sum((values[None, :] - np.einsum("mri,mi->mr", designs, fits)) ** 2, axis=1)


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
                    jumps: dict[int, float] | None = None, extend_frames: int = 0,
                    smoothness: float) -> np.ndarray:
    """The smooth exposure: a Whittaker curve, cut at the breaks and free to bend at the kinks, with
    robust (Huber) weights so that a burst of one frame does not pull it.

    Without `jumps` every break is a free cut. A break in `jumps` (step frame -> its size, from
    step_jumps) is a step of that size instead: the steps are taken out of the chain, the rest is
    smoothed as one curve, and the steps are put back. Cut free, the curve's two ends at a step each
    followed whatever the flicker did last (under a random walk, the walk's run-up to the step was
    taken for part of it, 12% on the worst descent), and each end moved against the same descent
    without the step (a ramp of up to 7% before it). Joined, what is left at the step is the error
    of its measured size, spread smoothly either side. With `extend_frames`, the sequence's first
    and last pieces are continued past their ends (_extended).
    """
    n = len(chain)
    if jumps:
        stepped = np.zeros(n)
        for at, size in jumps.items():
            stepped[at:] += size
        rest = smooth_exposure(chain - stepped, [b for b in breaks if b not in jumps], kinks=kinks,
                               extend_frames=extend_frames, smoothness=smoothness)
        return rest + stepped
    if not extend_frames:
        return _robust_smooth(chain, _penalty(n, breaks, kinks, smoothness))
    curve = np.empty(n)
    bounds = [0, *sorted(b for b in breaks if 0 < b < n), n]
    for start, end in itertools.pairwise(bounds):
        bends = [k - start for k in kinks if start < k < end]
        values, before = chain[start:end], 0
        if start == 0:
            extended = _extended(values, extend_frames, bends, at_start=True)
            before = len(extended) - len(values)  # none where the piece is too short to fit a parabola
            values, bends = extended, [b + before for b in bends]
        if end == n:
            values = _extended(values, extend_frames, bends, at_start=False)
        smooth = _robust_smooth(values, _penalty(len(values), [], bends, smoothness))
        curve[start:end] = smooth[before : before + end - start]
    return curve


def _extended(values: np.ndarray, frames: int, kinks: Sequence[int], *, at_start: bool) -> np.ndarray:
    """`values` continued for `frames` frames past one end by the parabola that fits the EXTEND_FIT x
    `frames` frames there (not reaching past a kink).

    A curve with a penalty on its second difference runs straight at an end: under the dust's climb,
    which curves to the very last frame, it ran above the last frames by up to 3.4% on a descent
    without flicker. Continued by the parabola, the end is no longer the curve's end, and it follows
    the curving data there; the parabola is a mean over many frames, so it carries little flicker.
    """
    n = len(values)
    if at_start:
        return _extended(values[::-1], frames, [n - k for k in kinks], at_start=False)[::-1].copy()
    reach = min(EXTEND_FIT * frames, n - max([0, *(k for k in kinks if k < n)]))
    if reach < 6:
        return values
    t = np.arange(reach, dtype=np.float64)
    fit = np.polyfit(t, values[n - reach :], 2)
    return np.concatenate([values, np.polyval(fit, reach + np.arange(frames, dtype=np.float64))])


def _penalty(n: int, breaks: Sequence[int], kinks: Sequence[int], smoothness: float) -> np.ndarray:
    """The weight of each second difference: 0 across a break (free to jump) and at a kink (free to bend)."""
    penalty = np.full(max(n - 2, 0), smoothness)
    for b in breaks:  # the second differences that span frames b - 1 and b
        penalty[max(0, b - 2) : b] = 0.0
    for k in kinks:
        if 1 <= k <= n - 2:
            penalty[k - 1] = 0.0
    return penalty


def _robust_smooth(values: np.ndarray, penalty: np.ndarray) -> np.ndarray:
    """penalised_smooth with Huber weights."""
    n = len(values)
    if n < 3:
        return values.astype(np.float64)
    weights = np.ones(n)
    for _ in range(ROBUST_PASSES):
        curve = penalised_smooth(values, weights, penalty)
        residual = np.abs(values - curve)
        scale = max(1.4826 * float(np.median(residual)), MIN_SPREAD)
        weights = np.minimum(1.0, HUBER_K * scale / np.maximum(residual, 1e-12))
    return curve


@dataclass(frozen=True, slots=True)
class JumpMeasure:
    """How a step's size is read off the chain: the level of the k frames after it less that of the k
    before, as their means, medians or lines fitted to each side and taken at the step."""

    frames: int
    kind: str  # "means", "medians" or "lines"
    scatter: float  # its root mean square where there is no step: its error at a step


def jump_measure(chain: np.ndarray, breaks: Sequence[int], *, period_frames: float,
                 near: int | None = None) -> JumpMeasure:
    """The measure of a step's size that the flicker disturbs least (around frame `near`, if given).

    A step's size is a difference of levels either side of it, and which levels are best depends on
    the flicker and the scene: under white noise, means over many frames; under a random walk, the two
    frames beside it (every frame further away adds the walk's own steps); under hunting, means over
    whole swings; under bursts, medians; during a climb (dust rolling in), lines (the means differ by
    the climb too). So every measure (means, medians and lines of k frames either side, k from 1 to
    the flicker period) is tried on the chain with the breaks taken out, at every frame within
    NEAR_PERIODS flicker periods of `near` whose frames do not reach a break, and the one whose values
    there scatter least (root mean square: a rare burst counts) is taken. Judged over the whole
    sequence instead, the quiet frames before the dust chose means for a step found in the dust.
    """
    period = max(3, round(period_frames))
    if near is None:
        return _best_measure(chain, breaks, period, None)
    # Only the frames within reach count, so the rest of a long sequence is not looked at.
    lo, hi = max(0, near - (NEAR_PERIODS + 1) * period), min(len(chain), near + (NEAR_PERIODS + 1) * period)
    return _best_measure(chain[lo:hi], [b - lo for b in breaks if lo < b < hi], period, near - lo)


def _best_measure(chain: np.ndarray, breaks: Sequence[int], period: int, near: int | None) -> JumpMeasure:
    """jump_measure's search, on the frames of `chain` within NEAR_PERIODS periods of `near` (all when None)."""
    n = len(chain)
    work = _without_steps(chain, breaks, period)
    best = JumpMeasure(1, "means", float("inf"))
    for k in range(1, min(period, (n - 1) // 2) + 1):
        at = _clear_of(breaks, k, n)
        if near is not None:
            at = at[np.abs(at - near) <= NEAR_PERIODS * period]
        if len(at) < period // 2:
            continue  # judged on a few frames of one kind, it would be chosen for them
        for kind in ("means", "medians", "lines") if k >= 3 else ("means",):
            scatter = float(np.sqrt(np.mean(_level_changes(work, k, kind=kind)[at] ** 2)))
            if scatter < best.scatter:
                best = JumpMeasure(k, kind, scatter)
    return best


def _clear_of(breaks: Sequence[int], k: int, n: int) -> np.ndarray:
    """The frames j whose k frames either side (j - k to j + k - 1) hold no break."""
    clear = np.ones(n + 1, bool)
    for b in breaks:
        clear[max(0, b - k + 1) : b + k] = False
    at = np.arange(k, n - k + 1)
    return at[clear[at]]


def step_jumps(chain: np.ndarray, steps: Sequence[int], breaks: Sequence[int], *,
               period_frames: float) -> dict[int, float]:
    """Each step's size, by the measure that the flicker around it disturbs least (jump_measure), over
    as many frames as reach neither an end nor another break."""
    jumps = {}
    for s in steps:
        measure = jump_measure(chain, breaks, period_frames=period_frames, near=s)
        k = max(1, min(measure.frames, *_room(s, breaks, len(chain))))
        jumps[s] = float(_level_changes(chain, k, kind=measure.kind if k >= 3 else "means", at=s))
    return jumps


def place_steps(chain: np.ndarray, steps: Sequence[int], breaks: Sequence[int], *,
                period_frames: float) -> list[int]:
    """Each step moved, by up to PLACE_REACH frames, to where a level difference sees it largest.

    The two-level split of find_steps is fooled by a swing that puts a step's first frame back at the
    old level (fast hunting, a random walk): placed one frame late, that frame shows the whole step as
    one frame of flicker. A difference of the levels of k frames either side (their means, or lines
    fitted to them) is largest at the step, and falls as it moves off it by one frame: by 1/k of the
    step for means, by about 4/k for lines. Of those differences, the one whose fall stands out most
    against how much it changes from one frame to the next elsewhere places the steps, and a step is
    moved only where that gain is larger than this change.
    """
    if not steps:
        return []
    n = len(chain)
    period = max(3, round(period_frames))
    work = _without_steps(chain, sorted({*steps, *breaks}), period_frames)
    bounds = [0, *steps, *breaks, n]
    best: tuple[float, int, str, float] | None = None
    for k in range(1, min(period, (n - 1) // 2) + 1):
        at = _clear_of(bounds[1:-1], k + 1, n)  # j and j + 1 both clear
        at = at[at + 1 < n - k + 1]
        if len(at) < max(period, n // 3):
            continue
        for kind in ("means", "lines") if k >= 3 else ("means",):
            change = _level_changes(work, k, kind=kind)
            wobble = float(np.sqrt(np.mean((change[at + 1] - change[at]) ** 2))) + 1e-12
            unit = _level_changes((np.arange(4 * k) >= 2 * k).astype(np.float64), k, kind=kind)
            fall = float(unit[2 * k] - max(unit[2 * k - 1], unit[2 * k + 1]))
            if best is None or fall / wobble > best[0]:
                best = (fall / wobble, k, kind, wobble)
    if best is None:
        return list(steps)
    _, k, kind, wobble = best
    placed = []
    for s in steps:
        others = [b for b in [*steps, *breaks] if b != s]
        sizes = {j: abs(float(_level_changes(chain, k, kind=kind, at=j)))
                 for j in range(s - PLACE_REACH, s + PLACE_REACH + 1)
                 if j not in breaks and min(_room(j, others, n)) >= k}  # never onto an unmeasured pair
        moved = max(sizes, key=sizes.__getitem__, default=s)
        placed.append(moved if s in sizes and sizes[moved] > sizes[s] + wobble else s)
    return sorted(set(placed))


def _room(at: int, breaks: Sequence[int], n: int) -> tuple[int, int]:
    """Frames from `at` back to the nearest break or the start, and on to the next one or the end."""
    before = max([0, *(b for b in breaks if b < at)])
    after = min([n, *(b for b in breaks if b > at)])
    return at - before, after - at


def _level_changes(chain: np.ndarray, k: int, *, kind: str, at: int | None = None) -> np.ndarray:
    """The level of the k frames from j less that of the k before, at every j (0 near the ends), or at
    `at` alone: their means, their medians, or lines fitted to each side, both taken at the boundary
    (a step during a climb is the jump between the lines, not between the means, which differ by the
    climb too)."""
    if at is not None:  # the same sum on the 2k frames around `at` alone
        return np.asarray(_level_changes(chain[at - k : at + k], k, kind=kind)[k])
    n = len(chain)
    change = np.zeros(n)
    if 2 * k > n:
        return change
    if kind == "means":
        return _changes(chain, k)
    windows = np.lib.stride_tricks.sliding_window_view(chain, k)  # windows[j] = chain[j : j + k]
    if kind == "medians":
        levels_after = levels_before = np.median(windows, axis=1)
    else:  # the least-squares line of each window, at its first and at its last boundary
        x = np.arange(k, dtype=np.float64) - (k - 1) / 2
        mean = windows.mean(axis=1)
        slope = windows @ x / float(x @ x)
        levels_after, levels_before = mean - slope * (k / 2), mean + slope * (k / 2)
    change[k : n - k + 1] = levels_after[k:] - levels_before[: n - 2 * k + 1]
    return change


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
        # The slopes either side still differ a period past a kink, and refined within its own window
        # such a detection lands on that window's edge: a second kink where the climb runs straight.
        if at is not None and all(abs(at - q) >= period for q in kinks):
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
    # A climb that curves all along (dust thickening) has slopes either side of every frame that
    # differ too; a cubic, as many numbers as the bent line, tells it as well. Kept as a kink, the
    # curve bent there alone and ran straight between, 3% off the curving climb.
    t = (x - near) / k
    if float(_residuals(np.stack([np.ones_like(t), t, t * t, t**3], axis=1)[None], y)[0]) <= costs[best]:
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
