"""The ffmpeg command, the encoder process, and what is left on disk when things go wrong."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pytest
from conftest import decode_video, probe_video

from descent.encode import EncodeConfig, VideoWriter, check_output, ffmpeg_args, find_ffmpeg
from descent.errors import EncodeError, UsageError


def test_h264_command_line() -> None:
    args = ffmpeg_args(ffmpeg="ffmpeg", width=256, height=128, colour=False, fps=30, output=Path("o.mp4"),
                       config=EncodeConfig())
    assert args == [
        "ffmpeg",
        "-hide_banner", "-nostats", "-loglevel", "error",  # quiet: only errors reach the drained stderr
        "-y",  # the target is our own temporary file
        "-f", "rawvideo",  # frames arrive as raw pixels on stdin...
        "-framerate", "30",  # ... at the output rate (timing is decided before encoding)
        "-pix_fmt", "gray",  # grey frames: a third of the bytes of BGR through the pipe
        "-s", "256x128",
        "-i", "pipe:",
        "-f", "mp4",  # the muxer is named: the temporary name must not decide it
        "-color_primaries", "bt709", "-color_trc", "bt709", "-colorspace", "bt709",  # tagged as converted
        "-crf", "18",  # visually lossless default
        "-movflags", "+faststart",  # index first: a browser plays it while downloading
        "-pix_fmt", "yuv420p",  # 4:2:0, the only layout every player decodes
        "-preset", "medium",
        "-vcodec", "libx264",
        "-vf", "scale=out_color_matrix=bt709:out_range=tv",  # BT.709 limited range, what players assume
        "o.mp4",
    ]


def test_h265_is_tagged_for_apple_players_and_ntsc_rate_is_exact() -> None:
    args = ffmpeg_args(ffmpeg="ffmpeg", width=64, height=64, colour=True, fps=29.97, output=Path("o.mp4"),
                       config=EncodeConfig(codec="h265", crf=24))
    assert args[args.index("-framerate") + 1] == "30000/1001"
    assert args[args.index("-pix_fmt") + 1] == "bgr24"
    assert args[args.index("-tag:v") + 1] == "hvc1"
    assert args[args.index("-crf") + 1] == "24"


def test_av1_preset_is_translated() -> None:
    args = ffmpeg_args(ffmpeg="ffmpeg", width=64, height=64, colour=False, fps=30, output=Path("o.mkv"),
                       config=EncodeConfig(codec="av1", preset="fast"))
    assert args[args.index("-vcodec") + 1] == "libsvtav1"
    assert args[args.index("-preset") + 1] == "8"
    assert "-movflags" not in args  # Matroska has no moov atom


def test_ffmpeg_lookup_order(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("DESCENT_FFMPEG", raising=False)
    bundled = find_ffmpeg()
    assert "imageio_ffmpeg" in bundled
    monkeypatch.setenv("DESCENT_FFMPEG", bundled)
    assert find_ffmpeg() == bundled
    with pytest.raises(EncodeError, match="--ffmpeg /no/such/ffmpeg: no such executable"):
        find_ffmpeg("/no/such/ffmpeg")
    monkeypatch.setenv("DESCENT_FFMPEG", str(tmp_path / "missing"))
    with pytest.raises(EncodeError, match="DESCENT_FFMPEG"):
        find_ffmpeg()


@pytest.mark.parametrize(("codec", "suffix", "expected"), [("h264", ".mp4", "h264"), ("h265", ".mp4", "hevc"),
                                                            ("av1", ".mkv", "av1"), ("prores", ".mov", "prores")])
def test_every_codec_encodes_a_real_video(tmp_path: Path, codec: str, suffix: str, expected: str) -> None:
    out = tmp_path / f"v{suffix}"
    ramp = np.tile(np.linspace(16, 235, 64, dtype=np.uint8), (48, 1))
    with VideoWriter(out, width=64, height=48, colour=False, fps=10, config=EncodeConfig(codec=codec)) as writer:
        for k in range(12):
            writer.write(np.roll(ramp, k, axis=1))
    info = probe_video(out)
    assert (info["codec"], info["width"], info["height"]) == (expected, 64, 48)
    frames = decode_video(out, width=64, height=48)
    assert len(frames) == 12
    assert np.abs(frames[5].astype(int) - np.roll(ramp, 5, axis=1)).mean() < 3


def test_repeat_writes_the_same_frame_several_times(tmp_path: Path) -> None:
    out = tmp_path / "r.mp4"
    with VideoWriter(out, width=32, height=32, colour=False, fps=10, config=EncodeConfig()) as writer:
        writer.write(np.full((32, 32), 40, np.uint8), repeat=3)
        writer.write(np.full((32, 32), 200, np.uint8), repeat=2)
    means = decode_video(out, width=32, height=32).mean(axis=(1, 2))
    assert np.allclose(means, [40, 40, 40, 200, 200], atol=2)


def test_error_inside_the_block_leaves_no_file(tmp_path: Path) -> None:
    out = tmp_path / "v.mp4"
    with pytest.raises(RuntimeError), VideoWriter(out, width=32, height=32, colour=False, fps=10,
                                                  config=EncodeConfig()) as writer:
        writer.write(np.zeros((32, 32), np.uint8))
        raise RuntimeError("a stage failed")
    assert list(tmp_path.iterdir()) == []


def test_failing_ffmpeg_reports_its_stderr_and_leaves_no_file(tmp_path: Path) -> None:
    # A real executable that behaves like an ffmpeg refusing its arguments.
    fake = tmp_path / "ffmpeg"
    fake.write_text("#!/bin/sh\necho 'Unknown encoder libx264' >&2\nexit 1\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    out = tmp_path / "v.mp4"
    with pytest.raises(EncodeError, match="Unknown encoder libx264"), VideoWriter(
            out, width=32, height=32, colour=False, fps=10, config=EncodeConfig(ffmpeg=str(fake))) as writer:
        for _ in range(200):  # enough to fill the pipe once ffmpeg has gone
            writer.write(np.zeros((32, 32), np.uint8))
    assert not out.exists()
    assert not any(p.name.endswith(".mp4") for p in tmp_path.iterdir())


def test_check_output(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"the folder .* does not exist"):
        check_output(tmp_path / "nope" / "v.mp4", "h264", overwrite=False)
    (tmp_path / "v.mp4").write_bytes(b"old")
    with pytest.raises(UsageError, match="exists; add --overwrite"):
        check_output(tmp_path / "v.mp4", "h264", overwrite=False)
    check_output(tmp_path / "v.mp4", "h264", overwrite=True)
    with pytest.raises(UsageError, match=r"prores goes in \.mov or \.mkv"):
        check_output(tmp_path / "v.mp4", "prores", overwrite=True)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write into any folder")
def test_unwritable_folder(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    with pytest.raises(UsageError, match="cannot write in"):
        check_output(locked / "v.mp4", "h264", overwrite=False)


def test_subtitle_mux_arguments() -> None:
    from descent.encode import subtitle_mux_args

    args = subtitle_mux_args(ffmpeg="ffmpeg", video=Path("v.mp4"), subtitles=Path("s.srt"), output=Path("o.mp4"))
    assert args[args.index("-i") + 1] == "v.mp4"  # the finished video ...
    assert args[args.index("-i", args.index("-i") + 1) + 1] == "s.srt"  # ... and the values as text
    assert args[args.index("-vcodec") + 1] == "copy"  # pictures copied, not encoded again
    assert args[args.index("-scodec") + 1] == "mov_text"  # the subtitle codec MP4 players read
    assert args[args.index("-map") : args.index("-map") + 4] == ["-map", "0:v", "-map", "1:s"]
    assert args[args.index("-movflags") + 1] == "+faststart"  # still playable while it downloads
    mkv = subtitle_mux_args(ffmpeg="ffmpeg", video=Path("v.mkv"), subtitles=Path("s.srt"), output=Path("o.mkv"))
    assert mkv[mkv.index("-scodec") + 1] == "srt" and "-movflags" not in mkv
