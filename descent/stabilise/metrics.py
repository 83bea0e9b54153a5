"""How steady a video is, measured on its decoded frames: the figures the benchmark and tests use.

Jitter is the RMS of the high-frequency part of the inter-frame motion, in output pixels:
translation, rotation (as the arc it moves a point at the frame edge) and zoom (likewise), each
minus its own smooth trend (periods longer than `period_frames` are the flight, not the shake).
Interframe PSNR (ITF) is the usual companion figure, though blur and borders flatter it.

The instrument has to be finer than what it measures: a good stabiliser leaves a few hundredths
of a pixel, about what Lucas-Kanade on compressed frames gets wrong. So each pair's feature
estimate is refined by direct alignment over every pixel it explains, on a similarity with the
gain matched. On video built from a known path it reads 0.041 px of jitter where feature
tracking alone read 0.084. (ECC was tried first: its six affine parameters wandered on the soft
ground late in a descent.)

Keystone is the perspective shake a tilting camera leaves, which a similarity cannot see: how
far consecutive frames' corners move beyond the nearest similarity.

Against a generated truth, each decoded output frame is registered to the very frame it was made
from (`locate_in_output`: the same pixels warped, so no parallax, dust or lander leg can pull the
fit): that map says where the true landing site went (site wander), how much of the input is
shown (picture kept), and, through the truth's own motion between input frames, the output's
motion with no tracking at all (`motion_from_maps`). `ground_agreement` tells real ground in the
part of an output frame its input does not cover from fill, against the truth rendered for the
same view.
"""

from __future__ import annotations

from collections.abc import Iterable

import cv2
import numpy as np

from descent.smoothing import smoothness_for, whittaker
from descent.stabilise.motion import analysis_copy, estimate_motion, find_corners
from descent.stabilise.similarity import (
    Similarity,
    keystone,
    nearest_similarity,
    pixel_to_normalised,
    to_pixels,
)

JITTER_PERIOD_FRAMES = 15.0
DIRECT_WIDTH = 1024  # frames wider than this are aligned on a reduced copy (the result is in frame widths)
_DIRECT_ROUNDS = 30


def interframe_motion(frames: Iterable[np.ndarray]) -> np.ndarray:
    """(n-1) x 4 motions in pixels of the frames given: dx, dy, rotation arc, zoom arc (NaN if unmeasured)."""
    rows = []
    previous = corners = previous_fine = None
    width = 0
    guess = None
    for frame in frames:
        width = frame.shape[1]
        image = analysis_copy(frame)
        fine = analysis_copy(frame, DIRECT_WIDTH).astype(np.float32)
        if previous is not None and previous_fine is not None:
            result = estimate_motion(previous, image, corners, guess=guess)
            if result is None:
                rows.append([np.nan] * 4)
            else:
                guess = result.transform
                t = _refined(previous_fine, fine, guess)
                rows.append([t.tx * width, t.ty * width, t.angle_rad * width / 2, t.log_scale * width / 2])
        previous, corners, previous_fine = image, find_corners(image), fine
    return np.array(rows, np.float64).reshape(-1, 4)


def _refined(previous: np.ndarray, current: np.ndarray, start: Similarity) -> Similarity:
    """`start` refined by direct alignment over every pixel, as a similarity (inverse compositional
    Gauss-Newton on the previous frame's gradients, the current frame's gain matched each round).

    Only pixels the motion explains take part: a lander leg or a fill border, which do not move
    with the ground, would otherwise pull the alignment their way. A pair that does not settle
    keeps the feature estimate.
    """
    h, w = previous.shape
    to_centred = np.array([[1.0, 0.0, -(w - 1) / 2], [0.0, 1.0, -(h - 1) / 2], [0.0, 0.0, 1.0]])
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    x -= (w - 1) / 2
    y -= (h - 1) / 2
    gx = cv2.Scharr(previous, cv2.CV_32F, 1, 0, scale=1 / 32)
    gy = cv2.Scharr(previous, cv2.CV_32F, 0, 1, scale=1 / 32)
    # Steepest descent images for (a, b, tx, ty) of x' = (1 + a) x - b y + tx, y' = b x + (1 + a) y + ty.
    steepest = np.stack([gx * x + gy * y, gy * x - gx * y, gx, gy]).reshape(4, -1)
    matrix = np.vstack([to_pixels(start, w, h), [0.0, 0.0, 1.0]])  # previous pixel -> current pixel
    for _ in range(_DIRECT_ROUNDS):
        warped = cv2.warpAffine(current, matrix[:2], (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                borderMode=cv2.BORDER_CONSTANT, borderValue=-1.0)
        # Bilinear blends the -1 outside into the edge pixels: one pixel in from the edge is clean.
        covered = cv2.erode((warped >= 0).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
        gain = float(previous[covered].sum()) / max(float(warped[covered].sum()), 1e-3)
        error = gain * warped - previous
        misfit = cv2.blur(np.abs(error), (9, 9))
        used = (covered & (misfit < 3 * float(np.median(misfit[covered])) + 1.0)).ravel()
        if used.sum() < 1000:
            return start
        weighted = steepest[:, used]
        step = np.linalg.lstsq(weighted @ weighted.T, weighted @ error.ravel()[used], rcond=None)[0]
        a, b, tx, ty = (float(v) for v in step)
        update = np.linalg.inv(to_centred) @ np.array([[1 + a, -b, tx], [b, 1 + a, ty], [0, 0, 1]]) @ to_centred
        matrix = matrix @ np.linalg.inv(update)
        if max(abs(tx), abs(ty), abs(a) * w, abs(b) * w) < 1e-4:
            break
    else:
        return start
    to_norm = pixel_to_normalised(w, h)
    return Similarity.from_matrix(to_norm @ matrix @ np.linalg.inv(to_norm))


def jitter_px(motion: np.ndarray, period_frames: float = JITTER_PERIOD_FRAMES) -> float:
    """RMS of what is left of each motion component after removing its trend slower than the period."""
    good = ~np.isnan(motion).any(axis=1)
    series = motion[good]
    if len(series) < 5:
        return float("nan")
    lam = smoothness_for(period_frames)
    weights = np.ones(len(series))
    high = np.column_stack([series[:, k] - whittaker(series[:, k], weights, lam) for k in range(4)])
    return float(np.sqrt(np.mean(np.sum(high**2, axis=1))))


def keystone_px(frames: Iterable[np.ndarray]) -> float:
    """RMS, over consecutive frames, of how far the frame corners move beyond the nearest similarity:
    the perspective shake of a tilting camera, which jitter (a similarity measure) does not see."""
    values = []
    previous = None
    for frame in frames:
        image = analysis_copy(frame)
        if previous is not None:
            moved = estimate_motion(previous, image, find_corners(previous))
            if moved is not None:
                bend = 0.0 if moved.homography is None else keystone(moved.homography, image.shape[0] / image.shape[1])
                values.append(bend * frame.shape[1])
        previous = image
    return float(np.sqrt(np.mean(np.square(values)))) if values else float("nan")


def interframe_psnr(frames: Iterable[np.ndarray]) -> float:
    """Mean PSNR between consecutive frames (higher is steadier)."""
    values = []
    previous = None
    for frame in frames:
        current = frame.astype(np.float64)
        if previous is not None:
            mse = float(np.mean((current - previous) ** 2))
            values.append(99.0 if mse == 0 else 10 * np.log10(255.0**2 / mse))
        previous = current
    return float(np.mean(values)) if values else float("nan")


_MIN_MATCHES = 12


ECC_INSET_PX = 3  # the source's rim left out of ECC: its pixels are interpolated against nothing in the output
GUESSED_MIN_CORRELATION = 0.98  # the least correlation for a map ECC found from a guess rather than from SIFT


def locate_in_output(output: np.ndarray, source: np.ndarray, guess: np.ndarray | list[np.ndarray] | None = None, *,
                     min_correlation: float = 0.8) -> np.ndarray | None:
    """The 3x3 homography taking `source` pixels to where they show in `output` (grey uint8), or None.

    A starting map from SIFT matches (RANSAC at 2 px), or where they are too few (dust, a soft first
    frame) each `guess` (a map or several), refined by ECC over the output pixels the source covers:
    ECC is blind to gain and offset, so a stabiliser's tone or exposure changes do not bias it. A map
    whose correlation stays under `min_correlation` is refused; of several guesses, the one refined
    to the highest correlation wins. On frames warped by a known homography and encoded with x264
    (crf 18) the map puts a point within a few hundredths of a pixel.

    ECC's mask is the source's (its input image's: OpenCV warps it into the output with the map
    each iteration), so it is the source inside its rim: warped, that is the covered output. (A
    mask of the covered output given in its place selected the wrong pixels wherever the frame is
    far from covering the output: on a half-width divert ECC ran 100 to 200 px off a SIFT start
    within a pixel, or gave up.)
    """
    matched = _matched(output, source)
    if matched is not None:
        starts = [matched]
    else:
        starts = [] if guess is None else [guess] if isinstance(guess, np.ndarray) else list(guess)
        # Started from a guess, ECC can settle in a wrong basin at a correlation of 0.9 to 0.96
        # (frames where SIFT finds nothing are soft); placed right, the same frames read 0.997.
        min_correlation = max(min_correlation, GUESSED_MIN_CORRELATION)
    best: tuple[float, np.ndarray] | None = None
    for start in starts:
        if covered_mask(start, source.shape, output.shape, inset_px=ECC_INSET_PX).mean() < 0.05:
            if matched is not None:
                return start  # too little overlap for ECC to judge: SIFT's map as it is
            continue  # ... and a guess there is no placement at all
        found = _ecc_refined(output, source, start)
        if found is not None and found[0] >= min_correlation and (best is None or found[0] > best[0]):
            best = found
    return None if best is None else best[1]


def _ecc_refined(output: np.ndarray, source: np.ndarray, start: np.ndarray) -> tuple[float, np.ndarray] | None:
    """ECC on a homography from `start`: (correlation, the map), or None if it does not converge."""
    inside = np.zeros(source.shape[:2], np.uint8)
    inside[ECC_INSET_PX:-ECC_INSET_PX, ECC_INSET_PX:-ECC_INSET_PX] = 1
    back = np.linalg.inv(start)  # ECC's map: output (template) pixels to source pixels
    back = (back / back[2, 2]).astype(np.float32)
    criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 50, 1e-6)  # 1e-7 moves no point 0.002 px, 3x slower
    try:
        correlation, back = cv2.findTransformECC(output.astype(np.float32), source.astype(np.float32), back,
                                                 cv2.MOTION_HOMOGRAPHY, criteria, inside, 3)
    except cv2.error:
        return None
    found = np.linalg.inv(back.astype(np.float64))
    return float(correlation), found / found[2, 2]


def _matched(output: np.ndarray, source: np.ndarray) -> np.ndarray | None:
    """A homography from SIFT matches (ratio test, RANSAC at 2 px), at the frames' size, or, if that
    finds too little, on copies brought to 384 px wide (small frames have few keypoints)."""
    found = _matched_at(output, source, 1.0)
    zoom = 384 / output.shape[1]
    return found if found is not None or zoom <= 1 else _matched_at(output, source, zoom)


def _matched_at(output: np.ndarray, source: np.ndarray, zoom: float) -> np.ndarray | None:
    scale = np.diag([zoom, zoom, 1.0])
    scale[:2, 2] = 0.5 * zoom - 0.5  # pixel centres kept
    sift = cv2.SIFT_create(nfeatures=1500)  # type: ignore[attr-defined]
    found = []
    for picture in (output, source):
        big = cv2.resize(picture, None, fx=zoom, fy=zoom, interpolation=cv2.INTER_CUBIC) if zoom != 1 else picture
        found.append(sift.detectAndCompute(big, None))
    (kp_out, des_out), (kp_src, des_src) = found
    if des_out is None or des_src is None or len(kp_out) < _MIN_MATCHES or len(kp_src) < _MIN_MATCHES:
        return None
    pairs = cv2.BFMatcher(cv2.NORM_L2).knnMatch(des_src, des_out, k=2)
    good = [m[0] for m in pairs if len(m) == 2 and m[0].distance < 0.8 * m[1].distance]
    if len(good) < _MIN_MATCHES:
        return None
    src = np.array([kp_src[m.queryIdx].pt for m in good], np.float32)
    dst = np.array([kp_out[m.trainIdx].pt for m in good], np.float32)
    matrix, inliers = cv2.findHomography(src, dst, cv2.RANSAC, 2.0 * zoom)
    if matrix is None or inliers is None or int(inliers.sum()) < _MIN_MATCHES:
        return None
    matrix = np.linalg.inv(scale) @ matrix @ scale
    return matrix / matrix[2, 2]


def covered_mask(matrix: np.ndarray, source_shape: tuple[int, ...], output_shape: tuple[int, ...], *,
                 inset_px: int = 1) -> np.ndarray:
    """Output pixels (bool) whose point in the source, through the inverse of `matrix` (source pixels
    to output pixels), lies inside the source at least `inset_px` from its edge."""
    h, w = output_shape[:2]
    sh, sw = source_shape[:2]
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    back = np.linalg.inv(matrix)
    points = np.stack([x.ravel(), y.ravel(), np.ones(x.size)])
    mapped = back @ points
    u, v = mapped[0] / mapped[2], mapped[1] / mapped[2]
    inside = (u >= inset_px - 0.5) & (u <= sw - 0.5 - inset_px) & (v >= inset_px - 0.5) & (v <= sh - 0.5 - inset_px)
    return (inside & (mapped[2] > 0)).reshape(h, w)


def picture_kept(matrix: np.ndarray, source_shape: tuple[int, ...], output_shape: tuple[int, ...]) -> float:
    """The share of the source frame that shows in the output frame (pixel centres, through `matrix`)."""
    return float(covered_mask(np.linalg.inv(matrix), output_shape, source_shape, inset_px=0).mean())


def motion_from_maps(maps: list[np.ndarray | None], steps: list[np.ndarray], width: int, height: int) -> np.ndarray:
    """(n-1) x 4 motions in output pixels, as `interframe_motion` gives them, of output frames whose
    maps from their input frames are `maps` (3x3, None where unknown: that row is NaN), the input
    frames moving by the true `steps` (steps[k]: input pixels of frame k-1 to frame k; steps[0] unused).

    Output k-1 to output k is maps[k] @ steps[k] @ inverse(maps[k-1]): no tracking on the output,
    so dust, soft ground and borders cannot bias it. Its nearest similarity counts, in the
    components and units of `interframe_motion`.
    """
    to_norm = pixel_to_normalised(width, height)
    rows = []
    for k in range(1, len(maps)):
        before, after = maps[k - 1], maps[k]
        if before is None or after is None:
            rows.append([np.nan] * 4)
            continue
        moved = after @ steps[k] @ np.linalg.inv(before)
        t = nearest_similarity(to_norm @ moved @ np.linalg.inv(to_norm), height / width)
        rows.append([t.tx * width, t.ty * width, t.angle_rad * width / 2, t.log_scale * width / 2])
    return np.array(rows, np.float64).reshape(-1, 4)


def ground_agreement(output: np.ndarray, truth: np.ndarray, covered: np.ndarray, *,
                     tolerance: float = 0.5) -> tuple[float, float, int]:
    """How much of an output frame shows real ground, judged against `truth` (the true radiance of
    the same view): (real share of all its pixels, sum of squared error over the pixels its input
    does not cover, how many those are).

    The truth is first brought to the output's tones by a robust quadratic fit on the covered
    pixels. A pixel its input covers is real ground; one it does not cover (fill) is real ground
    where, both softened (sigma 1.5 px, since a fill from earlier, coarser frames is honest but
    soft), the local mean error over 9x9 px is under `tolerance` times the truth's local contrast
    plus 2 grey levels: black or a blurred mirror of the edge fails that, ground seen before passes.
    """
    out = output.astype(np.float32)
    fill = ~covered
    if covered.sum() < 100:
        return float("nan"), float("nan"), int(fill.sum())
    toned = _toned(truth.astype(np.float32), out, covered)
    if not fill.any():
        return 1.0, 0.0, 0
    soft_out = cv2.GaussianBlur(out, (0, 0), 1.5)
    soft_truth = cv2.GaussianBlur(toned, (0, 0), 1.5)
    error = cv2.blur(np.abs(soft_out - soft_truth), (9, 9))
    contrast = np.sqrt(np.maximum(cv2.blur(soft_truth**2, (9, 9)) - cv2.blur(soft_truth, (9, 9)) ** 2, 0.0))
    real = covered | (error < tolerance * contrast + 2.0)
    sse = float(np.sum((out[fill] - toned[fill]) ** 2))
    return float(real.mean()), sse, int(fill.sum())


def _toned(truth: np.ndarray, out: np.ndarray, covered: np.ndarray) -> np.ndarray:
    """The truth in the output's grey levels: out ~ a + b t + c t^2 on the covered pixels, twice, the
    second time without the worst-fitting tenth (a lander leg, compression at edges)."""
    t, o = truth[covered].astype(np.float64), out[covered].astype(np.float64)
    use = np.ones(len(t), bool)
    coefficients = np.zeros(3)
    for _ in range(2):
        design = np.column_stack([np.ones(use.sum()), t[use], t[use] ** 2])
        coefficients = np.linalg.lstsq(design, o[use], rcond=None)[0]
        residual = np.abs(o - (coefficients[0] + coefficients[1] * t + coefficients[2] * t**2))
        use = residual <= np.quantile(residual, 0.9)
    a, b, c = (float(v) for v in coefficients)
    return np.clip(a + b * truth + c * truth**2, 0, 255).astype(np.float32)
