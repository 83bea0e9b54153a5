"""Synchronising a log with the images: the offset between the log's clock and the frames', found by
fitting the log's altitude to the image scale chain, over the whole envelope of issue 15 (logs of 0.5 to
30 Hz, offset by -30 to +30 s), and refused when there is nothing to fit or the log is another flight."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from descent.altitude import fit_time_offset, monotone_cubic, sync_log, track_for_frames
from descent.telemetry import Telemetry, read_telemetry

T0 = 1546482360.0  # 2019-01-03 02:26:00 UTC
FRAME_RATES = (4.0, 5.0, 8.0, 10.0, 12.0)
SWEEP = 24


def descent_profile(rng: np.random.Generator, t: np.ndarray) -> np.ndarray:
    """A lander's altitude above its log's zero at times t (0: the descent starts): an exponential approach,
    perhaps a hover, a slower exponential, a constant final speed, then rest on the ground or 1.2 m above it
    (the log's zero off); corners rounded over 0.5 to 3 s in log-altitude."""
    start_m = 10 ** rng.uniform(2.5, 3.7)
    hover_m = start_m * 10 ** -rng.uniform(0.7, 1.5)
    tau1, tau2 = rng.uniform(6, 25), rng.uniform(3, 10)
    hover_s = float(rng.choice([0.0, rng.uniform(3, 15)]))
    final_mps = rng.uniform(0.7, 3.0)
    rest_m = float(rng.choice([0.0, 0.0, 1.2]))
    t_hover = tau1 * math.log(start_m / hover_m)
    t_final = t_hover + hover_s
    switch_m = min(final_mps * tau2, 0.9 * hover_m)  # exponential until it would be slower than final_mps
    t_switch = t_final + tau2 * math.log(hover_m / switch_m)
    t_land = t_switch + (switch_m - rest_m) / final_mps
    h = np.select([t < 0, t < t_hover, t < t_final, t < t_switch, t < t_land],
                  [np.full_like(t, start_m), start_m * np.exp(-t / tau1), np.full_like(t, hover_m),
                   hover_m * np.exp(-(t - t_final) / tau2), switch_m - final_mps * (t - t_switch)], rest_m)
    kernel = np.hanning(max(3, int(rng.uniform(0.5, 3) / (t[1] - t[0])) | 1))
    smooth = np.convolve(np.pad(np.log(h + 0.3), len(kernel) // 2, mode="edge"), kernel / kernel.sum(), "valid")
    return np.exp(smooth) - 0.3


@dataclass(frozen=True)
class Scenario:
    fps: float
    log_hz: float
    offset_s: float  # the truth: add it to the log's times to put them on the frames' clock
    frame_times: np.ndarray
    scale_chain: np.ndarray
    log: Telemetry

    def describe(self) -> str:
        return (f"{self.fps:g} fps, log {self.log_hz:.2f} Hz ({self.log.time_kind}), offset {self.offset_s:+.2f} s, "
                f"{len(self.frame_times)} frames")


def scenario(seed: int, *, fps: float, flat: bool = False) -> Scenario:
    """A descent seen by a camera and logged on another clock, with the image chain's realistic faults: a
    random walk of 0.002 per frame in log-scale, a drift, bridged gaps, dropped frames, the camera 0.5 to 1.5 m
    above the log's zero; and a log with noise and 0.1 m steps, which may start or end inside the frames."""
    rng = np.random.default_rng(seed)
    log_hz = 10 ** rng.uniform(math.log10(0.5), math.log10(30))
    offset = rng.uniform(-30, 30)
    grid = np.arange(-200, 400, 0.01)
    altitude = np.full_like(grid, 40.0) if flat else descent_profile(rng, grid)
    land = 60.0 if flat else float(grid[np.argmax(altitude <= altitude.min() + 0.01)])
    last = land + rng.uniform(-5, 10)
    t = np.arange(max(last - rng.uniform(20, 90), -50), last, 1 / fps)
    t = t[rng.random(len(t)) > 0.03]
    camera = np.interp(t, grid, altitude) + rng.uniform(0.5, 1.5)
    walk = rng.normal(0, 0.002, len(t)).cumsum() + rng.normal(0, 2e-4) * np.arange(len(t))
    chain = np.log(camera / camera[0]) + walk - walk[0]
    for _ in range(int(rng.integers(0, 3))):  # pairs too blurred to measure, bridged from their neighbours
        a = int(rng.integers(1, len(t) - 25))
        b = a + int(rng.integers(5, 20))
        chain[a:b] = np.interp(t[a:b], [t[a - 1], t[b]], [chain[a - 1], chain[b]])
    span = t[-1] - t[0]
    log_t = np.arange(t[0] - rng.uniform(-0.2 * span, 60), t[-1] + rng.uniform(-0.2 * span, 60), 1 / log_hz)
    true_m = np.interp(log_t, grid, altitude)
    logged = np.round(np.maximum(true_m * (1 + rng.normal(0, 0.003, len(log_t))) + rng.normal(0, 0.1, len(log_t)),
                                 0), 1)
    elapsed = bool(rng.random() < 0.3)  # seconds from its own start, which the frames' first time is not
    times = log_t - offset - (t[0] if elapsed else 0.0)
    log = Telemetry(Path("log.csv"), times + (0.0 if elapsed else T0), logged, not elapsed, "time", "altitude_m",
                    "m", time_kind="elapsed" if elapsed else "utc")
    return Scenario(fps, log_hz, offset, T0 + t, chain, log)


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason="issue 15: every fit is usable and none is grossly off, but the worst is 1.15 "
                   "frame intervals (seed 22, 8 fps) and two are over one: not yet under one")
def test_offset_within_one_frame_over_the_envelope() -> None:
    """Every fit the build would apply is within one frame interval; the rest say they are poor."""
    rows = []
    for seed in range(SWEEP):
        case = scenario(seed, fps=FRAME_RATES[seed % len(FRAME_RATES)])
        fit = fit_time_offset(case.log, case.frame_times, case.scale_chain, frames_utc=True)
        rows.append((abs(fit.offset_s - case.offset_s) * case.fps, seed, case.describe(), fit))
    applied = [r for r in rows if r[3].usable]
    errors = np.array([r[0] for r in applied])
    print(f"\nsync sweep of {SWEEP}: {len(applied)} usable, worst {errors.max():.2f} frame intervals, "
          f"median {np.median(errors):.2f}; every case, worst first:")
    for error, seed, what, fit in sorted(rows, key=lambda r: -r[0]):
        print(f"  seed {seed:3d} {error:8.2f} frames  {what}  rms {fit.rms:.3f}  {fit.verdict}")
    assert errors.max() < 1.0
    assert len(applied) >= 0.9 * SWEEP


def test_a_hover_cannot_be_synchronised() -> None:
    case = scenario(3, fps=10.0, flat=True)
    fit = fit_time_offset(case.log, case.frame_times, case.scale_chain, frames_utc=True)
    assert fit.poor and not fit.usable and math.isnan(fit.offset_s) and "cannot sync" in fit.verdict


def test_a_log_of_another_flight_is_poor() -> None:
    ours, other = scenario(6, fps=10.0), scenario(16, fps=10.0)
    fit = fit_time_offset(other.log, ours.frame_times, ours.scale_chain, frames_utc=True)
    assert fit.poor, fit


def test_the_fit_is_applied_by_track_for_frames() -> None:
    case = scenario(6, fps=5.0)
    fit = fit_time_offset(case.log, case.frame_times, case.scale_chain, frames_utc=True)
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
    assert fit.usable and abs(fit.offset_s - 7.3) < float(np.median(np.diff(times))), fit


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
    # Dense and noisy: averaged over SYNC_LOG_SMOOTH_S, so each point's noise is a fraction of a sample's.
    rng = np.random.default_rng(2)
    fast = np.arange(0.0, 20.0, 1 / 25)
    noisy = 30 - fast + rng.normal(0, 0.3, len(fast))
    times, altitude, noise_m = sync_log(fast, noisy)
    assert np.std(altitude - np.interp(times, fast, 30 - fast)) < 0.15 and noise_m < 0.15
