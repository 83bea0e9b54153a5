"""Pass 1 of stabilisation: how the ground moves from each frame to the next.

Each frame is reduced to a grey analysis copy (at most ANALYSIS_WIDTH pixels wide). Corners found
in the previous frame are tracked into the current one with pyramidal Lucas-Kanade (five levels
reach a 5% zoom step without a starting guess, so every pair stands alone) and a similarity
(scale, rotation, translation) is fitted with RANSAC, then refined on the frame warped back.
Where a tilting camera bends the motion away from any similarity, a homography is fitted too,
when the tracks clearly support it. Parts of the picture that do not move with the ground
(lander legs, their shadows, a burned-in clock) are masked out: found automatically as pixels
that agree with "no motion" rather than with the ground's motion, or given by the user. A pair
that fails is tried again on copies whose local contrast is evened out (measure_pair): thin dust
lowers the ground's contrast and adds grain, so the tracks fall short of the checks, yet the
texture is still there. A pair that fails that too (dense dust, darkness) is bridged from its
neighbours instead of being allowed to make a jump; where the whole picture still correlates with
the frame before it (place_by_correlation), the bridge is placed by that correlation instead.
A fit counts only where the two pictures it aligns look alike (ground_agreement): flat frames of
read noise "track" with every window still. Where a run of frames shows no ground (a dropout), the
frame after it is measured against the frame before it (measure_across): the bridges alone, over
forty frames, put it half a frame off.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from descent.errors import DescentError
from descent.outputs import write_text_atomically
from descent.stabilise.similarity import (
    Similarity,
    frame_corners,
    is_affine,
    keystone,
    nearest_similarity,
    pixel_to_normalised,
    to_pixels,
    warp_picture,
)

log = logging.getLogger("descent")

ANALYSIS_WIDTH = 512
MIN_INLIERS = 24
MIN_INLIER_RATIO = 0.35
MAX_RESIDUAL_PX = 1.5  # at analysis resolution
MID_GREY = 128.0
HOMOGRAPHY_MIN_INLIERS = 60
COARSE_THRESHOLD_PX = 2.5
FINE_THRESHOLD_PX = 0.5  # the fine round's RANSAC tolerance (analysis pixels)
LOOSE_FINE_THRESHOLD_PX = 1.0  # ... for pairs that fail at FINE_THRESHOLD_PX, before they are bridged
# A bridged pair is placed by the correlation of the whole picture (place_by_correlation) where it
# correlates at least this well once aligned, within this far (frame widths, at the corners) of the
# bridge's guess. Measured from a guess 9 px and 3% of zoom off, 256 px pairs: thickening haze read
# 0.92 to 0.31 and was placed within 0.07 to 0.3 px; the generator's dust 0.94 to 0.43, within 0.07 to
# 1.1 px; at 0.12, 1.4 px and 1.5% of zoom off: refused. Pure noise does not converge. A sweep
# descent's last two frames, all but white: 0.88 (1.4 px off, the bridge 8.5) and 0.56 (2.6, the
# bridge 3.1).
CORRELATION_MIN = 0.35
CORRELATION_MAX_SHIFT = 0.08
CORRELATION_WIDTH_PX = 256
CORRELATION_ITERATIONS = 60
# A fit is kept only where the two pictures, aligned by it, look alike (ground_agreement): the median,
# over cells of a copy AGREEMENT_WIDTH_PX wide, of their correlation. Pairs of flat frames with read
# noise (a dropout, a frame exposed for nothing) are "tracked": every window stays where it started
# and 60 to 90 tracks agree, within 0.3 px, on no motion. Their agreement reads -0.02 to 0.03; clear
# ground 0.9 to 1.0 on sweep descents (a static leg included: a cell median sees past it); dust that
# the tracks still measure, down to 0.11.
AGREEMENT_MIN = 0.06
AGREEMENT_WIDTH_PX = 128
AGREEMENT_CELL_PX = 32
MAX_KEYSTONE = 0.02  # frame widths at the corners: about 2 degrees of tilt change between frames, 60 degree lens
MOTION_FORMAT = "descent-motion"
MOTION_VERSION = 1


@dataclass(frozen=True, slots=True)
class FrameMotion:
    """The motion from the previous frame to this one, in normalised coordinates (see similarity.py)."""

    file: str
    log_scale: float = 0.0
    angle_rad: float = 0.0
    tx: float = 0.0
    ty: float = 0.0
    inliers: int = 0
    inlier_ratio: float = 0.0
    residual_px: float = 0.0
    bridged: bool = False  # not measured by tracks (first frame, too little texture, unreadable): interpolated
    # A bridged pair placed by the whole picture's correlation instead of interpolated: that
    # correlation (place_by_correlation). It stays bridged: its picture is dust or darkness, so it
    # is shown but never kept in the fill's canvas, and never defines the landing site.
    correlation: float | None = None
    log_gain: float | None = None  # brightness change from the previous frame on shared ground (deflicker)
    homography: list[float] | None = None  # the full motion where the data shows perspective: 3x3, row-major
    # A frame after a gap of frames without ground, measured against the last frame before the gap
    # (this index) instead of the frame before it (measure_across): its motion is what the
    # measurement leaves after the gap's bridged pairs, which share out the rest.
    across_from: int | None = None

    @property
    def transform(self) -> Similarity:
        return Similarity(self.log_scale, self.angle_rad, self.tx, self.ty)

    @property
    def perspective(self) -> np.ndarray | None:
        return None if self.homography is None else np.array(self.homography, np.float64).reshape(3, 3)

    def with_transform(self, t: Similarity, **changes: object) -> FrameMotion:
        return replace(self, log_scale=t.log_scale, angle_rad=t.angle_rad, tx=t.tx, ty=t.ty, **changes)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class PairMotion:
    """What estimate_motion finds for one pair, in normalised coordinates, with its support."""

    transform: Similarity
    inliers: int
    inlier_ratio: float
    residual_px: float  # at analysis resolution
    homography: np.ndarray | None = None  # 3x3, where the data supports it (see _perspective)


def analysis_copy(pixels: np.ndarray, width: int = ANALYSIS_WIDTH) -> np.ndarray:
    """Grey, 8-bit, at most `width` pixels wide: what motion is measured on."""
    grey = pixels if pixels.ndim == 2 else cv2.cvtColor(pixels, cv2.COLOR_BGR2GRAY)
    if grey.dtype != np.uint8:
        grey = cv2.convertScaleAbs(grey, alpha=255.0 / max(int(grey.max()), 1))
    h, w = grey.shape
    if w > width:
        grey = cv2.resize(grey, (width, round(h * width / w)), interpolation=cv2.INTER_AREA)
    return grey


def static_votes(previous: np.ndarray, current: np.ndarray, ground: Similarity) -> tuple[np.ndarray, np.ndarray]:
    """Per pixel of one pair: does it agree with "no motion" rather than with the ground's motion?

    Returns (votes, counted): counted where the pair has texture and the ground really moves
    there; votes where, of those, the picture stayed put. Near the focus of expansion the ground
    hardly moves, so it casts no vote: a simple "does not change" test would mask the landing site.
    """
    h, w = previous.shape
    a = previous.astype(np.float32) * (128.0 / max(float(previous.mean()), 1.0))  # gain-normalised
    b = current.astype(np.float32) * (128.0 / max(float(current.mean()), 1.0))
    moved = cv2.warpAffine(a, to_pixels(ground, w, h), (w, h),
                           flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    still_error = cv2.blur(np.abs(b - a), (5, 5))
    ground_error = cv2.blur(np.abs(b - moved), (5, 5))
    counted = np.maximum(still_error, ground_error) > 6.0  # texture that one of the two explanations misses
    votes = counted & (still_error < 0.5 * ground_error)
    return votes, counted


def static_mask(pairs: list[tuple[np.ndarray, np.ndarray, Similarity]]) -> np.ndarray | None:
    """Parts of the picture that stay put while the ground moves: lander legs, shadows, a burned-in clock.

    Each pair (previous, current, ground motion) votes; a pixel is static when most pairs that
    could tell say so. Returns a uint8 mask, 255 where the ground is, or None if nothing is static.
    """
    if len(pairs) < 3:
        return None
    votes = np.zeros(pairs[0][0].shape, np.float32)
    counted = np.zeros_like(votes)
    for previous, current, ground in pairs:
        v, c = static_votes(previous, current, ground)
        votes += v
        counted += c
    voted = ((votes >= 2) & (votes > 0.6 * counted)).astype(np.uint8)
    static = cv2.morphologyEx(voted, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    fraction = float(static.mean())
    if fraction < 0.001 or fraction > 0.6:
        return None
    grown = cv2.dilate(static, np.ones((11, 11), np.uint8))  # keep corners off the occluder's edge
    return np.where(grown > 0, 0, 255).astype(np.uint8)


def load_user_mask(path: Path) -> np.ndarray:
    """--mask: white where the picture does not move with the ground. Returns 255 where it does."""
    if not path.is_file():
        raise DescentError(f"{path}: no such mask file; give a PNG, white where the lander is")
    mask = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if mask is None:
        raise DescentError(f"{path}: cannot read the mask; give a PNG, white where the lander is")
    return np.where(mask > 127, 0, 255).astype(np.uint8)


CORNERS = 300
CORNER_CANDIDATES = 1000  # found, then spread over the picture, before the CORNERS kept
COARSE_POINTS = 64  # enough for RANSAC to see through a lander leg; the fine round gives the precision
FINE_POINTS = 150  # the first in round-robin order: more, weaker ones add error rather than average it out
CORNER_LEVEL_MIN_WIDTH = 384  # corners are found at half resolution on copies at least this wide


def find_corners(image: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray | None:
    """Trackable corners of an analysis copy, away from masked lander parts, in round-robin order.

    They are found at half resolution (a tenth of the cost at 512 px): a corner there is a textured
    spot at full resolution too, and tracking places it to a fraction of a pixel anyway.
    """
    half = image.shape[1] >= CORNER_LEVEL_MIN_WIDTH
    picture = cv2.pyrDown(image) if half else image
    ph, pw = picture.shape
    if mask is not None and mask.shape != picture.shape:
        mask = cv2.resize(mask, (pw, ph), interpolation=cv2.INTER_NEAREST)
    # Spread over the picture before the cap, not after: the CORNERS strongest alone sit on whatever is
    # sharpest, and a moving subject covering a quarter of a hand-held clip held 73% of them, so the fit
    # followed it (issue 13's running-animal clip). The cap then keeps the first of the round-robin order.
    corners = cv2.goodFeaturesToTrack(picture, maxCorners=CORNER_CANDIDATES, qualityLevel=0.0005,
                                      minDistance=max(3, pw // 80), blockSize=5 if half else 7, mask=mask)
    if corners is None or len(corners) < MIN_INLIERS:
        return None
    return _round_robin((corners * 2 + 0.5).astype(np.float32) if half else corners, image.shape)[:CORNERS]


def _round_robin(corners: np.ndarray, shape: tuple[int, ...], cells: int = 8) -> np.ndarray:
    """Corners (strongest first) reordered over a grid: the strongest of every cell, then the second...

    Any first N are then spread over the picture. Taken strongest first, they would crowd onto
    the sharpest edges in view, which late in a descent are often a lander leg's or a shadow's
    while the ground has gone soft: the fit would then follow the lander.
    """
    h, w = shape[:2]
    points = corners.reshape(-1, 2)
    cell = (np.minimum(points[:, 1] * cells // h, cells - 1) * cells
            + np.minimum(points[:, 0] * cells // w, cells - 1)).astype(np.int64)
    order = np.argsort(cell, kind="stable")  # within a cell, still strongest first
    rank = np.empty(len(points), np.int64)
    starts = np.searchsorted(cell[order], cell[order], side="left")
    rank[order] = np.arange(len(points)) - starts
    return corners[np.lexsort((np.arange(len(points)), rank))]


_COARSE_CRITERIA = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 20, 0.01)
_FINE_CRITERIA = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 10, 0.01)
_COARSE_WINDOW, _FINE_WINDOW = (15, 15), (31, 31)


def _track(previous: np.ndarray, current: np.ndarray, corners: np.ndarray, predicted: np.ndarray, *,
           fine: bool) -> tuple[np.ndarray, np.ndarray] | None:
    """Corners tracked into `current`: (where they started, where they went), the failed ones dropped.

    The coarse round searches five pyramid levels; RANSAC then drops the tracks that went astray
    (tracking each one back as well cost half the round and changed no result). The fine round
    starts from frames aligned to a pixel or so, so it tracks on one level, with a larger window:
    every window pixel is a measurement, and warped back, the window no longer straddles a zoom or
    a turn.
    """
    window, levels, criteria = (_FINE_WINDOW, 0, _FINE_CRITERIA) if fine else (_COARSE_WINDOW, 4, _COARSE_CRITERIA)
    flags = cv2.OPTFLOW_USE_INITIAL_FLOW
    tracked, status, _ = cv2.calcOpticalFlowPyrLK(previous, current, corners, predicted.copy(), winSize=window,
                                                  maxLevel=levels, criteria=criteria, flags=flags)
    good = status.ravel() == 1
    if good.sum() < MIN_INLIERS:
        return None
    return corners.reshape(-1, 2)[good], tracked.reshape(-1, 2)[good]


def _with_the_coarse_model(tracks: tuple[np.ndarray, np.ndarray] | None) -> tuple[np.ndarray, np.ndarray] | None:
    """The fine tracks that stayed with the coarse model (moved less than its tolerance on the frames
    it aligned), or None if too few did. The others follow another motion (a subject moving over the
    ground, a window pulled by one): left in, a compact subject can win the fine fit's RANSAC."""
    if tracks is None:
        return None
    start, end = tracks
    stayed = np.hypot(*(end - start).T) < COARSE_THRESHOLD_PX
    return (start[stayed], end[stayed]) if stayed.sum() >= MIN_INLIERS else None


def _fit(src: np.ndarray, dst: np.ndarray, threshold_px: float) -> tuple[np.ndarray, int, float, float] | None:
    """A similarity from point pairs with RANSAC, in pixels: (3x3 matrix, inliers, ratio, residual)."""
    matrix, inlier_flags = cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=threshold_px,
                                                       maxIters=2000, confidence=0.999, refineIters=20)
    if matrix is None:
        return None
    inliers = inlier_flags.ravel().astype(bool)
    count = int(inliers.sum())
    if count == 0:
        return None
    fitted = src[inliers] @ matrix[:, :2].T + matrix[:, 2]
    residual = float(np.sqrt(np.mean(np.sum((fitted - dst[inliers]) ** 2, axis=1))))
    return np.vstack([matrix, [0, 0, 1]]), count, count / len(src), residual


def _inside(corners: np.ndarray, to_current: np.ndarray, w: int, h: int, *, margin: float) -> np.ndarray:
    """The corners that land at least `margin` pixels inside the current frame."""
    landed = cv2.perspectiveTransform(corners, to_current).reshape(-1, 2)
    keep = ((landed >= margin) & (landed <= np.array([w - 1 - margin, h - 1 - margin]))).all(axis=1)
    return corners[keep]


def _at_mean(picture: np.ndarray, mean: float) -> np.ndarray:
    return cv2.convertScaleAbs(picture, alpha=mean / max(float(cv2.mean(picture)[0]), 1.0))


def estimate_motion(previous: np.ndarray, current: np.ndarray, corners: np.ndarray | None, *,
                    guess: Similarity | None = None, precise: bool = True,
                    fine_threshold_px: float = FINE_THRESHOLD_PX) -> PairMotion | None:
    """The motion taking `previous` to `current`, or None when the pair has too little texture or
    agreement to trust. `corners` are found in `previous` (find_corners).

    Lucas-Kanade windows assume pure translation, so a rotation or zoom between the frames biases
    each track a little. A second round on `current` warped back by the first estimate, where
    what is left is nearly a pure translation, removes that bias. `precise` False stops at the
    first estimate, good to a pixel or two at half the cost: enough to compare two frames'
    brightness on the ground they share (deflicker alone), not to hold a site still.
    """
    if corners is None:
        return None
    h, w = previous.shape
    # Lucas-Kanade assumes each point keeps its brightness: an exposure jump of 20% would break
    # every track, so both frames are brought to one mean first. Dark frames are brightened to
    # mid-grey on the way: the tracker's fixed-point gradients are then finer (a fifth less error
    # on a descent at mean 70).
    level = max(MID_GREY, float(cv2.mean(previous)[0]))
    previous, matched = _at_mean(previous, level), _at_mean(current, level)
    coarse_corners = corners[:COARSE_POINTS]
    predicted = coarse_corners
    if guess is not None:
        predicted = cv2.transform(coarse_corners, to_pixels(guess, w, h)).astype(np.float32)
    tracks = _track(previous, matched, coarse_corners, predicted, fine=False)
    first = None if tracks is None else _coarse_model(*tracks, previous, matched)
    if first is None:
        return None
    coarse, count, ratio, residual = first
    if not precise:
        if count < MIN_INLIERS or ratio < MIN_INLIER_RATIO:
            return None
        return _pair_motion(coarse, count, ratio, residual, previous, current)
    aligned = warp_picture(matched, coarse, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                           border=cv2.BORDER_REPLICATE)
    # Warped back, the current frame leaves a band it does not cover, filled by replicated edge
    # pixels that do not move with the ground: a fine window reaching into it would be pulled
    # along. The zoom of a descent always opens that band, so the bias would always have one sign.
    fine_corners = _inside(corners, coarse, w, h, margin=_FINE_WINDOW[0] // 2 + 1)[:FINE_POINTS]
    tracked = None if len(fine_corners) < MIN_INLIERS else _track(previous, aligned, fine_corners, fine_corners,
                                                                  fine=True)
    tracks = _with_the_coarse_model(tracked)
    second = None if tracks is None else _fit(*tracks, threshold_px=fine_threshold_px)
    if tracked is None or tracks is None or second is None:
        return None
    matrix, count, _, residual = second
    perspective = _perspective(*tracks, count, threshold_px=fine_threshold_px)
    if perspective is not None:
        matrix, count, _, residual = perspective
    # The share is of every fine track, those set aside as another motion included: counted among the
    # kept ones alone, a pair into dust whose few steady tracks were dust passed (0.37 of those kept)
    # with a motion 8 px off its neighbours', and the site it defined drifted 5 px.
    ratio = count / len(tracked[0])
    if count < MIN_INLIERS or ratio < MIN_INLIER_RATIO or residual > MAX_RESIDUAL_PX:
        return None
    return _pair_motion(coarse @ matrix, count, ratio, residual, previous, current)


def ground_agreement(previous: np.ndarray, current: np.ndarray, to_current: np.ndarray) -> float:
    """How alike two pictures are once `current` is brought back onto `previous` by `to_current` (3x3,
    pixels of previous -> current): the median over cells of their correlation (1: the same ground, 0:
    nothing in common), on small copies, which also average out grain. Cells `current` covers less
    than half of are left out; none left: 0. The median sees past a static part that the motion moves."""
    before, after = _small_copy(previous), _small_copy(current)
    scale = before.shape[1] / previous.shape[1]
    size = (before.shape[1], before.shape[0])
    to_small = np.diag([scale, scale, 1.0])
    matrix = to_small @ to_current @ np.linalg.inv(to_small)
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    back = warp_picture(after, matrix, size, flags=flags, border=cv2.BORDER_CONSTANT)
    covered = warp_picture(np.ones_like(after), matrix, size, flags=flags, border=cv2.BORDER_CONSTANT) > 0.999
    a, b, seen = _cells(before), _cells(back), _cells(covered.astype(np.float32))
    count = seen.sum(axis=1)
    keep = count >= a.shape[1] / 2
    if not keep.any():
        return 0.0
    a, b, seen, count = a[keep], b[keep], seen[keep], count[keep, None]
    da = (a - (a * seen).sum(axis=1, keepdims=True) / count) * seen
    db = (b - (b * seen).sum(axis=1, keepdims=True) / count) * seen
    correlation = (da * db).sum(axis=1) / np.sqrt((da * da).sum(axis=1) * (db * db).sum(axis=1) + 1e-6)
    return float(np.median(correlation))


def ground_coverage(picture: np.ndarray) -> float:
    """The share of a picture that shows texture: of its cells (as ground_agreement's), those whose
    spread is at least a quarter of that of the busiest quarter of them. A frame of ground reads 0.95
    to 1; one half blank, about a half."""
    spreads = _cells(_small_copy(picture)).std(axis=1)
    busy = float(np.percentile(spreads, 75))
    return float(np.mean(spreads >= 0.25 * busy)) if busy > 0 else 0.0


def _small_copy(picture: np.ndarray) -> np.ndarray:
    """A copy at most AGREEMENT_WIDTH_PX wide (area-averaged), as float."""
    scale = min(1.0, AGREEMENT_WIDTH_PX / picture.shape[1])
    size = (max(1, round(picture.shape[1] * scale)), max(1, round(picture.shape[0] * scale)))
    return cv2.resize(picture, size, interpolation=cv2.INTER_AREA).astype(np.float32)


def _cells(picture: np.ndarray) -> np.ndarray:
    """The picture cut into square cells of AGREEMENT_CELL_PX (fewer pixels in a picture smaller than
    that: a thumbnail is one cell), one row of pixels per cell; the ragged edge left out."""
    cell = max(1, min(AGREEMENT_CELL_PX, *picture.shape[:2]))
    rows, cols = picture.shape[0] // cell, picture.shape[1] // cell
    return picture[:rows * cell, :cols * cell].reshape(rows, cell, cols, cell).swapaxes(1, 2).reshape(
        rows * cols, cell * cell)


def _pair_motion(full: np.ndarray, count: int, ratio: float, residual: float, previous: np.ndarray,
                 current: np.ndarray) -> PairMotion | None:
    """A pair's motion from its pixel matrix (similarity or homography) at the analysis copies' size;
    None where the pictures it aligns do not look alike (ground_agreement) or it tilts too far."""
    if ground_agreement(previous, current, full) < AGREEMENT_MIN:
        return None
    h, w = previous.shape
    to_norm = pixel_to_normalised(w, h)
    from_norm = np.linalg.inv(to_norm)
    if is_affine(full):
        return PairMotion(Similarity.from_matrix(to_norm @ full @ from_norm), count, ratio, residual)
    homography = to_norm @ full @ from_norm
    homography /= homography[2, 2]
    if keystone(homography, h / w) > MAX_KEYSTONE:
        return None  # more than a few degrees of tilt in a tenth of a second: a fit to dust or noise
    return PairMotion(nearest_similarity(homography, h / w), count, ratio, residual, homography)


# Evening out the local contrast (the second try of measure_pair): grain smoothed over about a pixel, then
# each pixel's difference from the mean around it divided by the spread there, over a few times the
# tracking window, so faint ground and bright haze give the tracker the same contrast as clear ground.
EVEN_GRAIN_SIGMA_PX = 1.2
EVEN_AREA_SIGMA_PX = 10.0
EVEN_CONTRAST = 40.0  # grey levels a local standard deviation becomes


def even_contrast(image: np.ndarray) -> np.ndarray:
    """An analysis copy with its local mean at mid-grey and its local contrast evened out (8-bit)."""
    smooth = cv2.GaussianBlur(image.astype(np.float32), (0, 0), EVEN_GRAIN_SIGMA_PX)
    mean = cv2.GaussianBlur(smooth, (0, 0), EVEN_AREA_SIGMA_PX)
    detail = smooth - mean
    spread = cv2.sqrt(cv2.GaussianBlur(detail * detail, (0, 0), EVEN_AREA_SIGMA_PX)) + 1.0
    return cv2.convertScaleAbs(cv2.divide(detail, spread), alpha=EVEN_CONTRAST, beta=MID_GREY)


def measure_pair(previous: np.ndarray, current: np.ndarray, mask: np.ndarray | None = None, *,
                 precise: bool = True) -> PairMotion | None:
    """estimate_motion on the pair, and where that fails, again with the local contrast evened out.

    The second try is only a fallback, so that every pair the plain copies measure is measured as
    before. On generated descents it measured the first half of a plume's dust (centre within
    0.2 px of the truth) where the plain pair was bridged, and the site then holds into the dust.

    Where both fail, both are tried again with the fine round's tolerance loosened from
    FINE_THRESHOLD_PX to LOOSE_FINE_THRESHOLD_PX: on a soft high first frame, moving 30 px a frame
    with a degree of tilt, the fine tracks scatter by 0.9 px (median) and too few of them fall within
    half a pixel of any one model. A bridge there, holding the neighbours' motion while the camera
    shakes 10 px, put the site 37 px off in the first frames; the looser fit is within a pixel.
    """
    plain = (previous, current, find_corners(previous, mask))
    evened: tuple[np.ndarray, np.ndarray, np.ndarray | None] | None = None
    # Without the fine round (not precise) its tolerance changes nothing: one round of tries is all.
    for threshold in (FINE_THRESHOLD_PX, LOOSE_FINE_THRESHOLD_PX)[: 2 if precise else 1]:
        found = estimate_motion(*plain, precise=precise, fine_threshold_px=threshold)
        if found is not None:
            return found
        if evened is None:
            evened_previous = even_contrast(previous)
            evened = (evened_previous, even_contrast(current), find_corners(evened_previous, mask))
        found = estimate_motion(*evened, precise=precise, fine_threshold_px=threshold)
        if found is not None:
            return found
    return None


def _coarse_model(src: np.ndarray, dst: np.ndarray, previous: np.ndarray,
                  current: np.ndarray) -> tuple[np.ndarray, int, float, float] | None:
    """The first estimate, good to a pixel or two: a similarity, or a homography where a tilting
    camera bends the motion too far from any similarity (a degree of tilt moves the corners of a
    512 px frame several pixels against the middle); with the similarity's support (inliers, their
    share, their residual). None where the pictures, aligned by the similarity, have nothing in
    common (ground_agreement): the homography's RANSAC on pure noise costs 17 ms, and a blank pair
    went through it four times."""
    fitted = _fit(src, dst, threshold_px=COARSE_THRESHOLD_PX)
    if fitted is None:
        return None
    _, count, ratio, residual = fitted
    if ratio >= 0.8 or len(src) < MIN_INLIERS:
        return fitted
    if ground_agreement(previous, current, fitted[0]) < AGREEMENT_MIN:
        return None
    homography, flags = cv2.findHomography(src, dst, cv2.RANSAC, COARSE_THRESHOLD_PX, maxIters=2000,
                                           confidence=0.999)
    if homography is None or int(flags.sum()) < 1.25 * count:
        return fitted
    return homography, count, ratio, residual


def _perspective(src: np.ndarray, dst: np.ndarray, similarity_inliers: int, *,
                 threshold_px: float) -> tuple[np.ndarray, int, float, float] | None:
    """A homography for the fine tracks, if the data supports one: (matrix, inliers, ratio, residual).

    Supported means it explains clearly more tracks than the similarity did (a quarter more, at
    the same tolerance): a tilting camera over flat ground. On a pure zoom, rotation
    and shift its four extra parameters only fit noise, and it is not used.
    """
    if len(src) < HOMOGRAPHY_MIN_INLIERS or similarity_inliers * 1.25 > len(src):
        return None  # too few tracks, or too few left out for a homography to explain a quarter more
    homography, flags = cv2.findHomography(src, dst, cv2.RANSAC, threshold_px, maxIters=2000, confidence=0.999)
    if homography is None:
        return None
    inliers = flags.ravel().astype(bool)
    count = int(inliers.sum())
    if count < HOMOGRAPHY_MIN_INLIERS or count < 1.25 * similarity_inliers:
        return None
    landed = cv2.perspectiveTransform(src[inliers].reshape(-1, 1, 2), homography).reshape(-1, 2)
    residual = float(np.sqrt(np.mean(np.sum((landed - dst[inliers]) ** 2, axis=1))))
    return homography, count, count / len(src), residual


def place_by_correlation(previous: np.ndarray, current: np.ndarray, guess: Similarity,
                         mask: np.ndarray | None = None, *,
                         max_shift: float = CORRELATION_MAX_SHIFT) -> tuple[Similarity, float] | None:
    """A bridged pair's motion from the correlation of the whole picture (ECC), started from the
    bridge's guess: (motion, correlation), or None where the pair does not correlate well enough.

    Tracks need corners; thick dust leaves the ground only as faint, soft shading, which no corner
    detector finds but which the enhanced correlation coefficient still aligns (it is blind to the
    dust's gain and offset). Frame 111 of a sweep descent, all but white: the bridge held the last
    measured motion, 8.5 px off, while the descent slowed for touchdown; placed so, 1.4 px. `mask`
    (the static mask, 0 where static) is the current frame's: ECC warps it with the picture.
    """
    h, w = previous.shape
    # The ground left in dust is soft: it is compared on copies at most CORRELATION_WIDTH_PX wide,
    # blurred over a sixtieth of the width. At 512 px, 100 iterations took 0.45 s on a pair of noise;
    # at 256 px and 60, 2 ms there and 70 ms where it converges, placing a pair 0.04 px apart.
    scale = min(1.0, CORRELATION_WIDTH_PX / w)
    size = (max(8, round(w * scale)), max(8, round(h * scale)))
    before, after = (cv2.resize(p, size, interpolation=cv2.INTER_AREA).astype(np.float32) for p in (previous, current))
    valid = (np.full(size[::-1], 255, np.uint8) if mask is None
             else cv2.resize(mask, size, interpolation=cv2.INTER_NEAREST))
    start = to_pixels(guess, *size).astype(np.float32)
    blur_px = 2 * max(1, round(size[0] / 64)) + 1
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, CORRELATION_ITERATIONS, 1e-5)
    try:
        correlation, found = cv2.findTransformECC(before, after, start, cv2.MOTION_AFFINE, criteria, valid, blur_px)
    except cv2.error:
        return None  # it did not converge: a blank pair
    if not correlation >= CORRELATION_MIN:
        return None
    to_norm = pixel_to_normalised(*size)
    placed = nearest_similarity(to_norm @ np.vstack([found, [0.0, 0.0, 1.0]]) @ np.linalg.inv(to_norm), h / w)
    corners = frame_corners(h / w)
    if np.abs(placed.apply(corners) - guess.apply(corners)).max() > max_shift:
        return None  # another basin, far from where the neighbours put the frame
    return placed, float(correlation)


def measure_across(before: np.ndarray, after: np.ndarray, bridged: Similarity,
                   mask: np.ndarray | None = None) -> tuple[Similarity, float] | None:
    """The motion from `before` to `after`, two frames a gap apart, and how well they correlate once
    aligned by it; None if they cannot be aligned.

    Over a gap of forty frames the ground zooms by 2.5 to 6 and turns and moves by half a frame: too
    far for tracks, and the gap's bridged pairs, summed (`bridged`), said 1.7 for 2.5 and put the
    frame 0.45 frame widths off. A search over zoom, turn and place (search_across) finds it to a
    pixel or two of a small copy; the whole picture's correlation (place_by_correlation) places it
    from there. It compares the frame from nearer the ground with the other brought onto it: that
    one saw all of it, and the nearer frame, blurred to the other's detail, fills the comparison
    (brought the other way, a frame 3x nearer covers a ninth of the other, too little to place it).
    `mask` is the static mask (0 where static).
    """
    guess = search_across(before, after, bridged, mask)
    if guess is None:
        return None
    # The static parts smoothed over in both: ECC would align the earlier frame's lander leg, brought
    # onto the later frame, with the later frame's (0.06 of zoom off, on a leg a tenth of the frame).
    before, after = (_smoothed_over(p, mask, (p.shape[1], p.shape[0])) for p in (before, after))
    # Wherever the corners may go, within a tenth of a frame width of the search's place.
    if guess.log_scale >= 0:
        found = place_by_correlation(_as_seen_from(after, guess.scale), before, guess.inverse(), mask,
                                     max_shift=ACROSS_MAX_SHIFT)
        placed = None if found is None else (found[0].inverse(), found[1])
    else:
        placed = place_by_correlation(_as_seen_from(before, 1 / guess.scale), after, guess, mask,
                                      max_shift=ACROSS_MAX_SHIFT)
    if placed is None:
        return None
    motion = _refined_by_tracks(before, after, placed[0], mask)
    # Judged once more where it ended: on gaps beyond ACROSS_MAX_ZOOM, the search's best (another
    # place, at another zoom) read 0.5 and the correlation placement took it further off (0.24, 0.48);
    # right ones read 0.59 to 0.99.
    if across_agreement(before, after, motion, mask) < ACROSS_MIN_AGREEMENT:
        return None
    return motion, placed[1]


def _as_seen_from(picture: np.ndarray, zoom: float) -> np.ndarray:
    """A frame blurred to the detail of one `zoom` times farther from the ground, enlarged onto it."""
    return cv2.GaussianBlur(picture, (0, 0), 0.5 * math.sqrt(zoom**2 - 1)) if zoom > 1.05 else picture


def _refined_by_tracks(before: np.ndarray, after: np.ndarray, motion: Similarity,
                       mask: np.ndarray | None) -> Similarity:
    """`motion` (before -> after) refined by tracks on the grid of the frame nearer the ground, with the
    other brought onto it: the correlation placement leaves up to 2% of zoom and 2 px where the frames
    share half their ground; the tracks, where they hold, a tenth of that. Unchanged where they do not."""
    if motion.log_scale < 0:
        return _refined_by_tracks(after, before, motion.inverse(), mask).inverse()
    h, w = after.shape
    forward = np.vstack([to_pixels(motion, w, h), [0.0, 0.0, 1.0]])
    brought = warp_picture(before, forward, (w, h), flags=cv2.INTER_LINEAR, border=cv2.BORDER_REPLICATE)
    covered = warp_picture(np.full_like(before, 255), forward, (w, h), flags=cv2.INTER_NEAREST,
                           border=cv2.BORDER_CONSTANT)
    # Corners only where the brought frame is real, a fine window's width in from its edge.
    reach = 2 * (_FINE_WINDOW[0] // 2 + 1) + 1
    valid = cv2.erode(covered, np.ones((reach, reach), np.uint8))
    if mask is not None:
        valid = np.minimum(valid, mask)
    found = measure_pair(brought, _as_seen_from(after, motion.scale), valid)
    return motion if found is None else motion.then(found.transform)


# The search across a gap (search_across): every zoom up to ACROSS_MAX_ZOOM either way, whatever the
# bridges say (over a dropout while the descent sped up, they said 1.1 for 4), turns within 14 degrees
# of theirs, then a grid a third as fine around the best; the best must agree this well. Copies at
# least SEARCH_WIDTH_PX wide, wider where the later frame's footprint in the earlier one would be under
# SEARCH_TEMPLATE_MIN_PX. At the coarse grid alone, 1.7 degrees off on a 2.9x gap, the correlation
# placement from there fell into another basin.
SEARCH_WIDTH_PX = 128
SEARCH_TEMPLATE_MIN_PX = 32  # smaller, a soft template matches soft ground anywhere at 0.9
SEARCH_LOG_SCALE_STEP = 0.1
SEARCH_ANGLE_STEP_RAD = 0.06
SEARCH_TURNS = 4  # steps either way of the bridges' turn
SEARCH_CANDIDATES = 16  # the best places judged on what the frames share ...
SEARCH_CANDIDATES_EACH = 2  # ... and the best of each kind of template
SEARCH_REFINED = 3  # the best so judged, refined
SEARCH_MIN_AGREEMENT = 0.5
ACROSS_MAX_ZOOM = 4.0  # beyond, the farther frame brought onto the nearer is too soft to judge: left bridged
SEARCH_TEMPLATE_SHARE = 0.75  # of the later frame's footprint at most, when the frames are as near
# What of the later frame is looked for: its middle 0.8, and the middle 0.45 of each half, for frames
# that moved by more than a quarter of a frame, where the middle falls near the earlier frame's edge.
SEARCH_TEMPLATES = ((0.8, (0.0, 0.0)), (0.45, (-0.25, 0.0)), (0.45, (0.25, 0.0)), (0.45, (0.0, -0.25)),
                    (0.45, (0.0, 0.25)))
ACROSS_MAX_SHIFT = 0.1
ACROSS_MIN_AGREEMENT = 0.55


def search_across(before: np.ndarray, after: np.ndarray, bridged: Similarity,
                  mask: np.ndarray | None = None) -> Similarity | None:
    """The similarity taking `before` to `after` found by search: for each zoom up to ACROSS_MAX_ZOOM and
    each turn near the bridges', the middle of `after`, reduced and turned so, is looked for all over
    `before` (normalised cross-correlation). A small template finds a good match somewhere by chance
    more often than a large one, so the best few places are judged on the whole of what the frames
    share (across_agreement), refined on a finer grid and judged again; the best, if the frames agree
    there. Good to a pixel of
    the search copies and a degree: a start for the correlation placement. Static parts (`mask` 0)
    are smoothed over first: a lander leg in both frames matches itself better than the ground does."""
    zooms = math.ceil(math.log(ACROSS_MAX_ZOOM) / SEARCH_LOG_SCALE_STEP)
    smallest_share = min(share for share, _ in SEARCH_TEMPLATES)
    width = min(before.shape[1], max(SEARCH_WIDTH_PX, round(SEARCH_TEMPLATE_MIN_PX * ACROSS_MAX_ZOOM / smallest_share)))
    scale = width / before.shape[1]
    size = (width, max(16, round(before.shape[0] * scale)))
    small_before, small_after = (_smoothed_over(cv2.resize(p, size, interpolation=cv2.INTER_AREA), mask, size)
                                 for p in (before, after))
    found = _placed_over_grid(small_before, small_after, Similarity(0.0, bridged.angle_rad), zooms, SEARCH_TURNS, 1.0)
    # Small templates match somewhere by chance better than large ones, and a soft frame matches soft
    # ground: the best places of each kind, and the best of all, are judged on what the frames share,
    # and the few best so judged are refined and judged again.
    by_score = sorted(found, key=lambda c: -c[0])
    chosen = {id(c): c for c in by_score[:SEARCH_CANDIDATES]}
    for kind in range(len(SEARCH_TEMPLATES)):
        chosen.update({id(c): c for c in [c for c in by_score if c[1] == kind][:SEARCH_CANDIDATES_EACH]})
    judged = sorted(((across_agreement(before, after, c[2], mask), c[1], c[2]) for c in chosen.values()),
                    key=lambda j: -j[0])[:SEARCH_REFINED]
    if not judged:
        return None
    best_agreement, best = judged[0][0], judged[0][2]
    for _, kind, candidate in judged:
        # Refined with the template that found it: another one's best score is another place.
        finer = [c for c in _placed_over_grid(small_before, small_after, candidate, 1, 1, 1 / 3) if c[1] == kind]
        if finer:
            refined = max(finer, key=lambda c: c[0])[2]
            agreement = across_agreement(before, after, refined, mask)
            if agreement > best_agreement:
                best_agreement, best = agreement, refined
    return best if best_agreement >= SEARCH_MIN_AGREEMENT else None


def across_agreement(before: np.ndarray, after: np.ndarray, motion: Similarity, mask: np.ndarray | None) -> float:
    """ground_agreement of two frames a zoom apart, on the grid of the one nearer the ground (the other
    brought onto it, the nearer one blurred to its detail), where they share the most pixels."""
    h, w = before.shape
    if motion.log_scale < 0:
        return across_agreement(after, before, motion.inverse(), mask)
    nearer = _as_seen_from(after, motion.scale)
    if mask is not None:
        nearer, before = (_smoothed_over(p, mask, (w, h)) for p in (nearer, before))
    return ground_agreement(nearer, before, np.vstack([to_pixels(motion.inverse(), w, h), [0.0, 0.0, 1.0]]))


def _smoothed_over(picture: np.ndarray, mask: np.ndarray | None, size: tuple[int, int]) -> np.ndarray:
    """The picture with its static parts (mask 0) filled by the mean of the ground around them."""
    if mask is None:
        return picture
    ground = (cv2.resize(mask, size, interpolation=cv2.INTER_NEAREST) > 0).astype(np.uint8)
    # Widened by a twentieth of the width: the mask found misses the rim of a leg and of its shadow,
    # and that rim, still in both frames, matched itself at 0.9 where the ground's match read 0.6.
    reach = 2 * max(1, size[0] // 40) + 1
    ground = cv2.erode(ground, np.ones((reach, reach), np.uint8)).astype(np.float32)
    sigma = size[0] / 16
    around = cv2.GaussianBlur(picture.astype(np.float32) * ground, (0, 0), sigma)
    weight = cv2.GaussianBlur(ground, (0, 0), sigma)
    filled = np.where(ground > 0, picture, around / np.maximum(weight, 1e-3))
    return np.clip(filled, 0, 255).astype(np.uint8)


def _placed_over_grid(before: np.ndarray, after: np.ndarray, around: Similarity, zooms: int, turns: int,
                      fineness: float) -> list[tuple[float, int, Similarity]]:
    """(correlation, kind of template, motion) for each of a grid of zooms and turns around `around`'s, at steps of
    `fineness` times the search's, each placed where it correlates best (search_across); zooms beyond
    ACROSS_MAX_ZOOM either way left out."""
    h, w = before.shape
    found = []
    for step in np.arange(-zooms, zooms + 1) * fineness:
        log_scale = around.log_scale + step * SEARCH_LOG_SCALE_STEP
        if abs(log_scale) > math.log(ACROSS_MAX_ZOOM):
            continue
        zoom = math.exp(log_scale)
        source = _as_seen_from(after, zoom)  # reduced, it would alias
        for turn in np.arange(-turns, turns + 1) * fineness:
            angle = around.angle_rad + turn * SEARCH_ANGLE_STEP_RAD
            for kind, (middle_share, offset) in enumerate(SEARCH_TEMPLATES):
                side = round(min(SEARCH_TEMPLATE_SHARE * middle_share * min(w, h), middle_share * min(w, h) / zoom))
                if side >= SEARCH_TEMPLATE_MIN_PX:
                    placed = _placed_template(before, source, log_scale, angle, side,
                                              (offset[0] * w, offset[1] * h))
                    if placed is not None:
                        found.append((placed[0], kind, placed[1]))
    return found


def _placed_template(before: np.ndarray, after: np.ndarray, log_scale: float, angle: float,
                     side: int, offset_px: tuple[float, float]) -> tuple[float, Similarity] | None:
    """`side` pixels of `after` around its middle moved by `offset_px`, reduced by the zoom and turned
    back, looked for all over `before`: (correlation, motion) at the best place."""
    h, w = before.shape
    linear = math.exp(log_scale) * np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    half = (side - 1) / 2
    middle = np.array([(w - 1) / 2, (h - 1) / 2])
    centre = middle + offset_px
    # A template pixel u from its middle is the later frame's pixel linear @ u from `centre`.
    to_after = np.hstack([linear, (centre - linear @ [half, half])[:, None]])
    template = cv2.warpAffine(after, to_after, (side, side), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                              borderMode=cv2.BORDER_REPLICATE)
    if float(template.std()) < 1.0 or side >= min(w, h):
        return None  # flat, it correlates with anything; or larger than the frame it is looked for in
    scores = cv2.matchTemplate(before, template, cv2.TM_CCOEFF_NORMED)
    _, peak, _, (x, y) = cv2.minMaxLoc(scores)
    # That point of the later frame lies there in the earlier one (normalised coordinates of each).
    seen_at = np.array([(x + half - middle[0]) / w, (y + half - middle[1]) / w])
    goes_to = np.asarray(offset_px) / w
    shift = goes_to - Similarity(log_scale, angle).apply(seen_at[None])[0]
    return float(peak), Similarity(log_scale, angle, float(shift[0]), float(shift[1]))


def bridge(motions: list[FrameMotion]) -> list[FrameMotion]:
    """Replace unmeasured motions by interpolating their measured neighbours' parameters."""
    measured = [i for i, m in enumerate(motions) if not m.bridged and i > 0]
    if not measured:
        return [m.with_transform(Similarity()) for m in motions]
    params = np.array([[m.log_scale, m.angle_rad, m.tx, m.ty] for m in motions])
    out = list(motions)
    known = np.array(measured)
    for i, m in enumerate(motions):
        if i == 0:
            out[i] = m.with_transform(Similarity(), bridged=True)
        elif m.bridged:
            values = [float(np.interp(i, known, params[known, k])) for k in range(4)]
            out[i] = m.with_transform(Similarity(*values))
    return out


def save_motion(path: Path, motions: list[FrameMotion], *, analysis_width: int,
                static_mask: np.ndarray | None = None) -> None:
    """Write pass 1 as JSON; floats are written exactly, so loading gives back the same path.

    The static mask (the lander parts pass 1 found, and --mask) goes with it, as a PNG in base64:
    a build that reuses the file must keep those parts out of the fill's canvas as well.
    """
    document = {
        "format": MOTION_FORMAT,
        "version": MOTION_VERSION,
        "units": "each frame's motion from the previous frame: x, y in frame widths from the frame centre, "
                 "y down; log_scale natural log of the zoom; angle_rad clockwise on screen",
        "analysis_width_px": analysis_width,
        "frames": [asdict(m) for m in motions],
        "static_mask_png": None if static_mask is None else
        base64.b64encode(cv2.imencode(".png", static_mask)[1].tobytes()).decode("ascii"),
    }
    write_text_atomically(path, json.dumps(document, indent=1) + "\n")


def load_static_mask(path: Path) -> np.ndarray | None:
    """The static mask saved with a motion file (0 where the picture does not move with the ground), or
    None: nothing static was found, or the file is from a version that did not keep it."""
    document = json.loads(path.read_text())
    if "static_mask_png" not in document:
        log.warning("%s: made by a version that did not keep the static mask: lander parts found then are not "
                    "kept out of the fill now; delete it to measure again", path)
    encoded = document.get("static_mask_png")
    if encoded is None:
        return None
    try:
        mask = cv2.imdecode(np.frombuffer(base64.b64decode(encoded, validate=True), np.uint8), cv2.IMREAD_GRAYSCALE)
    except (binascii.Error, ValueError, TypeError, cv2.error):
        mask = None
    if mask is None:
        raise DescentError(f"{path}: a damaged static mask in the motion file; delete it to measure again")
    return mask


def load_motion(path: Path, files: list[str]) -> list[FrameMotion]:
    """Read a motion file made for exactly these frames, in this order."""
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DescentError(f"{path}: cannot read the motion file ({exc}); delete it to measure again") from None
    if not isinstance(document, dict) or document.get("format") != MOTION_FORMAT or \
            document.get("version") != MOTION_VERSION:
        raise DescentError(f"{path}: not a descent motion file (version {MOTION_VERSION}); delete it to measure "
                           "again, or give another --motion path")
    try:
        motions = [_checked(FrameMotion(**entry), index) for index, entry in enumerate(document["frames"])]
    except (KeyError, TypeError, ValueError) as exc:
        raise DescentError(f"{path}: a damaged motion file ({exc}); delete it to measure again") from None
    listed = [m.file for m in motions]
    if listed != files:
        differ = next((i for i, (a, b) in enumerate(zip(listed, files, strict=False)) if a != b), None)
        what = (f"{len(motions)} listed, {len(files)} here" if differ is None else
                f"frame {differ + 1} is {listed[differ]} in the file, {files[differ]} here")
        raise DescentError(f"{path}: made for other frames ({what}); delete it or give another --motion path")
    return motions


_NUMBERS = ("log_scale", "angle_rad", "tx", "ty", "inliers", "inlier_ratio", "residual_px")


def _checked(motion: FrameMotion, index: int) -> FrameMotion:
    """The motion read back (frame `index` of the file), refused (ValueError, naming the field) unless
    every field has its type: a hand-edited or cut file must fail here, in one line, not deep in the
    path's arithmetic."""
    if not isinstance(motion.file, str):
        raise ValueError(f"frame {index + 1}: file is not a name")
    if not isinstance(motion.bridged, bool):
        raise ValueError(f"{motion.file}: bridged is not true or false")
    fields = {name: getattr(motion, name) for name in _NUMBERS}
    fields.update({name: getattr(motion, name) for name in ("log_gain", "correlation")
                   if getattr(motion, name) is not None})
    for name, value in fields.items():
        if not _is_number(value):
            raise ValueError(f"{motion.file}: {name} is not a number ({value!r})")
    if motion.correlation is not None and not -1.0 <= motion.correlation <= 1.0:
        raise ValueError(f"{motion.file}: correlation {motion.correlation} is not between -1 and 1")
    if motion.homography is not None and not (isinstance(motion.homography, list) and len(motion.homography) == 9
                                              and all(_is_number(v) for v in motion.homography)):
        raise ValueError(f"{motion.file}: homography is not 9 numbers")
    if motion.across_from is not None and not (isinstance(motion.across_from, int) and not isinstance(
            motion.across_from, bool) and 0 <= motion.across_from < index):
        raise ValueError(f"{motion.file}: across_from {motion.across_from!r} is not the index of an earlier frame")
    return motion


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and bool(np.isfinite(value))
