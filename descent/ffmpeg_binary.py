"""Which ffmpeg descent runs, for encoding and for decoding videos alike."""

from __future__ import annotations

import os
import shutil

from descent.errors import EncodeError


def find_ffmpeg(explicit: str | None = None) -> str:
    """--ffmpeg, else $DESCENT_FFMPEG, else the one imageio-ffmpeg ships, else ffmpeg on PATH."""
    for candidate, origin in ((explicit, "--ffmpeg"), (os.environ.get("DESCENT_FFMPEG"), "DESCENT_FFMPEG")):
        if candidate:
            found = shutil.which(candidate)
            if not found:
                raise EncodeError(f"{origin} {candidate}: no such executable; point it at an ffmpeg binary")
            return found
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError):
        pass
    found = shutil.which("ffmpeg")
    if not found:
        raise EncodeError("no ffmpeg found: pip install imageio-ffmpeg, or give --ffmpeg PATH")
    return found
