"""The canvas: what the camera has seen so far, in the output's coordinates, painting what a frame does not cover.

A descent gives what an ordinary stabiliser lacks: every earlier frame was taken from higher up
and saw a wider area of the same ground. The canvas holds that ground. When a frame enters it,
it is carried along the output path (one warp by the output-to-output matrix, for all the frames
since the last one entered), matched in brightness to the new frame where the two overlap, and
shown wherever the frame leaves the output uncovered, blended over a few pixels so there is no
seam; then the frame's own ground is laid over it. Output that no frame has seen falls back to a
heavy blur of the frame's mirrored edge, the canvas's edge against it following the seen mask
interpolated.

Cost: the paint works on the rectangles where the fill shows, band by band, in 8-bit arithmetic;
a frame covering the whole output enters one time in MARGIN_EVERY; warps pad their picture
instead of OpenCV's replicated border (similarity.warp_edge_replicated), whose slow path for
outside pixels doubled them.

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
from descent.stabilise.similarity import warp_edge_replicated, warp_picture

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

    def output_part(self, picture: np.ndarray) -> np.ndarray:
        """The part of a canvas-sized picture that the output shows."""
        (mx, my), (w, h) = self.margin_px, self.inner
        return picture[my : my + h, mx : mx + w]


class Canvas:
    """The ground seen so far, for one output size. `compose` takes the frames in output order.

    The canvas is kept where the output was when a frame last entered it (`to_now` takes those
    output pixels to the current ones), and carried when the next one enters: through dust, one
    warp for all the frames' motion, which softens it less than one a frame. A frame that does
    not enter has its fill warped from the canvas on the box that needs it alone.
    """

    def __init__(self, width: int, height: int) -> None:
        self.geometry = CanvasGeometry(width, height)
        self.pixels: np.ndarray | None = None  # the canvas, at geometry.size
        self.seen: np.ndarray | None = None  # 255 where it holds ground, at geometry.seen_size
        self.to_now = np.eye(3)  # output pixels when the canvas was last carried -> the current output's
        self.since_entered = 0  # frames composed since one entered the canvas
        self.filled_share = 0.0  # of the last frame composed: output painted from the canvas or the backdrop
        self.unseen_share = 0.0  # ... of which no frame had seen: the backdrop

    def compose(self, picture: np.ndarray, cover: Cover, moved: np.ndarray | None, *, usable: bool) -> np.ndarray:
        """The output frame: `picture` (the warped frame, painted in place) where it covers the output,
        the canvas elsewhere.

        `moved` takes the previous frame composed to this one (output pixels); None for the first.
        `usable`: the frame's place on the ground is known (measured, not bridged or blinded by dust),
        so its ground enters the canvas (if it covers the whole output, one frame in MARGIN_EVERY
        does). A frame whose place is a guess neither sets the canvas's brightness nor enters it,
        and its fill is warped from the canvas where it was left.
        """
        if moved is not None:
            self.to_now = moved @ self.to_now
        self.since_entered += 1
        shown = self.geometry.output_part(cover.shown)
        covers = bool(shown.min() == 255)
        # A frame that covers the whole output needs no fill, and the next frame's ground is nearly all
        # its ground again: one in MARGIN_EVERY of those enters (the one warped onto the margins too).
        enters = usable and (not covers or self.pixels is None or cover.picture is not None
                             or self.since_entered >= MARGIN_EVERY)
        if covers:
            self.filled_share = self.unseen_share = 0.0
            if not enters:
                return picture
        small = cv2.resize(picture, self.geometry.inner, interpolation=cv2.INTER_AREA)  # the frame at the canvas's size
        # Taken before the paint, which works in place: the canvas must not take its own fill back.
        on_canvas, ground = self._on_canvas(small, cover) if enters else (None, None)
        if enters:
            self._carry()  # the canvas where the output is now: the paint then needs no warp of its own
        out = picture if covers else self._paint(picture, small, shown, cover)
        if on_canvas is not None and ground is not None:
            self._match_brightness(on_canvas, ground)
            self._take(on_canvas, ground)
            self.since_entered = 0
        return out

    def _on_canvas(self, small: np.ndarray, cover: Cover) -> tuple[np.ndarray, np.ndarray]:
        """The frame on the canvas, and where it shows ground there. Without `cover.picture` (most frames:
        see cover_of), the output picture at the canvas's size (`small`) is taken, the margins left out."""
        ground = cv2.threshold(cover.ground, 200, 255, cv2.THRESH_BINARY)[1]
        if cover.picture is not None:
            return cover.picture, ground
        geometry = self.geometry
        on_canvas = np.zeros((*geometry.size[::-1], *small.shape[2:]), small.dtype)
        geometry.output_part(on_canvas)[...] = small
        inside = np.zeros_like(ground)
        geometry.output_part(inside)[...] = 255
        return on_canvas, cv2.bitwise_and(ground, inside)

    def _canvas_to_now(self) -> np.ndarray:
        """Canvas pixels as kept -> canvas pixels of the current output."""
        to_canvas = self.geometry.from_output
        return to_canvas @ self.to_now @ np.linalg.inv(to_canvas)

    def _carry(self) -> None:
        """Bring the canvas to the current output: one warp for every frame's motion since the last."""
        if self.pixels is None or self.seen is None or np.allclose(self.to_now, np.eye(3), rtol=0.0, atol=1e-9):
            self.to_now = np.eye(3)
            return
        matrix = self._canvas_to_now()
        size = self.geometry.size
        # Replicated: the pixels at the canvas's rim must not darken with an empty outside.
        self.pixels = warp_edge_replicated(self.pixels, matrix, size, flags=cv2.INTER_LINEAR)
        # A coarse cell stays seen when most of it was.
        coarse = _scaling(*size, *self.geometry.seen_size)
        seen = _warp(self.seen, coarse @ matrix @ np.linalg.inv(coarse), self.geometry.seen_size, cv2.BORDER_CONSTANT)
        self.seen = cv2.threshold(seen, 127, 255, cv2.THRESH_BINARY)[1]
        self.to_now = np.eye(3)

    def _fill_at(self, rows: slice, columns: slice, backdrop: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The fill on one rectangle of the output part (canvas pixels): the canvas where it holds
        ground, carried to now, else the backdrop; and where that is the canvas (255)."""
        size = (columns.stop - columns.start, rows.stop - rows.start)
        if self.pixels is None or self.seen is None:
            return backdrop[rows, columns], np.zeros(size[::-1], np.uint8)
        mx, my = self.geometry.margin_px
        # Canvas pixels as kept -> pixels of this rectangle now.
        to_rectangle = np.array([[1.0, 0.0, -(columns.start + mx)], [0.0, 1.0, -(rows.start + my)], [0.0, 0.0, 1.0]])
        fresh = np.array_equal(self.to_now, np.eye(3))  # carried to now already: its pixels are where they show
        matrix = to_rectangle if fresh else to_rectangle @ self._canvas_to_now()
        pixels = (self.pixels[rows.start + my : rows.stop + my, columns.start + mx : columns.stop + mx] if fresh
                  else warp_edge_replicated(self.pixels, matrix, size, flags=cv2.INTER_LINEAR))
        seen_to_rectangle = matrix @ np.linalg.inv(_scaling(*self.geometry.size, *self.geometry.seen_size))
        # The seen mask's cells are 8 output pixels: cut along them, the fill's edge against the backdrop
        # is a staircase. Interpolated, the mask's half-way contour cuts the cells' corners, and its upper
        # half ramps the canvas in over half a cell, inside the seen ground alone.
        interpolated = _warp(self.seen, seen_to_rectangle, size, cv2.BORDER_CONSTANT)
        weight = cv2.addWeighted(interpolated, 2.0, interpolated, 0.0, -255.0)
        seen = cv2.threshold(interpolated, 127, 255, cv2.THRESH_BINARY)[1]
        return _blend(pixels, backdrop[rows, columns], weight), seen

    def _paint(self, picture: np.ndarray, small: np.ndarray, shown: np.ndarray, cover: Cover) -> np.ndarray:
        """Blend the frame (`small`: at the canvas's size) over the fill, in place, wherever the frame
        does not cover the output alone."""
        geometry = self.geometry
        inner_w, inner_h = geometry.inner
        backdrop = cv2.resize(cover.backdrop, geometry.inner, interpolation=cv2.INTER_LINEAR)
        # The frame's coverage, softened inwards, weighs the frame against the fill: no seam at its edge.
        steps = max(1, round(FEATHER_PX * CANVAS_SCALE / 2))
        soft = cv2.blur(cv2.erode(shown, np.ones((3, 3), np.uint8), iterations=steps),
                        (max(2, round(FEATHER_PX * CANVAS_SCALE)),) * 2)
        # The blend is made at the canvas's resolution and enlarged into the output where the fill shows
        # at all (the uncovered part and the thin band at the frame's edge); elsewhere the frame stays at
        # full resolution. The frame usually covers most of the output, so the blend is made on the box
        # around what needs it, and enlarged rectangle by rectangle. An output of odd size is not twice
        # the canvas: it is done whole.
        halves = (geometry.width, geometry.height) == (2 * inner_w, 2 * inner_h)
        rectangles = rectangles_to_fill(soft) if halves else [(slice(0, inner_h), slice(0, inner_w))]
        if not rectangles:
            self.filled_share = self.unseen_share = 0.0
            return picture
        # One canvas pixel wider each way: the enlargement at a rectangle's edge then interpolates with
        # its real neighbours, exactly as one enlargement of the whole would.
        box_rows = slice(max(0, min(r.start for r, _ in rectangles) - 1),
                         min(inner_h, max(r.stop for r, _ in rectangles) + 1))
        box_columns = slice(max(0, min(c.start for _, c in rectangles) - 1),
                            min(inner_w, max(c.stop for _, c in rectangles) + 1))
        fill, seen = self._fill_at(box_rows, box_columns, backdrop)
        weight = soft[box_rows, box_columns]
        uncovered = cv2.threshold(shown[box_rows, box_columns], 127, 255, cv2.THRESH_BINARY_INV)[1]
        self.filled_share = cv2.countNonZero(uncovered) / (inner_w * inner_h)
        self.unseen_share = cv2.countNonZero(cv2.bitwise_and(uncovered, cv2.bitwise_not(seen))) / (inner_w * inner_h)
        blended = _blend(small[box_rows, box_columns], fill, weight)
        fills = cv2.threshold(weight, 254, 255, cv2.THRESH_BINARY_INV)[1]
        if not halves:
            size = (geometry.width, geometry.height)
            enlarged = cv2.resize(blended, size, interpolation=cv2.INTER_LINEAR)
            return cv2.copyTo(enlarged, cv2.resize(fills, size, interpolation=cv2.INTER_NEAREST), picture)
        for rows, columns in rectangles:
            _enlarge_into(picture, blended, fills, rows, columns, (box_rows.start, box_columns.start))
        return picture

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


FILL_BAND_PX = 32  # canvas rows a band of the paint: smaller bands fit the frame's edge closer, at more calls


def rectangles_to_fill(soft: np.ndarray) -> list[tuple[slice, slice]]:
    """Where `soft` (the frame's weight, 255 where only the frame shows) is below 255, as rectangles.

    Band by band: in a band, the columns where the frame alone shows form one run (the frame's
    footprint is convex), so what is left is a rectangle either side of it, or the whole band.
    """
    full = soft == 255
    height, width = soft.shape
    rectangles = []
    for top in range(0, height, FILL_BAND_PX):
        rows = slice(top, min(height, top + FILL_BAND_PX))
        alone = np.flatnonzero(full[rows].all(axis=0))
        if alone.size == width:
            continue
        if alone.size == 0 or alone[-1] - alone[0] + 1 != alone.size:  # nothing, or not one run: the band
            rectangles.append((rows, slice(0, width)))
            continue
        rectangles += [(rows, slice(start, stop)) for start, stop in ((0, int(alone[0])), (int(alone[-1]) + 1, width))
                       if stop > start]
    return rectangles


def _blend(picture: np.ndarray, fill: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """picture * weight + fill * (1 - weight), weight in 0-255, in 8-bit arithmetic: within one level of
    the float blend at a fifth of its cost."""
    inverse = cv2.bitwise_not(weight)
    if picture.ndim == 3:
        weight, inverse = cv2.merge([weight] * picture.shape[2]), cv2.merge([inverse] * picture.shape[2])
    return cv2.add(cv2.multiply(picture, weight, scale=1 / 255), cv2.multiply(fill, inverse, scale=1 / 255))


def _enlarge_into(picture: np.ndarray, blended: np.ndarray, fills: np.ndarray, rows: slice, columns: slice,
                  origin: tuple[int, int]) -> None:
    """One rectangle (canvas pixels of the output part) of the blend, enlarged twice into `picture` where
    it fills. `blended` and `fills` cover a box from `origin` (row, column) at least a pixel wider."""
    top, left = origin
    wide = (slice(max(0, rows.start - 1 - top), rows.stop + 1 - top),
            slice(max(0, columns.start - 1 - left), columns.stop + 1 - left))
    part, part_fills = blended[wide], fills[wide]
    size = (2 * part.shape[1], 2 * part.shape[0])
    enlarged = cv2.resize(part, size, interpolation=cv2.INTER_LINEAR)
    where = cv2.resize(part_fills, size, interpolation=cv2.INTER_NEAREST)
    cut = (slice(2 * (rows.start - top - wide[0].start), 2 * (rows.stop - top - wide[0].start)),
           slice(2 * (columns.start - left - wide[1].start), 2 * (columns.stop - left - wide[1].start)))
    target = (slice(2 * rows.start, 2 * rows.stop), slice(2 * columns.start, 2 * columns.stop))
    picture[target] = cv2.copyTo(enlarged[cut], where[cut], picture[target])


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
    picture = (warp_edge_replicated(small, small_matrix, geometry.size, flags=cv2.INTER_LINEAR)
               if with_margins else None)
    shown = footprint(small_matrix, small_w, small_h, geometry.size)
    ground = shown
    if static is not None:
        moving = cv2.resize(np.where(static > 0, 255, 0).astype(np.uint8), (small_w, small_h),
                            interpolation=cv2.INTER_NEAREST)
        ground = _warp(moving, small_matrix, geometry.size, cv2.BORDER_CONSTANT)
    backdrop = backdrop_of(small, matrix, source_size=(w, h), width=width, height=height,
                           ground=None if static is None else moving)
    return Cover(shown=shown, ground=ground, picture=picture, backdrop=backdrop)


def backdrop_of(picture: np.ndarray, matrix: np.ndarray, *, source_size: tuple[int, int], width: int,
                height: int, ground: np.ndarray | None = None) -> np.ndarray:
    """For output that no frame has seen: the frame mirrored at its edges, warped and blurred, at a
    sixteenth of the output's width and height. `matrix` takes the frame's pixels at `source_size`;
    `picture` is the frame at that size or smaller; `ground` (255 where the picture shows ground, at
    its size) keeps static lander parts out of it.

    Why the lander parts are kept out: a leg reaching the frame's edge sits at the same place in every
    frame, so the ground beyond it, outside the frame, is never seen and shows the backdrop; mirrored,
    the leg's bright strut smeared into it (25 grey levels too bright beside the leg, on a sweep
    descent in smooth mode)."""
    tiny_out = max(1, width // 16), max(1, height // 16)
    full_w, full_h = source_size
    tiny_w, tiny_h = max(1, full_w // 16), max(1, full_h // 16)
    tiny_matrix = (_scaling(width, height, *tiny_out) @ matrix
                   @ np.linalg.inv(_scaling(full_w, full_h, tiny_w, tiny_h)))
    tiny = (cv2.resize(picture, (tiny_w, tiny_h), interpolation=cv2.INTER_AREA) if ground is None
            else _ground_only(picture, ground, (tiny_w, tiny_h)))
    return cv2.GaussianBlur(_warp(tiny, tiny_matrix, tiny_out, cv2.BORDER_REFLECT101), (0, 0), 2.0)


def _ground_only(picture: np.ndarray, ground: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """`picture` shrunk to `size`, each pixel the mean of the ground under it alone (a normalised
    average); where it covers hardly any ground, the mean of all the ground."""
    on_ground = ground > 0
    if not on_ground.any():
        return cv2.resize(picture, size, interpolation=cv2.INTER_AREA)
    weight = cv2.resize(on_ground.astype(np.float32), size, interpolation=cv2.INTER_AREA)
    spread = (lambda a: a[..., None]) if picture.ndim == 3 else (lambda a: a)
    summed = cv2.resize(picture.astype(np.float32) * spread(on_ground), size, interpolation=cv2.INTER_AREA)
    tiny = summed / spread(np.maximum(weight, 1e-3))
    tiny[weight < 0.05] = picture[on_ground].mean(axis=0)
    if picture.dtype.kind == "u":
        tiny = np.clip(np.rint(tiny), 0, np.iinfo(picture.dtype).max)
    return tiny.astype(picture.dtype)


def footprint(matrix: np.ndarray, w: int, h: int, size: tuple[int, int]) -> np.ndarray:
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
    return warp_picture(picture, matrix, size, flags=cv2.INTER_LINEAR, border=border)


def _channels(picture: np.ndarray) -> int:
    return 1 if picture.ndim == 2 else picture.shape[2]
