"""The build's settings: what the user asked for, checked before any frame is read."""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from descent.altitude import AltitudeConfig
from descent.encode import EncodeConfig, check_encode, check_output, find_ffmpeg
from descent.errors import UsageError
from descent.normalise import NormaliseConfig
from descent.normalise.size import SizeConfig
from descent.options import StabiliseMode
from descent.order import TimingConfig
from descent.outputs import PlannedOutput, check_outputs
from descent.overlay import HudConfig
from descent.sources.decoded import SCRATCH_MAX_BYTES
from descent.sources.times import TimeOptions
from descent.stabilise import StabiliseConfig

log = logging.getLogger("descent")

MAX_FPS = 1000.0


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
    scratch_max_bytes: int = SCRATCH_MAX_BYTES  # the most kept at once (and at most half the free space)

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


def check_config(config: BuildConfig) -> None:
    """Everything that can be refused before any frame is read: options, then every output path."""
    check_encode(config.encode)
    timing = config.timing
    if not (math.isfinite(timing.fps) and 0 < timing.fps <= MAX_FPS):
        raise UsageError(f"--fps {timing.fps:g}: give a rate above 0 and at most {MAX_FPS:g} frames a second")
    if not (math.isfinite(timing.speed) and timing.speed > 0):
        raise UsageError(f"--speed {timing.speed:g}: give a number above 0 (4 plays the descent four times faster)")
    if config.overlay_only is not None and not config.altitude.wanted:
        raise UsageError("--overlay-only draws the altitude HUD: give --telemetry or --altitude-at")
    if config.telemetry_out is not None and not config.altitude.wanted:
        raise UsageError("--telemetry-out writes the altitude drawn on each frame: give --telemetry or --altitude-at")
    if config.stabilise.mask is not None and config.stabilise.mode is StabiliseMode.OFF:
        # Said, not refused: a Makefile may pass the same --mask to every build.
        log.warning("--mask %s: only stabilisation uses the mask; with --stabilise off it changes nothing",
                    config.stabilise.mask)
    find_ffmpeg(config.encode.ffmpeg)  # a wrong --ffmpeg should fail now, not after the motion pass
    scratch = config.run.scratch
    if config.run.decode_once and scratch is not None and not scratch.is_dir():
        raise UsageError(f"--scratch {scratch}: not a directory; give an existing directory on a disk, "
                         "or --scratch off")
    check_output(config.output, config.encode.codec, overwrite=config.overwrite)
    if config.overlay_only is not None:
        check_output(config.overlay_only, "prores4444", overwrite=config.overwrite, option="--overlay-only")
    check_outputs(planned_outputs(config), inputs=given_inputs(config), overwrite=config.overwrite)


def planned_outputs(config: BuildConfig) -> list[PlannedOutput]:
    """Every file the build will write, with the option that named it."""
    outputs = [PlannedOutput(config.output, "-o")]
    named = [(config.overlay_only, "--overlay-only"), (config.report_path, "--report"),
             (config.telemetry_out, "--telemetry-out")]
    motion = config.stabilise.motion_file
    if motion is not None and not motion.exists():  # an existing motion file is read, not written
        named.append((motion, "--motion"))
    return outputs + [PlannedOutput(path, option) for path, option in named if path is not None]


def given_inputs(config: BuildConfig) -> list[Path]:
    """The files the user named as inputs (the frames found in folders are checked after the scan)."""
    files = [Path(item) for item in config.source.inputs if Path(item).is_file()]
    named = [config.altitude.telemetry, config.stabilise.mask, config.normalise.dark, config.normalise.flat,
             config.source.times.index_csv]
    motion = config.stabilise.motion_file
    if motion is not None and motion.exists():
        named.append(motion)
    return files + [path for path in named if path is not None]


def check_outputs_are_not_frames(config: BuildConfig, frames: list[Path]) -> None:
    """No output may land on a frame the scan found (`--report frames/f_0001.png`)."""
    check_outputs(planned_outputs(config), inputs=[*given_inputs(config), *frames], overwrite=True)
