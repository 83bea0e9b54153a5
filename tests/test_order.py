"""Ordering, coarse clocks, gaps, frames out of place and the output timeline, against known truth."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from descent.frames import FrameInfo, TimeSource
from descent.order import (
    TimingConfig,
    detect_coarse_clock,
    find_gaps,
    find_out_of_place,
    order_frames,
    plan_repeats,
)
from descent.sources.times import TimedFrames


def _timed(stamps: list[float], counters: list[int] | None = None, names: list[str] | None = None) -> TimedFrames:
    names = names or [f"f{i}.png" for i in range(len(stamps))]
    frames = [
        FrameInfo(path=Path(n), width=8, height=8, channels=1, bit_depth=8, time_s=t, stamped_time_s=t,
                  counter=counters[i] if counters else None)
        for i, (n, t) in enumerate(zip(names, stamps, strict=True))
    ]
    return TimedFrames(frames, TimeSource.NAME, True)


def test_changE4_whole_second_clock_is_refined_not_deduplicated() -> None:
    # Chang'e-4 LCAM: about 9.8 frames a second, stamped to the whole second, starting mid-second.
    rate = 9.8
    true_times = 1546482009.37 + np.arange(200) / rate
    stamps = np.floor(true_times)
    order = np.random.default_rng(3).permutation(200)  # files arrive in any order
    seq = order_frames(_timed(list(stamps[order]), counters=list(order)))
    assert seq.coarse is not None
    assert seq.coarse.quantum_s == 1.0
    assert seq.coarse.frames_per_stamp == pytest.approx(10, abs=1)
    assert [f.counter for f in seq.frames] == list(range(200))  # counter breaks ties within a second
    refined = np.array([f.time_s for f in seq.frames])
    error = refined - true_times
    assert np.all(np.diff(refined) > 0)
    # A whole-second stamp leaves each run's phase unknown; spreading keeps every frame in its second
    # and the error well under the stamp quantum.
    assert np.all((refined >= stamps) & (refined < stamps + 1))
    assert np.sqrt(np.mean(error**2)) < 0.08
    assert not seq.gaps  # evenly spread runs: no false gaps
    assert not seq.out_of_place


def test_fine_clock_is_not_coarse() -> None:
    assert detect_coarse_clock(list(np.arange(50) * 0.1)) is None
    assert detect_coarse_clock([0.0, 0.0, 1.0]) is None  # too few frames to say


def test_gaps_found_with_missing_frame_estimate() -> None:
    times = np.arange(30) * 0.1
    times = np.delete(times, [10, 20, 21, 22])  # one lost frame, then three
    gaps = find_gaps(times)
    assert [(g.after, g.missing_frames) for g in gaps] == [(9, 1), (18, 3)]
    assert gaps[1].interval_s == pytest.approx(0.4)


def test_uneven_rate_is_not_full_of_gaps() -> None:
    # Perseverance LCAM: 0.29 to 1 frame per second, varying smoothly.
    intervals = np.linspace(1.0, 1.7, 60)
    assert find_gaps(np.cumsum(intervals)) == []


def test_out_of_place_by_counter() -> None:
    # Frame 7's counter says it belongs before frame 3: time and counter disagree for it alone.
    counters = [0, 1, 2, 7, 3, 4, 5, 6, 8, 9]
    assert find_out_of_place(counters) == [3]
    assert find_out_of_place([0, 1, 2]) == []
    assert find_out_of_place([None, None]) == []


def test_ties_without_counter_use_natural_name_order() -> None:
    seq = order_frames(_timed([5.0, 5.0, 1.0], names=["img_10.png", "img_9.png", "img_100.png"]))
    assert [f.path.name for f in seq.frames] == ["img_100.png", "img_9.png", "img_10.png"]


def test_default_timing_shows_every_frame_once() -> None:
    assert plan_repeats(None, TimingConfig(), frame_count=2).tolist() == [1, 1]  # no times: still every frame
    assert plan_repeats([0.0, 5.0, 5.1], TimingConfig(), frame_count=3).tolist() == [1, 1, 1]


def test_realtime_holds_over_gaps_and_thins_bursts() -> None:
    # 10 frames/s with a 1 s gap, shown at 5 fps real time: every other frame, the gap held.
    times = [*list(np.arange(10) * 0.1), *list(2.0 + np.arange(5) * 0.1)]
    repeats = plan_repeats(times, TimingConfig(fps=5, realtime=True), frame_count=len(times))
    total_s = times[-1] - times[0] + 0.1
    assert repeats.sum() == math.ceil(total_s * 5 - 1e-9)
    # Output frames at t = 0, 0.2, ...: at t = 1.0 the latest capture is the one at 0.9, which then
    # holds the screen through the gap until the frame at t = 2.0 arrives.
    assert repeats.tolist() == [1, 0, 1, 0, 1, 0, 1, 0, 1, 5, 1, 0, 1, 0, 1]


def test_speed_makes_video_shorter() -> None:
    times = list(np.arange(101) * 0.1)  # 10 s of descent
    repeats = plan_repeats(times, TimingConfig(fps=30, realtime=True, speed=4), frame_count=len(times))
    assert repeats.sum() == math.ceil(10.1 / 4 * 30)
