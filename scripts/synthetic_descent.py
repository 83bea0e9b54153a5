"""Generate a synthetic descent with known ground truth.

A nadir camera falls towards a procedural cratered terrain: altitude drops by 100x or more, with a
hover and a sideways divert, the lander yaws and its attitude oscillates, exposure flickers, a few
frames are lost in transmission, and the files are named so that plain name order is not time
order. Beside the frames it writes `telemetry.csv` (altitude as a flight log would give it) and
`truth.json` (per frame: time, altitude, camera position, yaw, metres per pixel, gain, the
frame-to-ground homography, and where the landing site is in the frame's pixels).

The envelope parameters (`site_offset`, `divert_fraction`, `yaw_total_deg`, `drop_fraction`) vary
what real descents vary: where the site sits, how far and when the lander diverts, how far it
yaws, how many frames are lost. Left at their defaults, the descent is the one this script has
always made, byte for byte.

The terrain is self-similar, so it can be seen at any altitude: a stack of textures, each level
twice as fine as the one above and centred on the landing site, where a level is the upsampled
level above plus new small craters and fine relief. A frame samples the two levels that bracket
its ground resolution and blends them, like trilinear mip-mapping, so zooming never pops.

Usage: python scripts/synthetic_descent.py OUT_DIR [--frames N] [--size PX] [--bits 8|12|16] ...
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np

START_UTC = datetime(2019, 1, 3, 2, 26, 0, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class DescentSpec:
    """What to generate. Defaults give a short but complete descent."""

    frames: int = 120
    size_px: int = 256
    fps: float = 10.0
    start_altitude_m: float = 2000.0
    hover_altitude_m: float = 100.0
    end_altitude_m: float = 10.0
    hover_fraction: float = 0.15  # share of the frames spent hovering and diverting
    fov_deg: float = 60.0
    yaw_rate_deg_s: float = 2.0
    jitter_px: float = 1.5  # attitude oscillation, in pixels at the frame
    tilt_deg: float = 0.0  # attitude oscillation as a real tilt of the camera (perspective), amplitude in degrees
    flicker: float = 0.0  # standard deviation of the per-frame exposure gain (the amplitude of the other models)
    flicker_model: str = "noise"  # noise | hunting | walk | bursts: see flicker_log_gains
    hunting_period_frames: float = 7.0  # the period of the "hunting" model's swings
    bits: int = 8  # 8, 10, 12 or 16: sample depth written (10 and 12 in 16-bit files)
    drop_every: int = 0  # drop one frame in every N (0: none), as transmission losses
    duplicates: int = 0  # frames written twice under another name
    coarse_clock: bool = False  # stamp whole seconds in the names, with a frame counter
    name_style: str = "iso"  # iso | compact | epoch | counter
    image_format: str = "png"
    occluder: bool = False  # a lander leg and its shadow, fixed in a corner of every frame
    dust_frames: int = 0  # the last N frames blinded by plume dust (low contrast, blur, grain)
    bayer: str | None = None  # write Bayer mosaics of a reddish scene (RGGB ...), with raw, unbalanced channel gains
    hot_pixels: int = 0  # sensor defects: half stuck bright, half dead, at fixed places in every frame
    vignetting: float = 0.0  # lens falloff: the corners get this much darker (0.4: 60% of the centre)
    step_at: int = -1  # from this frame on, the exposure is multiplied by step_gain (a lasting change)
    step_gain: float = 1.0
    seed: int = 1
    # The envelope (None: the original flight, the site within about 0.14 frame widths of the centre
    # and a divert of about a third of the view during the hover).
    site_offset: float | None = None  # frame widths from the centre to the site in the first frame (0 to 0.45)
    site_angle_deg: float = 0.0  # its direction on screen, from +x towards +y (down)
    divert_fraction: float | None = None  # a sideways divert of this many frame widths (0 to 0.5)
    divert_at: float = 0.75  # ... starting at this fraction of the descent (frames)
    divert_angle_deg: float = 90.0  # ... the site moving this way on screen
    divert_s: float = 3.0  # ... over this many seconds
    yaw_total_deg: float | None = None  # the yaw over the whole descent (None: yaw_rate_deg_s)
    drop_fraction: float = 0.0  # frames lost at random (in addition to drop_every), never the first or last
    blank_at: int = -1  # from this frame on, blank_frames frames show no ground (a sensor or exposure dropout)
    blank_frames: int = 0
    blank_level: float = 0.02  # ... a flat field at this share of full scale, with the sensor's read noise
    blank_edges: int = 0  # ... and this many frames either side of them half blank (a dropout coming and going)


ENVELOPE_DEFAULTS = {"site_offset": None, "site_angle_deg": 0.0, "divert_fraction": None, "divert_at": 0.75,
                     "divert_angle_deg": 90.0, "divert_s": 3.0, "yaw_total_deg": None, "drop_fraction": 0.0,
                     "blank_at": -1, "blank_frames": 0, "blank_level": 0.02,
                     "blank_edges": 0}


@dataclass(frozen=True, slots=True)
class FrameTruth:
    file: str
    index: int  # frame counter of the camera, dropped frames included
    time_s: float  # Unix time of capture
    time_utc: str
    altitude_m: float
    camera_x_m: float  # camera position over the ground, landing site at (0, 0)
    camera_y_m: float
    yaw_deg: float
    m_per_px: float
    gain: float
    tilt_x_deg: float = 0.0  # camera tilt about its x axis (the view moves along y), then about y
    tilt_y_deg: float = 0.0
    duplicate_of: str | None = None
    site_px: tuple[float, float] = (0.0, 0.0)  # the site (ground origin) in this frame's pixels, x right, y down
    frame_to_ground: tuple[tuple[float, ...], ...] = ()  # 3x3, frame pixels to ground metres: the camera state


# --- terrain -------------------------------------------------------------------------------------


def _noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Smooth isotropic noise with features about size/cells pixels across, unit-ish variance.

    Coarse white noise is enlarged by repeated pyrUp (a Gaussian 2x upsample) and finally shrunk
    by less than 2x to the size. A bicubic enlargement in one step would leave creases at every
    coarse cell border, which the shading turns into a visible grid.
    """
    noise = cv2.GaussianBlur(rng.standard_normal((cells * 2, cells * 2)).astype(np.float32), (0, 0), 1.0)
    while noise.shape[0] < size:
        noise = cv2.pyrUp(noise)
    noise = cv2.resize(noise, (size, size), interpolation=cv2.INTER_AREA)
    return noise / (noise.std() + 1e-6)


def _add_craters(height: np.ndarray, rng: np.random.Generator, texel_m: float, count: int) -> None:
    """Bowl-shaped craters with raised rims, 3 to 60 texels across, power-law sizes."""
    size = height.shape[0]
    diameters = 3.0 * 20.0 ** rng.random(count)
    for diameter_px in diameters:
        radius = diameter_px / 2
        cx, cy = rng.uniform(0, size, 2)
        if math.hypot(cx - size / 2, cy - size / 2) < 1.5 * radius + size / 50:
            continue  # the landing site is on flat ground (hazard avoidance), at every level
        x0, x1 = int(max(cx - 2 * radius, 0)), int(min(cx + 2 * radius + 1, size))
        y0, y1 = int(max(cy - 2 * radius, 0)), int(min(cy + 2 * radius + 1, size))
        if x1 <= x0 or y1 <= y0:
            continue
        yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        r = np.hypot(xx - cx, yy - cy) / radius
        depth_m = 0.2 * diameter_px * texel_m
        bowl = np.where(r < 1, r**2 - 1, 0.0)
        rim = 0.25 * np.exp(-(((r - 1.0) / 0.25) ** 2))
        height[y0:y1, x0:x1] += depth_m * (bowl + rim)


def _shade(height: np.ndarray, texel_m: float, rng: np.random.Generator) -> np.ndarray:
    """Lambert shading under a low sun, times a faint albedo pattern: radiance in about 0..1."""
    gy, gx = np.gradient(height, texel_m)
    sun_elev, sun_az = math.radians(25.0), math.radians(120.0)
    sun = np.array([math.cos(sun_elev) * math.cos(sun_az), math.cos(sun_elev) * math.sin(sun_az),
                    math.sin(sun_elev)])
    shade = (-gx * sun[0] - gy * sun[1] + sun[2]) / np.sqrt(gx**2 + gy**2 + 1)
    return np.clip(shade, 0.0, None).astype(np.float32)


def _upsample_centre(level: np.ndarray) -> np.ndarray:
    """The central half of a level at twice the resolution.

    The blur removes the two-pixel alternation that a 2x resize leaves in the slope; repeated over
    levels it would grow into a grid in the shading.
    """
    size = level.shape[0]
    quarter = size // 4
    centre = level[quarter : quarter + size // 2, quarter : quarter + size // 2]
    return cv2.GaussianBlur(cv2.resize(centre, (size, size), interpolation=cv2.INTER_CUBIC), (0, 0), 1.0)


class Terrain:
    """A zoomable terrain: `levels[k]` covers `extent_m / 2**k` metres around the site."""

    def __init__(self, texture_px: int, extent_m: float, levels: int, seed: int) -> None:
        rng = np.random.default_rng(seed)
        self.texture_px = texture_px
        self.extent_m = extent_m
        size = texture_px
        height = np.zeros((size, size), np.float32)
        for octave in range(1, 7):
            cells = 2**octave
            height += _noise(rng, size, cells) * (extent_m / cells) * 0.02
        _add_craters(height, rng, extent_m / size, 150)
        albedo = 1.0 + 0.15 * _noise(rng, size, 8)
        radiance = _shade(height, extent_m / size, rng) * albedo
        self.levels: list[np.ndarray] = [radiance.astype(np.float32)]
        flat = _shade(np.zeros((2, 2), np.float32), 1.0, rng)[0, 0]
        for level in range(1, levels):
            # The next level: the central half of the picture above, upsampled, plus the shading of
            # new fine relief and small craters. Upsampling the shaded picture, never the heights,
            # matters: slopes of upsampled heights carry resampling errors that double every level.
            texel_m = extent_m / 2**level / size
            radiance = _upsample_centre(radiance)
            albedo = _upsample_centre(albedo)
            detail = np.zeros((size, size), np.float32)
            for octave in (5, 6, 7, 8):
                cells = 2**octave
                detail += _noise(rng, size, cells) * (extent_m / 2**level / cells) * 0.04
            _add_craters(detail, rng, texel_m, 160)
            radiance = np.clip(radiance + (_shade(detail, texel_m, rng) - flat) * albedo, 0.0, None)
            self.levels.append(radiance.astype(np.float32))

    def texel_m(self, level: int) -> float:
        return self.extent_m / 2**level / self.texture_px

    def render(self, size_px: int, x_m: float, y_m: float, yaw_rad: float, m_per_px: float,
               tilt_rad: tuple[float, float] = (0.0, 0.0), fov_rad: float = math.radians(60)) -> np.ndarray:
        """The view of a camera over (x_m, y_m), nadir unless tilted: float32 radiance."""
        wanted = math.log2(self.texel_m(0) / m_per_px)  # fractional level whose texel matches a pixel
        half_diag_m = m_per_px * size_px / math.sqrt(2) + math.hypot(x_m, y_m)
        # The finest level that still holds the whole footprint.
        finest = min(len(self.levels) - 1, int(math.log2(self.extent_m / 2 / half_diag_m)))
        coarse = int(min(max(math.floor(wanted), 0), finest))
        fine = min(coarse + 1, finest)
        if fine == coarse and coarse < len(self.levels) - 1 and wanted > coarse:
            raise AssertionError(f"terrain level {coarse + 1} cannot hold this view: enlarge the terrain")
        weight = float(min(max(wanted - coarse, 0.0), 1.0)) if fine != coarse else 0.0
        view = frame_to_ground(size_px, x_m, y_m, yaw_rad, m_per_px, tilt_rad, fov_rad)
        out = self._sample(coarse, size_px, view)
        if weight > 0:
            out = (1 - weight) * out + weight * self._sample(fine, size_px, view)
        return out

    def render_view(self, size_px: int, view: np.ndarray) -> np.ndarray:
        """The ground any picture of size_px x size_px shows through `view` (3x3, its pixels to ground
        metres): float32 radiance, blending the two levels that bracket its resolution at the centre.

        This renders the truth of a stabilised output frame: view = frame_to_ground of the input
        frame times the inverse of the output warp (input pixels to output pixels).
        """
        view = np.asarray(view, np.float64) / view[2, 2]
        centre = (size_px - 1) / 2
        corners = np.array([[0, 0, 1], [size_px - 1, 0, 1], [0, size_px - 1, 1], [size_px - 1, size_px - 1, 1],
                            [centre, centre, 1], [centre + 1, centre, 1], [centre, centre + 1, 1]], np.float64)
        ground = corners @ view.T
        ground = ground[:, :2] / ground[:, 2:]
        (ax, ay), (bx, by) = ground[5] - ground[4], ground[6] - ground[4]
        m_per_px = math.sqrt(abs(ax * by - ay * bx))
        wanted = math.log2(self.texel_m(0) / m_per_px)
        reach_m = float(np.abs(ground[:4]).max()) * 1.05
        finest = min(len(self.levels) - 1, max(0, int(math.log2(self.extent_m / 2 / reach_m))))
        coarse = int(min(max(math.floor(wanted), 0), finest))
        fine = min(coarse + 1, finest)
        weight = float(min(max(wanted - coarse, 0.0), 1.0)) if fine != coarse else 0.0
        out = self._sample(coarse, size_px, view)
        if weight > 0:
            out = (1 - weight) * out + weight * self._sample(fine, size_px, view)
        return out

    def _sample(self, level: int, size_px: int, view: np.ndarray) -> np.ndarray:
        texel = self.texel_m(level)
        tex_centre = (self.texture_px - 1) / 2
        ground_to_texture = np.array([[1 / texel, 0, tex_centre], [0, 1 / texel, tex_centre], [0, 0, 1]])
        return cv2.warpPerspective(self.levels[level], ground_to_texture @ view, (size_px, size_px),
                                   flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REFLECT)


def frame_to_ground(size_px: int, x_m: float, y_m: float, yaw_rad: float, m_per_px: float,
                    tilt_rad: tuple[float, float], fov_rad: float) -> np.ndarray:
    """3x3 homography from frame pixels to ground metres (landing site at the origin).

    A pixel's ray (u - centre, v - centre, focal) is tilted, then met with the ground at the
    camera's altitude (m_per_px * focal), turned by the yaw and moved to the camera's position.
    Untilted, this is a similarity: scale m_per_px about the frame centre.
    """
    centre = (size_px - 1) / 2
    focal = size_px / 2 / math.tan(fov_rad / 2)
    altitude = m_per_px * focal
    ax, ay = tilt_rad
    about_x = np.array([[1, 0, 0], [0, math.cos(ax), -math.sin(ax)], [0, math.sin(ax), math.cos(ax)]])
    about_y = np.array([[math.cos(ay), 0, math.sin(ay)], [0, 1, 0], [-math.sin(ay), 0, math.cos(ay)]])
    rays = np.array([[1, 0, -centre], [0, 1, -centre], [0, 0, focal]])
    c, s = math.cos(yaw_rad), math.sin(yaw_rad)
    place = np.array([[c, -s, x_m], [s, c, y_m], [0, 0, 1]])
    view = place @ np.diag([altitude, altitude, 1.0]) @ about_y @ about_x @ rays
    return view / view[2, 2]


# --- flight --------------------------------------------------------------------------------------


def altitude_profile(spec: DescentSpec) -> np.ndarray:
    """Altitude per camera frame: exponential approach, hover, then the final exponential descent."""
    n = spec.frames
    hover = int(n * spec.hover_fraction)
    approach = (n - hover) * 2 // 3
    final = n - hover - approach
    a = np.geomspace(spec.start_altitude_m, spec.hover_altitude_m, approach, endpoint=False)
    b = np.full(hover, spec.hover_altitude_m)
    c = np.geomspace(spec.hover_altitude_m, spec.end_altitude_m, final)
    # Round the corners so that vertical speed changes smoothly into and out of the hover.
    profile = np.log(np.concatenate([a, b, c]))
    kernel = np.hanning(max(3, n // 20) | 1)
    padded = np.pad(profile, len(kernel) // 2, mode="edge")
    return np.exp(np.convolve(padded, kernel / kernel.sum(), mode="valid"))


def flight(spec: DescentSpec) -> list[dict[str, float]]:
    """Camera state per frame, landing site at the origin."""
    rng = np.random.default_rng(spec.seed + 1)
    alt = altitude_profile(spec)
    n = spec.frames
    t = np.arange(n) / spec.fps
    half_fov = math.radians(spec.fov_deg) / 2
    m_per_px = 2 * alt * math.tan(half_fov) / spec.size_px
    # The lander approaches from one side inside a cone: offset proportional to altitude, so the
    # site stays in view; during the hover it diverts sideways by about a third of the view.
    offset = 0.25 * alt * math.tan(half_fov)
    hover = (alt < spec.hover_altitude_m * 1.05) & (np.arange(n) < n * 0.9)
    divert = np.cumsum(hover) / max(hover.sum(), 1)
    x = offset * (1 - 0.6 * divert)
    y = -0.5 * offset + 0.3 * offset * divert
    phase = rng.uniform(0, 2 * math.pi, 4)
    jitter_x = spec.jitter_px * (np.sin(2 * math.pi * 1.3 * t + phase[0]) + 0.5 * rng.standard_normal(n))
    jitter_y = spec.jitter_px * (np.sin(2 * math.pi * 0.9 * t + phase[1]) + 0.5 * rng.standard_normal(n))
    yaw_path = (math.radians(spec.yaw_rate_deg_s) * t if spec.yaw_total_deg is None
                else math.radians(spec.yaw_total_deg) * t / max(t[-1], 1e-9))
    yaw = yaw_path + math.radians(0.3) * np.sin(2 * math.pi * 0.7 * t + phase[2])
    if spec.site_offset is not None or spec.divert_fraction is not None:
        x, y = _envelope_path(spec, alt, m_per_px, yaw_path, yaw, t)
    gain = 1 + spec.flicker * rng.standard_normal(n)
    if spec.flicker_model != "noise":
        gain = np.exp(flicker_log_gains(spec.flicker_model, n, spec.flicker, np.random.default_rng(spec.seed + 3),
                                        period_frames=spec.hunting_period_frames))
    tilt = math.radians(spec.tilt_deg)
    tilt_x = tilt * (np.sin(2 * math.pi * 1.1 * t + phase[3]) + 0.3 * rng.standard_normal(n))
    tilt_y = tilt * (np.sin(2 * math.pi * 0.8 * t + phase[0]) + 0.3 * rng.standard_normal(n))
    return [
        {"altitude_m": float(alt[i]), "x_m": float(x[i] + jitter_x[i] * m_per_px[i]),
         "y_m": float(y[i] + jitter_y[i] * m_per_px[i]), "yaw_rad": float(yaw[i]),
         "m_per_px": float(m_per_px[i]), "gain": float(gain[i]), "t_s": float(t[i]),
         "tilt_x_rad": float(tilt_x[i]), "tilt_y_rad": float(tilt_y[i])}
        for i in range(n)
    ]


def _rotation(angle_rad: float) -> np.ndarray:
    return np.array([[math.cos(angle_rad), -math.sin(angle_rad)], [math.sin(angle_rad), math.cos(angle_rad)]])


def _envelope_path(spec: DescentSpec, alt: np.ndarray, m_per_px: np.ndarray, yaw_path: np.ndarray,
                   yaw: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Camera position over the ground (x, y in metres, site at the origin) for the envelope parameters.

    On screen (before attitude jitter and tilt) the site starts `site_offset` frame widths from the
    centre in the direction `site_angle_deg`, and a slant approach brings it in as the logarithm of
    the altitude falls, under the centre only at the last frame. The divert is a real one: until
    `divert_at` the lander flies towards another point, a fixed ground offset that shows as
    `divert_fraction` frame widths at the moment of the divert; over `divert_s` (or what is left of
    the descent) it moves sideways so that the site moves that far along `divert_angle_deg` on screen.
    """
    n, size = len(alt), spec.size_px
    log_alt = np.log(alt)
    progress = (log_alt - log_alt[-1]) / max(log_alt[0] - log_alt[-1], 1e-9)  # 1 at the first frame, 0 at the last
    k = min(max(round(spec.divert_at * (n - 1)), 0), n - 1)
    direction = math.radians(spec.divert_angle_deg)
    towards = (spec.divert_fraction or 0.0) * size * m_per_px[k] * np.array([math.cos(direction), math.sin(direction)])
    divert_m = _rotation(float(yaw_path[k])) @ towards  # the ground offset of the point flown to before the divert
    # The divert ends by the last frame, whatever is asked: the last frame looks down on the site.
    duration = min(spec.divert_s, float(t[-1] - t[k]))
    done = np.where(t >= t[k] + duration, 1.0, np.clip((t - t[k]) / max(duration, 1e-9), 0.0, 1.0))
    still_to_go = 0.5 + 0.5 * np.cos(math.pi * done)  # 1 until the divert, 0 after it, smoothly
    # The site in the first frame exactly where asked: the slant's part is what the divert does not explain.
    angle = math.radians(spec.site_angle_deg)
    asked = (spec.site_offset or 0.0) * size * np.array([math.cos(angle), math.sin(angle)])
    first = asked + still_to_go[0] * _rotation(-float(yaw[0])) @ divert_m / m_per_px[0]
    slant0 = _rotation(float(yaw[0] - yaw_path[0])) @ first
    x, y = np.empty(n), np.empty(n)
    for i in range(n):
        camera = -_rotation(float(yaw_path[i])) @ (slant0 * progress[i]) * m_per_px[i] + still_to_go[i] * divert_m
        x[i], y[i] = camera
    return x, y


def site_in_frames(spec: DescentSpec) -> np.ndarray:
    """n x 2: where the site is in every camera frame (dropped ones included), without rendering."""
    return np.array([site_pixel(_view(spec, state)) for state in flight(spec)])


def site_pixel(view: np.ndarray) -> tuple[float, float]:
    """The ground origin (the site) in the pixels of a frame whose frame-to-ground homography is `view`."""
    site = np.linalg.solve(view, np.array([0.0, 0.0, 1.0]))
    return float(site[0] / site[2]), float(site[1] / site[2])


def _view(spec: DescentSpec, state: dict[str, float]) -> np.ndarray:
    return frame_to_ground(spec.size_px, state["x_m"], state["y_m"], state["yaw_rad"], state["m_per_px"],
                           (state["tilt_x_rad"], state["tilt_y_rad"]), math.radians(spec.fov_deg))


FLICKER_MODELS = ("noise", "hunting", "walk", "bursts")


def flicker_log_gains(model: str, n: int, amplitude: float, rng: np.random.Generator, *,
                      period_frames: float = 7.0) -> np.ndarray:
    """log exposure gain per frame of a flicker model.

    noise    independent per frame, standard deviation `amplitude`
    hunting  auto-exposure hunting: swings up and down with a period of `period_frames` (10% jitter),
             each half swing with its own amplitude, 0.3 to 1 times `amplitude`
    walk     a random walk: steps of standard deviation `amplitude` frame to frame
    bursts   one frame in 30 on average, brighter by log(1 + amplitude)
    """
    if model == "noise":
        return amplitude * rng.standard_normal(n)
    if model == "hunting":
        frames = np.arange(n, dtype=np.float64)
        out = np.zeros(n)
        start, sign = -rng.uniform(0, period_frames / 2), rng.choice([-1.0, 1.0])
        while start < n:
            length = period_frames / 2 * rng.uniform(0.9, 1.1)
            inside = (frames >= start) & (frames < start + length)
            out[inside] = sign * amplitude * rng.uniform(0.3, 1.0) * np.sin(np.pi * (frames[inside] - start) / length)
            start, sign = start + length, -sign
        return out
    if model == "walk":
        return np.cumsum(amplitude * rng.standard_normal(n))
    if model == "bursts":
        return np.where(rng.random(n) < 1 / 30, np.log1p(amplitude), 0.0)
    raise ValueError(f"unknown flicker model {model!r}; known: {', '.join(FLICKER_MODELS)}")


# --- files ---------------------------------------------------------------------------------------


def frame_name(spec: DescentSpec, index: int, when: datetime, rng: np.random.Generator) -> str:
    """A file name that carries the capture time but does not sort by it as plain text."""
    tag = "".join(rng.choice(list("ABCDEFGHJKLMNPQRSTUVWXYZ"), 3))  # scrambles lexicographic order
    if spec.coarse_clock:
        return f"CAM_{tag}_{when:%Y%m%d%H%M%S}_{index:04d}.{spec.image_format}"
    if spec.name_style == "iso":
        return f"cam_{tag}_{when:%Y-%m-%dT%H-%M-%S}.{when.microsecond // 1000:03d}Z.{spec.image_format}"
    if spec.name_style == "compact":
        return f"cam_{tag}_{when:%Y%m%dT%H%M%S}.{when.microsecond // 1000:03d}.{spec.image_format}"
    if spec.name_style == "epoch":
        return f"cam_{tag}_{round(when.timestamp() * 1000)}.{spec.image_format}"
    if spec.name_style == "counter":
        return f"frame_{index}.{spec.image_format}"  # unpadded: frame_9 sorts after frame_10 as text
    raise ValueError(f"unknown name style {spec.name_style!r}")


def add_lander_leg(radiance: np.ndarray) -> np.ndarray:
    """A bright strut with a dark footpad and its shadow in the lower-right corner: never moves."""
    size = radiance.shape[0]
    out = radiance.copy()
    leg = np.zeros_like(radiance, np.uint8)
    pts = (np.array([[0.78, 1.0], [0.86, 1.0], [1.0, 0.80], [1.0, 0.70]]) * size).astype(np.int32)
    cv2.fillConvexPoly(leg, pts, 1)
    shadow = np.zeros_like(leg)
    cv2.fillConvexPoly(shadow, (pts - [int(0.12 * size), 0]).astype(np.int32), 1)
    out[shadow > 0] *= 0.25
    out[leg > 0] = 0.9 + 0.1 * np.linspace(0, 1, size)[None, :].repeat(size, 0)[leg > 0]
    return out


def add_dust(radiance: np.ndarray, thickness: float, rng: np.random.Generator) -> np.ndarray:
    """Plume dust: the ground fades into a bright, grainy, blurred haze as thickness goes to 1."""
    blurred = cv2.GaussianBlur(radiance, (0, 0), 1 + 6 * thickness)
    haze = 0.8 + 0.05 * rng.standard_normal(radiance.shape).astype(np.float32)
    return (1 - 0.9 * thickness) * blurred + 0.9 * thickness * haze


def to_samples(radiance: np.ndarray, bits: int) -> np.ndarray:
    """Radiance (about 0..1.3) to sensor counts with a little noise headroom."""
    top = 2**bits - 1
    counts = np.clip(radiance * 0.75 * top + 0.04 * top, 0, top)
    return np.rint(counts).astype(np.uint8 if bits == 8 else np.uint16)


def with_dropout(samples: np.ndarray, spec: DescentSpec, index: int, rng: np.random.Generator) -> np.ndarray:
    """The frame's samples, blank if it falls in the spec's dropout, half blank at its edges."""
    if not spec.blank_frames or spec.blank_at < 0:
        return samples
    if spec.blank_at <= index < spec.blank_at + spec.blank_frames:
        return blank_samples(samples.shape, spec.blank_level, spec.bits, rng)
    if spec.blank_at - spec.blank_edges <= index < spec.blank_at + spec.blank_frames + spec.blank_edges:
        half = samples.shape[1] // 2
        samples[:, :half] = blank_samples(samples[:, :half].shape, spec.blank_level, spec.bits, rng)
    return samples


def blank_samples(shape: tuple[int, ...], level: float, bits: int, rng: np.random.Generator) -> np.ndarray:
    """A frame without ground: a flat field at `level` of full scale and read noise of a few counts
    (at 8 bits), as a dropout or a frame exposed for nothing leaves it."""
    top = 2**bits - 1
    counts = level * top + 1.5 * (top / 255) * rng.standard_normal(shape)
    return np.rint(np.clip(counts, 0, top)).astype(np.uint8 if bits == 8 else np.uint16)


SCENE_COLOUR_BGR = (0.70, 1.0, 1.25)  # reddish ground: Mars, or the Moon through a warm sensor
RAW_GAINS_BGR = (0.80, 1.0, 0.60)  # raw sensor response before white balance: greens strongest
VIGNETTING_SHAPE = (1.0, 0.0)  # the falloff as k2 * r^2 + k4 * r^4 with r = 1 at the corners, before scaling


def mosaic(radiance: np.ndarray, pattern: str) -> np.ndarray:
    """One sensor value per pixel, the colour given by the pattern; the scene's colour and the raw
    channel gains make red, green and blue differ as they do in a real camera's raw frames."""
    channel = {"B": 0, "G": 1, "R": 2}
    out = np.empty_like(radiance)
    for k, (y, x) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
        c = channel[pattern[k]]
        colour = radiance[y::2, x::2] ** (1.0 + 0.15 * (1 - c)) * SCENE_COLOUR_BGR[c]  # hue varies with shading
        out[y::2, x::2] = colour * RAW_GAINS_BGR[c]
    return out


def vignetting_factor(size_px: int, strength: float) -> np.ndarray:
    """The lens falloff: 1 at the centre, 1 - strength at the corners."""
    yy, xx = np.mgrid[0:size_px, 0:size_px].astype(np.float32)
    r2 = ((xx - (size_px - 1) / 2) ** 2 + (yy - (size_px - 1) / 2) ** 2) / (2 * (size_px / 2) ** 2)
    return np.exp(math.log(1 - strength) * (VIGNETTING_SHAPE[0] * r2 + VIGNETTING_SHAPE[1] * r2**2)).astype(
        np.float32)


def defect_sites(spec: DescentSpec) -> list[tuple[int, int, bool]]:
    """(y, x, hot) of each planted defect, away from the edges; hot ones stick high, the rest are dead."""
    rng = np.random.default_rng(spec.seed + 3)
    sites = rng.choice((spec.size_px - 8) ** 2, spec.hot_pixels, replace=False)
    inner = spec.size_px - 8
    return [(int(i // inner) + 4, int(i % inner) + 4, k % 2 == 0) for k, i in enumerate(sites)]


def colour_test_image(size_px: int, seed: int = 0) -> np.ndarray:
    """A BGR uint8 picture with natural (1/f) texture down to the pixel scale and slowly varying hue,
    channels strongly correlated as in real scenes: the reference for demosaicing tests.

    The descent terrain is too smooth at the pixel scale to tell demosaicing methods apart.
    """
    rng = np.random.default_rng(seed)

    def octaves(finest_px: float) -> np.ndarray:
        out = np.zeros((size_px, size_px), np.float32)
        cells = 4
        while size_px / cells >= finest_px:
            noise = rng.standard_normal((cells, cells)).astype(np.float32)
            out += cv2.resize(noise, (size_px, size_px), interpolation=cv2.INTER_CUBIC) * (size_px / cells) ** 0.25
            cells *= 2
        return out / out.std()

    lightness, hue_a, hue_b = octaves(1.5), octaves(16), octaves(16)
    bgr = np.dstack([lightness * (1 + 0.15 * hue_a) + 0.3 * hue_a, lightness,
                     lightness * (1 + 0.15 * hue_b) + 0.3 * hue_b]) + 4
    low, high = np.percentile(bgr, [0.5, 99.5])
    return np.clip((bgr - low) / (high - low) * 235 + 10, 0, 255).astype(np.uint8)


def generate(out_dir: Path, spec: DescentSpec) -> list[FrameTruth]:
    """Write the frames, `telemetry.csv` and `truth.json` into out_dir; return the truth."""
    out_dir.mkdir(parents=True, exist_ok=True)
    states = flight(spec)
    terrain = terrain_for(spec, states)
    lost = lost_frames(spec)
    rng = np.random.default_rng(spec.seed + 2)
    vignette = vignetting_factor(spec.size_px, spec.vignetting) if spec.vignetting else None
    defects = defect_sites(spec) if spec.hot_pixels else []
    truth: list[FrameTruth] = []
    written: list[FrameTruth] = []
    for index, state in enumerate(states):
        when = START_UTC + timedelta(seconds=state["t_s"])
        dropped = spec.drop_every and index % spec.drop_every == spec.drop_every // 2
        if dropped or lost[index]:
            continue
        radiance = terrain.render(spec.size_px, state["x_m"], state["y_m"], state["yaw_rad"], state["m_per_px"],
                                  (state["tilt_x_rad"], state["tilt_y_rad"]), math.radians(spec.fov_deg))
        view = _view(spec, state)
        if spec.occluder:
            radiance = add_lander_leg(radiance)
        if index >= spec.frames - spec.dust_frames:
            radiance = add_dust(radiance, (index - (spec.frames - spec.dust_frames) + 1) / spec.dust_frames, rng)
        radiance = radiance * state["gain"] * (spec.step_gain if 0 <= spec.step_at <= index else 1.0)
        if spec.vignetting:
            radiance = radiance * vignette
        if spec.bayer:
            radiance = mosaic(radiance, spec.bayer)
        samples = with_dropout(to_samples(radiance, spec.bits), spec, index, rng)
        top = 2**spec.bits - 1
        for y, x, hot in defects:
            samples[y, x] = top if hot else 0
        name = frame_name(spec, index, when, rng)
        cv2.imwrite(str(out_dir / name), samples)
        record = FrameTruth(
            file=name, index=index, time_s=when.timestamp(), time_utc=when.isoformat(),
            altitude_m=state["altitude_m"], camera_x_m=state["x_m"], camera_y_m=state["y_m"],
            yaw_deg=math.degrees(state["yaw_rad"]), m_per_px=state["m_per_px"], gain=state["gain"],
            tilt_x_deg=math.degrees(state["tilt_x_rad"]), tilt_y_deg=math.degrees(state["tilt_y_rad"]),
            site_px=site_pixel(view), frame_to_ground=tuple(tuple(float(v) for v in row) for row in view))
        truth.append(record)
        written.append(record)
    for k in range(spec.duplicates):
        original = written[(k + 1) * len(written) // (spec.duplicates + 1)]
        copy_name = "dup_" + original.file
        (out_dir / copy_name).write_bytes((out_dir / original.file).read_bytes())
        truth.append(FrameTruth(**{**asdict(original), "file": copy_name, "duplicate_of": original.file}))
    _write_telemetry(out_dir / "telemetry.csv", states)
    summary = {"spec": _described(spec), "frames": [asdict(t) for t in truth],
               "defects": [{"y": y, "x": x, "hot": hot} for y, x, hot in defects]}
    (out_dir / "truth.json").write_text(json.dumps(summary, indent=1))
    return truth


def lost_frames(spec: DescentSpec) -> np.ndarray:
    """Which camera frames are lost at random (`drop_fraction`), never the first or the last."""
    lost = np.zeros(spec.frames, bool)
    if spec.drop_fraction > 0:
        lost = np.random.default_rng(spec.seed + 4).random(spec.frames) < spec.drop_fraction
        lost[[0, -1]] = False
    return lost


def _described(spec: DescentSpec) -> dict[str, object]:
    """The spec for truth.json, without the parameters added later while they are at their defaults:
    a descent that does not use them is described byte for byte as before."""
    described = asdict(spec)
    if spec.flicker_model == "noise":
        del described["flicker_model"], described["hunting_period_frames"]
    if all(described[key] == value for key, value in ENVELOPE_DEFAULTS.items()):
        for key in ENVELOPE_DEFAULTS:
            del described[key]
    return described


def terrain_for(spec: DescentSpec, states: list[dict[str, float]] | None = None) -> Terrain:
    """The terrain a descent of this spec is rendered from (the same every time for the same spec)."""
    states = flight(spec) if states is None else states
    largest_view_m = max(s["m_per_px"] for s in states) * spec.size_px * 1.6
    # Whenever a frame's resolution lies between two levels, the finer one must hold its whole
    # footprint (diagonal and the lander's offset), or the blend would jump between frames: level 0
    # spans three widest views at 4x the frame's pixels, which leaves about 18% to spare.
    texture_px = spec.size_px * 4
    if spec.site_offset is not None or spec.divert_fraction is not None:
        # The finer level must also reach the site wherever it is in view: a level holds at least a
        # quarter of its texture's width in frame widths either side of the centre.
        reach = max(math.hypot(s["x_m"], s["y_m"]) / (s["m_per_px"] * spec.size_px) for s in states)
        texture_px = spec.size_px * max(4, math.ceil(4 * (0.75 + reach)))
    zoom = max(s["m_per_px"] for s in states) / min(s["m_per_px"] for s in states)
    levels = math.ceil(math.log2(zoom * 1.6)) + 2
    return Terrain(texture_px, largest_view_m * 3.0, levels, spec.seed)


def _write_telemetry(path: Path, states: list[dict[str, float]]) -> None:
    """Altitude at 4 Hz, independent of the camera clock, as a flight log would give it."""
    times = np.array([s["t_s"] for s in states])
    alts = np.array([s["altitude_m"] for s in states])
    lines = ["time_utc,altitude_m"]
    # A log covers the whole flight: the last sample is at the last frame, not at the last 0.25 s tick.
    for t in [*np.arange(0.0, times[-1] - 1e-6, 0.25), times[-1]]:
        when = START_UTC + timedelta(seconds=float(t))
        lines.append(f"{when.isoformat().replace('+00:00', 'Z')},{np.interp(t, times, alts):.2f}")
    path.write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=Path)
    defaults = DescentSpec()
    parser.add_argument("--frames", type=int, default=defaults.frames)
    parser.add_argument("--size", type=int, default=defaults.size_px, help="frame width and height")
    parser.add_argument("--bits", type=int, default=defaults.bits, choices=(8, 10, 12, 16))
    parser.add_argument("--flicker", type=float, default=defaults.flicker)
    parser.add_argument("--flicker-model", default=defaults.flicker_model, choices=FLICKER_MODELS)
    parser.add_argument("--hunting-period", type=float, default=defaults.hunting_period_frames,
                        help="frames per swing of the hunting model")
    parser.add_argument("--drop-every", type=int, default=defaults.drop_every)
    parser.add_argument("--duplicates", type=int, default=defaults.duplicates)
    parser.add_argument("--coarse-clock", action="store_true")
    parser.add_argument("--name-style", default=defaults.name_style,
                        choices=("iso", "compact", "epoch", "counter"))
    parser.add_argument("--format", default=defaults.image_format, choices=("png", "tif", "jpg", "bmp"))
    parser.add_argument("--occluder", action="store_true", help="a static lander leg and shadow in a corner")
    parser.add_argument("--dust-frames", type=int, default=0, help="blind the last N frames with plume dust")
    parser.add_argument("--bayer", choices=("RGGB", "BGGR", "GRBG", "GBRG"), help="write Bayer mosaics")
    parser.add_argument("--hot-pixels", type=int, default=0, help="plant N hot and dead pixels")
    parser.add_argument("--vignetting", type=float, default=0.0, help="corner falloff, 0.4 = 40%% darker")
    parser.add_argument("--tilt", type=float, default=0.0, help="attitude oscillation as camera tilt, degrees")
    parser.add_argument("--fps", type=float, default=defaults.fps, help="capture rate, frames per second")
    parser.add_argument("--jitter", type=float, default=defaults.jitter_px, help="attitude oscillation, pixels")
    parser.add_argument("--site-offset", type=float, help="frame widths from the centre to the site at first")
    parser.add_argument("--site-angle", type=float, default=defaults.site_angle_deg, help="its direction, degrees")
    parser.add_argument("--divert", type=float, help="a sideways divert of this many frame widths")
    parser.add_argument("--divert-at", type=float, default=defaults.divert_at, help="... at this share of the descent")
    parser.add_argument("--divert-angle", type=float, default=defaults.divert_angle_deg, help="... this way, degrees")
    parser.add_argument("--yaw-total", type=float, help="yaw over the whole descent, degrees")
    parser.add_argument("--drop-fraction", type=float, default=0.0, help="share of the frames lost at random")
    parser.add_argument("--blank-at", type=int, default=defaults.blank_at, help="frames from here on show no ground")
    parser.add_argument("--blank-frames", type=int, default=defaults.blank_frames, help="... this many of them")
    parser.add_argument("--blank-level", type=float, default=defaults.blank_level,
                        help="... a flat field at this share of full scale (0.02 dark, 0.5 grey)")
    parser.add_argument("--blank-edges", type=int, default=defaults.blank_edges,
                        help="... and this many frames either side of them half blank")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    args = parser.parse_args()
    spec = DescentSpec(frames=args.frames, size_px=args.size, bits=args.bits, flicker=args.flicker,
                       flicker_model=args.flicker_model, hunting_period_frames=args.hunting_period,
                       drop_every=args.drop_every, duplicates=args.duplicates,
                       coarse_clock=args.coarse_clock, name_style=args.name_style,
                       image_format=args.format, occluder=args.occluder, dust_frames=args.dust_frames,
                       bayer=args.bayer, hot_pixels=args.hot_pixels, vignetting=args.vignetting, tilt_deg=args.tilt,
                       seed=args.seed, fps=args.fps, jitter_px=args.jitter, site_offset=args.site_offset,
                       site_angle_deg=args.site_angle, divert_fraction=args.divert, divert_at=args.divert_at,
                       divert_angle_deg=args.divert_angle, yaw_total_deg=args.yaw_total,
                       drop_fraction=args.drop_fraction, blank_at=args.blank_at, blank_frames=args.blank_frames,
                       blank_level=args.blank_level, blank_edges=args.blank_edges)
    truth = generate(args.out_dir, spec)
    print(f"wrote {len(truth)} frames to {args.out_dir}")


if __name__ == "__main__":
    main()
