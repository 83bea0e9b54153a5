"""Benchmark the HUD: drawing cost per frame at 480p, 1080p and 4K, against encoding the same frames.

Drawing is timed on one core (OpenCV limited to one thread), best of 200 frames, on a frame that
changes each time: the panel's blend, the numbers' glyphs, the profile marker and the landing-site
reticle. Encoding is libx264 (crf 18, medium) through the bundled ffmpeg on 1080p frames. The issue's
budget is 2 ms per 1080p frame. Timings, not a gate: it never fails a build.

Usage: python scripts/bench_overlay.py
"""

from __future__ import annotations

import time

import cv2
import numpy as np
from benchlib import encode_ms_per_frame
from synthetic_descent import colour_test_image

from descent.altitude import AltitudeTrack, touchdown_time, vertical_speed
from descent.overlay import Hud, HudConfig

SIZES = {"480p": (854, 480), "1080p": (1920, 1080), "4K": (3840, 2160)}


def track(n: int = 600) -> AltitudeTrack:
    t = 1546482360.0 + np.arange(n) * 0.1
    altitude = 15000.0 * np.exp(-np.arange(n) / 80.0)
    grid, speed = vertical_speed(t, altitude)
    return AltitudeTrack(t, True, altitude, np.interp(t, grid, speed), np.zeros(n, bool),
                         touchdown_time(t, altitude), "telemetry")


def draw_ms(width: int, height: int, *, alone: bool = False, frames: int = 200) -> float:
    series = track()
    sites = np.tile([width / 2, height / 2], (len(series.times_s), 1))
    hud = Hud(HudConfig(mark_site=True), width=width, height=height, track=series, sites=sites)
    background = cv2.resize(colour_test_image(512, seed=1), (width, height))
    best = float("inf")
    for k in range(frames if not alone else frames // 10):
        frame = background.copy()
        start = time.perf_counter()
        if alone:
            hud.draw_alone(k % len(series.times_s), width=width, height=height)
        else:
            hud.draw(frame, k % len(series.times_s))
        best = min(best, time.perf_counter() - start)
    return 1000 * best


def main() -> None:
    cv2.setNumThreads(1)
    encode = encode_ms_per_frame(cv2.resize(colour_test_image(512, seed=2), SIZES["1080p"]))
    print("HUD drawing per frame, one core (best of 200); encoding 1080p libx264 crf 18 medium per frame:")
    print(f"  {'what':<34} {'ms':>8} {'vs encode':>10}")
    for name, size in SIZES.items():
        ms = draw_ms(*size)
        print(f"  {'draw ' + name:<34} {ms:8.2f} {ms / encode:9.3f}x")
    alone = draw_ms(*SIZES["1080p"], alone=True)
    print(f"  {'draw alone, BGRA (--overlay-only)':<34} {alone:8.2f} {alone / encode:9.3f}x")
    print(f"  {'encode 1080p':<34} {encode:8.2f} {1:9.3f}x")


if __name__ == "__main__":
    main()
