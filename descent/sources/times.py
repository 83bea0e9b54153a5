"""Capture times: from a sidecar index, the file name, EXIF, or the file's modification time.

Frames of video files carry their own: their presentation times (descent.sources.video).

One source serves the whole sequence: mixing clocks (a name stamp for some frames, EXIF for
others) would order frames by two different clocks. The first source in the order of trust that
has a time for every frame wins; `--time-source` forces one.

Modification times are the weakest clock: a copy gives every file the time it was copied, in the
order the copy took. They are used only when nothing better orders the frames, so they are refused
(unless forced) when they look like a copy, and when they disagree with a frame counter in the names.
"""

from __future__ import annotations

import bisect
import csv
import io
import itertools
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from descent.clock import parse_exif_time, parse_time_text, time_in_text, without_times
from descent.errors import DescentError, UsageError
from descent.frames import FrameInfo, TimeSource

_DIGIT_GROUPS = re.compile(r"\d+")

# A camera saving frames one by one writes fewer than 100 a second; a copy or an extraction writes
# hundreds, in bursts of files finished within the same millisecond.
COPY_MEDIAN_INTERVAL_S = 0.01
COPY_NEAR_EQUAL_S = 0.001
COPY_NEAR_EQUAL_SHARE = 0.25

log = logging.getLogger("descent")


@dataclass(frozen=True, slots=True)
class NameTime:
    time_s: float
    is_utc: bool
    span: tuple[int, int]  # where in the name the time was found


@dataclass(frozen=True, slots=True)
class TimeOptions:
    """How to find capture times; the defaults try every source in the order of trust."""

    index_csv: Path | None = None
    name_pattern: str | None = None  # a regex with a named group `time` (and optionally `counter`)
    source: TimeSource | None = None  # force one source


@dataclass(frozen=True, slots=True)
class TimedFrames:
    frames: list[FrameInfo]
    source: TimeSource
    times_are_utc: bool
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # already logged as warnings; for the report


def time_in_name(name: str) -> NameTime | None:
    """The first timestamp found in a file name: ISO 8601 (extended or compact) or Unix epoch."""
    found = time_in_text(name)
    return NameTime(*found) if found else None


def _counters(frames: Sequence[FrameInfo], names_without_times: list[str]) -> list[int] | None:
    """A frame counter in the names: the one number that changes from frame to frame, if there is one."""
    groups = [[int(g) for g in _DIGIT_GROUPS.findall(name)] for name in names_without_times]
    if not groups or len({len(g) for g in groups}) != 1 or not groups[0]:
        return None
    varying = [i for i in range(len(groups[0])) if len({g[i] for g in groups}) > 1]
    if len(varying) != 1:
        return None  # none, or several numbers change: no way to tell which counts frames
    return [g[varying[0]] for g in groups]


def _name_times(frames: Sequence[FrameInfo], pattern: str | None) -> tuple[list[NameTime | None], list[int] | None]:
    if pattern is None:
        found = [time_in_name(f.path.stem) for f in frames]
        return found, _counters(frames, [without_times(f.path.stem) for f in frames])
    try:
        regex = re.compile(pattern)
    except re.error as exc:
        raise UsageError(f"--name-pattern {pattern!r} is not a valid regular expression ({exc})") from None
    if "time" not in regex.groupindex:
        raise UsageError("--name-pattern needs a named group for the time, like (?P<time>\\d{10}_\\d{3})")
    times: list[NameTime | None] = []
    counters: list[int] = []
    for f in frames:
        m = regex.search(f.path.name)
        if not m:
            times.append(None)
            continue
        parsed = parse_time_text(m.group("time"))
        if parsed is None:
            raise DescentError(
                f"{f.path}: --name-pattern matched time {m.group('time')!r}, which is neither ISO 8601 "
                "nor seconds[.fraction]; adjust the pattern's time group"
            )
        times.append(NameTime(parsed[0], parsed[1], m.span("time")))
        if "counter" in regex.groupindex and m.group("counter") is not None:
            counters.append(int(m.group("counter")))
    has_counters = "counter" in regex.groupindex and len(counters) == len(frames)
    return times, (counters if has_counters else None)


def read_index(path: Path) -> dict[str, tuple[float, bool]]:
    """A sidecar CSV of (file, time): comma, semicolon or tab separated, with or without a header."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise DescentError(f"{path}: cannot read the times index ({exc.strerror or exc})") from None
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    rows = enumerate(csv.reader(io.StringIO(text), dialect), start=1)
    numbered = [(n, r) for n, r in rows if any(c.strip() for c in r)]
    if not numbered:
        raise DescentError(f"{path}: the times index is empty; it needs rows of file,time")
    file_col, time_col = 0, 1
    first = numbered[0][1]
    if parse_time_text(first[1] if len(first) > 1 else "") is None:
        header = [c.strip().lower() for c in first]
        file_col = next((i for i, c in enumerate(header) if c in ("file", "filename", "name", "path", "frame")), 0)
        time_col = next((i for i, c in enumerate(header) if c in ("time", "timestamp", "utc", "t", "time_s")), 1)
        numbered = numbered[1:]
    index: dict[str, tuple[float, bool]] = {}
    for line_no, row in numbered:
        if len(row) <= max(file_col, time_col):
            raise DescentError(f"{path}: line {line_no} has {len(row)} columns; expected file,time")
        parsed = parse_time_text(row[time_col])
        if parsed is None:
            raise DescentError(
                f"{path}: line {line_no}: {row[time_col]!r} is not a time (use ISO 8601 like "
                "2019-01-03T02:26:12.345Z, or seconds)"
            )
        index[row[file_col].strip()] = parsed
    return index


def _exif_time(path: Path) -> float | None:
    from PIL import ExifTags, Image

    try:
        with Image.open(path) as img:
            exif = img.getexif().get_ifd(ExifTags.IFD.Exif)
    except Exception:  # noqa: BLE001 - any unreadable EXIF just means no EXIF time
        return None
    original = exif.get(ExifTags.Base.DateTimeOriginal)
    if not original:
        return None
    return parse_exif_time(str(original), str(exif.get(ExifTags.Base.SubsecTimeOriginal, "")),
                           str(exif.get(ExifTags.Base.OffsetTimeOriginal, "")))


def _label_times(frames: list[FrameInfo]) -> list[float | None]:
    """Label UTC times when every frame has one, else spacecraft clock counts (relative, but enough to order
    and time a video without SPICE kernels)."""
    utc = [f.label.start_time_s if f.label else None for f in frames]
    if all(t is not None for t in utc):
        return utc
    clocks = [f.label.clock_s if f.label else None for f in frames]
    return clocks if all(t is not None for t in clocks) else utc


def assign_times(frames: list[FrameInfo], options: TimeOptions) -> TimedFrames:
    """Give every frame a capture time from one source, and a frame counter when the names have one.

    Modification times are skipped (unless forced) when they look like a copy or disagree with a
    counter in the names: the frames are then in counter (or natural name) order, with no times.
    """
    if any(f.video is not None for f in frames):
        return _video_times(frames, options)
    notes: list[str] = []
    warnings: list[str] = []
    forced = options.source
    sources = [forced] if forced else [TimeSource.INDEX, TimeSource.LABEL, TimeSource.NAME, TimeSource.EXIF,
                                       TimeSource.MTIME]
    for source in sources:
        if source is TimeSource.INDEX and options.index_csv is None:
            if forced:
                raise UsageError("--time-source index needs --times INDEX.csv")
            continue
        if source is TimeSource.NONE:
            break
        times, utc, counters = _times_from(source, frames, options)
        missing = [f for f, t in zip(frames, times, strict=True) if t is None]
        if not missing:
            if source is TimeSource.MTIME and not _mtimes_usable(frames, times, counters, forced=bool(forced),
                                                                 notes=notes, warnings=warnings):
                break
            timed = [replace(f, time_s=t, stamped_time_s=t, counter=c)
                     for f, t, c in zip(frames, times, _each(counters, len(frames)), strict=True)]
            return TimedFrames(timed, source, utc, notes, warnings)
        explicit = source is TimeSource.INDEX or (source is TimeSource.NAME and options.name_pattern)
        if forced or explicit:
            raise DescentError(
                f"{missing[0].path}: no capture time from {source.value} "
                f"({len(missing)} of {len(frames)} frames lack one); {_fix_for(source)}"
            )
        if len(missing) < len(frames):
            notes.append(
                f"{len(missing)} of {len(frames)} frames have no time in their {source.value} "
                f"(first: {missing[0].path.name}); trying the next source"
            )
    counters = _counters(frames, [f.path.stem for f in frames])
    notes.append("no capture times found: frames are in natural name order"
                 + (" (the counter in their names)" if counters else ""))
    timed = [replace(f, counter=c) for f, c in zip(frames, _each(counters, len(frames)), strict=True)]
    return TimedFrames(timed, TimeSource.NONE, False, notes, warnings)


def _video_times(frames: list[FrameInfo], options: TimeOptions) -> TimedFrames:
    """Frames of videos: their presentation times, the only clock they have (or none, when forced)."""
    if not all(f.video is not None for f in frames):
        raise UsageError("video files and image frames given together: give one or the other")
    forced = options.source
    if forced is TimeSource.NONE:
        return TimedFrames(frames, TimeSource.NONE, False, ["--time-source none: the videos' frames in their order, "
                                                            "their presentation times not used"])
    if forced not in (None, TimeSource.VIDEO) or options.index_csv is not None or options.name_pattern is not None:
        given = f"--time-source {forced}" if forced not in (None, TimeSource.VIDEO) else (
            "--times" if options.index_csv is not None else "--name-pattern")
        raise UsageError(f"{given}: the frames of a video have their presentation times; leave it out "
                         "(or give --time-source none to ignore them)")
    refs = [f.video for f in frames if f.video is not None]
    utc = all(ref.utc for ref in refs)
    timed = [replace(f, time_s=ref.time_s, stamped_time_s=ref.time_s) for f, ref in zip(frames, refs, strict=True)]
    note = ("capture times are the videos' presentation times, from their creation_time (UTC)" if utc else
            "capture times are the videos' presentation times, from 0 (no creation_time in the file)")
    return TimedFrames(timed, TimeSource.VIDEO, utc, [note])


def _mtimes_usable(frames: list[FrameInfo], times: list[float | None], counters: list[int] | None, *,
                   forced: bool, notes: list[str], warnings: list[str]) -> bool:
    """Whether modification times may order the frames; why not goes to the notes, or is warned."""
    refusal = None if forced else _mtime_refusal(frames, [t for t in times if t is not None], counters)
    if refusal is None:
        notes.append("capture times are file modification times, which are often the time of a copy: "
                     "check the order, or give --times or --name-pattern")
        return True
    message, loud = refusal
    if loud:
        log.warning("%s", message)
        warnings.append(message)
    else:
        notes.append(message)
    return False


def _mtime_refusal(frames: list[FrameInfo], times: list[float],
                   counters: list[int] | None) -> tuple[str, bool] | None:
    """Why modification times must not order these frames, and whether to say it loudly; None if they may."""
    copy = looks_like_a_copy(times)
    if copy is not None:
        if counters:
            return f"file modification times {copy} (a copy?): not used; frames are in counter order", False
        return (f"file modification times {copy} (a copy?): not used; frames are in natural name order, "
                "which may not be the capture order (give --times or --name-pattern, or --time-source mtime "
                "to use them anyway)"), True
    if counters:
        by_time = sorted(range(len(frames)), key=lambda i: times[i])
        wrong = find_out_of_place([counters[i] for i in by_time])
        if wrong:
            first = ", ".join(frames[by_time[i]].path.name for i in wrong[:5])
            return (f"file modification times put {len(wrong)} of {len(frames)} frames out of place against the "
                    f"counter in their names (first: {first}): not used; frames are in counter order "
                    "(--time-source mtime uses them anyway)"), True
    return None


def looks_like_a_copy(times: Sequence[float]) -> str | None:
    """How a set of modification times gives away a bulk copy, or None when they could be capture times.

    A copy writes files far faster than a camera saves frames (a median interval under 10 ms), in
    runs finished within the same millisecond, or with one time for many files (a coarse file system).
    """
    if len(times) < 2:
        return None
    ordered = sorted(times)
    intervals = [b - a for a, b in itertools.pairwise(ordered)]
    if len(set(ordered)) <= len(ordered) / 2:
        return "are mostly equal"
    median = sorted(intervals)[len(intervals) // 2]
    if median < COPY_MEDIAN_INTERVAL_S:
        return (f"span {ordered[-1] - ordered[0]:.3g} s for {len(times)} frames "
                f"({1 / max(median, 1e-6):.0f} a second)")
    near_equal = sum(d < COPY_NEAR_EQUAL_S for d in intervals)
    if len(intervals) >= 4 and near_equal >= COPY_NEAR_EQUAL_SHARE * len(intervals):
        return f"come in runs within a millisecond ({near_equal} of {len(intervals)} intervals)"
    return None


def find_out_of_place(counters: Sequence[int | None]) -> list[int]:
    """Positions whose counter breaks the counter order that the given order gives to most frames.

    The longest non-decreasing run of counters (in the given order) is taken as right; every other
    frame disagrees with its neighbours and is reported.
    """
    if not counters or any(c is None for c in counters):
        return []
    values = [int(c) for c in counters]  # type: ignore[arg-type]
    # Patience sorting for the longest non-decreasing subsequence, remembering predecessors.
    tails: list[int] = []
    tail_index: list[int] = []
    parent = [-1] * len(values)
    for i, v in enumerate(values):
        pos = bisect.bisect_right(tails, v)
        if pos == len(tails):
            tails.append(v)
            tail_index.append(i)
        else:
            tails[pos] = v
            tail_index[pos] = i
        parent[i] = tail_index[pos - 1] if pos else -1
    keep = set()
    i = tail_index[-1]
    while i >= 0:
        keep.add(i)
        i = parent[i]
    return [i for i in range(len(values)) if i not in keep]


def _each(counters: list[int] | None, n: int) -> list[int | None]:
    return list(counters) if counters else [None] * n


def _fix_for(source: TimeSource) -> str:
    return {
        TimeSource.INDEX: "add the file to the --times index",
        TimeSource.LABEL: "choose another --time-source",
        TimeSource.NAME: "give a --name-pattern whose (?P<time>...) group matches every frame, "
        "or another --time-source",
        TimeSource.EXIF: "choose another --time-source",
        TimeSource.MTIME: "choose another --time-source",
        TimeSource.VIDEO: "video times are for the frames of video files; choose another --time-source",
        TimeSource.NONE: "",
    }[source]


def _times_from(
    source: TimeSource, frames: list[FrameInfo], options: TimeOptions
) -> tuple[list[float | None], bool, list[int] | None]:
    """Times from one source (None where a frame has none), whether they are UTC, and counters."""
    if source is TimeSource.INDEX:
        assert options.index_csv is not None
        index = read_index(options.index_csv)
        found: list[float | None] = []
        utc = True
        for f in frames:
            entry = index.get(f.path.name) or index.get(str(f.path))
            found.append(entry[0] if entry else None)
            utc = utc and bool(entry and entry[1])
        return found, utc, _counters(frames, [without_times(f.path.stem) for f in frames])
    if source is TimeSource.NAME:
        name_times, counters = _name_times(frames, options.name_pattern)
        utc = all(t.is_utc for t in name_times if t)
        return [t.time_s if t else None for t in name_times], utc, counters
    counters = _counters(frames, [without_times(f.path.stem) for f in frames])
    if source is TimeSource.LABEL:
        return _label_times(frames), all(f.label and f.label.start_time_s is not None for f in frames), counters
    if source is TimeSource.EXIF:
        return [_exif_time(f.path) for f in frames], True, counters
    if source is TimeSource.VIDEO:  # image frames (video frames never come here): none has a video's time
        return [None] * len(frames), False, counters
    return [os.stat(f.path).st_mtime for f in frames], True, counters
