"""The plain data that flows between the stages.

This is the lowest layer: it imports nothing of descent's but the errors and the option enums, so
every stage can use these types without pulling in another stage (or OpenCV).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from descent.errors import FrameReadError
from descent.options import TimeSource

__all__ = ["BandStorage", "Cover", "Frame", "FrameInfo", "ProductLabel", "RawLayout", "Read", "TimeSource"]


class BandStorage(enum.StrEnum):
    BAND_SEQUENTIAL = "band sequential"  # all of band 1, then band 2 ...
    LINE_INTERLEAVED = "line interleaved"  # line 1 of each band, then line 2 ...
    SAMPLE_INTERLEAVED = "sample interleaved"  # R G B R G B ...


@dataclass(frozen=True, slots=True)
class RawLayout:
    """Where a headerless array is in a file and how its samples are laid out (from a PDS label)."""

    file: Path
    offset: int  # bytes from the start of the file to the first sample
    lines: int
    samples: int
    bands: int
    dtype: str  # numpy dtype with byte order, like ">u2"
    storage: BandStorage = BandStorage.BAND_SEQUENTIAL
    line_prefix_bytes: int = 0  # PDS3 binary prefix and suffix around every line
    line_suffix_bytes: int = 0

    @property
    def sample_bytes(self) -> int:
        return np.dtype(self.dtype).itemsize

    @property
    def line_bytes(self) -> int:
        width = self.samples * (self.bands if self.storage is BandStorage.SAMPLE_INTERLEAVED else 1)
        return self.line_prefix_bytes + width * self.sample_bytes + self.line_suffix_bytes

    @property
    def size_bytes(self) -> int:
        rows = self.lines * (1 if self.storage is BandStorage.SAMPLE_INTERLEAVED else self.bands)
        return rows * self.line_bytes

    @property
    def bit_depth(self) -> int:
        """8 or 16: the depth of the pixels read (signed and wider samples are brought to these)."""
        return 8 if self.sample_bytes == 1 else 16

    def check(self, file_size: int) -> None:
        """Refuse a layout the file cannot hold, naming what the label promised."""
        label_says = f"the label places the array at byte {self.offset}"
        if self.offset >= file_size:
            raise FrameReadError(self.file, f"{label_says}, past the end of the {file_size}-byte file; "
                                            "the label belongs to another file or the data is truncated")
        end = self.offset + self.size_bytes
        if end > file_size:
            raise FrameReadError(self.file, f"truncated: {label_says} with {self.size_bytes} bytes "
                                            f"({self.lines}x{self.samples}x{self.bands} {self.dtype}), "
                                            f"but the file ends {end - file_size} bytes short")


@dataclass(frozen=True, slots=True)
class ProductLabel:
    """The parts of a PDS label descent uses."""

    kind: str  # "PDS4", "PDS3" (detached label) or "PDS3 attached"
    label: Path  # the label file (the data file itself for an attached label)
    instrument: str | None  # INSTRUMENT_ID, or the PDS4 observing system's instrument
    start_time_s: float | None  # START_TIME / IMAGE_TIME / start_date_time, Unix seconds (UTC)
    clock_s: float | None  # SPACECRAFT_CLOCK_START_COUNT, seconds of the spacecraft clock
    cfa: str | None  # a Bayer pattern (RGGB ...), "none" when the label says there is no mosaic
    sample_bits: int | None  # bits really used in each sample (SAMPLE_BITS 10 in 16-bit words)

    @property
    def product(self) -> str:
        """A short description for the report: "PDS4 LCAM"."""
        return f"{self.kind} {self.instrument}" if self.instrument else self.kind


@dataclass(frozen=True, slots=True)
class VideoFrameRef:
    """Where a frame of a video file is: the file's video stream, the frame's place and its times there."""

    stream: int  # the video stream's index in the file (ffmpeg's 0:N)
    index: int  # the frame's number in that stream, in presentation order from 0
    pts_s: float  # presentation time, seconds from the file's start: where a player shows it
    time_s: float  # capture time: pts_s plus the part's start (creation_time, or the earlier parts' end)
    utc: bool  # time_s is UTC (every part has a creation_time)
    # Grey samples as decoded, in the video range (16 black, 235 white): the normalisation's tone
    # curve stretches them to 0-255 in the lookup it applies anyway (descent.normalise).
    video_range: bool = False


@dataclass(frozen=True, slots=True)
class FrameInfo:
    """One frame as found on disk, before its pixels are read."""

    path: Path
    width: int
    height: int
    channels: int  # 1 grey, 3 colour
    bit_depth: int  # 8 or 16 (unsigned), or 32: read as float32 (float samples, 32-bit and wider integers)
    time_s: float | None = None  # capture time, Unix seconds (or clock seconds), refined if coarse
    stamped_time_s: float | None = None  # the time as the source gave it, before refinement
    counter: int | None = None  # a frame counter found in the name, when there is one
    layout: RawLayout | None = None  # where the pixels are, for a headerless archive product
    label: ProductLabel | None = None  # what an archive product's label says
    video: VideoFrameRef | None = None  # a frame of the video file at `path` (descent.sources.video)

    @property
    def name(self) -> str:
        """The frame's name in reports, messages and keys, one per frame: the file, or `file#000123` for
        frame 123 of a video."""
        return str(self.path) if self.video is None else f"{self.path}#{self.video.index:06d}"

    @property
    def size(self) -> tuple[int, int]:
        return (self.width, self.height)


@dataclass(frozen=True, slots=True)
class Cover:
    """Where one warped frame lies, in the canvas's pixels (descent.stabilise.canvas): masks are 255 inside."""

    shown: np.ndarray  # the frame covers this canvas pixel
    ground: np.ndarray  # ... with ground that moves with the site (static lander parts left out)
    picture: np.ndarray | None  # the frame itself, warped onto the whole canvas (margins too); None: not done
    backdrop: np.ndarray  # a heavy blur of the frame's mirrored edge, for output no frame has seen


@dataclass(frozen=True, slots=True)
class Frame:
    """A frame on its way to the encoder: where it is in the sequence and its pixels."""

    index: int  # position in capture order
    info: FrameInfo
    pixels: np.ndarray  # H x W (grey) or H x W x 3 (BGR); uint8, uint16 or float32 until normalised
    digest: bytes = b""  # hash of the decoded pixels, for duplicate detection
    missing_px: int = 0  # pixels with no data (NaN, infinity, fill values in float frames): shown black
    cover: Cover | None = None  # once warped with --border fill: where it lies in the output


# A frame's pixels: descent.sources.images.read_pixels, or a decoded store's read and take.
Read = Callable[[FrameInfo], np.ndarray]
