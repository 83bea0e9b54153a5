"""The choices a user makes, as enums shared by the CLI and the library.

Plain standard library only (no numpy, no OpenCV), so `descent --help` stays instant and the CLI
does not have to mirror these in enums of its own. Every enum is a StrEnum: its members compare
equal to the words the user typed and to the values in the JSON report.
"""

from __future__ import annotations

import enum

# The largest video frame x264, x265 and SVT-AV1 accept, a side.
MAX_VIDEO_SIDE_PX = 16384

# Bayer patterns, named by the colours of the top-left 2x2 block, row by row (RGGB: red at (0, 0)).
BAYER_PATTERNS = ("RGGB", "BGGR", "GRBG", "GBRG")


class TimeSource(enum.StrEnum):
    """Where the capture times of a sequence came from, most trusted first."""

    INDEX = "index"  # a sidecar CSV given with --times
    LABEL = "label"  # a product label's START_TIME (UTC) or spacecraft clock
    NAME = "name"  # a timestamp in the file name
    EXIF = "exif"  # DateTimeOriginal + SubSecTimeOriginal (+ OffsetTimeOriginal)
    MTIME = "mtime"  # file modification time: often the time of a copy, not of capture
    VIDEO = "video"  # a video file's presentation times (from its creation_time when it has one)
    NONE = "none"  # no times: natural name order


class StabiliseMode(enum.StrEnum):
    LOCK = "lock"  # the landing site held at one place on screen, rotation held
    SMOOTH = "smooth"  # the flight path kept, the shake removed
    OFF = "off"


class Border(enum.StrEnum):
    FILL = "fill"  # what the frame does not cover is painted from the earlier frames (descent.stabilise.canvas)
    CROP = "crop"  # zoom in just enough (within the budget) that no frame shows an edge
    BLACK = "black"
    BLUR = "blur"
    REPLICATE = "replicate"


class Codec(enum.StrEnum):
    H264 = "h264"
    H265 = "h265"
    AV1 = "av1"
    PRORES = "prores"


class Demosaic(enum.StrEnum):
    EDGE_AWARE = "edge-aware"  # fast, 16-bit
    VNG = "vng"  # sharper, 8-bit mosaics only
    BILINEAR = "bilinear"


class Switch(enum.StrEnum):
    ON = "on"
    OFF = "off"


class HudCorner(enum.StrEnum):
    BOTTOM_LEFT = "bottom-left"
    BOTTOM_RIGHT = "bottom-right"
    TOP_LEFT = "top-left"
    TOP_RIGHT = "top-right"


class Units(enum.StrEnum):
    METRIC = "metric"  # km above 1 km, m below
    IMPERIAL = "imperial"  # ft


class AltitudeUnit(enum.StrEnum):
    M = "m"
    KM = "km"
    FT = "ft"


# The default --scratch-max: about 4,000 decoded 1024x1024 grey frames waiting for the encoding pass.
SCRATCH_MAX_GB = 4.0
