"""Render (pass 2): read, drop duplicates, develop and warp, draw the HUD, schedule, write.

Frames flow one way, as an iterator, from the reader to ffmpeg: at most a few are in memory at
any time. Decoding, developing and warping run on worker threads; the main thread only feeds the
encoder (a bicubic warp of every frame there held x264 back by a second in 150 frames of 1024 px).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np

from descent.altitude import AltitudeTrack
from descent.build.config import BuildConfig
from descent.build.measure import Measurements
from descent.build.plan import BuildPlan
from descent.build.progress import progress
from descent.build.scan import skip_or_stop
from descent.datatrack import ShownFrame, write_csv, write_srt
from descent.encode import CODECS, VideoWriter
from descent.errors import DescentError, FrameReadError
from descent.frames import Frame, FrameInfo, Read
from descent.normalise import develop_frame
from descent.normalise.size import fit_frame
from descent.options import Border
from descent.outputs import StagedOutputs
from descent.overlay import Hud
from descent.parallel import in_background, ordered_map
from descent.report import Duplicate, FrameStatus, Output, Summary
from descent.sources.images import missing_pixels, read_pixels
from descent.stabilise import Stabilisation
from descent.stabilise.canvas import Canvas
from descent.stabilise.warp import warp_frame

log = logging.getLogger("descent")


def _read_frame(item: tuple[int, FrameInfo], read: Read) -> Frame | tuple[int, FrameReadError]:
    index, info = item
    try:
        pixels = read(info)
    except FrameReadError as error:
        return index, error
    # SHA-1 runs in hardware on current CPUs, twice as fast as BLAKE2 here; equal frames are all it
    # has to tell, not an attacker's collision.
    digest = hashlib.sha1(pixels.data, usedforsecurity=False)
    digest.update(repr((pixels.shape, pixels.dtype.str)).encode())
    return Frame(index=index, info=info, pixels=pixels, digest=digest.digest(), missing_px=missing_pixels(pixels))


def read_frames(items: Iterable[tuple[int, FrameInfo]], *, total: int, strict: bool, workers: int, show_progress: bool,
                record: Summary, desc: str, read: Read = read_pixels) -> Iterator[Frame]:
    """Decode frames on worker threads, in order; unreadable ones are skipped and recorded."""
    results = ordered_map(lambda item: _read_frame(item, read), items, workers=workers)
    for result in progress(results, total=total, desc=desc, show=show_progress):
        if isinstance(result, tuple):
            index, error = result
            record.unreadable.append(skip_or_stop(error, strict=strict))
            record.mark(index, FrameStatus.UNREADABLE, error.reason)
            continue
        if result.missing_px:
            record.count_missing(result.index, result.missing_px)
        yield result
    if record.missing_pixels:
        log.warning("%d pixels in %d frames are missing data (NaN, infinity or fill values): shown black",
                    record.missing_pixels, record.frames_with_missing_pixels)


def drop_duplicates(frames: Iterable[Frame], record: Summary, *, keep: bool) -> Iterator[Frame]:
    """Frames whose pixels equal an earlier frame's are recorded and, unless kept, dropped."""
    first_seen: dict[bytes, str] = {}
    for frame in frames:
        original = first_seen.setdefault(frame.digest, frame.info.name)
        if original != frame.info.name:
            record.duplicates.append(Duplicate(frame.info.name, original))
            if not keep:
                record.mark(frame.index, FrameStatus.DUPLICATE, f"same pixels as {original}")
                continue
        yield frame


def paint_from_canvas(frames: Iterable[Frame], stabilisation: Stabilisation, *, width: int,
                      height: int) -> Iterator[Frame]:
    """What each frame leaves uncovered, painted from the earlier frames (in output order: one canvas)."""
    canvas = Canvas(width, height)
    path, motions = stabilisation.path, stabilisation.motions
    previous: int | None = None
    for frame in frames:
        assert frame.cover is not None
        moved = None if previous is None else path.output_motion(previous, frame.index, width=width, height=height)
        # A bridged frame's place on the ground is a guess (dust, no texture): it is shown, never kept.
        usable = frame.index == 0 or not motions[frame.index].bridged
        pixels = canvas.compose(frame.pixels, frame.cover, moved, usable=usable)
        previous = frame.index
        yield replace(frame, pixels=pixels, cover=None)


def _encode(scheduled: Iterable[tuple[Frame, int]], writer: VideoWriter, record: Summary, *,
            overlay: tuple[VideoWriter | None, Hud | None], first_frame: Callable[[], object]) -> list[ShownFrame]:
    """Each frame to ffmpeg as many times as scheduled (and the HUD alone to the overlay video, if any)."""
    overlay_writer, hud = overlay
    shown_frames: list[ShownFrame] = []
    for frame, count in scheduled:
        record.place(frame.index, output_first=writer.frames_written, output_count=count)
        shown_frames.append(ShownFrame(writer.frames_written, count, frame.index, frame.info.name))
        writer.write(frame.pixels, count)
        if len(shown_frames) == 1:
            first_frame()
        if overlay_writer is not None and hud is not None:
            height, width = frame.pixels.shape[:2]
            overlay_writer.write(hud.draw_alone(frame.index, width=width, height=height), count)
    return shown_frames


def draw_hud(frames: Iterable[Frame], hud: Hud, *, panel: bool) -> Iterator[Frame]:
    """The HUD on each output frame (drawn in place: the warped frame is this stage's own)."""
    for frame in frames:
        yield replace(frame, pixels=hud.draw(frame.pixels, frame.index, panel=panel))


def schedule(frames: Iterable[Frame], repeats: np.ndarray, *, hold: bool) -> Iterator[tuple[Frame, int]]:
    """Each frame with the number of output frames that show it.

    With `hold` (real time), a frame that never arrives (dropped or unreadable) gives its output
    frames to the frame before it, so the video holds the last good image instead of jumping ahead
    in time. Without it, a missing frame simply takes no place in the video.
    """
    if not hold:
        for frame in frames:
            yield frame, int(repeats[frame.index])
        return
    previous: Frame | None = None
    held = 0
    for frame in frames:
        if previous is not None:
            yield previous, held + int(repeats[previous.index + 1 : frame.index].sum())
        previous, held = frame, int(repeats[frame.index])
    if previous is not None:
        yield previous, held + int(repeats[previous.index + 1 :].sum())


def _write_data_track(config: BuildConfig, plan: BuildPlan, track: AltitudeTrack, hud: Hud,
                      shown: list[ShownFrame], staged: StagedOutputs) -> Path | None:
    """The values drawn on each output frame: as subtitles for the video (returned) and as the values CSV."""
    fps = config.timing.fps
    if config.telemetry_out is not None:
        write_csv(staged.stage(config.telemetry_out), shown, track, fps=fps)
    if plan.subtitles is None:
        return None
    write_srt(plan.subtitles, shown, track, [hud.caption(s.index) for s in shown], fps=fps)
    return plan.subtitles


def _refuse_a_constant_sequence(record: Summary, *, written: int, keep: bool) -> None:
    """Every frame the same picture (a lens cap, a frozen feed) makes a one-frame video: an error, not a surprise."""
    duplicates = record.count(FrameStatus.DUPLICATE)
    if written == 1 and duplicates > 0 and not keep:
        raise DescentError(f"all {duplicates + 1} frames have the same pixels (a lens cap or a frozen feed?): there is "
                           "nothing to make a video of; add --keep-duplicates to build it anyway")


def render(config: BuildConfig, plan: BuildPlan, measured: Measurements, record: Summary, *, take: Read,
           staged: StagedOutputs, first_frame: Callable[[], object] = lambda: None) -> Output:
    """Pass 2: every shown frame developed, placed and encoded; the side outputs staged. Returns the video made.

    `take` decodes a frame for the last time (through the decoded store, which then forgets it). The
    side outputs go to `staged`, put in place by the caller once everything has succeeded.
    `first_frame` is called once the first frame has gone to ffmpeg (the start-up's end).
    """
    width, height, timing = plan.width, plan.height, config.timing
    hud = Hud(config.hud, width=width, height=height, track=measured.track, sites=measured.sites) if (
        plan.altitude or plan.mark_site) else None
    stabilisation = measured.stabilisation

    def develop_and_place(frame: Frame) -> Frame:
        """Develop, then warp (or fit) to the output size: one frame alone, so on the workers."""
        developed = develop_frame(frame, measured.normalisation, gains=measured.gains, colour=measured.colour)
        if stabilisation is None:
            return fit_frame(developed, width=width, height=height)
        return warp_frame(developed, stabilisation.path, width=width, height=height, border=config.stabilise.border,
                          static=stabilisation.static_mask)

    with contextlib.ExitStack() as stack:
        if plan.subtitles is not None:
            stack.callback(plan.subtitles.unlink, missing_ok=True)  # registered first: runs after the writers close
        writer = stack.enter_context(VideoWriter(config.output, width=width, height=height, colour=measured.colour,
                                                 fps=timing.fps, config=config.encode))
        overlay_writer = None
        if config.overlay_only is not None:
            overlay_writer = stack.enter_context(VideoWriter(
                config.overlay_only, width=width, height=height, colour=True, fps=timing.fps, alpha=True,
                config=replace(config.encode, codec="prores4444")))
        shown = [(i, plan.frames[i]) for i in plan.shown]
        frames = read_frames(shown, total=len(shown), strict=config.source.strict, workers=config.run.worker_count,
                             show_progress=config.run.progress, record=record, desc="encoding", read=take)
        frames = drop_duplicates(frames, record, keep=timing.keep_duplicates)
        frames = ordered_map(develop_and_place, frames, workers=config.run.worker_count)
        if stabilisation is not None and config.stabilise.border is Border.FILL:
            # Sequential (one canvas), so on a thread of its own beside the one feeding ffmpeg.
            frames = in_background(paint_from_canvas(frames, stabilisation, width=width, height=height))
        if hud is not None and plan.hud_burned:
            frames = draw_hud(frames, hud, panel=config.hud.enabled)
        shown_frames = _encode(schedule(frames, plan.repeats, hold=timing.realtime), writer, record,
                               overlay=(overlay_writer, hud), first_frame=first_frame)
        if measured.track is not None and hud is not None:
            writer.subtitles = _write_data_track(config, plan, measured.track, hud, shown_frames, staged)
        _refuse_a_constant_sequence(record, written=len(shown_frames), keep=timing.keep_duplicates)
    codec = CODECS[config.encode.codec]
    return Output(
        path=str(config.output), frames=writer.frames_written, duration_s=writer.frames_written / timing.fps,
        fps=timing.fps, width=width, height=height, codec=config.encode.codec, encoder=codec.encoder,
        crf=None if config.encode.codec == "prores" else (
            codec.default_crf if config.encode.crf is None else config.encode.crf),
        preset=config.encode.preset, ffmpeg=writer.args[0],
    )
