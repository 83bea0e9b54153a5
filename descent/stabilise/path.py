"""The camera path: motions chained over the whole sequence, smoothed, and framed.

The camera path maps each frame's normalised coordinates onto the first frame's (the "ground"):
its log-scale falls as the lander descends, its angle follows the yaw, its translation is where
the frame centre is over the ground. Smoothing is a Whittaker smoother (least squares with a
penalty on the second difference) on each parameter: it keeps constant-rate zoom, yaw and drift
exactly, has no lag and no bias at the ends, and holds a hover still, which a moving average does
not. It runs twice (PATH_PASSES) for a sharper cut. Low-confidence (bridged) motions get little
weight.

Modes:
- smooth: the smoothed path; shake removed, the real trajectory kept. If the crop the correction
  needs exceeds the zoom budget, the smoothing is relaxed until it fits.
- lock: the landing site (the centre of the last measured frame, carried back through the chain)
  stays at the output centre; the rotation and the scale follow the smoothed yaw and descent, so
  the viewer falls straight onto the site, the shake taken out.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from descent.frames import FrameInfo
from descent.options import Border, StabiliseMode
from descent.smoothing import smoothness_for, whittaker
from descent.stabilise.motion import FrameMotion
from descent.stabilise.similarity import (
    Similarity,
    covered_share,
    frame_corners,
    nearest_similarity,
    normalised_to_pixel,
    pixel_to_normalised,
    project,
    to_pixels,
)

# Two passes of the smoother: the same half-way period, but of an attitude oscillation at a third
# of it, a tenth as much gets through (0.2% instead of 2%), and the flight slower than the
# period is kept a little better.
PATH_PASSES = 2
CROP_MAX_ZOOM = 1.5  # --border crop's budget when --max-zoom is not given
SHAKE_VIDEO_S = 1.0  # camera motion faster than this much of the output video is shake, however slow when captured


@dataclass(frozen=True, slots=True)
class PathConfig:
    mode: StabiliseMode = StabiliseMode.LOCK
    smoothing_frames: float = 30.0  # the shortest period of motion kept, in frames
    border: Border = Border.FILL
    max_zoom: float | None = None  # the most the picture may be enlarged to hide edges (None: 1.5 for crop, else 1)

    @property
    def zoom_budget(self) -> float:
        if self.max_zoom is not None:
            return self.max_zoom
        return CROP_MAX_ZOOM if self.border is Border.CROP else 1.0


@dataclass(frozen=True, slots=True)
class CameraPath:
    camera: np.ndarray  # n x 4: log_scale, angle_rad, tx, ty of frame -> ground
    target: np.ndarray  # n x 4: the same for the virtual camera of the output
    zoom: float  # output enlargement (1: the whole frame)
    needs_fill: np.ndarray  # n bools: frames whose corrected picture does not cover the output
    site: tuple[float, float]  # the landing site, ground coordinates
    rectify: np.ndarray | None = None  # n x 3 x 3, normalised: each frame's perspective shake undone
    # The scale that fits a whole frame inside an output of another shape (a square frame in a 16:9
    # video: its height, not its width, fills the output), before the zoom; 1 for --border crop,
    # which covers the output instead, and for outputs of the frames' shape or taller.
    fit: float = 1.0

    def correction(self, index: int) -> Similarity:
        """Frame `index` (normalised) to output (normalised) coordinates, zoom included."""
        camera = Similarity(*self.camera[index])
        target = Similarity(*self.target[index])
        return camera.then(target.inverse()).then(Similarity(math.log(self.zoom * self.fit), 0.0, 0.0, 0.0))

    def output_motion(self, before: int, after: int, *, width: int, height: int) -> np.ndarray:
        """The 3x3 pixel matrix taking output frame `before` to output frame `after`: where the ground
        shown in one is shown in the other (the canvas is carried by it)."""
        zoom = Similarity(math.log(self.zoom * self.fit), 0.0, 0.0, 0.0)
        ground = zoom.inverse().then(Similarity(*self.target[before]))  # output `before` -> ground
        normalised = ground.then(Similarity(*self.target[after]).inverse()).then(zoom)
        return np.vstack([to_pixels(normalised, width, height), [0.0, 0.0, 1.0]])

    def pixel_matrix(self, index: int, *, width: int, height: int, out_width: int, out_height: int) -> np.ndarray:
        """The one 3x3 matrix taking frame pixels to output pixels (stabilisation and resizing at once).

        Its last row is (0, 0, 1), an affine warp, unless the frame's perspective is rectified.
        """
        matrix = np.vstack([to_pixels(self.correction(index), width, height, out_width=out_width,
                                      out_height=out_height), [0.0, 0.0, 1.0]])
        if self.rectify is None:
            return matrix
        to_norm = pixel_to_normalised(width, height)
        return matrix @ np.linalg.inv(to_norm) @ self.rectify[index] @ to_norm


def camera_path(motions: list[FrameMotion]) -> np.ndarray:
    """Chain frame-to-frame motions into each frame's map onto the first frame: n x 4 parameters."""
    current = Similarity()
    rows = []
    for i, motion in enumerate(motions):
        if i > 0:
            # A point of frame i goes back to frame i-1 by the inverse motion, then onto the ground.
            current = motion.transform.inverse().then(current)
        rows.append([current.log_scale, current.angle_rad, current.tx, current.ty])
    path = np.array(rows, np.float64).reshape(-1, 4)
    path[:, 1] = np.unwrap(path[:, 1])  # yaw accumulates past +-180 degrees without jumping
    return path


def landing_site(camera: np.ndarray, motions: list[FrameMotion]) -> tuple[float, float]:
    """Where the lander comes down, in ground coordinates: the centre of the last measured frame."""
    measured = [i for i, m in enumerate(motions) if not m.bridged] or [len(motions) - 1]
    return float(camera[measured[-1], 2]), float(camera[measured[-1], 3])


def site_positions(frames: list[FrameInfo], motions: list[FrameMotion], camera: np.ndarray,
                   path: CameraPath | None, *, width: int, height: int) -> np.ndarray:
    """Where the landing site is in each output frame, in pixels (the reticle of --mark-site).

    `path` is the stabiliser's; without one, each frame is fitted inside the output, centred: only a scale.
    """
    site = np.array([path.site if path is not None else landing_site(camera, motions)])
    to_pixels_out = normalised_to_pixel(width, height)
    positions = np.full((len(frames), 2), np.nan)
    for i, info in enumerate(frames):
        in_frame = Similarity(*camera[i]).inverse().apply(site)
        if path is not None:
            correction = path.correction(i)
        else:
            correction = Similarity(float(np.log(min(width / info.width, height / info.height) * info.width / width)))
        x, y = correction.apply(in_frame)[0]
        positions[i] = (to_pixels_out @ np.array([x, y, 1.0]))[:2]
    return positions


def output_shown(path: CameraPath, *, frame_aspect: float, out_aspect: float) -> np.ndarray:
    """Per frame, the share of the output its own picture covers (the rest is filled). Aspects are
    height / width; the keystone correction is left out (it moves the edges by a pixel or two)."""
    frame, output = frame_corners(frame_aspect), frame_corners(out_aspect)
    return np.array([covered_share(path.correction(i).apply(frame), output) for i in range(len(path.camera))])


def required_zoom(camera: np.ndarray, target: np.ndarray, *, frame_aspect: float, out_aspect: float,
                  margins: np.ndarray | None = None) -> np.ndarray:
    """For each frame, the least enlargement at which its corrected picture covers the whole output.

    Aspects are height / width. `margins` (frame widths, per frame) keep the output that much
    further inside the frame: the keystone correction moves the frame's edges by up to that.
    Infinity where the output centre falls outside the frame.
    """
    corners = frame_corners(out_aspect)
    needed = np.empty(len(camera))
    for i in range(len(camera)):
        bounds = np.array([0.5, frame_aspect / 2]) - (0.0 if margins is None else margins[i])
        # Output -> frame: the inverse of (camera then inverse target) is target then inverse camera.
        back = Similarity(*target[i]).then(Similarity(*camera[i]).inverse()).matrix()
        linear, offset = back[:2, :2], back[:2, 2]
        reach = corners @ linear.T  # where each corner lands, relative to the landed output centre
        room_plus, room_minus = bounds - offset, bounds + offset
        if np.any(room_plus <= 0) or np.any(room_minus <= 0):
            needed[i] = math.inf
            continue
        need = np.maximum(reach / room_plus, -reach / room_minus)
        needed[i] = float(need.max())
    return needed


def plan_path(motions: list[FrameMotion], config: PathConfig, *, frame_aspect: float, out_aspect: float) -> CameraPath:
    """The output's virtual camera for every frame, and the zoom that hides the edges."""
    camera = camera_path(motions)
    weights = np.array([0.05 if m.bridged else 1.0 for m in motions])
    weights[0] = 1.0  # the first frame anchors the path
    # A period longer than the sequence already means "a straight line"; capping it keeps the solve
    # well conditioned when the clock is odd (file times microseconds apart make it millions of frames).
    smoothness = smoothness_for(min(config.smoothing_frames, max(len(motions), 3)), passes=PATH_PASSES)
    site = landing_site(camera, motions)

    def smooth_columns(columns: np.ndarray, lam: float) -> np.ndarray:
        return np.column_stack([whittaker(columns[:, k], weights, lam, passes=PATH_PASSES)
                                for k in range(columns.shape[1])])

    rectify = _rectification(motions, lambda columns: smooth_columns(columns, smoothness), aspect=frame_aspect)
    margins = None if rectify is None else _edge_shift(rectify, frame_aspect)

    # An output wider than the frames would show a frame at full width, cutting its top and bottom:
    # every border but crop fits the whole frame in instead, as an unstabilised build does.
    fit = 1.0 if config.border is Border.CROP else min(1.0, out_aspect / frame_aspect)

    def zoom_for(target: np.ndarray) -> tuple[np.ndarray, float]:
        # The enlargement (after the fit) at which each frame covers the output.
        needed = required_zoom(camera, target, frame_aspect=frame_aspect, out_aspect=out_aspect, margins=margins) / fit
        if config.border not in (Border.CROP, Border.FILL):
            return needed, 1.0
        # The 98th percentile, so one wild frame does not shrink the whole video; it gets a fill.
        finite = needed[np.isfinite(needed)]
        return needed, float(np.clip(np.percentile(finite, 98) if len(finite) else 1.0, 1.0, config.zoom_budget))

    if config.mode is StabiliseMode.LOCK:
        target = _lock_target(camera, site, smooth_columns, smoothness)
        needed, zoom = zoom_for(target)
    else:
        lam = smoothness
        for _ in range(8):
            target = smooth_columns(camera, lam)
            needed, zoom = zoom_for(target)
            if config.border is not Border.CROP or np.percentile(needed, 98) <= config.zoom_budget:
                break  # (with the fill, what the crop cannot cover is painted: the path stays smooth)
            lam /= 4  # the correction asks for more crop than the budget: follow the camera closer
    return CameraPath(camera=camera, target=target, zoom=zoom, needs_fill=needed > zoom * (1 + 1e-9), site=site,
                      rectify=rectify, fit=fit)


def _edge_shift(rectify: np.ndarray, aspect: float) -> np.ndarray:
    """Per frame, how far (frame widths) the keystone correction moves the frame's corners at most."""
    corners = frame_corners(aspect)
    return np.abs(project(rectify, corners) - corners).max(axis=(1, 2))


def _rectification(motions: list[FrameMotion], smooth_columns: Callable[[np.ndarray], np.ndarray], *,
                   aspect: float) -> np.ndarray | None:
    """Per frame, the homography that takes away the quick part of its keystone (None if no pair
    showed perspective): the shake of a tilting camera, which no similarity can hold still.

    A frame's keystone is the perspective row (qx, qy) of the map from where the similarity path
    puts its points to where they are. Through a pair it becomes H (its keystone) S^-1: the row
    is carried by the similarity, then the pair's own homography adds to it. Only the row is
    kept at each step: carrying the whole map would also carry the small translations where H and
    S differ, and the zoom of a descent multiplies those a hundredfold. The row is smoothed like
    the path; frame i is rectified by the row's smooth value minus its own, which leaves the
    frame centre where it was.
    """
    if all(m.homography is None for m in motions):
        return None
    rows = np.zeros((len(motions), 2))
    for i, motion in enumerate(motions[1:], start=1):
        keystone = np.eye(3)
        keystone[2, :2] = rows[i - 1]
        similarity = motion.transform.matrix()
        perspective = motion.perspective if motion.perspective is not None else similarity
        carried = perspective @ keystone @ np.linalg.inv(similarity)
        rows[i] = carried[2, :2] / carried[2, 2]
    shake = smooth_columns(rows) - rows
    rectify = np.tile(np.eye(3), (len(motions), 1, 1))
    rectify[:, 2, :2] = shake
    # A keystone also shifts the frame's points on average, and that shift is already in the
    # path (each pair's similarity is the one nearest its homography): take it out again here.
    return np.array([nearest_similarity(r, aspect).inverse().matrix() @ r for r in rectify])


def _lock_target(camera: np.ndarray, site: tuple[float, float],
                 smooth_columns: Callable[[np.ndarray, float], np.ndarray], smoothness: float) -> np.ndarray:
    """The landing site at the output centre in every frame; rotation and scale smoothed.

    The centre is the site itself, wherever it is in the frames (early in a slant approach it is
    near an edge, and a divert moves it a half frame): the site never moves on screen. What the
    frame then leaves uncovered, the canvas paints from the earlier frames (--border fill).

    The rotation follows the smoothed yaw rather than being held: holding any one orientation turns
    the frames of a 120-degree yaw by up to 60 degrees against the output, which pushes a quarter
    of each frame out of the picture and leaves corners that the first frames, with nothing seen
    before them, can only fill with blur. (Held at the middle of the yaw range, lock kept 78% of
    each frame on a sweep descent whose site is at its centre; smooth, which follows the yaw, 96%.)
    """
    target = np.empty_like(camera)
    target[:, :2] = smooth_columns(camera[:, :2], smoothness)
    target[:, 2], target[:, 3] = site
    return target
