"""Benchmark normalisation: per-frame costs on one core, and deflicker against ffmpeg's `deflicker`.

Costs, per 1024x1024 frame on one core (OpenCV limited to one thread), best of several runs:
  develop      16-bit grey: defect repair (100 defects), deflicker gain and the tone curve in one lookup
  demosaic     edge-aware, VNG and bilinear on the same 8-bit mosaic; edge-aware on 16-bit
  encode       libx264 (crf 18, medium) on the same frames through the bundled ffmpeg, per frame:
               the stage that must stay the bottleneck of a build
  deflicker    deflicker_gains on a sequence of 5,000 frames, per frame

Deflicker sweep (the library directly, no encode: an end-to-end video per scenario is too slow).
Generated descents (12-bit in 16, a lander leg, plume dust over the last quarter) at 1, 3, 10
and 30 frames/s, each frame shown once in a 30 fps video, under each flicker model of
synthetic_descent.flicker_log_gains: none, white noise (3-12%), hunting with periods of 2, 4, 7,
12 and 20 frames (5-15% per swing, random per swing), a random walk (0.5-2% a frame), bursts (one
frame in 30 at +30%); each with and without a lasting step of 20-40% (either way, at a random
frame). Descents, amplitudes, step, phases and scenes are drawn at random (--draw seeds the draw;
--seeds descents per capture rate). Per scenario: the flickering frames are developed to 8 bits,
their brightness ratios measured on aligned shared ground (the true motion, the leg masked),
deflicker_gains turns them into gains, and the frames are developed again with them. The same
descent without flicker is the reference (the truth: its dust and step are real and stay):
  flicker left   flicker_rms (periods under 1 s of video) of the output's log brightness (centre
                 half) less the reference's, over the same of the input: 1 is no correction.
                 The gain is applied to the counts above black, as an exposure gain scales them;
                 "as built today" is the build's own develop (NormalisePlan.develop), which must
                 agree (it applied the gain to the raw counts until this version, scaling the
                 camera's black offset too, and left flicker of its own)
  no flicker     the largest change of any frame's brightness by the correction
  step ramp      the largest movement, in the 5 frames before the step, that the step causes
                 (output with the step less output without it, less the same for the reference)
  step level     how far from its level the output is 2 to 5 frames after the step (same measure)
ffmpeg's `deflicker` (mode am, size: the flicker period, odd, at most 129) beside it on the same frames.
Timings, not a gate: it never fails a build.

Usage: python scripts/bench_normalise.py [--seeds 3] [--draw 0] [--frames 240] [--size 128] [--end-to-end]
  --end-to-end also runs the older comparison of whole builds (one descent, 12% noise, a 40% drop)
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
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np
from benchlib import encode_ms_per_frame
from synthetic_descent import (
    DescentSpec,
    Terrain,
    add_dust,
    add_lander_leg,
    colour_test_image,
    flicker_log_gains,
    flight,
    frame_to_ground,
    generate,
    to_samples,
)

from descent.encode import EncodeConfig, ffmpeg_args, find_ffmpeg
from descent.normalise import NormalisePlan
from descent.normalise.bayer import demosaic
from descent.normalise.calibrate import Defects, find_defects
from descent.normalise.deflicker import (
    aligned_log_ratio,
    deflicker_gains,
    flicker_period_frames,
    flicker_rms,
    high_frequency_rms,
)
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


VIDEO_FPS = 30.0
RATES = (1.0, 3.0, 10.0, 30.0)
MODELS = [("none", 0.0), ("noise", 0.0), *(("hunting", float(p)) for p in (2, 4, 7, 12, 20)), ("walk", 0.0),
          ("bursts", 0.0)]
AMPLITUDES = {"none": (0.0, 0.0), "noise": (0.03, 0.12), "hunting": (0.05, 0.15), "walk": (0.005, 0.02),
              "bursts": (0.3, 0.3)}


@dataclass(frozen=True, slots=True)
class Descent:
    """A generated descent's radiance per frame and what measuring it needs."""

    radiance: list[np.ndarray]
    to_after: list[np.ndarray | None]  # frame i-1 pixel -> frame i pixel, 2x3
    mask: np.ndarray  # 255 off the lander leg


def render(rate: float, seed: int, frames: int, size: int) -> Descent:
    """The frames of synthetic_descent.generate before exposure and quantisation (the same scene, leg and dust)."""
    spec = DescentSpec(frames=frames, size_px=size, fps=rate, bits=12, occluder=True, dust_frames=frames // 4,
                       seed=seed)
    states = flight(spec)
    zoom = max(s["m_per_px"] for s in states) / min(s["m_per_px"] for s in states)
    terrain = Terrain(size * 4, max(s["m_per_px"] for s in states) * size * 1.6 * 3.0,
                      int(np.ceil(np.log2(zoom * 1.6))) + 2, seed)
    rng = np.random.default_rng(seed + 2)
    radiance, views = [], []
    for index, st in enumerate(states):
        picture = add_lander_leg(terrain.render(size, st["x_m"], st["y_m"], st["yaw_rad"], st["m_per_px"],
                                                (st["tilt_x_rad"], st["tilt_y_rad"]), np.radians(spec.fov_deg)))
        if index >= frames - spec.dust_frames:
            picture = add_dust(picture, (index - (frames - spec.dust_frames) + 1) / spec.dust_frames, rng)
        radiance.append(picture)
        views.append(frame_to_ground(size, st["x_m"], st["y_m"], st["yaw_rad"], st["m_per_px"],
                                     (st["tilt_x_rad"], st["tilt_y_rad"]), np.radians(spec.fov_deg)))
    to_after: list[np.ndarray | None] = [None]
    to_after += [(np.linalg.inv(views[i]) @ views[i - 1])[:2] for i in range(1, frames)]
    mask = np.full((size, size), 255, np.uint8)
    mask[add_lander_leg(np.full((size, size), 0.5, np.float32)) != 0.5] = 0
    return Descent(radiance, to_after, mask)


def develop_all(samples: list[np.ndarray], plan: NormalisePlan, gains: np.ndarray | None = None) -> np.ndarray:
    return np.stack([plan.develop(s, gain=1.0 if gains is None else float(g), colour=False)
                     for s, g in zip(samples, gains if gains is not None else np.ones(len(samples)), strict=True)])


def develop_above_black(samples: list[np.ndarray], tone: ToneMap, gains: np.ndarray) -> np.ndarray:
    """8-bit frames with each gain applied to the counts above black: what an exposure gain scales.

    Written out here, apart from the build's develop, so that the bench checks the build against the
    curve the deflicker means (until this version, the build scaled the camera's black offset too)."""
    out = []
    for s, g in zip(samples, gains, strict=True):
        scaled = np.clip((s.astype(np.float32) - tone.black) * np.float32(g) / (tone.white - tone.black), 0, 1)
        out.append(np.rint(scaled * 255).astype(np.uint8))
    return np.stack(out)


def centre_log_brightness(frames: np.ndarray) -> np.ndarray:
    side = frames.shape[1]
    centre = frames[:, side // 4 : -side // 4, side // 4 : -side // 4].astype(np.float64)
    return np.log(centre.reshape(len(frames), -1).mean(axis=1))


def ffmpeg_deflicker_frames(frames: np.ndarray, size_frames: int) -> np.ndarray:
    n, h, w = frames.shape
    out = subprocess.run([find_ffmpeg(), "-v", "error", "-f", "rawvideo", "-pix_fmt", "gray", "-s", f"{w}x{h}",
                          "-r", f"{VIDEO_FPS:g}", "-i", "pipe:", "-vf", f"deflicker=size={size_frames}:mode=am",
                          "-f", "rawvideo", "-pix_fmt", "gray", "pipe:"], input=frames.tobytes(),
                         capture_output=True, check=True).stdout
    return np.frombuffer(out, np.uint8).reshape(n, h, w)


@dataclass(frozen=True, slots=True)
class Outcome:
    flicker_left: float  # nan without flicker; the gain applied above black
    flicker_left_built: float  # the same with the gain as ToneMap.lut applies it today (nan for ffmpeg)
    correction: float  # largest brightness change by the correction (the flicker-free descents)
    ramp: float  # nan without a step
    level: float
    step_found: bool | None


def scenario(descent: Descent, plan: NormalisePlan, model: str, period: float, *, rate: float, stepped: bool,
             seed: int) -> dict[str, Outcome]:
    n = len(descent.radiance)
    rng = np.random.default_rng(seed)
    low, high = AMPLITUDES[model]
    flicker = (flicker_log_gains(model, n, float(rng.uniform(low, high)), rng, period_frames=period or 7.0)
               if model != "none" else np.zeros(n))
    at = int(rng.integers(n // 4, 2 * n // 3))
    factor = 1 + float(rng.uniform(0.2, 0.4)) * float(rng.choice([-1.0, 1.0]))
    step = np.where(np.arange(n) >= at, np.log(factor), 0.0) if stepped else np.zeros(n)
    period_frames = flicker_period_frames(np.arange(n) / VIDEO_FPS, capture_times_s=np.arange(n) / rate)
    ffmpeg_size = int(min(129, 2 * (round(period_frames) // 2) + 1))

    def run(log_gain: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[int]]:
        samples = [to_samples(r * float(np.exp(g)), 12) for r, g in zip(descent.radiance, log_gain, strict=True)]
        raw = develop_all(samples, plan)
        ratios = [None] + [aligned_log_ratio(raw[i - 1], raw[i], descent.to_after[i], descent.mask)
                           for i in range(1, n)]
        gains, steps = deflicker_gains(ratios, period_frames=period_frames)
        ours = centre_log_brightness(develop_above_black(samples, plan.tone, gains))
        built = centre_log_brightness(develop_all(samples, plan, gains))
        theirs = centre_log_brightness(ffmpeg_deflicker_frames(raw, ffmpeg_size))
        return centre_log_brightness(raw), ours, built, theirs, steps

    reference = centre_log_brightness(develop_all([to_samples(r * float(np.exp(g)), 12) for r, g in
                                                   zip(descent.radiance, step, strict=True)], plan))
    raw, ours, built, theirs, steps = run(flicker + step)
    results = {}
    if stepped:
        reference_flat = centre_log_brightness(develop_all([to_samples(r, 12) for r in descent.radiance], plan))
        _, ours_flat, _, theirs_flat, _ = run(flicker)

    def left_of(out: np.ndarray) -> float:
        if model == "none":
            return float("nan")
        given = flicker_rms(raw - reference, period_frames=period_frames)
        return flicker_rms(out - reference, period_frames=period_frames) / given

    for name, out in (("descent", ours), ("ffmpeg", theirs)):
        ratio = left_of(out)
        ratio_built = left_of(built) if name == "descent" else float("nan")
        correction = float(np.abs(out - raw).max()) if model == "none" else float("nan")
        ramp = level = float("nan")
        found = None
        if stepped:
            flat = ours_flat if name == "descent" else theirs_flat
            caused = (out - flat) - (reference - reference_flat)
            base = float(np.median(caused[max(0, at - 30) : at - 8]))
            ramp = float(np.abs(caused[at - 5 : at] - base).max())
            level = float(np.abs(caused[at + 2 : at + 6] - base).max())
            found = name == "descent" and any(0 <= s - at <= 2 for s in steps)
        results[name] = Outcome(ratio, ratio_built, correction, ramp, level, found)
    return results


def deflicker_sweep(seeds: int, frames: int, size: int, *, seed: int = 0) -> None:
    plan = NormalisePlan(tone=ToneMap(black=150, white=4095, gamma=1.0), pattern=None, pattern_source="none",
                         guess=None, white_balance=(1.0, 1.0, 1.0), bits_used=12, defects=Defects.none(),
                         size=(size, size))
    outcomes: dict[tuple[str, bool], list[dict[str, Outcome]]] = {}
    start = time.perf_counter()
    draw = np.random.default_rng(seed)  # the descents and every scenario's flicker, step and phases
    for rate in RATES:
        for _ in range(seeds):
            descent = render(rate, int(draw.integers(1 << 30)), frames, size)
            for model, period in MODELS:
                name = model if not period else f"hunting {period:g}"
                for stepped in (False, True):
                    outcomes.setdefault((name, stepped), []).append(
                        scenario(descent, plan, model, period, rate=rate, stepped=stepped,
                                 seed=int(draw.integers(1 << 30))))
    seconds = time.perf_counter() - start
    count = sum(len(v) for v in outcomes.values())
    print(f"\ndeflicker sweep: {count} scenarios ({seeds} seeds x {len(RATES)} capture rates x models x step or not), "
          f"{frames} frames of {size}x{size}, the library directly (no encode), draw {seed}, {seconds:.0f} s")
    print(f"  {'flicker model':<14} {'step':<5} {'flicker left worst / median':>28} {'as built today':>16} "
          f"{'ffmpeg worst / median':>22} {'step ramp':>10} {'step level':>11} {'ffmpeg ramp':>12} {'steps found':>12}")
    for (name, stepped), runs in outcomes.items():
        ours, theirs = [r["descent"] for r in runs], [r["ffmpeg"] for r in runs]
        if name == "none":
            left = f"{'changed ' + format(100 * max(o.correction for o in ours), '.2f') + '% at most':>28}"
            built = f"{'':>16}"
            ff = f"{'changed ' + format(100 * max(o.correction for o in theirs), '.1f') + '%':>22}"
        else:
            left = f"{max(o.flicker_left for o in ours):13.3f}x / {np.median([o.flicker_left for o in ours]):.3f}x"
            as_built = [o.flicker_left_built for o in ours]
            built = f"{max(as_built):7.3f}x / {np.median(as_built):.2f}x"
            ff = f"{max(o.flicker_left for o in theirs):9.3f}x / {np.median([o.flicker_left for o in theirs]):.3f}x"
        if stepped:
            found = sum(bool(o.step_found) for o in ours)
            tail = (f"{100 * max(o.ramp for o in ours):9.1f}% {100 * max(o.level for o in ours):10.1f}% "
                    f"{100 * max(o.ramp for o in theirs):11.1f}% {found:>8}/{len(ours)}")
        else:
            tail = f"{'':>10} {'':>11} {'':>12} {'':>12}"
        print(f"  {name:<14} {'yes' if stepped else 'no':<5} {left:>28} {built:>16} {ff:>22} {tail}")
    flickering = [r["descent"].flicker_left for (name, _), runs in outcomes.items() if name != "none" for r in runs]
    over = sum(x > 0.1 for x in flickering)
    print(f"  scenarios with flicker left over 0.1x (the target): {over} of {len(flickering)}")


def gains_ms_per_frame(frames: int = 5000) -> float:
    """deflicker_gains on a long sequence (hunting, noise and two steps), ms per frame."""
    rng = np.random.default_rng(5)
    index = np.arange(frames)
    exposure = (0.08 * np.sin(index * 2 * np.pi / 7) + rng.normal(0, 0.05, frames)
                + np.where(index > frames // 3, 0.3, 0.0) - np.where(index > frames // 2, 0.5, 0.0))
    ratios: list[float | None] = [None, *np.diff(exposure).tolist()]
    return best_ms(lambda: deflicker_gains(ratios, period_frames=30.0), repeats=3) / frames


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
    parser.add_argument("--frames", type=int, default=240)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--seeds", type=int, default=3, help="descents drawn per capture rate")
    parser.add_argument("--draw", type=int, default=0, help="seed of the random draw of descents and scenarios")
    parser.add_argument("--cost-size", type=int, default=1024)
    parser.add_argument("--end-to-end", action="store_true", help="also compare whole builds on one descent")
    parser.add_argument("--keep", type=Path, help="keep the end-to-end comparison's frames and videos here")
    args = parser.parse_args()
    print(f"per {args.cost_size}x{args.cost_size} frame, one core (best of 15):")
    table = costs(args.cost_size)
    encode = table[-1][1]
    print(f"  {'step':<46} {'ms':>8} {'vs encode':>10}")
    for name, ms in table:
        print(f"  {name:<46} {ms:8.2f} {ms / encode:9.2f}x")
    gains_ms = gains_ms_per_frame()
    print(f"  {'deflicker_gains, 5,000 frames, per frame':<46} {gains_ms:8.3f} {gains_ms / encode:9.3f}x")
    deflicker_sweep(args.seeds, args.frames, args.size, seed=args.draw)
    if not args.end_to_end:
        return
    work = args.keep or Path(tempfile.mkdtemp(prefix="descent-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        rows = deflicker_table(180, 256, work)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print("\ndeflicker end to end, 180 frames of 256x256, 12% flicker, a lasting 40% drop at frame 120:")
    print(f"  {'variant':<28} {'flicker left':>13} {'ramp before step':>17} {'time':>8}")
    for name, ratio, ramp, seconds in rows:
        print(f"  {name:<28} {ratio:12.3f}x {100 * ramp:+15.1f}% {seconds:7.1f}s")


if __name__ == "__main__":
    main()
