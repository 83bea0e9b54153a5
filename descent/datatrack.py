"""The values drawn on each output frame, as data: a subtitle track and a CSV.

Each shown frame becomes one subtitle cue for as long as it is on screen. A cue has two lines:
what the HUD shows, for people, and `key=value` pairs at full precision for scripts, so
`ffmpeg -i landing.mp4 -map 0:s:0 -f srt -` gives the numbers back.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

from descent.altitude import AltitudeTrack
from descent.clock import format_utc


@dataclass(frozen=True, slots=True)
class ShownFrame:
    output_first: int  # first output frame that shows it
    output_count: int
    index: int  # the captured frame
    file: str


def _number(value: float | None, digits: int) -> str:
    return "" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def _row(shown: ShownFrame, track: AltitudeTrack, fps: float) -> dict[str, str]:
    i = shown.index
    capture = float(track.times_s[i])
    return {
        "output_frame": str(shown.output_first),
        "video_time_s": f"{shown.output_first / fps:.6f}",
        "frames_shown": str(shown.output_count),
        "file": shown.file,
        "capture_time": format_utc(capture) if track.times_are_utc else f"{capture:.6f}",
        "altitude_m": _number(float(track.altitude_m[i]), 3),
        "vertical_speed_mps": _number(float(track.vertical_speed_mps[i]), 3),
        "time_to_touchdown_s": _number(track.time_to_touchdown_s(i), 3),
        "estimated": "1" if bool(track.estimated[i]) and bool(track.known[i]) else "0",
    }


def write_csv(path: Path, shown: list[ShownFrame], track: AltitudeTrack, *, fps: float) -> None:
    """--telemetry-out: one row per shown frame, the exact values drawn on it."""
    rows = [_row(s, track, fps) for s in shown]
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["output_frame"])
        writer.writeheader()
        writer.writerows(rows)


def _timestamp(seconds: float) -> str:
    millis = round(seconds * 1000)
    return f"{millis // 3_600_000:02d}:{millis // 60_000 % 60:02d}:{millis // 1000 % 60:02d},{millis % 1000:03d}"


def write_srt(path: Path, shown: list[ShownFrame], track: AltitudeTrack, human: list[str], *, fps: float) -> None:
    """A SubRip file with one cue per shown frame; `human` is the HUD's text for each of them."""
    cues = []
    for number, (s, text) in enumerate(zip(shown, human, strict=True), start=1):
        row = _row(s, track, fps)
        data = " ".join(f"{key}={row[key] or 'nan'}" for key in
                        ("altitude_m", "vertical_speed_mps", "time_to_touchdown_s", "capture_time", "estimated"))
        start, end = s.output_first / fps, (s.output_first + s.output_count) / fps
        cues.append(f"{number}\n{_timestamp(start)} --> {_timestamp(end)}\n{text}\n{data}\n")
    path.write_text("\n".join(cues), encoding="utf-8")
