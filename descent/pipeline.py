"""Wire the stages: scan (metadata of the whole sequence), measure (motion and brightness), then
stream pixels to the encoder.

The scan reads only file headers and capture times, so it costs little even for 10,000 frames.
The motion pass (when stabilising, or measuring brightness for deflicker) decodes every frame and
keeps it decoded on disk for the encoding pass (descent.sources.decoded). The encoding pass
develops, warps and streams each frame into ffmpeg on worker threads; at most a few frames are in
memory at any time.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import cast

import numpy as np

from descent.allocator import keep_freed_memory
from descent.altitude import (
    SPARSE_INTERVAL_S,
    AltitudeConfig,
    AltitudeTrack,
    from_images,
    from_telemetry,
    parse_altitude_at,
)
from descent.datatrack import ShownFrame, write_csv, write_srt
from descent.encode import CODECS, SUBTITLE_CODECS, EncodeConfig, VideoWriter, check_output, find_ffmpeg
from descent.errors import DescentError, FrameReadError, UsageError
from descent.frames import Frame, FrameInfo, Read
from descent.normalise import NormaliseConfig, NormalisePlan, develop_frame, plan_normalisation
from descent.normalise.deflicker import aligned_log_ratio, deflicker_gains
from descent.normalise.size import SizeConfig, common_size, fit_frame, output_size
from descent.order import OrderedSequence, TimingConfig, order_frames, plan_repeats
from descent.overlay import Hud, HudConfig
from descent.parallel import ordered_map
from descent.report import Output, Summary
from descent.sources.decoded import open_store
from descent.sources.discover import discover
from descent.sources.images import probe, read_pixels
from descent.sources.times import TimeOptions, assign_times
from descent.stabilise import Stabilisation, StabiliseConfig, stabilise
from descent.stabilise.analyse import analysis_picture, measure_motion
from descent.stabilise.motion import FrameMotion
from descent.stabilise.path import StabiliseMode, camera_path, landing_site
from descent.stabilise.similarity import Similarity, normalised_to_pixel
from descent.stabilise.warp import warp_frame
from descent.telemetry import Telemetry, read_telemetry

log = logging.getLogger("descent")


@dataclass(frozen=True, slots=True)
class SourceConfig:
    inputs: tuple[str, ...]
    recursive: bool = False
    times: TimeOptions = field(default_factory=TimeOptions)
    strict: bool = False  # stop at the first unreadable frame instead of skipping it


@dataclass(frozen=True, slots=True)
class RunConfig:
    workers: int = 0  # 0: one per core
    progress: bool = True
    decode_once: bool = True  # keep frames decoded in pass 1 on disk for pass 2 (descent.sources.decoded)
    scratch: Path | None = None  # where they are kept (default: the system temporary directory)

    @property
    def worker_count(self) -> int:
        return self.workers or os.cpu_count() or 1


@dataclass(frozen=True, slots=True)
class BuildConfig:
    source: SourceConfig
    output: Path
    timing: TimingConfig = field(default_factory=TimingConfig)
    size: SizeConfig = field(default_factory=SizeConfig)
    normalise: NormaliseConfig = field(default_factory=NormaliseConfig)
    encode: EncodeConfig = field(default_factory=EncodeConfig)
    stabilise: StabiliseConfig = field(default_factory=StabiliseConfig)
    altitude: AltitudeConfig = field(default_factory=AltitudeConfig)
    hud: HudConfig = field(default_factory=HudConfig)
    telemetry_out: Path | None = None  # CSV of the values drawn on each output frame
    overlay_only: Path | None = None  # the HUD alone, with transparency (ProRes 4444 .mov)
    subtitles: bool = True  # the values drawn, as a subtitle track in the video
    overwrite: bool = False
    run: RunConfig = field(default_factory=RunConfig)
    report_path: Path | None = None


@dataclass(frozen=True, slots=True)
class Scan:
    sequence: OrderedSequence
    images_found: int
    skipped_files: int
    unreadable: list[dict[str, str]]


def _progress(iterable: Iterable[object], *, total: int, desc: str, run: RunConfig) -> Iterator[object]:
    from tqdm import tqdm

    show = run.progress and sys.stderr.isatty()
    yield from tqdm(iterable, total=total, desc=desc, unit="frame", disable=not show, leave=False,
                    dynamic_ncols=True)


def _skip_or_stop(error: FrameReadError, strict: bool, unreadable: list[dict[str, str]]) -> None:
    if strict:
        raise error
    log.warning("%s: %s; skipped (use --strict to stop instead)", error.path, error.reason)
    unreadable.append({"file": str(error.path), "reason": error.reason})


def scan(source: SourceConfig, run: RunConfig) -> Scan:
    """Pass 1: find the frames, read their headers and capture times, and put them in order."""
    found = discover(list(source.inputs), recursive=source.recursive)

    def safe_probe(path: Path) -> FrameInfo | FrameReadError:
        try:
            return probe(path, found.labels.get(path), product=path in found.labels)
        except FrameReadError as error:
            return error

    infos: list[FrameInfo] = []
    unreadable: list[dict[str, str]] = []
    probes = ordered_map(safe_probe, found.images, workers=run.worker_count, ahead=64)
    for result in _progress(probes, total=len(found.images), desc="scanning", run=run):
        if isinstance(result, FrameReadError):
            _skip_or_stop(result, source.strict, unreadable)
        else:
            assert isinstance(result, FrameInfo)
            infos.append(result)
    if not infos:
        first = f" (first: {unreadable[0]['file']}: {unreadable[0]['reason']})" if unreadable else ""
        raise DescentError(f"{', '.join(source.inputs)}: none of the {len(found.images)} images could be read{first}")
    sequence = order_frames(assign_times(infos, source.times))
    for note in sequence.notes:
        log.info("%s", note)
    return Scan(sequence, len(found.images), len(found.skipped), unreadable)


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
    return Frame(index=index, info=info, pixels=pixels, digest=digest.digest())


def read_frames(items: Iterable[tuple[int, FrameInfo]], *, total: int, strict: bool, run: RunConfig,
                summary: Summary, desc: str, read: Read = read_pixels) -> Iterator[Frame]:
    """Decode frames on worker threads, in order; unreadable ones are skipped and recorded."""
    results = ordered_map(lambda item: _read_frame(item, read), items, workers=run.worker_count)
    for result in _progress(results, total=total, desc=desc, run=run):
        if isinstance(result, tuple):
            index, error = result
            _skip_or_stop(error, strict, summary.unreadable)
            summary.frames[index].status, summary.frames[index].note = "unreadable", error.reason
            continue
        assert isinstance(result, Frame)
        yield result


def draw_hud(frames: Iterable[Frame], hud: Hud, *, panel: bool) -> Iterator[Frame]:
    """The HUD on each output frame (drawn in place: the warped frame is this stage's own)."""
    for frame in frames:
        yield replace(frame, pixels=hud.draw(frame.pixels, frame.index, panel=panel))


def drop_duplicates(frames: Iterable[Frame], summary: Summary, *, keep: bool) -> Iterator[Frame]:
    """Frames whose pixels equal an earlier frame's are recorded and, unless kept, dropped."""
    first_seen: dict[bytes, str] = {}
    for frame in frames:
        original = first_seen.setdefault(frame.digest, str(frame.info.path))
        if original != str(frame.info.path):
            summary.duplicates.append({"file": str(frame.info.path), "duplicate_of": original})
            if not keep:
                summary.frames[frame.index].status = "duplicate"
                summary.frames[frame.index].note = f"same pixels as {original}"
                continue
        yield frame


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


def plan(infos: list[FrameInfo], config: NormaliseConfig, run: RunConfig, read: Read = read_pixels) -> NormalisePlan:
    """Sequence-wide normalisation decisions from a sample of frames."""
    return plan_normalisation(infos, config, workers=run.worker_count, read=read)


def measure_brightness(infos: list[FrameInfo], normalisation: NormalisePlan, run: RunConfig,
                       read: Read = read_pixels) -> list[float | None]:
    """Brightness ratio of each frame to the one before, unaligned: deflicker's input when not stabilising."""
    def grey(info: FrameInfo) -> np.ndarray | None:
        return analysis_picture(info, normalisation.analysis_grey, read)

    ratios: list[float | None] = []
    previous: np.ndarray | None = None
    pictures = ordered_map(grey, infos, workers=run.worker_count)
    for current in cast(Iterator[np.ndarray | None], _progress(pictures, total=len(infos), desc="measuring brightness",
                                                               run=run)):
        if previous is not None and current is not None and previous.shape == current.shape:
            ratios.append(aligned_log_ratio(previous, current, None, None))
        else:
            ratios.append(None)
        previous = current
    return ratios


def _normalisation_summary(normalisation: NormalisePlan) -> dict[str, object]:
    guess = normalisation.guess
    return {
        "bits_used": normalisation.bits_used,
        "bayer": normalisation.pattern, "bayer_source": normalisation.pattern_source,
        "bayer_evidence": None if guess is None else {"mean_spread": round(guess.mean_spread, 4),
                                                      "pair_contrast": round(guess.pair_contrast, 3)},
        "white_balance_rgb": [round(g, 4) for g in normalisation.white_balance[::-1]],
        "tone": {"black": normalisation.tone.black, "white": normalisation.tone.white,
                 "gamma": normalisation.tone.gamma},
        "defects": len(normalisation.defects),
        "vignetting": None if normalisation.vignetting is None else [round(k, 4) for k in normalisation.vignetting],
    }


def inspect(source: SourceConfig, run: RunConfig | None = None,
            normalise_config: NormaliseConfig | None = None) -> Summary:
    """What is in the input: pass 1, then every frame decoded once to find duplicates and bits used."""
    run = run or RunConfig()
    keep_freed_memory()
    found = scan(source, run)
    summary = Summary.from_sequence(found.sequence, images_found=found.images_found,
                                    skipped_files=found.skipped_files, unreadable=found.unreadable)
    frames = read_frames(enumerate(found.sequence.frames), total=len(found.sequence.frames),
                         strict=source.strict, run=run, summary=summary, desc="reading")
    highest = 0
    for frame in drop_duplicates(frames, summary, keep=False):
        highest = max(highest, int(frame.pixels.max()))
    summary.bits_used = max(1, highest.bit_length())
    labelled = [f.label.sample_bits for f in found.sequence.frames if f.label and f.label.sample_bits]
    if labelled and max(labelled) < summary.bits_used:
        summary.bits_used = max(labelled)  # the label's SAMPLE_BIT_MASK says what the camera can produce
    summary.normalisation = _normalisation_summary(plan(found.sequence.frames, normalise_config or NormaliseConfig(),
                                                        run))
    return summary


def _motions(infos: list[FrameInfo], stabilisation: Stabilisation | None, normalisation: NormalisePlan,
             run: RunConfig, read: Read) -> list[FrameMotion]:
    """Pass 1's motion: the stabiliser's, or measured for the altitude chain when not stabilising."""
    if stabilisation is not None:
        return stabilisation.motions
    progress = lambda items, total: _progress(items, total=total, desc="measuring scale", run=run)  # noqa: E731
    return measure_motion(infos, user_mask=None, workers=run.worker_count, prepare=normalisation.analysis_grey,
                          read=read, progress=progress).motions


def altitude_track(telemetry: Telemetry | None, anchors: list[tuple[float, float]], infos: list[FrameInfo],
                   sequence: OrderedSequence, camera: np.ndarray | None) -> AltitudeTrack:
    """Altitude for every captured frame from the telemetry, or the image scale chain and the anchors."""
    times = np.array([f.time_s for f in infos], np.float64)
    chain = camera[:, 0] if camera is not None else None
    if telemetry is not None:
        track = from_telemetry(telemetry, times, frames_utc=sequence.times_are_utc, scale_chain=chain)
        outside = int((~track.known).sum())
        if outside:
            log.warning("%d of %d frames fall outside the telemetry's span; the HUD shows -- for them "
                        "(check --time-offset)", outside, len(infos))
        return track
    assert chain is not None
    return from_images(times, chain, anchors, frames_utc=sequence.times_are_utc)


def site_positions(infos: list[FrameInfo], motions: list[FrameMotion], camera: np.ndarray,
                   stabilisation: Stabilisation | None, *, width: int, height: int) -> np.ndarray:
    """Where the landing site is in each output frame, in pixels (the reticle of --mark-site)."""
    site = np.array([stabilisation.path.site if stabilisation is not None else landing_site(camera, motions)])
    to_pixels = normalised_to_pixel(width, height)
    positions = np.full((len(infos), 2), np.nan)
    for i, info in enumerate(infos):
        in_frame = Similarity(*camera[i]).inverse().apply(site)
        if stabilisation is not None:
            correction = stabilisation.path.correction(i)
        else:  # fitted inside the output, centred: only a scale
            correction = Similarity(float(np.log(min(width / info.width, height / info.height) * info.width / width)))
        x, y = correction.apply(in_frame)[0]
        positions[i] = (to_pixels @ np.array([x, y, 1.0]))[:2]
    return positions


def _check(config: BuildConfig) -> None:
    """Everything that can be refused before any frame is read."""
    check_output(config.output, config.encode.codec, overwrite=config.overwrite)
    if config.overlay_only is not None:
        check_output(config.overlay_only, "prores4444", overwrite=config.overwrite)
        if not config.altitude.wanted:
            raise UsageError("--overlay-only draws the altitude HUD: give --telemetry or --altitude-at")
    find_ffmpeg(config.encode.ffmpeg)  # a wrong --ffmpeg should fail now, not after the motion pass
    if config.timing.fps <= 0 or config.timing.speed <= 0:
        raise UsageError("--fps and --speed must be greater than 0")
    scratch = config.run.scratch
    if config.run.decode_once and scratch is not None and not scratch.is_dir():
        raise UsageError(f"--scratch {scratch}: not a directory; give an existing directory on a disk, "
                         "or --scratch off")


def _read_telemetry(config: AltitudeConfig) -> Telemetry | None:
    """The altitude log, read before the long passes so that a bad one fails at once."""
    if config.telemetry is None:
        return None
    telemetry = read_telemetry(config.telemetry, config.telemetry_options)
    for problem in telemetry.problems:
        log.warning("%s: %s", config.telemetry, problem)
    return telemetry


def plan_hud(config: BuildConfig, telemetry: Telemetry | None, anchors: list[tuple[float, float]],
             infos: list[FrameInfo], sequence: OrderedSequence, motions: list[FrameMotion] | None,
             stabilisation: Stabilisation | None, *, width: int,
             height: int) -> tuple[AltitudeTrack | None, Hud | None]:
    """The altitude of every frame and the HUD that shows it (None, None when neither is asked for)."""
    if not (config.altitude.wanted or config.hud.mark_site):
        return None, None
    # The stabiliser has chained the motions already; without it, chain them once here.
    camera = stabilisation.path.camera if stabilisation is not None else (
        camera_path(motions) if motions is not None else None)
    track = altitude_track(telemetry, anchors, infos, sequence, camera) if config.altitude.wanted else None
    sites = None
    if config.hud.mark_site and motions is not None and camera is not None:
        sites = site_positions(infos, motions, camera, stabilisation, width=width, height=height)
    return track, Hud(config.hud, width=width, height=height, track=track, sites=sites)


def plan_deflicker(infos: list[FrameInfo], motions: list[FrameMotion] | None, normalisation: NormalisePlan, *,
                   period_frames: float, run: RunConfig,
                   read: Read = read_pixels) -> tuple[np.ndarray, dict[str, object]]:
    """Each frame's exposure gain, from pass 1's aligned brightness ratios when there was a pass 1."""
    ratios = [m.log_gain for m in motions] if motions is not None else measure_brightness(infos, normalisation, run,
                                                                                          read)
    gains, steps = deflicker_gains(ratios, period_frames=period_frames)
    corrections = np.log(gains)
    return gains, {"largest_correction": round(float(np.abs(corrections).max()), 4),
                   "rms_correction": round(float(np.sqrt(np.mean(corrections**2))), 4),
                   "steps_kept": [str(infos[i].path) for i in steps],
                   "unmeasured_pairs": sum(r is None for r in ratios[1:])}


def _pass1_reads_pixels(config: BuildConfig, *, needs_chain: bool, frame_count: int) -> bool:
    """Whether a pass before encoding decodes the frames (so that pass 2 would decode them again)."""
    motion_file = config.stabilise.motion_file
    if config.stabilise.mode is not StabiliseMode.OFF:
        return not (motion_file is not None and motion_file.exists())  # a reused motion file has the ratios
    return needs_chain or (config.normalise.deflicker and frame_count > 2)


def build(config: BuildConfig) -> Summary:
    """Make the video. Returns what was found and done; raises DescentError on bad input."""
    _check(config)
    keep_freed_memory()
    timing = config.timing
    telemetry = _read_telemetry(config.altitude)
    found = scan(config.source, config.run)
    sequence = found.sequence
    if timing.realtime and not sequence.has_times:
        raise UsageError("--realtime needs capture times and none were found; give --times or --name-pattern")
    if (config.altitude.wanted or config.hud.mark_site) and not sequence.has_times:
        raise UsageError("altitude and the landing-site marker need capture times, and none were found; "
                         "give --times or --name-pattern")
    summary = Summary.from_sequence(sequence, images_found=found.images_found,
                                    skipped_files=found.skipped_files, unreadable=found.unreadable)
    infos = sequence.frames
    times = [f.time_s for f in infos if f.time_s is not None] if sequence.has_times else None
    anchors = [parse_altitude_at(text, first_time_s=float(times[0]), times_utc=sequence.times_are_utc)
               for text in config.altitude.altitude_at] if times else []
    repeats = plan_repeats(times, timing, frame_count=len(infos))
    for record, count in zip(summary.frames, repeats, strict=True):
        if count == 0:
            record.status = "not shown"
    width, height = output_size(common_size(infos), config.size)
    if len(summary.sizes) > 1:
        log.warning("frames come in %d sizes; each is fitted into %dx%d", len(summary.sizes), width, height)
    sparse = telemetry is not None and telemetry.median_interval_s > SPARSE_INTERVAL_S
    needs_chain = bool(config.altitude.altitude_at) or config.hud.mark_site or sparse
    with contextlib.ExitStack() as stack:
        # Pass 1 keeps what it decodes for pass 2 when both read the pixels (descent.sources.decoded).
        store = None
        if config.run.decode_once and _pass1_reads_pixels(config, needs_chain=needs_chain, frame_count=len(infos)):
            store = open_store(config.run.scratch, [f for f, count in zip(infos, repeats, strict=True) if count > 0])
        if store is not None:
            stack.callback(store.close)
        read, take = (store.read, store.take) if store is not None else (read_pixels, read_pixels)
        normalisation = plan(infos, config.normalise, config.run, read)
        summary.normalisation = _normalisation_summary(normalisation)
        shown = [(i, f) for i, f in enumerate(infos) if repeats[i] > 0]
        interval = sequence.median_interval_s
        capture_fps = 1 / interval if interval else timing.fps

        # Pass 1: motion, when stabilising or when the altitude chain or the landing site needs it.
        stabilisation = None
        if config.stabilise.mode is not StabiliseMode.OFF:
            stabilisation = stabilise(
                infos, config.stabilise, out_aspect=height / width, workers=config.run.worker_count,
                frames_per_second=capture_fps, prepare=normalisation.analysis_grey, read=read,
                progress=lambda items, total: _progress(items, total=total, desc="measuring motion", run=config.run))
            summary.stabilisation = {
                "mode": config.stabilise.mode.value, "zoom": round(stabilisation.path.zoom, 4),
                "bridged_pairs": stabilisation.bridged, "perspective_pairs": stabilisation.perspective,
                "frames_with_fill": int(stabilisation.path.needs_fill.sum()),
                "static_fraction": stabilisation.static_fraction, "motion_reused": stabilisation.reused,
            }
        motions = _motions(infos, stabilisation, normalisation, config.run, read) if (
            stabilisation is not None or needs_chain) else None

        track, hud = plan_hud(config, telemetry, anchors, infos, sequence, motions, stabilisation, width=width,
                              height=height)
        if track is not None:
            summary.altitude = track.summary()
        gains = None
        if config.normalise.deflicker and len(infos) > 2:
            gains, summary.deflicker = plan_deflicker(infos, motions, normalisation, run=config.run, read=read,
                                                      period_frames=config.normalise.deflicker_period_s * capture_fps)
        # A burned-in HUD is colour (its amber marks estimates, the profile and the site) even on grey frames.
        burned_hud = hud is not None and ((hud.panel and config.hud.enabled) or config.hud.mark_site)
        colour = summary.colour_frames > 0 or normalisation.colour_out or burned_hud

        shown_frames: list[ShownFrame] = []
        subtitles = config.output.with_name(f".{config.output.stem}.telemetry.srt")
        stack.callback(subtitles.unlink, missing_ok=True)  # registered first, so it runs after the writers close
        writer = stack.enter_context(VideoWriter(config.output, width=width, height=height, colour=colour,
                                                 fps=timing.fps, config=config.encode))
        overlay_writer = None
        if config.overlay_only is not None:
            overlay_writer = stack.enter_context(VideoWriter(
                config.overlay_only, width=width, height=height, colour=True, fps=timing.fps, alpha=True,
                config=replace(config.encode, codec="prores4444")))
        frames = read_frames(shown, total=len(shown), strict=config.source.strict, run=config.run,
                             summary=summary, desc="encoding", read=take)
        frames = drop_duplicates(frames, summary, keep=timing.keep_duplicates)

        def develop_and_place(frame: Frame) -> Frame:
            """Develop, then warp (or fit) to the output size: one frame alone, so on the workers."""
            developed = develop_frame(frame, normalisation, gains=gains, colour=colour)
            if stabilisation is None:
                return fit_frame(developed, width=width, height=height)
            return warp_frame(developed, stabilisation.path, width=width, height=height,
                              border=config.stabilise.border)

        # The main thread only feeds the encoder: a bicubic warp of every frame there held x264
        # back by a second in 150 frames of 1024 px.
        frames = ordered_map(develop_and_place, frames, workers=config.run.worker_count)
        if burned_hud:
            assert hud is not None
            frames = draw_hud(frames, hud, panel=config.hud.enabled)
        for frame, count in schedule(frames, repeats, hold=timing.realtime):
            record = summary.frames[frame.index]
            record.output_first, record.output_count = writer.frames_written, count
            shown_frames.append(ShownFrame(writer.frames_written, count, frame.index, str(frame.info.path)))
            writer.write(frame.pixels, count)
            if overlay_writer is not None and hud is not None:
                overlay_writer.write(hud.draw_alone(frame.index, width=width, height=height), count)
        if track is not None and hud is not None:
            if config.subtitles and config.output.suffix.lower() in SUBTITLE_CODECS:
                write_srt(subtitles, shown_frames, track, [hud.caption(s.index) for s in shown_frames],
                          fps=timing.fps)
                writer.subtitles = subtitles
            if config.telemetry_out is not None:
                write_csv(config.telemetry_out, shown_frames, track, fps=timing.fps)
    codec = CODECS[config.encode.codec]
    summary.output = Output(
        path=str(config.output), frames=writer.frames_written, duration_s=writer.frames_written / timing.fps,
        fps=timing.fps, width=width, height=height, codec=config.encode.codec, encoder=codec.encoder,
        crf=None if config.encode.codec == "prores" else (
            codec.default_crf if config.encode.crf is None else config.encode.crf),
        preset=config.encode.preset, ffmpeg=writer.args[0],
    )
    if config.report_path is not None:
        summary.write_json(config.report_path)
    return summary
