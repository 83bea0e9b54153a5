"""The CPU budget of a 1024x1024 frame: each stage of a build timed alone, on one thread, against the encoder.

Issue 18 asks where descent's time goes before anything is optimised. This runs each stage's own
code (the functions a build calls, not copies of them) on frames of a generated descent, one thread
(OpenCV's own threads off), and prints CPU milliseconds a frame, median of the frames, beside
what ffmpeg spends encoding a frame from raw grey (x264 veryfast and medium, the default crf),
and what ffmpeg's own conversion of a grey frame to yuv420p costs. A build runs these stages on
2 workers and a background thread beside ffmpeg, so the sum is CPU, not wall time.

Stages, in a build's order: decode (the PNG), hashing (the duplicate check), develop (tone curve
and deflicker gain), pass 1 motion (analysis copy and the pair's motion), brightness (the pair's
aligned ratio), warp (to the output, bicubic, as --border fill does), fill (cover_of on the
worker and the canvas's compose), the pipe (a frame written to a process that reads it). The HUD
is not timed here (it needs a telemetry track; it draws on a fifth of the frame at most).

Timings, not a gate: it never fails a build.

The frames are 24 consecutive ones from the middle of a 300-frame descent: pairs as far apart as
a real capture rate makes them (24 frames spread over a whole descent would be 12% zoom steps,
which the motion pass meets only at 1 frame/s, and which take it down its slower paths).

Usage: python scripts/bench_stages.py [--frames 24] [--keep DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from benchlib import capture_order
from synthetic_descent import DescentSpec, generate

from descent.encode import EncodeConfig, ffmpeg_args, find_ffmpeg
from descent.normalise import NormaliseConfig, plan_normalisation
from descent.normalise.deflicker import aligned_log_ratio
from descent.sources.images import probe, read_pixels
from descent.stabilise.canvas import MARGIN_EVERY, Canvas, cover_of
from descent.stabilise.motion import analysis_copy, measure_pair
from descent.stabilise.similarity import to_pixels, warp_edge_replicated

SIZE = 1024
DESCENT_FRAMES = 300


def thread_ms(run: Callable[[], object]) -> float:
    """CPU milliseconds of one call on this thread."""
    start = time.thread_time()
    run()
    return 1000 * (time.thread_time() - start)


def median_ms(runs: list[Callable[[], object]]) -> float:
    return float(np.median([thread_ms(run) for run in runs]))


def stage_rows(paths: list[Path]) -> list[tuple[str, float]]:
    infos = [probe(path) for path in paths]
    pixels = [read_pixels(info) for info in infos]
    plan = plan_normalisation(infos, NormaliseConfig(), workers=1, read=read_pixels)
    analysis = [analysis_copy(plan.analysis_grey(p)) for p in pixels]
    pairs = list(itertools.pairwise(analysis))
    motions = [measure_pair(a, b) for a, b in pairs]
    # Two placements a lock build meets: the frame covering the output (a site near the centre, late
    # in a descent), and the frame leaving a sixth of it to the fill (a site off the centre, early).
    placements = {"covering": np.array([[1.02, 0.01, -18.0], [-0.01, 1.02, -8.0], [0.0, 0.0, 1.0]]),
                  "a sixth uncovered": np.array([[0.98, 0.02, 150.0], [-0.02, 0.98, 40.0], [0.0, 0.0, 1.0]])}
    developed = [plan.develop(p, gain=1.03, colour=False) for p in pixels]

    def warp(d: np.ndarray, m: np.ndarray) -> np.ndarray:
        return warp_edge_replicated(d, m, (SIZE, SIZE), flags=cv2.INTER_CUBIC)

    def fill_runs(matrix: np.ndarray) -> list[Callable[[], object]]:
        """cover_of and compose for each frame, in order, on one canvas (the frame's motion: a small drift)."""
        canvas = Canvas(SIZE, SIZE)
        moved = np.eye(3)
        moved[:2, 2] = (2.0, 1.0)
        warped = [warp(d, matrix) for d in developed]

        def fill(k: int) -> Callable[[], object]:
            def run() -> object:
                cover = cover_of(developed[k], matrix, width=SIZE, height=SIZE, static=None,
                                 with_margins=k % MARGIN_EVERY == 0)
                return canvas.compose(warped[k].copy(), cover, moved if k else None, usable=True)
            return run
        return [fill(k) for k in range(len(developed))]

    rows = [
        ("decode (PNG, cv2.imdecode)", median_ms([lambda p=p: read_pixels(probe(p)) for p in paths])),
        ("hashing (sha1 of the pixels, the duplicate check)",
         median_ms([lambda p=p: hashlib.sha1(p.data, usedforsecurity=False).digest() for p in pixels])),
        ("develop (tone curve and deflicker gain, one lookup)",
         median_ms([lambda p=p: plan.develop(p, gain=1.03, colour=False) for p in pixels])),
        ("pass 1: analysis copy (512 px grey)",
         median_ms([lambda p=p: analysis_copy(plan.analysis_grey(p)) for p in pixels])),
        ("pass 1: motion of a pair", median_ms([lambda a=a, b=b: measure_pair(a, b) for a, b in pairs])),
        ("pass 1: motion of a pair, first estimate only (deflicker without stabilisation)",
         median_ms([lambda a=a, b=b: measure_pair(a, b, precise=False) for a, b in pairs])),
        ("pass 1: brightness of a pair (aligned ratio)",
         median_ms([lambda a=a, b=b, m=m: aligned_log_ratio(a, b, to_pixels(m.transform, *a.shape[::-1])
                                                            if m else None, None)
                    for (a, b), m in zip(pairs, motions, strict=True)])),
        *[(f"warp to the output (bicubic, one interpolation), frame {name}",
           median_ms([lambda d=d, m=m: warp(d, m) for d in developed])) for name, m in placements.items()],
        *[(f"fill (cover_of and the canvas's compose), frame {name}", median_ms(fill_runs(m)))
          for name, m in placements.items()],
        ("the pipe (a frame written to a reading process)", pipe_ms(developed)),
    ]
    return rows


def pipe_ms(frames: list[np.ndarray]) -> float:
    """CPU of this process writing frames into a pipe that `cat` drains (cat's side not counted)."""
    reader = subprocess.Popen(["cat"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    assert reader.stdin is not None
    start = time.thread_time()
    for frame in frames:
        reader.stdin.write(frame.data)
    elapsed = time.thread_time() - start
    reader.stdin.close()
    reader.wait()
    return 1000 * elapsed / len(frames)


def ffmpeg_ms(frames: list[np.ndarray], args: list[str]) -> float:
    """CPU milliseconds a frame of an ffmpeg command fed `frames` as raw grey on stdin (every thread)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(args, input=b"".join(f.tobytes() for f in frames), check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return 1000 * ((after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)) / len(frames)


def encoder_rows(frames: list[np.ndarray], work: Path) -> list[tuple[str, float]]:
    rows = []
    raw_in = [find_ffmpeg(), "-v", "error", "-nostdin", "-f", "rawvideo", "-pix_fmt", "gray", "-s",
              f"{SIZE}x{SIZE}", "-r", "30", "-i", "pipe:"]
    rows.append(("ffmpeg: grey to yuv420p alone (no encoding)",
                 ffmpeg_ms(frames, [*raw_in, "-pix_fmt", "yuv420p", "-f", "null", "-"])))
    for preset in ("veryfast", "medium"):
        args = ffmpeg_args(ffmpeg=find_ffmpeg(), width=SIZE, height=SIZE, colour=False, fps=30,
                           output=work / f"{preset}.mp4", config=EncodeConfig(preset=preset))
        rows.append((f"ffmpeg: x264 {preset}, conversion included", ffmpeg_ms(frames, args)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--keep", type=Path, help="generate frames here and keep them for the next run")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="descent-bench-stages-"))
    frames_dir = root / f"stages-{DESCENT_FRAMES}-{SIZE}"
    if not (frames_dir / "truth.json").exists():
        print(f"generating {DESCENT_FRAMES} frames of {SIZE}x{SIZE} in {frames_dir} ...", file=sys.stderr)
        generate(frames_dir, DescentSpec(frames=DESCENT_FRAMES, size_px=SIZE, flicker=0.02, seed=11))
    order = capture_order(frames_dir)
    middle = (len(order) - args.frames) // 2
    paths = [frames_dir / name for name in order[middle : middle + args.frames]]
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        rows = stage_rows(paths)
    finally:
        cv2.setNumThreads(threads)
    developed = [read_pixels(probe(p)) for p in paths]
    encoders = encoder_rows(developed, root)
    print(f"\nCPU per {SIZE}x{SIZE} grey frame, one thread, median of {len(paths)} consecutive frames "
          "(ffmpeg: every thread, mean)\n")
    print("| stage | CPU ms a frame |")
    print("|---|---:|")
    for name, ms in rows:
        print(f"| {name} | {ms:.2f} |")
    # One frame goes through one placement: the total takes the one leaving a sixth to the fill.
    one_placement = [ms for name, ms in rows if not name.endswith("frame covering") and "first estimate" not in name]
    print(f"| **descent's stages, total (frame a sixth uncovered)** | **{sum(one_placement):.2f}** |")
    for name, ms in encoders:
        print(f"| {name} | {ms:.2f} |")
    if not args.keep:
        shutil.rmtree(root)


if __name__ == "__main__":
    main()
