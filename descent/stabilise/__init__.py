"""Descent-aware stabilisation: measure motion (pass 1), plan the camera path, warp (pass 2)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from descent.errors import DescentError
from descent.frames import FrameInfo, Read
from descent.options import Border, StabiliseMode
from descent.sources.images import read_pixels
from descent.stabilise.analyse import bridged_runs, measure_motion
from descent.stabilise.motion import (
    ACROSS_MAX_ZOOM,
    ANALYSIS_WIDTH,
    FrameMotion,
    load_motion,
    load_static_mask,
    load_user_mask,
    save_motion,
)
from descent.stabilise.path import CameraPath, PathConfig, output_shown, plan_path

log = logging.getLogger("descent")


@dataclass(frozen=True, slots=True)
class StabiliseConfig:
    mode: StabiliseMode = StabiliseMode.LOCK
    smoothing_s: float = 3.0  # capture seconds: motions slower are kept (and slower than 1 s of video)
    border: Border = Border.FILL
    max_zoom: float | None = None  # None: 1.5 for crop, 1 (no enlargement) otherwise
    mask: Path | None = None  # white where the picture does not move with the ground
    motion_file: Path | None = None  # save pass 1 here, or reuse it if it exists


@dataclass(frozen=True, slots=True)
class Stabilisation:
    path: CameraPath
    motions: list[FrameMotion]  # pass 1, measured or read back: motion and brightness ratio of each frame
    bridged: int  # pairs whose motion could not be measured and was interpolated
    perspective: int  # pairs measured with a homography (a tilting camera)
    static_fraction: float | None  # share of the picture found static (None: motion reused from a file)
    reused: bool
    static_mask: np.ndarray | None = None  # 0 where the picture does not move with the ground (analysis size)
    correlated: int = 0  # of the bridged pairs, those placed by the whole picture's correlation
    across: int = 0  # gaps of frames without ground whose ends were measured against each other


def stabilise(infos: list[FrameInfo], config: StabiliseConfig, *, reuse_motion: bool, smoothing_frames: float,
              out_aspect: float, workers: int, prepare: Callable[[np.ndarray], np.ndarray], read: Read = read_pixels,
              progress: Callable[[Iterable[object], int], Iterator[object]]) -> Stabilisation:
    """Motion for every frame (measured, or read from the motion file when `reuse_motion`) and the output
    camera path, smoothed over `smoothing_frames` (the build plan's: --smoothing and the playback).

    `read` decodes a frame and `prepare` turns its pixels into the 8-bit grey picture motion is
    measured on.
    """
    files = [f.name for f in infos]
    static_fraction: float | None = None
    static_mask = _fitted_to_frames(load_user_mask(config.mask), config.mask, infos[0]) if config.mask else None
    if reuse_motion:
        assert config.motion_file is not None
        motions = load_motion(config.motion_file, files)
        # The mask pass 1 found is kept in the file; a --mask given now is added to it.
        static_mask = _both_masks(load_static_mask(config.motion_file), static_mask)
        log.info("motion read from %s (delete it to measure again)", config.motion_file)
        if config.mask:
            log.info("%s keeps those parts out of the fill; the motion read back was measured without it "
                     "(delete %s to measure again with it)", config.mask, config.motion_file)
    else:
        analysis = measure_motion(infos, user_mask=static_mask, workers=workers, prepare=prepare, read=read,
                                  progress=progress)
        motions, static_fraction, static_mask = analysis.motions, analysis.static_fraction, analysis.static_mask
        if config.motion_file:
            save_motion(config.motion_file, motions, analysis_width=ANALYSIS_WIDTH, static_mask=static_mask)
    bridged = sum(m.bridged for m in motions[1:])
    correlated = sum(m.bridged and m.correlation is not None for m in motions[1:])
    if bridged:
        log.info("%d of %d frame pairs had too little texture to track; bridged from their neighbours (%d of "
                 "them placed by the whole picture's correlation)", bridged, len(motions) - 1, correlated)
    across = _report_gaps(motions, files)  # gaps measured across
    first = infos[0]
    path = plan_path(motions, PathConfig(mode=config.mode, smoothing_frames=smoothing_frames,
                                         border=config.border, max_zoom=config.max_zoom),
                     frame_aspect=first.height / first.width, out_aspect=out_aspect)
    if config.mode is StabiliseMode.LOCK:
        _warn_if_frames_leave_the_view(path, frame_aspect=first.height / first.width, out_aspect=out_aspect)
    perspective = sum(m.homography is not None for m in motions)
    return Stabilisation(path, motions, bridged, perspective, static_fraction, reuse_motion, static_mask,
                         correlated, across)


GAPS_WARNED = 3  # gaps not measured across named one by one; more are counted


def _report_gaps(motions: list[FrameMotion], files: list[str]) -> int:
    """Says which gaps of frames without ground were measured across, and warns of those that could not
    be (the site may jump there); how many were measured across."""
    across = [(m.across_from, i) for i, m in enumerate(motions) if m.across_from is not None]
    for before, after in across:
        log.info("%s without ground (%s): %s measured against %s across them, the frames between placed along "
                 "the way", _frames(after - before - 1), _span(files, before + 1, after - 1), Path(files[after]).name,
                 Path(files[before]).name)
    spanned = {before + 1 for before, _ in across}
    missed = [(first, last) for first, last in bridged_runs(motions)
              if first not in spanned and last < len(motions) - 1]
    for first, last in missed[:GAPS_WARNED]:
        log.warning("%s without ground (%s) could not be measured across (more than %gx of zoom over them, or "
                    "no frame at an end that shows ground): they and the frames before them are placed by "
                    "guesses, and the landing site may jump there", _frames(last - first),
                    _span(files, first, last - 1), ACROSS_MAX_ZOOM)
    if len(missed) > GAPS_WARNED:
        log.warning("... and %d more such gaps", len(missed) - GAPS_WARNED)
    return len(across)


def _frames(count: int) -> str:
    return f"{count} frame" + ("" if count == 1 else "s")


def _span(files: list[str], first: int, last: int) -> str:
    return Path(files[first]).name if first == last else f"{Path(files[first]).name} to {Path(files[last]).name}"


def _fitted_to_frames(mask: np.ndarray, path: Path, first: FrameInfo) -> np.ndarray:
    """--mask as given, if it has the frames' shape: drawn at another size it is scaled to them (said),
    drawn for another shape of frame it would be stretched over the wrong pixels, and is refused."""
    height, width = mask.shape
    if (width, height) == (first.width, first.height):
        return mask
    if abs(height / width - first.height / first.width) > max(0.01, 1 / min(width, height)):
        raise DescentError(f"{path}: the mask is {width}x{height} and the frames {first.width}x{first.height}, "
                           "another shape; draw it over one of these frames (white where the lander is)")
    log.info("%s: the mask is %dx%d, scaled to the frames' %dx%d", path, width, height, first.width, first.height)
    return mask


def _both_masks(saved: np.ndarray | None, given: np.ndarray | None) -> np.ndarray | None:
    """Static where either mask says so (0), at the saved mask's size."""
    if saved is None or given is None:
        return saved if given is None else given
    given = cv2.resize(given, saved.shape[::-1], interpolation=cv2.INTER_NEAREST)
    return np.minimum(saved, given)


LEFT_VIEW_SHARE = 0.1  # a frame showing less of the output than this is as good as gone from it


def _warn_if_frames_leave_the_view(path: CameraPath, *, frame_aspect: float, out_aspect: float) -> None:
    """Lock holds the landing site at the output's centre: where the site lies far outside the early
    frames (a long slant approach), those frames are pushed out of the picture and the video shows
    the fill. Said, with what to do, rather than left to be found in the video."""
    shown = output_shown(path, frame_aspect=frame_aspect, out_aspect=out_aspect)
    gone = int((shown < LEFT_VIEW_SHARE).sum())
    if gone:
        first = int(np.argmax(shown < LEFT_VIEW_SHARE))
        log.warning("lock: %d of %d frames show less than %.0f%% of the output with their own picture (from "
                    "frame %d): lock holds the landing site at the centre, and it lies far outside them (or "
                    "their motion was bridged); --stabilise smooth keeps every frame in view", gone, len(shown),
                    100 * LEFT_VIEW_SHARE, first)
