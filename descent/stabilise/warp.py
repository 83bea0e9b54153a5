"""Pass 2 of stabilisation: each frame warped once, straight to the output size."""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np

from descent.frames import Frame
from descent.options import Border
from descent.stabilise.canvas import MARGIN_EVERY, backdrop_of, cover_of, footprint
from descent.stabilise.path import CameraPath
from descent.stabilise.similarity import warp_edge_replicated, warp_picture

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
        out = warp_edge_replicated(pixels, matrix, (width, height), flags=cv2.INTER_CUBIC)
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
    h, w = pixels.shape[:2]
    warped = warp_edge_replicated(pixels, matrix, (width, height), flags=cv2.INTER_CUBIC)
    covered = footprint(matrix, w, h, (width, height))
    backdrop = backdrop_of(pixels, matrix, source_size=(w, h), width=width, height=height)
    out = cv2.resize(backdrop, (width, height), interpolation=cv2.INTER_LINEAR)
    cv2.copyTo(warped, cv2.threshold(covered, 254, 255, cv2.THRESH_BINARY)[1], out)
    # The frame's edge, partly covered, is blended: a line of pixels, so done on those alone.
    edge = (covered > 0) & (covered < 255)
    alpha = covered[edge].astype(np.float32) / 255.0
    if pixels.ndim == 3:
        alpha = alpha[:, None]
    out[edge] = (warped[edge] * alpha + out[edge] * (1 - alpha) + 0.5).astype(pixels.dtype)
    return out
