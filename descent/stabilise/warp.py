"""Pass 2 of stabilisation: each frame warped once, straight to the output size."""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np

from descent.frames import Frame
from descent.options import Border
from descent.stabilise.canvas import MARGIN_EVERY, cover_of
from descent.stabilise.path import CameraPath
from descent.stabilise.similarity import warp_picture

_BORDER_MODES = {Border.BLACK: cv2.BORDER_CONSTANT, Border.REPLICATE: cv2.BORDER_REPLICATE}


def warp_frame(frame: Frame, path: CameraPath, *, width: int, height: int, border: Border,
               static: np.ndarray | None = None) -> Frame:
    """Stabilise and resize in one interpolation; uncovered edges filled as `border` says.

    With Border.FILL the edge is left for the canvas (descent.stabilise.canvas), which needs to know
    where the frame lies (`Frame.cover`) and which of its parts are static (`static`: 0 there).
    """
    pixels = frame.pixels
    h, w = pixels.shape[:2]
    matrix = path.pixel_matrix(frame.index, width=w, height=h, out_width=width, out_height=height)
    if border is Border.FILL:
        # Replicated, not black: the frame's last pixels must not darken as they blend into the fill.
        out = warp_picture(pixels, matrix, (width, height), flags=cv2.INTER_CUBIC, border=cv2.BORDER_REPLICATE)
        return replace(frame, pixels=out, cover=cover_of(pixels, matrix, width=width, height=height, static=static,
                                                            with_margins=frame.index % MARGIN_EVERY == 0))
    fill = border is Border.BLUR or (border is Border.CROP and bool(path.needs_fill[frame.index]))
    if fill:
        out = _warp_blur_fill(pixels, matrix, width, height)
    else:
        out = warp_picture(pixels, matrix, (width, height), flags=cv2.INTER_CUBIC,
                           border=_BORDER_MODES.get(border, cv2.BORDER_CONSTANT))
    return replace(frame, pixels=out)


def _warp_blur_fill(pixels: np.ndarray, matrix: np.ndarray, width: int, height: int) -> np.ndarray:
    """Warp, then fill what the frame does not cover with a heavy blur of its mirrored edge."""
    warped = warp_picture(pixels, matrix, (width, height), flags=cv2.INTER_CUBIC, border=cv2.BORDER_REFLECT101)
    covered = warp_picture(np.full(pixels.shape[:2], 255, np.uint8), matrix, (width, height),
                           flags=cv2.INTER_LINEAR, border=cv2.BORDER_CONSTANT)
    small = cv2.resize(warped, (max(1, width // 16), max(1, height // 16)), interpolation=cv2.INTER_AREA)
    blurred = cv2.resize(cv2.GaussianBlur(small, (0, 0), 2.0), (width, height), interpolation=cv2.INTER_LINEAR)
    alpha = (covered.astype(np.float32) / 255.0)
    if pixels.ndim == 3:
        alpha = alpha[:, :, None]
    return (warped * alpha + blurred * (1 - alpha)).astype(pixels.dtype)
