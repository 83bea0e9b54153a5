"""Telemetry in: an altitude series from a flight log as people publish it, read with no options.

Shapes (one reader each, all turned into named columns of text cells):
- delimited text: ',' ';' or tab (the first that splits the last rows consistently, tab and ';' before
  ',' since a file uses them because its commas are decimal), a preamble before the header, padded
  fields, quoted thousands separators ("43,753.45"), decimal commas (43753,45 in a ';' or tab file);
- JSON lines, a JSON array of records, and one JSON object of columns ({"time": [...], ...});
- DJI .SRT sidecars, one cue per frame or per second;
- GPX track, route or way points (<ele> metres, <time> UTC).

The time column is the option's; else a column named like a time whose values behave like one (a
clock rises; a count-down such as `Timp`, `time to impact`, `t_minus` falls); else a column whose
values are dated times; else, with a loud problem, a column whose values rise steadily. Among named
columns, dated times (ISO 8601, Unix epoch, compact YYYYMMDDhhmmss and YYMMDDhhmmss.ss, read as UTC
when no zone is written) beat seconds from a start, which beat a count-down, which beats a time of
day with no date (hh:mm:ss, hhmmss: not UTC-dated, reported as such, seconds from midnight).

The altitude column is the option's; else one named like altitude, alt, height, agl, elevation, ele,
rel_alt or range, a unit glued on or not (`Rawaltitudeft`, `altkm`, `alt_ft`, `height (m)`). Height
above the ground beats plain altitude, which beats absolute altitude, which beats a range; a measured
("raw") column beats a derived one. Rates and speeds are never altitudes.

A unit is never assumed silently. It comes from --alt-unit, else the format (GPX and DJI: metres),
else the column's name, else the evidence of a speed column in the same file (the fastest vertical
rate, in the candidate unit, must be 0.2 to 1.5 times the fastest speed: Falcon 9's `altitude` climbs
at ~1 unit/s beside a `velocity` of ~1700 m/s, so it is km; when metres with m/s and km with km/s fit
alike, an unpowered fall decides by the gravity it implies, Δ(v²/2)/Δh, which for a body one can land
on is 0.1 to 30 m/s²: Ranger 7's is 0.73 m/s² in km and 0.0007 in metres). Otherwise it is metres,
recorded as assumed. Every choice and its reason is kept on the Telemetry and shown by
`descent telemetry`; everything cleaned (empty cells, repeated times, unsorted rows, glitches) too.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from descent.clock import ISO_COMPACT, ISO_EXTENDED, calendar_seconds, format_time, parse_time_text, with_fraction
from descent.errors import DescentError, UsageError

UNITS_M = {"m": 1.0, "km": 1000.0, "ft": 0.3048}
GLITCH_SIGMAS = 8.0  # a sample this far from its neighbours' median (in their spread) is a glitch
DETECT_SHARE = 0.9  # a column reads as a kind of time when this share of its cells do
STEADY_SHARE = 0.8  # ... and behaves like a clock when this share of its steps go one way
SPEED_RATIO = (0.2, 1.5)  # fastest vertical rate / fastest speed for a unit to be plausible
GRAVITY_MPS2 = (0.1, 30.0)  # the pull of a body one can land on, far above it (Moon) to Jupiter
BYTES_SHOWN = 24

# Names compared folded: lower case, letters and digits only ("Raw timestamp" -> "rawtimestamp").
COUNTDOWN_NAMES = ("timp", "timetoimpact", "tminus", "ttg", "timetogo", "countdown", "timetotouchdown",
                   "timetolanding", "tti", "timebeforeimpact")
TIME_WORDS = ("time", "utc", "gmt", "seconds", "elapsed", "epoch", "clock")
TIME_EXACT = ("t", "s", "sec", "secs", "met", "date", "hhmmss", "hms", "tod")
TIME_OF_DAY_HINTS = ("hhmmss", "hms", "tod", "timeofday", "utc", "gmt")
INDEX_NAMES = ("index", "id", "no", "n", "row", "frame", "tab", "pod", "count", "cnt", "srtcnt", "seq", "sample")
RATE_WORDS = ("rate", "speed", "velocity", "vel", "dot", "vs", "vspeed", "climb")
SPEED_NAMES = ("v", "vel", "velocity", "speed", "spd", "groundspeed", "airspeed", "vspeed", "verticalspeed",
               "vs", "vz", "climbrate", "altituderate", "altrate")
# Length units a name may end with, glued or not; longest first so "altkm" is alt + km, not altk + m.
_NAME_UNIT = re.compile(r"(kilometres|kilometers|metres|meters|feet|km|ft|m)$")
_UNIT_WORDS = {"kilometres": "km", "kilometers": "km", "metres": "m", "meters": "m", "feet": "ft",
               "km": "km", "ft": "ft", "m": "m"}
_SPEED_UNIT = re.compile(r"(m/s|mps|ms|km/s|kms|km/h|kmh|kph|ft/s|fps|kn|knots|kt|mph)$")
SPEED_UNITS_MPS = {"m/s": 1.0, "mps": 1.0, "ms": 1.0, "km/s": 1000.0, "kms": 1000.0, "km/h": 1 / 3.6,
                   "kmh": 1 / 3.6, "kph": 1 / 3.6, "ft/s": 0.3048, "fps": 0.3048, "kn": 0.514444,
                   "knots": 0.514444, "kt": 0.514444, "mph": 0.44704}


@dataclass(frozen=True, slots=True)
class TelemetryOptions:
    time_column: str | None = None
    altitude_column: str | None = None
    time_format: str | None = None  # a strftime format, or "countdown" (seconds before an event)
    altitude_unit: str | None = None  # m, km, ft; default from the format, the name or the evidence, else metres
    time_offset_s: float = 0.0  # added to every telemetry time (positive: telemetry is late)


@dataclass(frozen=True, slots=True)
class Telemetry:
    """Altitude against time, sorted and unique, with every decision that read it and why."""

    path: Path
    times_s: np.ndarray  # Unix seconds when is_utc; else seconds on the telemetry's own clock (see time_kind)
    altitude_m: np.ndarray
    is_utc: bool
    time_column: str
    altitude_column: str
    unit: str
    problems: list[str] = field(default_factory=list)
    counts_down: bool = False  # times are seconds before an event (touchdown, impact), negated
    format: str = ""  # the shape read: "csv ';' with decimal commas", "json columns", "dji srt", "gpx" ...
    time_reading: str = ""  # how the times are written: "YYMMDDhhmmss.ss", "ISO 8601", "elapsed seconds" ...
    time_kind: str = "elapsed"  # "utc", "elapsed" (seconds from a start), "countdown", "time of day"
    time_reason: str = ""  # why this column is the time
    altitude_reason: str = ""  # why this column is the altitude
    unit_source: str = "assumed"  # "option", "format", "name", "inferred" or "assumed"
    unit_reason: str = ""
    notes: list[str] = field(default_factory=list)  # facts worth knowing that are not problems

    @property
    def time_of_day(self) -> bool:
        """Times are seconds from midnight of an unknown date (hh:mm:ss with no date)."""
        return self.time_kind == "time of day"

    @property
    def unit_assumed(self) -> bool:
        return self.unit_source == "assumed"

    @property
    def span_s(self) -> float:
        return float(self.times_s[-1] - self.times_s[0])

    @property
    def median_interval_s(self) -> float:
        return float(np.median(np.diff(self.times_s))) if len(self.times_s) > 1 else math.inf

    def unit_label(self) -> str:
        """The unit as the columns line shows it: bare when the name says it, else with its source."""
        if self.unit_source == "name":
            return self.unit
        if self.unit_source == "assumed":
            return "assumed metres: say --alt-unit"
        return f"{self.unit}, {'--alt-unit' if self.unit_source == 'option' else self.unit_source}"

    def lines(self) -> list[str]:
        """What was understood and why, for people."""
        start = format_time(self.times_s[0], utc=self.is_utc)
        end = format_time(self.times_s[-1], utc=self.is_utc)
        out = [f"file        {self.path}",
               f"format      {self.format}",
               f"columns     time: {self.time_column!r}, altitude: {self.altitude_column!r} ({self.unit_label()})",
               f"time        {self.time_reading} ({_clock_words(self.time_kind)}); {self.time_reason}",
               f"alt column  {self.altitude_reason}",
               f"unit        {self.unit}, {self.unit_source}: {self.unit_reason}",
               f"samples     {len(self.times_s)}",
               f"span        {start} to {end} ({self.span_s:.3f} s)",
               f"rate        {1 / self.median_interval_s:.3g} samples/s" if self.median_interval_s > 0 else "rate  -",
               f"altitude    {self.altitude_m.max():.1f} m to {self.altitude_m.min():.1f} m"]
        out += [f"note        {n}" for n in self.notes]
        out += [f"problem     {p}" for p in self.problems] or ["problems    none"]
        return out

    def to_dict(self) -> dict[str, object]:
        return {"file": str(self.path), "time_column": self.time_column, "altitude_column": self.altitude_column,
                "unit": self.unit, "samples": len(self.times_s), "is_utc": self.is_utc,
                "start": format_time(self.times_s[0], utc=self.is_utc),
                "end": format_time(self.times_s[-1], utc=self.is_utc),
                "span_s": self.span_s, "rate_hz": 1 / self.median_interval_s if self.median_interval_s > 0 else None,
                "altitude_m": {"max": float(self.altitude_m.max()), "min": float(self.altitude_m.min())},
                "problems": self.problems,
                "format": self.format, "time_reading": self.time_reading, "time_kind": self.time_kind,
                "counts_down": self.counts_down, "time_of_day": self.time_of_day, "time_reason": self.time_reason,
                "altitude_reason": self.altitude_reason, "unit_source": self.unit_source,
                "unit_reason": self.unit_reason, "notes": self.notes}


def _clock_words(kind: str) -> str:
    return {"utc": "UTC", "elapsed": "relative, not UTC",
            "countdown": "negated so that 0 is the event, not UTC",
            "time of day": "no date: not UTC-dated, seconds from midnight"}.get(kind, kind)


# --- the shapes on disk, each into a Table ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Table:
    """A log as named columns of text cells, whatever its shape on disk; formats that say which column is
    what (SRT, GPX) name their time and altitude columns and their unit."""

    format: str
    header: list[str]
    rows: list[tuple[int, list[str]]]  # (line or record number, one cell per header name)
    decimal_comma: bool = False
    time_column: str | None = None
    time_reading: TimeReading | None = None
    altitude_column: str | None = None
    altitude_reason: str = ""
    unit: str | None = None
    unit_reason: str = ""
    notes: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()


def _table(path: Path) -> Table:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DescentError(f"{path}: cannot read the telemetry ({exc.strerror or exc})") from None
    if _is_binary(data):
        raise DescentError(f"{path}: not a text altitude log (binary data starting {_excerpt(data)!r}); "
                           "descent reads CSV, TSV, JSON, DJI .SRT and GPX")
    text = data.decode("utf-8-sig", errors="replace")
    start = text.lstrip()[:400]
    if path.suffix.lower() == ".srt" or re.match(r"\d+\s*\n\s*\d+:\d{2}:\d{2}[,.]\d+\s*-->", start):
        return _srt(text, path)
    if start.startswith("<") and ("<gpx" in text[:2000] or path.suffix.lower() == ".gpx"):
        return _gpx(text, path)
    if start.startswith(("{", "[")):
        return _json(text, path)
    return _delimited(text, path)


def _is_binary(data: bytes) -> bool:
    head = data[:8192]
    if b"\x00" in head:
        return True
    text = head.decode("utf-8", errors="replace")
    odd = sum(1 for c in text if c == "\ufffd" or (ord(c) < 32 and c not in "\r\n\t\f"))
    return odd > max(8, len(text) // 20)


def _excerpt(data: bytes | str) -> str:
    """A short printable excerpt: what a person needs to recognise a file, not a kilobyte of bytes."""
    text = data.decode("latin-1") if isinstance(data, bytes) else data
    shown = "".join(c if c.isprintable() and c != "\ufffd" else "." for c in text[:BYTES_SHOWN])
    return shown + ("..." if len(text) > BYTES_SHOWN else "")


def _columns_text(header: list[str]) -> str:
    shown = ", ".join(repr(_excerpt(h)) for h in header[:12])
    return shown + (f" and {len(header) - 12} more" if len(header) > 12 else "")


def _delimited(text: str, path: Path) -> Table:
    """The header and numbered data rows of a CSV/TSV, after any preamble of comments or notes."""
    lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    delimiter = _delimiter(lines)
    rows = [(n, [c.strip() for c in r]) for n, r in enumerate(
        csv.reader(io.StringIO(text), delimiter=delimiter, skipinitialspace=True), start=1)
        if r and any(c.strip() for c in r) and not r[0].lstrip().startswith("#")]
    widths = Counter(len(r) for _, r in rows[-30:])
    width = widths.most_common(1)[0][0] if widths else 0
    # The header is the first row as wide as the data whose cells are mostly names, not numbers.
    for index, (line_no, cells) in enumerate(rows):
        if len(cells) >= 2 and len(cells) == width and sum(_is_name(c) for c in cells) > len(cells) / 2:
            data = rows[index + 1 :]
            if not data:
                raise DescentError(f"{path}: a header ({_columns_text(cells)}) but no data rows")
            decimal_comma = delimiter != "," and any(re.fullmatch(r"[-+]?\d+,\d+", c) for _, r in data[:200]
                                                     for c in r)
            shape = {",": "csv ','", ";": "csv ';'", "\t": "tsv (tab)"}[delimiter]
            where = f"header on line {line_no}" + (f" after {line_no - 1} lines of preamble" if line_no > 1 else "")
            return Table(f"{shape}{' with decimal commas' if decimal_comma else ''} ({where})", cells, data,
                         decimal_comma=decimal_comma)
    if not rows:
        raise DescentError(f"{path}: empty: no rows of telemetry")
    raise DescentError(f"{path}: no header row naming the columns (the file starts {_excerpt(text.lstrip())!r}); "
                       "descent reads CSV, TSV, JSON, DJI .SRT and GPX")


def _delimiter(lines: list[str]) -> str:
    """Tab, ';' or ',': the first that splits the last rows (the data, past any preamble) consistently.

    Tab and ';' come first because a file uses them when its commas are decimal; csv.Sniffer gives up on
    a preamble of notes whose commas and semicolons disagree with the data.
    """
    tail = lines[-30:]
    for candidate in ("\t", ";", ","):
        counts = [len(row) for row in csv.reader(tail, delimiter=candidate)]
        if not counts:
            continue
        columns, times = Counter(counts).most_common(1)[0]
        if columns >= 2 and times >= 0.8 * len(counts):
            return candidate
    return ","


def _is_name(cell: str) -> bool:
    return bool(cell) and not re.fullmatch(r"[-+]?[\d.,:eE/TZ -]+", cell)


def _json(text: str, path: Path) -> Table:
    try:
        document = json.loads(text)
    except ValueError:
        return _json_lines(text, path)
    if isinstance(document, list) and document and all(isinstance(r, dict) for r in document):
        return _records("json array of records", list(enumerate(document, start=1)), path)
    if isinstance(document, dict):
        return _json_columns(document, path)
    raise DescentError(f"{path}: JSON but neither records nor columns of numbers (starts {_excerpt(text)!r})")


def _json_columns(document: dict[str, object], path: Path) -> Table:
    """One object of arrays, {"time": [...], "altitude": [...]}: the arrays of the commonest length."""
    arrays = {k: v for k, v in document.items() if isinstance(v, list) and v
              and all(x is None or isinstance(x, int | float | str) for x in v)}
    lengths = Counter(len(v) for v in arrays.values())
    if not arrays or lengths.most_common(1)[0][1] < 2:
        keys = _columns_text(list(document))
        raise DescentError(f"{path}: a JSON object without columns (arrays of numbers of one length) or "
                           f"records; its keys are {keys}")
    length = lengths.most_common(1)[0][0]
    header = [k for k, v in arrays.items() if len(v) == length]
    rows = [(i + 1, ["" if arrays[k][i] is None else str(arrays[k][i]) for k in header]) for i in range(length)]
    return Table(f"json columns (one object of {len(header)} arrays)", header, rows)


def _json_lines(text: str, path: Path) -> Table:
    records = []
    for line_no, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                records.append((line_no, record))
    if not records:
        raise DescentError(f"{path}: neither JSON nor JSON lines (starts {_excerpt(text.lstrip())!r})")
    return _records("json lines", records, path)


def _records(shape: str, records: list[tuple[int, dict[str, object]]], path: Path) -> Table:
    header: list[str] = []
    for _, record in records:
        header += [k for k in record if k not in header]
    rows = [(n, ["" if r.get(k) is None else str(r.get(k)) for k in header]) for n, r in records]
    return Table(shape, header, rows)


# DJI sidecars: each model spells altitude its own way. Height above the take-off point first (the
# landing HUD's question), then absolute altitudes. Numbers after a name, with an optional unit 'm'.
_NUM = r"([-+]?\d+(?:\.\d+)?)"
SRT_ALTITUDES = (
    ("rel_alt", re.compile(r"rel_alt\s*:\s*" + _NUM), "height above the take-off point"),
    ("BAROMETER", re.compile(r"BAROMETER\s*:?\s*" + _NUM, re.IGNORECASE), "barometric height above take-off"),
    ("H", re.compile(r"(?<![\w.])H\s*[: ]\s*" + _NUM + r"\s*m\b"), "height above take-off"),
    ("altitude", re.compile(r"(?<![\w])altitude\s*:\s*" + _NUM), "altitude as the model writes it"),
    ("abs_alt", re.compile(r"abs_alt\s*:\s*" + _NUM), "absolute altitude"),
    ("GPS alt", re.compile(r"GPS\s*\(\s*[-\d.]+\s*,\s*[-\d.]+\s*,\s*" + _NUM + r"\s*\)"), "GPS altitude"),
)
_SRT_TIMING = re.compile(r"(\d+):(\d{2}):(\d{2})[,.](\d{1,3})\s*-->")
_SRT_LOCAL = re.compile(r"(\d{4})[-./](\d{2})[-./](\d{2})\s+(\d{2}):(\d{2}):(\d{2})(?:[,.](\d{1,3}))?")


def _srt(text: str, path: Path) -> Table:
    """A DJI subtitle sidecar: the cue's start (seconds into the video) against the preferred altitude."""
    cues: list[tuple[int, str]] = []  # (the cue's first line, its text without markup)
    lines = text.replace("\r\n", "\n").split("\n")
    start: int | None = None
    for number, line in enumerate([*lines, ""], start=1):
        if line.strip() and start is None:
            start = number
        elif not line.strip() and start is not None:
            cues.append((start, re.sub(r"<[^>]+>", " ", "\n".join(lines[start - 1 : number - 1]))))
            start = None
    found = [name for name, pattern, _ in SRT_ALTITUDES if any(pattern.search(c) for _, c in cues)]
    if not found:
        raise DescentError(f"{path}: a DJI .SRT with no altitude in its {len(cues)} cues (this model writes none; "
                           "give the flight log instead)")
    name, why = next((n, w) for n, _, w in SRT_ALTITUDES if n == found[0])
    pattern = dict((n, p) for n, p, _ in SRT_ALTITUDES)[name]
    timed = sum(1 for _, c in cues if _SRT_TIMING.search(c))
    rows, local, untimed = [], [], 0
    for number, cue in cues:
        timing = _SRT_TIMING.search(cue)
        when = _SRT_LOCAL.search(cue)
        value = pattern.search(cue)
        if timed:
            t_text = str(int(timing.group(1)) * 3600 + int(timing.group(2)) * 60 + int(timing.group(3))
                         + int(timing.group(4)) / 10 ** len(timing.group(4))) if timing else ""
        else:  # no cue timings at all: the drone's local clock, counted from the first cue
            t_text = when.group(0) if when else ""
        untimed += not t_text
        if when:
            local.append(when.group(0))
        rows.append((number, [t_text, value.group(1) if value else ""]))
    problems: list[str] = []
    if rows and not all(rows[-1][1]):  # the last cue lacks its time or its altitude: the file stops in it
        problems.append(f"the last cue (line {rows[-1][0]}) is cut off: the file ends mid-cue (truncated?)")
    others = [n for n in found if n != name]
    reason = f"{name!r}: {why}" + (f", preferred for a landing HUD to {', '.join(repr(o) for o in others)}"
                                   if others else ", the only altitude in the cues")
    notes = []
    if local and timed:
        notes.append(f"the cues also carry the drone's local date-time ({local[0]} ...), which has no time zone: "
                     "not used as UTC; the cue times count from the video's first frame")
    reading = _READINGS["srt cue"] if timed else _READINGS["dji local"]
    return Table(f"dji srt ({len(cues)} cues)", ["cue start" if timed else "local time", name], rows,
                 time_column="cue start" if timed else "local time", time_reading=reading,
                 altitude_column=name, altitude_reason=reason, unit="m",
                 unit_reason="DJI writes altitudes in metres", notes=tuple(notes), problems=tuple(problems))


def _gpx(text: str, path: Path) -> Table:
    """GPX track, route or way points: <ele> in metres, <time> in UTC (the GPX 1.1 schema says both)."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise DescentError(f"{path}: GPX that is not well-formed XML ({exc})") from None
    rows = []
    for number, point in enumerate((e for e in root.iter() if _local(e.tag) in ("trkpt", "rtept", "wpt")), 1):
        cells = {_local(child.tag): (child.text or "").strip() for child in point}
        rows.append((number, [cells.get("time", ""), cells.get("ele", "")]))
    if not rows:
        raise DescentError(f"{path}: a GPX with no track, route or way points")
    return Table(f"gpx ({len(rows)} points)", ["time", "ele"], rows, time_column="time",
                 time_reading=_READINGS["iso"], altitude_column="ele",
                 altitude_reason="'ele': the GPX elevation of each point", unit="m",
                 unit_reason="GPX elevations are metres")


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


# --- numbers and times in cells ----------------------------------------------------------------------------


def _number(text: str, decimal_comma: bool) -> float:
    """A number as people write it: 43753,45 (a decimal comma), "43,753.45", 43.753,45; NaN if it is none."""
    s = text.strip().strip('"').replace(" ", "").replace("\u00a0", "")
    if "," in s and "." in s:  # the later mark is the decimal one
        s = s.replace(".", "").replace(",", ".") if s.rfind(",") > s.rfind(".") else s.replace(",", "")
    elif "," in s:
        thousands = not decimal_comma and re.fullmatch(r"[-+]?\d{1,3}(,\d{3})+", s)
        s = s.replace(",", "") if thousands or s.count(",") > 1 else s.replace(",", ".")
    try:
        return float(s)
    except ValueError:
        return math.nan


@dataclass(frozen=True, slots=True)
class TimeReading:
    """One way of writing times: its name for people, the clock it is on, and its parser."""

    label: str
    kind: str  # "utc", "elapsed", "countdown", "time of day"
    parse: Callable[[str, bool], float | None]  # (cell, decimal_comma) -> seconds


def _iso(text: str, _: bool) -> float | None:
    m = ISO_EXTENDED.fullmatch(text.strip())
    parsed = parse_time_text(text) if m else None
    return parsed[0] if parsed and parsed[1] else None


def _compact14(text: str, _: bool) -> float | None:
    m = ISO_COMPACT.fullmatch(text.strip())
    parsed = parse_time_text(text) if m else None
    return parsed[0] if parsed and parsed[1] else None


_COMPACT12 = re.compile(r"(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(?:[.,](\d{1,9}))?")


def _compact12(text: str, _: bool) -> float | None:
    """YYMMDDhhmmss.ss, UTC; two-digit years as strptime's %y reads them (69-99 are 19xx)."""
    m = _COMPACT12.fullmatch(text.strip())
    if not m:
        return None
    yy, mo, d, h, mi, s = (int(g) for g in m.groups()[:6])
    whole = calendar_seconds(yy + (1900 if yy >= 69 else 2000), mo, d, h, mi, s)
    return None if whole is None else with_fraction(whole, m.group(7))


def _epoch_ms(text: str, _: bool) -> float | None:
    return int(text.strip()) / 1000 if re.fullmatch(r"1\d{12}", text.strip()) else None


def _epoch_s(text: str, decimal_comma: bool) -> float | None:
    value = _number(text, decimal_comma)
    return value if 9e8 <= value < 4.2e9 else None  # a plain number past 1998 is Unix time


_TIME_OF_DAY = re.compile(r"(\d{1,2}):(\d{2}):(\d{2})(?:[.,](\d{1,9}))?")
_HHMMSS = re.compile(r"(\d{2})(\d{2})(\d{2})(?:[.,](\d{1,9}))?")


def _time_of_day(text: str, _: bool) -> float | None:
    return _day_seconds(_TIME_OF_DAY.fullmatch(text.strip()))


def _hhmmss(text: str, _: bool) -> float | None:
    """hhmmss(.ss); as a number (JSON, a spreadsheet) it loses its leading zero: 22600 is 02:26:00."""
    whole, _dot, fraction = text.strip().partition(".")
    return _day_seconds(_HHMMSS.fullmatch(whole.zfill(6) + (f".{fraction}" if fraction else "")))


def _day_seconds(m: re.Match[str] | None) -> float | None:
    if not m:
        return None
    h, mi, s = int(m.group(1)), int(m.group(2)), int(m.group(3))
    return with_fraction(h * 3600 + mi * 60 + s, m.group(4)) if h < 24 and mi < 60 and s <= 60 else None


def _seconds(text: str, decimal_comma: bool) -> float | None:
    value = _number(text, decimal_comma)
    return value if math.isfinite(value) else None


def _countdown(text: str, decimal_comma: bool) -> float | None:
    value = _number(text, decimal_comma)
    return -value if math.isfinite(value) else None  # later rows have smaller counts


def _dji_local(text: str, _: bool) -> float | None:
    m = _SRT_LOCAL.fullmatch(text.strip())
    if not m:
        return None
    whole = calendar_seconds(*(int(g) for g in m.groups()[:6]))
    return None if whole is None else with_fraction(whole, m.group(7))


_READINGS = {
    "iso": TimeReading("ISO 8601 (no zone written: read as UTC)", "utc", _iso),
    "compact14": TimeReading("YYYYMMDDhhmmss (no zone: read as UTC)", "utc", _compact14),
    "compact12": TimeReading("YYMMDDhhmmss.ss (no zone: read as UTC)", "utc", _compact12),
    "epoch ms": TimeReading("Unix epoch milliseconds", "utc", _epoch_ms),
    "epoch s": TimeReading("Unix epoch seconds", "utc", _epoch_s),
    "hh:mm:ss": TimeReading("hh:mm:ss time of day", "time of day", _time_of_day),
    "hhmmss": TimeReading("hhmmss time of day", "time of day", _hhmmss),
    "countdown": TimeReading("count-down seconds", "countdown", _countdown),
    "seconds": TimeReading("seconds", "elapsed", _seconds),
    "srt cue": TimeReading("SRT cue start (seconds into the video)", "elapsed", _seconds),
    "dji local": TimeReading("the drone's local date-time, counted from the first cue", "elapsed", _dji_local),
}
CLOCK_RANK = {"utc": 0, "elapsed": 1, "countdown": 2, "time of day": 3}
PREFERENCE = "dated UTC times before seconds from a start, a count-down, then a time of day"


def _strftime_reading(time_format: str) -> TimeReading:
    def parse(text: str, _: bool) -> float | None:
        try:
            when = datetime.strptime(text.strip(), time_format)
        except ValueError:
            return None
        return (when.replace(tzinfo=UTC) if when.tzinfo is None else when).timestamp()

    return TimeReading(f"{time_format} (no zone: read as UTC)" if "%z" not in time_format else time_format,
                       "utc", parse)


# --- which column is which ---------------------------------------------------------------------------------


def _fold(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _time_name(name: str) -> str | None:
    """'countdown', 'clock' or None, from a column's name."""
    folded = _fold(name)
    if folded in COUNTDOWN_NAMES or any(w in folded for w in COUNTDOWN_NAMES if len(w) > 4):
        return "countdown"
    if folded in TIME_EXACT or any(w in folded for w in TIME_WORDS):
        return "clock"
    return None


def _split_unit(name: str) -> tuple[str, str | None]:
    """A name without its length unit, and the unit: 'Rawaltitudeft' -> ('rawaltitude', 'ft')."""
    folded = _fold(name)
    m = _NAME_UNIT.search(folded)
    if m and _altitude_rank(folded[: m.start()]) is not None:
        return folded[: m.start()], _UNIT_WORDS[m.group(1)]
    return folded, None


def _altitude_rank(base: str) -> int | None:
    """0 height above the ground, 1 altitude, 2 absolute altitude, 3 a range; None if it is no altitude."""
    if not base or any(base.endswith(w) or base.startswith(w) for w in RATE_WORDS) or base in SPEED_NAMES:
        return None
    if any(w in base for w in ("agl", "height", "relalt", "aboveground", "radalt", "radar")):
        return 0
    if any(w in base for w in ("abs", "msl", "gps", "ellipsoid", "geoid")):
        return 2 if "alt" in base or "ele" in base or "height" in base else None
    if "alt" in base or "elevation" in base or base in ("ele", "elev", "z"):
        return 1
    return 3 if "range" in base else None


def _cells(table: Table, index: int, limit: int = 400) -> list[str]:
    cells = [r[index] for _, r in table.rows if index < len(r) and r[index]]
    step = max(1, len(cells) // limit)
    return cells[::step]


def _reading_for(cells: list[str], name: str, decimal_comma: bool) -> TimeReading | None:
    """How a column's cells are written, from its values and, where values are ambiguous, its name."""
    if not cells:
        return None
    named = _time_name(name)
    order = ["iso", "compact14", "compact12", "epoch ms", "hh:mm:ss"]
    if any(h in _fold(name) for h in TIME_OF_DAY_HINTS) and not any(w in _fold(name) for w in ("elapsed", "rel")):
        order.append("hhmmss")
    order += ["epoch s", "countdown" if named == "countdown" else "seconds"]
    for key in order:
        reading = _READINGS[key]
        parsed = sum(reading.parse(c, decimal_comma) is not None for c in cells)
        if parsed >= DETECT_SHARE * len(cells):
            return reading
    return None


def _rises(values: list[float]) -> bool:
    steps = np.diff(np.array(values, np.float64))
    moving = steps[steps != 0]
    return len(moving) > 0 and float(np.mean(moving > 0)) >= STEADY_SHARE


def _find(header: list[str], wanted: str, option: str, path: Path) -> int:
    folded = [h.strip().lower() for h in header]
    if wanted.strip().lower() in folded:
        return folded.index(wanted.strip().lower())
    raise UsageError(f"{path}: {option} {wanted!r}: no such column; the columns are {_columns_text(header)}")


def _choose_time(table: Table, options: TelemetryOptions, path: Path) -> tuple[int, TimeReading, str]:
    given = None
    if options.time_format:
        given = _READINGS["countdown"] if options.time_format == "countdown" else \
            _strftime_reading(options.time_format)
    if options.time_column is not None:
        return _given_time_column(table, options.time_column, given, path)
    if table.time_column is not None:
        return table.header.index(table.time_column), given or _time_reading(table), "the format's time"
    candidates = [c for index in range(len(table.header)) if (c := _time_candidate(table, index, given))]
    if not candidates:
        raise UsageError(f"{path}: no time column found among {_columns_text(table.header)}; name it with "
                         "--time-column (and --time-format if its times are unusual)")
    candidates.sort(key=lambda c: (c[0], c[1]))
    _, index, reading, reason = candidates[0]
    others = [f"{table.header[i]!r} ({r.label})" for r2, i, r, _ in candidates[1:] if r2[1] < 2]
    if others:
        reason += f"; preferred to {', '.join(others[:3])}: {PREFERENCE}"
    return index, reading, reason


def _given_time_column(table: Table, column: str, given: TimeReading | None,
                       path: Path) -> tuple[int, TimeReading, str]:
    """The time column named by --time-column, read with --time-format or as its cells say."""
    index = _find(table.header, column, "--time-column", path)
    reading = given or table.time_reading if table.time_column == table.header[index] else given
    cells = _cells(table, index)
    reading = reading or _reading_for(cells, table.header[index], table.decimal_comma)
    if reading is None:
        raise DescentError(f"{path}: --time-column {column!r}: its cells are no times I know "
                           f"(e.g. {_excerpt(cells[0]) if cells else 'empty'!r}); "
                           "give --time-format (a strftime format like %y%m%d%H%M%S.%f)")
    return index, reading, "--time-column"


def _time_candidate(table: Table, index: int,
                    given: TimeReading | None) -> tuple[tuple[int, int], int, TimeReading, str] | None:
    """Column `index` as a clock: (rank, index, how it is read, why), or None when it is not one."""
    name = table.header[index]
    cells = _cells(table, index)
    reading = _reading_check(given, cells, table.decimal_comma) if given else \
        _reading_for(cells, name, table.decimal_comma)
    if reading is None or _split_unit(name)[1] is not None or _altitude_rank(_fold(name)) is not None:
        return None
    named = _time_name(name)
    values = [v for v in (reading.parse(c, table.decimal_comma) for c in cells) if v is not None]
    if named == "countdown" and reading.kind == "countdown" and not _rises(values):
        reading, values = _READINGS["seconds"], [-v for v in values]  # a t-minus written -100 ... 0
    if not _rises(values):
        return None
    if named:
        how = "named like a count-down and its values fall steadily" if reading.kind == "countdown" else \
            "named like a time and its values rise"
        return (CLOCK_RANK[reading.kind], 0), index, reading, how
    if reading.kind == "utc" and reading is not _READINGS["epoch s"]:
        return (0, 1), index, reading, "its values are dated times"
    if (_fold(name) not in INDEX_NAMES and reading.kind == "elapsed") or given:
        return (9, 2), index, reading, "no column is named as a time; its values rise steadily"
    return None


def _reading_check(reading: TimeReading, cells: list[str], decimal_comma: bool) -> TimeReading | None:
    parsed = sum(reading.parse(c, decimal_comma) is not None for c in cells)
    return reading if cells and parsed >= DETECT_SHARE * len(cells) else None


def _time_reading(table: Table) -> TimeReading:
    assert table.time_reading is not None  # formats that name their time column say how it is written
    return table.time_reading


def _choose_altitude(table: Table, options: TelemetryOptions, time_index: int, path: Path) -> tuple[int, str]:
    if options.altitude_column is not None:
        return _find(table.header, options.altitude_column, "--alt-column", path), "--alt-column"
    if table.altitude_column is not None:
        return table.header.index(table.altitude_column), table.altitude_reason
    candidates = []
    for index, name in enumerate(table.header):
        base, _ = _split_unit(name)
        rank = _altitude_rank(base)
        if index == time_index or rank is None:
            continue
        cells = _cells(table, index)
        numbers = sum(math.isfinite(_number(c, table.decimal_comma)) for c in cells)
        if cells and numbers >= 0.5 * len(cells):
            candidates.append((rank, 0 if "raw" in base else 1, index))
    if not candidates:
        raise UsageError(f"{path}: no altitude column found among {_columns_text(table.header)}; "
                         "name it with --alt-column")
    candidates.sort()
    rank, raw, index = candidates[0]
    why = ["height above the ground, preferred for a landing HUD", "named like an altitude",
           "named like an absolute altitude", "a range, the nearest to an altitude here"][rank]
    reason = f"{table.header[index]!r}: {why}"
    if raw == 0 and any(c[0] == rank and c[1] == 1 for c in candidates):
        reason += " (the measured, 'raw' column, preferred to a derived one)"
    others = [repr(table.header[i]) for _, _, i in candidates[1:]]
    if others:
        reason += f"; also: {', '.join(others[:4])}" + (" ..." if len(others) > 4 else "")
    return index, reason


def _speed_column(table: Table, exclude: set[int]) -> tuple[int, float | None] | None:
    """A speed column (index, its unit in m/s when the name says) beside the altitude, or None."""
    for index, name in enumerate(table.header):
        folded = re.sub(r"[^a-z0-9/]", "", name.lower())
        m = _SPEED_UNIT.search(folded)
        bare = _fold(folded[: m.start()] if m else folded)
        if index not in exclude and bare in SPEED_NAMES:
            return index, SPEED_UNITS_MPS[m.group(1)] if m else None
    return None


# --- reading -----------------------------------------------------------------------------------------------


def read_telemetry(path: Path, options: TelemetryOptions | None = None) -> Telemetry:
    """Read and clean an altitude log, with no options for the shapes in the module docstring; every
    option given (columns, time format, unit, offset) wins over what would be detected."""
    options = options or TelemetryOptions()
    if options.altitude_unit is not None and options.altitude_unit not in UNITS_M:
        raise UsageError(f"--alt-unit {options.altitude_unit}: choose m, km or ft")
    table = _table(path)
    time_index, reading, time_reason = _choose_time(table, options, path)
    alt_index, alt_reason = _choose_altitude(table, options, time_index, path)
    speed = _speed_column(table, {time_index, alt_index})
    problems = list(table.problems)
    times, raw_alt, speeds = _parse_rows(table, time_index, alt_index, speed, reading, problems, options, path)
    if reading is _READINGS["dji local"]:
        times = times - times.min()
    if reading.kind == "time of day" and np.any(np.diff(times) < -43200):
        problems.append("the times of day pass midnight: the later ones are on the next day")
        times = times + 86400 * np.cumsum(np.concatenate([[0], np.diff(times) < -43200]))
    times = times + options.time_offset_s
    times, raw_alt, speeds = _cleaned(times, raw_alt, speeds, reading, problems)
    unit, unit_source, unit_reason = _unit(table, options, alt_index, times, raw_alt, speeds, speed)
    if unit_source == "assumed":
        problems.append(f"no unit for {table.header[alt_index]!r}: assumed metres; say --alt-unit m, km or ft")
    altitude = raw_alt * UNITS_M[unit]
    return Telemetry(path, times, altitude, reading.kind == "utc", table.header[time_index],
                     table.header[alt_index], unit, problems, counts_down=reading.kind == "countdown",
                     format=table.format, time_reading=reading.label, time_kind=reading.kind,
                     time_reason=f"{table.header[time_index]!r}: {time_reason}", altitude_reason=alt_reason,
                     unit_source=unit_source, unit_reason=unit_reason, notes=list(table.notes))


def _parse_rows(table: Table, time_index: int, alt_index: int, speed: tuple[int, float | None] | None,
                reading: TimeReading, problems: list[str], options: TelemetryOptions,
                path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    times, alts, speeds, empty, bad = [], [], [], 0, []
    for line_no, row in table.rows:
        t_text = row[time_index] if time_index < len(row) else ""
        a_text = row[alt_index] if alt_index < len(row) else ""
        if not t_text or not a_text:
            empty += 1
            continue
        when = reading.parse(t_text, table.decimal_comma)
        value = _number(a_text, table.decimal_comma)
        if when is None or not math.isfinite(value):
            bad.append(line_no)
            continue
        times.append(when)
        alts.append(value)
        speeds.append(_number(row[speed[0]], table.decimal_comma) if speed and speed[0] < len(row) else math.nan)
    if empty:
        problems.append(f"{empty} rows with an empty time or altitude cell skipped")
    if bad:
        shown = ", ".join(map(str, bad[:5])) + (" ..." if len(bad) > 5 else "")
        problems.append(f"{len(bad)} rows with an unreadable time or altitude skipped (rows {shown})")
    if len(times) < 2:
        hint = f" with --time-format {options.time_format!r}" if options.time_format else ""
        raise DescentError(f"{path}: fewer than two rows with a readable time and altitude in columns "
                           f"{table.header[time_index]!r} ({reading.label}) and {table.header[alt_index]!r}{hint}")
    return np.array(times, np.float64), np.array(alts, np.float64), np.array(speeds, np.float64)


def _cleaned(times: np.ndarray, altitude: np.ndarray, speeds: np.ndarray, reading: TimeReading,
             problems: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sorted, repeated times averaged, glitches dropped; each step said in problems."""
    utc = reading.kind == "utc"
    if np.any(np.diff(times) < 0) and not (reading.kind == "countdown" and np.all(np.diff(times) <= 0)):
        problems.append("rows were not in time order: sorted")
    order = np.argsort(times, kind="stable")
    times, altitude, speeds = times[order], altitude[order], speeds[order]
    unique, inverse, counts = np.unique(times, return_inverse=True, return_counts=True)
    if len(unique) < len(times):
        problems.append(f"{int((counts > 1).sum())} repeated timestamps: their altitudes averaged")
        altitude = np.bincount(inverse, weights=altitude) / counts
        speeds = np.bincount(inverse, weights=speeds) / counts
        times = unique
    glitches = _glitches(altitude)
    if glitches:
        problems.append(f"{len(glitches)} glitches (far off their neighbours) dropped: at "
                        + ", ".join(format_time(times[i], utc=utc) for i in glitches[:5]))
        times, altitude, speeds = (np.delete(a, glitches) for a in (times, altitude, speeds))
    return times, altitude, speeds


def _glitches(altitude: np.ndarray) -> list[int]:
    """Samples far from the median of their neighbours, relative to the local spread: data glitches."""
    n = len(altitude)
    if n < 7:
        return []
    steps = np.abs(np.diff(altitude))
    # The data's resolution: a barometer read to 0.1 m steps by 0.1 m near the ground, which is no glitch.
    quantum = float(np.percentile(steps[steps > 0], 5)) if np.any(steps > 0) else 0.0
    glitches = []
    for i in range(n):
        lo, hi = max(0, i - 3), min(n, i + 4)
        neighbours = np.delete(altitude[lo:hi], i - lo)
        centre = float(np.median(neighbours))
        spread = 1.4826 * float(np.median(np.abs(neighbours - centre))) + 1e-3 * max(abs(centre), 1.0) + quantum
        if abs(altitude[i] - centre) > GLITCH_SIGMAS * spread + 0.05 * abs(centre):
            glitches.append(i)
    return glitches


def _unit(table: Table, options: TelemetryOptions, alt_index: int, times: np.ndarray, altitude: np.ndarray,
          speeds: np.ndarray, speed: tuple[int, float | None] | None) -> tuple[str, str, str]:
    """(unit, where it came from, why): the option, the format, the name, the evidence, else assumed metres."""
    name = table.header[alt_index]
    if options.altitude_unit:
        return options.altitude_unit, "option", f"--alt-unit {options.altitude_unit}"
    if table.unit:
        return table.unit, "format", table.unit_reason
    named = _split_unit(name)[1]
    if named:
        return named, "name", f"from the name {name!r}"
    if speed is not None:
        inferred = _unit_from_speed(times, altitude, speeds, speed[1])
        speed_name = table.header[speed[0]]
        if inferred is not None:
            return inferred[0], "inferred", f"{inferred[1]} (the speed column {speed_name!r})"
        return "m", "assumed", f"no unit in the name {name!r}, and {speed_name!r} does not tell; say --alt-unit"
    return "m", "assumed", f"no unit in the name {name!r}; say --alt-unit"


def _unit_from_speed(times: np.ndarray, altitude: np.ndarray, speeds: np.ndarray,
                     speed_mps: float | None) -> tuple[str, str] | None:
    """The altitude's unit from a speed column beside it, or None when the evidence does not decide.

    The fastest vertical rate (over ~1 s, so that quantised altitudes do not make steps into spikes) is
    at most the fastest speed and, in a climb or a descent, a good part of it: 0.2 to 1.5 times it.
    """
    known = np.isfinite(speeds)
    t, h, v = times[known], altitude[known], np.abs(speeds[known])
    if len(t) < 10:
        return None
    step = max(1, round(1.0 / max(float(np.median(np.diff(t))), 1e-6)))
    k = min(step, len(t) - 1)
    rate = np.abs(h[k:] - h[:-k]) / np.maximum(t[k:] - t[:-k], 1e-9)
    fastest_rate, fastest_speed = float(np.percentile(rate, 99)), float(np.percentile(v, 99))
    if fastest_rate <= 0 or fastest_speed <= 0:
        return None
    pairs = [("m", 1.0), ("km", 1000.0)] if speed_mps else [("m", 1.0), ("km", 1000.0), ("km", 1.0)]
    # (altitude unit, speed unit in m/s): with no unit in the speed's name, m/s for metres, and m/s or km/s for km
    tried = [(unit, speed_mps or (1.0 if unit == "m" or index == 1 else 1000.0), UNITS_M[unit])
             for index, (unit, _) in enumerate(pairs)]
    fits = [(unit, s) for unit, s, a in tried
            if SPEED_RATIO[0] <= fastest_rate * a / (fastest_speed * s) <= SPEED_RATIO[1]]
    units = {unit for unit, _ in fits}
    if len(units) == 1:
        unit, s = fits[0]
        return unit, (f"its fastest vertical rate, {fastest_rate * UNITS_M[unit]:.4g} m/s, fits a fastest speed of "
                      f"{fastest_speed * s:.4g} m/s only if the altitude is {unit}")
    if len(units) == 2:
        return _unit_from_fall(h, v)
    return None


def _unit_from_fall(altitude: np.ndarray, speed: np.ndarray) -> tuple[str, str] | None:
    """An unpowered fall (speed rising all the way down, never from rest): the gravity it implies,
    Δ(v²/2)/Δh, must be one of a body one can land on; metres and km (with m/s and km/s) differ 1000x."""
    falls = float(np.mean(np.diff(altitude) < 0)) >= STEADY_SHARE and altitude[0] > altitude[-1]
    if not (falls and _rises(list(speed)) and speed.min() >= 0.5 * speed.max()):
        return None
    g_raw = (speed[-1] ** 2 - speed[0] ** 2) / 2 / (altitude[0] - altitude[-1])
    plausible = [unit for unit in ("m", "km") if GRAVITY_MPS2[0] <= g_raw * UNITS_M[unit] <= GRAVITY_MPS2[1]]
    if len(plausible) != 1:
        return None
    unit = plausible[0]
    return unit, (f"an unpowered fall whose speed gain implies a gravity of {g_raw * UNITS_M[unit]:.3g} m/s² "
                  f"in {unit} ({g_raw * UNITS_M['m' if unit == 'km' else 'km']:.3g} m/s² otherwise)")


DAY_S = 86400.0


def align_telemetry(telemetry: Telemetry, frame_times: np.ndarray, frames_utc: bool) -> np.ndarray:
    """Telemetry times on the frames' clock, before any offset found by synchronisation.

    UTC meets UTC. A time of day (seconds from midnight, no date) is on the first frame's UTC date,
    or the day before or after when that is nearer the frames; with frames that have no UTC times it
    counts from the first frame, as seconds from the start do. A count-down (negative times) counts to
    the last frame, the touchdown or impact it counts down to. --time-offset shifts any of them.
    """
    if telemetry.is_utc:
        if not frames_utc:
            raise UsageError(f"{telemetry.path}: the telemetry has UTC times but the frames' times are a "
                             "spacecraft clock; give the telemetry in seconds from the first frame")
        return telemetry.times_s
    if telemetry.counts_down:
        return telemetry.times_s + float(frame_times[-1])
    if telemetry.time_of_day:
        if not frames_utc:
            return telemetry.times_s - float(telemetry.times_s[0]) + float(frame_times[0])
        first = datetime.fromtimestamp(float(frame_times[0]), UTC)
        midnight = first.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
        times = telemetry.times_s + midnight
        # A log that starts before midnight and frames after it (or the reverse) are a day apart.
        middle = float(np.median(frame_times))
        days = min((-1, 0, 1), key=lambda k: abs(float(np.median(times)) + k * DAY_S - middle))
        return times + days * DAY_S
    return telemetry.times_s + float(frame_times[0])
