"""What the benchmarks share: the encoder's time per frame, the yardstick the other stages are held to,
ffmpeg alone encoding a generated descent, and timing a run in wall and CPU time."""

from __future__ import annotations

import json
import re
import resource
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np

from descent.encode import EncodeConfig, ffmpeg_args, find_ffmpeg

R = TypeVar("R")


def encode_ms_per_frame(picture: np.ndarray, *, frames: int = 30) -> float:
    """libx264 (the default settings) through the bundled ffmpeg, ms per frame, on frames that move.

    Each frame is the picture shifted a little further, so the encoder does the work of real video.
    """
    height, width = picture.shape[:2]
    out = Path(tempfile.mkdtemp()) / "encode.mp4"
    args = ffmpeg_args(ffmpeg=find_ffmpeg(), width=width, height=height, colour=picture.ndim == 3, fps=30,
                       output=out, config=EncodeConfig())
    data = b"".join(np.roll(picture, 7 * k, axis=1).tobytes() for k in range(frames))
    start = time.perf_counter()
    subprocess.run(args, input=data, check=True)
    seconds = time.perf_counter() - start
    shutil.rmtree(out.parent)
    return 1000 * seconds / frames


def capture_order(frames_dir: Path) -> list[str]:
    """The frames descent encodes, in capture order (from the generator's truth; copies left out)."""
    truth = json.loads((frames_dir / "truth.json").read_text())
    return [f["file"] for f in sorted((f for f in truth["frames"] if not f["duplicate_of"]), key=lambda f: f["time_s"])]


def ffmpeg_alone(frames_dir: Path, out: Path, *, fps: float = 30.0, preset: str = "medium") -> float:
    """Seconds for the bundled ffmpeg to read the PNGs and encode them with descent's arguments.

    It reads them in capture order, as descent encodes them: in file-name order (the generator
    scrambles names, as real archives do) the encoder would get a harder, shuffled video, and
    take half as long again.
    """
    listing = out.with_suffix(".txt")
    listing.write_text("".join(f"file '{frames_dir / name}'\nduration {1 / fps:.7f}\n"
                               for name in capture_order(frames_dir)))
    encode = ffmpeg_args(ffmpeg=find_ffmpeg(), width=8, height=8, colour=False, fps=fps, output=out,
                         config=EncodeConfig(preset=preset))
    start = time.perf_counter()
    subprocess.run([find_ffmpeg(), "-v", "error", "-y", "-f", "concat", "-safe", "0", "-i", str(listing),
                    "-r", f"{fps:g}", *encode[encode.index("pipe:") + 1 :]], check=True)
    seconds = time.perf_counter() - start
    listing.unlink()
    return seconds


def timed(run: Callable[..., R], *args: object, who: int = resource.RUSAGE_CHILDREN) -> tuple[float, float, R]:
    """Wall seconds and CPU seconds of one run, and what it returned. CPU time is every thread of
    `who`: the child processes (and theirs, ffmpeg too) by default, or RUSAGE_SELF for work done in
    this process. On a shared machine it is the steadier of the two figures."""
    before = resource.getrusage(who)
    start = time.perf_counter()
    result = run(*args)
    seconds = time.perf_counter() - start
    after = resource.getrusage(who)
    return seconds, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime), result


def decode_grey(path: Path) -> np.ndarray:
    """Every frame of a video as grey uint8 (n x height x width), through the bundled ffmpeg."""
    header = subprocess.run([find_ffmpeg(), "-hide_banner", "-i", str(path)], capture_output=True, text=True).stderr
    found = re.search(r"Video: .*?, (\d{2,5})x(\d{2,5})", header)
    if found is None:
        raise ValueError(f"no video stream in {path}")
    width, height = int(found.group(1)), int(found.group(2))
    raw = subprocess.run([find_ffmpeg(), "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "gray",
                          "pipe:"], capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, height, width)


def encode_grey(frames: np.ndarray, out: Path, *, fps: float = 30.0) -> Path:
    """Grey uint8 frames (n x height x width) encoded as descent encodes (libx264, its defaults)."""
    args = ffmpeg_args(ffmpeg=find_ffmpeg(), width=frames.shape[2], height=frames.shape[1], colour=False, fps=fps,
                       output=out, config=EncodeConfig())
    subprocess.run(args, input=np.ascontiguousarray(frames).tobytes(), check=True)
    return out
