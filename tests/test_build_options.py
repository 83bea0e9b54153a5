"""Options of `descent build` that change the picture, each checked on the decoded video against a build without it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import typer
from conftest import decode_video, probe_video, run_cli

from descent.encode import find_ffmpeg

pytestmark = pytest.mark.slow  # every test here builds a video or two

PLAIN = ["--stabilise", "off", "--deflicker", "off", "--defects", "off", "-q"]


def _decode_rgb(path: Path, *, width: int, height: int) -> np.ndarray:
    raw = subprocess.run([find_ffmpeg(), "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "rgb24",
                          "pipe:"], capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, height, width, 3).astype(np.float64)


def test_keep_duplicates_keeps_them(make_descent, tmp_path: Path) -> None:
    folder, truth = make_descent(duplicates=3)
    dropped = run_cli("build", folder, "-o", tmp_path / "d.mp4", "--json", *PLAIN)
    kept = run_cli("build", folder, "-o", tmp_path / "k.mp4", "--json", "--keep-duplicates", *PLAIN)
    assert dropped.returncode == 0 and kept.returncode == 0, dropped.stderr + kept.stderr
    frames = len(truth["frames"])
    assert json.loads(dropped.stdout)["output"]["frames"] == frames - 3
    summary = json.loads(kept.stdout)
    assert summary["output"]["frames"] == frames and len(summary["duplicates"]) == 3  # found, and kept
    assert len(decode_video(tmp_path / "k.mp4", width=128, height=128)) == frames


def test_white_balance_and_demosaic_options_reach_the_picture(make_descent, tmp_path: Path) -> None:
    folder, _ = make_descent(bayer="RGGB")
    videos = {}
    for name, extra in {"auto": [], "red": ["--wb", "2,1,1"], "vng": ["--demosaic", "vng"],
                        "bilinear": ["--demosaic", "bilinear"]}.items():
        result = run_cli("build", folder, "-o", tmp_path / f"{name}.mp4", *extra, *PLAIN)
        assert result.returncode == 0, result.stderr
        videos[name] = _decode_rgb(tmp_path / f"{name}.mp4", width=128, height=128)
    red_to_green = {k: v[..., 0].mean() / v[..., 1].mean() for k, v in videos.items()}
    # Grey world balances the sequence: red and green alike. --wb 2,1,1 doubles red's gain over that.
    assert red_to_green["auto"] == pytest.approx(1.0, abs=0.12)
    assert red_to_green["red"] > 1.4 * red_to_green["auto"]
    for method in ("vng", "bilinear"):
        difference = np.abs(videos[method] - videos["auto"]).mean()
        assert 0.05 < difference < 12, method  # the same picture, demosaiced another way


def test_devignette_evens_out_the_corners(make_descent, tmp_path: Path) -> None:
    folder, _ = make_descent(vignetting=0.4, frames=48)
    ratios = {}
    for name, extra in {"plain": [], "devignette": ["--devignette"]}.items():
        result = run_cli("build", folder, "-o", tmp_path / f"{name}.mp4", *extra, *PLAIN)
        assert result.returncode == 0, result.stderr
        video = decode_video(tmp_path / f"{name}.mp4", width=128, height=128).astype(np.float64).mean(axis=0)
        corners = np.mean([video[:20, :20], video[:20, -20:], video[-20:, :20], video[-20:, -20:]])
        ratios[name] = corners / video[44:84, 44:84].mean()
    assert ratios["plain"] < 0.8  # the falloff is there in the frames
    assert abs(1 - ratios["devignette"]) < 0.5 * abs(1 - ratios["plain"])


def test_deflicker_without_stabilisation_corrects_the_flicker(make_descent, tmp_path: Path) -> None:
    folder, _ = make_descent(flicker=0.08, seed=11)
    jumps = {}
    for mode in ("on", "off"):
        result = run_cli("build", folder, "-o", tmp_path / f"{mode}.mp4", "--stabilise", "off", "--deflicker", mode,
                         "-q")
        assert result.returncode == 0, result.stderr
        video = decode_video(tmp_path / f"{mode}.mp4", width=128, height=128).astype(np.float64)
        brightness = np.log(video.mean(axis=(1, 2)))
        jumps[mode] = float(np.std(np.diff(brightness, 2)))  # frame-to-frame flicker, not the slow change
    assert jumps["on"] < 0.35 * jumps["off"]


def test_webm_carries_webvtt_subtitles(make_descent, tmp_path: Path) -> None:
    folder, _ = make_descent()
    out = tmp_path / "v.webm"
    result = run_cli("build", folder, "-o", out, "--codec", "av1", "--preset", "ultrafast",
                     "--telemetry", folder / "telemetry.csv", *PLAIN)
    assert result.returncode == 0, result.stderr
    info = probe_video(out)
    assert info["codec"] == "av1" and "Subtitle: webvtt" in info["text"]


def test_an_unexpected_error_is_one_line_and_exit_70(capsys: pytest.CaptureFixture[str]) -> None:
    from descent.cli import _run

    def broken() -> None:
        raise RuntimeError("a bug")

    with pytest.raises(typer.Exit) as stopped:
        _run(False, True, broken)
    assert stopped.value.exit_code == 70
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == ["descent: error: unexpected RuntimeError: a bug (run again with --debug for details)"]


@pytest.mark.parametrize("border", ["fill", "black"])
def test_a_wider_output_shows_the_whole_frame_stabilised(tmp_path: Path, border: str) -> None:
    """Square frames in a 16:9 video, stabilised: the whole frame is fitted in (its top and bottom
    rows too), as an unstabilised build does, and the sides are filled; they used to be cut off."""
    import cv2

    rng = np.random.default_rng(8)
    ground = cv2.GaussianBlur(rng.integers(60, 200, (256, 256)).astype(np.uint8), (0, 0), 2)
    ground[:6], ground[-6:] = 255, 0  # a white top edge and a black bottom edge
    folder = tmp_path / "frames"
    folder.mkdir()
    for k in range(12):  # a camera holding still, its noise a level or two
        frame = ground.copy()
        frame[6:-6] = np.clip(frame[6:-6] + rng.integers(-2, 3, (244, 256)), 0, 255).astype(np.uint8)
        cv2.imwrite(str(folder / f"f{k:02d}.png"), frame)
    out = tmp_path / "v.mp4"
    done = run_cli("build", folder, "-o", out, "--size", "320x180", "--border", border, "-q")
    assert done.returncode == 0, done.stderr
    video = decode_video(out, width=320, height=180).astype(int)
    middle = video[:, :, 100:220]
    assert middle[:, :2].mean() > 230 and middle[:, -2:].mean() < 25  # both edges of the frame are shown
    if border == "black":
        assert video[:, :, :60].mean() < 20 and video[:, :, -60:].mean() < 20  # beside it: black bars


def test_a_sequence_shorter_than_the_flicker_period_says_deflicker_left_it(make_descent, tmp_path: Path) -> None:
    # 20 frames shown at 30 fps are under one flicker period (a second of video): a swing cannot be
    # told from a change, the frames are left as they are, and the summary's "0.0% correction" alone
    # read as "no flicker found" to a new user whose frames flickered by 7%.
    folder, _ = make_descent(frames=20, flicker=0.07)
    done = run_cli("build", folder, "-o", tmp_path / "short.mp4", "--stabilise", "off")
    assert done.returncode == 0, done.stderr
    assert "deflicker left the frames as they are: 20 frames are fewer than one flicker period" in done.stderr
    longer_folder, _ = make_descent(frames=48, flicker=0.07)
    longer = run_cli("build", longer_folder, "-o", tmp_path / "long.mp4", "--stabilise", "off")
    assert longer.returncode == 0 and "deflicker left the frames" not in longer.stderr
