"""Video files in: probing without ffprobe, presentation times against a decode, the reader, and the CLI.

The videos are made here from generated frames with timestamps chosen at random (a variable frame
rate, with B-frames), so every time descent reports can be checked against the one written.
"""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import probe_video, run_cli

from descent.encode import find_ffmpeg
from descent.errors import DescentError
from descent.frames import FrameInfo, VideoFrameRef
from descent.normalise import NormaliseConfig, plan_normalisation
from descent.parallel import ordered_map
from descent.sources import video
from descent.sources.discover import discover
from descent.sources.images import read_pixels
from descent.sources.video import VideoReader, VideoStream, join_videos, parse_framecrc, parse_header
from descent.sources.video import probe_video as probe_stream
from descent.stabilise.analyse import measure_motion

FFMPEG = find_ffmpeg()
T0 = 1546482360.0  # 2019-01-03T02:26:00Z: the generated descent's first frame


def encode(frames: list[Path], pts_ms: list[int], out: Path, *, extra: tuple[str, ...] = (),
           codec: tuple[str, ...] = ("-c:v", "libx264", "-pix_fmt", "yuv420p", "-bf", "3")) -> Path:
    """Frames into a video whose presentation times are exactly `pts_ms` (milliseconds).

    The concat demuxer places each image at the sum of the durations before it; images read at 1000
    frames a second and a 1 ms track time base keep those sums exact (at the default 25 the times
    would be rounded to 40 ms).
    """
    lines = ["ffconcat version 1.0"]
    for frame, duration in zip(frames, [*np.diff(pts_ms), 100], strict=True):
        lines += [f"file '{frame.resolve()}'", "option framerate 1000", f"duration {duration / 1000:.3f}"]
    listing = out.with_suffix(".txt")
    listing.write_text("\n".join(lines) + "\n")
    timescale = ("-video_track_timescale", "1000") if out.suffix in (".mp4", ".mov") else ()
    subprocess.run([FFMPEG, "-v", "error", "-y", "-f", "concat", "-safe", "0", "-i", str(listing),
                    "-fps_mode", "passthrough", *codec, *timescale, *extra, str(out)], check=True)
    return out


def random_pts_ms(count: int, rng: np.random.Generator, *, low: int = 40, high: int = 250) -> list[int]:
    return [0, *np.cumsum(rng.integers(low, high, count - 1)).tolist()]


def decode_every_frame(path: Path, *, width: int, height: int, luma: bool = False) -> np.ndarray:
    """Every frame once, grey (conftest's decode_video keeps ffmpeg's default rate, which repeats frames of a
    variable-rate video to fill a constant one); `luma`: the Y plane as decoded, in the video range."""
    grey = ["-vf", "extractplanes=y"] if luma else ["-pix_fmt", "gray"]
    raw = subprocess.run([FFMPEG, "-v", "error", "-i", str(path), "-fps_mode", "passthrough", "-f", "rawvideo",
                          *grey, "pipe:"], capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, height, width)


def decoded_pts_s(path: Path) -> list[float]:
    """Where ffmpeg's decoder puts every frame (showinfo), as a player would."""
    log = subprocess.run([FFMPEG, "-hide_banner", "-i", str(path), "-map", "0:v:0", "-vf", "showinfo", "-f", "null",
                          "-"], capture_output=True, text=True, check=True).stderr
    return [float(t) for t in re.findall(r"pts_time:\s*(-?[\d.]+)", log)]


@pytest.fixture(scope="module")
def pictures(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """40 small frames, each unlike the others (its number drawn on noise)."""
    folder = tmp_path_factory.mktemp("pictures")
    rng = np.random.default_rng(5)
    paths = []
    for i in range(40):
        img = cv2.GaussianBlur((rng.random((64, 96)) * 255).astype(np.uint8), (5, 5), 0)
        cv2.putText(img, str(i), (10, 45), cv2.FONT_HERSHEY_SIMPLEX, 1.2, 255, 3)
        paths.append(folder / f"p{i:03d}.png")
        cv2.imwrite(str(paths[-1]), img)
    return paths


# --- parsing ------------------------------------------------------------------------------------


def test_framecrc_sorted_discarded_dropped_keyframes_found() -> None:
    # A cut made with -c copy: two packets before the edit list's start (flag 0x4), B-frames out of order.
    text = """#tb 0: 1/1000
#media_type 0: video
0,       -200,       -100,      100,     10, 0x1, F=0x5
0,       -100,          0,      100,     10, 0x1, F=0x4
0,          0,        100,      100,     10, 0x1
0,        100,        300,      100,     10, 0x1, F=0x0
0,        200,        200,      100,     10, 0x1, F=0x0
0,        300,        450,        1,     10, 0x1, F=0x0, S=1, 8
"""
    times = parse_framecrc(Path("x.mp4"), text)
    assert times.pts_s == (0.1, 0.2, 0.3, 0.45)
    assert times.keyframes == (0,)
    # The last packet says 1 tick (muxers that do not know): the usual interval instead.
    assert times.end_s == pytest.approx(0.55)


def test_framecrc_without_presentation_times_uses_decode_times() -> None:
    text = "#tb 0: 1001/30000\n0, 0, -9223372036854775808, 1, 5, 0x1\n0, 1, 1, 1, 5, 0x1, F=0x0\n" \
           "0, 2, -9223372036854775808, 1, 5, 0x1, F=0x0\n"
    times = parse_framecrc(Path("x.avi"), text)
    assert times.pts_s == pytest.approx((0, 1001 / 30000, 2002 / 30000))


def test_header_first_video_stream_and_creation_time() -> None:
    stderr = """Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'DJI_0001.MP4':
  Metadata:
    major_brand     : isom
    creation_time   : 2024-05-01T10:20:30.000000Z
  Duration: 00:00:10.00, start: 0.000000, bitrate: 1000 kb/s
  Stream #0:0[0x1](und): Video: mjpeg (Baseline), yuvj420p(pc, bt470bg/unknown/unknown), 160x120 (attached pic)
  Stream #0:1[0x2](und): Video: hevc (Main 10) (hvc1 / 0x31637668), yuv420p10le(tv, bt709), 3840x2160 (default)
    Metadata:
      creation_time   : 2030-01-01T00:00:00.000000Z
  Stream #0:2[0x3](und): Audio: aac (LC) (mp4a / 0x6134706D), 48000 Hz, stereo, fltp, 128 kb/s
  Stream #0:3[0x4](und): Data: none (tmcd / 0x64636D74)
"""
    header = parse_header(Path("DJI_0001.MP4"), stderr)
    assert (header.stream, header.codec, header.pix_fmt, header.width, header.height) == (
        1, "hevc", "yuv420p10le", 3840, 2160)
    assert header.creation_s == pytest.approx(1714558830.0)  # the container's, not the stream's
    assert header.others == ("cover picture", "audio", "data")


def _stream(name: str, pts: tuple[float, ...], end_s: float, creation_s: float | None) -> VideoStream:
    return VideoStream(file=Path(name), stream=0, codec="h264", pix_fmt="yuv420p", width=8, height=8, channels=1,
                       bit_depth=8, pts_s=pts, keyframes=(0,), end_s=end_s, creation_s=creation_s, other_streams=())


def test_parts_join_in_time() -> None:
    # By creation_time (not name) when every part has one; each part starts where the last one ended,
    # unless creation_time says the recording paused.
    a = _stream("b_first.mp4", (0.0, 0.5), 1.0, 1000.0)
    b = _stream("a_second.mp4", (0.0, 0.5), 1.0, 1001.0)  # whole seconds: 1001 is a rounding of 1001.0
    c = _stream("c_third.mp4", (0.0,), 0.5, 1010.0)  # 8 s after b ends: a pause
    joined = join_videos([b, a, c])
    times = [f.video.time_s for f in joined.frames if f.video]
    assert times == [1000.0, 1000.5, 1001.0, 1001.5, 1010.0]
    assert [f.path.name for f in joined.frames] == ["b_first.mp4"] * 2 + ["a_second.mp4"] * 2 + ["c_third.mp4"]
    assert all(f.video and f.video.utc for f in joined.frames)
    assert any("pause" in note for note in joined.notes)
    # Without creation_time everywhere: name order, from 0.
    untimed = join_videos([b, _stream("z.mp4", (0.0, 0.25), 0.5, None)])
    assert [f.video.time_s for f in untimed.frames if f.video] == [0.0, 0.5, 1.0, 1.25]
    assert len({f.name for f in untimed.frames}) == 4  # every frame its own name


def test_grey_parts_in_the_video_range_and_out_of_it_are_refused() -> None:
    """The video range is stretched by the one tone curve of the sequence: every 8-bit grey part in it, or
    none. A colour part beside a grey one is fine (ffmpeg converts colour to 0-255 itself)."""
    tv = _stream("a.mp4", (0.0,), 0.5, None)
    full = dataclasses.replace(_stream("b.mp4", (0.0,), 0.5, None), pix_fmt="yuvj420p", full_range=True)
    colour = dataclasses.replace(_stream("c.mp4", (0.0,), 0.5, None), channels=3)
    assert tv.video_range and not full.video_range and not colour.video_range
    assert join_videos([tv, tv]).frames[0].video.video_range  # type: ignore[union-attr]
    assert len(join_videos([tv, colour]).frames) == 2
    with pytest.raises(DescentError, match=r"a\.mp4 is grey video in the video range .* b\.mp4 is grey in the full"):
        join_videos([tv, full])


# --- probing and reading real files -----------------------------------------------------------------


@pytest.mark.parametrize("kind", ["mp4", "mkv", "webm", "gif", "avi", "offset", "cut"])
def test_probe_times_match_the_decoder(kind: str, pictures: list[Path], tmp_path: Path) -> None:
    """The times read from the packets, without decoding, are where the decoder shows each frame."""
    rng = np.random.default_rng(len(kind))
    pts = random_pts_ms(len(pictures), rng)
    codecs = {"webm": ("-c:v", "libvpx-vp9", "-b:v", "300k"), "gif": (), "avi": ("-c:v", "mpeg4", "-bf", "0")}
    suffix = {"offset": "mp4", "cut": "mp4"}.get(kind, kind)
    path = encode(pictures, pts, tmp_path / f"v.{suffix}", **({"codec": codecs[kind]} if kind in codecs else {}))
    if kind in ("offset", "cut"):
        # A start offset (an empty edit), or a cut mid-GOP whose edit list discards the packets before it.
        edited = tmp_path / "edited.mp4"
        edit = ["-output_ts_offset", "2"] if kind == "offset" else ["-ss", "1.3"]
        args = [*edit, "-i", str(path)] if kind == "cut" else ["-i", str(path), *edit]
        subprocess.run([FFMPEG, "-v", "error", "-y", *args, "-c", "copy", str(edited)], check=True)
        path = edited
    stream = probe_stream(path)
    decoded = decoded_pts_s(path)
    assert stream.frames == len(decoded)
    assert np.abs(np.array(stream.pts_s) - decoded).max() < 0.001
    if kind in ("mp4", "mkv", "avi"):
        assert np.abs(np.array(stream.pts_s) - np.array(pts) / 1000).max() < 0.001  # as written
    assert (stream.width, stream.height, stream.channels, stream.bit_depth) == (96, 64, 1, 8)


def test_reader_gives_every_frame_in_any_order(pictures: list[Path], tmp_path: Path) -> None:
    path = encode(pictures, random_pts_ms(len(pictures), np.random.default_rng(1)), tmp_path / "v.mp4",
                  codec=("-c:v", "libx264", "-pix_fmt", "yuv420p", "-bf", "3", "-g", "8"))
    expected = decode_every_frame(path, width=96, height=64, luma=True)
    assert len(expected) == len(pictures)
    stream = probe_stream(path)
    assert stream.video_range
    assert len(stream.keyframes) > 3
    reader = VideoReader(stream)
    reader.window_frames = 8  # a short window, so that going back in 40 frames restarts the decoder
    try:
        order = [*range(10), 9, 8, 3, 30, 31, 2, 39, 17, 16, 0]  # ahead, again, backwards, far ahead (a seek)
        for index in order:
            assert np.array_equal(reader.read(index), expected[index]), index
        assert 1 < reader.starts < len(order)
        # From worker threads, as ordered_map calls it: each frame its own, whatever the interleaving.
        infos = join_videos([stream]).frames
        assert all(info.video is not None and info.video.video_range for info in infos)
        got = list(ordered_map(read_pixels, infos, workers=3))
        assert all(np.array_equal(g, e) for g, e in zip(got, expected, strict=True))
        # Developed, the video range is stretched to 0-255 as ffmpeg's own conversion to gray does it.
        plan = plan_normalisation(infos, NormaliseConfig(defects=False), workers=1, read=read_pixels)
        assert plan.video_range
        gray = decode_every_frame(path, width=96, height=64)
        assert all(np.array_equal(plan.develop(g, colour=False), e) for g, e in zip(got, gray, strict=True))
        assert all(np.array_equal(plan.analysis_grey(g), e) for g, e in zip(got[:5], gray, strict=False))
        with pytest.raises(Exception, match="no frame 40"):
            reader.read(40)
    finally:
        reader.close()
        video.close_videos()


def test_colour_and_depth_follow_the_source(pictures: list[Path], tmp_path: Path) -> None:
    colour = tmp_path / "colour.mkv"
    subprocess.run([FFMPEG, "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=64x48:rate=10", "-frames:v", "12",
                    "-c:v", "ffv1", "-pix_fmt", "yuv444p10le", str(colour)], check=True)
    stream = probe_stream(colour)
    assert (stream.channels, stream.bit_depth, stream.out_pix_fmt) == (3, 16, "bgr48le")
    info = FrameInfo(path=colour, width=64, height=48, channels=3, bit_depth=16,
                     video=VideoFrameRef(stream=stream.stream, index=5, pts_s=0.5, time_s=0.5, utc=False))
    pixels = read_pixels(info)
    assert pixels.shape == (48, 64, 3) and pixels.dtype == np.uint16 and pixels.max() > 255
    video.close_videos()


# --- through the CLI ------------------------------------------------------------------------------


@pytest.mark.slow
def test_split_variable_rate_descent_builds_at_its_presentation_times(make_descent, tmp_path: Path) -> None:
    """A generated descent as a variable-rate MP4 in two parts with creation times: each frame's time is
    its presentation time, the video is stabilised and carries the HUD; inspect reports the parts."""
    folder, truth = make_descent()
    frames = [folder / f["file"] for f in sorted(truth["frames"], key=lambda f: f["time_s"])]
    pts = random_pts_ms(len(frames), np.random.default_rng(11), low=50, high=110)  # within the log
    pts[30:] = [t + 600 for t in pts[30:]]  # a gap, that inspect must see
    half = len(frames) // 2
    first, second = pts[:half], [t - pts[half] for t in pts[half:]]
    # The mp4 muxer gives the last frame 1 tick: a part ends one usual interval after its last frame.
    start_2 = first[-1] + int(np.median(np.diff(first)))
    expected_ms = [*first, *(start_2 + t for t in second)]
    part1 = encode(frames[:half], first, tmp_path / "DJI_0001.MP4",
                   extra=("-metadata", "creation_time=2019-01-03T02:26:00Z"))
    created_2 = f"2019-01-03T02:26:{start_2 // 1000:02d}Z"  # whole seconds, as cameras write it
    part2 = encode(frames[half:], second, tmp_path / "DJI_0002.MP4", extra=("-metadata", f"creation_time={created_2}"))
    out, report = tmp_path / "landing.mp4", tmp_path / "r.json"
    result = run_cli("build", part2, part1, "-o", out, "--report", report, "--telemetry", folder / "telemetry.csv",
                     "--json", timeout=300)
    assert result.returncode == 0, result.stderr
    summary = json.loads(report.read_text())
    assert summary["time_source"] == "video"
    times = [f["time_s"] for f in summary["frames"]]
    assert len(times) == len(frames)
    assert np.abs(np.array(times) - T0 - np.array(expected_ms) / 1000).max() < 0.001
    assert [f["file"] for f in summary["frames"]][half - 1:half + 1] == [f"{part1}#{half - 1:06d}", f"{part2}#000000"]
    assert summary["stabilisation"]["mode"] == "lock"
    assert summary["altitude"]["frames_with_altitude"] == len(frames)
    assert summary["output"]["frames"] == len(frames)
    probed = probe_video(out)
    assert (probed["width"], probed["height"]) == (128, 128)

    inspected = run_cli("inspect", part1, part2, "--json")
    assert inspected.returncode == 0, inspected.stderr
    listing = json.loads(inspected.stdout)
    assert listing["images_found"] == len(frames) and listing["time_source"] == "video"
    assert len(listing["gaps"]) == 1
    assert listing["sizes"] == {"128x128": len(frames)} and listing["bits_used"] <= 8
    assert listing["start"].startswith("2019-01-03T02:26:00")


@pytest.mark.parametrize("suffix", [".gif", ".mkv"])
def test_gif_and_mkv_build(suffix: str, make_descent, tmp_path: Path) -> None:
    folder, truth = make_descent()
    frames = [folder / f["file"] for f in sorted(truth["frames"], key=lambda f: f["time_s"])][:20]
    pts = [round(1000 * (f["time_s"] - T0)) for f in sorted(truth["frames"], key=lambda f: f["time_s"])][:20]
    if suffix == ".gif":
        pts = [10 * round(t / 10) for t in pts]  # GIF delays are hundredths of a second
    source = encode(frames, pts, tmp_path / f"descent{suffix}", codec=() if suffix == ".gif" else (
        "-c:v", "libx264", "-pix_fmt", "yuv420p"))
    out = tmp_path / "landing.mp4"
    result = run_cli("build", source, "-o", out, "--stabilise", "off", "--realtime", "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["frames_used"] == 20 and summary["time_source"] == "video"
    # Real time follows the presentation times: the video lasts as long as the frames span (and one interval).
    span_s = (pts[-1] + np.median(np.diff(pts))) / 1000
    assert probe_video(out)["duration_s"] == pytest.approx(span_s, abs=0.1)


def test_video_beside_frames_is_skipped_named_together_refused(make_descent, tmp_path: Path) -> None:
    folder, _ = make_descent()
    frames = sorted(folder.glob("*.png"))
    preview = folder.parent / "preview-folder"
    preview.mkdir(exist_ok=True)
    for frame in frames[:5]:
        (preview / frame.name).write_bytes(frame.read_bytes())
    clip = encode(frames[:5], [0, 100, 200, 300, 400], preview / "preview.mp4")
    found = discover([str(preview)])
    assert len(found.images) == 5 and clip in found.skipped and not found.videos
    assert discover([str(clip)]).videos == [clip]
    result = run_cli("inspect", clip, frames[0])
    assert result.returncode == 2 and "not both" in result.stderr and "Traceback" not in result.stderr
    forced = run_cli("inspect", clip, "--time-source", "mtime")
    assert forced.returncode == 2 and "presentation times" in forced.stderr


def test_given_ffmpeg_decodes_the_video_too(pictures: list[Path], tmp_path: Path) -> None:
    """--ffmpeg is the one ffmpeg of a build: the probe and the decode of a video input run it, not only the encode."""
    source = encode(pictures[:12], [100 * i for i in range(12)], tmp_path / "clip.mp4")
    calls = tmp_path / "calls.log"
    wrapper = tmp_path / "my-ffmpeg"
    wrapper.write_text(f'#!/bin/sh\necho "$*" >> "{calls}"\nexec "{FFMPEG}" "$@"\n')
    wrapper.chmod(0o755)
    out = tmp_path / "landing.mp4"
    result = run_cli("build", source, "-o", out, "--stabilise", "off", "--ffmpeg", wrapper)
    assert result.returncode == 0, result.stderr
    runs = calls.read_text().splitlines()
    assert any("framecrc" in run for run in runs), runs  # the probe of the presentation times
    assert any("-f rawvideo pipe:1" in run and str(source) in run for run in runs), runs  # the decode
    assert any(str(out.parent) in run for run in runs), runs  # the encode
    assert len(decode_every_frame(out, width=96, height=64)) >= 12


def test_full_range_grey_video_is_not_stretched_again(pictures: list[Path], tmp_path: Path) -> None:
    """A grey picture in full-range YUV (yuvj420p: MJPEG, many phones) is already 0-255: read as it is."""
    path = encode(pictures[:6], [100 * i for i in range(6)], tmp_path / "full.mp4",
                  codec=("-c:v", "libx264", "-pix_fmt", "yuvj420p"))
    stream = probe_stream(path)
    assert stream.full_range and stream.channels == 1 and not stream.video_range
    infos = join_videos([stream]).frames
    plan = plan_normalisation(infos, NormaliseConfig(defects=False), workers=1, read=read_pixels)
    gray = decode_every_frame(path, width=96, height=64)
    developed = [plan.develop(read_pixels(info), colour=False) for info in infos]
    assert all(np.array_equal(d, g) for d, g in zip(developed, gray, strict=True))
    video.close_videos()


def test_the_motion_pass_on_two_workers_decodes_the_video_about_once(pictures: list[Path], tmp_path: Path) -> None:
    """The motion pass's workers take runs of 16 frames each, so they ask 16 to 32 frames apart: the window
    of frames kept serves both, and the decoder is not restarted for every frame (it was: 104 starts for
    300 frames, each decoding from the one keyframe at the start)."""
    frames = (pictures * 3)[:120]
    path = encode(frames, [40 * i for i in range(len(frames))], tmp_path / "long.mp4",
                  codec=("-c:v", "libx264", "-pix_fmt", "yuv420p", "-g", "1000"))
    infos = join_videos([probe_stream(path)]).frames
    measure_motion(infos, user_mask=None, workers=2, progress=lambda items, total: iter(items))
    assert video.reader_for(path).starts <= 3
    video.close_videos()
