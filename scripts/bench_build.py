"""Benchmark `descent build` against ffmpeg encoding the same frames with the same settings.

For each frame count it generates a descent of 1024x1024 PNG frames, then, for each x264 preset,
times, alternating and keeping the best of each:
  ffmpeg   the bundled ffmpeg reading the PNGs itself in capture order (concat demuxer), same
           codec arguments and preset
  descent  `descent build --stabilise off` (ordering, decoding on threads, normalising, piping
           into the same ffmpeg), then the whole default build (stabilised, lock)
and reports the ratios, in wall time and in CPU time (every thread of every process, the steadier
figure on a shared machine); descent's peak memory (Python process alone; ffmpeg's is listed
apart), the scratch disk the default build's decoded store peaked at (sampled every 0.2 s), and
the start-up: from the command (its imports included) to the first frame written to ffmpeg, the
scan and the motion pass apart (both grow with the frames, and the motion pass, which deflicker
needs even unstabilised, must see every frame before the first is shown), worst of the runs.
Then video in: the frames as ffmpeg encoded them above (1024x1024 H.264), read back by descent's
decode path alone (descent.sources.video: its reader over every frame, the probe apart) against two
baselines, alternating, best of each:
  null     `ffmpeg -i v.mp4 -f null -`: decoding and throwing each frame away, no frame leaves ffmpeg
  piped    ffmpeg running descent's own decode command (decode_args: the same frames, the same pixel
           layout) into a pipe that this process drains into fresh arrays and nothing else: the least
           any reader pays to have ffmpeg's frames in memory
and what pass 2 would pay per frame to take a frame from the decoded store instead of decoding it again.
Timings, not a gate: it never fails a build.

Usage: python scripts/bench_build.py [--frames 200 1200] [--presets veryfast medium] [--size 1024] [--repeats 2]
                                     [--keep DIR] [--video-only]
(4,700 frames, the issue's long case, takes about half an hour: --frames 4700.)
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import functools
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from benchlib import ffmpeg_alone, timed
from synthetic_descent import DescentSpec, generate

from descent.encode import find_ffmpeg
from descent.sources.video import VideoReader, decode_args, pipe_bytes, probe_video

CHILD = """
import time
started = time.monotonic()
import json, resource, sys
from pathlib import Path
from descent.build import BuildConfig, RunConfig, SourceConfig, build
from descent.encode import EncodeConfig
from descent.stabilise import StabiliseConfig
from descent.options import StabiliseMode
imports_s = time.monotonic() - started
# off: the road alone (ordering, decoding, piping); lock: the whole default build.
frames, output, mode, preset, scratch = sys.argv[1:]
summary = build(BuildConfig(source=SourceConfig(inputs=(frames,)), output=Path(output),
                            stabilise=StabiliseConfig(mode=StabiliseMode(mode)), encode=EncodeConfig(preset=preset),
                            overwrite=True, run=RunConfig(progress=False, scratch=Path(scratch))))
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over fork and exec, so a child would report the
# benchmark's own peak (the terrain textures) instead of its own.
hwm_kb = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))
print(json.dumps({"frames": summary.output.frames, "python_rss_mb": hwm_kb / 1024,
                  "ffmpeg_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
                  "timings": summary.timings, "imports_s": imports_s}))
"""


class ScratchWatch:
    """The most bytes of decoded frames under a scratch directory while it runs (sampled every 0.2 s)."""

    def __init__(self, directory: Path) -> None:
        self.directory, self.peak_bytes = directory, 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> ScratchWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()

    def _watch(self) -> None:
        while not self._done.wait(0.2):
            total = 0
            for path in self.directory.glob("*/*.raw"):
                with contextlib.suppress(OSError):  # pass 2 deletes each file as it takes it
                    total += path.stat().st_size
            self.peak_bytes = max(self.peak_bytes, total)


@dataclass
class BuildRun:
    wall_s: float
    cpu_s: float
    python_rss_mb: float = 0.0
    ffmpeg_rss_mb: float = 0.0
    scratch_peak_mb: float = 0.0
    startup_s: float = 0.0  # the command to the first frame to ffmpeg, the scan and the motion pass apart


def run_descent(frames_dir: Path, out: Path, mode: str, preset: str, scratch: Path) -> BuildRun:
    """One build in a child process, timed, with its peak memory, scratch and start-up."""
    with ScratchWatch(scratch) as watch:
        command = [sys.executable, "-c", CHILD, str(frames_dir), str(out), mode, preset, str(scratch)]
        wall, cpu, done = timed(functools.partial(subprocess.run, command, check=True, capture_output=True, text=True))
    child = json.loads(done.stdout)
    timings = child["timings"]
    # The motion pass (deflicker's, even unstabilised) must see every frame before the first is shown.
    startup_s = child["imports_s"] + timings["first_frame_s"] - timings["scan_s"] - timings["measure_s"]
    return BuildRun(wall, cpu, child["python_rss_mb"], child["ffmpeg_rss_mb"], watch.peak_bytes / 1e6, startup_s)


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
    parser.add_argument("--frames", type=int, nargs="+", default=[200, 1200])
    parser.add_argument("--presets", nargs="+", default=["veryfast", "medium"])
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--keep", type=Path, help="generate frames here and keep them for the next run")
    parser.add_argument("--video-only", action="store_true", help="time video in alone, not the builds")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="descent-bench-"))
    scratch = root / "scratch"
    scratch.mkdir(exist_ok=True)
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
        for preset in args.presets:
            runs: dict[str, list[BuildRun]] = {"ffmpeg": [], "off": [], "lock": []}
            for _ in range(args.repeats):
                runs["ffmpeg"].append(BuildRun(*timed(functools.partial(
                    ffmpeg_alone, frames_dir, root / "ffmpeg.mp4", preset=preset))[:2]))
                for mode in ("off", "lock"):
                    runs[mode].append(run_descent(frames_dir, root / "descent.mp4", mode, preset, scratch))
            rows.append((count, preset, runs))
    if not args.video_only:
        _print_builds(rows, args.size, args.repeats)
    video_rows(root, args.frames, args.repeats)
    if not args.keep:
        shutil.rmtree(root)  # over a gigabyte of frames at the default sizes


def _print_builds(rows: list[tuple[int, str, dict[str, list[BuildRun]]]], size: int, repeats: int) -> None:
    # The best wall time and the best CPU time of each, apart: CPU time (every thread of every
    # process) is the steadier of the two on a shared machine.
    print(f"\n{os.cpu_count()} cores, {size}x{size} grey PNG, libx264 crf 18, best of {repeats}; ratios to ffmpeg "
          "alone (same preset) in wall time, then in CPU time\n")
    print("| frames | preset | ffmpeg alone | `--stabilise off` | CPU | default build (lock) | CPU "
          "| peak RSS (descent / ffmpeg) | scratch peak | start-up |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for count, preset, runs in rows:
        wall = {name: min(r.wall_s for r in rs) for name, rs in runs.items()}
        cpu = {name: min(r.cpu_s for r in rs) for name, rs in runs.items()}
        lock = runs["lock"][-1]
        print(f"| {count} | {preset} | {wall['ffmpeg']:.1f} s | {wall['off'] / wall['ffmpeg']:.2f}x "
              f"| {cpu['off'] / cpu['ffmpeg']:.2f}x | {wall['lock'] / wall['ffmpeg']:.2f}x "
              f"| {cpu['lock'] / cpu['ffmpeg']:.2f}x | {lock.python_rss_mb:.0f} / {lock.ffmpeg_rss_mb:.0f} MB "
              f"| {lock.scratch_peak_mb:.0f} MB | {max(r.startup_s for r in runs['off'] + runs['lock']):.2f} s |")


if __name__ == "__main__":
    main()
