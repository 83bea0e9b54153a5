"""What a product's label says about a frame, whatever the label's format."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from descent.normalise.bayer import PATTERNS
from descent.sources.times import parse_time_text

_CLOCK = re.compile(r"^\s*(?:\d+/)?(?P<sec>\d+)(?:[.:](?P<frac>\d+))?\s*$")


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
    m = _CLOCK.match(text.strip().strip('"').replace("-", "."))
    if not m:
        return None
    frac = m.group("frac")
    return int(m.group("sec")) + (int(frac) / 10 ** len(frac) if frac else 0.0)


def bayer_from_label(value: str | None) -> str | None:
    """CFA_TYPE (`BAYER_RGGB`, `"BAYER RGGB"`, `NONE`) as a pattern name or "none"; None when unknown."""
    if value is None:
        return None
    text = re.sub(r"[^A-Z]", "", value.upper())
    if text in ("NONE", "NA", "NULL"):
        return "none"
    return next((p for p in PATTERNS if text.endswith(p)), None)
