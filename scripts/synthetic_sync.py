"""Synchronisation problems with their truth: a descent's image scale chain and a log of it on another clock.

Shared by tests/test_sync.py and scripts/bench_sync.py. Each draw varies what real logs and descents
vary: the profile (an exponential approach, perhaps a hover, a slower exponential, a constant final
speed, rest on the ground or above it, corners rounded over 0.5 to 3 s), the log's rate (0.5 to 30 Hz,
log-uniform) and clock (UTC, or seconds from its own start), the offset (-30 to +30 s), where the log
starts and ends against the frames, the camera's height above the log's zero (0.5 to 1.5 m), and the
image chain's faults (a random walk, a drift, dropped frames, bridged gaps).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from descent.telemetry import Telemetry

T0 = 1546482360.0  # 2019-01-03 02:26:00 UTC
CHAIN_WALK = 0.002  # the chain's random walk a frame, in log-scale
LOG_RELATIVE = 0.003  # the log's noise: a share of the altitude
LOG_METRES = 0.1  # and metres, before rounding to 0.1 m


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
    """One drawn problem: the frames' times and chain, the log, and the truth."""

    fps: float
    log_hz: float
    offset_s: float  # the truth: add it to the log's times to put them on the frames' clock
    frame_times: np.ndarray
    scale_chain: np.ndarray
    log: Telemetry
    bridged: np.ndarray  # frames whose chain value is interpolated, not measured
    camera_m: float  # the camera's height above the log's zero
    clean_altitude_m: np.ndarray  # the log's altitudes without its noise and rounding
    true_log_times: np.ndarray  # the log's sample times on the frames' clock: the truth the fit looks for

    @property
    def measured_chain(self) -> np.ndarray:
        """The chain as the build hands it to the fit: NaN where a frame was bridged."""
        return np.where(self.bridged, np.nan, self.scale_chain)

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
    camera_m = rng.uniform(0.5, 1.5)
    camera = np.interp(t, grid, altitude) + camera_m
    walk = rng.normal(0, CHAIN_WALK, len(t)).cumsum() + rng.normal(0, 2e-4) * np.arange(len(t))
    chain = np.log(camera / camera[0]) + walk - walk[0]
    bridged = np.zeros(len(t), bool)
    for _ in range(int(rng.integers(0, 3))):  # pairs too blurred to measure, bridged from their neighbours
        a = int(rng.integers(1, len(t) - 25))
        b = a + int(rng.integers(5, 20))
        chain[a:b] = np.interp(t[a:b], [t[a - 1], t[b]], [chain[a - 1], chain[b]])
        bridged[a:b] = True
    span = t[-1] - t[0]
    log_t = np.arange(t[0] - rng.uniform(-0.2 * span, 60), t[-1] + rng.uniform(-0.2 * span, 60), 1 / log_hz)
    true_m = np.interp(log_t, grid, altitude)
    noisy = true_m * (1 + rng.normal(0, LOG_RELATIVE, len(log_t))) + rng.normal(0, LOG_METRES, len(log_t))
    logged = np.round(np.maximum(noisy, 0), 1)
    elapsed = bool(rng.random() < 0.3)  # seconds from its own start, which the frames' first time is not
    times = log_t - offset - (t[0] if elapsed else 0.0)
    log = Telemetry(Path("log.csv"), times + (0.0 if elapsed else T0), logged, not elapsed, "time", "altitude_m",
                    "m", time_kind="elapsed" if elapsed else "utc")
    return Scenario(fps, log_hz, offset, T0 + t, chain, log, bridged, camera_m, true_m, T0 + log_t)
