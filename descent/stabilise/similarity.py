"""Similarity transforms in resolution-independent frame coordinates.

A point's normalised coordinates are its pixel position minus the frame centre, divided by the
frame width: the same point has the same coordinates at 512 px and at 4096 px. A similarity maps
p to exp(log_scale) * R(angle) * p + (tx, ty); as 3x3 matrices they compose by multiplication.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True, slots=True)
class Similarity:
    log_scale: float = 0.0
    angle_rad: float = 0.0
    tx: float = 0.0  # frame widths
    ty: float = 0.0

    @property
    def scale(self) -> float:
        return math.exp(self.log_scale)

    def matrix(self) -> np.ndarray:
        c = math.cos(self.angle_rad) * self.scale
        s = math.sin(self.angle_rad) * self.scale
        return np.array([[c, -s, self.tx], [s, c, self.ty], [0.0, 0.0, 1.0]])

    @classmethod
    def from_matrix(cls, m: np.ndarray) -> Similarity:
        """The similarity closest to a 2x3 or 3x3 matrix's linear part (exact for a similarity)."""
        a, b = (m[0, 0] + m[1, 1]) / 2, (m[1, 0] - m[0, 1]) / 2
        return cls(math.log(math.hypot(a, b)), math.atan2(b, a), float(m[0, 2]), float(m[1, 2]))

    def inverse(self) -> Similarity:
        return Similarity.from_matrix(np.linalg.inv(self.matrix()))

    def then(self, other: Similarity) -> Similarity:
        """Apply self, then other."""
        return Similarity.from_matrix(other.matrix() @ self.matrix())

    def apply(self, points: np.ndarray) -> np.ndarray:
        m = self.matrix()
        return points @ m[:2, :2].T + m[:2, 2]


def pixel_to_normalised(width: int, height: int) -> np.ndarray:
    """3x3 matrix from pixel coordinates to normalised coordinates of a width x height frame."""
    return np.array([[1 / width, 0, -(width - 1) / 2 / width], [0, 1 / width, -(height - 1) / 2 / width], [0, 0, 1]])


def normalised_to_pixel(width: int, height: int) -> np.ndarray:
    return np.linalg.inv(pixel_to_normalised(width, height))


def to_pixels(transform: Similarity, width: int, height: int, *, out_width: int | None = None,
              out_height: int | None = None) -> np.ndarray:
    """The 2x3 matrix taking pixels of a width x height frame through a normalised similarity to
    pixels of an output frame (by default the same size)."""
    out = normalised_to_pixel(out_width or width, out_height or height)
    return (out @ transform.matrix() @ pixel_to_normalised(width, height))[:2]


def nearest_similarity(homography: np.ndarray, aspect: float) -> Similarity:
    """The similarity that moves a grid over the frame (normalised, height / width = aspect) most
    nearly as the 3x3 `homography` does, in least squares.

    Where a motion has perspective, the camera path is made of this part; taking it the same way
    everywhere keeps the path and the keystone correction from counting the same shift twice.
    """
    xs, ys = np.meshgrid(np.linspace(-0.5, 0.5, 9), np.linspace(-aspect / 2, aspect / 2, 9))
    grid = np.column_stack([xs.ravel(), ys.ravel()])
    moved = project(homography, grid)
    x, y = grid[:, 0], grid[:, 1]
    ones, zeros = np.ones_like(x), np.zeros_like(x)
    # x' = a x - b y + tx, y' = b x + a y + ty: linear in (a, b, tx, ty).
    design = np.vstack([np.column_stack([x, -y, ones, zeros]), np.column_stack([y, x, zeros, ones])])
    a, b, tx, ty = np.linalg.lstsq(design, np.concatenate([moved[:, 0], moved[:, 1]]), rcond=None)[0]
    return Similarity(math.log(math.hypot(a, b)), math.atan2(b, a), float(tx), float(ty))


def keystone(homography: np.ndarray, aspect: float) -> float:
    """RMS distance, in frame widths, between where a homography and its nearest similarity put the
    frame corners: how much perspective a motion has."""
    corners = frame_corners(aspect)
    by_similarity = nearest_similarity(homography, aspect).apply(corners)
    return float(np.sqrt(np.mean(np.sum((project(homography, corners) - by_similarity) ** 2, axis=1))))


def frame_corners(aspect: float) -> np.ndarray:
    """The four corners of a frame (height / width = aspect) in normalised coordinates: 4 x 2."""
    return np.array([[-0.5, -aspect / 2], [0.5, -aspect / 2], [0.5, aspect / 2], [-0.5, aspect / 2]])


def project(homographies: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Points (k x 2) through a 3x3 homography, or a stack of them (n x 3 x 3): k x 2, or n x k x 2."""
    homogeneous = np.column_stack([points, np.ones(len(points))])
    moved = np.einsum("...ij,kj->...ki", homographies, homogeneous)
    return moved[..., :2] / moved[..., 2:]


def is_affine(matrix: np.ndarray) -> bool:
    """Whether a 3x3 matrix has no perspective (last row 0, 0, c)."""
    return bool(np.allclose(matrix[2, :2], 0.0, rtol=0.0, atol=1e-12))


def warp_picture(picture: np.ndarray, matrix: np.ndarray, size: tuple[int, int], *, flags: int,
                 border: int) -> np.ndarray:
    """Warp by a 3x3 matrix: affine where it has no perspective, which is cheaper."""
    if is_affine(matrix):
        return cv2.warpAffine(picture, matrix[:2] / matrix[2, 2], size, flags=flags, borderMode=border)
    return cv2.warpPerspective(picture, matrix, size, flags=flags, borderMode=border)


# Replicated rim, in output pixels: wider than bicubic's reach (2 pixels) plus a half-covered pixel, and
# than the canvas's seen cells (4 canvas pixels), whose rim may be carried half a cell out.
EDGE_PAD_PX = 8
# Below this share of the output uncovered, replicate's slow path (about 30 ns an outside pixel) costs
# less than the pad's copy (about 1 ms at 1024x1024).
REPLICATE_BELOW = 0.03


def warp_edge_replicated(picture: np.ndarray, matrix: np.ndarray, size: tuple[int, int], *,
                         flags: int) -> np.ndarray:
    """`warp_picture` whose pixels near the picture's edge see it replicated, and black further out.

    Where the picture lands, this equals BORDER_REPLICATE (no edge darkens as it blends into what
    lies around it; within a level or two, the shifted fixed-point coordinates rounding otherwise),
    at about the price of BORDER_CONSTANT. OpenCV takes a slow path for every output pixel whose
    source lies outside the picture under replicate: a lock frame drawn at 0.8 of the output cost
    twice the warp. Callers must show only where the picture lands (they blend by its footprint).
    A picture that covers nearly all the output is warped as it is: the pad's copy would cost more.
    """
    forward = np.linalg.inv(matrix) if flags & cv2.WARP_INVERSE_MAP else matrix
    if _uncovered_share(forward, picture.shape[1], picture.shape[0], size) < REPLICATE_BELOW:
        return warp_picture(picture, matrix, size, flags=flags, border=cv2.BORDER_REPLICATE)
    # A picture drawn smaller reaches further into its rim for each output pixel.
    output_per_source = math.sqrt(abs(np.linalg.det(forward[:2, :2] / forward[2, 2])))
    pad = min(64, math.ceil(EDGE_PAD_PX * max(1.0, 1.0 / max(output_per_source, 1e-6))))
    padded = cv2.copyMakeBorder(picture, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    unpad = np.array([[1.0, 0.0, -pad], [0.0, 1.0, -pad], [0.0, 0.0, 1.0]])
    # Padded pixels to the picture's own, then on; an inverse map goes the other way.
    moved = np.linalg.inv(unpad) @ matrix if flags & cv2.WARP_INVERSE_MAP else matrix @ unpad
    return warp_picture(padded, moved, size, flags=flags, border=cv2.BORDER_CONSTANT)


def _uncovered_share(matrix: np.ndarray, width: int, height: int, size: tuple[int, int]) -> float:
    """The share of the `size` output that a width x height picture through `matrix` leaves uncovered."""
    corners = np.array([[-0.5, -0.5, 1.0], [width - 0.5, -0.5, 1.0], [width - 0.5, height - 0.5, 1.0],
                        [-0.5, height - 0.5, 1.0]])
    moved = corners @ matrix.T
    if np.any(moved[:, 2] <= 0):  # part of it behind the camera: take the output as uncovered
        return 1.0
    out_w, out_h = size
    output = np.array([[-0.5, -0.5], [out_w - 0.5, -0.5], [out_w - 0.5, out_h - 0.5], [-0.5, out_h - 0.5]])
    return max(0.0, 1.0 - covered_share(moved[:, :2] / moved[:, 2:], output))


def covered_share(quad: np.ndarray, rectangle: np.ndarray) -> float:
    """The share of `rectangle` (4 x 2 corners) that the convex `quad` (4 x 2 corners) covers."""
    area, _ = cv2.intersectConvexConvex(quad.astype(np.float32), rectangle.astype(np.float32))
    return float(area) / float(cv2.contourArea(rectangle.astype(np.float32)))
