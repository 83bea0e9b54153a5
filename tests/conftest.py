"""Shared test helpers: generated descents with ground truth, and real ffmpeg probing/decoding."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from synthetic_descent import DescentSpec, generate

from descent.encode import find_ffmpeg

SMALL = DescentSpec(frames=48, size_px=128, start_altitude_m=800, hover_altitude_m=100, end_altitude_m=20,
                    jitter_px=1.0, seed=7)


@pytest.fixture(scope="session")
def make_descent(tmp_path_factory: pytest.TempPathFactory):
    """Generate a descent once per spec for the whole session; returns (folder, truth dict)."""
    cache: dict[DescentSpec, tuple[Path, dict[str, Any]]] = {}

    def _make(**changes: Any) -> tuple[Path, dict[str, Any]]:
        spec = replace(SMALL, **changes)
        if spec not in cache:
            folder = tmp_path_factory.mktemp("descent")
            generate(folder, spec)
            cache[spec] = (folder, json.loads((folder / "truth.json").read_text()))
        return cache[spec]

    return _make


def run_cli(*args: str | Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """The real command line, in a separate process, as a user runs it."""
    return subprocess.run([sys.executable, "-m", "descent", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


def probe_video(path: Path) -> dict[str, Any]:
    """Codec, size, rate and duration from `ffmpeg -i` (imageio-ffmpeg ships no ffprobe)."""
    info = subprocess.run([find_ffmpeg(), "-hide_banner", "-i", str(path)], capture_output=True, text=True).stderr
    stream = re.search(r"Video: (\w+).*?, (\w+)\(.*?(\d{2,5})x(\d{2,5}).*?, ([\d.]+) fps", info)
    duration = re.search(r"Duration: (\d+):(\d+):([\d.]+)", info)
    assert stream and duration, info
    h, m, s = duration.groups()
    return {"codec": stream.group(1), "pix_fmt": stream.group(2), "width": int(stream.group(3)),
            "height": int(stream.group(4)), "fps": float(stream.group(5)),
            "duration_s": int(h) * 3600 + int(m) * 60 + float(s), "text": info}


def decode_video(path: Path, *, width: int, height: int) -> np.ndarray:
    """Every frame of a video as grey uint8, decoded by ffmpeg: shape (frames, height, width)."""
    raw = subprocess.run([find_ffmpeg(), "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "gray",
                          "pipe:"], capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, height, width)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 99.0 if mse == 0 else 10 * np.log10(255.0**2 / mse)
