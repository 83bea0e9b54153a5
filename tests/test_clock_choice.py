"""Which clock orders the frames: modification times are the weakest, never used against a counter in the names,
and frames out of place against their counter are said loudly (or stop the run with strict)."""

from __future__ import annotations

import json
import logging
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import decode_video, run_cli

from descent.errors import DescentError
from descent.frames import FrameInfo, TimeSource
from descent.order import FEW_OUT_OF_PLACE, order_frames
from descent.sources.times import TimeOptions, assign_times, looks_like_a_copy

RNG = np.random.default_rng(14)
T0 = datetime(2021, 2, 18, 20, 38, 0, tzinfo=UTC).timestamp()


def _touch(folder: Path, names: list[str], mtimes: list[float]) -> list[FrameInfo]:
    """Empty files with the given modification times (metadata is all the clock choice reads)."""
    infos = []
    for name, mtime in zip(names, mtimes, strict=True):
        path = folder / name
        path.write_bytes(b"")
        os.utime(path, ns=(round(mtime * 1e9), round(mtime * 1e9)))
        infos.append(FrameInfo(path=path, width=8, height=8, channels=1, bit_depth=8))
    return infos


def _copy_times(n: int, *, per_file_s: float = 0.0004) -> list[float]:
    """Modification times of a plain `cp` of n files taken in a shuffled order: milliseconds apart."""
    order = RNG.permutation(n)
    return [T0 + 3600 + float(order[k]) * per_file_s * RNG.uniform(0.5, 1.5) for k in range(n)]


def _counter_order(timed_frames: list[FrameInfo]) -> list[str]:
    return [f.path.name for f in order_frames(assign_times(timed_frames, TimeOptions())).frames]


# --- modification times: refused when they look like a copy, or disagree with the counter --------------

def test_a_shuffled_copy_of_counter_names_is_in_counter_order(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    names = [f"{k}.jpg" for k in range(480)]
    infos = _touch(tmp_path, names, _copy_times(480))
    with caplog.at_level(logging.INFO, logger="descent"):
        timed = assign_times(infos, TimeOptions())
        sequence = order_frames(timed)
    assert timed.source is TimeSource.NONE
    assert [f.path.name for f in sequence.frames] == names  # 0.jpg, 1.jpg ... 479.jpg: by number, not by text
    assert [f.counter for f in sequence.frames] == list(range(480))
    assert any("a copy" in n and "counter order" in n for n in timed.notes)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]  # the counter is right: nothing to fear


def test_mtimes_seconds_apart_that_disagree_with_the_counter_lose_loudly(tmp_path: Path,
                                                                          caplog: pytest.LogCaptureFixture) -> None:
    # A slow copy (a network share: a second a file) passes for a camera, but not against the counter.
    order = RNG.permutation(60)
    infos = _touch(tmp_path, [f"IMG_{k:04d}.png" for k in range(60)], [T0 + float(order[k]) for k in range(60)])
    with caplog.at_level(logging.WARNING, logger="descent"):
        timed = assign_times(infos, TimeOptions())
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert timed.source is TimeSource.NONE
    assert _counter_order(infos) == [f"IMG_{k:04d}.png" for k in range(60)]
    assert "out of place against the counter" in warning and "--time-source mtime" in warning
    assert warning == timed.warnings[0]


def test_mtimes_that_agree_with_the_counter_are_capture_times(tmp_path: Path) -> None:
    # A camera's own card: files written as frames were taken, 3 a second with jitter and one gap.
    times = T0 + np.cumsum(RNG.uniform(0.25, 0.4, 40))
    times[25:] += 5.0
    infos = _touch(tmp_path, [f"DSC{k:05d}.png" for k in range(40)], times.tolist())
    sequence = order_frames(assign_times(infos, TimeOptions()))
    assert sequence.source is TimeSource.MTIME
    assert [f.time_s for f in sequence.frames] == pytest.approx(times.tolist(), abs=1e-6)
    assert len(sequence.gaps) == 1 and sequence.out_of_place == []


def test_a_copy_without_a_counter_is_in_name_order_with_a_warning(tmp_path: Path,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    names = [f"{word}.png" for word in ("crater", "dust", "ridge", "rock", "shadow", "site")]
    infos = _touch(tmp_path, names, _copy_times(6))
    with caplog.at_level(logging.WARNING, logger="descent"):
        timed = assign_times(infos, TimeOptions())
    assert timed.source is TimeSource.NONE
    assert [f.path.name for f in order_frames(timed).frames] == names
    (warning,) = [r.getMessage() for r in caplog.records]
    assert "a copy?" in warning and "natural name order" in warning and "--time-source mtime" in warning


def test_forced_mtimes_are_used_and_out_of_place_is_loud_or_stops(tmp_path: Path,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    infos = _touch(tmp_path, [f"{k}.png" for k in range(30)], _copy_times(30))
    forced = TimeOptions(source=TimeSource.MTIME)
    timed = assign_times(infos, forced)
    assert timed.source is TimeSource.MTIME
    with caplog.at_level(logging.WARNING, logger="descent"):
        sequence = order_frames(timed)
    assert len(sequence.out_of_place) > FEW_OUT_OF_PLACE
    (warning,) = [r.getMessage() for r in caplog.records]
    assert warning.startswith(f"{len(sequence.out_of_place)} of 30 frames are out of place")
    first = sequence.frames[sequence.out_of_place[0]].path
    assert f"(first: {first.name}, " in warning
    with pytest.raises(DescentError, match=r"--time-source none") as stopped:
        order_frames(timed, strict=True)
    message = str(stopped.value)
    assert message.startswith(f"{first}: ") and "\n" not in message


def test_name_times_against_the_counter_warn_whatever_the_source(tmp_path: Path,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    # Time stamps from a clock that jumped: the counter says the files are in another order.
    stamps = [datetime.fromtimestamp(T0 + s, UTC).strftime("%Y%m%dT%H%M%S") for s in (0, 1, 2, 6, 7, 8, 3, 4, 5, 9)]
    names = [f"cam_{stamp}Z_{k:03d}.png" for k, stamp in enumerate(stamps)]
    infos = _touch(tmp_path, names, [T0] * len(names))
    with caplog.at_level(logging.WARNING, logger="descent"):
        sequence = order_frames(assign_times(infos, TimeOptions()))
    assert sequence.source is TimeSource.NAME
    assert len(sequence.out_of_place) == 3
    assert [r.getMessage().split(" (first")[0] for r in caplog.records] == [
        "3 of 10 frames are out of place against the counter in their names when ordered by name times"]
    with pytest.raises(DescentError, match=r"cam_.*_00[3-9]\.png: 3 of 10 frames are out of place"):
        order_frames(assign_times(infos, TimeOptions()), strict=True)


def test_a_few_out_of_place_is_listed_but_not_loud(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    stamps = [datetime.fromtimestamp(T0 + s, UTC).strftime("%Y%m%dT%H%M%S") for s in (0, 1, 2, 4, 3, 5, 6)]
    infos = _touch(tmp_path, [f"cam_{s}Z_{k:03d}.png" for k, s in enumerate(stamps)], [T0] * 7)
    with caplog.at_level(logging.WARNING, logger="descent"):
        sequence = order_frames(assign_times(infos, TimeOptions()), strict=True)
    assert len(sequence.out_of_place) == 1 and not caplog.records


# --- what a copy looks like, swept over cameras and copies ----------------------------------------------

def test_copy_detection_over_cameras_and_copies() -> None:
    rng = np.random.default_rng(2024)
    worst_camera, worst_copy = 0.0, 0.0
    for _ in range(400):
        # Cameras: 0.3 to 30 frames a second, jitter up to 30% of the interval, sometimes gaps.
        n = int(rng.integers(2, 3000))
        interval = 1 / rng.uniform(0.3, 30)
        steps = interval * rng.uniform(0.7, 1.3, n - 1)
        steps[rng.random(n - 1) < 0.01] *= rng.uniform(2, 20)
        times = (T0 + np.concatenate([[0], np.cumsum(steps)])).tolist()
        assert looks_like_a_copy(times) is None, (n, interval)
        worst_camera = max(worst_camera, 1 / interval)
        # Copies: a file every 5 microseconds to 5 ms, in bursts (the page cache), taken in a shuffled order.
        n = int(rng.integers(3, 3000))
        per_file = 10 ** rng.uniform(-5.3, -2.3)
        steps = rng.exponential(per_file, n - 1)
        if rng.random() < 0.5:  # bursts within a millisecond, then a pause of tens of ms as the disk catches up
            steps = np.where(rng.random(n - 1) < 0.6, rng.uniform(0, 0.0009, n - 1), rng.uniform(0.01, 0.05, n - 1))
        times = rng.permutation(T0 + np.concatenate([[0], np.cumsum(steps)])).tolist()
        assert looks_like_a_copy(times) is not None, (n, per_file)
        worst_copy = max(worst_copy, float(np.median(steps)))
    print(f"fastest camera passed: {worst_camera:.1f} frames/s; slowest copy caught: median {1e3 * worst_copy:.2f} ms")


def test_copy_detection_edges() -> None:
    assert looks_like_a_copy([T0]) is None
    assert looks_like_a_copy([T0, T0 + 0.5]) is None
    assert looks_like_a_copy([T0, T0]) == "are mostly equal"
    assert looks_like_a_copy([T0 + k // 10 for k in range(40)]) == "are mostly equal"  # 2-second file systems too


# --- end to end ---------------------------------------------------------------------------------------

def _write_frames(folder: Path, n: int) -> None:
    """n counter-named frames whose brightness rises with the counter, each with its own mark (no duplicates)."""
    folder.mkdir()
    for k in range(n):
        frame = np.full((32, 48), 30 + round(190 * k / (n - 1)), np.uint8)
        frame[4 + (k % 6) * 4 : 8 + (k % 6) * 4, 4:12] = 255 - frame[0, 0]
        cv2.imwrite(str(folder / f"{k}.png"), frame)


@pytest.mark.slow
def test_a_shuffled_copy_builds_in_counter_order(tmp_path: Path) -> None:
    n = 480
    _write_frames(tmp_path / "copy", n)
    for k, mtime in enumerate(_copy_times(n)):
        os.utime(tmp_path / "copy" / f"{k}.png", ns=(round(mtime * 1e9), round(mtime * 1e9)))
    out = tmp_path / "v.mp4"
    result = run_cli("build", tmp_path / "copy", "-o", out, "--stabilise", "off", "--deflicker", "off", "--json",
                     "--report", tmp_path / "r.json", "--fps", "60", timeout=300)
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["time_source"] == "none" and report["out_of_place"] == []
    assert [Path(f["file"]).name for f in report["frames"]] == [f"{k}.png" for k in range(n)]
    assert "warning:" not in result.stderr
    means = decode_video(out, width=48, height=32)[:, 20:, 16:].mean(axis=(1, 2))  # away from the marks
    assert len(means) == n
    expected = 30 + 190 * np.arange(n) / (n - 1)
    assert np.abs(means - expected).max() < 6  # every frame where its counter puts it


@pytest.mark.slow
def test_out_of_place_through_the_cli_warns_and_strict_stops(tmp_path: Path) -> None:
    _write_frames(tmp_path / "frames", 12)
    for k in range(12):  # a slow copy in reverse: seconds apart, so only the counter gives it away
        os.utime(tmp_path / "frames" / f"{k}.png", (T0 + 12 - k, T0 + 12 - k))
    inspected = run_cli("inspect", tmp_path / "frames", "--json")
    assert inspected.returncode == 0, inspected.stderr
    assert json.loads(inspected.stdout)["time_source"] == "none"
    warnings = [line for line in inspected.stderr.splitlines() if "warning:" in line]
    assert len(warnings) == 1 and "11 of 12 frames out of place against the counter" in warnings[0]
    forced = run_cli("inspect", tmp_path / "frames", "--time-source", "mtime", "--json")
    assert forced.returncode == 0
    assert len(json.loads(forced.stdout)["out_of_place"]) == 11
    assert "11 of 12 frames are out of place" in forced.stderr


@pytest.mark.slow
def test_strict_stops_on_frames_out_of_place(tmp_path: Path) -> None:
    _write_frames(tmp_path / "frames", 12)
    for k in range(12):
        os.utime(tmp_path / "frames" / f"{k}.png", (T0 + 12 - k, T0 + 12 - k))
    stopped = run_cli("inspect", tmp_path / "frames", "--time-source", "mtime", "--strict")
    assert stopped.returncode == 1 and "Traceback" not in stopped.stderr
    (line,) = stopped.stderr.strip().splitlines()
    assert "11.png: 11 of 12 frames are out of place" in line and "--time-source none" in line


def test_copy_detection_is_cheap() -> None:
    times = _copy_times(10_000)
    start = time.perf_counter()
    assert looks_like_a_copy(times) is not None
    assert time.perf_counter() - start < 0.1
