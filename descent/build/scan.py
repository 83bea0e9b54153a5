"""Scan: find the frames, read their headers and capture times, put them in order; read the altitude log.

Only headers and times are read, so this costs little even for 10,000 frames. Video files are
probed instead (their streams and every frame's presentation time, descent.sources.video), and
their frames take the place of image frames from there on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from descent.altitude import AltitudeConfig
from descent.build.config import RunConfig, SourceConfig
from descent.build.progress import progress
from descent.errors import DescentError, FrameReadError
from descent.frames import FrameInfo
from descent.order import OrderedSequence, order_frames
from descent.parallel import ordered_map
from descent.report import Unreadable
from descent.sources.discover import discover
from descent.sources.images import probe
from descent.sources.times import assign_times
from descent.sources.video import VideoStream, join_videos, probe_video
from descent.telemetry import Telemetry, read_telemetry

log = logging.getLogger("descent")


@dataclass(frozen=True, slots=True)
class Scan:
    sequence: OrderedSequence
    images_found: int
    skipped_files: int
    unreadable: list[Unreadable]


def skip_or_stop(error: FrameReadError, *, strict: bool) -> Unreadable:
    """An unreadable frame: stop with --strict, else say so and record it."""
    if strict:
        raise error
    log.warning("%s: %s; skipped (use --strict to stop instead)", error.path, error.reason)
    return Unreadable(str(error.path), error.reason)


def scan(source: SourceConfig, run: RunConfig) -> Scan:
    """Find the frames, read their headers and capture times, and put them in order."""
    found = discover(list(source.inputs), recursive=source.recursive)
    if found.videos:
        return _scan_videos(found.videos, len(found.skipped), source, run)

    def safe_probe(path: Path) -> FrameInfo | FrameReadError:
        try:
            return probe(path, found.labels.get(path), product=path in found.labels)
        except FrameReadError as error:
            return error

    infos: list[FrameInfo] = []
    unreadable: list[Unreadable] = []
    probes = ordered_map(safe_probe, found.images, workers=run.worker_count, ahead=64)
    for result in progress(probes, total=len(found.images), desc="scanning", show=run.progress):
        if isinstance(result, FrameReadError):
            unreadable.append(skip_or_stop(result, strict=source.strict))
        else:
            infos.append(result)
    if not infos:
        first = f" (first: {unreadable[0].file}: {unreadable[0].reason})" if unreadable else ""
        raise DescentError(f"{', '.join(source.inputs)}: none of the {len(found.images)} images could be read{first}")
    sequence = order_frames(assign_times(infos, source.times), strict=source.strict)
    for note in sequence.notes:
        log.info("%s", note)
    return Scan(sequence, len(found.images), len(found.skipped), unreadable)


def _scan_videos(videos: list[Path], skipped: int, source: SourceConfig, run: RunConfig) -> Scan:
    """The frames of video files, joined in time order, each with its presentation time."""
    def safe_probe(path: Path) -> VideoStream | FrameReadError:
        try:
            return probe_video(path)
        except FrameReadError as error:
            return error

    streams: list[VideoStream] = []
    unreadable: list[Unreadable] = []
    for result in ordered_map(safe_probe, videos, workers=min(run.worker_count, len(videos))):
        if isinstance(result, FrameReadError):
            unreadable.append(skip_or_stop(result, strict=source.strict))
        else:
            streams.append(result)
    if not streams:
        first = f" (first: {unreadable[0].file}: {unreadable[0].reason})" if unreadable else ""
        raise DescentError(f"{', '.join(source.inputs)}: none of the {len(videos)} videos could be read{first}")
    joined = join_videos(streams)
    for note in joined.notes:
        log.info("%s", note)
    timed = assign_times(joined.frames, source.times)
    timed.notes[:0] = joined.notes
    sequence = order_frames(timed, strict=source.strict)
    for note in sequence.notes[len(joined.notes):]:
        log.info("%s", note)
    return Scan(sequence, len(joined.frames), skipped, unreadable)


def load_telemetry(config: AltitudeConfig) -> Telemetry | None:
    """The altitude log, read before the long passes so that a bad one fails at once."""
    if config.telemetry is None:
        return None
    telemetry = read_telemetry(config.telemetry, config.telemetry_options)
    for problem in telemetry.problems:
        log.warning("%s: %s", config.telemetry, problem)
    return telemetry
