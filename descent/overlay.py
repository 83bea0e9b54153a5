"""The HUD: altitude, vertical speed, time to touchdown and the clock, with an altitude profile.

Everything scales with the frame height, so it reads the same from 480p to 4K. Text is Pillow's
bundled Aileron (proportional, anti-aliased, digits of equal width so numbers do not jitter).
The panel, its labels and the profile curve never change: they are drawn once into a
premultiplied layer, and each frame costs one blend of the panel's rectangle plus the few glyphs
of its numbers, which come from a cache.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import cast

import cv2
import numpy as np

from descent.altitude import AltitudeTrack

PANEL_ALPHA = 0.6
PANEL_BGR = (22, 18, 14)
LABEL_BGR = (200, 200, 200)
VALUE_BGR = (255, 255, 255)
ACCENT_BGR = (60, 190, 255)  # amber: the profile, the marker, the landing-site reticle, "estimated"
FT_PER_M = 3.28084
MIN_GLYPH_PX = 9  # no text smaller than this: it would not be read
MAX_AREA = 0.2  # the HUD covers at most this share of the picture, when it can
# The layout ladder, richest first: the profile goes, then the labels and the clock, then all but the altitude.
LAYOUTS = ("full", "no profile", "values", "altitude")
LAYOUT_SMALLEST = {"full": 19, "no profile": 19, "values": 34, "altitude": 66}  # its smallest font, in HUD units


@dataclass(frozen=True, slots=True)
class HudConfig:
    enabled: bool = True
    position: str = "bottom-left"
    units: str = "metric"  # or imperial
    mark_site: bool = False


# --- text ------------------------------------------------------------------------------------------


class Glyphs:
    """Anti-aliased glyph masks of one font size, rendered once each and reused."""

    def __init__(self, size_px: int) -> None:
        from PIL import ImageFont

        # Pillow 10.1+ bundles Aileron and renders it with FreeType: the same font on every machine.
        self.font = cast(ImageFont.FreeTypeFont, ImageFont.load_default(size=max(MIN_GLYPH_PX, size_px)))
        ascent, descent = self.font.getmetrics()
        self.height = ascent + descent
        self._cache: dict[str, tuple[np.ndarray, int]] = {}

    def _glyph(self, char: str) -> tuple[np.ndarray, int]:
        if char not in self._cache:
            from PIL import Image, ImageDraw

            advance = max(1, math.ceil(self.font.getlength(char)))
            cell = Image.new("L", (advance + self.height // 3, self.height))
            ImageDraw.Draw(cell).text((0, 0), char, font=self.font, fill=255)
            self._cache[char] = (np.asarray(cell), advance)
        return self._cache[char]

    def width(self, text: str) -> int:
        return sum(self._glyph(c)[1] for c in text)

    def mask(self, text: str) -> np.ndarray:
        """The text's alpha, height x width (the last glyph's overhang included)."""
        out = np.zeros((self.height, self.width(text) + self.height // 3), np.uint8)
        x = 0
        for char in text:
            glyph, advance = self._glyph(char)
            region = out[:, x : x + glyph.shape[1]]
            np.maximum(region, glyph[:, : region.shape[1]], out=region)
            x += advance
        return out


# --- numbers as people read them ---------------------------------------------------------------------


def format_altitude(metres: float, units: str) -> tuple[str, str]:
    """("1.9", "km") above 1 km, ("523", "m") below; feet with thousands separators in imperial."""
    if not math.isfinite(metres):
        return "--", "m" if units == "metric" else "ft"
    if units == "imperial":
        return f"{metres * FT_PER_M:,.0f}", "ft"
    if metres >= 1000:
        return f"{metres / 1000:.1f}", "km"
    return f"{metres:.0f}" if metres >= 10 else f"{metres:.1f}", "m"


def format_speed(mps: float, units: str) -> str:
    if not math.isfinite(mps):
        return "--"
    if units == "imperial":
        return f"{mps * FT_PER_M:+.0f} ft/s"
    return f"{mps:+.1f} m/s" if abs(mps) < 100 else f"{mps:+.0f} m/s"


def format_countdown(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "--"
    sign = "T-" if seconds >= 0 else "T+"
    left = abs(seconds)
    if left >= 60:
        return f"{sign}{int(left // 60)}:{left % 60:04.1f}"
    return f"{sign}{left:.1f} s"


def format_clock(time_s: float, *, utc: bool, start_s: float) -> str:
    if utc:
        return datetime.fromtimestamp(time_s, UTC).strftime("%H:%M:%S.%f")[:10] + " UTC"
    return f"+{time_s - start_s:.1f} s"


# --- the HUD ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Slot:
    """Where a changing number goes in the panel, and its glyphs."""

    x: int
    y: int
    glyphs: Glyphs


class Hud:
    """Draws the HUD onto output frames of one size."""

    def __init__(self, config: HudConfig, *, width: int, height: int, track: AltitudeTrack | None,
                 sites: np.ndarray | None = None) -> None:
        """`track` None: no altitude, so no panel (only the landing-site reticle, if asked for).

        `config.enabled` decides whether the panel is burned into the video (`draw`); the overlay for
        editors (`draw_alone`) and the captions have it whenever there is altitude.
        """
        self.config = config
        self._frame_size = (height, width)
        self.sites = sites  # n x 2 output pixel positions of the landing site per frame (NaN: not in view)
        # One HUD unit is a pixel at 1080p; the HUD scales with the frame, its glyphs never below
        # MIN_GLYPH_PX. On a small frame it sheds parts (LAYOUTS) until it covers at most MAX_AREA of it.
        fit_u = min(height / 1080, width / 1920)
        self.panel = track is not None
        if track is None:
            track = AltitudeTrack(np.zeros(0), False, np.zeros(0), np.zeros(0), np.zeros(0, bool), None, "none")
        self.track = track
        for layout in LAYOUTS:
            u = max(fit_u, MIN_GLYPH_PX / LAYOUT_SMALLEST[layout])
            size = self._layout(layout, u)
            if size[0] * size[1] <= MAX_AREA * width * height and size[0] <= width and size[1] <= height:
                break
        self.layout, self.unit = layout, u
        panel_w, panel_h = size
        margin = round(28 * u) if layout in ("full", "no profile") else round(8 * u)
        x0 = margin if config.position.endswith("left") else width - margin - panel_w
        y0 = margin if config.position.startswith("top") else height - margin - panel_h
        self.box = (max(0, x0), max(0, y0), min(width, max(0, x0) + panel_w), min(height, max(0, y0) + panel_h))
        w, h = self.box[2] - self.box[0], self.box[3] - self.box[1]
        colour = np.zeros((h, w, 3), np.float32)
        alpha = np.zeros((h, w), np.float32)
        _fill_rounded(colour, alpha, PANEL_BGR, PANEL_ALPHA, radius=round(14 * u))
        self._place(colour, alpha, layout, u, panel_w)
        self.markers = self._draw_profile(colour, alpha)
        # Premultiplied layer: frame * (1 - alpha) + colour, as 8-bit for OpenCV's saturating arithmetic.
        self.inverse_alpha = np.rint(255 * (1 - alpha)).astype(np.uint8)
        self.premultiplied = np.rint(colour).astype(np.uint8)
        self.inverse_alpha3 = cv2.merge([self.inverse_alpha] * 3)
        self.premultiplied_grey = cv2.cvtColor(self.premultiplied, cv2.COLOR_BGR2GRAY)

    def _fonts(self, u: float) -> None:
        self.label = Glyphs(round(19 * u))
        self.big = Glyphs(round(66 * u))
        self.medium = Glyphs(round(34 * u))
        self.small = Glyphs(round(24 * u))

    def _layout(self, layout: str, u: float) -> tuple[int, int]:
        """The panel's (width, height) for a layout at scale u: the layout follows the text it must hold."""
        self._fonts(u)
        pad, gap = round(18 * u), round(24 * u)
        if layout == "altitude":
            return pad + self.big.width("88.8 km") + pad, pad + self.big.height + pad // 2
        values = self.medium.width("-888.8 m/s") + gap + self.medium.width("T-88:88.8")
        if layout == "values":
            return (pad + max(self.big.width("88.8 km"), values) + pad,
                    pad + self.big.height + self.medium.height + pad // 2)
        left_column = max(self.label.width("VERTICAL SPEED"), self.medium.width("-888.8 m/s"))
        right_column = max(self.label.width("TOUCHDOWN"), self.medium.width("T-88:88.8"))
        panel_w = max(pad + left_column + gap + right_column + pad, round(470 * u))
        profile = round(80 * u) + round(10 * u) if layout == "full" else 0
        return panel_w, (pad + self.label.height + self.big.height + self.label.height + self.medium.height
                         + round(10 * u) + profile + round(8 * u) + self.small.height + pad)

    def _place(self, colour: np.ndarray, alpha: np.ndarray, layout: str, u: float, panel_w: int) -> None:
        """The labels drawn and the slots of the numbers placed, for the chosen layout."""
        pad, gap = round(18 * u), round(24 * u)
        self.estimated_at: tuple[int, int] | None = None
        self.speed_slot = self.countdown_slot = self.clock_slot = None
        self.profile = (0, 0, 0, 0)
        if layout in ("altitude", "values"):
            self.altitude_slot = _Slot(pad, pad // 2, self.big)
            if layout == "values":
                y = pad // 2 + self.big.height
                self.speed_slot = _Slot(pad, y, self.medium)
                self.countdown_slot = _Slot(pad + self.medium.width("-888.8 m/s") + gap, y, self.medium)
            return
        y = pad
        self._text(colour, alpha, "ALTITUDE", pad, y, self.label, LABEL_BGR)
        self.estimated_at = (pad + self.label.width("ALTITUDE") + gap // 2, y)
        self.altitude_slot = _Slot(pad, y + self.label.height, self.big)
        y += self.label.height + self.big.height
        column = pad + max(self.label.width("VERTICAL SPEED"), self.medium.width("-888.8 m/s")) + gap
        self._text(colour, alpha, "VERTICAL SPEED", pad, y, self.label, LABEL_BGR)
        self._text(colour, alpha, "TOUCHDOWN", column, y, self.label, LABEL_BGR)
        self.speed_slot = _Slot(pad, y + self.label.height, self.medium)
        self.countdown_slot = _Slot(column, y + self.label.height, self.medium)
        y += self.label.height + self.medium.height + round(10 * u)
        if layout == "full":
            profile_h = round(80 * u)
            self.profile = (pad, y, panel_w - pad, y + profile_h)
            y += profile_h + round(10 * u)
        self.clock_slot = _Slot(pad, y - round(10 * u) + round(8 * u), self.small)

    # --- static layer ---

    def _text(self, colour: np.ndarray, alpha: np.ndarray, text: str, x: int, y: int, glyphs: Glyphs,
              bgr: tuple[int, int, int]) -> None:
        mask = glyphs.mask(text)
        h, w = min(mask.shape[0], colour.shape[0] - y), min(mask.shape[1], colour.shape[1] - x)
        if h <= 0 or w <= 0:
            return
        a = mask[:h, :w].astype(np.float32)[:, :, None] / 255
        colour[y : y + h, x : x + w] = colour[y : y + h, x : x + w] * (1 - a) + np.array(bgr, np.float32) * a
        alpha[y : y + h, x : x + w] = alpha[y : y + h, x : x + w] * (1 - a[:, :, 0]) + a[:, :, 0]

    def _draw_profile(self, colour: np.ndarray, alpha: np.ndarray) -> np.ndarray:
        """The whole descent's altitude against time (log scale), once; returns each frame's marker position."""
        left, top, right, bottom = self.profile
        track = self.track
        known = track.known
        markers = np.full((len(track.times_s), 2), np.nan)
        if known.sum() < 2 or right - left < 4 or bottom - top < 4:
            return markers
        t = track.times_s
        log_alt = np.log10(np.maximum(track.altitude_m, 0) + 1)
        t0, t1 = float(t[known].min()), float(t[known].max())
        a0, a1 = float(np.nanmin(log_alt)), float(np.nanmax(log_alt))
        xs = left + (t - t0) / max(t1 - t0, 1e-9) * (right - left)
        ys = bottom - (log_alt - a0) / max(a1 - a0, 1e-9) * (bottom - top)
        markers[known] = np.column_stack([xs[known], ys[known]])
        layer = np.zeros(alpha.shape, np.uint8)
        cv2.rectangle(layer, (left, top), (right, bottom), 70, max(1, round(self.unit)), cv2.LINE_AA)
        self._blend(colour, alpha, layer, LABEL_BGR)
        curve = np.zeros(alpha.shape, np.uint8)
        shift = 4  # sub-pixel precision for an anti-aliased curve
        points = np.rint(markers[known] * (1 << shift)).astype(np.int32)
        cv2.polylines(curve, [points], False, 255, max(1, round(2.5 * self.unit)), cv2.LINE_AA, shift)
        self._blend(colour, alpha, curve, ACCENT_BGR)
        return markers

    @staticmethod
    def _blend(colour: np.ndarray, alpha: np.ndarray, mask: np.ndarray, bgr: tuple[int, int, int]) -> None:
        a = mask.astype(np.float32)[:, :, None] / 255
        colour[:] = colour * (1 - a) + np.array(bgr, np.float32) * a
        alpha[:] = alpha * (1 - a[:, :, 0]) + a[:, :, 0]

    # --- per frame ---

    def caption(self, index: int) -> str:
        """The HUD's text on one line: the subtitle people see."""
        shown = self.values(index)
        estimated = " (estimated)" if bool(self.track.estimated[index]) and self.track.known[index] else ""
        return f"{shown['altitude']}{estimated}  {shown['speed']}  {shown['countdown']}  {shown['clock']}"

    def values(self, index: int) -> dict[str, str]:
        """The strings shown for captured frame `index`."""
        track = self.track
        number, unit = format_altitude(float(track.altitude_m[index]), self.config.units)
        return {
            "altitude": f"{number} {unit}",
            "speed": format_speed(float(track.vertical_speed_mps[index]), self.config.units),
            "countdown": format_countdown(track.time_to_touchdown_s(index)),
            "clock": format_clock(float(track.times_s[index]), utc=track.times_are_utc,
                                  start_s=float(track.times_s[0])),
        }

    def draw(self, pixels: np.ndarray, index: int, *, panel: bool = True) -> np.ndarray:
        """The HUD on an output frame (grey or BGR, uint8), in place; returns the frame.

        `panel` False draws only the landing-site reticle (--no-hud with --mark-site).
        """
        colour = pixels.ndim == 3
        if self.panel and panel:
            self._draw_panel(pixels, index)
        if self.config.mark_site and self.sites is not None:
            self._reticle(pixels, self.sites[index], colour)
        return pixels

    def _draw_panel(self, pixels: np.ndarray, index: int) -> None:
        x0, y0, x1, y1 = self.box
        roi = pixels[y0:y1, x0:x1]
        colour = pixels.ndim == 3
        inverse = self.inverse_alpha3 if colour else self.inverse_alpha
        roi[:] = cv2.add(cv2.multiply(roi, inverse, scale=1 / 255), self.premultiplied if colour else
                         self.premultiplied_grey)
        shown = self.values(index)
        estimated = bool(self.track.estimated[index]) and bool(self.track.known[index])
        for slot, text in ((self.altitude_slot, shown["altitude"]), (self.speed_slot, shown["speed"]),
                           (self.countdown_slot, shown["countdown"]), (self.clock_slot, shown["clock"])):
            if slot is not None:
                # Without labels an estimated altitude is told by its colour.
                unlabelled = slot is self.altitude_slot and self.estimated_at is None
                ink = ACCENT_BGR if estimated and unlabelled else VALUE_BGR
                _stamp(roi, slot.glyphs.mask(text), slot.x, slot.y, ink)
        if estimated and self.estimated_at is not None:
            _stamp(roi, self.label.mask("ESTIMATED"), *self.estimated_at, ACCENT_BGR)
        marker = self.markers[index]
        if np.all(np.isfinite(marker)):
            centre = (round(marker[0] * 16), round(marker[1] * 16))
            cv2.circle(roi, centre, round(6 * self.unit * 16), _ink(ACCENT_BGR, colour), -1, cv2.LINE_AA, 4)

    @property
    def _reticle_radius(self) -> float:
        """22 px at 1080p, with the frame; at least 6 px, so that it stays a ring with arms."""
        h, w = self._frame_size
        return max(22 * min(h / 1080, w / 1920), 6.0)

    def _reticle(self, pixels: np.ndarray, site: np.ndarray, colour: bool) -> None:
        if not np.all(np.isfinite(site)):
            return
        h, w = pixels.shape[:2]
        x, y = float(site[0]), float(site[1])
        if not (0 <= x < w and 0 <= y < h):
            return
        r = self._reticle_radius
        centre = (round(x * 16), round(y * 16))
        for ink, thickness in ((_ink((0, 0, 0), colour), 4), (_ink(ACCENT_BGR, colour), 2)):
            line = max(1, round(thickness * r / 22))
            cv2.circle(pixels, centre, round(r * 16), ink, line, cv2.LINE_AA, 4)
            for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1)):
                start = (round((x + dx * r * 0.5) * 16), round((y + dy * r * 0.5) * 16))
                end = (round((x + dx * r * 1.5) * 16), round((y + dy * r * 1.5) * 16))
                cv2.line(pixels, start, end, ink, line, cv2.LINE_AA, 4)

    def draw_alone(self, index: int, *, width: int, height: int) -> np.ndarray:
        """The HUD by itself, BGRA with straight alpha: for an editor's overlay track.

        Drawn once on black and once on white, the two differ by exactly what the HUD lets through.
        Only the panel and the reticle are worked out; the rest of the frame stays transparent.
        """
        on_black = self.draw(np.zeros((height, width, 3), np.uint8), index)
        on_white = self.draw(np.full((height, width, 3), 255, np.uint8), index)
        out = np.zeros((height, width, 4), np.uint8)
        for x0, y0, x1, y1 in self._regions(index, width, height):
            black = on_black[y0:y1, x0:x1].astype(np.int32)  # x 255 below: past int16
            alpha = 255 - (on_white[y0:y1, x0:x1].astype(np.int32) - black).max(axis=2)
            straight = black * 255 // np.maximum(alpha, 1)[:, :, None]
            out[y0:y1, x0:x1, :3] = np.clip(straight, 0, 255)
            out[y0:y1, x0:x1, 3] = alpha
        return out

    def _regions(self, index: int, width: int, height: int) -> list[tuple[int, int, int, int]]:
        """The rectangles the HUD draws in for frame `index`: the panel and the reticle."""
        regions = [self.box] if self.panel else []
        if self.config.mark_site and self.sites is not None and np.all(np.isfinite(self.sites[index])):
            reach = math.ceil(self._reticle_radius * 40 / 22)  # the reticle's arms (1.5 radii) and its outline
            x, y = (round(float(v)) for v in self.sites[index])
            box = (max(0, x - reach), max(0, y - reach), min(width, x + reach + 1), min(height, y + reach + 1))
            if box[0] < box[2] and box[1] < box[3]:
                regions.append(box)
        return regions


def _ink(bgr: tuple[int, int, int], colour: bool) -> tuple[int, ...] | int:
    return bgr if colour else round(0.114 * bgr[0] + 0.587 * bgr[1] + 0.299 * bgr[2])


def _stamp(roi: np.ndarray, mask: np.ndarray, x: int, y: int, bgr: tuple[int, int, int]) -> None:
    """Blend text of one colour into the panel."""
    h, w = min(mask.shape[0], roi.shape[0] - y), min(mask.shape[1], roi.shape[1] - x)
    if h <= 0 or w <= 0:
        return
    region = roi[y : y + h, x : x + w]
    a = mask[:h, :w]
    if region.ndim == 3:
        ink = np.empty_like(region)
        ink[:] = bgr
        a3 = cv2.merge([a, a, a])
        region[:] = cv2.add(cv2.multiply(region, 255 - a3, scale=1 / 255), cv2.multiply(ink, a3, scale=1 / 255))
    else:
        ink_grey = np.full_like(region, _ink(bgr, False))
        region[:] = cv2.add(cv2.multiply(region, 255 - a, scale=1 / 255), cv2.multiply(ink_grey, a, scale=1 / 255))


def _fill_rounded(colour: np.ndarray, alpha: np.ndarray, bgr: tuple[int, int, int], opacity: float, *,
                  radius: int) -> None:
    h, w = alpha.shape
    mask = np.zeros((h, w), np.uint8)
    r = max(1, min(radius, h // 2, w // 2))
    cv2.rectangle(mask, (r, 0), (w - 1 - r, h - 1), 255, -1)
    cv2.rectangle(mask, (0, r), (w - 1, h - 1 - r), 255, -1)
    for cx, cy in ((r, r), (w - 1 - r, r), (r, h - 1 - r), (w - 1 - r, h - 1 - r)):
        cv2.circle(mask, (cx, cy), r, 255, -1, cv2.LINE_AA)
    a = mask.astype(np.float32) / 255 * opacity
    colour[:] = np.array(bgr, np.float32) * a[:, :, None]
    alpha[:] = a


def plot_profile(times_s: np.ndarray, altitude_m: np.ndarray, *, title: str, width: int = 1200,
                 height: int = 700) -> np.ndarray:
    """A chart of an altitude series for `descent telemetry --plot`: BGR, with labelled axes."""
    image = np.full((height, width, 3), 250, np.uint8)
    label, heading = Glyphs(18), Glyphs(24)
    left, top, right, bottom = 110, 70, width - 40, height - 80
    cv2.rectangle(image, (left, top), (right, bottom), (90, 90, 90), 1, cv2.LINE_AA)
    t = times_s - times_s[0]
    top_alt = float(np.nanmax(altitude_m)) or 1.0
    scale_km = top_alt >= 2000
    factor, unit = (1000.0, "km") if scale_km else (1.0, "m")
    step = _nice_step(top_alt / factor / 5)
    for k in range(int(top_alt / factor / step) + 1):
        y = bottom - (k * step * factor) / top_alt * (bottom - top)
        cv2.line(image, (left, round(y)), (right, round(y)), (225, 225, 225), 1)
        _stamp(image, label.mask(f"{k * step:g}"), left - 12 - label.width(f"{k * step:g}"), round(y) - 11,
               (60, 60, 60))
    span = float(t[-1]) or 1.0
    t_step = _nice_step(span / 8)
    for k in range(int(span / t_step) + 1):
        x = left + k * t_step / span * (right - left)
        cv2.line(image, (round(x), top), (round(x), bottom), (225, 225, 225), 1)
        _stamp(image, label.mask(f"{k * t_step:g}"), round(x) - label.width(f"{k * t_step:g}") // 2, bottom + 8,
               (60, 60, 60))
    points = np.column_stack([left + t / span * (right - left), bottom - altitude_m / top_alt * (bottom - top)])
    finite = np.all(np.isfinite(points), axis=1)
    cv2.polylines(image, [np.rint(points[finite] * 16).astype(np.int32)], False, (40, 110, 220), 2, cv2.LINE_AA, 4)
    _stamp(image, heading.mask(title), (width - heading.width(title)) // 2, 14, (30, 30, 30))  # clear of the axis label
    _stamp(image, label.mask(f"altitude ({unit})"), 12, top - 30, (60, 60, 60))
    axis = "seconds from the first sample"
    _stamp(image, label.mask(axis), (left + right - label.width(axis)) // 2, bottom + 40, (60, 60, 60))
    return image


def _nice_step(raw: float) -> float:
    """1, 2 or 5 times a power of ten, at least `raw`."""
    if raw <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
