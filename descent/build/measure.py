"""Measure (pass 1): everything that must see the whole sequence before the first frame is encoded.

From a sample, the normalisation plan; from every frame, the motion (for the stabiliser or the
image scale chain) or the brightness ratios alone; from those, the camera path, the exposure
gains, the altitude of every frame and where the landing site is. All of it in one Measurements.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from descent.altitude import SPARSE_INTERVAL_S, AltitudeTrack, track_for_frames
from descent.build.config import BuildConfig
from descent.build.plan import BuildPlan
from descent.build.progress import progress
from descent.clock import format_time
from descent.errors import DescentError
from descent.frames import FrameInfo, Read
from descent.normalise import NormalisePlan, plan_normalisation
from descent.normalise.deflicker import deflicker_gains
from descent.report import (
    AltitudeReport,
    DeflickerReport,
    MosaicEvidence,
    NormalisationReport,
    StabilisationReport,
    ToneRecord,
)
from descent.stabilise import Stabilisation, stabilise
from descent.stabilise.analyse import measure_motion
from descent.stabilise.motion import FrameMotion
from descent.stabilise.path import camera_path, site_positions
from descent.sync import SYNC_LOOSE_SD_S, OffsetFit, fit_time_offset
from descent.telemetry import Telemetry

log = logging.getLogger("descent")


@dataclass(frozen=True, slots=True)
class Measurements:
    normalisation: NormalisePlan
    stabilisation: Stabilisation | None  # None when not stabilising
    motions: list[FrameMotion] | None  # each frame's motion and brightness ratio; None when none was measured
    gains: np.ndarray | None  # each frame's exposure gain (deflicker)
    deflicker: DeflickerReport | None
    track: AltitudeTrack | None  # altitude of every captured frame
    sites: np.ndarray | None  # n x 2: the landing site in each output frame, pixels (--mark-site)
    colour: bool  # the video is colour


def measure(config: BuildConfig, plan: BuildPlan, telemetry: Telemetry | None, *, read: Read) -> Measurements:
    """Pass 1, as the plan says. `read` decodes a frame (through the decoded store when there is one)."""
    run = config.run
    infos = plan.frames

    def bar(items: Iterable[object], total: int, desc: str = "measuring motion") -> Iterator[object]:
        return progress(items, total=total, desc=desc, show=run.progress)

    normalisation = plan_normalisation(infos, config.normalise, workers=run.worker_count, read=read)
    stabilisation = None
    if plan.stabilise:
        stabilisation = stabilise(infos, config.stabilise, reuse_motion=plan.motion_reused,
                                  out_aspect=plan.height / plan.width, workers=run.worker_count,
                                  smoothing_frames=plan.path_smoothing_frames, prepare=normalisation.analysis_grey,
                                  read=read, progress=bar)
        motions: list[FrameMotion] | None = stabilisation.motions
    elif plan.measures_motion:
        # Deflicker alone compares brightness on shared ground, to which a first estimate aligns the
        # pair well enough (the ratios' error is the same on generated descents) at half the cost;
        # the altitude's image chain and the site marker need the precise motion.
        motions = measure_motion(infos, user_mask=None, workers=run.worker_count,
                                 prepare=normalisation.analysis_grey, read=read,
                                 progress=lambda items, total: bar(items, total, "measuring motion"),
                                 precise=plan.altitude or plan.mark_site).motions
    else:
        motions = None
    # The stabiliser has chained the motions already; without it, chain them here.
    camera = stabilisation.path.camera if stabilisation is not None else (
        camera_path(motions) if motions is not None else None)
    track = _altitude(config, plan, telemetry, motions, camera) if plan.altitude else None
    sites = None
    if plan.mark_site and motions is not None and camera is not None:
        sites = site_positions(infos, motions, camera, stabilisation.path if stabilisation else None,
                               width=plan.width, height=plan.height)
    gains, deflicker = None, None
    if plan.deflicker:
        assert motions is not None  # the plan measures motion for deflicker
        ratios = [m.log_gain for m in motions]
        gains, deflicker = _deflicker(ratios, infos, period_frames=plan.deflicker_period_frames)
    return Measurements(normalisation=normalisation, stabilisation=stabilisation, motions=motions, gains=gains,
                        deflicker=deflicker, track=track, sites=sites,
                        colour=plan.output_is_colour(developed_colour=normalisation.colour_out))


def _deflicker(ratios: list[float | None], infos: list[FrameInfo], *,
               period_frames: float) -> tuple[np.ndarray, DeflickerReport]:
    if len(ratios) < period_frames:  # said, or "0.0% correction" reads as "no flicker found"
        log.warning("deflicker left the frames as they are: %d frames are fewer than one flicker period (%.0f "
                    "frames), within which a swing cannot be told from a change (a shorter --deflicker-period, "
                    "if one was given, or more frames)", len(ratios), period_frames)
    gains, steps = deflicker_gains(ratios, period_frames=period_frames)
    corrections = np.log(gains)
    return gains, DeflickerReport(largest_correction=round(float(np.abs(corrections).max()), 4),
                                  rms_correction=round(float(np.sqrt(np.mean(corrections**2))), 4),
                                  steps_kept=[infos[i].name for i in steps],
                                  unmeasured_pairs=sum(r is None for r in ratios[1:]))


def normalisation_report(normalisation: NormalisePlan) -> NormalisationReport:
    guess = normalisation.guess
    tone = normalisation.tone
    return NormalisationReport(
        bits_used=normalisation.bits_used, bayer=normalisation.pattern, bayer_source=normalisation.pattern_source,
        bayer_evidence=None if guess is None else MosaicEvidence(round(guess.mean_spread, 4),
                                                                 round(guess.pair_contrast, 3)),
        white_balance_rgb=[round(g, 4) for g in normalisation.white_balance[::-1]],
        tone=ToneRecord(tone.black, tone.white, tone.gamma),
        defects=len(normalisation.defects),
        vignetting=None if normalisation.vignetting is None else [round(k, 4) for k in normalisation.vignetting],
        float_range=None if normalisation.float_range is None else [float(v) for v in normalisation.float_range],
    )


def stabilisation_report(stabilisation: Stabilisation, mode: str) -> StabilisationReport:
    path = stabilisation.path
    return StabilisationReport(mode=mode, zoom=round(path.zoom, 4), bridged_pairs=stabilisation.bridged,
                               correlated_pairs=stabilisation.correlated, gaps_measured_across=stabilisation.across,
                               perspective_pairs=stabilisation.perspective,
                               frames_with_fill=int(path.needs_fill.sum()),
                               static_fraction=stabilisation.static_fraction, motion_reused=stabilisation.reused)


def _altitude(config: BuildConfig, plan: BuildPlan, telemetry: Telemetry | None,
              motions: list[FrameMotion] | None, camera: np.ndarray | None) -> AltitudeTrack:
    """Every frame's altitude: the telemetry, synchronised by the images when it can be, or the images."""
    times = np.array([f.time_s for f in plan.frames], np.float64)
    chain = camera[:, 0] if camera is not None else None
    offset: OffsetFit | float = 0.0
    if telemetry is not None and chain is not None and motions is not None and config.altitude.sync:
        offset = _synchronised(telemetry, times, _measured_chain(chain, motions), frames_utc=plan.times_are_utc)
    track = track_for_frames(telemetry, plan.anchors, times, frames_utc=plan.times_are_utc, scale_chain=chain,
                             time_offset=offset)
    if telemetry is not None and not track.known.any():
        raise DescentError(f"{telemetry.path}: the telemetry covers none of the frames (its times "
                           f"{_span(telemetry.times_s, telemetry.is_utc)}, the frames' "
                           f"{_span(times, plan.times_are_utc)}); check --time-offset or the log")
    return track


def _synchronised(telemetry: Telemetry, times: np.ndarray, chain: np.ndarray, *, frames_utc: bool) -> OffsetFit:
    """The log's offset found from the images, said in the log; a log too sparse to sync says why it is not.

    A log sparser than one sample in SPARSE_INTERVAL_S anchors the image chain instead; syncing it by the
    same chain would fit a handful of points to themselves."""
    if telemetry.median_interval_s > SPARSE_INTERVAL_S:
        return OffsetFit(math.nan, math.nan, True, f"not tried: the log has one sample in "
                         f"{telemetry.median_interval_s:.1f} s, too sparse to sync (its points anchor the image "
                         "chain instead); give --time-offset", 0, (0.0, 0.0))
    offset = fit_time_offset(telemetry, times, chain, frames_utc=frames_utc)
    if offset.usable:
        log.info("telemetry synchronised with the images: %+.3f s ± %.2f s (%s)", offset.offset_s,
                 offset.sd_s, offset.verdict)
        if offset.sd_s > SYNC_LOOSE_SD_S:
            log.warning("the images pin the telemetry's time offset only to ± %.2f s (a log with little shape "
                        "where it meets the frames, or a noisy one); give --time-offset if you know it better",
                        offset.sd_s)
    return offset


def _measured_chain(chain: np.ndarray, motions: list[FrameMotion]) -> np.ndarray:
    """The scale chain with its bridged frames NaN: their scale is interpolated from their neighbours, and a
    guess during the last seconds' fast change of scale would pull the synchronisation off by a second.
    The first frame is the chain's origin, measured by definition."""
    bridged = np.array([m.bridged for m in motions], bool)
    bridged[0] = False
    return np.where(bridged, np.nan, chain)


def altitude_report(track: AltitudeTrack, telemetry: Telemetry | None, *, given_offset_s: float) -> AltitudeReport:
    known = track.known
    fit = track.offset_fit
    if fit is not None and fit.usable:
        offset_source = "images"
    elif given_offset_s:
        offset_source = "option"
    else:
        offset_source = "none" if fit is None else f"none ({fit.verdict})"
    return AltitudeReport(source=track.source, frames_with_altitude=int(known.sum()),
                          frames_estimated=int((track.estimated & known).sum()), touchdown_s=track.touchdown_s,
                          highest_m=float(np.nanmax(track.altitude_m)) if known.any() else None,
                          lowest_m=float(np.nanmin(track.altitude_m)) if known.any() else None,
                          time_offset_s=None if telemetry is None else round(given_offset_s + track.time_offset_s, 4),
                          offset_source=None if telemetry is None else offset_source,
                          offset_fit=None if fit is None else fit.to_dict(),
                          unit=None if telemetry is None else telemetry.unit,
                          unit_source=None if telemetry is None else telemetry.unit_source)


def _span(times: np.ndarray, utc: bool) -> str:
    return f"{format_time(float(times[0]), utc=utc)} to {format_time(float(times[-1]), utc=utc)}"
