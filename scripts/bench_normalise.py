"""Benchmark normalisation: per-frame costs on one core, and deflicker against ffmpeg's `deflicker`.

Costs, per 1024x1024 frame on one core (OpenCV limited to one thread), best of several runs:
  develop      16-bit grey: defect repair (100 defects), deflicker gain and the tone curve in one lookup
  demosaic     edge-aware, VNG and bilinear on the same 8-bit mosaic; edge-aware on 16-bit
  encode       libx264 (crf 18, medium) on the same frames through the bundled ffmpeg, per frame:
               the stage that must stay the bottleneck of a build

Deflicker, on a generated descent with 12% gain noise frame to frame and a lasting 40% exposure
drop at two thirds: the same descent without flicker is the reference, so the flicker left in a
video is what its brightness differs from the reference's, whatever the scene does. It prints the
high-frequency part (periods under 1 s) of the flicker left, as a ratio to the input's, and how far
the output moves before the step (a look-ahead filter ramps there). Compared: no deflicker,
descent (stabilised: brightness on aligned shared ground), descent --stabilise off (whole-frame
means), and ffmpeg's `deflicker` (size 31, mode am: the same 3 s window).
Timings, not a gate: it never fails a build.

Usage: python scripts/bench_normalise.py [--frames 180] [--size 256] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
from benchlib import encode_ms_per_frame
from synthetic_descent import DescentSpec, colour_test_image, generate

from descent.encode import EncodeConfig, ffmpeg_args, find_ffmpeg
from descent.normalise import NormalisePlan
from descent.normalise.bayer import demosaic
from descent.normalise.calibrate import Defects, find_defects
from descent.normalise.deflicker import high_frequency_rms
from descent.normalise.tone import ToneMap


def best_ms(action: Callable[[], object], repeats: int = 15) -> float:
    action()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return 1000 * min(times)


def costs(size: int) -> list[tuple[str, float]]:
    cv2.setNumThreads(1)
    rng = np.random.default_rng(0)
    grey16 = (colour_test_image(size, seed=1)[:, :, 1].astype(np.uint16) * 16 + rng.integers(0, 16, (size, size),
                                                                                           dtype=np.uint16))
    with_defects = [grey16.copy() for _ in range(6)]
    ys, xs = rng.integers(4, size - 4, 100), rng.integers(4, size - 4, 100)
    for frame in with_defects:
        frame[ys, xs] = 4095
    shifted = [np.roll(f, 37 * k, axis=1) for k, f in enumerate(with_defects)]  # the scene moves, defects stay
    for frame in shifted:
        frame[ys, xs] = 4095
    defects = find_defects(shifted, stride=1)
    plan = NormalisePlan(tone=ToneMap(black=60, white=4000, gamma=1.0), pattern=None, pattern_source="none",
                         guess=None, white_balance=(1.0, 1.0, 1.0), bits_used=12, defects=defects, size=(size, size))
    tone_only = NormalisePlan(tone=plan.tone, pattern=None, pattern_source="none", guess=None,
                              white_balance=(1.0, 1.0, 1.0), bits_used=12, defects=Defects.none(), size=(size, size))
    colour8 = colour_test_image(size, seed=2)
    mosaic8 = colour8[:, :, 1].copy()
    mosaic8[0::2, 0::2], mosaic8[1::2, 1::2] = colour8[0::2, 0::2, 2], colour8[1::2, 1::2, 0]
    mosaic16 = mosaic8.astype(np.uint16) * 16
    return [
        ("tone curve + deflicker gain (16-bit)", best_ms(lambda: tone_only.develop(grey16, gain=1.07, colour=False))),
        (f"+ defect repair ({len(defects)} defects): develop", best_ms(
            lambda: plan.develop(shifted[0], gain=1.07, colour=False))),
        ("demosaic edge-aware (8-bit)", best_ms(lambda: demosaic(mosaic8, "RGGB", "edge-aware"))),
        ("demosaic VNG (8-bit)", best_ms(lambda: demosaic(mosaic8, "RGGB", "vng"))),
        ("demosaic bilinear (8-bit)", best_ms(lambda: demosaic(mosaic8, "RGGB", "bilinear"))),
        ("demosaic edge-aware (16-bit)", best_ms(lambda: demosaic(mosaic16, "RGGB", "edge-aware"))),
        ("encode libx264 crf 18 medium, per frame", encode_ms_per_frame((grey16 >> 4).astype(np.uint8), frames=60)),
    ]


def log_brightness(video: Path, side: int) -> np.ndarray:
    raw = subprocess.run([find_ffmpeg(), "-v", "error", "-i", str(video), "-f", "rawvideo", "-pix_fmt", "gray",
                          "pipe:"], capture_output=True, check=True).stdout
    frames = np.frombuffer(raw, np.uint8).reshape(-1, side, side).astype(np.float64)
    centre = frames[:, side // 4 : -side // 4, side // 4 : -side // 4]
    return np.log(centre.reshape(len(frames), -1).mean(axis=1))


def ffmpeg_deflicker(frames: Path, out: Path, work: Path) -> float:
    """ffmpeg's deflicker on the frames in capture order; returns its time."""
    truth = json.loads((frames / "truth.json").read_text())
    ordered = sorted((f for f in truth["frames"] if not f["duplicate_of"]), key=lambda f: f["time_s"])
    numbered = work / "numbered"
    shutil.rmtree(numbered, ignore_errors=True)  # a kept run's links from before
    numbered.mkdir()
    for k, f in enumerate(ordered):
        (numbered / f"{k:05d}.png").symlink_to(frames / f["file"])
    encode = ffmpeg_args(ffmpeg=find_ffmpeg(), width=8, height=8, colour=False, fps=10, output=out,
                         config=EncodeConfig())
    encode = encode[encode.index("pipe:") + 1 :]
    vf = encode.index("-vf")
    start = time.perf_counter()
    subprocess.run([find_ffmpeg(), "-v", "error", "-y", "-framerate", "10", "-i", str(numbered / "%05d.png"),
                    *encode[:vf], "-vf", f"deflicker=size=31:mode=am,{encode[vf + 1]}", *encode[vf + 2 :]],
                   check=True)
    return time.perf_counter() - start


def deflicker_table(frames: int, size: int, work: Path) -> list[tuple[str, float, float, float]]:
    step_at = frames * 2 // 3
    spec = DescentSpec(frames=frames, size_px=size, step_at=step_at, step_gain=0.6, seed=11)
    steady, flickering = work / "steady", work / "flickering"
    generate(steady, spec)
    generate(flickering, replace(spec, flicker=0.12))
    motion = work / "motion.json"
    variants: dict[str, np.ndarray] = {}
    timings: dict[str, float] = {}

    def timed(name: str, action: Callable[[], np.ndarray]) -> None:
        start = time.perf_counter()
        variants[name] = action()
        timings[name] = time.perf_counter() - start

    # One camera path for every stabilised build, measured on the flickering frames.
    timed("descent (stabilised)", lambda: build_and_measure(flickering, work / "on.mp4", size, "--motion", str(motion)))
    (work / "steady_motion.json").write_text(motion.read_text().replace(str(flickering), str(steady)))
    reference = build_and_measure(steady, work / "ref.mp4", size, "--deflicker", "off", "--motion",
                                  str(work / "steady_motion.json"))
    timed("no deflicker", lambda: build_and_measure(flickering, work / "off.mp4", size, "--deflicker", "off",
                                                    "--motion", str(motion)))
    plain_reference = build_and_measure(steady, work / "ref_plain.mp4", size, "--deflicker", "off",
                                        "--stabilise", "off")
    timed("descent --stabilise off", lambda: build_and_measure(flickering, work / "plain.mp4", size,
                                                               "--stabilise", "off"))
    timings["ffmpeg deflicker"] = ffmpeg_deflicker(flickering, work / "ffmpeg.mp4", work)
    variants["ffmpeg deflicker"] = log_brightness(work / "ffmpeg.mp4", size)
    variants["no deflicker (unstabilised)"] = build_and_measure(flickering, work / "off_plain.mp4", size,
                                                                "--deflicker", "off", "--stabilise", "off")
    rows = []
    baseline = {True: variants["no deflicker"] - reference,
                False: variants["no deflicker (unstabilised)"] - plain_reference}
    for name in ("no deflicker", "descent (stabilised)", "descent --stabilise off", "ffmpeg deflicker"):
        stabilised = name in ("no deflicker", "descent (stabilised)")
        left = variants[name] - (reference if stabilised else plain_reference)
        raw = baseline[stabilised]
        sides = (slice(0, step_at), slice(step_at, len(left)))
        ratio = max(high_frequency_rms(left[s], period_frames=10) / high_frequency_rms(raw[s], period_frames=10)
                    for s in sides)
        level = np.median(left[step_at - 30 : step_at - 8])
        ramp = float(np.mean(left[step_at - 5 : step_at]) - level)  # movement in the 5 frames before the step
        rows.append((name, ratio, ramp, timings.get(name, float("nan"))))
    return rows


def build_and_measure(frames: Path, out: Path, size: int, *extra: str) -> np.ndarray:
    subprocess.run([sys.executable, "-m", "descent", "build", str(frames), "-o", str(out), "-y", "-q",
                    "--border", "black", *extra], check=True)
    return log_brightness(out, size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=180)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--cost-size", type=int, default=1024)
    parser.add_argument("--keep", type=Path, help="keep the generated frames and videos here")
    args = parser.parse_args()
    print(f"per {args.cost_size}x{args.cost_size} frame, one core (best of 15):")
    table = costs(args.cost_size)
    encode = table[-1][1]
    print(f"  {'step':<46} {'ms':>8} {'vs encode':>10}")
    for name, ms in table:
        print(f"  {name:<46} {ms:8.2f} {ms / encode:9.2f}x")
    work = args.keep or Path(tempfile.mkdtemp(prefix="descent-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        rows = deflicker_table(args.frames, args.size, work)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(f"\ndeflicker, {args.frames} frames of {args.size}x{args.size}, 12% flicker, a lasting 40% drop at "
          f"frame {args.frames * 2 // 3}:")
    print(f"  {'variant':<28} {'flicker left':>13} {'ramp before step':>17} {'time':>8}")
    for name, ratio, ramp, seconds in rows:
        print(f"  {name:<28} {ratio:12.3f}x {100 * ramp:+15.1f}% {seconds:7.1f}s")


if __name__ == "__main__":
    main()
