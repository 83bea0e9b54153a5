"""Normalisation stage by stage: bit depth, size, Bayer, defects, calibration, deflicker, contrast."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import decode_video, probe_video, psnr, run_cli
from synthetic_descent import Terrain, colour_test_image

from descent.encode import find_ffmpeg
from descent.errors import UsageError
from descent.frames import FrameInfo
from descent.normalise import NormaliseConfig, plan_normalisation
from descent.normalise.bayer import PATTERNS, demosaic, detect_mosaic, grey_world, parse_white_balance
from descent.normalise.calibrate import estimate_vignetting, find_defects, flat_gain, vignetting_gain
from descent.normalise.deflicker import brightness_log_ratio, deflicker_gains, high_frequency_rms
from descent.normalise.size import SizeConfig, fit, output_size, parse_size
from descent.normalise.tone import ToneMap, bits_used, local_contrast, sample_histogram, tone_map_from_histogram


def test_tone_map_uses_the_range_the_sensor_really_uses() -> None:
    # A 12-bit camera in 16-bit files: values 160..3900; the mapping must stretch that, not 0..65535.
    rng = np.random.default_rng(0)
    frame = rng.integers(160, 3901, (256, 256)).astype(np.uint16)
    tone = tone_map_from_histogram(sample_histogram(frame))
    assert 160 <= tone.black < 170 and 3890 < tone.white <= 3900
    lut = tone.lut()
    assert lut[tone.black] == 0 and lut[tone.white] == 255
    assert np.all(np.diff(lut.astype(int)) >= 0)


def test_one_mapping_keeps_frame_brightness_relative() -> None:
    # Two frames, the second 20% darker: a per-frame stretch would erase that, one mapping keeps it.
    base = np.linspace(1000, 3000, 4096).reshape(64, 64).astype(np.uint16)
    dark = (base * 0.8).astype(np.uint16)
    tone = tone_map_from_histogram(sample_histogram(base) + sample_histogram(dark))
    lut = tone.lut()
    assert lut[dark].mean() < lut[base].mean() - 20


def test_output_size_is_even() -> None:
    assert output_size((1023, 767), SizeConfig()) == (1022, 766)
    assert output_size((1024, 1024), SizeConfig(scale=0.5)) == (512, 512)
    assert output_size((1024, 1024), SizeConfig(size=(1280, 720))) == (1280, 720)
    with pytest.raises(UsageError):
        output_size((10, 10), SizeConfig(scale=0))


def test_parse_size() -> None:
    assert parse_size("1920x1080") == (1920, 1080)
    with pytest.raises(UsageError, match="WIDTHxHEIGHT"):
        parse_size("big")


def test_fit_keeps_aspect_and_centres() -> None:
    frame = np.full((100, 200), 200, np.uint8)
    out = fit(frame, 100, 100)  # 2:1 into a square: 100x50 band in the middle
    assert out.shape == (100, 100)
    assert out[:24].max() == 0 and out[76:].max() == 0
    assert out[26:74].min() == 200
    assert fit(frame, 200, 100) is frame


# --- Bayer -------------------------------------------------------------------------------------------


def _mosaic_of(bgr: np.ndarray, pattern: str) -> np.ndarray:
    channel = {"B": 0, "G": 1, "R": 2}
    out = np.empty(bgr.shape[:2], bgr.dtype)
    for k, (y, x) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
        out[y::2, x::2] = bgr[y::2, x::2, channel[pattern[k]]]
    return out


@pytest.mark.parametrize("pattern", PATTERNS)
def test_edge_aware_demosaic_recovers_the_colour_image(pattern: str) -> None:
    # 512 px: this texture is scaled to the picture, so a smaller one is harder than real frames.
    original = colour_test_image(512, seed=1)
    restored = demosaic(_mosaic_of(original, pattern), pattern, "edge-aware")
    inner = (slice(4, -4), slice(4, -4))  # the outermost pixels have neighbours on one side only
    assert psnr(restored[inner], original[inner]) >= 35


def test_demosaic_keeps_16_bits() -> None:
    original = colour_test_image(64, seed=2).astype(np.uint16) * 64
    restored = demosaic(_mosaic_of(original, "RGGB"), "RGGB", "edge-aware")
    assert restored.dtype == np.uint16 and restored.max() > 255


@pytest.mark.parametrize("pattern", PATTERNS)
def test_auto_finds_the_pattern_of_mosaiced_descent_frames(make_descent, pattern: str) -> None:
    folder, _ = make_descent(bayer=pattern, bits=12, frames=24)
    frames = [cv2.imread(str(p), cv2.IMREAD_UNCHANGED) for p in sorted(folder.glob("*.png"))[::3]]
    assert detect_mosaic(frames).pattern == pattern


def test_auto_says_none_on_grey_frames(make_descent) -> None:
    # A low sun makes the texture strongly directional; that must not look like a mosaic.
    for changes in ({}, {"bits": 12, "flicker": 0.1}, {"occluder": True, "seed": 4}):
        folder, _ = make_descent(**changes)
        frames = [cv2.imread(str(p), cv2.IMREAD_UNCHANGED) for p in sorted(folder.glob("*.png"))[::3]]
        guess = detect_mosaic(frames)
        assert guess.pattern is None, guess


def test_grey_world_over_the_sequence() -> None:
    assert grey_world(np.array([50.0, 100.0, 80.0])) == (2.0, 1.0, 1.25)


def test_white_balance_option_is_rgb() -> None:
    assert parse_white_balance("1.9,1,1.4") == (1.4, 1.0, 1.9)  # returned in OpenCV's B, G, R order
    with pytest.raises(UsageError, match="R,G,B"):
        parse_white_balance("2,1")


# --- defects, dark, flat, vignetting -------------------------------------------------------------------


@pytest.mark.parametrize("bayer", [None, "RGGB"])
def test_planted_hot_and_dead_pixels_are_all_found(make_descent, bayer: str | None) -> None:
    folder, truth = make_descent(hot_pixels=20, bits=12, frames=48, bayer=bayer)
    frames = [cv2.imread(str(p), cv2.IMREAD_UNCHANGED) for p in sorted(folder.glob("*.png"))[::2]]
    found = find_defects(frames, stride=2 if bayer else 1)
    planted = {(d["y"], d["x"]) for d in truth["defects"]}
    assert set(zip(found.ys.tolist(), found.xs.tolist(), strict=True)) == planted  # all, and nothing else
    repaired = found.repair(frames[5].copy())
    for y, x in planted:
        stride = 2 if bayer else 1
        neighbours = frames[5][y - stride : y + stride + 1 : stride, x - stride : x + stride + 1 : stride].astype(int)
        neighbours[1, 1] = neighbours[0, 0]  # the defect itself is no reference
        assert neighbours.min() <= int(repaired[y, x]) <= neighbours.max()  # back among its own colour


def test_no_defects_on_clean_frames(make_descent) -> None:
    for changes in ({}, {"bits": 12, "flicker": 0.15}, {"occluder": True, "seed": 5},
                    {"occluder": True, "flicker": 0.15, "seed": 6}, {"dust_frames": 12}):
        folder, _ = make_descent(**changes)
        frames = [cv2.imread(str(p), cv2.IMREAD_UNCHANGED) for p in sorted(folder.glob("*.png"))[::2]]
        assert len(find_defects(frames, stride=1)) == 0, changes


def test_flat_gain_evens_each_colour_on_its_own() -> None:
    flat = np.full((8, 8), 1000.0, np.float32)
    flat[0::2, 0::2] = 500.0  # the red sites of a mosaic see half as much: colour, not vignetting
    flat[:, 4:] *= 0.8  # the right half is shaded: that is what the flat corrects
    gain = flat_gain(flat, None, stride=2)
    corrected = flat * gain
    for y in (0, 1):
        for x in (0, 1):
            assert np.ptp(corrected[y::2, x::2]) < 1e-3  # even within each colour
    assert corrected[0, 0] != corrected[0, 1]  # but the colours keep their own level


def test_vignetting_estimated_from_the_sequence(make_descent) -> None:
    folder, _ = make_descent(vignetting=0.4, frames=48, size_px=128)
    frames = [cv2.imread(str(p), cv2.IMREAD_UNCHANGED).astype(np.float32) for p in sorted(folder.glob("*.png"))]
    k2, k4 = estimate_vignetting(np.mean(frames, axis=0))
    corner = float(np.exp(k2 + k4))  # falloff at r = 1
    assert corner == pytest.approx(0.6, abs=0.06)
    gain = vignetting_gain((128, 128), k2, k4)
    assert gain[64, 64] == pytest.approx(1.0, abs=0.02) and gain[0, 0] == pytest.approx(1 / 0.6, rel=0.12)


# --- bit depth, gamma, contrast -------------------------------------------------------------------------


def test_bits_used_by_a_12_bit_camera() -> None:
    frame = np.random.default_rng(1).integers(0, 4096, (64, 64)).astype(np.uint16)
    assert bits_used(sample_histogram(frame)) == 12


def test_frames_too_small_for_a_mosaic_are_grey() -> None:
    """A 2x2 or 1x1 frame has no neighbouring cells to compare: no pattern, and no division by zero."""
    rng = np.random.default_rng(3)
    for side in (1, 2, 3):
        assert detect_mosaic([rng.integers(0, 255, (side, side)).astype(np.uint8)]).pattern is None


def test_gamma_brightens_midtones_only() -> None:
    linear = ToneMap(black=0, white=1000).lut()
    bright = ToneMap(black=0, white=1000, gamma=2.2).lut()
    assert linear[0] == bright[0] == 0 and linear[1000] == bright[1000] == 255
    assert bright[250] > linear[250] + 60


def test_gain_is_folded_into_the_lookup() -> None:
    tone = ToneMap(black=100, white=1100)
    frame = np.full((4, 4), 600, np.uint16)
    assert tone.apply(frame, (1.0,))[0, 0] == 128
    assert tone.apply(frame, (1.5,))[0, 0] == 204  # white balance scales the counts: 900, (900 - 100) / 1000


def test_the_deflicker_gain_scales_the_signal_above_black() -> None:
    """An exposure gain scales what the scene gives, not the camera's black offset: a frame of a
    camera with 200 counts of black, corrected by 1.25, is 1.25x brighter above the curve's black,
    as its brightness ratio was measured (on analysis copies, above that black). Taken on the
    counts instead, the offset was scaled too (the old way: 2.5% brighter still, here)."""
    rng = np.random.default_rng(2)
    scene = rng.uniform(200, 2000, (64, 64))
    frame = np.rint(200 + scene).astype(np.uint16)  # the camera's offset under the scene
    info = FrameInfo(path=Path("f.png"), width=64, height=64, channels=1, bit_depth=16)
    plan = plan_normalisation([info], NormaliseConfig(defects=False, bayer="none"), workers=1,
                              read=lambda _: frame.copy())
    above = plan.analysis_grey(frame).astype(np.float64)
    developed = plan.develop(frame, gain=1.25, colour=False).astype(np.float64)
    plain = plan.develop(frame, gain=1.0, colour=False).astype(np.float64)
    unclipped = developed < 250
    assert np.allclose(developed[unclipped], np.clip(1.25 * plain[unclipped], 0, 255), atol=1.01)
    assert abs(developed[unclipped].mean() / plain[unclipped].mean() - 1.25) < 0.01
    assert np.allclose(plain, above, atol=1.01)  # gamma 1: developed and analysed alike


def test_local_contrast_lifts_flat_ground() -> None:
    flat = (120 + 6 * colour_test_image(128, seed=3)[:, :, 1].astype(np.float32) / 255).astype(np.uint8)
    assert local_contrast(flat).std() > 1.5 * flat.std()


# --- deflicker ------------------------------------------------------------------------------------------


def _high_frequency_rms(values: np.ndarray) -> float:
    return high_frequency_rms(values, period_frames=10)  # 1 s at 10 frames a second


def _flickering_exposure(n: int, seed: int, *, step_at: int = -1, step: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    trend = 0.3 * np.sin(np.linspace(0, 2, n))  # a slow, real change: the crater floor, the dust
    flicker = rng.normal(0, 0.12, n)  # gain jumps of 10 to 20% frame to frame
    steps = np.where(np.arange(n) >= step_at, step, 0.0) if step_at >= 0 else 0.0
    return trend + flicker + steps


def test_deflicker_removes_flicker_and_keeps_the_slow_change() -> None:
    exposure = _flickering_exposure(300, seed=1)
    ratios = [None, *np.diff(exposure).tolist()]
    gains, steps = deflicker_gains(ratios, period_frames=20)
    out = exposure + np.log(gains)
    assert _high_frequency_rms(out) < _high_frequency_rms(exposure) / 10
    trend = 0.3 * np.sin(np.linspace(0, 2, 300))
    assert np.ptp(out - trend - (out - trend).mean()) < 0.12  # the slow change survives
    assert steps == []


def test_deflicker_follows_a_real_step_without_ramping() -> None:
    exposure = _flickering_exposure(300, seed=2, step_at=150, step=np.log(0.6))
    gains, steps = deflicker_gains([None, *np.diff(exposure).tolist()], period_frames=20)
    assert steps == [150]
    out = exposure + np.log(gains)
    # Against the true exposure without flicker (the slow trend and the step), the output is one
    # constant: the step is kept whole.
    residual = out - (0.3 * np.sin(np.linspace(0, 2, 300)) + np.where(np.arange(300) >= 150, np.log(0.6), 0.0))
    before, after = np.median(residual[110:140]), np.median(residual[160:190])
    assert after == pytest.approx(before, abs=0.05)
    # No ramp: the frames just before the step are still at the old level (a look-ahead filter would
    # have started down), and from the second frame after it the new level holds.
    assert np.mean(residual[143:149]) == pytest.approx(before, abs=0.05)
    assert np.mean(residual[152:158]) == pytest.approx(after, abs=0.05)
    for side in (slice(0, 150), slice(150, 300)):  # the step itself is meant to stay
        assert _high_frequency_rms(out[side]) < _high_frequency_rms(exposure[side]) / 10


def test_brightness_ratio_on_shared_ground_ignores_new_dark_ground() -> None:
    before = colour_test_image(128, seed=4)[:, :, 1]
    after = (before.astype(np.float32) * 1.2).clip(0, 255).astype(np.uint8)
    after[:, 100:] = 10  # dark ground coming into view: not shared, not flicker
    shared = np.zeros(before.shape, bool)
    shared[:, :100] = True
    assert brightness_log_ratio(before, after, shared) == pytest.approx(np.log(1.2), abs=0.02)


@pytest.mark.xfail(strict=True, reason="issue 16: blur reads as 0.3-1.0% of darkening here (1.1-2.0% at 1.2 px on "
                   "three frames of one of the sweep's descents); the fix (the trim on what the gain leaves of "
                   "each pixel) is measured in the README and waits for a curve that follows the sharper dust "
                   "onset it then shows")
def test_brightness_ratio_is_not_moved_by_blur() -> None:
    """Dust, a defocus or motion blur changes no exposure: a blurred copy of a frame, at gains of 0.85
    to 1.1, should be read within 0.1% of the gain. Trimmed on per-pixel ratios, blur brightens dark
    pixels by more than it dims bright ones in ratio, so the trim drops the brightened ones, and the
    ratio of the sums kept reads darker. Trimmed on what the gain leaves of each pixel (which blur
    moves by as much either way), it is read within 0.07%."""
    terrain = Terrain(512, 4000.0, 4, seed=5)
    radiance = terrain.render(128, 0.0, 0.0, 0.3, 4000.0 / 512 / 1.5)
    before = np.clip(radiance * 180, 0, 255).round().astype(np.uint8)
    for gain in (1.0, 1.1, 0.85):
        for sigma_px in (0.7, 1.2, 2.0):
            blurred = cv2.GaussianBlur(radiance, (0, 0), sigma_px) * gain
            after = np.clip(blurred * 180, 0, 255).round().astype(np.uint8)
            assert brightness_log_ratio(before, after) == pytest.approx(np.log(gain), abs=0.001), (gain, sigma_px)


def test_brightness_ratio_drops_a_moving_shadow() -> None:
    before = colour_test_image(128, seed=4)[:, :, 1]
    after = (before.astype(np.float32) * 1.2).clip(0, 255).astype(np.uint8)
    after[20:60, 30:90] //= 2  # a shadow moving in over a seventh of the shared ground
    assert brightness_log_ratio(before, after) == pytest.approx(np.log(1.2), abs=0.01)


# --- end to end ---------------------------------------------------------------------------------------


def _output_log_brightness(video: np.ndarray) -> np.ndarray:
    centre = video[:, video.shape[1] // 4 : -video.shape[1] // 4, video.shape[2] // 4 : -video.shape[2] // 4]
    return np.log(centre.reshape(len(video), -1).mean(axis=1))


@pytest.mark.slow
def test_build_deflickers_and_keeps_a_lasting_step(make_descent, tmp_path: Path) -> None:
    # 12% gain noise frame to frame, and the exposure drops by 40% for good at frame 70 of 120. The same
    # descent without flicker (same terrain, flight and step) is the reference: what the output differs
    # from it by is the flicker left, whatever the scene's own brightness does.
    spec = {"frames": 120, "step_at": 70, "step_gain": 0.6, "hover_fraction": 0.3}
    steady, _ = make_descent(**spec)
    flickering, truth = make_descent(**spec, flicker=0.12)
    ordered = sorted(truth["frames"], key=lambda f: f["time_s"])
    # One camera path for all three builds, measured on the flickering frames (their brightness ratios
    # are what deflicker reads), so that the crops match exactly.
    motion, reference_motion = tmp_path / "motion.json", tmp_path / "reference_motion.json"
    brightness = {}
    for name, folder, mode, motion_file in (("on", flickering, "on", motion), ("off", flickering, "off", motion),
                                            ("reference", steady, "off", reference_motion)):
        if name == "reference":
            reference_motion.write_text(motion.read_text().replace(str(flickering), str(steady)))
        out = tmp_path / f"{name}.mp4"
        result = run_cli("build", folder, "-o", out, "--deflicker", mode, "--json", "--border", "black",
                         "--motion", motion_file)
        assert result.returncode == 0, result.stderr
        brightness[name] = _output_log_brightness(decode_video(out, width=128, height=128))
        if name == "on":
            summary = json.loads(result.stdout)
    left = brightness["on"] - brightness["reference"]
    raw = brightness["off"] - brightness["reference"]
    assert high_frequency_rms(left, period_frames=10) < high_frequency_rms(raw, period_frames=10) / 10
    step_file = Path(summary["deflicker"]["steps_kept"][0]).name
    assert abs([f["file"] for f in ordered].index(step_file) - 70) <= 2  # the step is found where it is
    assert np.ptp(left - np.median(left)) < 0.25  # no lasting offset: the step is kept, not corrected away


@pytest.mark.slow
def test_build_demosaics_a_bayer_descent_into_balanced_colour(make_descent, tmp_path: Path) -> None:
    folder, _ = make_descent(bayer="GRBG", bits=12, frames=24, hot_pixels=6)
    inspect = run_cli("inspect", folder, "--json")
    assert inspect.returncode == 0, inspect.stderr
    found = json.loads(inspect.stdout)
    assert found["bits_used"] == 12 and found["normalisation"]["bayer"] == "GRBG"
    assert found["normalisation"]["bayer_source"] == "detected" and found["normalisation"]["defects"] == 6
    out = tmp_path / "colour.mp4"
    result = run_cli("build", folder, "-o", out, "--stabilise", "off", "--deflicker", "off", "-q")
    assert result.returncode == 0, result.stderr
    assert "yuv420p" in probe_video(out)["text"]
    rgb = subprocess.run([find_ffmpeg(), "-v", "error", "-i", str(out), "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:"],
                         capture_output=True, check=True).stdout
    frames = np.frombuffer(rgb, np.uint8).reshape(-1, 128, 128, 3).astype(np.float64)
    means = frames.mean(axis=(0, 1, 2))
    assert np.ptp(means) < 0.06 * means.mean()  # grey world over the sequence: no colour cast left
    hue = frames[..., 0] - frames[..., 2]
    assert hue.std() > 2  # but colour: the scene's red and blue differ with the shading
    stripes = np.abs(np.diff(frames[:, :, :, 1], axis=2))[:, :, ::2].mean() / np.abs(
        np.diff(frames[:, :, :, 1], axis=2))[:, :, 1::2].mean()
    assert 0.8 < stripes < 1.25  # no 2x2 mosaic pattern left in the picture


def test_a_clean_drift_is_no_step_and_a_clean_step_is_exact() -> None:
    # Without flicker the noise estimate is tiny: a drift must not read as steps, a step must land exactly.
    drift = 0.5 * np.sin(np.linspace(0, 3, 300)) + np.random.default_rng(1).normal(0, 0.002, 300)
    assert deflicker_gains([None, *np.diff(drift).tolist()], period_frames=30)[1] == []
    stepped = drift + np.where(np.arange(300) >= 150, np.log(0.6), 0.0)
    gains, steps = deflicker_gains([None, *np.diff(stepped).tolist()], period_frames=30)
    assert steps == [150]
    assert np.abs(np.log(gains)).max() < 0.01  # nothing to correct in a clean sequence


@pytest.mark.slow
def test_dark_and_flat_frames_recover_the_scene(make_descent, tmp_path: Path) -> None:
    folder, _ = make_descent(bits=12, frames=16)
    yy, xx = np.mgrid[0:128, 0:128]
    dark = (300 + 40 * np.sin(xx / 5.0)).astype(np.uint16)  # fixed-pattern offset
    flat = (3000 * (1 - 0.35 * ((xx - 64) ** 2 + (yy - 64) ** 2) / 64**2 / 2)).astype(np.uint16)  # lens falloff
    cv2.imwrite(str(tmp_path / "dark.png"), dark)
    cv2.imwrite(str(tmp_path / "flat.png"), (flat + dark).astype(np.uint16))  # a flat is taken with the dark in it
    raw = tmp_path / "raw"
    raw.mkdir()
    for png in folder.glob("*.png"):
        clean = cv2.imread(str(png), cv2.IMREAD_UNCHANGED).astype(np.float64)
        cv2.imwrite(str(raw / png.name), np.clip(clean * flat / flat.mean() + dark, 0, 65535).astype(np.uint16))
    common = ["--stabilise", "off", "--deflicker", "off", "--defects", "off", "-q"]
    assert run_cli("build", folder, "-o", tmp_path / "clean.mp4", *common).returncode == 0
    result = run_cli("build", raw, "-o", tmp_path / "calibrated.mp4", "--dark", tmp_path / "dark.png",
                     "--flat", tmp_path / "flat.png", *common)
    assert result.returncode == 0, result.stderr
    assert run_cli("build", raw, "-o", tmp_path / "raw.mp4", *common).returncode == 0
    clean = decode_video(tmp_path / "clean.mp4", width=128, height=128)
    calibrated = decode_video(tmp_path / "calibrated.mp4", width=128, height=128)
    uncalibrated = decode_video(tmp_path / "raw.mp4", width=128, height=128)
    assert psnr(calibrated, clean) > 30
    assert psnr(calibrated, clean) > psnr(uncalibrated, clean) + 6

    wrong = tmp_path / "small_dark.png"
    cv2.imwrite(str(wrong), dark[:64, :64])
    refused = run_cli("build", raw, "-o", tmp_path / "x.mp4", "--dark", wrong, *common)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert str(wrong) in refused.stderr and "64x64" in refused.stderr and "128x128" in refused.stderr
    assert not (tmp_path / "x.mp4").exists()
