"""Benchmark `descent build` against ffmpeg encoding the same frames with the same settings.

For each frame count it generates a descent of 1024x1024 PNG frames, then times, alternating and
keeping the best of each:
  ffmpeg   the bundled ffmpeg reading the PNGs itself in capture order (concat demuxer), same
           codec arguments
  descent  `descent build` (ordering, decoding on threads, piping into the same ffmpeg)
and reports the ratio and descent's peak memory (Python process alone; ffmpeg's is listed apart).
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
import time
from pathlib import Path

from benchlib import ffmpeg_alone
from synthetic_descent import DescentSpec, generate

CHILD = """
import json, resource, sys
from pathlib import Path
from descent.pipeline import BuildConfig, RunConfig, SourceConfig, build
from descent.stabilise import StabiliseConfig
from descent.stabilise.path import StabiliseMode
# The road alone: ordering, decoding, piping. Stabilisation has its own benchmark.
summary = build(BuildConfig(source=SourceConfig(inputs=(sys.argv[1],)), output=Path(sys.argv[2]),
                            stabilise=StabiliseConfig(mode=StabiliseMode.OFF), overwrite=True,
                            run=RunConfig(progress=False)))
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over fork and exec, so a child would report the
# benchmark's own peak (the terrain textures) instead of its own.
hwm_kb = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))
print(json.dumps({"frames": summary.output.frames, "python_rss_mb": hwm_kb / 1024,
                  "ffmpeg_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))
"""


def run_descent(frames_dir: Path, out: Path) -> tuple[float, dict[str, float]]:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", CHILD, str(frames_dir), str(out)], check=True,
                          capture_output=True, text=True)
    return time.perf_counter() - start, json.loads(done.stdout)


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
        ffmpeg_s, descent_s, memory = [], [], {}
        for _ in range(args.repeats):
            ffmpeg_s.append(ffmpeg_alone(frames_dir, root / "ffmpeg.mp4"))
            seconds, memory = run_descent(frames_dir, root / "descent.mp4")
            descent_s.append(seconds)
        rows.append((count, min(ffmpeg_s), min(descent_s), memory))
    print(f"\n{os.cpu_count()} cores, {args.size}x{args.size} grey PNG, libx264 crf 18 preset medium, "
          f"best of {args.repeats}\n")
    print("| frames | ffmpeg alone | descent build | ratio | descent peak RSS | ffmpeg peak RSS |")
    print("|---:|---:|---:|---:|---:|---:|")
    for count, f_s, d_s, memory in rows:
        print(f"| {count} | {f_s:.1f} s | {d_s:.1f} s | {d_s / f_s:.2f}x | {memory['python_rss_mb']:.0f} MB "
              f"| {memory['ffmpeg_rss_mb']:.0f} MB |")
    if len(rows) > 1:
        small, large = rows[0][3]["python_rss_mb"], rows[-1][3]["python_rss_mb"]
        print(f"\npeak memory {rows[-1][0]} vs {rows[0][0]} frames: {large / small:.2f}x")
    if not args.keep:
        shutil.rmtree(root)  # over a gigabyte of frames at the default sizes


if __name__ == "__main__":
    main()
