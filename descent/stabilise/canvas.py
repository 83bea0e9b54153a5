"""The canvas: what the camera has seen so far, in the output's coordinates, painting what a frame does not cover.

A descent gives what an ordinary stabiliser lacks: every earlier frame was taken from higher up
and saw a wider area of the same ground. The canvas holds that ground. For each output frame it
is carried along the output path (one warp by the output-to-output matrix), matched in
brightness to the new frame where the two overlap, and shown wherever the frame leaves the
output uncovered, blended over a few pixels so there is no seam; then the frame's own ground is
laid over it. Output that no frame has seen falls back to a heavy blur of the frame's mirrored
edge.

Bounded memory: one canvas at half the output's resolution, reaching a quarter of the output's
size beyond each edge (a divert later brings in ground that was outside the view), never a
mosaic that grows with the frame count. A fill shows older, coarser ground, so half resolution
costs little in sharpness and keeps the sequential part to a few milliseconds a 1024x1024 frame.
The frame's part (`cover_of`: where it lies, at the canvas's size) runs on the worker threads.
Static lander parts (the motion pass's mask), dust and bridged frames (whose place on the ground
is not known) never enter the canvas. A landing-site mosaic can reuse it.
"""

from __future__ import annotations

import cv2
import numpy as np

from descent.frames import Cover

CANVAS_SCALE = 0.5  # the canvas's resolution against the output's
SEEN_SCALE = 0.25  # where the canvas holds ground is kept coarser still: a mask, carried at a sixteenth of the cost
CANVAS_MARGIN = 0.25  # how far beyond each output edge the canvas reaches, in output widths and heights
MARGIN_EVERY = 4  # frames: how often a frame is warped onto the canvas's margins as well
FEATHER_PX = 6  # output pixels over which a frame's edge blends into the canvas
GAIN_LIMITS = (0.5, 2.0)  # the most the canvas's brightness is corrected in one frame


class CanvasGeometry:
    """Where the canvas's pixels are against the output's."""

    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.margin_px = (round(width * CANVAS_MARGIN * CANVAS_SCALE), round(height * CANVAS_MARGIN * CANVAS_SCALE))
        self.inner = (max(1, round(width * CANVAS_SCALE)), max(1, round(height * CANVAS_SCALE)))
        self.size = (self.inner[0] + 2 * self.margin_px[0], self.inner[1] + 2 * self.margin_px[1])
        self.seen_size = (max(1, round(self.size[0] * SEEN_SCALE)), max(1, round(self.size[1] * SEEN_SCALE)))
        sx, sy = self.inner[0] / width, self.inner[1] / height
        # Output pixels to canvas pixels, pixel centres kept.
        self.from_output = np.array([[sx, 0.0, 0.5 * sx - 0.5 + self.margin_px[0]],
                                     [0.0, sy, 0.5 * sy - 0.5 + self.margin_px[1]], [0.0, 0.0, 1.0]])

    def seen_at_canvas(self, seen: np.ndarray) -> np.ndarray:
        return cv2.resize(seen, self.size, interpolation=cv2.INTER_NEAREST)

    def output_part(self, picture: np.ndarray) -> np.ndarray:
        """The part of a canvas-sized picture that the output shows."""
        (mx, my), (w, h) = self.margin_px, self.inner
        return picture[my : my + h, mx : mx + w]


class Canvas:
    """The ground seen so far, for one output size. `compose` takes the frames in output order."""

    def __init__(self, width: int, height: int) -> None:
        self.geometry = CanvasGeometry(width, height)
        self.pixels: np.ndarray | None = None  # the canvas, at geometry.size
        self.seen: np.ndarray | None = None  # 255 where it holds ground
        self.filled_share = 0.0  # of the last frame composed: output painted from the canvas or the backdrop
        self.unseen_share = 0.0  # ... of which no frame had seen: the backdrop

    def compose(self, picture: np.ndarray, cover: Cover, moved: np.ndarray | None, *, usable: bool) -> np.ndarray:
        """The output frame: `picture` (the warped frame) where it covers the output, the canvas elsewhere.

        `moved` takes the previous frame composed to this one (output pixels); None for the first.
        `usable`: the frame's place on the ground is known (measured, not bridged or blinded by dust),
        so its ground may enter the canvas.
        """
        self._carry(moved)
        shown = self.geometry.output_part(cover.shown)
        out = picture if bool(shown.min() == 255) else self._paint(picture, shown, cover)
        if usable:  # a frame whose place is a guess (dust) neither sets the canvas's brightness nor enters it
            on_canvas, ground = self._on_canvas(picture, cover)
            self._match_brightness(on_canvas, ground)
            self._take(on_canvas, ground)
        return out

    def _on_canvas(self, picture: np.ndarray, cover: Cover) -> tuple[np.ndarray, np.ndarray]:
        """The frame on the canvas, and where it shows ground there. Without `cover.picture` (most frames:
        see cover_of), the output picture is taken at the canvas's size, the margins left out."""
        ground = cv2.threshold(cover.ground, 200, 255, cv2.THRESH_BINARY)[1]
        if cover.picture is not None:
            return cover.picture, ground
        geometry = self.geometry
        on_canvas = np.zeros((*geometry.size[::-1], *picture.shape[2:]), picture.dtype)
        inner = geometry.output_part(on_canvas)
        inner[...] = cv2.resize(picture, geometry.inner, interpolation=cv2.INTER_AREA)
        inside = np.zeros_like(ground)
        geometry.output_part(inside)[...] = 255
        return on_canvas, cv2.bitwise_and(ground, inside)

    def _carry(self, moved: np.ndarray | None) -> None:
        if self.pixels is None or self.seen is None or moved is None:
            return
        to_canvas = self.geometry.from_output
        matrix = (to_canvas @ moved @ np.linalg.inv(to_canvas))[:2]
        size = self.geometry.size
        # Replicated: the pixels at the canvas's rim must not darken with an empty outside.
        self.pixels = cv2.warpAffine(self.pixels, matrix, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        # A coarse cell stays seen when most of it was.
        coarse = _scaling(*size, *self.geometry.seen_size)
        seen = cv2.warpAffine(self.seen, (coarse @ to_canvas @ moved @ np.linalg.inv(coarse @ to_canvas))[:2],
                              self.geometry.seen_size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        self.seen = cv2.threshold(seen, 127, 255, cv2.THRESH_BINARY)[1]

    def _paint(self, picture: np.ndarray, shown: np.ndarray, cover: Cover) -> np.ndarray:
        """Blend the frame over the canvas (or the backdrop where the canvas is empty too)."""
        geometry = self.geometry
        backdrop = cv2.resize(cover.backdrop, geometry.inner, interpolation=cv2.INTER_LINEAR)
        if self.pixels is None or self.seen is None:
            fill_small, seen = backdrop, np.zeros(geometry.inner[::-1], np.uint8)
        else:
            seen = geometry.output_part(geometry.seen_at_canvas(self.seen))
            fill_small = cv2.copyTo(geometry.output_part(self.pixels), seen, backdrop)
        uncovered = cv2.threshold(shown, 127, 255, cv2.THRESH_BINARY_INV)[1]
        self.filled_share = cv2.countNonZero(uncovered) / uncovered.size
        self.unseen_share = cv2.countNonZero(cv2.bitwise_and(uncovered, cv2.bitwise_not(seen))) / uncovered.size
        # The frame's coverage, softened inwards, weighs the frame against the fill: no seam at its edge.
        steps = max(1, round(FEATHER_PX * CANVAS_SCALE / 2))
        soft = cv2.blur(cv2.erode(shown, np.ones((3, 3), np.uint8), iterations=steps),
                        (max(2, round(FEATHER_PX * CANVAS_SCALE)),) * 2)
        # The blend at the canvas's resolution: where the fill shows at all (the uncovered part and the thin
        # band at the frame's edge), the output is that blend enlarged; elsewhere the frame at full resolution.
        w = cv2.multiply(soft, 1 / 255, dtype=cv2.CV_32F)  # type: ignore[call-overload]  # stubs lack scalars
        small = cv2.resize(picture, geometry.inner, interpolation=cv2.INTER_AREA)
        blended = cv2.blendLinear(small, fill_small, w, 1.0 - w)
        size = (geometry.width, geometry.height)
        filled = cv2.resize(cv2.threshold(soft, 254, 255, cv2.THRESH_BINARY_INV)[1], size,
                            interpolation=cv2.INTER_NEAREST)
        return cv2.copyTo(cv2.resize(blended, size, interpolation=cv2.INTER_LINEAR), filled, picture.copy())

    def _match_brightness(self, on_canvas: np.ndarray, ground: np.ndarray) -> None:
        """Scale the canvas to the new frame's exposure where both show ground: the fill matches."""
        if self.pixels is None or self.seen is None:
            return
        # On every fourth pixel each way, the seen mask's own grid: a mean needs no more, at a sixteenth of the cost.
        step = round(1 / SEEN_SCALE)
        h, w = self.seen.shape
        both = cv2.bitwise_and(np.ascontiguousarray(ground[::step, ::step][:h, :w]), self.seen)
        if cv2.countNonZero(both) < 0.02 * both.size:
            return
        frame_sample = np.ascontiguousarray(on_canvas[::step, ::step][:h, :w])
        canvas_sample = np.ascontiguousarray(self.pixels[::step, ::step][:h, :w])
        frame_mean = float(np.mean(cv2.mean(frame_sample, mask=both)[:_channels(on_canvas)]))
        canvas_mean = float(np.mean(cv2.mean(canvas_sample, mask=both)[:_channels(self.pixels)]))
        if canvas_mean <= 1 or frame_mean <= 1:
            return
        gain = float(np.clip(frame_mean / canvas_mean, *GAIN_LIMITS))
        if abs(gain - 1) > 0.002:
            self.pixels = cv2.convertScaleAbs(self.pixels, alpha=gain)

    def _take(self, on_canvas: np.ndarray, ground: np.ndarray) -> None:
        """The frame's ground enters the canvas (inside its edge, so no interpolated rim is kept)."""
        take = cv2.erode(ground, np.ones((3, 3), np.uint8))
        if self.pixels is None or self.seen is None:
            # Outside the first frame's ground, its mean: never black at the rim, never a lander part.
            mean = cv2.mean(on_canvas, mask=take)[: _channels(on_canvas)]
            self.pixels = np.empty_like(on_canvas)
            self.pixels[...] = np.round(mean if on_canvas.ndim == 3 else mean[0]).astype(on_canvas.dtype)
            self.seen = np.zeros(self.geometry.seen_size[::-1], np.uint8)
        cv2.copyTo(on_canvas, take, self.pixels)
        # Coarse cells mostly inside the frame's ground become seen.
        most = cv2.threshold(cv2.resize(take, self.geometry.seen_size, interpolation=cv2.INTER_AREA), 127, 255,
                             cv2.THRESH_BINARY)[1]
        cv2.bitwise_or(self.seen, most, self.seen)


def cover_of(pixels: np.ndarray, matrix: np.ndarray, *, width: int, height: int, static: np.ndarray | None,
             with_margins: bool) -> Cover:
    """Where a frame (`pixels`, before its warp) lands through `matrix` (frame pixels -> output pixels),
    at the canvas's size; `static` (0 where the picture does not move with the ground, at any size)
    is left out of its ground. `with_margins`: the frame is also warped onto the whole canvas, its
    margins beyond the output included (a warp: done for one frame in MARGIN_EVERY, since the
    margins only matter for what a later divert brings in). Small pictures only, on the workers."""
    geometry = CanvasGeometry(width, height)
    h, w = pixels.shape[:2]
    small_w, small_h = max(1, round(w * CANVAS_SCALE)), max(1, round(h * CANVAS_SCALE))
    small = cv2.resize(pixels, (small_w, small_h), interpolation=cv2.INTER_AREA)
    small_matrix = geometry.from_output @ matrix @ np.linalg.inv(_scaling(w, h, small_w, small_h))
    picture = _warp(small, small_matrix, geometry.size, cv2.BORDER_REPLICATE) if with_margins else None
    shown = _footprint(small_matrix, small_w, small_h, geometry.size)
    ground = shown
    if static is not None:
        moving = cv2.resize(np.where(static > 0, 255, 0).astype(np.uint8), (small_w, small_h),
                            interpolation=cv2.INTER_NEAREST)
        ground = _warp(moving, small_matrix, geometry.size, cv2.BORDER_CONSTANT)
    # The backdrop: the frame mirrored at its edges, warped and blurred at a sixteenth of the output.
    tiny_out = max(1, width // 16), max(1, height // 16)
    tiny_w, tiny_h = max(1, w // 16), max(1, h // 16)
    tiny_matrix = _scaling(width, height, *tiny_out) @ matrix @ np.linalg.inv(_scaling(w, h, tiny_w, tiny_h))
    tiny = cv2.resize(small, (tiny_w, tiny_h), interpolation=cv2.INTER_AREA)
    backdrop = cv2.GaussianBlur(_warp(tiny, tiny_matrix, tiny_out, cv2.BORDER_REFLECT101), (0, 0), 2.0)
    return Cover(shown=shown, ground=ground, picture=picture, backdrop=backdrop)


def _footprint(matrix: np.ndarray, w: int, h: int, size: tuple[int, int]) -> np.ndarray:
    """255 inside the quadrilateral a w x h picture covers through `matrix`, drawn rather than warped (cheaper)."""
    corners = np.array([[-0.5, -0.5], [w - 0.5, -0.5], [w - 0.5, h - 0.5], [-0.5, h - 0.5]])
    moved = np.column_stack([corners, np.ones(4)]) @ matrix.T
    points = np.round(moved[:, :2] / moved[:, 2:] * 16).astype(np.int32)  # 4 bits of sub-pixel precision
    mask = np.zeros(size[::-1], np.uint8)
    cv2.fillConvexPoly(mask, points, 255, lineType=cv2.LINE_AA, shift=4)
    return mask


def _scaling(w: int, h: int, to_w: int, to_h: int) -> np.ndarray:
    """Pixels of a w x h picture to pixels of the same picture at to_w x to_h (pixel centres kept)."""
    sx, sy = to_w / w, to_h / h
    return np.array([[sx, 0.0, 0.5 * sx - 0.5], [0.0, sy, 0.5 * sy - 0.5], [0.0, 0.0, 1.0]])


def _warp(picture: np.ndarray, matrix: np.ndarray, size: tuple[int, int], border: int) -> np.ndarray:
    if np.allclose(matrix[2, :2], 0.0, atol=1e-12):
        return cv2.warpAffine(picture, matrix[:2] / matrix[2, 2], size, flags=cv2.INTER_LINEAR, borderMode=border)
    return cv2.warpPerspective(picture, matrix, size, flags=cv2.INTER_LINEAR, borderMode=border)


def _channels(picture: np.ndarray) -> int:
    return 1 if picture.ndim == 2 else picture.shape[2]
