"""Benchmark stabilisation: descent (lock, smooth), ffmpeg's vid.stab two-pass, and none, side by side.

On generated descents (one plain, one with a static lander leg and plume dust at the end, one
whose camera tilts) it builds each variant, decodes the videos, and prints jitter (RMS of the
high-frequency part of inter-frame motion, in output pixels, on the decoded video), interframe
PSNR, keystone shake (how far consecutive frames' corners move beyond a similarity), the share
of the picture kept (1 / zoom^2) and time, with ratios against vid.stab. A last row builds lock mode
from the true motion (`--motion` with the generator's truth): what is left there is the path's
own smoothness and the metric's floor, so the rows above it show how much pass 1's errors add.
It also times pass 1 (motion measurement) alone in frames per second, on PNGs and on the same
frames as 16-bit PDS4 products, and the whole stabilised build against ffmpeg encoding the same
frames with the same settings.

vid.stab runs through the bundled ffmpeg on a lossless video of the frames in capture order:
vidstabdetect (shakiness 10, accuracy 15), then vidstabtransform (smoothing 30, optzoom 1).
Timings, not a gate: it never fails a build.

Usage: python scripts/bench_stabilise.py [--frames 240] [--size 512] [--keep DIR]
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
from benchlib import ffmpeg_alone, timed
from synthetic_archive import Sample, write_archive
from synthetic_descent import DescentSpec, generate

from descent.allocator import keep_freed_memory
from descent.build import RunConfig, SourceConfig
from descent.build.scan import scan
from descent.encode import EncodeConfig, ffmpeg_args, find_ffmpeg
from descent.frames import FrameInfo
from descent.normalise import NormaliseConfig, plan_normalisation
from descent.sources.images import probe, read_pixels
from descent.stabilise.analyse import as_decoded, measure_motion
from descent.stabilise.metrics import interframe_motion, interframe_psnr, jitter_px, keystone_px
from descent.stabilise.motion import ANALYSIS_WIDTH, FrameMotion, save_motion
from descent.stabilise.similarity import Similarity


def decode(path: Path, size: int) -> np.ndarray:
    raw = subprocess.run([find_ffmpeg(), "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "gray",
                          "pipe:"], capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, size, size)


def descent_build(frames: Path, out: Path, mode: str, *extra: str) -> tuple[float, dict]:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "descent", "build", str(frames), "-o", str(out), "-y", "-q",
                           "--json", "--stabilise", mode, *extra], capture_output=True, text=True, check=True)
    return time.perf_counter() - start, json.loads(done.stdout)


def true_motion_file(frames: Path, out: Path) -> Path:
    """The generator's truth as a motion file: what a perfect pass 1 would have measured."""
    truth = json.loads((frames / "truth.json").read_text())
    size = truth["spec"]["size_px"]
    ordered = sorted((f for f in truth["frames"] if not f["duplicate_of"]), key=lambda f: f["time_s"])

    def frame_to_ground(f: dict) -> Similarity:
        return Similarity(math.log(f["m_per_px"] * size), math.radians(f["yaw_deg"]), f["camera_x_m"],
                          f["camera_y_m"])

    motions = [FrameMotion(str(frames / ordered[0]["file"]), bridged=True)]
    for before, after in itertools.pairwise(ordered):
        step = frame_to_ground(before).then(frame_to_ground(after).inverse())
        motions.append(FrameMotion(str(frames / after["file"]), step.log_scale, step.angle_rad, step.tx, step.ty,
                                   inliers=1, inlier_ratio=1.0))
    save_motion(out, motions, analysis_width=ANALYSIS_WIDTH)
    return out


def vidstab(lossless: Path, out: Path, work: Path) -> float:
    ffmpeg = find_ffmpeg()
    trf = work / "transforms.trf"
    encode = ffmpeg_args(ffmpeg=ffmpeg, width=8, height=8, colour=False, fps=30, output=out, config=EncodeConfig())
    encode = encode[encode.index("pipe:") + 1 :]
    vf = encode.index("-vf")
    start = time.perf_counter()
    subprocess.run([ffmpeg, "-v", "error", "-y", "-i", str(lossless), "-vf",
                    f"vidstabdetect=shakiness=10:accuracy=15:result={trf}", "-f", "null", "-"], check=True)
    subprocess.run([ffmpeg, "-v", "error", "-y", "-i", str(lossless), *encode[:vf], "-vf",
                    f"vidstabtransform=input={trf}:smoothing=30:optzoom=1,{encode[vf + 1]}", *encode[vf + 2 :]],
                   check=True)
    return time.perf_counter() - start


def measure(video: np.ndarray, skip_end: int) -> tuple[float, float, float, int]:
    """Jitter, interframe PSNR and keystone shake of a decoded video, the dust frames left out, and
    the number of pairs the jitter metric could not measure (a jump there would not be counted)."""
    frames = video[: len(video) - skip_end] if skip_end else video
    motion = interframe_motion(frames)
    unmeasured = int(np.isnan(motion).any(axis=1).sum())
    return jitter_px(motion), interframe_psnr(frames), keystone_px(frames), unmeasured


def prepare(root: Path, name: str, spec: DescentSpec) -> tuple[Path, list[str], Path]:
    """The generated frames (made once, kept with --keep), their capture order, and a work folder."""
    frames = root / name
    if not (frames / "truth.json").exists():
        generate(frames, spec)
    truth = json.loads((frames / "truth.json").read_text())
    order = [f["file"] for f in sorted(truth["frames"], key=lambda f: f["time_s"])]
    work = root / f"{name}-out"
    work.mkdir(exist_ok=True)
    return frames, order, work


def scenario(name: str, spec: DescentSpec, root: Path) -> list[str]:
    frames, order, work = prepare(root, name, spec)
    size = spec.size_px
    rows: dict[str, tuple[float, float, float, int, float, float]] = {}
    t_none, _ = descent_build(frames, work / "none.mp4", "off")
    rows["none"] = (*measure(decode(work / "none.mp4", size), spec.dust_frames), 1.0, t_none)
    for mode in ("lock", "smooth"):
        seconds, summary = descent_build(frames, work / f"{mode}.mp4", mode)
        kept = 1 / summary["stabilisation"]["zoom"] ** 2
        rows[f"descent {mode}"] = (*measure(decode(work / f"{mode}.mp4", size), spec.dust_frames), kept, seconds)
    subprocess.run([sys.executable, "-m", "descent", "build", str(frames), "-o", str(work / "lossless.mkv"), "-y",
                    "-q", "--stabilise", "off", "--crf", "0"], check=True)
    t_vs = vidstab(work / "lossless.mkv", work / "vidstab.mp4", work)
    rows["vid.stab"] = (*measure(decode(work / "vidstab.mp4", size), spec.dust_frames), float("nan"), t_vs)
    if not spec.tilt_deg:  # the truth is a similarity per frame only for a camera looking straight down
        seconds, summary = descent_build(frames, work / "true.mp4", "lock", "--motion",
                                         str(true_motion_file(frames, work / "true-motion.json")))
        rows["descent lock, true motion"] = (*measure(decode(work / "true.mp4", size), spec.dust_frames),
                                             1 / summary["stabilisation"]["zoom"] ** 2, seconds)

    reference = rows["vid.stab"][0]
    lines = [f"\n{name}: {len(order)} frames of {size}x{size}"
             + (", static lander leg" if spec.occluder else "")
             + (f", {spec.dust_frames} dust frames" if spec.dust_frames else "")
             + (f", camera tilting {spec.tilt_deg} degrees" if spec.tilt_deg else ""),
             "| variant | jitter (px) | vs vid.stab | unmeasured pairs | interframe PSNR | keystone (px) "
             "| picture kept | time |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for variant, (jitter, itf, keystone, unmeasured, kept, seconds) in rows.items():
        kept_text = "n/a" if np.isnan(kept) else f"{kept:.0%}"
        lines.append(f"| {variant} | {jitter:.3f} | {jitter / reference:.2f}x | {unmeasured} | {itf:.1f} dB "
                     f"| {keystone:.2f} | {kept_text} | {seconds:.1f} s |")
    return lines


def speed(root: Path, frames_count: int, size: int) -> list[str]:
    """Pass 1 alone, and the stabilised build against ffmpeg encoding the same frames."""
    spec = DescentSpec(frames=frames_count, size_px=size, jitter_px=2.0, seed=33)
    frames, order, work = prepare(root, f"speed-{size}", spec)
    infos: list[FrameInfo] = [probe(frames / f) for f in order]
    keep_freed_memory()  # as a build does before pass 1
    pass1_fps, pass1_cpu_ms = pass1_rate(infos, as_decoded)
    archive_fps, archive_cpu_ms = pass1_rate(*archive(frames, root / f"speed-{size}-pds4"))
    # Each of the three runs three times, interleaved; the best of each counts. CPU time (of the
    # child processes, every thread) is printed beside wall time: on a shared machine it is the
    # steadier of the two.
    runs: dict[str, list[tuple[float, float]]] = {"ffmpeg": [], "off": [], "lock": []}
    for _ in range(3):
        runs["ffmpeg"].append(timed(ffmpeg_alone, frames, work / "ffmpeg.mp4")[:2])
        runs["off"].append(timed(descent_build, frames, work / "off.mp4", "off")[:2])
        runs["lock"].append(timed(descent_build, frames, work / "lock.mp4", "lock")[:2])
    best = {name: (min(r[0] for r in timed), min(r[1] for r in timed)) for name, timed in runs.items()}
    (t_ffmpeg, c_ffmpeg), (t_off, c_off), (t_lock, c_lock) = best["ffmpeg"], best["off"], best["lock"]
    return [f"\nspeed: {len(order)} frames of {size}x{size}, 2 workers, best of 3",
            "| step | time | vs ffmpeg alone | CPU time | vs ffmpeg alone |", "|---|---:|---:|---:|---:|",
            f"| ffmpeg alone (reads the PNGs, encodes) | {t_ffmpeg:.1f} s | 1.00x | {c_ffmpeg:.1f} s | 1.00x |",
            f"| descent build --stabilise off | {t_off:.1f} s | {t_off / t_ffmpeg:.2f}x | {c_off:.1f} s "
            f"| {c_off / c_ffmpeg:.2f}x |",
            f"| descent build (lock) | {t_lock:.1f} s | {t_lock / t_ffmpeg:.2f}x | {c_lock:.1f} s "
            f"| {c_lock / c_ffmpeg:.2f}x |",
            f"pass 1 (motion measurement) alone, best of 3: {pass1_fps:.0f} frames/s on the PNGs "
            f"({pass1_cpu_ms:.1f} ms CPU a frame), {archive_fps:.0f} frames/s on the same frames as 16-bit PDS4 "
            f"products ({archive_cpu_ms:.1f} ms CPU a frame)"]


def pass1_rate(infos: list[FrameInfo], prepare: Callable[[np.ndarray], np.ndarray]) -> tuple[float, float]:
    """Pass 1 over these frames on 2 workers, best of 3: frames/s, and CPU ms per frame (every thread)."""
    measure = partial(measure_motion, infos, user_mask=None, workers=2, prepare=prepare,
                      progress=lambda items, total: iter(items))
    runs = [timed(measure, who=resource.RUSAGE_SELF) for _ in range(3)]
    return len(infos) / min(r[0] for r in runs), 1000 * min(r[1] for r in runs) / len(infos)


def archive(frames: Path, products: Path) -> tuple[list[FrameInfo], Callable[[np.ndarray], np.ndarray]]:
    """The frames written as Chang'e-style 16-bit PDS4 products (raw arrays, memory-mapped: nothing
    to decompress), and the tone mapping to 8-bit for analysis that a build would use."""
    if not products.exists():
        write_archive(frames, products, layout="pds4", sample=Sample(bits=16))
    infos = scan(SourceConfig(inputs=(str(products),)), RunConfig(progress=False)).sequence.frames
    return infos, plan_normalisation(infos, NormaliseConfig(), workers=2, read=read_pixels).analysis_grey


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=240)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--speed-frames", type=int, default=150, help="frames for the timing scenario")
    parser.add_argument("--speed-size", type=int, default=1024)
    parser.add_argument("--keep", type=Path, help="generate frames here and keep them for the next run")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="descent-stab-"))
    root.mkdir(parents=True, exist_ok=True)
    base = DescentSpec(frames=args.frames, size_px=args.size, jitter_px=2.0, flicker=0.02, seed=31)
    lines = scenario("plain", base, root)
    from dataclasses import replace

    lines += scenario("leg-and-dust", replace(base, occluder=True, dust_frames=args.frames // 20, seed=32), root)
    lines += scenario("tilting", replace(base, jitter_px=0.0, tilt_deg=0.7, seed=34), root)
    lines += speed(root, args.speed_frames, args.speed_size)
    print("\n".join(lines))
    if not args.keep:
        shutil.rmtree(root)


if __name__ == "__main__":
    main()
