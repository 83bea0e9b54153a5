"""Scan: find the frames, read their headers and capture times, put them in order; read the altitude log.

Only headers and times are read, so this costs little even for 10,000 frames. Video files are
probed instead (their streams and every frame's presentation time, descent.sources.video), and
their frames take the place of image frames from there on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from descent.altitude import AltitudeConfig
from descent.build.config import RunConfig, SourceConfig
from descent.build.progress import progress
from descent.errors import DescentError, FrameReadError
from descent.order import OrderedSequence, order_frames
from descent.parallel import ordered_map
from descent.report import Unreadable
from descent.sources.discover import discover
from descent.sources.images import probe
from descent.sources.times import assign_times
from descent.sources.video import join_videos, probe_video
from descent.telemetry import Telemetry, read_telemetry

log = logging.getLogger("descent")
T = TypeVar("T")


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
    infos, unreadable = _probe_all(
        lambda path: probe(path, found.labels.get(path), product=path in found.labels), found.images,
        what="images", source=source, workers=run.worker_count, show_progress=run.progress)
    sequence = order_frames(assign_times(infos, source.times), strict=source.strict)
    for note in sequence.notes:
        log.info("%s", note)
    return Scan(sequence, len(found.images), len(found.skipped), unreadable)


def _scan_videos(videos: list[Path], skipped: int, source: SourceConfig, run: RunConfig) -> Scan:
    """The frames of video files, joined in time order, each with its presentation time."""
    streams, unreadable = _probe_all(probe_video, videos, what="videos", source=source,
                                     workers=min(run.worker_count, len(videos)), show_progress=False)
    joined = join_videos(streams)
    for note in joined.notes:
        log.info("%s", note)
    timed = assign_times(joined.frames, source.times)
    timed.notes[:0] = joined.notes
    sequence = order_frames(timed, strict=source.strict)
    for note in sequence.notes[len(joined.notes):]:
        log.info("%s", note)
    return Scan(sequence, len(joined.frames), skipped, unreadable)


def _probe_all(probe_one: Callable[[Path], T], paths: list[Path], *, what: str, source: SourceConfig, workers: int,
               show_progress: bool) -> tuple[list[T], list[Unreadable]]:
    """Each file's header on the workers; unreadable ones skipped (or, with --strict, the end)."""
    def safe(path: Path) -> T | FrameReadError:
        try:
            return probe_one(path)
        except FrameReadError as error:
            return error

    found: list[T] = []
    unreadable: list[Unreadable] = []
    results = ordered_map(safe, paths, workers=workers, ahead=64)
    for result in progress(results, total=len(paths), desc="scanning", show=show_progress):
        if isinstance(result, FrameReadError):
            unreadable.append(skip_or_stop(result, strict=source.strict))
        else:
            found.append(result)
    if not found:
        first = f" (first: {unreadable[0].file}: {unreadable[0].reason})" if unreadable else ""
        raise DescentError(f"{', '.join(source.inputs)}: none of the {len(paths)} {what} could be read{first}")
    return found, unreadable


def load_telemetry(config: AltitudeConfig) -> Telemetry | None:
    """The altitude log, read before the long passes so that a bad one fails at once."""
    if config.telemetry is None:
        return None
    telemetry = read_telemetry(config.telemetry, config.telemetry_options)
    for problem in telemetry.problems:
        log.warning("%s: %s", config.telemetry, problem)
    return telemetry
