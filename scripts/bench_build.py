"""Benchmark `descent build` against ffmpeg encoding the same frames with the same settings.

For each frame count it generates a descent of 1024x1024 PNG frames, then times, alternating and
keeping the best of each:
  ffmpeg   the bundled ffmpeg reading the PNGs itself in capture order (concat demuxer), same
           codec arguments
  descent  `descent build --stabilise off` (ordering, decoding on threads, normalising, piping
           into the same ffmpeg), then the whole default build (stabilised, lock)
and reports the ratios, in wall time and in CPU time (every thread of every process, the steadier
figure on a shared machine), and descent's peak memory without stabilisation (Python process
alone; ffmpeg's is listed apart).
Then video in: the frames as ffmpeg encoded them above (1024x1024 H.264), read back by descent's
decode path alone (descent.sources.video: its reader over every frame, the probe apart) against two
baselines, alternating, best of each:
  null     `ffmpeg -i v.mp4 -f null -`: decoding and throwing each frame away, no frame leaves ffmpeg
  piped    ffmpeg running descent's own decode command (decode_args: the same frames, the same pixel
           layout) into a pipe that this process drains into fresh arrays and nothing else: the least
           any reader pays to have ffmpeg's frames in memory
and what pass 2 would pay per frame to take a frame from the decoded store instead of decoding it again.
Timings, not a gate: it never fails a build.

Usage: python scripts/bench_build.py [--frames 300 1200] [--size 1024] [--repeats 2] [--keep DIR] [--video-only]
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from benchlib import ffmpeg_alone, timed
from synthetic_descent import DescentSpec, generate

from descent.encode import find_ffmpeg
from descent.sources.video import VideoReader, decode_args, pipe_bytes, probe_video

CHILD = """
import json, resource, sys
from pathlib import Path
from descent.build import BuildConfig, RunConfig, SourceConfig, build
from descent.stabilise import StabiliseConfig
from descent.options import StabiliseMode
# off: the road alone (ordering, decoding, piping); lock: the whole default build.
summary = build(BuildConfig(source=SourceConfig(inputs=(sys.argv[1],)), output=Path(sys.argv[2]),
                            stabilise=StabiliseConfig(mode=StabiliseMode(sys.argv[3])), overwrite=True,
                            run=RunConfig(progress=False)))
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over fork and exec, so a child would report the
# benchmark's own peak (the terrain textures) instead of its own.
hwm_kb = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))
print(json.dumps({"frames": summary.output.frames, "python_rss_mb": hwm_kb / 1024,
                  "ffmpeg_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))
"""


def run_descent(frames_dir: Path, out: Path, mode: str) -> dict[str, float]:
    """One build in a child process; its peak memory."""
    done = subprocess.run([sys.executable, "-c", CHILD, str(frames_dir), str(out), mode], check=True,
                          capture_output=True, text=True)
    return dict(json.loads(done.stdout))


def _cpu_s() -> float:
    """CPU seconds so far of this process and its finished children (ffmpeg), every thread."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def ffmpeg_decode(video: Path) -> tuple[float, float]:
    """Wall and CPU seconds for ffmpeg to decode every frame and throw it away."""
    cpu, start = _cpu_s(), time.perf_counter()
    subprocess.run([find_ffmpeg(), "-v", "error", "-nostdin", "-i", str(video), "-f", "null", "-"], check=True)
    return time.perf_counter() - start, _cpu_s() - cpu


def piped_decode(video: Path) -> tuple[float, float]:
    """Wall and CPU seconds for descent's decode command alone, its frames drained into fresh arrays."""
    stream = probe_video(video)
    frame_bytes = stream.width * stream.height * stream.channels * stream.bit_depth // 8
    cpu, start = _cpu_s(), time.perf_counter()
    process = subprocess.Popen(decode_args(find_ffmpeg(), stream, start=0), stdout=subprocess.PIPE, bufsize=0)
    assert process.stdout is not None
    with contextlib.suppress(OSError):  # the pipe size descent's reader asks for
        fcntl.fcntl(process.stdout.fileno(), fcntl.F_SETPIPE_SZ, pipe_bytes())
    while True:
        view, got = np.empty(frame_bytes, np.uint8).data, 0
        while got < frame_bytes and (n := process.stdout.readinto(view[got:])):
            got += n
        if got < frame_bytes:
            break
    process.wait()
    return time.perf_counter() - start, _cpu_s() - cpu


def descent_decode(video: Path) -> tuple[float, float, int]:
    """Wall and CPU seconds for descent's reader to give every frame of a probed video, in order."""
    stream = probe_video(video)
    reader = VideoReader(stream)
    cpu, start = _cpu_s(), time.perf_counter()
    for index in range(stream.frames):
        reader.read(index)
    reader.close()
    return time.perf_counter() - start, _cpu_s() - cpu, stream.frames


def store_round_trip_s(shape: tuple[int, int], frames: int = 50) -> float:
    """Seconds per frame for the decoded store's way: write the pixels to a scratch file, read them back."""
    place = Path(tempfile.mkdtemp(prefix="descent-bench-store-", dir=os.environ.get("DESCENT_SCRATCH")))
    pixels = np.random.default_rng(0).integers(0, 255, shape, np.uint8)
    start = time.perf_counter()
    for k in range(frames):
        pixels.tofile(place / f"{k}.raw")
    for k in range(frames):
        np.fromfile(place / f"{k}.raw", np.uint8).reshape(shape)
        (place / f"{k}.raw").unlink()
    seconds = (time.perf_counter() - start) / frames
    shutil.rmtree(place)
    return seconds


def video_rows(root: Path, counts: list[int], repeats: int) -> None:
    print("\nvideo in: descent's reader over every frame against ffmpeg's decode thrown away (-f null) and "
          f"ffmpeg's decode piped out (descent's command, drained), same file, best of {repeats}\n")
    print("| frames | ffmpeg -f null | ffmpeg piped | descent reader | ratio to null | CPU | ratio to piped | CPU "
          "| decode per frame | store round trip |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for count in counts:
        video = root / f"video-{count}.mp4"
        if not video.exists():
            raise SystemExit(f"{video}: missing (made by the build timing)")
        runs: dict[str, list[tuple[float, float]]] = {"null": [], "piped": [], "descent": []}
        frames = 0
        for _ in range(repeats):
            runs["null"].append(ffmpeg_decode(video))
            runs["piped"].append(piped_decode(video))
            *pair, frames = descent_decode(video)
            runs["descent"].append((pair[0], pair[1]))
        (n_s, n_cpu), (p_s, p_cpu), (d_s, d_cpu) = [
            (min(t[0] for t in r), min(t[1] for t in r)) for r in runs.values()]
        stream = probe_video(video)
        store = store_round_trip_s((stream.height, stream.width, *((3,) if stream.channels == 3 else ())))
        print(f"| {frames} | {n_s:.2f} s | {p_s:.2f} s | {d_s:.2f} s | {d_s / n_s:.2f}x | {d_cpu / n_cpu:.2f}x "
              f"| {d_s / p_s:.2f}x | {d_cpu / p_cpu:.2f}x | {1000 * d_s / frames:.2f} ms | {1000 * store:.2f} ms |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, nargs="+", default=[300, 1200])
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--keep", type=Path, help="generate frames here and keep them for the next run")
    parser.add_argument("--video-only", action="store_true", help="time video in alone, not the builds")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="descent-bench-"))
    rows = []
    for count in args.frames:
        frames_dir = root / f"frames-{count}-{args.size}"
        if not (frames_dir / "truth.json").exists():
            print(f"generating {count} frames of {args.size}x{args.size} in {frames_dir} ...", file=sys.stderr)
            generate(frames_dir, DescentSpec(frames=count, size_px=args.size, flicker=0.02, seed=11))
        video = root / f"video-{count}.mp4"
        if not video.exists():  # the frames as ffmpeg encodes them: the video descent reads back below
            ffmpeg_alone(frames_dir, video)
        if args.video_only:
            continue
        timings: dict[str, list[tuple[float, float]]] = {"ffmpeg": [], "off": [], "lock": []}
        for _ in range(args.repeats):
            timings["ffmpeg"].append(timed(ffmpeg_alone, frames_dir, root / "ffmpeg.mp4")[:2])
            *off, memory = timed(run_descent, frames_dir, root / "descent.mp4", "off")
            timings["off"].append((off[0], off[1]))
            timings["lock"].append(timed(run_descent, frames_dir, root / "descent.mp4", "lock")[:2])
        # The best wall time and the best CPU time of each, apart: CPU time (every thread of every
        # process) is the steadier of the two on a shared machine.
        best = {name: (min(t[0] for t in runs), min(t[1] for t in runs)) for name, runs in timings.items()}
        rows.append((count, best, memory))
    if not args.video_only:
        _print_builds(rows, args.size, args.repeats)
    video_rows(root, args.frames, args.repeats)
    if not args.keep:
        shutil.rmtree(root)  # over a gigabyte of frames at the default sizes


def _print_builds(rows: list[tuple[int, dict[str, tuple[float, float]], dict[str, float]]], size: int,
                  repeats: int) -> None:
    print(f"\n{os.cpu_count()} cores, {size}x{size} grey PNG, libx264 crf 18 preset medium, "
          f"best of {repeats}; ratios to ffmpeg alone in wall time, then in CPU time\n")
    print("| frames | ffmpeg alone | descent, no stabilisation | ratio | CPU ratio | descent (lock) | ratio "
          "| CPU ratio | descent peak RSS | ffmpeg peak RSS |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for count, best, memory in rows:
        (f_s, f_cpu), (off, off_cpu), (lock, lock_cpu) = best["ffmpeg"], best["off"], best["lock"]
        print(f"| {count} | {f_s:.1f} s | {off:.1f} s | {off / f_s:.2f}x | {off_cpu / f_cpu:.2f}x | {lock:.1f} s "
              f"| {lock / f_s:.2f}x | {lock_cpu / f_cpu:.2f}x | {memory['python_rss_mb']:.0f} MB "
              f"| {memory['ffmpeg_rss_mb']:.0f} MB |")
    if len(rows) > 1:
        small, large = rows[0][2]["python_rss_mb"], rows[-1][2]["python_rss_mb"]
        print(f"\npeak memory {rows[-1][0]} vs {rows[0][0]} frames: {large / small:.2f}x")


if __name__ == "__main__":
    main()
