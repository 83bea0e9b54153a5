"""The build, as its phases: scan -> plan -> measure (pass 1) -> render (pass 2).

Each phase hands plain typed data to the next: `Scan`, `BuildPlan`, `Measurements`, then the
`Output` written. `build()` below is the whole story; `inspect()` is the scan and a decode of
every frame, without a video.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import numpy as np

from descent.allocator import keep_freed_memory
from descent.build.config import BuildConfig, RunConfig, SourceConfig, check_config, check_outputs_are_not_frames
from descent.build.measure import (
    Measurements,
    altitude_report,
    measure,
    normalisation_report,
    stabilisation_report,
)
from descent.build.plan import BuildPlan, plan_build
from descent.build.render import drop_duplicates, read_frames, render
from descent.build.scan import Scan, load_telemetry, scan
from descent.ffmpeg_binary import find_ffmpeg
from descent.normalise import NormaliseConfig, plan_normalisation
from descent.outputs import OutputLock, PlannedOutput, StagedOutputs, check_outputs, write_text_atomically
from descent.report import FrameStatus, Summary
from descent.sources.decoded import open_store
from descent.sources.images import read_pixels
from descent.sources.video import close_videos, decoding_with
from descent.telemetry import Telemetry

__all__ = ["BuildConfig", "BuildPlan", "Measurements", "RunConfig", "Scan", "SourceConfig", "build", "inspect"]


def build(config: BuildConfig) -> Summary:
    """Make the video. Returns what was found and done; raises DescentError on bad input."""
    check_config(config)
    keep_freed_memory()
    clock = PhaseClock()
    with OutputLock(config.output), StagedOutputs() as staged, contextlib.ExitStack() as stack:
        stack.callback(close_videos)  # the decoders of video inputs, and the frames they keep
        stack.enter_context(decoding_with(find_ffmpeg(config.encode.ffmpeg)))  # --ffmpeg decodes video inputs too
        telemetry = load_telemetry(config.altitude)
        scanned = scan(config.source, config.run)
        check_outputs_are_not_frames(config, [f.path for f in scanned.sequence.frames])
        scan_s = clock.lap()
        plan = plan_build(config, scanned, telemetry)
        summary = _summary_of(scanned)
        summary.timings.update(scan_s=scan_s, plan_s=clock.lap())
        for index in np.flatnonzero(plan.repeats == 0):
            summary.mark(int(index), FrameStatus.NOT_SHOWN)
        # Pass 1 keeps what it decodes for pass 2 when the plan says so (descent.sources.decoded).
        store = open_store(config.run.scratch, [plan.frames[i] for i in plan.shown],
                           max_bytes=config.run.scratch_max_bytes) if plan.decode_once else None
        if store is not None:
            stack.callback(store.close)
        read, take = (store.read, store.take) if store is not None else (read_pixels, read_pixels)
        measured = measure(config, plan, telemetry, read=read)
        _report_measurements(summary, measured, config, telemetry)
        summary.timings["measure_s"] = clock.lap()
        summary.output = render(config, plan, measured, summary, take=take, staged=staged,
                                first_frame=lambda: summary.timings.setdefault("first_frame_s", clock.total()))
        summary.timings.update(render_s=clock.lap(), total_s=clock.total())
        if config.report_path is not None:
            staged.stage(config.report_path).write_text(summary.to_json(with_frames=True))
        staged.commit()
    return summary


class PhaseClock:
    """Wall seconds of a run's phases, for the summary's timings."""

    def __init__(self) -> None:
        self.started = self.last = time.monotonic()

    def lap(self) -> float:
        """Seconds since the last lap (or the start), rounded to the millisecond."""
        now = time.monotonic()
        seconds, self.last = now - self.last, now
        return round(seconds, 3)

    def total(self) -> float:
        return round(time.monotonic() - self.started, 3)


def inspect(source: SourceConfig, run: RunConfig | None = None, normalise_config: NormaliseConfig | None = None, *,
            report_path: Path | None = None, overwrite: bool = False) -> Summary:
    """What is in the input: the scan, then every frame decoded once to find duplicates and bits used.

    With `report_path`, the summary and the frame list are written there as JSON (checked first).
    """
    run = run or RunConfig()
    report = [PlannedOutput(report_path, "--report")] if report_path is not None else []
    given = [Path(item) for item in source.inputs if Path(item).is_file()]
    check_outputs(report, inputs=given, overwrite=overwrite)
    keep_freed_memory()
    try:
        return _inspect(source, run, normalise_config, report, given, PhaseClock())
    finally:
        close_videos()  # the decoders of video inputs, and the frames they keep


def _inspect(source: SourceConfig, run: RunConfig, normalise_config: NormaliseConfig | None,
             report: list[PlannedOutput], given: list[Path], clock: PhaseClock) -> Summary:
    scanned = scan(source, run)
    check_outputs(report, inputs=[*given, *(f.path for f in scanned.sequence.frames)], overwrite=True)
    summary = _summary_of(scanned)
    summary.timings["scan_s"] = clock.lap()
    infos = scanned.sequence.frames
    frames = read_frames(enumerate(infos), total=len(infos), strict=source.strict, workers=run.worker_count,
                         show_progress=run.progress, record=summary, desc="reading")
    highest, floats = 0, False
    for frame in drop_duplicates(frames, summary, keep=False):
        if frame.pixels.dtype.kind == "f":  # float frames have no bits; their range is in the normalisation
            floats = True
        else:
            highest = max(highest, int(frame.pixels.max()))
    normalisation = plan_normalisation(infos, normalise_config or NormaliseConfig(), workers=run.worker_count,
                                       read=read_pixels)
    summary.bits_used = normalisation.bits_used if floats else max(1, highest.bit_length())
    labelled = [f.label.sample_bits for f in infos if f.label and f.label.sample_bits]
    if labelled and max(labelled) < summary.bits_used:
        summary.bits_used = max(labelled)  # the label's SAMPLE_BIT_MASK says what the camera can produce
    summary.normalisation = normalisation_report(normalisation)
    summary.notes += normalisation.notes
    summary.timings.update(read_s=clock.lap(), total_s=clock.total())
    for output in report:
        write_text_atomically(output.path, summary.to_json(with_frames=True))
    return summary


def _report_measurements(summary: Summary, measured: Measurements, config: BuildConfig,
                         telemetry: Telemetry | None) -> None:
    summary.normalisation = normalisation_report(measured.normalisation)
    summary.notes += measured.normalisation.notes
    if measured.stabilisation is not None:
        summary.stabilisation = stabilisation_report(measured.stabilisation, config.stabilise.mode.value)
    if measured.track is not None:
        summary.altitude = altitude_report(measured.track, telemetry,
                                           given_offset_s=config.altitude.telemetry_options.time_offset_s)
    summary.deflicker = measured.deflicker


def _summary_of(scanned: Scan) -> Summary:
    return Summary.from_sequence(scanned.sequence, images_found=scanned.images_found,
                                 skipped_files=scanned.skipped_files, unreadable=scanned.unreadable)
