"""The ffmpeg graph and the pipe into ffmpeg.

ffmpeg-python builds the arguments; the process is run and watched here, because its stderr must
be drained all the time (a full pipe blocks ffmpeg, which then blocks our writes: a deadlock) and
a failure must leave no half-written video at the output path.
"""

from __future__ import annotations

import collections
import contextlib
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import numpy as np

from descent.errors import EncodeError, UsageError
from descent.ffmpeg_binary import find_ffmpeg
from descent.options import MAX_VIDEO_SIDE_PX
from descent.outputs import check_writable, partial_name


@dataclass(frozen=True, slots=True)
class Codec:
    encoder: str
    pix_fmt: str
    default_crf: int
    containers: tuple[str, ...]


CODECS = {
    "h264": Codec("libx264", "yuv420p", 18, (".mp4", ".mov", ".mkv")),
    "h265": Codec("libx265", "yuv420p", 20, (".mp4", ".mov", ".mkv")),
    "av1": Codec("libsvtav1", "yuv420p", 30, (".mp4", ".mkv", ".webm")),
    "prores": Codec("prores_ks", "yuv422p10le", 0, (".mov", ".mkv")),
    # The HUD alone, with its transparency, for editors (--overlay-only).
    "prores4444": Codec("prores_ks", "yuva444p10le", 0, (".mov",)),
}
# The subtitle codec each container carries: mov_text is what MP4 players and ffmpeg read back.
SUBTITLE_CODECS = {".mp4": "mov_text", ".mov": "mov_text", ".mkv": "srt", ".webm": "webvtt"}
# x264 preset names mapped to SVT-AV1's numbered presets of about the same speed.
SVT_AV1_PRESETS = {"ultrafast": 12, "superfast": 11, "veryfast": 10, "faster": 9, "fast": 8,
                   "medium": 6, "slow": 5, "slower": 4, "veryslow": 2, "placebo": 1}


@dataclass(frozen=True, slots=True)
class EncodeConfig:
    codec: str = "h264"
    crf: int | None = None  # None: the codec's default (h264 18)
    preset: str = "medium"
    ffmpeg: str | None = None  # path to an ffmpeg executable; None: find one


ENCODER_TIMEOUT_S = 120.0  # far longer than any preset takes for a frame, even veryslow at 8K

# x264 and x265 take crf 0-51, SVT-AV1 0-63; ProRes has no crf.
CRF_RANGES = {"h264": (0, 51), "h265": (0, 51), "av1": (0, 63)}


def check_encode(config: EncodeConfig) -> None:
    """Refuse a crf or preset the codec does not take, before any work is done."""
    if config.codec not in CODECS:
        raise UsageError(f"--codec {config.codec}: choose one of {', '.join(CODECS)}")
    if config.crf is not None:
        if config.codec not in CRF_RANGES:
            raise UsageError(f"--crf {config.crf}: {config.codec} has no crf; leave it out")
        low, high = CRF_RANGES[config.codec]
        if not low <= config.crf <= high:
            raise UsageError(f"--crf {config.crf}: {config.codec} takes {low} (best) to {high}")
    if config.preset not in SVT_AV1_PRESETS:
        raise UsageError(f"--preset {config.preset!r}: choose one of {', '.join(SVT_AV1_PRESETS)}")


def check_frame_size(width: int, height: int) -> None:
    """Refuse an output size no encoder here takes, before any work is done."""
    if width > MAX_VIDEO_SIDE_PX or height > MAX_VIDEO_SIDE_PX:
        raise UsageError(f"output size {width}x{height}: the encoders take at most {MAX_VIDEO_SIDE_PX} pixels a side; "
                         "give a smaller --size or --scale")


def check_output(output: Path, codec: str, *, overwrite: bool, option: str = "-o") -> None:
    """Refuse a video path that cannot be written, or whose container cannot hold the codec, before any work."""
    if codec not in CODECS:
        raise UsageError(f"--codec {codec}: choose one of {', '.join(CODECS)}")
    if output.is_dir():
        raise UsageError(f"{option} {output}: is a folder; give a file name inside it, like {output / 'landing.mp4'}")
    if output.suffix.lower() not in CODECS[codec].containers:
        raise UsageError(f"{option} {output}: {codec} goes in {' or '.join(CODECS[codec].containers)}; "
                         "change the extension")
    check_writable(output, option, overwrite=overwrite)


def ffmpeg_args(*, ffmpeg: str, width: int, height: int, colour: bool, fps: float, output: Path,
                config: EncodeConfig, alpha: bool = False) -> list[str]:
    """The whole ffmpeg command line: raw frames on stdin, one encoded video out.

    `alpha`: the frames are BGRA (the HUD alone, with its transparency).
    """
    import ffmpeg as ffmpeg_python

    codec = CODECS[config.codec]
    crf = codec.default_crf if config.crf is None else config.crf
    options: dict[str, object] = {
        "vcodec": codec.encoder,
        "pix_fmt": codec.pix_fmt,
        # BT.709 is what players assume for HD video: convert with it and say so in the stream.
        "vf": "scale=out_color_matrix=bt709:out_range=tv",
        "colorspace": "bt709", "color_primaries": "bt709", "color_trc": "bt709",
    }
    if config.codec == "prores":
        options["profile:v"] = 3  # ProRes 422 HQ
    elif config.codec == "prores4444":
        options["profile:v"] = 4  # ProRes 4444: keeps the alpha channel
        options["alpha_bits"] = 16
    elif config.codec == "av1":
        options["crf"] = crf
        options["preset"] = SVT_AV1_PRESETS.get(config.preset, 6)
    else:
        options["crf"] = crf
        options["preset"] = config.preset
    if config.codec == "h265":
        options["tag:v"] = "hvc1"  # Apple players only open HEVC in MP4 tagged hvc1
        options["x265-params"] = "log-level=error"
    if output.suffix.lower() in (".mp4", ".mov"):
        options["movflags"] = "+faststart"  # index at the front: plays while it downloads
    pix_fmt = "bgra" if alpha else ("bgr24" if colour else "gray")
    stream = ffmpeg_python.input("pipe:", format="rawvideo", pix_fmt=pix_fmt, s=f"{width}x{height}",
                                 framerate=_rate(fps))
    stream = ffmpeg_python.output(stream, str(output), format=_muxer(output), **options)
    # Global options go first: ffmpeg-python appends them after the output, where ffmpeg may ignore them.
    return [ffmpeg, "-hide_banner", "-nostats", "-loglevel", "error", "-y", *ffmpeg_python.get_args(stream)]


def subtitle_mux_args(*, ffmpeg: str, video: Path, subtitles: Path, output: Path) -> list[str]:
    """Copy a finished video and add a subtitle track: the per-frame values as text (no re-encoding)."""
    import ffmpeg as ffmpeg_python

    picture = ffmpeg_python.input(str(video))
    text = ffmpeg_python.input(str(subtitles))
    stream = ffmpeg_python.output(
        picture["v"], text["s"], str(output), format=_muxer(output),
        vcodec="copy",  # the pictures are already encoded: copy them as they are
        scodec=SUBTITLE_CODECS[output.suffix.lower()],
        # Not shown until chosen, where the container allows it: MKV does, MP4 marks its only track enabled.
        **{"metadata:s:s:0": "title=descent telemetry", "disposition:s:0": 0},
        **({"movflags": "+faststart"} if output.suffix.lower() in (".mp4", ".mov") else {}),
    )
    return [ffmpeg, "-hide_banner", "-nostats", "-loglevel", "error", "-y", *ffmpeg_python.get_args(stream)]


def _rate(fps: float) -> str:
    # 29.97 must reach ffmpeg as 30000/1001 to keep exact timestamps.
    for ntsc in (24, 30, 60):
        if abs(fps - ntsc * 1000 / 1001) < 0.005:
            return f"{ntsc * 1000}/1001"
    return f"{fps:g}"


def _muxer(output: Path) -> str:
    return {".mp4": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm"}[output.suffix.lower()]


def encoder_timeout_s() -> float:
    """How long ffmpeg may go without taking a frame before it is taken for hung ($DESCENT_ENCODER_TIMEOUT_S)."""
    try:
        value = float(os.environ.get("DESCENT_ENCODER_TIMEOUT_S", ENCODER_TIMEOUT_S))
    except ValueError:
        return ENCODER_TIMEOUT_S
    return value if value > 0 else ENCODER_TIMEOUT_S


class VideoWriter:
    """Frames in, a finished video at `output` out; on any failure, nothing at `output`.

    ffmpeg writes to a hidden temporary file beside the target (named for this run alone), renamed
    into place on success. A watchdog ends an ffmpeg that stops taking frames.
    """

    def __init__(self, output: Path, *, width: int, height: int, colour: bool, fps: float,
                 config: EncodeConfig, alpha: bool = False) -> None:
        self.output = output
        self.partial = partial_name(output)
        self.frame_shape: tuple[int, ...] = (height, width, 4) if alpha else (
            (height, width, 3) if colour else (height, width))
        self.frames_written = 0
        self.subtitles: Path | None = None  # an SRT file to add as a subtitle track when the video is done
        self.args = ffmpeg_args(ffmpeg=find_ffmpeg(config.ffmpeg), width=width, height=height,
                                colour=colour, fps=fps, output=self.partial, config=config, alpha=alpha)
        self._stderr_tail: collections.deque[str] = collections.deque(maxlen=30)
        self._process: subprocess.Popen[bytes] | None = None
        self._drain: threading.Thread | None = None
        self._timeout_s = encoder_timeout_s()
        self._writing_since: float | None = None  # when the write under way began (the watchdog reads it)
        self._stalled = False
        self._closed = threading.Event()

    def __enter__(self) -> VideoWriter:
        try:
            # Its own session: a Ctrl-C in the terminal reaches only us, and we stop ffmpeg cleanly,
            # rather than ffmpeg finishing a truncated file while we are still writing to it.
            self._process = subprocess.Popen(self.args, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                             stderr=subprocess.PIPE, start_new_session=True)
        except OSError as exc:
            raise EncodeError(f"{self.args[0]}: cannot start ffmpeg ({exc.strerror or exc})") from None
        self._drain = threading.Thread(target=self._drain_stderr, daemon=True)
        self._drain.start()
        threading.Thread(target=self._watch, daemon=True).start()
        return self

    def _drain_stderr(self) -> None:
        assert self._process is not None and self._process.stderr is not None
        for line in self._process.stderr:
            self._stderr_tail.append(line.decode("utf-8", "replace").rstrip())

    def _watch(self) -> None:
        """End ffmpeg when one write has waited longer than the timeout: the blocked write then fails."""
        while not self._closed.wait(0.25):
            since = self._writing_since
            if since is not None and time.monotonic() - since > self._timeout_s:
                self._stalled = True
                self._kill()
                return

    def _kill(self) -> None:
        process = self._process
        if process is not None and process.poll() is None:
            with contextlib.suppress(OSError):
                os.killpg(process.pid, signal.SIGKILL)  # ffmpeg and anything it started
            with contextlib.suppress(OSError):
                process.kill()

    def write(self, pixels: np.ndarray, repeat: int = 1) -> None:
        """Send one frame `repeat` times."""
        if pixels.shape != self.frame_shape or pixels.dtype != np.uint8:
            raise ValueError(f"frame of shape {pixels.shape} {pixels.dtype}, encoder expects {self.frame_shape} uint8")
        assert self._process is not None and self._process.stdin is not None
        data = np.ascontiguousarray(pixels).data
        try:
            for _ in range(repeat):
                self._writing_since = time.monotonic()
                self._process.stdin.write(data)
                self._writing_since = None
        except (BrokenPipeError, OSError):
            self._writing_since = None
            self._process.wait()
            what = (f"ffmpeg took no frame for {self._timeout_s:g} s and was stopped" if self._stalled
                    else "ffmpeg stopped reading frames")
            raise EncodeError(self._failure(what)) from None
        self.frames_written += repeat

    def _add_subtitles(self, subtitles: Path) -> None:
        muxed = partial_name(self.output, "muxing")
        args = subtitle_mux_args(ffmpeg=self.args[0], video=self.partial, subtitles=subtitles, output=muxed)
        try:
            done = subprocess.run(args, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                                  timeout=max(self._timeout_s, 60.0))
            if done.returncode != 0:
                tail = " | ".join(line for line in done.stderr.splitlines()[-5:] if line.strip())
                raise EncodeError(f"ffmpeg could not add the subtitle track (exit code {done.returncode}): {tail}")
            os.replace(muxed, self.partial)
        except subprocess.TimeoutExpired:
            raise EncodeError("ffmpeg hung while adding the subtitle track; try --no-subtitles") from None
        finally:
            muxed.unlink(missing_ok=True)

    def _failure(self, what: str) -> str:
        if self._drain is not None:
            self._drain.join(timeout=5)
        tail = " | ".join(line for line in self._stderr_tail if line.strip())
        return f"{what} (exit code {self._process.returncode if self._process else '?'}): {tail or 'no message'}"

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        process = self._process
        assert process is not None and process.stdin is not None
        try:
            self._finish(process, failed=exc_type is not None)
        finally:
            self.partial.unlink(missing_ok=True)  # renamed away on success; anything left is half a video

    def _finish(self, process: subprocess.Popen[bytes], *, failed: bool) -> None:
        assert process.stdin is not None
        if failed:
            self._kill()  # our side failed (or Ctrl-C): the video is abandoned
        with contextlib.suppress(OSError):  # ffmpeg already gone; its exit code tells why
            process.stdin.close()
        try:
            process.wait(timeout=None if failed else max(self._timeout_s, 60.0))
        except subprocess.TimeoutExpired:
            self._kill()
            process.wait()
            raise EncodeError(self._failure("ffmpeg did not finish the video and was stopped")) from None
        finally:
            self._closed.set()
            if self._drain is not None:
                self._drain.join(timeout=5)
            if process.stderr is not None:
                process.stderr.close()
        if failed:
            return
        if self.frames_written == 0:
            raise EncodeError("no frame could be encoded: every frame was unreadable or dropped")
        if process.returncode != 0:
            raise EncodeError(self._failure("ffmpeg failed"))
        if not self.partial.is_file() or self.partial.stat().st_size == 0:
            raise EncodeError(self._failure("ffmpeg exited without writing the video"))
        if self.subtitles is not None:
            self._add_subtitles(self.subtitles)
        os.replace(self.partial, self.output)
