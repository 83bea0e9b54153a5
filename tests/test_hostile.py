"""Bad inputs and faults, as a hostile tester would try them, through the real CLI.

Every case runs under a time limit and checks what the README's Errors section promises: the
exit code of its table; one line on stderr that names the file and says what to do; no
traceback; nothing left at or beside the output on failure; every file that was there before,
unchanged; no scratch folder left in the temporary directory.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest
from synthetic_descent import DescentSpec, generate

TINY = DescentSpec(frames=24, size_px=64, start_altitude_m=400, hover_altitude_m=60, end_altitude_m=20, seed=3)


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.strip()]

    @property
    def error(self) -> str:
        errors = [line for line in self.lines if line.startswith("descent: error: ")]
        assert len(errors) == 1, self.stderr
        return errors[0]


@pytest.fixture(scope="module")
def descent_frames(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tiny")
    generate(folder, TINY)
    return folder


class Place:
    """A working folder with a copy of the frames, a private temporary directory, and checksums of both."""

    def __init__(self, root: Path, frames: Path) -> None:
        self.root = root
        self.frames = root / "frames"
        shutil.copytree(frames, self.frames)
        self.telemetry = self.frames / "telemetry.csv"
        self.tmp = root / "tmp"
        self.tmp.mkdir()
        self.before = self.checksums()

    def checksums(self) -> dict[Path, str]:
        return {p: hashlib.sha1(p.read_bytes()).hexdigest() for p in sorted(self.root.rglob("*"))
                if p.is_file() and not p.is_symlink() and self.tmp not in p.parents}

    def run(self, *args: str | Path, timeout: float = 60, env: dict[str, str] | None = None) -> Run:
        start = time.monotonic()
        done = subprocess.run([sys.executable, "-m", "descent", *map(str, args)], capture_output=True, text=True,
                              timeout=timeout, cwd=self.root, stdin=subprocess.DEVNULL,
                              env={**os.environ, "TMPDIR": str(self.tmp), **(env or {})})
        return Run(done.returncode, done.stdout, done.stderr, time.monotonic() - start)

    def assert_untouched(self, *, new: tuple[Path, ...] = ()) -> None:
        """Every file that was there is unchanged, nothing else appeared (but `new`), no scratch is left."""
        after = self.checksums()
        changed = [p for p, digest in self.before.items() if after.get(p) != digest]
        appeared = [p for p in after if p not in self.before and p not in new]
        assert not changed and not appeared, (changed, appeared)
        assert list(self.tmp.iterdir()) == []


def _fails(run: Run, code: int, *words: str, limit_s: float = 20) -> None:
    assert run.returncode == code, run.stderr
    assert "Traceback" not in run.stderr and "Error:" not in run.stderr.replace("descent: error:", "")
    line = run.error
    for word in words:
        assert word in line, line
    assert run.seconds < limit_s, f"took {run.seconds:.1f} s to refuse"


@pytest.fixture
def place(tmp_path: Path, descent_frames: Path) -> Place:
    return Place(tmp_path, descent_frames)


# --- lost or wrong output --------------------------------------------------------------------------


def test_report_onto_the_video_is_refused(place: Place) -> None:
    _fails(place.run("build", place.frames, "-o", "v.mp4", "--report", "v.mp4", "-q"), 2, "v.mp4", "--report")
    place.assert_untouched()


def test_values_csv_onto_the_telemetry_is_refused(place: Place) -> None:
    run = place.run("build", place.frames, "-o", "v.mp4", "--telemetry", place.telemetry, "--telemetry-out",
                    place.telemetry, "-q")
    _fails(run, 2, "telemetry.csv", "input")
    place.assert_untouched()


def test_report_onto_an_input_frame_is_refused(place: Place) -> None:
    frame = sorted(place.frames.glob("*.png"))[3]
    _fails(place.run("build", place.frames, "-o", "v.mp4", "--report", frame, "-q"), 2, frame.name, "input")
    place.assert_untouched()


def test_plot_onto_the_log_is_refused(place: Place) -> None:
    _fails(place.run("telemetry", place.telemetry, "--plot", place.telemetry), 2, "telemetry.csv")
    place.assert_untouched()


def test_a_second_build_to_the_same_output_refuses_at_once(place: Place) -> None:
    stuck = _fake_ffmpeg(place, "exec sleep 600")  # holds the first build in its encoding step
    first = subprocess.Popen([sys.executable, "-m", "descent", "build", str(place.frames), "-o", "v.mp4", "-q",
                              "--ffmpeg", str(stuck)], cwd=place.root, stderr=subprocess.PIPE, text=True,
                             env={**os.environ, "TMPDIR": str(place.tmp)})
    try:
        deadline = time.monotonic() + 30
        while not list(place.root.glob(".v.*.partial.mp4")) and time.monotonic() < deadline:
            time.sleep(0.02)
        second = place.run("build", place.frames, "-o", "v.mp4", "-q", "--overwrite")
        _fails(second, 2, "v.mp4", "another descent", limit_s=10)
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=60)
    place.assert_untouched()


# --- side outputs checked first ----------------------------------------------------------------------


@pytest.mark.parametrize("option", ["--telemetry-out", "--report", "--motion"])
def test_a_side_output_in_a_missing_folder_is_refused_before_any_work(place: Place, option: str) -> None:
    run = place.run("build", place.frames, "-o", "v.mp4", "--telemetry", place.telemetry, option,
                    "/nonexistent/side.csv", "-q")
    _fails(run, 2, "/nonexistent", "create it", limit_s=10)
    place.assert_untouched()


# --- silent surprises ---------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["0", "-2", "nan"])
def test_speed_must_be_above_zero(place: Place, value: str) -> None:
    _fails(place.run("build", place.frames, "-o", "v.mp4", "--speed", value, "-q"), 2, "--speed")
    place.assert_untouched()


def test_rounding_the_size_is_said(place: Place) -> None:
    run = place.run("build", place.frames, "-o", "v.mp4", "--size", "127x93", "--stabilise", "off", "-q", "--json")
    assert run.returncode == 0, run.stderr
    assert any("127x93" in line and "126x92" in line for line in run.lines), run.stderr
    place.assert_untouched(new=(place.root / "v.mp4",))


def test_a_constant_sequence_is_an_error(place: Place) -> None:
    blank = place.root / "cap"
    blank.mkdir()
    for k in range(10):
        cv2.imwrite(str(blank / f"f_{k:03d}.png"), np.zeros((64, 64), np.uint8))
    place.before = place.checksums()
    _fails(place.run("build", blank, "-o", "v.mp4", "-q"), 1, "same pixels", "--keep-duplicates", limit_s=30)
    place.assert_untouched()


def test_telemetry_covering_no_frame_is_an_error(place: Place) -> None:
    late = place.root / "late.csv"  # the same profile, a year later than the frames
    rows = place.telemetry.read_text().splitlines()
    late.write_text("\n".join([rows[0], *(row.replace("2019-", "2020-", 1) for row in rows[1:])]) + "\n")
    place.before = place.checksums()
    run = place.run("build", place.frames, "-o", "v.mp4", "--telemetry", late, "--time-offset", "0", "-q")
    _fails(run, 1, "late.csv", "covers none", limit_s=40)
    place.assert_untouched()


# --- hangs, crashes, tracebacks ---------------------------------------------------------------------


def test_a_huge_size_is_refused_at_once(place: Place) -> None:
    _fails(place.run("build", place.frames, "-o", "v.mp4", "--size", "99999x99999", "-q"), 2, "99999x99999",
           "--size", limit_s=10)
    place.assert_untouched()


def _fake_ffmpeg(place: Place, body: str) -> Path:
    script = place.root / "fake-ffmpeg"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(0o755)
    place.before = place.checksums()
    return script


def test_an_ffmpeg_that_stops_reading_is_stopped(place: Place) -> None:
    fake = _fake_ffmpeg(place, "exec sleep 600")
    run = place.run("build", place.frames, "-o", "v.mp4", "--ffmpeg", fake, "--stabilise", "off", "-q",
                    env={"DESCENT_ENCODER_TIMEOUT_S": "2"}, timeout=60)
    _fails(run, 1, "ffmpeg took no frame", limit_s=40)
    place.assert_untouched()


def test_an_ffmpeg_that_writes_nothing_is_an_error(place: Place) -> None:
    fake = _fake_ffmpeg(place, "cat > /dev/null; exit 0")
    run = place.run("build", place.frames, "-o", "v.mp4", "--ffmpeg", fake, "--stabilise", "off", "-q")
    _fails(run, 1, "without writing", limit_s=40)
    place.assert_untouched()


@pytest.mark.parametrize("name", ["SIGHUP", "SIGTERM", "SIGINT"])
def test_a_signal_cleans_up(place: Place, name: str) -> None:
    process = subprocess.Popen([sys.executable, "-m", "descent", "build", str(place.frames), "-o", "v.mp4",
                                "--preset", "veryslow", "-j", "1"], cwd=place.root, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "TMPDIR": str(place.tmp)},
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 30
    while not list(place.root.glob(".v.*.partial.mp4")) and time.monotonic() < deadline:
        time.sleep(0.02)  # until encoding has begun: the scratch store and the partial video exist
    process.send_signal(getattr(signal, name))
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130 and "interrupted" in stderr and "Traceback" not in stderr
    place.assert_untouched()


def test_an_empty_motion_file_is_one_line(place: Place) -> None:
    motion = place.root / "m.json"
    motion.write_text("[]")
    place.before = place.checksums()
    _fails(place.run("build", place.frames, "-o", "v.mp4", "--motion", motion, "-q"), 1, "m.json", "delete it")
    place.assert_untouched()


# --- unclear messages, wrong exit codes ---------------------------------------------------------------


def test_an_output_that_is_a_folder(place: Place) -> None:
    (place.root / "out.mp4").mkdir()
    place.before = place.checksums()
    _fails(place.run("build", place.frames, "-o", "out.mp4", "-q"), 2, "out.mp4", "folder")
    place.assert_untouched()


def test_an_output_where_nothing_can_be_written(place: Place) -> None:
    _fails(place.run("build", place.frames, "-o", "/proc/x.mp4", "-q"), 2, "/proc", "cannot write", limit_s=10)
    place.assert_untouched()


@pytest.mark.parametrize(("option", "value"), [("--crf", "-5"), ("--preset", "nonsense"), ("--fps", "nan"),
                                               ("--fps", "0"), ("--codec", "mpeg2"), ("--scale", "nan"),
                                               ("--scale", "inf"), ("--scale", "0"), ("--gamma", "nan"),
                                               ("--time-offset", "soon")])
def test_bad_options_are_usage_errors(place: Place, option: str, value: str) -> None:
    _fails(place.run("build", place.frames, "-o", "v.mp4", option, value, "-q"), 2, option, limit_s=10)
    place.assert_untouched()


def test_a_linked_sub_folder_is_followed(place: Place) -> None:
    nest = place.root / "nest"
    nest.mkdir()
    (nest / "linked").symlink_to(place.frames, target_is_directory=True)
    run = place.run("inspect", nest, "--recursive", "-q", "--json")
    assert run.returncode == 0, run.stderr
    assert '"images_found": 24' in run.stdout


def test_binary_telemetry_is_one_short_line(place: Place) -> None:
    binary = place.root / "log.bin"
    binary.write_bytes(bytes(range(256)) * 8)
    place.before = place.checksums()
    run = place.run("telemetry", binary)
    assert run.returncode in (1, 2) and len(run.error) < 300 and "Traceback" not in run.stderr
    place.assert_untouched()


def test_header_only_telemetry_says_there_are_no_rows(place: Place) -> None:
    header = place.root / "empty.csv"
    header.write_text("time,altitude_m\n")
    place.before = place.checksums()
    run = place.run("telemetry", header)
    assert run.returncode in (1, 2) and "no data rows" in run.error and "--time-format" not in run.error


def test_click_usage_errors_are_descent_lines(place: Place) -> None:
    run = place.run("build", "-o", "v.mp4")
    _fails(run, 2, "Missing argument")
    assert len(run.lines) == 1


def test_the_plot_is_written_in_the_format_its_name_says(place: Place) -> None:
    run = place.run("telemetry", place.telemetry, "--plot", "p.jpg")
    assert run.returncode == 0, run.stderr
    assert (place.root / "p.jpg").read_bytes()[:2] == b"\xff\xd8"  # JPEG, not PNG bytes
    again = place.run("telemetry", place.telemetry, "--plot", "p.jpg")
    _fails(again, 2, "p.jpg", "--overwrite")


# --- what was handled already, kept under the same rules --------------------------------------------


def test_an_empty_folder(place: Place) -> None:
    (place.root / "empty").mkdir()
    _fails(place.run("build", place.root / "empty", "-o", "v.mp4", "-q"), 1, "empty", "no files")
    place.assert_untouched()


def test_garbage_and_truncated_frames_are_skipped(place: Place) -> None:
    frames = sorted(place.frames.glob("*.png"))
    frames[2].write_bytes(frames[2].read_bytes()[:200])
    (place.frames / "zz_garbage.png").write_bytes(os.urandom(3000))
    place.before = place.checksums()
    run = place.run("build", place.frames, "-o", "v.mp4", "-q", "--stabilise", "off")
    assert run.returncode == 0, run.stderr
    assert sum("skipped" in line for line in run.lines) == 2 and "Traceback" not in run.stderr
    place.assert_untouched(new=(place.root / "v.mp4",))


def test_an_existing_output_needs_overwrite(place: Place) -> None:
    (place.root / "v.mp4").write_bytes(b"an old video")
    place.before = place.checksums()
    _fails(place.run("build", place.frames, "-o", "v.mp4", "-q"), 2, "v.mp4", "--overwrite")
    place.assert_untouched()


def _reading_from(pid: int, folder: Path) -> bool:
    """Whether the process has a file of `folder` open (Linux's /proc)."""
    try:
        return any(os.readlink(fd).startswith(str(folder)) for fd in Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return False


def test_interrupted_inspect_says_nothing_was_written(place: Place) -> None:
    many = place.root / "many"  # enough frames that inspect is still reading when the signal comes
    many.mkdir()
    rng = np.random.default_rng(5)
    for k in range(400):
        cv2.imwrite(str(many / f"f_{k:04d}.png"), rng.integers(0, 255, (256, 256), np.uint8))
    process = subprocess.Popen([sys.executable, "-m", "descent", "inspect", str(many), "-j", "1"],
                               cwd=place.root, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                               env={**os.environ, "TMPDIR": str(place.tmp)})
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not _reading_from(process.pid, many):
        time.sleep(0.005)  # until it is reading the frames: the signal then comes in the middle of the work
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=30)
    if process.returncode == 0:
        pytest.skip("inspect finished before the signal")
    assert process.returncode == 130 and "nothing was written" in stderr and "video" not in stderr


def test_a_signal_after_the_work_keeps_the_true_exit_code(tmp_path: Path) -> None:
    # A job that has finished and said so, killed while Python shuts down, must not look killed to its
    # scheduler: the late signal exits at once, with the code the work earned and its output flushed.
    script = ("import os, signal, sys, time\n"
              "from descent.cli import _exit_at_once_on_signals\n"
              "print('summary')\n"
              "_exit_at_once_on_signals(3)\n"
              "os.kill(os.getpid(), signal.SIGTERM)\n"
              "time.sleep(30)\n")
    run = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert run.returncode == 3 and run.stdout == "summary\n"


def test_a_full_disk_is_one_line_and_leaves_nothing(place: Place) -> None:
    disk = place.root / "small-disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24k", "tmpfs", str(disk)], capture_output=True).returncode:
        pytest.skip("cannot mount a small filesystem here (needs root)")
    try:
        run = place.run("build", place.frames, "-o", disk / "v.mp4", "--stabilise", "off", "--crf", "0",
                        "--preset", "ultrafast", "-q")
        _fails(run, 1, "ffmpeg", limit_s=60)
        assert list(disk.iterdir()) == []  # no partial video, no lock
    finally:
        subprocess.run(["umount", str(disk)], check=True)
    place.assert_untouched()


def test_ctrl_c_while_the_subtitles_are_added_leaves_nothing(place: Place) -> None:
    # The real ffmpeg encodes; the second run (adding the subtitle track) hangs until the signal.
    from descent.encode import find_ffmpeg

    marker = place.root / "muxing-started"
    fake = _fake_ffmpeg(place, f'case "$*" in *pipe:*) exec "{find_ffmpeg()}" "$@";; esac\n'
                               f'touch "{marker}"; exec sleep 600')
    process = subprocess.Popen([sys.executable, "-m", "descent", "build", str(place.frames), "-o", "v.mp4", "-q",
                                "--telemetry", str(place.telemetry), "--ffmpeg", str(fake), "--stabilise", "off"],
                               cwd=place.root, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "TMPDIR": str(place.tmp)},
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 60
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.exists(), "the subtitle step never began"
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130 and "Traceback" not in stderr
    marker.unlink()
    place.assert_untouched()
