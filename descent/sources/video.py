"""Video files as input: MP4, MOV, MKV, AVI, WebM and GIF, one file or several parts joined in time.

Every frame of a video becomes a FrameInfo like an image file's: `path` is the video file,
`video` (a VideoFrameRef) says which frame of it, and `name` (`descent.mp4#000123`) tells the
frames apart in reports, messages and keys. Every stage then works on them as on frames.

Probing, without ffprobe (imageio-ffmpeg ships ffmpeg alone), three cheap runs of ffmpeg:
- `ffmpeg -hide_banner -i FILE`: the streams, the first video stream's size and pixel format,
  the container's `creation_time`. Attached pictures (cover art), audio, subtitle and data
  streams are ignored.
- `ffmpeg -i FILE -map 0:N -c copy -f framecrc -`: every packet's pts and duration in the
  stream's time base (`#tb 0: 1/15360`), without decoding. Packets come in decode order, so the
  pts are sorted (B-frames are fine). Packets an edit list discards (flag 0x4) are left out, as the
  decoder drops them. Keyframes are the packets with no `F=` flags: the seek points. AVI stores no
  presentation times; there the packets' decode times (at the container's constant rate) are used.
  Timestamps are ffmpeg's without `-copyts`: shifted so the file starts at 0, which is where a
  player shows the first frame (an MP4 with a start offset, an MPEG-TS starting at 1.4 s, a cut
  with an edit list: the decode and the probe agree, tests/test_video.py checks them).
- a decode of the first keyframes, shrunk to 64x64: a YUV or RGB video whose chroma is neutral
  (a grey camera's frames encoded as yuv420p; the little colour a lossy codec rings around edges
  allowed) is read as grey, else as BGR.
  Sources of more than 8 bits (yuv420p10le, gray12le, rgb48 ...) are read as 16 bits.

Times: each frame's presentation time is its capture time, so a variable frame rate is kept and
`--realtime` follows it. A file's start is its `creation_time` (UTC) when every part has one, else
0. Several parts (cameras split long recordings) are joined in time order: by creation_time when
every part has one, else in natural name order; each part starts where the one before it ended
(its last pts plus that frame's duration, or the usual interval when the file gives the last frame
less than half of it, as muxers that do not know write 0 or 1 tick), unless creation_times say the
recording paused for longer than JOIN_PAUSE_S (creation_time is whole seconds: a smaller
difference is rounding).
Display rotation is not applied (`-noautorotate`): the frames are as the camera stored them.

Reading: one ffmpeg process per file streams raw frames from a thread a few frames ahead: a grey
picture in 8-bit YUV as its Y plane copied out (`extractplanes=y`), others converted by ffmpeg to
gray16le, bgr24 or bgr48le. The Y plane is given as decoded, in the video range 16-235
(VideoFrameRef.video_range): the normalisation stretches it to 0-255 within the lookup table it
applies to every frame anyway, exactly as ffmpeg's conversion to gray rounds it (that conversion
costs swscale about half as much again as the decode, and a stretch here a further 6%).
scripts/bench_build.py compares the reader with ffmpeg's decode piped out (the same command, its
frames drained by a plain loop) and with `-f null` (no frame leaves ffmpeg, a floor no pipe
reaches: ffmpeg writing the raw frames to /dev/null alone costs 1.05x to 1.1x it); the README
gives the figures. A window of the last frames read serves the readers
that ask for a frame again (ordered_map's workers ask in nearly increasing order). A read
backwards beyond the window, or forwards past a keyframe far ahead (the normalisation sample, the static-mask pairs),
restarts ffmpeg seeking to the keyframe at or before the frame (`-ss` before `-i`: ffmpeg decodes
from that keyframe and drops what comes before the time asked for). So memory stays flat whatever
the length, and each pass over the video costs one decode. Audio is ignored.

Between the passes the frames are decoded again rather than kept in the decoded store
(descent.sources.decoded.worth_keeping says no). Measured on the same video, a scratch round trip
(write the frame, read it back) took 3.7 to 7.3 ms a frame against 6.6 to 7.9 ms to decode it
again: no clear gain, while the decode runs in ffmpeg's process beside the workers, and a video
holds far more frames than a folder (an hour of 1080p colour at 30 frames a second would be
220 GB of scratch).
"""

from __future__ import annotations

import atexit
import bisect
import collections
import contextlib
import fcntl
import functools
import io
import logging
import queue
import re
import subprocess
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, cast

import numpy as np

from descent.clock import parse_time_text
from descent.errors import DescentError, FrameReadError
from descent.ffmpeg_binary import find_ffmpeg
from descent.frames import FrameInfo, VideoFrameRef
from descent.options import MAX_VIDEO_SIDE_PX

log = logging.getLogger("descent")

VIDEO_SUFFIXES = frozenset({".mp4", ".m4v", ".mov", ".mkv", ".avi", ".webm", ".gif"})
JOIN_PAUSE_S = 2.0  # creation_time is whole seconds: parts further apart than this paused in between
CHROMA_SAMPLE_KEYFRAMES = 16  # keyframes decoded to tell a grey video from a colour one
NEUTRAL_CHROMA = 3  # |U - 128| and |V - 128| at most this in 99% of the pixels, and
NEUTRAL_CHROMA_MEAN = 0.5  # ... at most this on average: grey
# Frames kept for readers that ask again, at most (and at most WINDOW_FRAMES). The motion pass's
# workers each take a run of 16 consecutive frames (descent.stabilise.analyse.CHUNK_FRAMES), so two
# workers ask 16 to 32 frames apart: a window shorter than that restarted the decoder on nearly
# every frame (45 starts for 150 frames, each decoding from the keyframe before).
WINDOW_BYTES = 256 << 20
WINDOW_FRAMES = 64
AHEAD_FRAMES = 3  # decoded ahead of the readers while they work
SEEK_AHEAD_FRAMES = 48  # a read this far past the decoder restarts it at a keyframe instead of decoding through
OPEN_READERS = 4  # decoders kept running at once (the least recently used is stopped)
PROBE_TIMEOUT_S = 600.0  # framecrc reads the whole file (no decoding): minutes only for a huge file on a slow disk
_PIPE_BYTES = 1 << 22  # the pipe from ffmpeg: a few frames, so ffmpeg is not held up by each read (or less)

_STREAM = re.compile(r"^\s*Stream #\d+:(\d+)(?:\[[^\]]*\])?(?:\([^)]*\))?: (\w+): (.*)$")
_CREATION = re.compile(r"^\s*creation_time\s*:\s*(\S+)")
_TIME_BASE = re.compile(r"^#tb (\d+): (\d+)/(\d+)")
_FLAGS = re.compile(r"F=0x([0-9A-Fa-f]+)")
_NO_PTS = -(1 << 63)
_DISCARD = 0x4  # AV_PKT_FLAG_DISCARD: before an edit list's start, decoded but never shown
# The bits at the end of a pixel format's name that mean more than 8 bits a sample (rgb48: 3 x 16, rgba64: 4 x 16).
_DEEP_SAMPLES = frozenset({9, 10, 12, 14, 16, 48, 64})


@dataclass(frozen=True, slots=True)
class VideoStream:
    """What the probe found in one video file: its video stream and every frame's presentation time."""

    file: Path
    stream: int  # index of the video stream in the file (ffmpeg's 0:N)
    codec: str
    pix_fmt: str  # the decoder's pixel format (yuv420p, gray, bgra ...)
    width: int
    height: int
    channels: int  # 1 grey, 3 colour: what reading gives
    bit_depth: int  # 8 or 16
    pts_s: tuple[float, ...]  # presentation times, sorted, seconds from the file's start
    keyframes: tuple[int, ...]  # frames (presentation order) a decode can start at
    end_s: float  # when the last frame's display ends
    creation_s: float | None  # creation_time, Unix seconds UTC
    other_streams: tuple[str, ...]  # the streams ignored: "audio", "subtitle" ...
    full_range: bool = False  # YUV samples use 0-255 (yuvj, "pc"), not the video range 16-235

    @property
    def frames(self) -> int:
        return len(self.pts_s)

    @property
    def luma_only(self) -> bool:
        """A grey picture in 8-bit planar YUV: its Y plane is copied out as it is (see decode_args)."""
        fmt = self.pix_fmt
        return self.channels == 1 and self.bit_depth == 8 and fmt.startswith("yuv") and not fmt.endswith("be")

    @property
    def video_range(self) -> bool:
        """Its Y plane, as read, is in the video range 16-235 (stretched by the tone curve: descent.normalise)."""
        return self.luma_only and not self.full_range

    @property
    def out_pix_fmt(self) -> str:
        """What ffmpeg is asked for: descent's layout (grey or BGR, 8 or 16 bits little-endian)."""
        return {(1, 8): "gray", (1, 16): "gray16le", (3, 8): "bgr24", (3, 16): "bgr48le"}[
            (self.channels, self.bit_depth)]


def is_video(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_SUFFIXES


def _run(args: list[str], path: Path, what: str, *, text: bool) -> subprocess.CompletedProcess[Any]:
    try:
        return subprocess.run(args, capture_output=True, text=text, stdin=subprocess.DEVNULL, timeout=PROBE_TIMEOUT_S)
    except OSError as exc:
        raise DescentError(f"{args[0]}: cannot start ffmpeg to {what} ({exc.strerror or exc}); "
                           "pip install imageio-ffmpeg or set DESCENT_FFMPEG") from None
    except subprocess.TimeoutExpired:
        raise FrameReadError(path, f"ffmpeg took more than {PROBE_TIMEOUT_S:g} s to {what}") from None


def _split_top_level(text: str) -> list[str]:
    """`h264 (High), yuv420p(tv, bt709), 64x64` -> its parts, commas inside brackets kept."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += (ch in "([") - (ch in ")]")
        if ch == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    parts.append(text[start:].strip())
    return parts


@dataclass(frozen=True, slots=True)
class _Header:
    stream: int
    codec: str
    pix_fmt: str
    width: int
    height: int
    creation_s: float | None
    others: tuple[str, ...]
    full_range: bool


def parse_header(path: Path, stderr: str) -> _Header:
    """The first video stream (not an attached picture) and the container's creation_time, from `ffmpeg -i`."""
    creation_s: float | None = None
    video: tuple[int, str] | None = None
    others: list[str] = []
    seen_stream = False
    for line in stderr.splitlines():
        created = _CREATION.match(line)
        if created and not seen_stream and creation_s is None:
            parsed = parse_time_text(created.group(1))
            creation_s = parsed[0] if parsed and parsed[1] else None
        stream = _STREAM.match(line)
        if not stream:
            continue
        seen_stream = True
        index, kind, description = int(stream.group(1)), stream.group(2).lower(), stream.group(3)
        if kind == "video" and video is None and "(attached pic)" not in description:
            video = (index, description)
        else:
            others.append("cover picture" if kind == "video" else kind)
    if video is None:
        reason = next((line.split(": ", 1)[-1] for line in stderr.splitlines()
                       if "Invalid data" in line or "No such file" in line or "Permission denied" in line), None)
        raise FrameReadError(path, f"not a video ffmpeg can read ({reason})" if reason else "no video stream")
    index, description = video
    parts = _split_top_level(description)
    codec = parts[0].split()[0]
    pix_fmt = parts[1].split("(")[0].strip() if len(parts) > 1 else "none"
    details = parts[1].partition("(")[2].rstrip(")").split(", ") if len(parts) > 1 else []
    full_range = pix_fmt.startswith("yuvj") or "pc" in details
    size = next((m for p in parts[1:] if (m := re.match(r"(\d+)x(\d+)", p))), None)
    if size is None:
        raise FrameReadError(path, f"the video stream has no size ({description})")
    width, height = int(size.group(1)), int(size.group(2))
    if not (0 < width <= MAX_VIDEO_SIDE_PX and 0 < height <= MAX_VIDEO_SIDE_PX):
        raise FrameReadError(path, f"the video claims {width}x{height} pixels, more than descent reads "
                                   f"({MAX_VIDEO_SIDE_PX} a side)")
    return _Header(index, codec, pix_fmt, width, height, creation_s, tuple(others), full_range)


@dataclass(frozen=True, slots=True)
class PacketTimes:
    pts_s: tuple[float, ...]  # sorted
    keyframes: tuple[int, ...]  # positions in pts_s
    end_s: float


def parse_framecrc(path: Path, text: str) -> PacketTimes:
    """Presentation times from `-c copy -f framecrc` (decode order, in the stream's time base), sorted."""
    time_base, packets = _packets(text)
    if time_base is None or not packets:
        raise FrameReadError(path, "the video stream has no frames")
    if any(p[0] == _NO_PTS for p in packets):  # AVI: no presentation times, decode times at the container's rate
        packets = [(dts, dts, duration, key) for _, dts, duration, key in packets]
    packets.sort(key=lambda p: p[0])
    stamps = [p[0] for p in packets]
    if len(set(stamps)) < len(stamps):
        raise FrameReadError(path, "frames share a presentation time; the video's timestamps are damaged")
    last_duration = packets[-1][2]
    usual = int(np.median(np.diff(stamps))) if len(stamps) > 1 else max(last_duration, 1)
    if last_duration < usual / 2:  # a muxer that did not know writes 0 or 1 tick: the usual interval then
        last_duration = usual
    keyframes = tuple(i for i, p in enumerate(packets) if p[3]) or (0,)
    return PacketTimes(tuple(float(p * time_base) for p in stamps), keyframes,
                       float((stamps[-1] + last_duration) * time_base))


def _packets(text: str) -> tuple[Fraction | None, list[tuple[int, int, int, bool]]]:
    """The time base of stream 0, and its packets (pts, dts, duration, keyframe) but those discarded."""
    time_base: Fraction | None = None
    packets: list[tuple[int, int, int, bool]] = []
    for line in text.splitlines():
        if line.startswith("#"):
            tb = _TIME_BASE.match(line)
            if tb and tb.group(1) == "0":
                time_base = Fraction(int(tb.group(2)), int(tb.group(3)))
            continue
        fields = line.split(",")
        if len(fields) < 6:
            continue
        flags_found = _FLAGS.search(line)
        flags = int(flags_found.group(1), 16) if flags_found else 1  # no flags written: a keyframe
        if not flags & _DISCARD:
            packets.append((int(fields[2]), int(fields[1]), int(fields[3]), flags_found is None))
    return time_base, packets


def _is_grey(path: Path, ffmpeg: str, header: _Header) -> bool:
    """Whether a video's pictures carry no colour: its pixel format, else the chroma of its first keyframes."""
    fmt = header.pix_fmt
    if fmt.startswith(("gray", "ya", "y8", "y16", "monow", "monob")):
        return True
    planes = _chroma_sample(path, ffmpeg, header, keyframes_only=True)
    if planes.shape[0] == 0:  # a cut whose only keyframes lie before its edit list's start
        planes = _chroma_sample(path, ffmpeg, header, keyframes_only=False)
    deviation = np.abs(planes[:, 1:].astype(np.int16) - 128)
    # A lossy codec rings a little colour around the edges of a grey picture: judged by the bulk, not the worst.
    return float(deviation.mean()) <= NEUTRAL_CHROMA_MEAN and float(np.percentile(deviation, 99)) <= NEUTRAL_CHROMA


def _chroma_sample(path: Path, ffmpeg: str, header: _Header, *, keyframes_only: bool) -> np.ndarray:
    """The first frames (keyframes alone: cheap), shrunk to 64x64 YUV 4:4:4: frames x planes x pixels."""
    skip = ["-skip_frame", "nokey"] if keyframes_only else []
    args = [ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", *skip, "-noautorotate", "-i", str(path),
            "-map", f"0:{header.stream}", "-frames:v", str(CHROMA_SAMPLE_KEYFRAMES),
            "-vf", "scale=64:64:flags=area,format=yuv444p", "-fps_mode", "passthrough", "-f", "rawvideo", "pipe:1"]
    done = _run(args, path, "read the colours", text=False)
    data = np.frombuffer(done.stdout, np.uint8)
    planes = data[: data.size // (3 * 64 * 64) * 3 * 64 * 64].reshape(-1, 3, 64 * 64)
    if planes.shape[0] == 0 and not keyframes_only:
        raise FrameReadError(path, "ffmpeg cannot decode the video" + _tail(done.stderr))
    return planes


def _depth(pix_fmt: str) -> int:
    """16 for sources of more than 8 bits a sample (yuv420p10le, gray12le, p010le, rgb48be ...), else 8."""
    bits = re.search(r"(\d+)(?:le|be)$", pix_fmt)
    return 16 if bits and int(bits.group(1)) in _DEEP_SAMPLES else 8


def _tail(stderr: bytes | str) -> str:
    text = stderr.decode("utf-8", "replace") if isinstance(stderr, bytes) else stderr
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return f" ({' | '.join(lines[-3:])})" if lines else ""


_decoder: list[str] = []  # the ffmpeg a build was told to use (--ffmpeg), while it runs


@contextlib.contextmanager
def decoding_with(ffmpeg: str) -> Iterator[None]:
    """Probe and decode videos with this ffmpeg (the build's --ffmpeg) until the block ends."""
    _decoder.append(ffmpeg)
    try:
        yield
    finally:
        _decoder.pop()


def _ffmpeg() -> str:
    return _decoder[-1] if _decoder else find_ffmpeg()


_streams: dict[Path, VideoStream] = {}
_streams_lock = threading.Lock()


def probe_video(path: Path, *, ffmpeg: str | None = None) -> VideoStream:
    """The video stream of a file and every frame's presentation time, without decoding the frames (but a few
    keyframes, to tell grey from colour). Raises FrameReadError for a file that is not a readable video."""
    ffmpeg = ffmpeg or _ffmpeg()
    if not path.is_file():
        raise FrameReadError(path, "no such file")
    done = _run([ffmpeg, "-hide_banner", "-nostdin", "-i", str(path)], path, "read the video's header", text=True)
    header = parse_header(path, done.stderr)
    crc = _run([ffmpeg, "-nostdin", "-loglevel", "error", "-i", str(path), "-map", f"0:{header.stream}",
                "-c", "copy", "-f", "framecrc", "pipe:1"], path, "read the frame times", text=True)
    if crc.returncode != 0:
        raise FrameReadError(path, "ffmpeg cannot read the video's packets" + _tail(crc.stderr))
    times = parse_framecrc(path, crc.stdout)
    stream = VideoStream(
        file=path, stream=header.stream, codec=header.codec, pix_fmt=header.pix_fmt, width=header.width,
        height=header.height, channels=1 if _is_grey(path, ffmpeg, header) else 3, bit_depth=_depth(header.pix_fmt),
        pts_s=times.pts_s, keyframes=times.keyframes, end_s=times.end_s, creation_s=header.creation_s,
        other_streams=header.others, full_range=header.full_range)
    with _streams_lock:
        _streams[path] = stream
    return stream


def _stream_of(path: Path) -> VideoStream:
    with _streams_lock:
        known = _streams.get(path)
    return known if known is not None else probe_video(path)


@dataclass(frozen=True, slots=True)
class JoinedVideos:
    frames: list[FrameInfo]  # every frame of every part, in time order
    notes: list[str]


def join_videos(streams: Sequence[VideoStream]) -> JoinedVideos:
    """The frames of one or more videos, in time order, each with its capture time (see the module's notes).

    `streams` come in natural name order; with a creation_time on every part, they are put in that order.
    """
    grey = [s for s in streams if s.channels == 1 and s.bit_depth == 8]
    if len({s.video_range for s in grey}) > 1:
        # The video range is stretched by the sequence's one tone curve (descent.normalise): every 8-bit
        # grey part in it, or none (colour and deeper parts are converted by ffmpeg, and are not affected).
        limited = next(s for s in grey if s.video_range)
        full = next(s for s in grey if not s.video_range)
        raise DescentError(f"{limited.file.name} is grey video in the video range (16-235) but {full.file.name} is "
                           f"grey in the full range ({full.pix_fmt}): parts of one recording share a format; "
                           "re-encode one to match")
    notes: list[str] = []
    utc = all(s.creation_s is not None for s in streams)
    parts = sorted(streams, key=lambda s: s.creation_s) if utc else list(streams)  # type: ignore[arg-type, return-value]
    if len(parts) > 1:
        how = "their creation_time" if utc else "natural name order (not every part has a creation_time)"
        if [p.file for p in parts] != [s.file for s in streams]:
            how += ", which differs from their names' order"
        notes.append(f"{len(parts)} videos joined in time by {how}: {', '.join(p.file.name for p in parts)}")
    ignored = sorted({kind for s in streams for kind in s.other_streams})
    if ignored:
        notes.append(f"video files: only the pictures are read ({', '.join(ignored)} ignored)")
    frames: list[FrameInfo] = []
    start = parts[0].creation_s if utc else 0.0
    assert start is not None
    for k, part in enumerate(parts):
        if k:
            expected = start + parts[k - 1].end_s
            created = part.creation_s
            if created is not None and created - expected > JOIN_PAUSE_S:
                notes.append(f"{part.file.name} starts {created - expected:.1f} s after {parts[k - 1].file.name} "
                             "ends (its creation_time): a pause in the recording, kept")
                start = created
            else:
                start = expected
        for i, pts in enumerate(part.pts_s):
            ref = VideoFrameRef(stream=part.stream, index=i, pts_s=pts, time_s=start + pts, utc=utc,
                                video_range=part.video_range)
            frames.append(FrameInfo(path=part.file, width=part.width, height=part.height, channels=part.channels,
                                    bit_depth=part.bit_depth, counter=len(frames), video=ref))
    return JoinedVideos(frames, notes)


def decode_args(ffmpeg: str, stream: VideoStream, *, start: int) -> list[str]:
    """The ffmpeg command that streams raw frames of `stream` from frame `start` (a keyframe) on."""
    seek: list[str] = []
    if start > 0:
        # Just before the keyframe: ffmpeg seeks to it and drops every frame before this time.
        before = stream.pts_s[start] - min(0.001, (stream.pts_s[start] - stream.pts_s[start - 1]) / 2)
        seek = ["-ss", f"{before:.6f}"]
    return [ffmpeg, "-hide_banner", "-nostdin", "-nostats", "-loglevel", "error",
            *seek,  # before -i: a seek in the file, not a decode from the start
            "-noautorotate",  # the frames as stored (display rotation is metadata)
            "-i", str(stream.file),
            "-map", f"0:{stream.stream}",  # the video stream alone: audio, subtitles and data ignored
            "-fps_mode", "passthrough",  # every decoded frame once: none duplicated or dropped for a rate
            # A grey picture's Y plane copied out as it is: converting to gray costs swscale as much again
            # as the decode (the video range is stretched to 0-255 here, by a table); else descent's layout.
            *(["-vf", "extractplanes=y"] if stream.luma_only else ["-pix_fmt", stream.out_pix_fmt]),
            "-f", "rawvideo", "pipe:1"]


@functools.cache
def pipe_bytes() -> int:
    """_PIPE_BYTES, or the most an unprivileged process may ask for (Linux: /proc/sys/fs/pipe-max-size, 1 MiB
    by default; asking more fails, and the pipe would stay at 64 KiB: ffmpeg then blocks 16 times a frame)."""
    try:
        return min(_PIPE_BYTES, int(Path("/proc/sys/fs/pipe-max-size").read_text()))
    except (OSError, ValueError):
        return _PIPE_BYTES


class _Decoding:
    """One ffmpeg process streaming frames from `start` on, and the thread that reads them ahead."""

    def __init__(self, ffmpeg: str, stream: VideoStream, *, start: int) -> None:
        self.stream = stream
        self.next_index = start  # the next frame taken from `ready`
        self.frame_shape = (stream.height, stream.width, *((3,) if stream.channels == 3 else ()))
        self.dtype = np.dtype("<u2") if stream.bit_depth == 16 else np.dtype(np.uint8)
        self.frame_bytes = int(np.prod(self.frame_shape)) * self.dtype.itemsize
        self.ready: queue.Queue[np.ndarray | None] = queue.Queue(maxsize=AHEAD_FRAMES)
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=10)
        self.stopped = threading.Event()
        try:
            self.process = subprocess.Popen(decode_args(ffmpeg, stream, start=start), stdin=subprocess.DEVNULL,
                                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0)
        except OSError as exc:
            raise FrameReadError(stream.file, f"cannot start ffmpeg ({exc.strerror or exc})") from None
        assert self.process.stdout is not None
        with contextlib.suppress(OSError, AttributeError):  # Linux only; elsewhere the default pipe
            fcntl.fcntl(self.process.stdout.fileno(), fcntl.F_SETPIPE_SZ, pipe_bytes())
        threading.Thread(target=self._drain, daemon=True, name="descent-video-stderr").start()
        threading.Thread(target=self._read_ahead, daemon=True, name="descent-video").start()

    def _drain(self) -> None:
        assert self.process.stderr is not None
        with contextlib.suppress(OSError, ValueError):  # stop() closes the pipe under this loop: the end
            for line in self.process.stderr:
                self.stderr_tail.append(line.decode("utf-8", "replace").rstrip())

    def _read_ahead(self) -> None:
        out = cast(io.RawIOBase, self.process.stdout)  # unbuffered (bufsize=0): readinto fills our buffer
        while not self.stopped.is_set():
            buffer = np.empty(self.frame_bytes, np.uint8)
            view, got = buffer.data, 0
            while got < self.frame_bytes:
                try:
                    n = out.readinto(view[got:])
                except (OSError, ValueError):  # stop() closed the pipe under this read: the end
                    n = 0
                if not n:
                    break
                got += n
            frame = buffer.view(self.dtype).reshape(self.frame_shape) if got == self.frame_bytes else None
            while not self.stopped.is_set():
                try:
                    self.ready.put(frame, timeout=0.1)
                    break
                except queue.Full:
                    continue
            if frame is None:
                return

    def take(self) -> np.ndarray | None:
        """The next frame, or None at the end of the stream."""
        frame = self.ready.get()
        if frame is None:
            self.ready.put(None)  # the end stays the end for the next take
            return None
        self.next_index += 1
        return frame

    def failure(self) -> str:
        self.process.wait()
        tail = " | ".join(line for line in self.stderr_tail if line.strip())
        return f"exit code {self.process.returncode}{': ' + tail if tail else ''}"

    def stop(self) -> None:
        self.stopped.set()
        if self.process.poll() is None:
            with contextlib.suppress(OSError):
                self.process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)
        for pipe in (self.process.stdout, self.process.stderr):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()


class VideoReader:
    """Frames of one video file by their number, decoded in order by one ffmpeg, restarted only when needed.

    Thread-safe. A frame given out is the caller's, as a decoded image is: the window keeps it too, and
    hands a copy to a reader that asks for it again.
    """

    def __init__(self, stream: VideoStream, *, ffmpeg: str | None = None) -> None:
        self.stream = stream
        self.ffmpeg = ffmpeg or _ffmpeg()
        frame_bytes = stream.width * stream.height * stream.channels * stream.bit_depth // 8
        self.window_frames = max(2, min(WINDOW_FRAMES, WINDOW_BYTES // max(frame_bytes, 1)))
        self._window: collections.OrderedDict[int, np.ndarray] = collections.OrderedDict()
        self._decoding: _Decoding | None = None
        self._lock = threading.Lock()
        self.starts = 0  # ffmpeg processes started, for the tests and the benchmark

    def read(self, index: int) -> np.ndarray:
        if not 0 <= index < self.stream.frames:
            raise FrameReadError(self.stream.file, f"no frame {index}: the video has {self.stream.frames}")
        with self._lock:
            kept = self._window.get(index)
            if kept is not None:
                return kept.copy()
            decoding = self._decoding
            if decoding is None or index < decoding.next_index or self._worth_seeking(decoding.next_index, index):
                decoding = self._restart(index)
            while True:
                at = decoding.next_index
                frame = decoding.take()
                if frame is None:
                    raise FrameReadError(self.stream.file, f"frame {index}: the video ended after {at} of "
                                                           f"{self.stream.frames} frames ({decoding.failure()})")
                self._window[at] = frame
                if len(self._window) > self.window_frames:
                    self._window.popitem(last=False)
                if at == index:
                    return frame

    def _worth_seeking(self, next_index: int, index: int) -> bool:
        keyframes = self.stream.keyframes
        nearest = keyframes[bisect.bisect_right(keyframes, index) - 1]
        return nearest - next_index > SEEK_AHEAD_FRAMES

    def _restart(self, index: int) -> _Decoding:
        self.close()
        keyframes = self.stream.keyframes
        start = keyframes[max(0, bisect.bisect_right(keyframes, index) - 1)]
        self._decoding = _Decoding(self.ffmpeg, self.stream, start=start)
        self.starts += 1
        return self._decoding

    def close(self) -> None:
        """Stop ffmpeg (the window of frames stays); the next read starts it again."""
        if self._decoding is not None:
            self._decoding.stop()
            self._decoding = None


_readers: collections.OrderedDict[Path, VideoReader] = collections.OrderedDict()
_readers_lock = threading.Lock()


def reader_for(path: Path) -> VideoReader:
    """The one reader of a file in this process (the least recently used beyond OPEN_READERS is stopped)."""
    with _readers_lock:
        reader = _readers.get(path)
        if reader is not None:
            _readers.move_to_end(path)
            return reader
    stream = _stream_of(path)  # outside the lock: a probe takes a moment
    with _readers_lock:
        reader = _readers.setdefault(path, VideoReader(stream))
        _readers.move_to_end(path)
        while len(_readers) > OPEN_READERS:
            _, oldest = _readers.popitem(last=False)
            with oldest._lock:
                oldest.close()
        return reader


def read_video_frame(info: FrameInfo) -> np.ndarray:
    """A video frame's pixels, as read_pixels gives an image's: H x W grey or H x W x 3 BGR, uint8 or uint16."""
    assert info.video is not None
    return reader_for(info.path).read(info.video.index)


def close_videos() -> None:
    """Stop every decoder and forget the frames kept (at exit; a long-lived caller may call it after a build)."""
    with _readers_lock:
        readers = list(_readers.values())
        _readers.clear()
    for reader in readers:
        with reader._lock:
            reader.close()
            reader._window.clear()


atexit.register(close_videos)
