"""Capture order: sort by time, refine coarse clocks, find gaps and frames out of place, plan the video.

Everything here sees the whole sequence but only its metadata, so 10,000 frames cost nothing.
"""

from __future__ import annotations

import itertools
import logging
import math
from dataclasses import dataclass, field, replace

import numpy as np

from descent.errors import DescentError
from descent.frames import FrameInfo, TimeSource
from descent.sources.discover import natural_key
from descent.sources.times import TimedFrames, find_out_of_place

GAP_FACTOR = 1.8  # an interval this many times the median is a gap: one lost frame (2x) counts
FEW_OUT_OF_PLACE = 2  # more frames than this out of place against their counter: warn (or stop with strict)

log = logging.getLogger("descent")


@dataclass(frozen=True, slots=True)
class Gap:
    after: int  # index of the frame before the gap, in capture order
    interval_s: float
    missing_frames: int  # how many frames the usual cadence would have put there


@dataclass(frozen=True, slots=True)
class CoarseClock:
    """Stamps shared by runs of frames (Chang'e-4: whole seconds at about 10 frames a second)."""

    quantum_s: float  # the step between distinct stamps
    frames_per_stamp: float  # median run length


@dataclass(frozen=True, slots=True)
class OrderedSequence:
    frames: list[FrameInfo]  # capture order; time_s refined where the clock is coarse
    source: TimeSource
    times_are_utc: bool
    coarse: CoarseClock | None = None
    gaps: list[Gap] = field(default_factory=list)
    out_of_place: list[int] = field(default_factory=list)  # indices whose counter disagrees with time
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # already logged as warnings; for the report

    @property
    def has_times(self) -> bool:
        return self.source is not TimeSource.NONE

    @property
    def median_interval_s(self) -> float | None:
        times = [f.time_s for f in self.frames if f.time_s is not None]
        if len(times) < 2:
            return None
        return float(np.median(np.diff(times)))


def order_frames(timed: TimedFrames, *, strict: bool = False) -> OrderedSequence:
    """Sort frames by capture time (ties by counter, then natural name) and check the result.

    More than a few frames out of place against the counter in their names is logged as a warning
    naming the first; with `strict` it stops with a DescentError instead.
    """
    frames = sorted(timed.frames, key=_sort_key)
    notes = list(timed.notes)
    warnings = list(timed.warnings)
    if timed.source is TimeSource.NONE:
        return OrderedSequence(frames, timed.source, False, notes=notes, warnings=warnings)
    coarse = detect_coarse_clock([f.time_s for f in frames])  # type: ignore[misc]
    if coarse:
        frames = refine_coarse_times(frames, coarse)
        notes.append(
            f"coarse timestamps: about {coarse.frames_per_stamp:g} frames share each {coarse.quantum_s:g} s "
            "stamp; times refined by spreading each run evenly"
        )
    times = np.array([f.time_s for f in frames], np.float64)
    out_of_place = find_out_of_place([f.counter for f in frames])
    if len(out_of_place) > FEW_OUT_OF_PLACE:
        warnings.append(_out_of_place_warning(frames, out_of_place, timed.source, strict=strict))
    return OrderedSequence(
        frames, timed.source, timed.times_are_utc, coarse=coarse, gaps=find_gaps(times),
        out_of_place=out_of_place, notes=notes, warnings=warnings,
    )


def _out_of_place_warning(frames: list[FrameInfo], out_of_place: list[int], source: TimeSource, *,
                          strict: bool) -> str:
    """Log (or, strict, raise) that the times disagree with the counter in the names; the message logged."""
    first = [frames[i].path.name for i in out_of_place[:5]]
    fix = "give --time-source none to order by the counter, or --times with the right times"
    if strict:
        raise DescentError(
            f"{frames[out_of_place[0]].path}: {len(out_of_place)} of {len(frames)} frames are out of place "
            f"against the counter in their names when ordered by {source.value} times; {fix}"
        )
    message = (f"{len(out_of_place)} of {len(frames)} frames are out of place against the counter in their names "
               f"when ordered by {source.value} times (first: {', '.join(first)}); the video follows the times: "
               f"{fix} (--strict stops here)")
    log.warning("%s", message)
    return message


def _sort_key(frame: FrameInfo) -> tuple[object, ...]:
    time = frame.time_s if frame.time_s is not None else 0.0
    counter = frame.counter if frame.counter is not None else 0
    return (time, counter, natural_key(frame.path))


def detect_coarse_clock(times: list[float]) -> CoarseClock | None:
    """Runs of equal stamps (in sorted times) mean a clock coarser than the frame rate."""
    if len(times) < 3:
        return None
    stamps, runs = np.unique(np.asarray(times), return_counts=True)
    if len(stamps) < 2 or np.median(runs) < 2:
        return None
    quantum = float(np.median(np.diff(stamps)))
    return CoarseClock(quantum_s=quantum, frames_per_stamp=float(np.median(runs)))


def refine_coarse_times(frames: list[FrameInfo], coarse: CoarseClock) -> list[FrameInfo]:
    """Spread each run of equal stamps over its stamp interval, in capture order.

    A stamp that truncates to the quantum means the frames were taken in [T, T + q). Inner runs
    fill that interval evenly. The first and last runs are usually partial (the camera started or
    stopped mid-second), so they are laid at the usual frame interval against the interval's end
    (first run) or start (last run) instead of being stretched over the whole quantum.
    """
    q = coarse.quantum_s
    usual_dt = q / coarse.frames_per_stamp
    stamps = [f.stamped_time_s for f in frames]
    starts = [i for i in range(len(frames)) if i == 0 or stamps[i] != stamps[i - 1]]
    bounds = [*starts, len(frames)]
    refined: list[FrameInfo] = []
    for run, (a, b) in enumerate(itertools.pairwise(bounds)):
        stamp = stamps[a]
        assert stamp is not None
        k = b - a
        dt = min(usual_dt, q / k)  # a run never spills out of its own stamp interval
        for j in range(k):
            if run == 0 and len(starts) > 1:
                t = stamp + q - (k - j - 0.5) * dt  # partial first run: flush with the interval's end
            elif run == len(starts) - 1 and len(starts) > 1:
                t = stamp + (j + 0.5) * dt  # partial last run: from the interval's start
            else:
                t = stamp + (j + 0.5) * q / k
            refined.append(replace(frames[a + j], time_s=t))
    return refined


def find_gaps(times: np.ndarray, factor: float = GAP_FACTOR) -> list[Gap]:
    """Intervals much longer than the median interval."""
    if len(times) < 3:
        return []
    intervals = np.diff(times)
    median = float(np.median(intervals))
    if median <= 0:
        return []
    return [
        Gap(after=int(i), interval_s=float(intervals[i]), missing_frames=max(1, round(intervals[i] / median) - 1))
        for i in np.flatnonzero(intervals > factor * median)
    ]


@dataclass(frozen=True, slots=True)
class TimingConfig:
    """How capture time becomes video time."""

    fps: float = 30.0
    realtime: bool = False  # follow capture times instead of showing each frame once
    speed: float = 1.0  # with realtime: this many seconds of descent per second of video
    keep_duplicates: bool = False


def plan_repeats(times: list[float] | None, timing: TimingConfig, *, frame_count: int) -> np.ndarray:
    """How many output frames show each captured frame (0: the frame is never shown).

    By default every frame is shown once. Real time (which needs `times`): output frame k shows
    the latest frame captured at or before t0 + k * speed / fps, so a gap holds the last image.
    The last frame stays up for one usual capture interval.
    """
    if not timing.realtime:
        return np.ones(frame_count, np.int64)
    if times is None or len(times) != frame_count:
        raise ValueError("real-time timing needs a capture time for every frame")
    t = np.asarray(times, np.float64)
    step_s = timing.speed / timing.fps  # capture seconds per output frame
    # Unix times carry ~1e-7 s of float noise: a frame due "exactly" on a slot must not slip to the next.
    tolerance = 1e-4
    first_slot = np.ceil((t - t[0]) / step_s - tolerance).astype(np.int64)
    last_interval = float(np.median(np.diff(t))) if len(t) > 1 else step_s
    end_slot = math.ceil((t[-1] - t[0] + last_interval) / step_s - tolerance)
    bounds = np.append(first_slot, max(end_slot, int(first_slot[-1]) + 1))
    return np.diff(bounds).clip(min=0)
