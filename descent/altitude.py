"""Altitude for every captured frame: from telemetry, from the images, or both.

- Telemetry is interpolated at each frame's own capture time, in log(altitude + 1 m): a descent is
  close to exponential, which that interpolates exactly, and touchdown stays finite.
- From the images: for a nadir camera, the ratio of two frames' altitudes is the inverse of their
  relative scale, which the stabiliser measures. The camera path's log-scale chain gives every
  frame's altitude relative to the first; known altitudes (`--altitude-at`, or sparse telemetry)
  anchor it. Between anchors the chain's drift is spread linearly in log space, so the altitude
  follows the images' shape (a hover stays flat) instead of a straight line between the points.
- Synchronisation (`fit_time_offset`): the log's clock against the frames', from the images alone.
  The chain is the log-altitude up to an unknown constant (the first frame's altitude), so for each
  candidate offset the log's log-altitude at the frames' times is compared with the chain, the
  constant and a slow drift of the chain removed; the offset whose residual is smallest wins.
- Derived: vertical speed (the altitude smoothed over about a second, differentiated) and time
  to touchdown (when the descent ends: the altitude reaches the ground or comes to rest near it, or
  extrapolated from the final descent rate).
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from descent.errors import UsageError
from descent.smoothing import smoothness_for, whittaker
from descent.telemetry import Telemetry, TelemetryOptions

log = logging.getLogger("descent")

GROUND_M = 1.0  # added before taking logs, and the altitude counted as touchdown
REST_M = 5.0  # a descent that comes to rest this low has landed (a camera on a lander's deck, a log's zero off)
SPARSE_INTERVAL_S = 2.0  # telemetry sparser than this is filled along the image scale chain
SPEED_SMOOTHING_S = 1.0
DAY_S = 86400.0
SYNC_RANGE_S = 60.0  # offsets searched either side of the clocks' nominal agreement


@dataclass(frozen=True, slots=True)
class AltitudeConfig:
    """Where altitude comes from: a telemetry file, known altitudes for the image chain, or both."""

    telemetry: Path | None = None
    telemetry_options: TelemetryOptions = field(default_factory=TelemetryOptions)
    altitude_at: tuple[str, ...] = ()  # "TIME=ALTITUDE" anchors for the estimate from the images
    sync: bool = True  # --time-offset auto: synchronise the log with the images when motion is measured

    @property
    def wanted(self) -> bool:
        return self.telemetry is not None or bool(self.altitude_at)


@dataclass(frozen=True, slots=True)
class AltitudeTrack:
    """What the HUD shows for each captured frame; NaN where it is not known."""

    times_s: np.ndarray  # capture times (Unix seconds when times_are_utc, else the sequence's clock)
    times_are_utc: bool
    altitude_m: np.ndarray
    vertical_speed_mps: np.ndarray  # negative while descending
    estimated: np.ndarray  # bools: from the image scale chain rather than measured
    touchdown_s: float | None
    source: str  # "telemetry", "images" or "telemetry and images"
    time_offset_s: float = 0.0  # added to the telemetry's times by track_for_frames (beyond --time-offset)
    offset_fit: OffsetFit | None = None  # the synchronisation by the images, when one was tried

    def time_to_touchdown_s(self, index: int) -> float | None:
        return None if self.touchdown_s is None else self.touchdown_s - float(self.times_s[index])

    @property
    def known(self) -> np.ndarray:
        return np.isfinite(self.altitude_m)


def _log_altitude(altitude_m: np.ndarray) -> np.ndarray:
    return np.log(np.maximum(altitude_m, 0.0) + GROUND_M)


def _from_log(values: np.ndarray) -> np.ndarray:
    return np.exp(values) - GROUND_M


def align_telemetry(telemetry: Telemetry, frame_times: np.ndarray, frames_utc: bool) -> np.ndarray:
    """Telemetry times on the frames' clock, before any offset found by synchronisation.

    UTC meets UTC. A time of day (seconds from midnight, no date) is on the first frame's UTC date,
    or the day before or after when that is nearer the frames; with frames that have no UTC times it
    counts from the first frame, as seconds from the start do. A count-down (negative times) counts to
    the last frame, the touchdown or impact it counts down to. --time-offset shifts any of them.
    """
    if telemetry.is_utc:
        if not frames_utc:
            raise UsageError(f"{telemetry.path}: the telemetry has UTC times but the frames' times are a "
                             "spacecraft clock; give the telemetry in seconds from the first frame")
        return telemetry.times_s
    if telemetry.counts_down:
        return telemetry.times_s + float(frame_times[-1])
    if telemetry.time_of_day:
        if not frames_utc:
            return telemetry.times_s - float(telemetry.times_s[0]) + float(frame_times[0])
        first = datetime.fromtimestamp(float(frame_times[0]), UTC)
        midnight = first.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
        times = telemetry.times_s + midnight
        # A log that starts before midnight and frames after it (or the reverse) are a day apart.
        middle = float(np.median(frame_times))
        days = min((-1, 0, 1), key=lambda k: abs(float(np.median(times)) + k * DAY_S - middle))
        return times + days * DAY_S
    return telemetry.times_s + float(frame_times[0])


def from_telemetry(telemetry: Telemetry, frame_times: np.ndarray, *, frames_utc: bool,
                   scale_chain: np.ndarray | None = None) -> AltitudeTrack:
    """Altitude at each frame's capture time. Sparse telemetry is filled along the image scale chain
    when there is one; outside the telemetry's span the altitude is unknown (NaN)."""
    times = align_telemetry(telemetry, frame_times, frames_utc)
    inside = (frame_times >= times[0]) & (frame_times <= times[-1])
    sparse = telemetry.median_interval_s > SPARSE_INTERVAL_S and scale_chain is not None
    if sparse:
        assert scale_chain is not None
        altitude = _along_chain(frame_times, scale_chain, times, telemetry.altitude_m)
        nearest = np.min(np.abs(frame_times[:, None] - times[None, :]), axis=1)
        estimated = nearest > _frame_interval(frame_times)
        source = "telemetry and images"
    else:
        altitude = _from_log(np.interp(frame_times, times, _log_altitude(telemetry.altitude_m)))
        estimated = np.zeros(len(frame_times), bool)
        source = "telemetry"
    altitude = np.where(inside, altitude, np.nan)
    speed_times, speed = vertical_speed(times, telemetry.altitude_m)
    vertical = np.where(inside, np.interp(frame_times, speed_times, speed), np.nan)
    return AltitudeTrack(frame_times, frames_utc, altitude, vertical, estimated,
                         touchdown_time(times, telemetry.altitude_m), source)


def from_images(frame_times: np.ndarray, scale_chain: np.ndarray, anchors: list[tuple[float, float]], *,
                frames_utc: bool) -> AltitudeTrack:
    """Altitude of every frame from the scale chain and one or more known (time, altitude) points."""
    anchor_times = np.array([a[0] for a in anchors], np.float64)
    anchor_alts = np.array([a[1] for a in anchors], np.float64)
    order = np.argsort(anchor_times)
    altitude = _along_chain(frame_times, scale_chain, anchor_times[order], anchor_alts[order])
    speed_times, speed = vertical_speed(frame_times, altitude)
    return AltitudeTrack(frame_times, frames_utc, altitude, np.interp(frame_times, speed_times, speed),
                         np.ones(len(frame_times), bool), touchdown_time(frame_times, altitude), "images")


# --- synchronisation by the images ---------------------------------------------------------------------

SYNC_LAG_S = 1.0  # the chain and the log are compared by their change over this time: drift cancels
SYNC_MIN_FRAMES = 20
SYNC_MIN_CHANGE = 0.1  # log-altitude: a log that changes less than ~10% where it meets the frames is a hover
SYNC_FLAT_SHARE = 0.5  # offsets where the log changes less than this share of the most it does at any: ignored
SYNC_MIN_EXPLAINED = 0.6  # share of the chain's change the log must explain, or it is another flight
SYNC_MAX_RMS = 0.15  # log-altitude residual (about 15% in altitude) beyond which the fit is poor
SYNC_CAMERA_M = (0.3, 0.5, 0.7, 1.0, 1.4, 2.0, 3.0)  # the camera's height above the log's zero, tried
SYNC_COARSE_CAMERA_M = (0.3, 1.0, 3.0)
SYNC_CHAIN_NOISE = 0.003  # log-scale error of one measured frame pair: the chain's random walk per frame
SYNC_GRID_POINTS = 4000  # the coarse grid's most candidates; it is one frame interval (at most 0.25 s) finer


@dataclass(frozen=True, slots=True)
class OffsetFit:
    """The offset between the log's clock and the frames', found by fitting the log to the image scale chain."""

    offset_s: float  # seconds to add to the telemetry's times (positive: the log runs late); NaN: not found
    rms: float  # residual log-altitude at the offset (0.03: the log and the images agree to ~3%); NaN: none
    poor: bool  # not found or not to be trusted: the build should not apply it
    verdict: str  # "good", or why it is poor or could not be found, for people
    frames: int  # frames where the log and the images overlap at the offset
    search_s: tuple[float, float]  # the offsets searched
    explained: float = math.nan  # share of the images' change of scale (over SYNC_LAG_S) the log explains
    camera_m: float = GROUND_M  # the camera's height above the log's zero that fitted best

    @property
    def usable(self) -> bool:
        return not self.poor and math.isfinite(self.offset_s)

    def to_dict(self) -> dict[str, object]:
        def finite(value: float, digits: int) -> float | None:
            return round(value, digits) if math.isfinite(value) else None

        return {"offset_s": finite(self.offset_s, 3), "rms": finite(self.rms, 4), "poor": self.poor,
                "verdict": self.verdict, "frames": self.frames, "search_s": list(self.search_s),
                "explained": finite(self.explained, 3), "camera_m": self.camera_m}


def sync_search_range(telemetry: Telemetry, frame_times: np.ndarray, *, frames_utc: bool) -> tuple[float, float]:
    """The offsets `fit_time_offset` searches by default: ±SYNC_RANGE_S when the log's clock is dated like the
    frames' (UTC, or a time of day beside UTC frames), since two such clocks are rarely a minute apart; else
    every offset at which the log and the frames overlap at all, and at least ±SYNC_RANGE_S."""
    if telemetry.is_utc or (telemetry.time_of_day and frames_utc):
        return -SYNC_RANGE_S, SYNC_RANGE_S
    base = align_telemetry(telemetry, frame_times, frames_utc)
    return (min(-SYNC_RANGE_S, float(frame_times[0] - base[-1])),
            max(SYNC_RANGE_S, float(frame_times[-1] - base[0])))


def fit_time_offset(telemetry: Telemetry, frame_times: np.ndarray, scale_chain: np.ndarray, *, frames_utc: bool,
                    search_s: tuple[float, float] | None = None) -> OffsetFit:
    """The offset to add to the telemetry's times so that its altitude follows the images' scale chain.

    The chain is log(camera height) plus an unknown constant and a slow drift, so the two are compared
    by their change over SYNC_LAG_S (the constant cancels, the drift is the mean change, removed), with
    the log's log(altitude + camera height) linearly interpolated at the frames' times shifted by the
    candidate offset. A coarse grid over `search_s` (default: `sync_search_range`) finds the best few
    minima; each is refined by golden-section search, for a few camera heights above the log's zero.
    Offsets where the log changes far less than at the best-changing one (the frames meet only its flat
    ends) are set aside. The verdict is poor when the log does not explain the images (another flight,
    wrong times) or the best offset is no better than others far from it; and the offset is not found
    at all when the log is flat where it meets the frames (a hover has no shape to match) or they
    barely overlap.
    """
    lo, hi = search_s or sync_search_range(telemetry, frame_times, frames_utc=frames_utc)
    finite = np.isfinite(scale_chain)
    problem = _Sync(frame_times[finite], scale_chain[finite],
                    *sync_log(align_telemetry(telemetry, frame_times, frames_utc), telemetry.altitude_m))
    if len(problem.t) < SYNC_MIN_FRAMES:
        return OffsetFit(math.nan, math.nan, True, f"cannot sync: only {len(problem.t)} frames have a scale",
                         len(problem.t), (lo, hi))
    grid, costs = problem.coarse(lo, hi)
    if not np.isfinite(costs).any():
        return OffsetFit(math.nan, math.nan, True, "cannot sync: the log and the frames do not overlap in the "
                         f"offsets searched ({lo:+.0f} to {hi:+.0f} s)", 0, (lo, hi))
    step = float(grid[1] - grid[0]) if len(grid) > 1 else 1.0
    refined = sorted(problem.refine(float(grid[i]), step) for i in _local_minima(costs, SYNC_LAG_S / step))
    cost, offset, camera = refined[0]
    inside = problem.inside(offset)
    change = problem.log_change(offset)
    explained = 1.0 - (cost - 1.0) / max(problem.null_cost(offset, camera) - 1.0, 1e-12)
    rms = problem.level_rms(offset, camera)
    frames = int(inside.sum())
    rivals = [r for r in refined[1:] if abs(r[1] - offset) > 2 * SYNC_LAG_S and r[0] < 1.25 * cost]
    if change < SYNC_MIN_CHANGE:
        verdict = (f"cannot sync: the log's altitude hardly changes where it meets the frames ({change:.2f} in "
                   "log-altitude, a hover?): nothing to match; give --time-offset")
        return OffsetFit(math.nan, math.nan, True, verdict, frames, (lo, hi), explained, camera)
    if explained < SYNC_MIN_EXPLAINED or rms > SYNC_MAX_RMS:
        verdict = (f"poor: the log explains {max(explained, 0):.0%} of the images' change of scale (residual "
                   f"{rms:.3f} in log-altitude): another flight, or times far off? give --time-offset")
    elif rivals:
        verdict = (f"poor: offsets {offset:+.2f} s and {rivals[0][1]:+.2f} s fit about as well; give --time-offset")
    else:
        verdict = "good"
    return OffsetFit(offset, rms, verdict != "good", verdict, frames, (lo, hi), explained, camera)


SYNC_LOG_SMOOTH_S = 0.4  # a dense log is averaged over this: its noise, not its timing, is what a sample adds
SYNC_LOG_RATE_HZ = 20.0  # the log resampled this densely, so that interpolating it is interpolating the cubic


def sync_log(times_s: np.ndarray, altitude_m: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """The log as the fit compares it: (times, altitudes, noise in metres of one resampled point).

    A dense log is averaged over SYNC_LOG_SMOOTH_S (a centred box: no shift in time), which cuts the
    noise of each point by the root of the samples averaged. Then it is resampled at SYNC_LOG_RATE_HZ
    by a monotone cubic (Fritsch-Carlson): between sparse samples a descent curves, and the straight
    chords of linear interpolation put its corners early or late, which biased the offset by up to
    1.6 frame intervals on logs of 0.7 to 2 Hz.
    """
    noise_m = _log_noise_m(altitude_m)
    later = np.concatenate([[True], np.diff(times_s) > 0])  # a repeated time stamp adds no point to a curve
    times_s, altitude_m = times_s[later], altitude_m[later]
    if len(times_s) < 3:
        return times_s, altitude_m, noise_m
    width = round(SYNC_LOG_SMOOTH_S / float(np.median(np.diff(times_s)))) | 1
    if width > 1:
        kernel = np.ones(width) / width
        altitude_m = np.convolve(np.pad(altitude_m, width // 2, mode="edge"), kernel, "valid")
        noise_m /= math.sqrt(width)
    dense = np.arange(times_s[0], times_s[-1], 1 / SYNC_LOG_RATE_HZ)
    return dense, monotone_cubic(times_s, altitude_m, dense), noise_m


def _log_noise_m(altitude_m: np.ndarray) -> float:
    """The log's noise in metres, from the scatter of its second differences low down (where it shows)."""
    low = altitude_m < max(20.0, float(np.percentile(altitude_m, 10)))
    second = np.diff(altitude_m[low], 2) if low.sum() > 3 else np.zeros(1)
    return max(0.05, 1.4826 * float(np.median(np.abs(second))) / math.sqrt(6))


def monotone_cubic(x: np.ndarray, y: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Fritsch-Carlson monotone cubic Hermite interpolation of (x, y) at `at` (x increasing): through every
    point, smooth, and never beyond its neighbours where the data turns (no overshoot at a landing)."""
    h = np.diff(x)
    slope = np.diff(y) / h
    tangent = np.empty_like(y, dtype=np.float64)
    tangent[1:-1] = (slope[:-1] * h[1:] + slope[1:] * h[:-1]) / (h[:-1] + h[1:])
    tangent[0], tangent[-1] = slope[0], slope[-1]
    tangent[1:-1][slope[:-1] * slope[1:] <= 0] = 0.0  # a turn, or a flat step: flat there
    with np.errstate(divide="ignore", invalid="ignore"):
        a, b = tangent[:-1] / slope, tangent[1:] / slope
    radius = np.hypot(a, b)
    too_steep = np.isfinite(radius) & (radius > 3)
    scale = np.where(too_steep, 3 / np.where(too_steep, radius, 1.0), 1.0)
    flat = slope == 0
    left = np.where(flat, 0.0, scale * a * slope)
    right = np.where(flat, 0.0, scale * b * slope)
    i = np.clip(np.searchsorted(x, at, side="right") - 1, 0, len(h) - 1)
    s = (at - x[i]) / h[i]
    return ((2 * s**3 - 3 * s**2 + 1) * y[i] + (s**3 - 2 * s**2 + s) * h[i] * left[i]
            + (-2 * s**3 + 3 * s**2) * y[i + 1] + (s**3 - s**2) * h[i] * right[i])


@dataclass(frozen=True, slots=True)
class _Sync:
    """One synchronisation problem: the frames' times and chain, and the log on the frames' clock."""

    t: np.ndarray
    chain: np.ndarray
    log_times: np.ndarray  # the log resampled (sync_log): dense, smoothed where it was dense, cubic where sparse
    log_altitude_m: np.ndarray
    noise_m: float  # the resampled log's noise in metres at one point

    @property
    def lag(self) -> int:
        return max(1, min(round(SYNC_LAG_S / _frame_interval(self.t)), len(self.t) // 4))

    def inside(self, offset_s: float) -> np.ndarray:
        shifted = self.t - offset_s
        return (shifted >= self.log_times[0]) & (shifted <= self.log_times[-1])

    def _model(self, offset_s: float, camera_m: float, inside: np.ndarray) -> np.ndarray:
        level = np.log(np.maximum(self.log_altitude_m, 0.0) + camera_m)
        return np.interp(self.t[inside] - offset_s, self.log_times, level)

    def cost(self, offset_s: float, camera_m: float) -> float:
        """Chi-square per frame of the residual's change over the lag (its mean, the chain's drift, removed),
        each change weighed by its expected noise: the chain's random walk and the log's own noise in metres,
        which in log-altitude grows near the ground. A frame the log does not reach counts as one expected
        chi-square, so that an offset does not win by leaving the awkward frames out."""
        inside = self.inside(offset_s)
        pairs = len(self.t) - self.lag
        if inside.sum() < max(SYNC_MIN_FRAMES, 2 * self.lag):
            return math.inf
        level = np.log(np.maximum(self.log_altitude_m, 0.0) + camera_m)
        shifted = self.t[inside] - offset_s
        residual = self.chain[inside] - np.interp(shifted, self.log_times, level)
        log_noise = self.noise_m / (np.interp(shifted, self.log_times, np.maximum(self.log_altitude_m, 0.0)) + camera_m)
        change = residual[self.lag :] - residual[: -self.lag]
        weight = 1.0 / (SYNC_CHAIN_NOISE**2 * self.lag + log_noise[self.lag :] ** 2 + log_noise[: -self.lag] ** 2)
        mean = float(np.sum(weight * change) / np.sum(weight))
        chi2 = float(np.sum(weight * (change - mean) ** 2))
        return (chi2 + (pairs - len(change))) / pairs

    def coarse(self, lo: float, hi: float) -> tuple[np.ndarray, np.ndarray]:
        """Each candidate offset's cost, the best over a few camera heights; inf where too few frames overlap."""
        step = max(min(_frame_interval(self.t), 0.25), (hi - lo) / SYNC_GRID_POINTS)
        grid = np.arange(lo, hi + step / 2, step)
        costs = np.array([min(self.cost(float(d), c) for c in SYNC_COARSE_CAMERA_M) for d in grid])
        overlap = np.array([int(self.inside(float(d)).sum()) for d in grid])
        # An offset that leaves most frames outside the log would be judged on a sliver of them.
        costs[overlap < 0.6 * overlap.max()] = math.inf
        # Where the frames meet only the flat ends of the log (before the descent, at rest after it), the
        # images over those frames hardly change either, and the fit is as close as the true one, with
        # noise enough for many minima that would crowd the true one out: such offsets match nothing.
        changes = np.array([self.log_change(float(d)) for d in grid])
        costs[changes < SYNC_FLAT_SHARE * changes.max()] = math.inf
        return grid, costs

    def refine(self, offset_s: float, step: float) -> tuple[float, float, float]:
        """(cost, offset, camera height): golden-section search within a coarse step each side, per height."""
        best = (math.inf, offset_s, GROUND_M)
        for camera_m in SYNC_CAMERA_M:
            def cost(offset: float, camera_m: float = camera_m) -> float:
                return self.cost(offset, camera_m)

            best = min(best, (*_golden(cost, offset_s - step, offset_s + step), camera_m))
        return best

    def log_change(self, offset_s: float) -> float:
        """How far the log's log-altitude ranges over the frames it meets."""
        inside = self.inside(offset_s)
        model = self._model(offset_s, GROUND_M, inside)
        return float(np.ptp(model)) if len(model) else 0.0

    def null_cost(self, offset_s: float, camera_m: float) -> float:
        """The cost of a log with no shape (a constant altitude): what the images' change of scale alone costs."""
        flat = replace(self, log_altitude_m=np.full_like(self.log_altitude_m, 100.0))
        return flat.cost(offset_s, camera_m)

    def level_rms(self, offset_s: float, camera_m: float) -> float:
        """The residual log-altitude, its constant and linear drift removed."""
        inside = self.inside(offset_s)
        residual = self.chain[inside] - self._model(offset_s, camera_m, inside)
        times = self.t[inside] - self.t[inside].mean()
        design = np.column_stack([np.ones_like(times), times])
        coefficients, *_ = np.linalg.lstsq(design, residual, rcond=None)
        return float(np.sqrt(np.mean((residual - design @ coefficients) ** 2)))


def _local_minima(costs: np.ndarray, spacing: float, keep: int = 4) -> list[int]:
    """Indices of the `keep` lowest local minima of the finite costs, at least `spacing` points apart."""
    order = np.argsort(costs)
    chosen: list[int] = []
    for i in order:
        if not math.isfinite(costs[i]) or len(chosen) == keep:
            break
        if all(abs(int(i) - j) > spacing for j in chosen):
            chosen.append(int(i))
    return chosen


def _golden(f: Callable[[float], float], a: float, b: float, tolerance: float = 1e-3) -> tuple[float, float]:
    """(f(x), x) at the minimum of f in [a, b], by golden-section search."""
    ratio = (math.sqrt(5) - 1) / 2
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    fc, fd = f(c), f(d)
    while b - a > tolerance:
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - ratio * (b - a)
            fc = f(c)
        else:
            a, c, fc = c, d, fd
            d = a + ratio * (b - a)
            fd = f(d)
    x = (a + b) / 2
    return f(x), x


def track_for_frames(telemetry: Telemetry | None, anchors: list[tuple[float, float]], frame_times: np.ndarray, *,
                     frames_utc: bool, scale_chain: np.ndarray | None,
                     time_offset: OffsetFit | float = 0.0) -> AltitudeTrack:
    """Altitude for every captured frame: from the telemetry, or from the image scale chain and the anchors.

    `time_offset` is added to the telemetry's times (on top of --time-offset, which the reader applied):
    seconds, or the OffsetFit of `fit_time_offset`, applied when usable; a poor fit applies nothing and
    says why in a warning. The track keeps both (`time_offset_s`, `offset_fit`) for the report.
    """
    if telemetry is not None:
        fit = time_offset if isinstance(time_offset, OffsetFit) else None
        if isinstance(time_offset, OffsetFit):
            offset = time_offset.offset_s if time_offset.usable else 0.0
            if not time_offset.usable:
                log.warning("the telemetry is not synchronised with the images: %s", time_offset.verdict)
        else:
            offset = float(time_offset)
        shifted = replace(telemetry, times_s=telemetry.times_s + offset) if offset else telemetry
        track = from_telemetry(shifted, frame_times, frames_utc=frames_utc, scale_chain=scale_chain)
        outside = int((~track.known).sum())
        if outside:
            log.warning("%d of %d frames fall outside the telemetry's span; the HUD shows -- for them "
                        "(check --time-offset)", outside, len(frame_times))
        return replace(track, time_offset_s=offset, offset_fit=fit)
    if scale_chain is None:
        raise ValueError("an altitude track from the images needs the image scale chain")
    return from_images(frame_times, scale_chain, anchors, frames_utc=frames_utc)


def _along_chain(frame_times: np.ndarray, scale_chain: np.ndarray, anchor_times: np.ndarray,
                 anchor_alts: np.ndarray) -> np.ndarray:
    """exp(chain + offset): the offset is fitted at each anchor and interpolated between them."""
    chain_at_anchor = np.interp(anchor_times, frame_times, scale_chain)
    offsets = _log_altitude(anchor_alts) - chain_at_anchor
    return _from_log(scale_chain + np.interp(frame_times, anchor_times, offsets))


def _frame_interval(frame_times: np.ndarray) -> float:
    return float(np.median(np.diff(frame_times))) if len(frame_times) > 1 else 1.0


def vertical_speed(times: np.ndarray, altitude: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vertical speed on a regular grid: the altitude resampled, smoothed over about a second, differentiated."""
    known = np.isfinite(altitude)
    times, altitude = times[known], altitude[known]
    if len(times) < 2:
        return np.array([0.0, 1.0]), np.array([math.nan, math.nan])
    step = max(min(_frame_interval(times), 0.25), 0.02)
    grid = np.arange(times[0], times[-1] + step / 2, step)
    resampled = np.interp(grid, times, altitude)
    smooth = whittaker(resampled, np.ones(len(grid)), smoothness_for(SPEED_SMOOTHING_S / step))
    return grid, np.gradient(smooth, step)


def touchdown_time(times: np.ndarray, altitude: np.ndarray) -> float | None:
    """When the descent ends: the altitude first reaches the ground, or comes to rest near it (within
    REST_M: a camera on a landed lander's deck, or a log whose zero is a little off), or, past the data,
    when the final descent rate would take it to the ground. None when it neither lands nor comes down."""
    known = np.isfinite(altitude)
    times, altitude = times[known], altitude[known]
    if len(times) < 2:
        return None
    down = np.flatnonzero(altitude <= GROUND_M)
    if len(down):
        return float(times[down[0]])
    _, speed = vertical_speed(times, altitude)
    final = float(np.median(speed[-max(1, len(speed) // 20) :]))
    if final < -0.05:
        return float(times[-1] + (altitude[-1] - GROUND_M) / -final)
    return _came_to_rest(times, altitude)


def _came_to_rest(times: np.ndarray, altitude: np.ndarray) -> float | None:
    """When a log that ends still, near the ground, after coming down to it, arrived there; else None."""
    tail = altitude[-max(3, len(altitude) // 20) :]
    rest = float(np.median(tail))
    # At rest within the log's own noise (or 0.25 m, or 10%) of where it ends.
    tolerance = max(0.25, 0.1 * rest, 4 * 1.4826 * float(np.median(np.abs(tail - rest))))
    above = np.flatnonzero(altitude > rest + tolerance)
    if rest > REST_M or not len(above):
        return None
    arrived = int(above[-1])
    return float(np.interp(rest + tolerance, altitude[arrived : arrived + 2][::-1], times[arrived : arrived + 2][::-1]))


_ALTITUDE_AT = re.compile(r"^(?P<time>[^=]+)=(?P<value>[\d.]+)\s*(?P<unit>m|km|ft)?$", re.IGNORECASE)


def parse_altitude_at(text: str, *, first_time_s: float, times_utc: bool) -> tuple[float, float]:
    """`--altitude-at TIME=ALTITUDE`: TIME as HH:MM:SS(.f) UTC on the first frame's date, ISO 8601, or
    +SECONDS from the first frame; ALTITUDE in metres, or with km or ft."""
    from descent.clock import parse_time_text
    from descent.telemetry import UNITS_M

    m = _ALTITUDE_AT.match(text.strip())
    if not m:
        raise UsageError(f"--altitude-at {text!r}: give TIME=ALTITUDE, like 02:26:00=1900 or +12.5=2.4km")
    altitude = float(m.group("value")) * UNITS_M[(m.group("unit") or "m").lower()]
    when = m.group("time").strip()
    if when.startswith("+"):
        return first_time_s + float(when[1:]), altitude
    clock = re.fullmatch(r"(\d{1,2}):(\d{2}):(\d{2}(?:\.\d+)?)", when)
    if clock:
        if not times_utc:
            raise UsageError(f"--altitude-at {text!r}: the frames have no UTC times; give +SECONDS from the "
                             "first frame instead")
        day = datetime.fromtimestamp(first_time_s, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        h, mi, s = int(clock.group(1)), int(clock.group(2)), float(clock.group(3))
        return (day + timedelta(hours=h, minutes=mi, seconds=s)).timestamp(), altitude
    parsed = parse_time_text(when)
    if parsed is None:
        raise UsageError(f"--altitude-at {text!r}: {when!r} is not a time (HH:MM:SS, ISO 8601 or +SECONDS)")
    return parsed[0], altitude
