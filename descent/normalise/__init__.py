"""Normalisation: every frame looks like the same camera.

Sequence-wide decisions (Bayer pattern, white balance, the tone curve, sensor defects, vignetting)
are taken once from a sample of frames spread over the sequence: `plan_normalisation`. Each frame
is then developed by the same steps, in this order:

    calibration (dark, flat, defects, vignetting) -> demosaic -> white balance, exposure gain and
    tone curve (one lookup) -> optional local contrast

Floating-point frames are first mapped to 16-bit counts by one linear scale for the whole
sequence (`NormalisePlan.float_range`, from the sample), with NaN and infinity as 0 (black).

Motion and brightness are measured on `NormalisePlan.analysis_grey`: the calibrated frame, binned
to grey if it is a mosaic, through the tone curve without gamma, so deflicker gains are ratios of
sensor counts above black.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np

from descent.errors import FrameReadError, UsageError
from descent.frames import Frame, FrameInfo
from descent.normalise.bayer import METHODS, MosaicGuess, binned_grey, demosaic, detect_mosaic, grey_world
from descent.normalise.calibrate import (
    Defects,
    estimate_vignetting,
    find_defects,
    flat_gain,
    load_calibration_frame,
    vignetting_gain,
)
from descent.normalise.tone import (
    FLOAT_DEFAULT_RANGE,
    IDENTITY_8BIT,
    VIDEO_RANGE_TABLE,
    ToneMap,
    bits_used,
    float_range,
    float_to_counts,
    local_contrast,
    sample_histogram,
    tone_map_from_histogram,
)
from descent.parallel import ordered_map

SAMPLE_FRAMES = 24
SAMPLE_BYTES = 192 << 20  # the sample is held in memory at once: fewer frames when they are large (4K)
MIN_SAMPLE_FRAMES = 8


@dataclass(frozen=True, slots=True)
class NormaliseConfig:
    bayer: str = "auto"  # auto (the label's CFA, else detection), none, or a pattern like RGGB
    demosaic: str = "edge-aware"
    white_balance: tuple[float, float, float] | None = None  # B, G, R gains; None: grey world over the sequence
    gamma: float = 1.0
    deflicker: bool = True
    # Capture seconds: exposure changes faster than this are flicker too. None: only what flickers on
    # screen, faster than about a second of the video (descent.normalise.deflicker.flicker_period_frames).
    deflicker_period_s: float | None = None
    defects: bool = True
    dark: Path | None = None
    flat: Path | None = None
    devignette: bool = False
    contrast: bool = False


@dataclass(frozen=True, slots=True)
class NormalisePlan:
    """What every frame of the sequence gets, decided once."""

    tone: ToneMap
    pattern: str | None  # Bayer pattern being demosaiced, None for grey or colour frames
    pattern_source: str  # "label", "detected", "given" or "none"
    guess: MosaicGuess | None
    white_balance: tuple[float, float, float]  # B, G, R: for demosaiced frames, or all colour ones if given
    bits_used: int
    defects: Defects
    dark: np.ndarray | None = None
    flat_gain: np.ndarray | None = None
    vignette_gain: np.ndarray | None = None
    vignetting: tuple[float, float] | None = None  # (k2, k4) of the fitted falloff
    demosaic_method: str = "edge-aware"
    contrast: bool = False
    balance_all_colour: bool = False  # --wb given: colour frames are balanced too, not only demosaiced mosaics
    size: tuple[int, int] = (0, 0)  # the frame size the calibration maps are for
    float_range: tuple[float, float] | None = None  # float frames: the values mapped to 0 and 65535
    video_range: bool = False  # 8-bit grey frames in 16-235 (a grey video's Y plane): stretched to 0-255
    notes: list[str] = field(default_factory=list)

    @property
    def colour_out(self) -> bool:
        return self.pattern is not None

    def counts(self, raw: np.ndarray) -> np.ndarray:
        """Integer counts: float frames mapped to 16 bits by the sequence's scale (NaN, infinity: 0)."""
        if raw.dtype.kind != "f":
            return raw
        return float_to_counts(raw, self.float_range or FLOAT_DEFAULT_RANGE)

    def calibrate(self, raw: np.ndarray) -> np.ndarray:
        """Dark, flat, defects and vignetting on the sensor's counts (same dtype out; float frames become
        uint16; video-range grey stretched to 0-255)."""
        calibrated, video_range = self._calibrated(raw)
        return cv2.LUT(calibrated, VIDEO_RANGE_TABLE) if video_range else calibrated

    def _calibrated(self, raw: np.ndarray) -> tuple[np.ndarray, bool]:
        """calibrate, but a video-range frame may come back unstretched (then True): develop folds
        the stretch into its one lookup, which saves a pass over every frame of a grey video."""
        raw = self.counts(raw)
        video_range = self.video_range and raw.dtype == np.uint8 and raw.ndim == 2
        if raw.ndim != 2 or (raw.shape[1], raw.shape[0]) != self.size:
            return raw, video_range  # colour products and odd-sized frames are not the sensor frames the maps describe
        out = raw
        if self.dark is not None or self.flat_gain is not None or self.vignette_gain is not None:
            if video_range:  # the maps are in 0-255 counts: stretch first
                raw, video_range = cv2.LUT(raw, VIDEO_RANGE_TABLE), False
            counts: np.ndarray = raw.astype(np.float32)
            if self.dark is not None:
                counts = cv2.subtract(counts, self.dark)
            if self.flat_gain is not None:
                counts = cv2.multiply(counts, self.flat_gain)
            if self.vignette_gain is not None:
                counts = cv2.multiply(counts, self.vignette_gain)
            top = 255 if raw.dtype == np.uint8 else 65535
            out = np.clip(counts, 0, top).astype(raw.dtype)
        elif len(self.defects):
            out = raw.copy()  # the decoded frame may be shared (duplicate check): repair a copy
        return self.defects.repair(out), video_range  # a neighbour median: the same before or after the stretch

    def linear_grey(self, raw: np.ndarray) -> np.ndarray:
        """Calibrated counts as one grey channel: a mosaic binned 2x2, colour converted."""
        calibrated = self.calibrate(raw)
        if self.pattern is not None and calibrated.ndim == 2:
            return binned_grey(calibrated)
        return calibrated if calibrated.ndim == 2 else cv2.cvtColor(calibrated, cv2.COLOR_BGR2GRAY)

    def analysis_grey(self, raw: np.ndarray) -> np.ndarray:
        """8-bit grey, linear in counts above black: what motion and brightness are measured on."""
        grey = self.linear_grey(raw)
        if grey.dtype == np.uint8:
            return grey  # 8-bit frames keep their counts: their tone curve is the identity
        return replace(self.tone, gamma=1.0).apply(grey, (1.0,))

    def develop(self, raw: np.ndarray, *, gain: float = 1.0, colour: bool) -> np.ndarray:
        """A displayable 8-bit frame: calibrated, demosaiced, balanced, exposure-corrected, tone-mapped."""
        pixels, video_range = self._calibrated(raw)
        demosaiced = self.pattern is not None and pixels.ndim == 2
        if demosaiced:
            if video_range:  # a mosaic in a grey video: demosaiced from its 0-255 counts
                pixels, video_range = cv2.LUT(pixels, VIDEO_RANGE_TABLE), False
            pixels = demosaic(pixels, self.pattern, self.demosaic_method)  # type: ignore[arg-type]
        # Raw mosaics need balancing; frames that came in colour were balanced by whoever made them.
        balanced = demosaiced or (self.balance_all_colour and pixels.ndim == 3)
        channel_gains = self.white_balance if balanced else (1.0, 1.0, 1.0)
        tone = self.tone if pixels.dtype == np.uint16 else replace(IDENTITY_8BIT, gamma=self.tone.gamma)
        out = tone.apply(pixels, channel_gains if pixels.ndim == 3 else (1.0,), exposure=gain,
                         first=VIDEO_RANGE_TABLE if video_range else None)
        if self.contrast:
            out = local_contrast(out)
        if colour and out.ndim == 2:
            out = cv2.cvtColor(out, cv2.COLOR_GRAY2BGR)
        elif not colour and out.ndim == 3:
            out = cv2.cvtColor(out, cv2.COLOR_BGR2GRAY)
        return out


def _sample(infos: list[FrameInfo], count: int) -> list[FrameInfo]:
    picks = sorted({round(i) for i in np.linspace(0, len(infos) - 1, min(count, len(infos)))})
    return [infos[i] for i in picks]


def _choose_pattern(config: NormaliseConfig, infos: list[FrameInfo],
                    raws: list[np.ndarray]) -> tuple[str | None, str, MosaicGuess | None]:
    if config.bayer == "none":
        return None, "none", None
    if config.bayer != "auto":
        return config.bayer, "given", None
    labelled = {f.label.cfa for f in infos if f.label is not None and f.label.cfa is not None}
    if len(labelled) == 1:
        (cfa,) = labelled
        return (None if cfa == "none" else cfa), "label", None
    guess = detect_mosaic([r for r in raws if r.ndim == 2])
    return guess.pattern, ("detected" if guess.pattern else "none"), guess


def _read_sample(infos: list[FrameInfo], *, workers: int, read: Callable[[FrameInfo], np.ndarray]) -> list[np.ndarray]:
    """Frames spread over the sequence (fewer when they are large), and some float frames if any are float."""
    def safe_read(info: FrameInfo) -> np.ndarray | None:
        try:
            return read(info)
        except FrameReadError:
            return None  # reported when the frame comes up in pass 2

    largest = max(f.width * f.height * f.channels * max(1, f.bit_depth // 8) for f in infos)
    count = max(MIN_SAMPLE_FRAMES, min(SAMPLE_FRAMES, SAMPLE_BYTES // max(largest, 1)))
    picks = _sample(infos, count)
    floats = [f for f in infos if f.bit_depth == 32]
    if floats and not any(f.bit_depth == 32 for f in picks):  # a few float frames among integer ones
        picks += _sample(floats, MIN_SAMPLE_FRAMES)
    return [r for r in ordered_map(safe_read, picks, workers=workers) if r is not None]


def plan_normalisation(infos: list[FrameInfo], config: NormaliseConfig, *, workers: int,
                       read: Callable[[FrameInfo], np.ndarray]) -> NormalisePlan:
    """Read a sample of frames and decide everything that must be the same for the whole sequence."""
    if config.demosaic not in METHODS:
        raise UsageError(f"--demosaic {config.demosaic}: choose one of {', '.join(METHODS)}")
    size = max(((f.width, f.height) for f in infos), key=[(f.width, f.height) for f in infos].count)
    raws = _read_sample(infos, workers=workers, read=read)
    # A grey video's frames are its Y plane as decoded; the plan works on them stretched to 0-255. Its
    # 8-bit grey frames all are (join_videos refuses grey parts that disagree); colour parts never are.
    video_range = any(f.video is not None and f.video.video_range for f in infos)
    if video_range:
        raws = [cv2.LUT(r, VIDEO_RANGE_TABLE) if r.dtype == np.uint8 and r.ndim == 2 else r for r in raws]
    # One linear scale from float values to 16-bit counts for the whole sequence, then counts as usual.
    scale = float_range(raws)
    raws = [float_to_counts(r, scale or FLOAT_DEFAULT_RANGE) if r.dtype.kind == "f" else r for r in raws]
    pattern, source, guess = _choose_pattern(config, infos, raws)
    if pattern is not None and config.demosaic == "vng" and any(r.dtype != np.uint8 for r in raws):
        raise UsageError("--demosaic vng reads 8-bit mosaics only; use edge-aware for deeper data")
    sensor = [r for r in raws if r.ndim == 2 and (r.shape[1], r.shape[0]) == size]
    stride = 2 if pattern else 1
    dark = load_calibration_frame(config.dark, size=size, what="dark") if config.dark else None
    gain = None
    if config.flat:
        gain = flat_gain(load_calibration_frame(config.flat, size=size, what="flat"), dark, stride=stride)
    plan = NormalisePlan(tone=IDENTITY_8BIT, pattern=pattern, pattern_source=source, guess=guess,  # samples: 0-255
                         white_balance=(1.0, 1.0, 1.0), bits_used=8, size=size, dark=dark, flat_gain=gain,
                         defects=find_defects(_dark_subtracted(sensor, dark), stride=stride, workers=workers)
                         if config.defects else Defects.none(),
                         demosaic_method=config.demosaic, contrast=config.contrast, float_range=scale)
    if config.devignette and sensor:
        mean = plan.linear_grey(sensor[0]).astype(np.float32)
        for raw in sensor[1:]:  # a running sum: a stack of the sample would hold it all twice
            mean += plan.linear_grey(raw)
        mean /= len(sensor)
        k2, k4 = estimate_vignetting(cv2.resize(mean, (min(256, mean.shape[1]), min(256, mean.shape[0])),
                                                interpolation=cv2.INTER_AREA))
        plan = replace(plan, vignette_gain=vignetting_gain(size, k2, k4), vignetting=(k2, k4))
    histogram = np.zeros(65536, np.int64)
    channel_sums = np.zeros(3)
    for raw in raws:
        pixels = plan.calibrate(raw)
        histogram += sample_histogram(pixels)
        if pattern is not None and pixels.ndim == 2:
            mosaic_colour = demosaic(pixels, pattern, "bilinear")  # only for the channel means: the fast method
            channel_sums += np.asarray(cv2.mean(mosaic_colour)[:3])
    deep = any(r.dtype == np.uint16 for r in raws)
    tone = tone_map_from_histogram(histogram, gamma=config.gamma) if deep and histogram.any() else replace(
        IDENTITY_8BIT, gamma=config.gamma)
    balance = config.white_balance or (grey_world(channel_sums) if channel_sums.any() else (1.0, 1.0, 1.0))
    notes = [] if scale is None else [f"float samples mapped to 16 bits from {scale[0]:.6g} to {scale[1]:.6g} "
                                      "for the whole sequence; NaN, infinity and fill values are shown black"]
    return replace(plan, tone=tone, white_balance=balance, bits_used=bits_used(histogram),
                   balance_all_colour=config.white_balance is not None, notes=notes, video_range=video_range)


def _dark_subtracted(frames: list[np.ndarray], dark: np.ndarray | None) -> list[np.ndarray]:
    return frames if dark is None else [cv2.subtract(f.astype(np.float32), dark) for f in frames]


def develop_frame(frame: Frame, plan: NormalisePlan, *, gains: np.ndarray | None, colour: bool) -> Frame:
    """A frame developed by the plan, with its deflicker gain: 8-bit, grey or colour for the whole video."""
    gain = float(gains[frame.index]) if gains is not None else 1.0
    return replace(frame, pixels=plan.develop(frame.pixels, gain=gain, colour=colour))
