"""End to end: the real CLI on generated descents, the video checked with ffmpeg against the truth."""

from __future__ import annotations

import json
import math
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import decode_video, probe_video, psnr, run_cli


def _truth_frames(folder: Path, truth: dict, *, with_duplicates: bool = False) -> list[dict]:
    frames = [f for f in truth["frames"] if with_duplicates or not f["duplicate_of"]]
    return sorted(frames, key=lambda f: f["time_s"])


def _top_level_boxes(path: Path) -> list[str]:
    """The types of an MP4's top-level boxes, in file order (ftyp, moov, mdat ...)."""
    data = path.read_bytes()
    boxes, offset = [], 0
    while offset + 8 <= len(data):
        size, kind = int.from_bytes(data[offset:offset + 4], "big"), data[offset + 4:offset + 8].decode("latin-1")
        if size == 1:  # a 64-bit size follows the type
            size = int.from_bytes(data[offset + 8:offset + 16], "big")
        boxes.append(kind)
        if size < 8:
            break
        offset += size
    return boxes


def test_build_orders_by_capture_time_and_drops_duplicates(make_descent, tmp_path: Path) -> None:
    folder, truth = make_descent(drop_every=9, duplicates=2)
    out = tmp_path / "landing.mp4"
    # Unstabilised, so that decoded frames can be compared with the files pixel for pixel.
    result = run_cli("build", folder, "-o", out, "--json", "--report", tmp_path / "report.json", "--stabilise", "off")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    expected = _truth_frames(folder, truth)
    assert summary["frames_used"] == len(expected)
    assert len(summary["duplicates"]) == 2
    assert summary["skipped_files"] == 2  # truth.json and telemetry.csv
    assert len(summary["gaps"]) == len([f for f in range(48) if f % 9 == 4])

    info = probe_video(out)
    assert (info["codec"], info["pix_fmt"], info["width"], info["height"], info["fps"]) == ("h264", "yuv420p",
                                                                                          128, 128, 30.0)
    assert info["duration_s"] == pytest.approx(len(expected) / 30, abs=0.05)
    boxes = _top_level_boxes(out)
    assert "moov" in boxes and "mdat" in boxes and boxes.index("moov") < boxes.index("mdat")  # faststart

    # The decoded video shows the truth frames in capture order: each decoded frame is far closer to
    # its own truth frame than to the neighbours a wrong order would put there.
    video = decode_video(out, width=128, height=128)
    assert len(video) == len(expected)
    originals = [cv2.imread(str(folder / f["file"]), cv2.IMREAD_GRAYSCALE) for f in expected]
    for k, frame in enumerate(video):
        own = psnr(frame, originals[k])
        assert own > 30  # crf 18 on fine terrain; the margin over the neighbours below is what proves order
        for j in (k - 1, k + 1):
            if 0 <= j < len(originals):
                assert own > psnr(frame, originals[j]) + 3

    report = json.loads((tmp_path / "report.json").read_text())
    used = [f for f in report["frames"] if f["status"] == "used"]
    assert [Path(f["file"]).name for f in used] == [f["file"] for f in expected]
    assert [f["output_first"] for f in used] == list(range(len(expected)))
    assert sum(f["status"] == "duplicate" for f in report["frames"]) == 2


@pytest.mark.slow
def test_realtime_follows_capture_times_and_holds_gaps(make_descent, tmp_path: Path) -> None:
    folder, truth = make_descent(drop_every=9)
    out = tmp_path / "rt.mp4"
    result = run_cli("build", folder, "-o", out, "--speed", "2", "--fps", "10", "--json", "-q", "--stabilise", "off",
                     "--deflicker", "off")
    assert result.returncode == 0, result.stderr
    expected = _truth_frames(folder, truth)
    times = [f["time_s"] for f in expected]
    step_s = 2 / 10  # capture seconds per output frame
    span_s = times[-1] - times[0] + float(np.median(np.diff(times)))
    # The video lasts one usual interval past the last frame, and always shows the last frame once.
    n_out = max(math.ceil(span_s / step_s - 1e-4), math.ceil((times[-1] - times[0]) / step_s - 1e-4) + 1)
    assert json.loads(result.stdout)["output"]["frames"] == n_out
    assert probe_video(out)["duration_s"] == pytest.approx(n_out / 10, abs=0.05)
    video = decode_video(out, width=128, height=128)
    assert len(video) == n_out
    originals = {f["file"]: cv2.imread(str(folder / f["file"]), cv2.IMREAD_GRAYSCALE) for f in expected}
    for k, frame in enumerate(video):
        # Output frame k shows the latest frame captured at or before t0 + k * speed / fps.
        due = max(i for i, t in enumerate(times) if t <= times[0] + k * 2 / 10 + 1e-6)
        assert psnr(frame, originals[expected[due]["file"]]) > 35


def test_coarse_clock_names_keep_every_frame(make_descent, tmp_path: Path) -> None:
    folder, truth = make_descent(coarse_clock=True)  # whole-second stamps and a counter, like Chang'e-4
    result = run_cli("inspect", folder, "--json", "-q")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["coarse_clock"]["quantum_s"] == 1.0
    assert summary["frames_used"] == 48
    assert summary["duplicates"] == [] and summary["gaps"] == [] and summary["out_of_place"] == []
    out = tmp_path / "c.mp4"
    result = run_cli("build", folder, "-o", out, "--report", tmp_path / "r.json", "-q")
    assert result.returncode == 0, result.stderr
    frames = json.loads((tmp_path / "r.json").read_text())["frames"]
    assert [f["counter"] for f in frames] == list(range(48))
    refined = np.array([f["time_s"] for f in frames])
    true_times = np.array([f["time_s"] for f in sorted(truth["frames"], key=lambda f: f["index"])])
    assert np.abs(refined - true_times).max() < 0.5


def test_16_bit_frames_use_one_mapping(make_descent, tmp_path: Path) -> None:
    folder, truth = make_descent(bits=12, flicker=0.1)
    out = tmp_path / "deep.mp4"
    result = run_cli("build", folder, "-o", out, "-q", "--stabilise", "off", "--deflicker", "off")
    assert result.returncode == 0, result.stderr
    expected = _truth_frames(folder, truth)
    video = decode_video(out, width=128, height=128).astype(np.float64)
    # The flicker in the input (gain per frame) survives: one mapping does not equalise frames.
    # (Removing it is the deflicker's job, not the bit-depth mapping's.)
    raw_means = [cv2.imread(str(folder / f["file"]), cv2.IMREAD_UNCHANGED).mean() for f in expected]
    assert np.corrcoef(raw_means, video.mean(axis=(1, 2)))[0, 1] > 0.99
    assert np.percentile(video, 0.5) < 30 and np.percentile(video, 99.5) > 220  # the 12 bits fill the range


def test_mixed_sizes_are_fitted_and_reported(make_descent, tmp_path: Path) -> None:
    folder, _ = make_descent()
    mixed = tmp_path / "mixed"
    shutil.copytree(folder, mixed)
    odd = sorted(mixed.glob("*.png"))[0]
    cv2.imwrite(str(odd), cv2.resize(cv2.imread(str(odd), cv2.IMREAD_UNCHANGED), (256, 192)))
    out = tmp_path / "m.mp4"
    result = run_cli("build", mixed, "-o", out, "--json", "--size", "160x120")
    assert result.returncode == 0, result.stderr
    assert "2 sizes" in result.stderr
    assert json.loads(result.stdout)["sizes"] == {"128x128": 47, "256x192": 1}
    info = probe_video(out)
    assert (info["width"], info["height"]) == (160, 120)


def test_colour_frames_give_colour_video(tmp_path: Path) -> None:
    frames = tmp_path / "colour"
    frames.mkdir()
    for k in range(6):
        img = np.zeros((64, 64, 3), np.uint8)
        img[:, :, 2] = 200  # red in BGR
        img[:, : 8 + k * 8, 1] = 150
        cv2.imwrite(str(frames / f"shot_{k}.png"), img)
    out = tmp_path / "c.mp4"
    result = run_cli("build", frames, "-o", out, "-q")
    assert result.returncode == 0, result.stderr
    raw = subprocess.run([sys.executable, "-c", "import imageio_ffmpeg;print(imageio_ffmpeg.get_ffmpeg_exe())"],
                         capture_output=True, text=True).stdout.strip()
    rgb = subprocess.run([raw, "-v", "error", "-i", str(out), "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:"],
                         capture_output=True, check=True).stdout
    first = np.frombuffer(rgb, np.uint8).reshape(-1, 64, 64, 3)[0]
    assert first[32, 40, 0] > 180 and first[32, 40, 2] < 40  # still red after the YUV round trip


def test_glob_and_recursive_inputs(make_descent, tmp_path: Path) -> None:
    folder, _ = make_descent()
    nested = tmp_path / "nested"
    (nested / "a").mkdir(parents=True)
    (nested / "b").mkdir()
    for k, src in enumerate(sorted(folder.glob("*.png"))):
        shutil.copy(src, nested / ("a" if k % 2 else "b") / src.name)
    assert run_cli("inspect", nested, "-q", "--json").returncode == 1  # no images at the top level
    result = run_cli("inspect", nested, "--recursive", "--json", "-q")
    assert json.loads(result.stdout)["frames_used"] == 48
    result = run_cli("inspect", f"{nested}/a/*.png", "--json", "-q")
    assert json.loads(result.stdout)["frames_used"] == 24


@pytest.mark.slow
def test_same_video_whatever_the_number_of_workers(make_descent, tmp_path: Path) -> None:
    folder, _ = make_descent(drop_every=9, duplicates=2)
    videos = []
    for workers in (1, 3):
        out = tmp_path / f"w{workers}.mp4"
        assert run_cli("build", folder, "-o", out, "-j", str(workers), "-q").returncode == 0
        videos.append(decode_video(out, width=128, height=128))
    assert np.array_equal(videos[0], videos[1])


@pytest.mark.slow
def test_ten_thousand_frames(tmp_path: Path) -> None:
    # Memory must not depend on the number of frames; here we check that 10,000 work at all.
    frames = tmp_path / "many"
    frames.mkdir()
    base = np.random.default_rng(0).integers(0, 255, (16, 16), np.uint8)
    def frame(k: int) -> np.ndarray:
        img = np.roll(base, k, axis=1)
        img[:4, :8] = (k % 256) // 16 * 16  # the frame number in blocks that survive compression
        img[4:8, :8] = k // 256 * 4
        return img

    for k in range(10_000):
        t = 1546482000 + k / 10
        cv2.imwrite(str(frames / f"f_{k * 7919 % 10_000:05d}_{t:.1f}.png"), frame(k))
    out = tmp_path / "many.mp4"
    result = run_cli("build", frames, "-o", out, "--preset", "ultrafast", "--json", "-q", timeout=300)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["output"]["frames"] == 10_000
    assert summary["time_source"] == "name"
    video = decode_video(out, width=16, height=16)
    assert len(video) == 10_000
    for k in (0, 1234, 9999):
        assert np.abs(video[k].astype(int) - frame(k)).mean() < 8


# --- bad input: one line, non-zero exit, nothing at the output path ---------------------------------


def _one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("descent: error:")]
    assert len(errors) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]


def test_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = run_cli("build", tmp_path / "empty", "-o", tmp_path / "v.mp4")
    _one_line_error(result, "empty", "no files found")
    assert not (tmp_path / "v.mp4").exists()


def test_no_images(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "notes.txt").write_text("hi")
    _one_line_error(run_cli("inspect", tmp_path / "docs"), "no images among 1 files")


def test_missing_input(tmp_path: Path) -> None:
    _one_line_error(run_cli("inspect", tmp_path / "nowhere"), "nowhere: no such folder or file")


def _with_truncated_frame(folder: Path, tmp_path: Path) -> tuple[Path, Path]:
    broken = tmp_path / "broken"
    shutil.copytree(folder, broken)
    victim = sorted(broken.glob("*.png"))[5]
    victim.write_bytes(victim.read_bytes()[:300])
    return broken, victim


def test_truncated_frame_is_skipped_with_a_warning(make_descent, tmp_path: Path) -> None:
    folder, _ = make_descent()
    broken, victim = _with_truncated_frame(folder, tmp_path)
    out = tmp_path / "v.mp4"
    result = run_cli("build", broken, "-o", out, "--json")
    assert result.returncode == 0, result.stderr
    assert f"{victim}: truncated PNG" in result.stderr and "skipped" in result.stderr
    summary = json.loads(result.stdout)
    assert summary["output"]["frames"] == 47
    reason = "truncated PNG (no IEND chunk at the end of the file)"
    assert summary["unreadable"] == [{"file": str(victim), "reason": reason}]


def test_truncated_frame_stops_a_strict_build(make_descent, tmp_path: Path) -> None:
    folder, _ = make_descent()
    broken, victim = _with_truncated_frame(folder, tmp_path)
    out = tmp_path / "v.mp4"
    _one_line_error(run_cli("build", broken, "-o", out, "--strict"), str(victim), "truncated PNG")
    assert list(tmp_path.glob("*.mp4")) == [] and list(tmp_path.glob(".*mp4")) == []


def test_unknown_time_format(make_descent, tmp_path: Path) -> None:
    folder, _ = make_descent()
    _one_line_error(run_cli("build", folder, "-o", tmp_path / "v.mp4", "--name-pattern", r"cam_(?P<time>[A-Z]+)_"),
                    "--name-pattern matched time", "neither ISO 8601")
    index = tmp_path / "index.csv"
    index.write_text("file,time\nx.png,noon\n")
    _one_line_error(run_cli("build", folder, "-o", tmp_path / "v.mp4", "--times", index), "line 2", "'noon'")


def test_output_folder_missing(make_descent, tmp_path: Path) -> None:
    folder, _ = make_descent()
    _one_line_error(run_cli("build", folder, "-o", tmp_path / "no" / "v.mp4"), "does not exist")


def test_existing_output_needs_overwrite(make_descent, tmp_path: Path) -> None:
    folder, _ = make_descent()
    out = tmp_path / "v.mp4"
    out.write_bytes(b"keep me")
    _one_line_error(run_cli("build", folder, "-o", out), "exists; add --overwrite")
    assert out.read_bytes() == b"keep me"


def test_ffmpeg_missing(make_descent, tmp_path: Path) -> None:
    folder, _ = make_descent()
    _one_line_error(run_cli("build", folder, "-o", tmp_path / "v.mp4", "--ffmpeg", "/no/ffmpeg"),
                    "--ffmpeg /no/ffmpeg: no such executable")


def test_ffmpeg_failing(make_descent, tmp_path: Path) -> None:
    folder, _ = make_descent()
    fake = tmp_path / "ffmpeg"
    fake.write_text("#!/bin/sh\necho 'Error initializing output stream' >&2\nexit 1\n")
    fake.chmod(0o755)
    out = tmp_path / "v.mp4"
    _one_line_error(run_cli("build", folder, "-o", out, "--ffmpeg", fake), "Error initializing output stream")
    assert not out.exists()


@pytest.mark.slow
def test_ctrl_c_leaves_no_video(make_descent, tmp_path: Path) -> None:
    folder, _ = make_descent(frames=400, size_px=256)
    out = tmp_path / "v.mp4"
    # A shell running us in the background hands SIGINT down as ignored; a terminal's Ctrl-C does not.
    scratch = tmp_path / "scratch"  # where the decoded frames wait for pass 2: emptied too
    scratch.mkdir()
    process = subprocess.Popen([sys.executable, "-m", "descent", "build", str(folder), "-o", str(out),
                                "--preset", "veryslow", "--scratch", str(scratch)], stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob(".v.*.partial.mp4")) and time.monotonic() < deadline:
        time.sleep(0.05)  # wait until encoding has started
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130
    assert "interrupted" in stderr and "Traceback" not in stderr
    assert list(tmp_path.iterdir()) == [scratch] and list(scratch.iterdir()) == []


def test_realtime_without_times(tmp_path: Path) -> None:
    frames = tmp_path / "plain"
    frames.mkdir()
    for k in range(3):
        cv2.imwrite(str(frames / f"frame_{k}.png"), np.zeros((16, 16), np.uint8))
    _one_line_error(run_cli("build", frames, "-o", tmp_path / "v.mp4", "--realtime", "--time-source", "none"),
                    "--realtime needs capture times")


def test_help_lists_every_command() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    assert "build" in result.stdout and "inspect" in result.stdout


@pytest.mark.slow
def test_sigterm_leaves_no_video(make_descent, tmp_path: Path) -> None:
    folder, _ = make_descent(frames=400, size_px=256)
    out = tmp_path / "v.mp4"
    process = subprocess.Popen([sys.executable, "-m", "descent", "build", str(folder), "-o", str(out),
                                "--preset", "veryslow"], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob(".v.*.partial.mp4")) and time.monotonic() < deadline:
        time.sleep(0.05)
    process.terminate()
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130 and "interrupted" in stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("fmt", "bits"), [("tif", 16), ("bmp", 8), ("jpg", 8)])
def test_tiff_bmp_and_jpeg_frames(make_descent, tmp_path: Path, fmt: str, bits: int) -> None:
    folder, truth = make_descent(frames=24, image_format=fmt, bits=bits)
    inspected = run_cli("inspect", folder, "--json", "-q")
    assert inspected.returncode == 0, inspected.stderr
    summary = json.loads(inspected.stdout)
    assert summary["frames_used"] == 24 and summary["bit_depths"] == {f"{bits}-bit": 24}
    out = tmp_path / f"{fmt}.mp4"
    result = run_cli("build", folder, "-o", out, "--stabilise", "off", "-q")
    assert result.returncode == 0, result.stderr
    video = decode_video(out, width=128, height=128)
    expected = _truth_frames(folder, truth)
    assert len(video) == 24
    first = cv2.imread(str(folder / expected[0]["file"]), cv2.IMREAD_UNCHANGED).astype(np.float64)
    # Same picture up to the one sequence-wide tone mapping: strongly correlated, frame for frame.
    assert np.corrcoef(first.ravel(), video[0].ravel().astype(np.float64))[0, 1] > 0.98


def test_no_capture_times_builds_in_natural_name_order(tmp_path: Path) -> None:
    frames = tmp_path / "plain"
    frames.mkdir()
    for k in range(12):  # frame_9 must come before frame_10
        cv2.imwrite(str(frames / f"frame_{k}.png"), np.full((32, 32), 10 + 20 * k, np.uint8))
    out = tmp_path / "v.mp4"
    result = run_cli("build", frames, "-o", out, "--time-source", "none", "--stabilise", "off", "--json")
    assert result.returncode == 0, result.stderr
    assert "natural name order" in result.stderr
    means = decode_video(out, width=32, height=32).mean(axis=(1, 2))
    assert np.all(np.diff(means) > 10)  # brightness rises with the frame number: the order is right
