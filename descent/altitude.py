"""Altitude for every captured frame: from telemetry, from the images, or both.

- Telemetry is interpolated at each frame's own capture time, in log(altitude + 1 m): a descent is
  close to exponential, which that interpolates exactly, and touchdown stays finite.
- From the images: for a nadir camera, the ratio of two frames' altitudes is the inverse of their
  relative scale, which the stabiliser measures. The camera path's log-scale chain gives every
  frame's altitude relative to the first; known altitudes (`--altitude-at`, or sparse telemetry)
  anchor it. Between anchors the chain's drift is spread linearly in log space, so the altitude
  follows the images' shape (a hover stays flat) instead of a straight line between the points.
- Synchronisation, the log's clock against the frames' from the images alone, is sync.py's; the
  offset it finds is applied here (`track_for_frames`).
- Derived: vertical speed (the altitude smoothed over about a second, differentiated) and time
  to touchdown (when the descent ends: the altitude reaches the ground or comes to rest near it, or
  extrapolated from the final descent rate).
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from descent.errors import UsageError
from descent.smoothing import smoothness_for, whittaker
from descent.sync import OffsetFit
from descent.telemetry import Telemetry, TelemetryOptions, align_telemetry

log = logging.getLogger("descent")

GROUND_M = 1.0  # added before taking logs, and the altitude counted as touchdown
REST_M = 5.0  # a descent that comes to rest this low has landed (a camera on a lander's deck, a log's zero off)
SPARSE_INTERVAL_S = 2.0  # telemetry sparser than this is filled along the image scale chain
SPEED_SMOOTHING_S = 1.0
LOG_EDGE_S = 0.01  # a frame this close beyond the log's ends takes its end value (from_telemetry)


@dataclass(frozen=True, slots=True)
class AltitudeConfig:
    """Where altitude comes from: a telemetry file, known altitudes for the image chain, or both."""

    telemetry: Path | None = None
    telemetry_options: TelemetryOptions = field(default_factory=TelemetryOptions)
    altitude_at: tuple[str, ...] = ()  # "TIME=ALTITUDE" anchors for the estimate from the images
    sync: bool = True  # --time-offset auto: synchronise the log with the images when motion is measured

    @property
    def wanted(self) -> bool:
        return self.telemetry is not None or bool(self.altitude_at)


@dataclass(frozen=True, slots=True)
class AltitudeTrack:
    """What the HUD shows for each captured frame; NaN where it is not known."""

    times_s: np.ndarray  # capture times (Unix seconds when times_are_utc, else the sequence's clock)
    times_are_utc: bool
    altitude_m: np.ndarray
    vertical_speed_mps: np.ndarray  # negative while descending
    estimated: np.ndarray  # bools: from the image scale chain rather than measured
    touchdown_s: float | None
    source: str  # "telemetry", "images" or "telemetry and images"
    time_offset_s: float = 0.0  # added to the telemetry's times by track_for_frames (beyond --time-offset)
    offset_fit: OffsetFit | None = None  # the synchronisation by the images, when one was tried

    def time_to_touchdown_s(self, index: int) -> float | None:
        return None if self.touchdown_s is None else self.touchdown_s - float(self.times_s[index])

    @property
    def known(self) -> np.ndarray:
        return np.isfinite(self.altitude_m)


def _log_altitude(altitude_m: np.ndarray) -> np.ndarray:
    return np.log(np.maximum(altitude_m, 0.0) + GROUND_M)


def _from_log(values: np.ndarray) -> np.ndarray:
    return np.exp(values) - GROUND_M


def from_telemetry(telemetry: Telemetry, frame_times: np.ndarray, *, frames_utc: bool,
                   scale_chain: np.ndarray | None = None) -> AltitudeTrack:
    """Altitude at each frame's capture time. Sparse telemetry is filled along the image scale chain
    when there is one; outside the telemetry's span the altitude is unknown (NaN)."""
    times = align_telemetry(telemetry, frame_times, frames_utc)
    # A frame within LOG_EDGE_S of the log's ends takes its end value: an offset found by synchronisation is
    # known to a millisecond, and an exact log would otherwise lose its first or last frame to the rounding.
    inside = (frame_times >= times[0] - LOG_EDGE_S) & (frame_times <= times[-1] + LOG_EDGE_S)
    sparse = telemetry.median_interval_s > SPARSE_INTERVAL_S and scale_chain is not None
    if sparse:
        assert scale_chain is not None
        altitude = _along_chain(frame_times, scale_chain, times, telemetry.altitude_m)
        nearest = np.min(np.abs(frame_times[:, None] - times[None, :]), axis=1)
        estimated = nearest > _frame_interval(frame_times)
        source = "telemetry and images"
    else:
        altitude = _from_log(np.interp(frame_times, times, _log_altitude(telemetry.altitude_m)))
        estimated = np.zeros(len(frame_times), bool)
        source = "telemetry"
    altitude = np.where(inside, altitude, np.nan)
    speed_times, speed = vertical_speed(times, telemetry.altitude_m)
    vertical = np.where(inside, np.interp(frame_times, speed_times, speed), np.nan)
    return AltitudeTrack(frame_times, frames_utc, altitude, vertical, estimated,
                         touchdown_time(times, telemetry.altitude_m), source)


def from_images(frame_times: np.ndarray, scale_chain: np.ndarray, anchors: list[tuple[float, float]], *,
                frames_utc: bool) -> AltitudeTrack:
    """Altitude of every frame from the scale chain and one or more known (time, altitude) points."""
    anchor_times = np.array([a[0] for a in anchors], np.float64)
    anchor_alts = np.array([a[1] for a in anchors], np.float64)
    order = np.argsort(anchor_times)
    altitude = _along_chain(frame_times, scale_chain, anchor_times[order], anchor_alts[order])
    speed_times, speed = vertical_speed(frame_times, altitude)
    return AltitudeTrack(frame_times, frames_utc, altitude, np.interp(frame_times, speed_times, speed),
                         np.ones(len(frame_times), bool), touchdown_time(frame_times, altitude), "images")


def track_for_frames(telemetry: Telemetry | None, anchors: list[tuple[float, float]], frame_times: np.ndarray, *,
                     frames_utc: bool, scale_chain: np.ndarray | None,
                     time_offset: OffsetFit | float = 0.0) -> AltitudeTrack:
    """Altitude for every captured frame: from the telemetry, or from the image scale chain and the anchors.

    `time_offset` is added to the telemetry's times (on top of --time-offset, which the reader applied):
    seconds, or the OffsetFit of `fit_time_offset`, applied when usable; a poor fit applies nothing and
    says why in a warning. The track keeps both (`time_offset_s`, `offset_fit`) for the report.
    """
    if telemetry is not None:
        fit = time_offset if isinstance(time_offset, OffsetFit) else None
        if isinstance(time_offset, OffsetFit):
            offset = time_offset.offset_s if time_offset.usable else 0.0
            if not time_offset.usable:
                log.warning("the telemetry is not synchronised with the images: %s", time_offset.verdict)
        else:
            offset = float(time_offset)
        shifted = replace(telemetry, times_s=telemetry.times_s + offset) if offset else telemetry
        track = from_telemetry(shifted, frame_times, frames_utc=frames_utc, scale_chain=scale_chain)
        outside = int((~track.known).sum())
        if outside:
            log.warning("%d of %d frames fall outside the telemetry's span; the HUD shows -- for them "
                        "(check --time-offset)", outside, len(frame_times))
        return replace(track, time_offset_s=offset, offset_fit=fit)
    if scale_chain is None:
        raise ValueError("an altitude track from the images needs the image scale chain")
    return from_images(frame_times, scale_chain, anchors, frames_utc=frames_utc)


def _along_chain(frame_times: np.ndarray, scale_chain: np.ndarray, anchor_times: np.ndarray,
                 anchor_alts: np.ndarray) -> np.ndarray:
    """exp(chain + offset): the offset is fitted at each anchor and interpolated between them."""
    chain_at_anchor = np.interp(anchor_times, frame_times, scale_chain)
    offsets = _log_altitude(anchor_alts) - chain_at_anchor
    return _from_log(scale_chain + np.interp(frame_times, anchor_times, offsets))


def _frame_interval(frame_times: np.ndarray) -> float:
    return float(np.median(np.diff(frame_times))) if len(frame_times) > 1 else 1.0


def vertical_speed(times: np.ndarray, altitude: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vertical speed on a regular grid: the altitude resampled, smoothed over about a second, differentiated."""
    known = np.isfinite(altitude)
    times, altitude = times[known], altitude[known]
    if len(times) < 2:
        return np.array([0.0, 1.0]), np.array([math.nan, math.nan])
    step = max(min(_frame_interval(times), 0.25), 0.02)
    grid = np.arange(times[0], times[-1] + step / 2, step)
    resampled = np.interp(grid, times, altitude)
    smooth = whittaker(resampled, np.ones(len(grid)), smoothness_for(SPEED_SMOOTHING_S / step))
    return grid, np.gradient(smooth, step)


def touchdown_time(times: np.ndarray, altitude: np.ndarray) -> float | None:
    """When the descent ends: the altitude first reaches the ground, or comes to rest near it (within
    REST_M: a camera on a landed lander's deck, or a log whose zero is a little off), or, past the data,
    when the final descent rate would take it to the ground. None when it neither lands nor comes down."""
    known = np.isfinite(altitude)
    times, altitude = times[known], altitude[known]
    if len(times) < 2:
        return None
    down = np.flatnonzero(altitude <= GROUND_M)
    if len(down):
        return float(times[down[0]])
    _, speed = vertical_speed(times, altitude)
    final = float(np.median(speed[-max(1, len(speed) // 20) :]))
    if final < -0.05:
        return float(times[-1] + (altitude[-1] - GROUND_M) / -final)
    return _came_to_rest(times, altitude)


def _came_to_rest(times: np.ndarray, altitude: np.ndarray) -> float | None:
    """When a log that ends still, near the ground, after coming down to it, arrived there; else None."""
    tail = altitude[-max(3, len(altitude) // 20) :]
    rest = float(np.median(tail))
    # At rest within the log's own noise (or 0.25 m, or 10%) of where it ends.
    tolerance = max(0.25, 0.1 * rest, 4 * 1.4826 * float(np.median(np.abs(tail - rest))))
    above = np.flatnonzero(altitude > rest + tolerance)
    if rest > REST_M or not len(above):
        return None
    arrived = int(above[-1])
    return float(np.interp(rest + tolerance, altitude[arrived : arrived + 2][::-1], times[arrived : arrived + 2][::-1]))


_ALTITUDE_AT = re.compile(r"^(?P<time>[^=]+)=(?P<value>[\d.]+)\s*(?P<unit>m|km|ft)?$", re.IGNORECASE)


def parse_altitude_at(text: str, *, first_time_s: float, times_utc: bool) -> tuple[float, float]:
    """`--altitude-at TIME=ALTITUDE`: TIME as HH:MM:SS(.f) UTC on the first frame's date, ISO 8601, or
    +SECONDS from the first frame; ALTITUDE in metres, or with km or ft."""
    from descent.clock import parse_time_text
    from descent.telemetry import UNITS_M

    m = _ALTITUDE_AT.match(text.strip())
    if not m:
        raise UsageError(f"--altitude-at {text!r}: give TIME=ALTITUDE, like 02:26:00=1900 or +12.5=2.4km")
    altitude = float(m.group("value")) * UNITS_M[(m.group("unit") or "m").lower()]
    when = m.group("time").strip()
    if when.startswith("+"):
        return first_time_s + float(when[1:]), altitude
    clock = re.fullmatch(r"(\d{1,2}):(\d{2}):(\d{2}(?:\.\d+)?)", when)
    if clock:
        if not times_utc:
            raise UsageError(f"--altitude-at {text!r}: the frames have no UTC times; give +SECONDS from the "
                             "first frame instead")
        day = datetime.fromtimestamp(first_time_s, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        h, mi, s = int(clock.group(1)), int(clock.group(2)), float(clock.group(3))
        return (day + timedelta(hours=h, minutes=mi, seconds=s)).timestamp(), altitude
    parsed = parse_time_text(when)
    if parsed is None:
        raise UsageError(f"--altitude-at {text!r}: {when!r} is not a time (HH:MM:SS, ISO 8601 or +SECONDS)")
    return parsed[0], altitude
