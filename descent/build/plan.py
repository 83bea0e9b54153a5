"""Plan: every decision about the build taken once, from the settings and the scan, before any pixel is read.

The passes that follow only read the plan: whether pass 1 measures motion or brightness (and so
decodes the frames), whether its decoded frames are kept for pass 2, the output size and timeline,
and what the HUD needs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from descent.altitude import SPARSE_INTERVAL_S, parse_altitude_at
from descent.build.config import BuildConfig
from descent.build.scan import Scan
from descent.encode import SUBTITLE_CODECS, check_frame_size
from descent.errors import UsageError
from descent.frames import FrameInfo
from descent.normalise.deflicker import flicker_period_frames
from descent.normalise.size import common_size, output_size
from descent.options import StabiliseMode
from descent.order import plan_repeats
from descent.outputs import partial_name
from descent.smoothing import shortest_period_frames
from descent.stabilise.path import SHAKE_VIDEO_S
from descent.telemetry import Telemetry

log = logging.getLogger("descent")


@dataclass(frozen=True, slots=True)
class BuildPlan:
    frames: list[FrameInfo]  # capture order
    times_s: list[float] | None  # capture times, when the sequence has them
    times_are_utc: bool
    anchors: list[tuple[float, float]]  # known (time, altitude) points from --altitude-at
    repeats: np.ndarray  # output frames that show each captured frame (0: never shown)
    width: int
    height: int
    capture_fps: float  # the median capture rate (the output rate when there are no times)
    stabilise: bool  # pass 1 gives the stabiliser its motion (measured, or read from the motion file)
    motion_reused: bool  # the motion file exists: pass 1 reads it instead of measuring
    scale_chain: bool  # the image scale chain is wanted: altitude anchors, the site marker, sparse telemetry
    # (deflicker needs motion too: brightness compared on the same ground, not across a zooming picture)
    deflicker: bool
    deflicker_period_frames: float
    path_smoothing_frames: float  # the camera path's shortest kept period, in captured frames
    altitude: bool  # an altitude track for the HUD, the subtitles and the values CSV
    mark_site: bool
    hud_burned: bool  # anything of the HUD drawn into the video (the panel or the site reticle)
    hud_panel: bool  # the altitude panel among it
    scratch_allowed: bool  # the user lets pass 1 keep decoded frames on disk (not --scratch off)
    subtitles: Path | None  # where the subtitle track is staged, when the video gets one

    @property
    def measures_motion(self) -> bool:
        """Pass 1 has motion: for the stabiliser, the scale chain, or deflicker's ratios on shared ground.

        Unaligned, the ratio of two frames of a zooming descent is mostly the change of scene, which
        a deflicker would take for flicker (9% on a flicker-free test descent, against under 1% aligned).
        """
        return self.stabilise or self.scale_chain or self.deflicker

    @property
    def pass1_reads_pixels(self) -> bool:
        if self.stabilise:
            return not self.motion_reused  # a reused motion file has the brightness ratios too
        return self.measures_motion

    @property
    def decode_once(self) -> bool:
        """Pass 1 keeps the frames it decodes for pass 2: only when both read the pixels (descent.sources.decoded)."""
        return self.scratch_allowed and self.pass1_reads_pixels

    @property
    def shown(self) -> list[int]:
        """Indices of the frames that some output frame shows."""
        return [i for i, count in enumerate(self.repeats) if count > 0]

    def output_is_colour(self, *, developed_colour: bool) -> bool:
        """Colour frames, a demosaiced mosaic, or a burned-in HUD (its amber marks estimates) make a colour video."""
        return any(f.channels == 3 for f in self.frames) or developed_colour or self.hud_burned


def plan_build(config: BuildConfig, scanned: Scan, telemetry: Telemetry | None) -> BuildPlan:
    """Decide the build from the settings, the scan and the altitude log; refuse what cannot be done."""
    sequence = scanned.sequence
    infos = sequence.frames
    timing = config.timing
    altitude_wanted, mark_site = config.altitude.wanted, config.hud.mark_site
    if timing.realtime and not sequence.has_times:
        raise UsageError("--realtime needs capture times and none were found; give --times or --name-pattern")
    if (altitude_wanted or mark_site) and not sequence.has_times:
        raise UsageError("altitude and the landing-site marker need capture times, and none were found; "
                         "give --times or --name-pattern")
    times = [f.time_s for f in infos if f.time_s is not None] if sequence.has_times else None
    repeats = plan_repeats(times, timing, frame_count=len(infos))
    anchors = [parse_altitude_at(text, first_time_s=float(times[0]), times_utc=sequence.times_are_utc)
               for text in config.altitude.altitude_at] if times else []
    width, height = _output_size(config, infos)
    if len({f.size for f in infos}) > 1:
        log.warning("frames come in %d sizes; each is fitted into %dx%d", len({f.size for f in infos}), width, height)
    interval = sequence.median_interval_s
    capture_fps = 1 / interval if interval else timing.fps
    sparse = telemetry is not None and telemetry.median_interval_s > SPARSE_INTERVAL_S
    stabilise = config.stabilise.mode is not StabiliseMode.OFF
    motion_file = config.stabilise.motion_file
    hud_panel = altitude_wanted and config.hud.enabled
    return BuildPlan(
        frames=infos, times_s=times, times_are_utc=sequence.times_are_utc, anchors=anchors,
        repeats=repeats,
        width=width, height=height, capture_fps=capture_fps,
        stabilise=stabilise, motion_reused=stabilise and motion_file is not None and motion_file.exists(),
        scale_chain=bool(config.altitude.altitude_at) or mark_site or sparse,
        deflicker=config.normalise.deflicker and len(infos) > 2,
        deflicker_period_frames=_flicker_period(config, repeats, times, capture_fps),
        path_smoothing_frames=_path_period(config, repeats, times, capture_fps),
        altitude=altitude_wanted, mark_site=mark_site,
        hud_burned=hud_panel or mark_site, hud_panel=hud_panel,
        scratch_allowed=config.run.decode_once,
        subtitles=_subtitle_path(config),
    )


def _flicker_period(config: BuildConfig, repeats: np.ndarray, times: list[float] | None,
                    capture_fps: float) -> float:
    """Deflicker's period in captured frames, from how the frames play in the video (issue 16: flicker
    is what flickers on screen), widened by --deflicker-period when it is given."""
    shown_at_s, capture_s = _playback(config, repeats, times, capture_fps)
    return flicker_period_frames(shown_at_s, capture_times_s=capture_s, period_s=config.normalise.deflicker_period_s)


def _path_period(config: BuildConfig, repeats: np.ndarray, times: list[float] | None, capture_fps: float) -> float:
    """The camera path's shortest kept period in captured frames: --smoothing capture seconds, and at
    least SHAKE_VIDEO_S of the video. A 3 s smoothing of frames taken 2 a second and shown once each
    at 30 fps keeps swings of 6 frames, a fifth of a second on screen: shake to anyone watching."""
    shown_at_s, capture_s = _playback(config, repeats, times, capture_fps)
    frames = shortest_period_frames(shown_at_s, video_s=SHAKE_VIDEO_S, capture_times_s=capture_s,
                                    period_s=config.stabilise.smoothing_s)
    asked = shortest_period_frames(shown_at_s, video_s=0.0, capture_times_s=capture_s,
                                   period_s=config.stabilise.smoothing_s)
    if config.stabilise.mode is not StabiliseMode.OFF and frames > asked * 1.01:
        log.info("camera motion faster than %.1f capture seconds (%g s of the video, %.0f frames) is taken for "
                 "shake; --smoothing %g is shorter", frames / capture_fps, SHAKE_VIDEO_S, frames,
                 config.stabilise.smoothing_s)
    return frames


def _playback(config: BuildConfig, repeats: np.ndarray, times: list[float] | None,
              capture_fps: float) -> tuple[list[float], list[float]]:
    """Each captured frame's time in the video (a frame not shown takes the next one's), and in capture."""
    shown_at_s = (np.concatenate([[0], np.cumsum(repeats)[:-1]]) / config.timing.fps).tolist()
    capture_s = times if times is not None else (np.arange(len(repeats)) / capture_fps).tolist()
    return shown_at_s, capture_s


def _output_size(config: BuildConfig, infos: list[FrameInfo]) -> tuple[int, int]:
    """The encoded size, refused when no encoder takes it or the frames in flight would not fit in memory."""
    common = common_size(infos)
    width, height = output_size(common, config.size)
    wanted, how = common, "the frames' size"
    if config.size.size is not None:
        wanted, how = config.size.size, "--size"
    elif config.size.scale is not None:
        wanted = (round(common[0] * config.size.scale), round(common[1] * config.size.scale))
        how = f"--scale {config.size.scale:g} of {common[0]}x{common[1]} gives"
    check_frame_size(width, height)
    if (width, height) != wanted:
        log.warning("%s %dx%d: the video is %dx%d (its colour is subsampled, which needs an even width and "
                    "height)", how, *wanted, width, height)
    # Decoding, developing and warping keep a few frames per worker in flight, at up to 16 bits a sample.
    in_flight_bytes = (4 * config.run.worker_count + 8) * width * height * 3 * 2
    available = _available_memory_bytes()
    if available is not None and in_flight_bytes > available:
        raise UsageError(f"output size {width}x{height}: the frames in flight need about {in_flight_bytes / 1e9:.0f} "
                         f"GB, more than the {available / 1e9:.0f} GB free; give a smaller --size or --scale")
    return width, height


def _available_memory_bytes() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _subtitle_path(config: BuildConfig) -> Path | None:
    """The hidden file the subtitle track is staged in, when the video carries one."""
    output = config.output
    if not (config.altitude.wanted and config.subtitles and output.suffix.lower() in SUBTITLE_CODECS):
        return None
    return partial_name(output.with_suffix(".srt"), "telemetry")
