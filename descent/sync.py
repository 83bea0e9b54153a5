"""Synchronisation by the images: the offset between a telemetry log's clock and the frames'.

For a downward camera the image scale chain (pass 1's log-scales, chained) is log(camera height) up to
an unknown constant, plus the measurement's random walk and a slow drift. A log's altitude, shifted by
the right offset, explains it. For each candidate offset the two are compared by their change over
SYNC_LAG_S (the constant cancels; the drift is the mean change, removed), each change weighed by its
expected noise; the offset whose chi-square is lowest wins, and its standard error says how closely
this log and these frames pin it (an exponential stretch, log-altitude straight in time, pins nothing:
a shift in time is a constant in log).

Which series is interpolated matters more than any other choice. The sparser of the two is compared at
its own samples and the denser one interpolated there: a 0.5 Hz log interpolated at 12 frames a second
puts a descent's corners (the hover, the final slow-down) where the interpolant guesses them, up to
three frame intervals early or late even on noise-free data, while the chain interpolated at the log's
samples is a frame interval from the truth. A log denser than the frames is averaged over a frame
interval (its noise, not its timing, is what a sample adds) and resampled, and interpolated at the frames.

How close it gets, against the Cramér-Rao bound of the same problems: scripts/bench_sync.py.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from descent.telemetry import Telemetry, align_telemetry

SYNC_RANGE_S = 60.0  # offsets searched either side of the clocks' nominal agreement
SYNC_LAG_S = 2.0  # the chain and the log are compared by their change over this time: drift cancels
SYNC_MIN_FRAMES = 20
SYNC_MIN_CHANGE = 0.1  # log-altitude: a log that changes less than ~10% where it meets the frames is a hover
SYNC_FLAT_SHARE = 0.5  # offsets where the log changes less than this share of the most it does at any: ignored
SYNC_MIN_EXPLAINED = 0.6  # share of the chain's change the log must explain, or it is another flight
SYNC_MAX_RMS = 0.15  # log-altitude residual (about 15% in altitude) beyond which the fit is poor
# The camera's height above the log's zero, tried: a drone's camera a few centimetres above its take-off
# point, a lander's a metre or two above the ground, a radar's zero metres off.
SYNC_CAMERA_M = (0.1, 0.2, 0.3, 0.5, 0.7, 1.0, 1.4, 2.0, 3.0, 5.0, 7.0, 10.0)
SYNC_COARSE_CAMERA_M = (0.2, 1.0, 5.0)
SYNC_ZERO_OFF_M = 0.5  # a log whose lowest reading is above this may have its zero off: heights above that tried
DEFAULT_CAMERA_M = 1.0
SYNC_MIN_WALK = 0.003  # the least random walk a frame the chain is taken to have (chain_noise)
SYNC_MAX_CHI2 = 4.0  # a fit whose changes disagree by more than twice their expected noise is another flight
SYNC_GRID_POINTS = 4000  # the coarse grid's most candidates; it is one frame interval (at most 0.25 s) finer
SYNC_LOOSE_SD_S = 0.5  # an offset known less closely than this is applied with a warning
SYNC_MAX_SD_S = 2.0  # and one known less closely than this is not applied
SYNC_LOG_RATE_HZ = 20.0  # a dense log resampled this densely, so that interpolating it is interpolating the cubic


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
    camera_m: float = DEFAULT_CAMERA_M  # the camera's height above the log's zero that fitted best
    sd_s: float = math.nan  # the offset's standard error: how closely this log and these frames can pin it

    @property
    def usable(self) -> bool:
        return not self.poor and math.isfinite(self.offset_s)

    def to_dict(self) -> dict[str, object]:
        def finite(value: float, digits: int) -> float | None:
            return round(value, digits) if math.isfinite(value) else None

        return {"offset_s": finite(self.offset_s, 3), "rms": finite(self.rms, 4), "poor": self.poor,
                "verdict": self.verdict, "frames": self.frames, "search_s": list(self.search_s),
                "explained": finite(self.explained, 3), "camera_m": round(self.camera_m, 3),
                "sd_s": finite(self.sd_s, 3)}


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

    `scale_chain` is NaN where a frame's value is not measured (a bridged frame's is a guess from its
    neighbours, and a guess during the final seconds' fast change of scale pulls the fit off by a second).
    A coarse grid over `search_s` (default: `sync_search_range`) finds the best few minima; each is
    refined by golden-section search, for a few camera heights above the log's zero, and the best one's
    standard error estimated (`_Sync.offset_sd_s`). Offsets where the log changes far less than at the
    best-changing one (the frames meet only its flat ends) are set aside. The verdict (`_verdict`) is poor
    when the log pins the offset no closer than SYNC_MAX_SD_S, when it does not explain the images or
    disagrees with them by more than twice their noise (another flight, a clock at another rate, wrong
    times), or when the best offset is no better than others far from it; and the offset is not found at
    all when the log is flat where it meets the frames (a hover has no shape to match), is too short, or
    they do not overlap.
    """
    lo, hi = search_s or sync_search_range(telemetry, frame_times, frames_utc=frames_utc)
    finite = np.isfinite(scale_chain)
    problem = _Sync.of(frame_times[finite], scale_chain[finite],
                       align_telemetry(telemetry, frame_times, frames_utc), telemetry.altitude_m)
    if len(problem.t) < SYNC_MIN_FRAMES:
        return OffsetFit(math.nan, math.nan, True, f"cannot sync: only {len(problem.t)} frames have a scale",
                         len(problem.t), (lo, hi))
    grid, costs = problem.coarse(lo, hi)
    if not np.isfinite(costs).any():
        most = max(problem.frames_inside(float(d)) for d in grid)
        if 0 < most < max(SYNC_MIN_FRAMES, 2 * problem.lag + 1) or problem.log_span_s < 2 * SYNC_LAG_S:
            reason = (f"the log is too short where it meets the frames ({problem.log_span_s:.1f} s, at most {most} "
                      f"frames; it needs {2 * SYNC_LAG_S:.0f} s and {SYNC_MIN_FRAMES} frames)")
        else:
            reason = f"the log and the frames do not overlap in the offsets searched ({lo:+.0f} to {hi:+.0f} s)"
        return OffsetFit(math.nan, math.nan, True, f"cannot sync: {reason}", most, (lo, hi))
    step = float(grid[1] - grid[0]) if len(grid) > 1 else 1.0
    # A change the log does not reach costs what a change costs at the best candidate: a fixed cost of one
    # (the noise model's expectation) outweighs the real changes when the model overstates the noise, and
    # an offset would win by moving the log's end past a few frames.
    problem = replace(problem, missing_chi2=max(float(np.min(costs[np.isfinite(costs)])), 1e-3))
    # Each minimum is refined over half a lag each side, not just a coarse step: along the valley where a
    # lower camera and a later offset look alike, the coarse grid's few heights can put the minimum half
    # a second from where the finer heights put it.
    window = max(step, SYNC_LAG_S / 2)
    refined = sorted(problem.refine(float(grid[i]), window) for i in _local_minima(costs, SYNC_LAG_S / step))
    cost, offset, camera = refined[0]
    change = problem.log_change(offset)
    chi2 = problem.chi2_per_change(offset, camera)
    # The share of the images' change of scale (its chi-square against a log with no shape) the log explains.
    explained = float(np.clip(1.0 - chi2 / max(problem.null_cost(offset, camera), 1e-12), 0.0, 1.0))
    rms = problem.level_rms(offset, camera)
    frames = problem.frames_inside(offset)
    sd_s = problem.offset_sd_s(offset, camera)
    rivals = [r for r in refined[1:] if abs(r[1] - offset) > 2 * SYNC_LAG_S and r[0] < 1.25 * cost]
    if change < SYNC_MIN_CHANGE:
        verdict = (f"cannot sync: the log's altitude hardly changes where it meets the frames ({change:.2f} in "
                   "log-altitude, a hover?): nothing to match; give --time-offset")
        return OffsetFit(math.nan, math.nan, True, verdict, frames, (lo, hi), explained, camera, sd_s)
    verdict = _verdict(offset, sd_s, explained, chi2, rms, rivals[0][1] if rivals else None)
    return OffsetFit(offset, rms, verdict != "good", verdict, frames, (lo, hi), explained, camera, sd_s)


def _verdict(offset_s: float, sd_s: float, explained: float, chi2: float, rms: float, rival_s: float | None) -> str:
    """'good', or why the fit is not to be applied, for people."""
    if not math.isfinite(sd_s):
        return "poor: too few changes compared to tell how closely the log pins the offset; give --time-offset"
    if sd_s > SYNC_MAX_SD_S:
        return (f"poor: the log's shape pins the offset only to ± {sd_s:.1f} s (a steady exponential descent looks "
                "the same at any offset); give --time-offset")
    if explained < SYNC_MIN_EXPLAINED or rms > SYNC_MAX_RMS or chi2 > SYNC_MAX_CHI2:
        return (f"poor: the log and the images disagree by {math.sqrt(chi2):.1f} times their noise (it explains "
                f"{explained:.0%} of their change of scale, residual {rms:.3f} in log-altitude): another flight, a "
                "clock running at another rate, times far off? give --time-offset")
    if rival_s is not None:
        return f"poor: offsets {offset_s:+.2f} s and {rival_s:+.2f} s fit about as well; give --time-offset"
    return "good"


def sync_log(times_s: np.ndarray, altitude_m: np.ndarray, smooth_s: float) -> tuple[np.ndarray, np.ndarray, LogNoise]:
    """A log denser than the frames as the fit compares it: (times, altitudes, the noise of one point).

    It is averaged over `smooth_s`, the frame interval (a centred box: no shift in time), which cuts the
    noise of each point by the root of the samples averaged, then resampled at SYNC_LOG_RATE_HZ by a
    monotone cubic (Fritsch-Carlson), which curves between samples as a descent does. A longer average
    (0.4 s, once) rounds the touchdown's corner by a tenth of a metre, which near the ground is a large
    error in log-altitude at the very place that pins the offset.
    """
    times_s, altitude_m = _increasing(times_s, altitude_m)
    noise = LogNoise.of(altitude_m)
    if len(times_s) < 3:
        return times_s, altitude_m, noise
    width = round(smooth_s / float(np.median(np.diff(times_s)))) | 1
    if width > 1:
        kernel = np.ones(width) / width
        altitude_m = np.convolve(np.pad(altitude_m, width // 2, mode="edge"), kernel, "valid")
        noise = noise.averaged(width)
    dense = np.arange(times_s[0], times_s[-1], 1 / SYNC_LOG_RATE_HZ)
    return dense, monotone_cubic(times_s, altitude_m, dense), noise


def _increasing(times_s: np.ndarray, altitude_m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    later = np.concatenate([[True], np.diff(times_s) > 0])  # a repeated time stamp adds no point to a curve
    return times_s[later], altitude_m[later]


_TRIMMED_RMS = 0.789  # root mean square of a normal variable's values within its central 90%, in its sigmas


@dataclass(frozen=True, slots=True)
class LogNoise:
    """A log's noise at one of its points: metres that do not scale (a radar's or a barometer's resolution,
    rounding), and a share of the altitude that does (a radar's relative error), which dominates high up."""

    metres: float
    relative: float = 0.0

    @classmethod
    def of(cls, altitude_m: np.ndarray) -> LogNoise:
        """From the scatter of the second differences: in metres low down, in log-altitude high up, where
        each shows. The largest tenth are left out (the descent's corners are not noise) and the rest's root
        mean square scaled back to a normal spread; a median would read a log rounded to 0.1 m as having
        0.06 m of noise when it has 0.1."""
        def spread(values: np.ndarray) -> float:
            second = np.abs(np.diff(values, 2))
            if len(second) < 3:
                return 0.0
            kept = second[second <= np.percentile(second, 90)]
            return float(np.sqrt(np.mean(kept**2))) / _TRIMMED_RMS / math.sqrt(6)

        low = altitude_m < max(20.0, float(np.percentile(altitude_m, 10)))
        metres = max(0.05, spread(altitude_m[low]))
        high = altitude_m > max(20.0, 100 * metres)
        return cls(metres, min(spread(np.log(altitude_m[high])), 0.05))

    def averaged(self, samples: int) -> LogNoise:
        return LogNoise(self.metres / math.sqrt(samples), self.relative / math.sqrt(samples))

    def log_variance(self, altitude_m: np.ndarray, height_m: np.ndarray) -> np.ndarray:
        """The variance in log(height) at these altitudes, the camera's height above the log's zero added."""
        return (self.metres**2 + (self.relative * np.maximum(altitude_m, 0.0)) ** 2) / height_m**2


def chain_noise(times_s: np.ndarray, chain: np.ndarray) -> float:
    """The chain's random walk a frame interval, from the chain itself: each pair's error is independent,
    so the chain's steps scatter around the descent's smooth change of scale by that much (the scatter of
    the steps' differences over neighbouring frames, robust, over the root of two), so that footage noisier
    than the generated descents is weighed as it is. Never below SYNC_MIN_WALK: on the generator's chains
    (0.002 a frame) the estimate is right, but weighing the chain that much more than the log let the
    camera height and the offset trade off along their valley (off by 7.8 intervals where 0.003 is off by
    3, over the same 200 problems), and two pairs sharing a frame make real steps' errors less
    independent than the estimate assumes."""
    consecutive = np.diff(times_s) < 1.5 * _interval(times_s)  # steps across a bridged gap are longer
    steps = np.diff(chain)[consecutive]
    if len(steps) < 10:
        return SYNC_MIN_WALK
    spread = 1.4826 * float(np.median(np.abs(np.diff(steps)))) / math.sqrt(2)
    return max(SYNC_MIN_WALK, spread)


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
class _Compared:
    """The points where the chain and the log are compared at one offset and camera height."""

    times_s: np.ndarray  # on the frames' clock
    residual: np.ndarray  # the chain less log(the log's altitude + the camera's height)
    altitude_m: np.ndarray  # the log's


@dataclass(frozen=True, slots=True)
class _Sync:
    """One synchronisation problem: the frames' times and chain, and the log on the frames' clock."""

    t: np.ndarray  # frames with a measured chain value
    chain: np.ndarray
    curve_times: np.ndarray  # the log as a dense curve, before the offset (sync_log, or a cubic through its samples)
    curve_altitude_m: np.ndarray
    sample_times: np.ndarray  # the log's own samples, where they are the points compared (at_log_samples)
    sample_altitude_m: np.ndarray
    noise: LogNoise  # the log's noise at one compared point
    at_log_samples: bool  # compared at the log's samples (it is sparser than the frames), else at the frames
    walk: float  # the chain's random walk a frame interval (chain_noise)
    missing_chi2: float = 1.0  # what a change the log does not reach costs: the typical change's chi-square

    @classmethod
    def of(cls, t: np.ndarray, chain: np.ndarray, log_times: np.ndarray, log_altitude_m: np.ndarray) -> _Sync:
        log_times, log_altitude_m = _increasing(log_times, log_altitude_m)
        walk = chain_noise(t, chain)
        if len(log_times) > 2 and float(np.median(np.diff(log_times))) > _interval(t):
            curve_times = np.arange(log_times[0], log_times[-1], 1 / SYNC_LOG_RATE_HZ)
            return cls(t, chain, curve_times, monotone_cubic(log_times, log_altitude_m, curve_times), log_times,
                       log_altitude_m, LogNoise.of(log_altitude_m), True, walk)
        curve_times, curve_altitude_m, noise = sync_log(log_times, log_altitude_m, _interval(t))
        return cls(t, chain, curve_times, curve_altitude_m, log_times[:0], log_altitude_m[:0], noise, False, walk)

    @property
    def point_interval_s(self) -> float:
        return _interval(self.sample_times) if self.at_log_samples else _interval(self.t)

    @property
    def lag(self) -> int:
        """Points between the two ends of a compared change: SYNC_LAG_S, or a quarter of the frames or of the
        log where either is shorter than four lags."""
        log_points = int(self.log_span_s / self.point_interval_s)
        return max(1, min(round(SYNC_LAG_S / self.point_interval_s), self.span_points // 4, log_points // 4))

    @property
    def span_points(self) -> int:
        """The points compared when the log covers every frame."""
        return len(self.t) if not self.at_log_samples else int((self.t[-1] - self.t[0]) / self.point_interval_s)

    def compared(self, offset_s: float, camera_m: float) -> _Compared:
        """At the frames, or at the log's samples. There the residual at the frames is interpolated, not the
        chain: the residual is the chain's slow walk, smooth across a bridged gap (its frames unmeasured),
        where the chain itself curves with the descent and a straight line across it would not."""
        inside = self.frames_mask(offset_s)
        frames = self.t[inside]
        altitude = np.interp(frames - offset_s, self.curve_times, self.curve_altitude_m)
        residual = self.chain[inside] - np.log(_height(altitude, camera_m))
        if not self.at_log_samples or not len(frames):
            return _Compared(frames, residual, altitude)
        shifted = self.sample_times + offset_s
        within = (shifted >= frames[0]) & (shifted <= frames[-1])
        return _Compared(shifted[within], np.interp(shifted[within], frames, residual),
                         self.sample_altitude_m[within])

    def frames_mask(self, offset_s: float) -> np.ndarray:
        shifted = self.t - offset_s
        return (shifted >= self.curve_times[0]) & (shifted <= self.curve_times[-1])

    def frames_inside(self, offset_s: float) -> int:
        return int(self.frames_mask(offset_s).sum())

    def cost(self, offset_s: float, camera_m: float) -> float:
        """Chi-square per change of the residual over the lag (its mean, the chain's drift, removed), each
        change weighed by its expected noise: the chain's random walk over the frames it spans and the log's
        own noise, which in log-altitude grows near the ground. A change the log does not reach counts as
        `missing_chi2`, so that an offset does not win by leaving awkward frames out."""
        chi2, counted = self._chi2(offset_s, camera_m)
        pairs = max(self.span_points - self.lag, counted)
        return (chi2 + self.missing_chi2 * (pairs - counted)) / pairs

    def chi2_per_change(self, offset_s: float, camera_m: float) -> float:
        """The chi-square per change compared, none missing counted: about one (or less, where the noise
        model errs high) when the log and the images agree to within their noise."""
        chi2, counted = self._chi2(offset_s, camera_m)
        return chi2 / counted if counted > 0 else math.inf

    def _chi2(self, offset_s: float, camera_m: float) -> tuple[float, float]:
        """(the tapered chi-square of the changes compared, how many they count as); inf when too few."""
        points = self.compared(offset_s, camera_m)
        lag = self.lag
        if len(points.times_s) < max(SYNC_MIN_FRAMES if not self.at_log_samples else 4, 2 * lag):
            return math.inf, 0.0
        height = _height(points.altitude_m, camera_m)
        residual = points.residual
        log_var = self.noise.log_variance(points.altitude_m, height)
        change = residual[lag:] - residual[:-lag]
        frames_spanned = (points.times_s[lag:] - points.times_s[:-lag]) / _interval(self.t)
        weight = 1.0 / (self.walk**2 * frames_spanned + log_var[lag:] + log_var[:-lag])
        taper = self._taper(offset_s, points.times_s[:-lag], points.times_s[lag:])
        mean = float(np.sum(taper * weight * change) / max(float(np.sum(taper * weight)), 1e-300))
        return float(np.sum(taper * weight * (change - mean) ** 2)), float(np.sum(taper))

    def _taper(self, offset_s: float, starts_s: np.ndarray, ends_s: np.ndarray) -> np.ndarray:
        """How much each change counts. Where points come and go with the offset (the log's ends; and the
        frames' ends, when the points are the log's samples), the changes within two points of the end
        count less, and nothing at the end itself, so that the cost is continuous in the offset: a point
        with a large residual leaving would otherwise drop the cost by a step, and the minimum would sit on
        the step. Elsewhere (the frames' own ends, when the points are frames) everything counts: the last
        seconds before touchdown pin the offset best, and the frames often end there."""
        first, last = self.overlap_s(offset_s)
        moving_first = self.at_log_samples or first > self.t[0]
        moving_last = self.at_log_samples or last < self.t[-1]
        width = 2 * self.point_interval_s
        room = np.minimum(starts_s - first if moving_first else np.full_like(starts_s, np.inf),
                          last - ends_s if moving_last else np.full_like(ends_s, np.inf))
        return _smoothstep(room / width)

    def cameras(self, heights_m: tuple[float, ...]) -> tuple[float, ...]:
        """The camera heights above the log's zero to try: `heights_m`, and where the log never reads zero
        (it comes to rest above it: a radar mounted high, a barometer's or GPS's zero below the ground),
        the same heights above the log's lowest reading."""
        lowest = float(min(self.curve_altitude_m.min(), self.sample_altitude_m.min(initial=np.inf)))
        if lowest <= SYNC_ZERO_OFF_M:
            return heights_m
        return heights_m + tuple(h - lowest for h in heights_m)

    @property
    def log_span_s(self) -> float:
        return float(self.curve_times[-1] - self.curve_times[0])

    def overlap_s(self, offset_s: float) -> tuple[float, float]:
        """Where the frames and the log, shifted by the offset, both are."""
        return (max(float(self.t[0]), float(self.curve_times[0]) + offset_s),
                min(float(self.t[-1]), float(self.curve_times[-1]) + offset_s))

    def coarse(self, lo: float, hi: float) -> tuple[np.ndarray, np.ndarray]:
        """Each candidate offset's cost, the best over a few camera heights; inf where too few frames overlap."""
        step = max(min(_interval(self.t), 0.25), (hi - lo) / SYNC_GRID_POINTS)
        grid = np.arange(lo, hi + step / 2, step)
        cameras = self.cameras(SYNC_COARSE_CAMERA_M)
        costs = np.array([min(self.cost(float(d), c) for c in cameras) for d in grid])
        overlap = np.array([self.frames_inside(float(d)) for d in grid])
        # An offset that leaves most frames outside the log would be judged on a sliver of them.
        costs[overlap < 0.6 * overlap.max()] = math.inf
        # Where the frames meet only the flat ends of the log (before the descent, at rest after it), the
        # images over those frames hardly change either, and the fit is as close as the true one, with
        # noise enough for many minima that would crowd the true one out: such offsets match nothing.
        changes = np.array([self.log_change(float(d)) for d in grid])
        costs[changes < SYNC_FLAT_SHARE * changes.max()] = math.inf
        return grid, costs

    def refine(self, offset_s: float, step: float) -> tuple[float, float, float]:
        """(cost, offset, camera height): golden-section search within `step` each side, per height."""
        best = (math.inf, offset_s, DEFAULT_CAMERA_M)
        for camera_m in self.cameras(SYNC_CAMERA_M):
            def cost(offset: float, camera_m: float = camera_m) -> float:
                return self.cost(offset, camera_m)

            best = min(best, (*_golden(cost, offset_s - step, offset_s + step), camera_m))
        return best

    def offset_sd_s(self, offset_s: float, camera_m: float) -> float:
        """The standard error of the offset this fit finds, under its own noise model, from the linearised
        weighted least squares over the compared changes (a sandwich: the changes overlap, so their noise is
        shared). The nuisances, the chain's drift and the camera's height, are fitted with it: near the ground
        a higher camera and a later offset look alike. Scaled up by the fit's chi-square where that exceeds
        one (the data noisier than the model says)."""
        points = self.compared(offset_s, camera_m)
        lag, n = self.lag, len(points.times_s)
        if n < 2 * lag + 3:
            return math.nan
        height = _height(points.altitude_m, camera_m)
        level = np.log(height)
        # What a later offset changes the residual by, per second: the slope of the log-altitude, a line
        # fitted over the lag each side (point to point, the noisy log's slope would invent information).
        slope = _local_slope(points.times_s, level, lag)
        log_var = self.noise.log_variance(points.altitude_m, height)
        frame_index = (points.times_s - points.times_s[0]) / _interval(self.t)
        start, end = frame_index[:-lag], frame_index[lag:]
        variance = self.walk**2 * (end - start) + log_var[lag:] + log_var[:-lag]
        design = np.column_stack([slope[lag:] - slope[:-lag], np.ones(n - lag), 1 / height[lag:] - 1 / height[:-lag]])
        weighted = design / variance[:, None]
        information = design.T @ weighted
        if np.linalg.cond(information) > 1e12:
            return math.nan
        # The changes' covariance is banded: change i and change i+k share chain steps while their spans
        # overlap, and a log point where one ends and the other starts.
        shared = np.zeros((3, 3))
        for k in range(-lag, lag + 1):
            a, b = max(0, -k), min(n - lag, n - lag - k)
            chain = self.walk**2 * np.maximum(0.0, np.minimum(end[a:b], end[a + k:b + k])
                                                     - np.maximum(start[a:b], start[a + k:b + k]))
            log_points = (log_var[a + lag:b + lag] + log_var[a:b] if k == 0 else
                          -log_var[a + lag:b + lag] if k == lag else -log_var[a:b] if k == -lag else 0.0)
            shared += weighted[a:b].T @ ((chain + log_points)[:, None] * weighted[a + k:b + k])
        inverse = np.linalg.inv(information)
        sandwich = inverse @ shared @ inverse
        change = points.residual[lag:] - points.residual[:-lag]
        mean = float(np.sum(change / variance) / np.sum(1 / variance))
        misfit = max(1.0, float(np.mean((change - mean) ** 2 / variance)))
        return math.sqrt(max(sandwich[0, 0], 0.0) * misfit)

    def log_change(self, offset_s: float) -> float:
        """How far the log's log-altitude ranges over the frames it meets."""
        altitude_m = self.compared(offset_s, DEFAULT_CAMERA_M).altitude_m
        return float(np.ptp(np.log(np.maximum(altitude_m, 0.0) + DEFAULT_CAMERA_M))) if len(altitude_m) else 0.0

    def null_cost(self, offset_s: float, camera_m: float) -> float:
        """The cost of a log with no shape (a constant altitude): what the images' change of scale alone costs."""
        flat = replace(self, curve_altitude_m=np.full_like(self.curve_altitude_m, 100.0),
                       sample_altitude_m=np.full_like(self.sample_altitude_m, 100.0))
        return flat.cost(offset_s, camera_m)

    def level_rms(self, offset_s: float, camera_m: float) -> float:
        """The residual log-altitude, its constant and linear drift removed."""
        points = self.compared(offset_s, camera_m)
        times = points.times_s - points.times_s.mean()
        design = np.column_stack([np.ones_like(times), times])
        coefficients, *_ = np.linalg.lstsq(design, points.residual, rcond=None)
        return float(np.sqrt(np.mean((points.residual - design @ coefficients) ** 2)))


def _smoothstep(x: np.ndarray) -> np.ndarray:
    """0 at and below 0, 1 at and above 1, smooth between."""
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def _local_slope(x: np.ndarray, y: np.ndarray, half_width: int) -> np.ndarray:
    """The slope of the least-squares line through the points within `half_width` each side of each point
    (fewer at the ends, where the window is cut: no padding, which would flatten the slope there)."""
    x = x - x.mean()  # Unix seconds squared would cancel to nothing
    sums = [np.concatenate([[0.0], np.cumsum(v)]) for v in (np.ones_like(x), x, y, x * x, x * y)]
    index = np.arange(len(x))
    lo, hi = np.maximum(index - half_width, 0), np.minimum(index + half_width + 1, len(x))
    n, sx, sy, sxx, sxy = (c[hi] - c[lo] for c in sums)
    spread = n * sxx - sx * sx
    return np.where(spread > 0, (n * sxy - sx * sy) / np.where(spread > 0, spread, 1.0), 0.0)


def _height(altitude_m: np.ndarray, camera_m: float) -> np.ndarray:
    """The camera's height above the ground where the log reads `altitude_m`, never below a few centimetres."""
    return np.maximum(np.maximum(altitude_m, 0.0) + camera_m, 0.05)


def _interval(times: np.ndarray) -> float:
    return float(np.median(np.diff(times))) if len(times) > 1 else 1.0


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
