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
Timings, not a gate: it never fails a build.

Usage: python scripts/bench_build.py [--frames 300 1200] [--size 1024] [--repeats 2] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from benchlib import ffmpeg_alone, timed
from synthetic_descent import DescentSpec, generate

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, nargs="+", default=[300, 1200])
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--keep", type=Path, help="generate frames here and keep them for the next run")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="descent-bench-"))
    rows = []
    for count in args.frames:
        frames_dir = root / f"frames-{count}-{args.size}"
        if not (frames_dir / "truth.json").exists():
            print(f"generating {count} frames of {args.size}x{args.size} in {frames_dir} ...", file=sys.stderr)
            generate(frames_dir, DescentSpec(frames=count, size_px=args.size, flicker=0.02, seed=11))
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
    print(f"\n{os.cpu_count()} cores, {args.size}x{args.size} grey PNG, libx264 crf 18 preset medium, "
          f"best of {args.repeats}; ratios to ffmpeg alone in wall time, then in CPU time\n")
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
    if not args.keep:
        shutil.rmtree(root)  # over a gigabyte of frames at the default sizes


if __name__ == "__main__":
    main()
