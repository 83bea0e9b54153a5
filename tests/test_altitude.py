"""Altitude: telemetry in every shape, interpolation at frame times, estimation from the images, the HUD,
and the data read back from the encoded video."""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import decode_video, probe_video, run_cli

from descent.altitude import (
    AltitudeTrack,
    align_telemetry,
    from_images,
    from_telemetry,
    parse_altitude_at,
    touchdown_time,
    vertical_speed,
)
from descent.encode import find_ffmpeg
from descent.errors import UsageError
from descent.overlay import Hud, HudConfig, format_altitude, format_countdown, format_speed
from descent.telemetry import Telemetry, TelemetryOptions, read_telemetry

GOLDEN = Path(__file__).parent / "golden"
T0 = datetime(2019, 1, 3, 2, 26, 0, tzinfo=UTC).timestamp()


def exponential_altitude(t_s: np.ndarray) -> np.ndarray:
    return 2000.0 * np.exp(-t_s / 4.0)  # halves every 2.8 s, as a final descent does


# --- telemetry in ---------------------------------------------------------------------------------------


def test_interpolated_at_each_frame_time_with_offset_and_span(tmp_path: Path) -> None:
    log = tmp_path / "alt.csv"
    sample_t = np.arange(0, 10.01, 0.25)
    log.write_text("time,altitude\n" + "".join(f"{t:.2f},{a:.6f}\n" for t, a in zip(
        sample_t, exponential_altitude(sample_t), strict=True)))
    # Seconds from the start count from the first frame; the last frame falls past the log's end.
    frames = T0 + np.array([0.0, 0.05, 1.37, 4.91, 9.99, 10.5])
    track = from_telemetry(read_telemetry(log), frames, frames_utc=True)
    inside = exponential_altitude(frames[:5] - T0)
    np.testing.assert_allclose(track.altitude_m[:5], inside, rtol=1e-4)  # log interpolation is exact here
    assert math.isnan(track.altitude_m[5])
    # --time-offset +0.5: the log runs late, so its sample at 2.0 s describes the frame at 2.5 s; now the
    # first two frames come before the log starts and the last one is inside it.
    late = from_telemetry(read_telemetry(log, TelemetryOptions(time_offset_s=0.5)), frames, frames_utc=True)
    np.testing.assert_allclose(late.altitude_m[2:], exponential_altitude(frames[2:] - T0 - 0.5), rtol=1e-4)
    assert np.isnan(late.altitude_m[:2]).all()
    # Vertical speed is the derivative of the altitude: -altitude / 4 for this profile.
    np.testing.assert_allclose(track.vertical_speed_mps[2:4], -inside[2:4] / 4, rtol=0.03)


def test_touchdown_from_the_data_or_the_final_rate() -> None:
    t = np.arange(0, 20, 0.5)
    landing = np.maximum(100 - 6 * t, 0.0)
    assert touchdown_time(t, landing) == pytest.approx(16.5, abs=0.5)  # 100 m at 6 m/s, first sample on the ground
    still_falling = 100 - 4 * t[:10]  # ends at 82 m at 4.5 s, 4 m/s down: 81 m more to the ground
    assert touchdown_time(t[:10], still_falling) == pytest.approx(4.5 + 81 / 4, abs=0.3)
    grid, speed = vertical_speed(t, landing)
    assert np.median(speed[(grid > 2) & (grid < 14)]) == pytest.approx(-6, abs=0.05)


def test_altitude_at_parsing() -> None:
    assert parse_altitude_at("02:26:05.5=1900", first_time_s=T0 + 3, times_utc=True) == (T0 + 5.5, 1900)
    assert parse_altitude_at("+12.5=2.4km", first_time_s=T0, times_utc=True) == (T0 + 12.5, 2400)
    assert parse_altitude_at("2019-01-03T02:26:01Z=6200ft", first_time_s=T0, times_utc=True)[1] == pytest.approx(
        6200 * 0.3048)
    with pytest.raises(UsageError, match="TIME=ALTITUDE"):
        parse_altitude_at("1900", first_time_s=T0, times_utc=True)
    with pytest.raises(UsageError, match="no UTC"):
        parse_altitude_at("02:26:05=10", first_time_s=100.0, times_utc=False)


# --- altitude from the images ----------------------------------------------------------------------------


def test_chain_with_anchors_follows_the_hover_between_sparse_points() -> None:
    t = np.arange(100) * 0.1
    truth = np.concatenate([np.geomspace(2000, 200, 40), np.full(30, 200.0), np.geomspace(200, 20, 30)])
    chain = np.log(truth + 1) - np.log(truth[0] + 1) + np.random.default_rng(0).normal(0, 0.002, 100).cumsum()
    track = from_images(t, chain, [(0.0, 2000.0), (9.9, 20.0)], frames_utc=False)
    assert np.max(np.abs(track.altitude_m / truth - 1)) < 0.05  # along the images, the hover stays flat
    straight = np.interp(t, [0, 9.9], [2000, 20])  # what a straight line between the two points would say
    assert np.max(np.abs(straight / truth - 1)) > 1
    assert track.estimated.all() and track.source == "images"


@pytest.mark.slow
def test_altitude_from_images_within_5_percent(make_descent, tmp_path: Path) -> None:
    folder, truth = make_descent(frames=90, size_px=192, dust_frames=10, occluder=True)
    ordered = sorted(truth["frames"], key=lambda f: f["time_s"])
    first = ordered[0]
    out = tmp_path / "est.mp4"
    known = datetime.fromtimestamp(first["time_s"], UTC).strftime("%H:%M:%S.%f")[:-3]
    result = run_cli("build", folder, "-o", out, "--altitude-at", f"{known}={first['altitude_m']:.2f}",
                     "--telemetry-out", tmp_path / "values.csv", "--json")
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader((tmp_path / "values.csv").read_text().splitlines()))
    assert len(rows) == 90 and all(r["estimated"] == "1" for r in rows)
    clear = ordered[: 90 - 10]  # the dust-blinded frames at the end have no scale to measure
    errors = [float(r["altitude_m"]) / f["altitude_m"] - 1 for r, f in zip(rows, clear, strict=False)]
    assert max(abs(e) for e in errors) < 0.05, max(errors, key=abs)
    assert json.loads(result.stdout)["altitude"]["source"] == "images"


# --- the data read back from the video -------------------------------------------------------------------


def _read_subtitles(video: Path) -> list[dict[str, str]]:
    text = subprocess.run([find_ffmpeg(), "-v", "error", "-i", str(video), "-map", "0:s:0", "-f", "srt", "-"],
                          capture_output=True, text=True, check=True).stdout
    return [dict(pair.split("=", 1) for pair in line.split()) for line in text.splitlines() if "altitude_m=" in line]


@pytest.mark.slow
def test_subtitle_track_equals_the_truth(make_descent, tmp_path: Path) -> None:
    folder, truth = make_descent(frames=40, drop_every=7)
    ordered = sorted((f for f in truth["frames"] if not f["duplicate_of"]), key=lambda f: f["time_s"])
    start = ordered[0]["time_s"]
    log = tmp_path / "alt.csv"  # 3 Hz, on its own clock, longer than the frames: interpolated at frame times
    sample_t = np.arange(-1.0, 5.0, 1 / 3)
    log.write_text("utc,altitude_m\n" + "".join(
        f"{datetime.fromtimestamp(start + t, UTC).isoformat().replace('+00:00', 'Z')},{a:.5f}\n"
        for t, a in zip(sample_t, exponential_altitude(sample_t), strict=True)))
    out = tmp_path / "landing.mp4"
    result = run_cli("build", folder, "-o", out, "--telemetry", log, "--telemetry-out", tmp_path / "values.csv",
                     "--overlay-only", tmp_path / "hud.mov", "--stabilise", "off")
    assert result.returncode == 0, result.stderr
    assert "Subtitle: mov_text" in probe_video(out)["text"]
    cues = _read_subtitles(out)
    assert len(cues) == len(ordered)
    for cue, frame in zip(cues, ordered, strict=True):
        expected = float(exponential_altitude(np.array([frame["time_s"] - start]))[0])
        assert float(cue["altitude_m"]) == pytest.approx(expected, rel=1e-3)
        assert float(cue["vertical_speed_mps"]) == pytest.approx(-expected / 4, rel=0.05)
        assert cue["capture_time"] == datetime.fromtimestamp(frame["time_s"], UTC).isoformat(
            timespec="milliseconds").replace("+00:00", "Z")
    rows = list(csv.DictReader((tmp_path / "values.csv").read_text().splitlines()))
    assert [r["altitude_m"] for r in rows] == [c["altitude_m"] for c in cues]  # the CSV says what was drawn
    # The overlay for editors: ProRes 4444 with alpha. (On a 128 px frame the HUD is the altitude alone,
    # in a fifth of the picture at most: the panel's 60% there, the glyphs' full, the rest transparent.)
    assert "prores (4444)" in probe_video(tmp_path / "hud.mov")["text"]
    rgba = subprocess.run([find_ffmpeg(), "-v", "error", "-i", str(tmp_path / "hud.mov"), "-frames:v", "1", "-f",
                           "rawvideo", "-pix_fmt", "rgba", "-"], capture_output=True, check=True).stdout
    alpha = np.frombuffer(rgba, np.uint8).reshape(128, 128, 4)[:, :, 3]
    assert alpha.max() > 240 and np.median(alpha) == 0 and 0 < (alpha > 0).mean() <= 0.2


def test_telemetry_command_reports_and_plots(make_descent, tmp_path: Path) -> None:
    folder, _ = make_descent()
    result = run_cli("telemetry", folder / "telemetry.csv", "--plot", tmp_path / "profile.png")
    assert result.returncode == 0, result.stderr
    assert "columns     time: 'time_utc', altitude: 'altitude_m' (m)" in result.stdout
    assert "problems    none" in result.stdout and "rate        4 samples/s" in result.stdout
    plot = cv2.imread(str(tmp_path / "profile.png"))
    assert plot.shape == (700, 1200, 3) and (plot[:, :, 2].astype(int) - plot[:, :, 0] > 100).any()  # the curve
    bad = run_cli("telemetry", folder / "truth.json")
    assert bad.returncode != 0 and "Traceback" not in bad.stderr and "truth.json" in bad.stderr


def test_altitude_needs_capture_times(make_descent, tmp_path: Path) -> None:
    folder, _ = make_descent(name_style="counter")
    result = run_cli("build", folder, "-o", tmp_path / "x.mp4", "--altitude-at", "+0=500", "--stabilise", "off",
                     "--time-source", "none")
    assert result.returncode == 2 and "capture times" in result.stderr and "Traceback" not in result.stderr


# --- the HUD ---------------------------------------------------------------------------------------------


def test_readouts_choose_their_units() -> None:
    assert format_altitude(1934.0, "metric") == ("1.9", "km")
    assert format_altitude(523.4, "metric") == ("523", "m")
    assert format_altitude(4.26, "metric") == ("4.3", "m")
    assert format_altitude(1934.0, "imperial") == ("6,345", "ft")
    assert format_altitude(math.nan, "metric") == ("--", "m")
    assert format_speed(-12.34, "metric") == "-12.3 m/s"
    assert format_countdown(41.23) == "T-41.2 s" and format_countdown(75.0) == "T-1:15.0"
    assert format_countdown(None) == "--"


def _demo_track(n: int = 120) -> AltitudeTrack:
    t = T0 + np.arange(n) * 0.1
    altitude = exponential_altitude(np.arange(n) * 0.1)
    grid, speed = vertical_speed(t, altitude)
    estimated = np.zeros(n, bool)
    estimated[60:] = True
    return AltitudeTrack(t, True, altitude, np.interp(t, grid, speed), estimated, touchdown_time(t, altitude),
                         "telemetry and images")


def _golden_background(width: int, height: int) -> np.ndarray:
    yy, xx = np.mgrid[0:height, 0:width]
    return np.dstack([(xx * 255 // width), (yy * 255 // height), np.full_like(xx, 120)]).astype(np.uint8)


def test_hud_matches_the_approved_image() -> None:
    """Golden image: when the look changes on purpose, `make approve` accepts the received image."""
    width, height = 854, 480
    hud = Hud(HudConfig(mark_site=True), width=width, height=height, track=_demo_track(),
              sites=np.tile([width / 2 + 40, height / 2 - 30], (120, 1)))
    assert_matches_golden(hud.draw(_golden_background(width, height), 70), "hud_480p")


def assert_matches_golden(received: np.ndarray, name: str) -> None:
    """Golden images: when the look changes on purpose, `make approve` accepts the received image."""
    golden = GOLDEN / f"{name}.png"
    received_path = GOLDEN / f"{name}.received.png"
    GOLDEN.mkdir(exist_ok=True)
    approved = cv2.imread(str(golden)) if golden.exists() else None
    if approved is not None and approved.shape == received.shape:
        difference = np.abs(approved.astype(int) - received.astype(int))
        if difference.mean() < 0.5 and np.percentile(difference, 99.9) < 80:  # font rasterisers differ slightly
            received_path.unlink(missing_ok=True)
            return
    if os.environ.get("CI"):
        pytest.fail(f"the HUD differs from {golden}; run the tests locally, look at {received_path.name}, "
                    "and `make approve` if the change is intended")
    cv2.imwrite(str(received_path), received)
    pytest.fail(f"the HUD differs from {golden} (or it is missing): look at {received_path} and run `make approve`")


def test_hud_scales_and_marks_estimates() -> None:
    track = _demo_track()
    small = Hud(HudConfig(), width=854, height=480, track=track)
    large = Hud(HudConfig(position="top-right"), width=3840, height=2160, track=track)
    assert large.big.height > 3.5 * small.big.height  # scales with the frame ...
    assert small.big.height >= 30  # ... and stays readable at 480p
    _, y0, x1, _ = large.box
    assert x1 > 3840 - 200 and y0 < 200  # top right
    plain = small.draw(np.zeros((480, 854, 3), np.uint8), 10)
    marked = small.draw(np.zeros((480, 854, 3), np.uint8), 70)
    accent = lambda image: int(((image[:, :, 2] > 200) & (image[:, :, 0] < 120)).sum())  # noqa: E731
    assert accent(marked) > accent(plain) + 50  # "ESTIMATED" in amber
    assert "(estimated)" in small.caption(70) and "(estimated)" not in small.caption(10)
    grey = small.draw(np.zeros((480, 854), np.uint8), 10)
    assert grey.ndim == 2 and grey.max() > 200


def test_overlay_alone_has_straight_alpha() -> None:
    hud = Hud(HudConfig(), width=320, height=240, track=_demo_track())
    bgra = hud.draw_alone(5, width=320, height=240)
    assert bgra.shape == (240, 320, 4)
    assert bgra[5, 310, 3] == 0  # outside the panel: transparent
    x0, y0, x1, y1 = hud.box
    panel = bgra[y0 + 2 : y1 - 2, x0 + 2 : x1 - 2]
    assert 120 < np.median(panel[:, :, 3]) < 190  # the panel's 60% opacity
    composited = (hud.draw(np.full((240, 320, 3), 200, np.uint8), 5)).astype(int)
    alpha = bgra[:, :, 3:4].astype(int)
    rebuilt = (bgra[:, :, :3].astype(int) * alpha + 200 * (255 - alpha)) // 255
    assert np.abs(rebuilt - composited).max() <= 3  # over any background it gives what the HUD draws


@pytest.mark.slow
def test_sparse_telemetry_is_filled_along_the_image_chain(make_descent, tmp_path: Path) -> None:
    # Four published altitudes over a descent with a hover: between them the images give the shape.
    folder, truth = make_descent(frames=90, size_px=192, hover_fraction=0.3)
    ordered = sorted(truth["frames"], key=lambda f: f["time_s"])
    picks = [ordered[k] for k in (0, 30, 60, 89)]
    log = tmp_path / "published.csv"
    log.write_text("utc,altitude_m\n" + "".join(f"{f['time_utc']},{f['altitude_m']:.3f}\n" for f in picks))
    result = run_cli("build", folder, "-o", tmp_path / "s.mp4", "--telemetry", log, "--telemetry-out",
                     tmp_path / "values.csv", "--stabilise", "off", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["altitude"]["source"] == "telemetry and images"
    rows = list(csv.DictReader((tmp_path / "values.csv").read_text().splitlines()))
    errors = [abs(float(r["altitude_m"]) / f["altitude_m"] - 1) for r, f in zip(rows, ordered, strict=True)]
    assert max(errors) < 0.05
    straight = np.interp([f["time_s"] for f in ordered], [p["time_s"] for p in picks],
                         [p["altitude_m"] for p in picks])
    assert max(abs(s / f["altitude_m"] - 1) for s, f in zip(straight, ordered, strict=True)) > 0.2
    assert rows[0]["estimated"] == "0" and rows[15]["estimated"] == "1"


def test_landing_site_positions_follow_the_ground(make_descent) -> None:
    from descent.sources.images import probe
    from descent.stabilise.analyse import measure_motion
    from descent.stabilise.path import camera_path, site_positions

    folder, truth = make_descent(frames=40, size_px=192)
    ordered = sorted(truth["frames"], key=lambda f: f["time_s"])
    infos = [probe(folder / f["file"]) for f in ordered]
    motions = measure_motion(infos, user_mask=None, workers=2, progress=lambda items, total: iter(items)).motions
    found = site_positions(infos, motions, camera_path(motions), None, width=192, height=192)
    last = ordered[-1]
    centre = (192 - 1) / 2
    for f, (x, y) in zip(ordered, found, strict=True):
        yaw = math.radians(f["yaw_deg"])
        dx, dy = last["camera_x_m"] - f["camera_x_m"], last["camera_y_m"] - f["camera_y_m"]
        # The generator maps frame pixels to ground by R(yaw) * scale: the inverse takes the ground back.
        u = centre + (math.cos(yaw) * dx + math.sin(yaw) * dy) / f["m_per_px"]
        v = centre + (-math.sin(yaw) * dx + math.cos(yaw) * dy) / f["m_per_px"]
        assert math.hypot(x - u, y - v) < 2.0, (f["file"], x, y, u, v)


@pytest.mark.slow
def test_no_hud_keeps_the_data_and_the_overlay(make_descent, tmp_path: Path) -> None:
    # A clean video for an editor, with the HUD as its own track and the values as data.
    folder, _ = make_descent(frames=20)
    common = ["--telemetry", folder / "telemetry.csv", "--stabilise", "off", "--deflicker", "off", "--defects", "off"]
    assert run_cli("build", folder, "-o", tmp_path / "plain.mp4", "--no-subtitles", "--no-hud", *common).returncode == 0
    result = run_cli("build", folder, "-o", tmp_path / "clean.mp4", "--no-hud", "--overlay-only",
                     tmp_path / "hud.mov", "--telemetry-out", tmp_path / "values.csv", *common)
    assert result.returncode == 0, result.stderr
    clean = decode_video(tmp_path / "clean.mp4", width=128, height=128)
    plain = decode_video(tmp_path / "plain.mp4", width=128, height=128)
    assert np.array_equal(clean, plain)  # nothing burned in
    assert len(_read_subtitles(tmp_path / "clean.mp4")) == 20
    assert "Subtitle" not in probe_video(tmp_path / "plain.mp4")["text"]  # --no-subtitles
    assert len((tmp_path / "values.csv").read_text().splitlines()) == 21
    rgba = subprocess.run([find_ffmpeg(), "-v", "error", "-i", str(tmp_path / "hud.mov"), "-frames:v", "1", "-f",
                           "rawvideo", "-pix_fmt", "rgba", "-"], capture_output=True, check=True).stdout
    assert np.frombuffer(rgba, np.uint8).reshape(128, 128, 4)[:, :, 3].max() > 240  # the panel is there


def test_bad_altitude_input_is_refused_before_any_work(make_descent, tmp_path: Path) -> None:
    folder, _ = make_descent()
    no_altitude = tmp_path / "log.csv"
    no_altitude.write_text("time,speed\n0,1\n1,2\n")
    cases = [
        (["--telemetry", no_altitude], "no altitude column found among 'time', 'speed'; name it with --alt-column"),
        (["--overlay-only", tmp_path / "hud.mov"], "--overlay-only draws the altitude HUD"),
        (["--altitude-at", "soon=100"], "'soon' is not a time"),
    ]
    for extra, message in cases:
        result = run_cli("build", folder, "-o", tmp_path / "x.mp4", *extra)
        assert result.returncode == 2 and message in result.stderr, result.stderr
        assert "measuring motion" not in result.stderr and "Traceback" not in result.stderr
        assert not (tmp_path / "x.mp4").exists()


def _log(times_s: np.ndarray, altitude_m: np.ndarray, kind: str) -> Telemetry:
    return Telemetry(Path("log.csv"), times_s, altitude_m, kind == "utc", "t", "altitude_m", "m",
                     counts_down=kind == "countdown", time_kind=kind)


def test_time_of_day_meets_the_frames_on_their_date() -> None:
    frames = T0 + np.arange(0, 10, 0.5)  # 02:26:00 UTC on 2019-01-03
    of_day = 2 * 3600 + 26 * 60 + np.arange(-5.0, 15.0)
    aligned = align_telemetry(_log(of_day, np.full(20, 100.0), "time of day"), frames, True)
    np.testing.assert_allclose(aligned, T0 + np.arange(-5.0, 15.0))
    # A log written just before midnight for frames just after it: the day before.
    late = 86400 - 20 + np.arange(20.0)
    after_midnight = T0 - (2 * 3600 + 26 * 60) + np.arange(0, 10, 0.5)
    assert align_telemetry(_log(late, np.full(20, 1.0), "time of day"), after_midnight, True)[0] == \
        pytest.approx(after_midnight[0] - 20)
    # Frames with no UTC times: counted from the first frame, like seconds from a start.
    aligned = align_telemetry(_log(of_day, np.full(20, 100.0), "time of day"), np.arange(5.0, 15.0), False)
    np.testing.assert_allclose(aligned, 5.0 + np.arange(20.0))


@pytest.mark.parametrize("rest_m", [0.0, 1.2])
def test_every_frame_before_touchdown_counts_down(rest_m: float) -> None:
    """A log that ends on the ground or at rest above it (a camera on the lander's deck)."""
    t = np.arange(0, 40, 0.25)
    altitude = np.maximum(rest_m, np.where(t < 20, 400 * np.exp(-t / 6), 400 * np.exp(-20 / 6) - 3 * (t - 20)))
    land = float(t[np.argmax(altitude <= rest_m)])
    frames = T0 + np.arange(0, 36, 0.1)
    track = from_telemetry(_log(t, altitude, "elapsed"), frames, frames_utc=True)
    assert track.touchdown_s == pytest.approx(T0 + land, abs=0.5)
    hud = Hud(HudConfig(), width=640, height=480, track=track)
    before = np.flatnonzero(frames < T0 + land - 0.5)
    assert all("T-" in hud.caption(i) for i in before)
    assert all(track.time_to_touchdown_s(i) > 0 for i in before)
    hovering = np.full(len(t), 30.0)
    assert touchdown_time(t, hovering) is None  # a hover far above the ground is no touchdown
