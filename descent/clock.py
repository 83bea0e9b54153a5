"""Times written as text: parsing every form descent meets, and formatting them back.

One module for all of it: ISO 8601 (extended and compact), Unix epoch seconds and milliseconds,
spacecraft clock counts (`666952774.448`, `1/0666952774-448`), PDS day-of-year times, the Mars
2020 product-name clock, EXIF date stamps; and the two ways descent writes a time back.
"""

from __future__ import annotations

import calendar
import re
from datetime import UTC, datetime

_ZONE = r"(?P<zone>Z|[+-]\d{2}:\d{2}|\+\d{4})?"
_FRACTION = r"(?:[.,](?P<frac>\d{1,9}))?"
# 2019-01-03T02:26:12.345Z, 2019-01-03 02-26-12 (dashes, as names cannot hold colons everywhere)
ISO_EXTENDED = re.compile(
    r"(?<!\d)(?P<y>\d{4})-(?P<mo>\d{2})-(?P<d>\d{2})[T _-](?P<h>\d{2})[:_-]?(?P<mi>\d{2})[:_-]?(?P<s>\d{2})"
    + _FRACTION + _ZONE + r"(?!\d)"
)
# 20190103T022612.345, 20190103_022612, 20190103022009 (Chang'e product names)
ISO_COMPACT = re.compile(
    r"(?<!\d)(?P<y>\d{4})(?P<mo>\d{2})(?P<d>\d{2})[T_-]?(?P<h>\d{2})(?P<mi>\d{2})(?P<s>\d{2})"
    + _FRACTION + _ZONE + r"(?!\d)"
)
# Unix seconds 2001-2033 (with an optional .fraction) or milliseconds: 1546482372.5, 1546482372500
EPOCH_S = re.compile(r"(?<![\d.])(?P<sec>1\d{9})(?:\.(?P<frac>\d{1,9}))?(?![\d])")
EPOCH_MS = re.compile(r"(?<!\d)(?P<ms>1\d{12})(?!\d)")
# Mars 2020 product names: ELM_0000_0666952774_000FDR_... (camera, sol, spacecraft clock seconds, milliseconds)
MARS2020_CLOCK = re.compile(r"^[A-Z]{3}_\d{4}_(?P<sec>\d{10})_(?P<frac>\d{3})(?=[A-Z])")
# A clock count: seconds with a fraction after '.', '_', ':' or '-', and a partition like '1/' before it.
_CLOCK = re.compile(r"^\s*(?:\d+/)?(?P<sec>\d+)(?:[._:-](?P<frac>\d+))?\s*$")
_NUMBER = re.compile(r"^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$")
_EXIF_STAMP = re.compile(r"(\d{4}):(\d{2}):(\d{2}) (\d{2}):(\d{2}):(\d{2})")
_ZONE_OFFSET = re.compile(r"([+-])(\d{2}):?(\d{2})")

# Every pattern that finds a time inside a longer text (a file name), most specific first.
TIME_PATTERNS = (ISO_EXTENDED, ISO_COMPACT, MARS2020_CLOCK, EPOCH_MS, EPOCH_S)


def with_fraction(whole: int | float, fraction_digits: str | None) -> float:
    """`whole` seconds plus the decimal fraction written as digits ('448' is 0.448 s)."""
    return whole + (int(fraction_digits) / 10 ** len(fraction_digits) if fraction_digits else 0.0)


def zone_offset_s(text: str | None) -> int:
    """Seconds east of UTC for a zone written 'Z', '+02:00', '-0500' or not at all (UTC)."""
    m = _ZONE_OFFSET.fullmatch(text.strip()) if text else None
    if not m:
        return 0
    sign = -1 if m.group(1) == "-" else 1
    return sign * (int(m.group(2)) * 3600 + int(m.group(3)) * 60)


def calendar_seconds(y: int, mo: int, d: int, h: int, mi: int, s: int) -> float | None:
    """Unix seconds of a UTC calendar time, or None for a date that cannot be one (month 13)."""
    if not (1950 <= y <= 2200 and 1 <= mo <= 12 and 1 <= d <= 31 and h <= 23 and mi <= 59 and s <= 60):
        return None
    return float(calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0)))


def _iso_seconds(m: re.Match[str]) -> float | None:
    whole = calendar_seconds(*(int(m.group(k)) for k in ("y", "mo", "d", "h", "mi", "s")))
    if whole is None:
        return None
    return with_fraction(whole - zone_offset_s(m.group("zone")), m.group("frac"))


def time_in_text(text: str) -> tuple[float, bool, tuple[int, int]] | None:
    """The first timestamp found in a text such as a file name: (seconds, is_utc, where it was).

    ISO 8601 (extended or compact), then the Mars 2020 clock, then Unix epoch milliseconds and seconds.
    """
    for pattern in (ISO_EXTENDED, ISO_COMPACT):
        for m in pattern.finditer(text):
            seconds = _iso_seconds(m)
            if seconds is not None:
                return seconds, True, m.span()
    clock = MARS2020_CLOCK.match(text)
    if clock:
        return with_fraction(int(clock.group("sec")), clock.group("frac")), False, clock.span()
    ms = EPOCH_MS.search(text)
    if ms:
        return int(ms.group("ms")) / 1000, True, ms.span()
    sec = EPOCH_S.search(text)
    if sec:
        return with_fraction(int(sec.group("sec")), sec.group("frac")), True, sec.span()
    return None


def without_times(text: str) -> str:
    """The text with every timestamp in it blanked, so that its other numbers can be looked at."""
    for pattern in TIME_PATTERNS:
        text = pattern.sub("_", text)
    return text


def parse_time_text(text: str) -> tuple[float, bool] | None:
    """A time written as ISO 8601, or as a number of seconds (a clock count, epoch or relative).

    Returns (seconds, is_utc). `0666952960_800` reads as a clock count with a fraction.
    """
    text = text.strip()
    for pattern in (ISO_EXTENDED, ISO_COMPACT):
        m = pattern.fullmatch(text)
        if m:
            seconds = _iso_seconds(m)
            return None if seconds is None else (seconds, True)
    clock = parse_clock(text) if "/" not in text and ":" not in text and "-" not in text.lstrip("+-") else None
    if clock is not None:
        return clock, False
    if _NUMBER.match(text):
        return float(text), False
    return None


def parse_utc(text: str) -> float | None:
    """A label time (`2019-01-03T02:20:09.000Z`, `2021-049T20:41:04.448`, no zone meaning UTC) as Unix seconds."""
    text = text.strip().strip('"')
    parsed = parse_time_text(text)
    if parsed is not None and parsed[1]:
        return parsed[0]
    text = text.rstrip("Z").strip()
    for shape in ("%Y-%jT%H:%M:%S.%f", "%Y-%jT%H:%M:%S"):  # PDS day-of-year times
        try:
            return datetime.strptime(text, shape).replace(tzinfo=UTC).timestamp()
        except ValueError:
            continue
    return None


def parse_clock(text: str) -> float | None:
    """A spacecraft clock count (`"666952774.448"`, `1/0666952774-448` partition forms) as seconds.

    The fraction is read as decimal seconds, which is what Mars 2020's labels mean; it only orders
    and spaces frames, so a mission whose fraction counts ticks is off by a fraction of a second.
    """
    m = _CLOCK.match(text.strip().strip('"'))
    if not m:
        return None
    return with_fraction(int(m.group("sec")), m.group("frac"))


def parse_exif_time(original: str, subseconds: str = "", offset: str = "") -> float | None:
    """EXIF DateTimeOriginal ('2019:01:03 02:26:12') with SubSecTimeOriginal and OffsetTimeOriginal."""
    m = _EXIF_STAMP.match(original.strip())
    if not m:
        return None
    whole = calendar_seconds(*(int(g) for g in m.groups()))
    if whole is None:
        return None
    subseconds = subseconds.strip()
    return with_fraction(whole, subseconds if subseconds.isdigit() else None) - zone_offset_s(offset or None)


def format_utc(seconds: float) -> str:
    """Unix seconds as ISO 8601 UTC to the millisecond: 2019-01-03T02:26:12.345Z."""
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def format_time(seconds: float, *, utc: bool) -> str:
    """A time for people: ISO 8601 when it is UTC, else seconds on the sequence's own clock ('12.500 s')."""
    return format_utc(seconds) if utc else f"{seconds:.3f} s"


def time_value(seconds: float, *, utc: bool) -> str | float:
    """A time for JSON: an ISO 8601 string when it is UTC, else the number of seconds (to the microsecond)."""
    return format_utc(seconds) if utc else round(seconds, 6)
