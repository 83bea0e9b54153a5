"""Telemetry in: an altitude series from a flight log, cleaned and understood.

Real logs are messy: a preamble before the header, padded fields, empty cells, repeated
timestamps, unsorted rows, a glitch. Columns are found by common names or named by the user;
times may be ISO 8601, Unix epoch, seconds from the start, a count-down to an event, or any
strftime format; altitudes may be metres, kilometres or feet. Everything that was cleaned is
reported, so `descent telemetry` can say what was understood before a build relies on it.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from descent.clock import format_time, parse_time_text
from descent.errors import DescentError, UsageError

# Column names, compared without a unit suffix: alt_ft, altitude (m) and height[km] are all "altitude".
TIME_NAMES = ("time", "timestamp", "utc", "t", "time_utc", "datetime", "date_time", "seconds")
ALTITUDE_NAMES = ("altitude", "alt", "height", "agl", "range", "alt_agl", "altitude_agl")
_UNIT_SUFFIX = re.compile(r"[\s_]*(?:\(|\[)?\s*(m|km|ft|s)\s*(?:\)|\])?$")
UNITS_M = {"m": 1.0, "km": 1000.0, "ft": 0.3048}
GLITCH_SIGMAS = 8.0  # a sample this far from its neighbours' median (in their spread) is a glitch


@dataclass(frozen=True, slots=True)
class TelemetryOptions:
    time_column: str | None = None
    altitude_column: str | None = None
    time_format: str | None = None  # a strftime format, or "countdown" (seconds before an event)
    altitude_unit: str | None = None  # m, km, ft; default from the column name, else metres
    time_offset_s: float = 0.0  # added to every telemetry time (positive: telemetry is late)


@dataclass(frozen=True, slots=True)
class Telemetry:
    """Altitude against time, sorted and unique."""

    path: Path
    times_s: np.ndarray  # Unix seconds when is_utc, else seconds relative to the telemetry's own zero
    altitude_m: np.ndarray
    is_utc: bool
    time_column: str
    altitude_column: str
    unit: str
    problems: list[str] = field(default_factory=list)
    counts_down: bool = False  # times are seconds before an event (touchdown, impact), negated

    @property
    def span_s(self) -> float:
        return float(self.times_s[-1] - self.times_s[0])

    @property
    def median_interval_s(self) -> float:
        return float(np.median(np.diff(self.times_s))) if len(self.times_s) > 1 else math.inf

    def lines(self) -> list[str]:
        """What was understood, for people."""
        start = format_time(self.times_s[0], utc=self.is_utc)
        end = format_time(self.times_s[-1], utc=self.is_utc)
        out = [f"file        {self.path}",
               f"columns     time: {self.time_column!r}, altitude: {self.altitude_column!r} ({self.unit})",
               f"samples     {len(self.times_s)}",
               f"span        {start} to {end} ({self.span_s:.3f} s)",
               f"rate        {1 / self.median_interval_s:.3g} samples/s" if self.median_interval_s > 0 else "rate  -",
               f"altitude    {self.altitude_m.max():.1f} m to {self.altitude_m.min():.1f} m"]
        out += [f"problem     {p}" for p in self.problems] or ["problems    none"]
        return out

    def to_dict(self) -> dict[str, object]:
        return {"file": str(self.path), "time_column": self.time_column, "altitude_column": self.altitude_column,
                "unit": self.unit, "samples": len(self.times_s), "is_utc": self.is_utc,
                "start": format_time(self.times_s[0], utc=self.is_utc),
                "end": format_time(self.times_s[-1], utc=self.is_utc),
                "span_s": self.span_s, "rate_hz": 1 / self.median_interval_s if self.median_interval_s > 0 else None,
                "altitude_m": {"max": float(self.altitude_m.max()), "min": float(self.altitude_m.min())},
                "problems": self.problems}


def read_telemetry(path: Path, options: TelemetryOptions | None = None) -> Telemetry:
    """Read and clean an altitude log: CSV or TSV (delimiter detected) or JSON lines."""
    options = options or TelemetryOptions()
    try:
        text = path.read_text(encoding="utf-8-sig", errors="replace")
    except OSError as exc:
        raise DescentError(f"{path}: cannot read the telemetry ({exc.strerror or exc})") from None
    header, rows = _json_lines(text) if text.lstrip().startswith("{") else _delimited(text, path)
    time_col = _choose(header, options.time_column, TIME_NAMES, "time", path)
    alt_col = _choose(header, options.altitude_column, ALTITUDE_NAMES, "altitude", path)
    unit = options.altitude_unit or _unit_from_name(header[alt_col]) or "m"
    if unit not in UNITS_M:
        raise UsageError(f"--alt-unit {unit}: choose m, km or ft")
    problems: list[str] = []
    times, alts, empty, bad_time = [], [], 0, []
    for line_no, row in rows:
        t_text = row[time_col].strip() if time_col < len(row) else ""
        a_text = row[alt_col].strip() if alt_col < len(row) else ""
        if not t_text or not a_text:
            empty += 1
            continue
        parsed = _parse_time(t_text, options.time_format)
        try:
            metres = float(a_text) * UNITS_M[unit]
        except ValueError:
            metres = math.nan
        if parsed is None or not math.isfinite(metres):
            bad_time.append(line_no)
            continue
        times.append(parsed)
        alts.append(metres)
    if empty:
        problems.append(f"{empty} rows with an empty time or altitude cell skipped")
    if bad_time:
        shown = ", ".join(map(str, bad_time[:5])) + (" ..." if len(bad_time) > 5 else "")
        problems.append(f"{len(bad_time)} rows with an unreadable time or altitude skipped (lines {shown})")
    if len(times) < 2:
        hint = f" with --time-format {options.time_format!r}" if options.time_format else \
            "; give --time-format (a strftime format like %y%m%d%H%M%S.%f)"
        raise DescentError(f"{path}: fewer than two rows with a readable time and altitude in columns "
                           f"{header[time_col]!r} and {header[alt_col]!r}{hint}")
    utc = [p[1] for p in times]
    values = np.array([p[0] for p in times], np.float64) + options.time_offset_s
    altitude = np.array(alts, np.float64)
    if np.any(np.diff(values) < 0):
        problems.append("rows were not in time order: sorted")
    order = np.argsort(values, kind="stable")
    values, altitude = values[order], altitude[order]
    unique, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    if len(unique) < len(values):
        problems.append(f"{int((counts > 1).sum())} repeated timestamps: their altitudes averaged")
        altitude = np.bincount(inverse, weights=altitude) / counts
        values = unique
    glitches = _glitches(altitude)
    if glitches:
        problems.append(f"{len(glitches)} glitches (far off their neighbours) dropped: at "
                        + ", ".join(format_time(values[i], utc=all(utc)) for i in glitches[:5]))
        values = np.delete(values, glitches)
        altitude = np.delete(altitude, glitches)
    return Telemetry(path, values, altitude, all(utc), header[time_col], header[alt_col], unit, problems,
                     counts_down=options.time_format == "countdown")


def _parse_time(text: str, time_format: str | None) -> tuple[float, bool] | None:
    if time_format == "countdown":
        try:
            return -float(text), False  # seconds before an event: later rows have smaller counts
        except ValueError:
            return None
    if time_format:
        try:
            when = datetime.strptime(text, time_format)
        except ValueError:
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return when.timestamp(), True
    parsed = parse_time_text(text)
    if parsed is None:
        return None
    seconds, utc = parsed
    return seconds, utc or seconds > 9e8  # a plain number past 1998 is Unix time, not seconds from start


def _glitches(altitude: np.ndarray) -> list[int]:
    """Samples far from the median of their neighbours, relative to the local spread: data glitches."""
    n = len(altitude)
    if n < 7:
        return []
    glitches = []
    for i in range(n):
        lo, hi = max(0, i - 3), min(n, i + 4)
        neighbours = np.delete(altitude[lo:hi], i - lo)
        centre = float(np.median(neighbours))
        spread = 1.4826 * float(np.median(np.abs(neighbours - centre))) + 1e-3 * max(abs(centre), 1.0)
        if abs(altitude[i] - centre) > GLITCH_SIGMAS * spread + 0.05 * abs(centre):
            glitches.append(i)
    return glitches


def _unit_from_name(name: str) -> str | None:
    m = re.search(r"(?:^|[_\s(\[])(m|km|ft)\)?\]?$", name.strip().lower())
    return m.group(1) if m else None


def _base_name(name: str) -> str:
    folded = name.strip().lower()
    bare = _UNIT_SUFFIX.sub("", folded) if "_" in folded or "(" in folded or "[" in folded else folded
    return bare or folded


def _choose(header: list[str], wanted: str | None, names: tuple[str, ...], what: str, path: Path) -> int:
    folded = [h.strip().lower() for h in header]
    option = "--time-column" if what == "time" else "--alt-column"
    if wanted is not None:
        if wanted.strip().lower() in folded:
            return folded.index(wanted.strip().lower())
        raise UsageError(f"{path}: {option} {wanted!r}: no such column; the columns are "
                         f"{', '.join(repr(h) for h in header)}")
    bases = [_base_name(h) for h in header]
    for name in names:
        if name in bases:
            return bases.index(name)
    raise UsageError(f"{path}: no {what} column found among {', '.join(repr(h) for h in header)}; "
                     f"name it with {option}")


def _delimited(text: str, path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The header and numbered data rows of a CSV/TSV, after any preamble of comments or notes."""
    delimiter = _delimiter([line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")])
    rows = [(n, r) for n, r in enumerate(csv.reader(io.StringIO(text), delimiter=delimiter), start=1)
            if not (r and r[0].lstrip().startswith("#"))]
    width = max((len(r) for _, r in rows), default=0)
    # The header is the first row as wide as the data whose cells are mostly names, not numbers.
    for index, (_, row) in enumerate(rows):
        cells = [c.strip() for c in row]
        if len(cells) >= min(2, width) and len(cells) == width and sum(_is_name(c) for c in cells) > len(cells) / 2:
            data = [(n, [c.strip() for c in r]) for n, r in rows[index + 1 :] if any(c.strip() for c in r)]
            return cells, data
    raise DescentError(f"{path}: no header row found; the telemetry needs a header naming its columns")


def _delimiter(lines: list[str]) -> str:
    """The delimiter that splits the last rows (the data, past any preamble) most consistently.

    csv.Sniffer gives up on a preamble of notes whose commas and semicolons disagree with the data.
    """
    tail = lines[-30:]
    best, best_columns = ",", 1
    for candidate in (",", ";", "\t"):
        counts = [len(row) for row in csv.reader(tail, delimiter=candidate)]
        columns = max(set(counts), key=counts.count) if counts else 1
        if columns > best_columns:
            best, best_columns = candidate, columns
    return best


def _is_name(cell: str) -> bool:
    return bool(cell) and not re.fullmatch(r"[-+]?[\d.:eE/TZ -]+", cell)


def _json_lines(text: str) -> tuple[list[str], list[tuple[int, list[str]]]]:
    records = []
    for line_no, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                records.append((line_no, json.loads(line)))
            except ValueError:
                continue
    header: list[str] = []
    for _, record in records:
        header += [k for k in record if k not in header]
    rows = [(n, ["" if r.get(k) is None else str(r.get(k)) for k in header]) for n, r in records]
    return header, rows
