"""The canvas and the lock that holds the site anywhere: checked against known views of a known ground."""

from __future__ import annotations

import itertools
import math

import cv2
import numpy as np
import pytest
from conftest import psnr

from descent.options import Border, StabiliseMode
from descent.stabilise.canvas import MARGIN_EVERY, Canvas, cover_of, footprint, rectangles_to_fill
from descent.stabilise.motion import FrameMotion
from descent.stabilise.path import PathConfig, plan_path
from descent.stabilise.similarity import Similarity, warp_edge_replicated, warp_picture

SIZE = 256


@pytest.fixture(scope="module")
def ground() -> np.ndarray:
    """A textured ground four times the output's size."""
    rng = np.random.default_rng(4)
    texture = sum(cv2.resize(rng.normal(0, 1, (4 * SIZE // k, 4 * SIZE // k)), (4 * SIZE, 4 * SIZE),
                             interpolation=cv2.INTER_CUBIC) * k for k in (1, 4, 16))
    texture = (texture - texture.min()) / (texture.max() - texture.min())
    return (40 + 180 * texture).astype(np.uint8)


def _view(ground: np.ndarray, centre: tuple[float, float], angle_deg: float, scale: float) -> np.ndarray:
    """Frame pixels -> ground pixels, for a SIZE x SIZE frame centred on `centre`."""
    half = (SIZE - 1) / 2
    a = math.radians(angle_deg)
    rotation = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]]) * scale
    matrix = np.eye(3)
    matrix[:2, :2] = rotation
    matrix[:2, 2] = np.array(centre) - rotation @ np.array([half, half])
    return matrix


def test_the_canvas_paints_the_ground_earlier_frames_saw(ground: np.ndarray) -> None:
    """A camera that drifts and turns: what a frame leaves uncovered is painted with the right ground."""
    canvas = Canvas(SIZE, SIZE)
    output_to_ground = _view(ground, (2 * SIZE, 2 * SIZE), 0.0, 1.0)  # the output holds still over the ground
    scores, previous = [], None
    for i in range(40):
        frame_to_ground = _view(ground, (2 * SIZE + 3 * i, 2 * SIZE + 2 * i), 1.5 * i, 1.0)  # away from the start
        frame = cv2.warpAffine(ground, np.linalg.inv(frame_to_ground)[:2], (SIZE, SIZE), flags=cv2.INTER_LINEAR)
        to_output = np.linalg.inv(output_to_ground) @ frame_to_ground
        warped = cv2.warpAffine(frame, to_output[:2], (SIZE, SIZE), flags=cv2.INTER_CUBIC,
                                borderMode=cv2.BORDER_REPLICATE)
        cover = cover_of(frame, to_output, width=SIZE, height=SIZE, static=None, with_margins=i % MARGIN_EVERY == 0)
        out = canvas.compose(warped, cover, None if previous is None else np.eye(3), usable=True)
        previous = i
        truth = cv2.warpAffine(ground, np.linalg.inv(output_to_ground)[:2], (SIZE, SIZE), flags=cv2.INTER_LINEAR)
        if i >= 10:
            assert canvas.filled_share > 0.05  # the frame really leaves part of the output to the canvas
            seen = canvas.filled_share - canvas.unseen_share
            assert seen > 0.9 * canvas.filled_share, (i, canvas.filled_share, canvas.unseen_share)
            filled = cv2.resize(canvas.geometry.output_part(cover.shown), (SIZE, SIZE)) < 128
            scores.append(psnr(out[filled], truth[filled]))
    assert min(scores) > 25, scores  # the target for the filled part, measured on it alone


def test_static_parts_never_enter_the_canvas(ground: np.ndarray) -> None:
    """A lander leg fixed in a corner of every frame is shown in that frame, but never painted elsewhere."""
    canvas = Canvas(SIZE, SIZE)
    output_to_ground = _view(ground, (2 * SIZE, 2 * SIZE), 0.0, 1.0)
    static = np.full((SIZE, SIZE), 255, np.uint8)
    static[-60:, -60:] = 0  # 0: does not move with the ground
    for i in range(30):
        frame_to_ground = _view(ground, (2 * SIZE + 4 * i - 60, 2 * SIZE), 2.0 * i, 1.0)
        frame = cv2.warpAffine(ground, np.linalg.inv(frame_to_ground)[:2], (SIZE, SIZE))
        frame[-60:, -60:] = 255  # the leg: brighter than any ground
        to_output = np.linalg.inv(output_to_ground) @ frame_to_ground
        warped = cv2.warpAffine(frame, to_output[:2], (SIZE, SIZE), flags=cv2.INTER_CUBIC,
                                borderMode=cv2.BORDER_REPLICATE)
        cover = cover_of(frame, to_output, width=SIZE, height=SIZE, static=static, with_margins=i % MARGIN_EVERY == 0)
        out = canvas.compose(warped, cover, None if i == 0 else np.eye(3), usable=True)
        assert canvas.pixels is not None
        assert canvas.pixels.max() < 240, i  # the ground is 40-220: nothing of the leg was kept
        assert out.max() <= 255


def test_unseen_output_beside_a_lander_part_shows_no_lander_part(ground: np.ndarray) -> None:
    """A leg reaching the frame's corner: the output beyond that corner, which no frame has seen, is
    painted from the ground's backdrop, not from the leg mirrored and blurred."""
    static = np.full((SIZE, SIZE), 255, np.uint8)
    static[-60:, -60:] = 0
    frame = cv2.warpAffine(ground, np.linalg.inv(_view(ground, (2 * SIZE, 2 * SIZE), 0.0, 1.0))[:2], (SIZE, SIZE))
    frame[-60:, -60:] = 255  # the leg: brighter than any ground (40-220)
    to_output = np.array([[1.0, 0.0, -40.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])  # the frame 40 px to the left
    warped = cv2.warpAffine(frame, to_output[:2], (SIZE, SIZE), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    cover = cover_of(frame, to_output, width=SIZE, height=SIZE, static=static, with_margins=True)
    out = Canvas(SIZE, SIZE).compose(warped, cover, None, usable=True)
    beyond_the_leg = out[-60:, -30:]  # output the frame leaves uncovered, beside the leg's rows
    ground_mean = float(frame[static > 0].mean())
    assert abs(float(beyond_the_leg.mean()) - ground_mean) < 25, (beyond_the_leg.mean(), ground_mean)


@pytest.mark.parametrize("matrix", [
    [[0.8, 0.05, 60], [-0.05, 0.8, 30], [0, 0, 1]],  # smaller, turned: the output's corners uncovered
    [[1.3, 0.1, -40], [-0.1, 1.2, -20], [1e-4, 2e-4, 1]],  # larger, in perspective
    [[0.2, 0, 100], [0, 0.2, 50], [0, 0, 1]],  # a fifth of the size: each output pixel reaches 5 into the rim
])
def test_the_edge_replicated_warp_equals_replicate_where_the_picture_lands(matrix: list[list[float]]) -> None:
    """The cheap warp (padded, black beyond) gives BORDER_REPLICATE's pixels wherever the frame lands,
    antialiased edge included, forward and as an inverse map."""
    rng = np.random.default_rng(1)
    picture = cv2.GaussianBlur(rng.integers(0, 255, (300, 400), np.uint8), (0, 0), 1.5)
    forward = np.array(matrix, float)
    lands = footprint(forward, 400, 300, (400, 300)) > 0
    for flags, m in ((cv2.INTER_CUBIC, forward), (cv2.INTER_LINEAR, forward),
                     (cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP, np.linalg.inv(forward))):
        replicated = warp_picture(picture, m, (400, 300), flags=flags, border=cv2.BORDER_REPLICATE)
        cheap = warp_edge_replicated(picture, m, (400, 300), flags=flags)
        # Fixed-point coordinates round differently once shifted by the pad: a level or two.
        assert np.abs(replicated.astype(int) - cheap)[lands].max() <= 2


@pytest.mark.parametrize("angle_deg", [0.0, 7.0, 45.0, 120.0])
def test_the_paint_rectangles_hold_every_pixel_the_fill_shows(angle_deg: float) -> None:
    """Every canvas pixel where the frame's weight is below 255 lies in a rectangle to paint, and the
    rectangles leave out most of what the frame covers alone."""
    size = 256
    centre = np.array([150.0, 110.0])
    rotation = cv2.getRotationMatrix2D((0, 0), angle_deg, 0.7)
    matrix = np.vstack([rotation, [0, 0, 1]])
    matrix[:2, 2] = centre - rotation[:, :2] @ np.array([size / 2, size / 2])
    soft = cv2.blur(cv2.erode(footprint(matrix, size, size, (size, size)), np.ones((3, 3), np.uint8),
                              iterations=2), (3, 3))
    inside = np.zeros_like(soft, bool)
    for rows, columns in rectangles_to_fill(soft):
        inside[rows, columns] = True
    assert not np.any((soft < 255) & ~inside)
    assert np.mean(inside[soft == 255]) < 0.5


def test_bridged_frames_are_shown_but_not_kept(ground: np.ndarray) -> None:
    canvas = Canvas(SIZE, SIZE)
    frame = np.full((SIZE, SIZE), 100, np.uint8)
    shift = np.array([[1.0, 0, 30], [0, 1, 0], [0, 0, 1]])
    cover = cover_of(frame, shift, width=SIZE, height=SIZE, static=None, with_margins=True)
    canvas.compose(frame, cover, None, usable=True)
    dust = np.full((SIZE, SIZE), 200, np.uint8)
    out = canvas.compose(dust, cover_of(dust, shift, width=SIZE, height=SIZE, static=None, with_margins=True),
                         np.eye(3), usable=False)
    assert out[:, 100:].mean() > 190  # shown
    assert canvas.pixels is not None and canvas.pixels.max() <= 101  # kept: only the first frame's ground


def _motions_of(camera: list[Similarity]) -> list[FrameMotion]:
    """Pair motions whose chain is `camera` (frame -> ground, normalised)."""
    motions = [FrameMotion(file="f0.png", bridged=True)]
    for i in range(1, len(camera)):
        # camera[i] = motion.inverse().then(camera[i-1])  =>  motion = camera[i-1] ... solved in matrices
        m = np.linalg.inv(camera[i].matrix()) @ camera[i - 1].matrix()
        scale = math.hypot(m[0, 0], m[1, 0])
        motions.append(FrameMotion(f"f{i}.png", math.log(scale), math.atan2(m[1, 0], m[0, 0]), m[0, 2], m[1, 2],
                                   inliers=100, inlier_ratio=0.9))
    return motions


@pytest.mark.parametrize("offset", [0.0, 0.28, 0.45])
def test_lock_puts_the_site_at_the_centre_wherever_it_is(offset: float) -> None:
    """A slant approach (the site `offset` frame widths off-centre at first), a divert of half a frame,
    120 degrees of yaw, a 30x zoom: the site is at the output centre in every frame."""
    n = 150
    t = np.linspace(0, 1, n)
    log_scale = -np.log(30) * t  # the ground grows thirtyfold
    yaw = np.radians(120) * t
    divert = 0.5 * np.clip((t - 0.6) / 0.1, 0, 1)  # half a frame width sideways, late in the descent
    camera = []
    for k in range(n):
        # The site (ground origin) is at (offset * (1 - t) + divert * ...) in frame k: put the frame centre there.
        scale = math.exp(log_scale[k])
        away = offset * (1 - t[k]) + divert[k] * (1 - t[k])
        centre = np.array([away * scale, 0.3 * away * scale])
        camera.append(Similarity(log_scale[k], yaw[k], *centre))
    motions = _motions_of(camera)
    path = plan_path(motions, PathConfig(mode=StabiliseMode.LOCK, smoothing_frames=30, border=Border.FILL),
                     frame_aspect=1.0, out_aspect=1.0)
    errors = []
    for k in range(n):
        site_in_frame = Similarity(*path.camera[k]).inverse().apply(np.array([path.site]))
        errors.append(float(np.hypot(*path.correction(k).apply(site_in_frame)[0])))
    assert path.zoom == 1.0
    assert max(errors) * 256 < 0.05, max(errors)  # in a 256 px video: a twentieth of a pixel
    # The frames are not turned against the output: the rotation follows the smooth yaw (held at one
    # orientation, they would turn by up to 60 degrees, pushing a quarter of each frame out).
    turned = [abs(math.degrees(path.correction(k).angle_rad)) for k in range(n)]
    assert max(turned) < 0.5, max(turned)


def test_lock_says_when_frames_leave_the_view(caplog: pytest.LogCaptureFixture) -> None:
    """A site three frame widths outside the first frames: lock pushes those frames out of the
    output, and the build says so, naming smooth mode; the site 0.45 widths off-centre does not."""
    import logging

    from descent.stabilise import _warn_if_frames_leave_the_view
    from descent.stabilise.path import output_shown

    n = 40
    for start_away, warned in ((3.0, True), (0.45, False)):
        camera = [Similarity(0.0, 0.0, start_away * (1 - k / (n - 1)), 0.0) for k in range(n)]
        path = plan_path(_motions_of(camera), PathConfig(mode=StabiliseMode.LOCK, smoothing_frames=30,
                                                         border=Border.FILL), frame_aspect=1.0, out_aspect=1.0)
        shown = output_shown(path, frame_aspect=1.0, out_aspect=1.0)
        assert shown[-1] > 0.99 and bool(shown[0] < 0.01) is warned  # the last frame fills the output
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="descent"):
            _warn_if_frames_leave_the_view(path, frame_aspect=1.0, out_aspect=1.0)
        assert ("--stabilise smooth" in caplog.text) is warned


def test_the_fill_edge_against_unseen_output_is_no_staircase() -> None:
    """Where the ground the canvas holds meets output no frame has seen, the fill follows the seen
    mask interpolated: a diagonal edge moves about a pixel a row, not a whole cell (4 canvas pixels)
    every fourth row, as it did cut along the mask's cells."""
    canvas = Canvas(SIZE, SIZE)
    geometry = canvas.geometry
    canvas.pixels = np.full((*geometry.size[::-1],), 255, np.uint8)  # the ground it holds: white
    seen_w, seen_h = geometry.seen_size
    y, x = np.mgrid[0:seen_h, 0:seen_w]
    canvas.seen = np.where(x < y, 255, 0).astype(np.uint8)  # seen below the diagonal
    inner_w, inner_h = geometry.inner
    backdrop = np.zeros((inner_h, inner_w), np.uint8)  # never seen: black
    fill, _ = canvas._fill_at(slice(0, inner_h), slice(0, inner_w), backdrop)
    rows = range(inner_h // 4, 3 * inner_h // 4)
    crossings = [int(np.argmax(fill[r] < 128)) for r in rows]  # first column past the edge, row by row
    assert max(abs(b - a) for a, b in itertools.pairwise(crossings)) <= 2
    assert np.mean((fill[inner_h // 4 : 3 * inner_h // 4] > 0) & (fill[inner_h // 4 : 3 * inner_h // 4] < 255)) > 0.005
