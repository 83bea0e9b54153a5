"""The plain data that flows between the stages."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from descent.sources.label import ProductLabel
    from descent.sources.raw import RawLayout


class TimeSource(enum.StrEnum):
    """Where the capture times of a sequence came from, most trusted first."""

    INDEX = "index"  # a sidecar CSV given with --times
    LABEL = "label"  # a product label's START_TIME (UTC) or spacecraft clock
    NAME = "name"  # a timestamp in the file name
    EXIF = "exif"  # DateTimeOriginal + SubSecTimeOriginal (+ OffsetTimeOriginal)
    MTIME = "mtime"  # file modification time: often the time of a copy, not of capture
    NONE = "none"  # no times: natural name order


@dataclass(frozen=True, slots=True)
class FrameInfo:
    """One frame as found on disk, before its pixels are read."""

    path: Path
    width: int
    height: int
    channels: int  # 1 grey, 3 colour
    bit_depth: int  # bits per sample in the file: 8 or 16
    time_s: float | None = None  # capture time, Unix seconds (or clock seconds), refined if coarse
    stamped_time_s: float | None = None  # the time as the source gave it, before refinement
    counter: int | None = None  # a frame counter found in the name, when there is one
    layout: RawLayout | None = None  # where the pixels are, for a headerless archive product
    label: ProductLabel | None = None  # what an archive product's label says

    @property
    def size(self) -> tuple[int, int]:
        return (self.width, self.height)


@dataclass(frozen=True, slots=True)
class Frame:
    """A frame on its way to the encoder: where it is in the sequence and its pixels."""

    index: int  # position in capture order
    info: FrameInfo
    pixels: np.ndarray  # H x W (grey) or H x W x 3 (BGR); uint8 or uint16 until normalised
    digest: bytes = b""  # hash of the decoded pixels, for duplicate detection
