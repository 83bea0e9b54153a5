"""What the benchmarks share: the encoder's time per frame, the yardstick the other stages are held to."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from descent.encode import EncodeConfig, ffmpeg_args, find_ffmpeg


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
