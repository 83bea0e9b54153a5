"""Synchronising a log with the images: the offset between the log's clock and the frames', found by
fitting the log's altitude to the image scale chain, over the whole envelope of issue 15 (logs of 0.5 to
30 Hz, offset by -30 to +30 s), and refused when there is nothing to fit or the log is another flight."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest
from synthetic_sync import scenario

from descent.altitude import track_for_frames
from descent.sync import LogNoise, OffsetFit, fit_time_offset, monotone_cubic, sync_log
from descent.telemetry import Telemetry, read_telemetry

FRAME_RATES = (4.0, 5.0, 8.0, 10.0, 12.0)
SWEEP = 40


@dataclass(frozen=True)
class Row:
    seed: int
    what: str
    fit: OffsetFit
    error: float  # frame intervals; NaN where the fit is not usable
    sd: float  # the fit's reported standard error, frame intervals


@functools.cache
def sweep() -> tuple[Row, ...]:
    """The first SWEEP problems of scripts/synthetic_sync.py, fitted as the build fits them."""
    rows = []
    for seed in range(SWEEP):
        case = scenario(seed, fps=FRAME_RATES[seed % len(FRAME_RATES)])
        fit = fit_time_offset(case.log, case.frame_times, case.measured_chain, frames_utc=True)
        error = abs(fit.offset_s - case.offset_s) * case.fps if fit.usable else math.nan
        rows.append(Row(seed, case.describe(), fit, error, fit.sd_s * case.fps))
    usable = [r for r in rows if r.fit.usable]
    errors = np.array([r.error for r in usable])
    print(f"\nsync sweep of {SWEEP}: {len(usable)} usable, worst {errors.max():.2f} frame intervals, median "
          f"{np.median(errors):.2f}; every case, worst first:")
    for r in sorted(rows, key=lambda r: -np.nan_to_num(r.error, nan=99)):
        print(f"  seed {r.seed:3d} {r.error:6.2f} ± {r.sd:5.2f} frames  {r.what}  rms {r.fit.rms:.3f}  {r.fit.verdict}")
    return tuple(rows)


@pytest.mark.slow
def test_the_offset_is_as_close_as_the_fit_says() -> None:
    """Over the envelope: nearly every fit is usable; its reported standard error is honest (95% of the errors
    within two of them, none beyond five: over 400 problems of scripts/bench_sync.py the figures are 1.6 and
    4.1); each fit that reports ± half a frame interval or better is within one interval; and the median is
    a fraction of one."""
    rows = sweep()
    usable = [r for r in rows if r.fit.usable]
    assert len(usable) >= 0.9 * len(rows)
    ratios = np.array([r.error / r.sd for r in usable])
    assert np.percentile(ratios, 95) <= 2.0 and ratios.max() <= 5.0, sorted(ratios)[-3:]
    tight = [r for r in usable if r.sd <= 0.5]
    assert len(tight) >= len(usable) // 3 and max(r.error for r in tight) <= 1.0
    assert np.median([r.error for r in usable]) < 0.35


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason="issue 15's target, one frame interval at worst, is below what the data allow "
                   "on this envelope: the Cramér-Rao bound (scripts/bench_sync.py) is over one interval for 15 of "
                   "200 problems, and an efficient fit's expected worst over 200 is 3.3 intervals")
def test_offset_within_one_frame_over_the_envelope() -> None:
    """Every fit the build would apply is within one frame interval; the rest say they are poor."""
    usable = [r for r in sweep() if r.fit.usable]
    assert max(r.error for r in usable) < 1.0


def test_a_hover_cannot_be_synchronised() -> None:
    case = scenario(3, fps=10.0, flat=True)
    fit = fit_time_offset(case.log, case.frame_times, case.measured_chain, frames_utc=True)
    assert fit.poor and not fit.usable and math.isnan(fit.offset_s) and "cannot sync" in fit.verdict


def test_a_log_of_another_flight_is_poor() -> None:
    ours, other = scenario(6, fps=10.0), scenario(16, fps=10.0)
    fit = fit_time_offset(other.log, ours.frame_times, ours.measured_chain, frames_utc=True)
    assert fit.poor, fit


def test_a_log_whose_zero_is_metres_off_is_synchronised() -> None:
    """A log that reads 5 m at touchdown (a radar mounted high, a barometer's zero off) still fits: the camera's
    height is also tried above the log's lowest reading."""
    case = scenario(6, fps=10.0)
    high = replace(case.log, altitude_m=case.log.altitude_m + 5.0)
    fit = fit_time_offset(high, case.frame_times, case.measured_chain, frames_utc=True)
    assert fit.usable and abs(fit.offset_s - case.offset_s) < 3 * fit.sd_s + 0.05, fit


def test_a_steady_exponential_pins_no_offset() -> None:
    """A log that covers only an exponential stretch (log-altitude straight in time) looks the same at every
    offset, a shift in time being a constant in log: the fit says so and is not applied."""
    t = np.arange(0.0, 30.0, 0.1)
    rng = np.random.default_rng(4)
    chain = np.log(2000 * np.exp(-t / 8) + 1.0) + rng.normal(0, 0.002, len(t)).cumsum()
    log_t = np.arange(-20.0, 50.0, 0.2)
    log = Telemetry(Path("log.csv"), log_t - 7.0, np.round(2000 * np.exp(-log_t / 8), 1), False, "time", "altitude_m",
                    "m", time_kind="elapsed")
    fit = fit_time_offset(log, t, chain, frames_utc=False, search_s=(-20.0, 20.0))
    assert fit.poor and not fit.usable and "pins the offset only" in fit.verdict, fit


def test_the_log_noise_is_read_through_its_rounding() -> None:
    """A radar log with 0.1 m of noise rounded to 0.1 m has about 0.104 m of noise: the estimate finds it
    (a median of second differences reads such a log as 0.06 m), and a share of altitude high up."""
    rng = np.random.default_rng(5)
    t = np.arange(0.0, 120.0, 0.5)
    clean = np.concatenate([np.linspace(3000, 25, 160), np.linspace(25, 0.5, 80)])
    logged = np.round(np.maximum(clean * (1 + rng.normal(0, 0.003, len(t))) + rng.normal(0, 0.1, len(t)), 0), 1)
    noise = LogNoise.of(logged)
    # Low down (under 20 m) the 0.3% adds a little: 0.104 m alone would be 0.104 to 0.12 over that span.
    assert 0.09 < noise.metres < 0.15 and 0.002 < noise.relative < 0.0045, noise


def test_the_fit_is_applied_by_track_for_frames() -> None:
    case = scenario(6, fps=5.0)
    fit = fit_time_offset(case.log, case.frame_times, case.measured_chain, frames_utc=True)
    assert fit.usable and abs(fit.offset_s - case.offset_s) < 0.2
    track = track_for_frames(case.log, [], case.frame_times, frames_utc=True, scale_chain=case.scale_chain,
                             time_offset=fit)
    assert track.offset_fit is fit and track.time_offset_s == fit.offset_s
    by_hand = track_for_frames(case.log, [], case.frame_times, frames_utc=True, scale_chain=None,
                               time_offset=case.offset_s)
    known = track.known & by_hand.known
    np.testing.assert_allclose(track.altitude_m[known], by_hand.altitude_m[known], rtol=0.05, atol=0.5)


@pytest.mark.slow
def test_end_to_end_on_a_generated_descent(make_descent, tmp_path: Path) -> None:
    """The library on real frames: motion measured, chained, and the generator's log shifted by 7.3 s."""
    from descent.sources.images import probe
    from descent.stabilise.analyse import measure_motion
    from descent.stabilise.path import camera_path

    folder, truth = make_descent(frames=90, size_px=192)
    ordered = sorted(truth["frames"], key=lambda f: f["time_s"])
    infos = [probe(folder / f["file"]) for f in ordered]
    motions = measure_motion(infos, user_mask=None, workers=2, progress=lambda items, total: iter(items)).motions
    chain = camera_path(motions)[:, 0]
    log = read_telemetry(folder / "telemetry.csv")
    late = Telemetry(log.path, log.times_s - 7.3, log.altitude_m, True, log.time_column, log.altitude_column, "m",
                     time_kind="utc")
    times = np.array([f["time_s"] for f in ordered])
    fit = fit_time_offset(late, times, chain, frames_utc=True)
    print(f"\nend to end: {fit}")
    interval = float(np.median(np.diff(times)))
    assert fit.usable and abs(fit.offset_s - 7.3) < interval and fit.sd_s < interval, fit


def test_the_log_is_resampled_smoothly_without_overshoot() -> None:
    """A sparse log is interpolated by a monotone cubic: through every sample, monotone where the samples
    are, flat where they are (a log at rest after touchdown does not dip below the ground), and closer to a
    curving descent than straight chords are."""
    t = np.arange(0.0, 30.0, 1.5)  # 0.67 Hz
    truth = lambda x: 500 * np.exp(-x / 6) + 2.0  # noqa: E731
    samples = truth(t)
    samples[-4:] = samples[-4]  # at rest
    dense = np.linspace(0, t[-1], 2000)
    curve = monotone_cubic(t, samples, dense)
    assert np.allclose(monotone_cubic(t, samples, t), samples)
    assert np.all(np.diff(curve) <= 1e-9) and curve.min() >= samples.min() - 1e-9
    moving = (dense > t[1]) & (dense < t[-6])  # away from the ends and the corner of the rest
    chords = np.interp(dense, t, samples)
    assert np.abs(curve - truth(dense))[moving].max() < 0.5 * np.abs(chords - truth(dense))[moving].max()
    # Dense and noisy: averaged over a frame interval (here 0.4 s), so each point's noise is a fraction of a sample's.
    rng = np.random.default_rng(2)
    fast = np.arange(0.0, 20.0, 1 / 25)
    noisy = 30 - fast + rng.normal(0, 0.3, len(fast))
    times, altitude, noise = sync_log(fast, noisy, 0.4)
    assert np.std(altitude - np.interp(times, fast, 30 - fast)) < 0.15 and noise.metres < 0.15
