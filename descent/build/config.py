"""The build's settings: what the user asked for, checked before any frame is read."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from descent.altitude import AltitudeConfig
from descent.encode import EncodeConfig, check_output, find_ffmpeg
from descent.errors import UsageError
from descent.normalise import NormaliseConfig
from descent.normalise.size import SizeConfig
from descent.order import TimingConfig
from descent.overlay import HudConfig
from descent.sources.times import TimeOptions
from descent.stabilise import StabiliseConfig


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


def check_config(config: BuildConfig) -> None:
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
