"""Frames decoded once: the scratch store between the passes, its bounds, and a build that uses it."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from conftest import decode_video, run_cli

import descent.sources.decoded as decoded
from descent.build import BuildConfig, RunConfig, SourceConfig, build
from descent.frames import FrameInfo
from descent.sources.decoded import DecodedStore, memory_backed, open_store
from descent.sources.images import probe, read_pixels


def _infos(folder: Path) -> list:
    return [probe(path) for path in sorted(folder.glob("*.png"))]


def test_each_frame_is_decoded_once_and_read_back_exactly(make_descent, tmp_path: Path) -> None:
    folder, _ = make_descent()
    infos = _infos(folder)
    store = open_store(tmp_path, infos)
    assert store is not None
    for info in infos:  # pass 1 reads some frames twice (a worker's run starts on the frame before it)
        store.read(info)
    for info in infos[::16]:
        store.read(info)
    assert len(list(store.directory.iterdir())) == len(infos)
    for info in infos:  # pass 2
        assert np.array_equal(store.take(info), read_pixels(info))
    assert store.decoded == len(infos)
    assert store.reused == len(infos) + len(infos[::16])
    assert list(store.directory.iterdir()) == []  # each file goes as pass 2 takes it
    store.close()
    assert list(tmp_path.iterdir()) == []


def test_the_budget_bounds_what_is_kept(make_descent, tmp_path: Path) -> None:
    folder, _ = make_descent()
    infos = _infos(folder)
    frame_bytes = read_pixels(infos[0]).nbytes
    with DecodedStore(tmp_path, budget_bytes=3 * frame_bytes, kept=[i.path for i in infos]) as store:
        for info in infos:
            store.read(info)
        assert sum(f.stat().st_size for f in tmp_path.iterdir()) == 3 * frame_bytes
        for info in infos:
            assert np.array_equal(store.take(info), read_pixels(info))
        assert (store.decoded, store.reused) == (2 * len(infos) - 3, 3)  # the rest are decoded again


def test_scratch_max_caps_the_store_and_zero_turns_it_off(make_descent, tmp_path: Path) -> None:
    """--scratch-max: a build keeps no more than it says on disk, and its video is the same frames."""
    folder, _ = make_descent()
    infos = _infos(folder)
    frame_bytes = read_pixels(infos[0]).nbytes
    store = open_store(tmp_path, infos, max_bytes=5 * frame_bytes)
    assert store is not None and store.budget_bytes == 5 * frame_bytes
    store.close()
    assert open_store(tmp_path, infos, max_bytes=0) is None
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    videos = []
    for limit in ("4", str(4 * frame_bytes / 1e9), "0"):
        out = tmp_path / f"v{limit}.mp4"
        done = run_cli("build", folder, "-o", out, "--scratch", scratch, "--scratch-max", limit, "-q",
                       "--stabilise", "off")
        assert done.returncode == 0, done.stderr
        videos.append(decode_video(out, width=infos[0].width, height=infos[0].height))
        assert list(scratch.iterdir()) == []  # nothing left behind
    assert all(np.array_equal(videos[0], v) for v in videos[1:])
    for wrong in ("inf", "-1", "4GB"):  # one line, the usage exit code, no traceback
        refused = run_cli("build", folder, "-o", tmp_path / "w.mp4", "--scratch-max", wrong, "-q")
        assert refused.returncode == 2 and "--scratch-max" in refused.stderr and "Traceback" not in refused.stderr


def test_only_compressed_frames_that_pass_2_takes_are_kept(make_descent, tmp_path: Path) -> None:
    folder, _ = make_descent()
    infos = _infos(folder)
    store = open_store(tmp_path, infos[:10])
    assert store is not None
    for info in infos:
        store.read(info)
    assert len(list(store.directory.iterdir())) == 10
    store.close()
    # A bitmap reads as fast as its scratch copy would: no store at all.
    assert open_store(tmp_path, [FrameInfo(path=tmp_path / "frame.bmp", width=8, height=8, channels=1,
                                           bit_depth=8)]) is None


def test_a_memory_backed_temporary_directory_is_not_used(make_descent, monkeypatch: pytest.MonkeyPatch) -> None:
    mounts = Path("/proc/mounts").read_text() if Path("/proc/mounts").exists() else ""
    if " /dev/shm tmpfs " not in mounts:
        pytest.skip("no tmpfs at /dev/shm on this machine")
    assert memory_backed(Path("/dev/shm"))
    assert not memory_backed(Path(__file__))
    folder, _ = make_descent()
    monkeypatch.setattr(tempfile, "tempdir", "/dev/shm")  # what TMPDIR=/dev/shm does
    assert open_store(None, _infos(folder)) is None


@pytest.mark.slow
def test_a_build_decodes_each_frame_once(make_descent, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder, _ = make_descent(drop_every=9, duplicates=2)
    decodes: list[Path] = []

    def counted(info):
        decodes.append(info.path)
        return read_pixels(info)

    monkeypatch.setattr(decoded, "read_pixels", counted)  # a spy: the real decoder still runs
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    summary = build(BuildConfig(source=SourceConfig(inputs=(str(folder),)), output=tmp_path / "once.mp4",
                                run=RunConfig(progress=False, scratch=scratch)))
    assert summary.output is not None
    assert len(decodes) == len(set(decodes)) == len(list(folder.glob("*.png")))
    assert list(scratch.iterdir()) == []


@pytest.mark.slow
def test_scratch_off_gives_the_same_video(make_descent, tmp_path: Path) -> None:
    folder, _ = make_descent()
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    videos = []
    for option in (str(scratch), "off"):
        out = tmp_path / f"{Path(option).name}.mp4"
        result = run_cli("build", folder, "-o", out, "--scratch", option, "-q")
        assert result.returncode == 0, result.stderr
        videos.append(decode_video(out, width=128, height=128))
    assert np.array_equal(videos[0], videos[1])
    assert list(scratch.iterdir()) == []


def test_a_missing_scratch_directory_is_refused(make_descent, tmp_path: Path) -> None:
    folder, _ = make_descent()
    result = run_cli("build", folder, "-o", tmp_path / "v.mp4", "--scratch", tmp_path / "nowhere")
    assert result.returncode == 2
    assert "--scratch" in result.stderr and "not a directory" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "v.mp4").exists()


def test_a_failing_scratch_disk_falls_back_to_decoding_again(make_descent, tmp_path: Path,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    folder, _ = make_descent()
    infos = _infos(folder)[:6]
    store = open_store(tmp_path, infos)
    assert store is not None
    store.directory.rmdir()  # as if the disk had gone: every write fails
    for info in infos:
        store.read(info)
    assert "cannot keep decoded frames" in caplog.text and caplog.text.count("cannot keep") == 1
    for info in infos:
        assert np.array_equal(store.take(info), read_pixels(info))
    assert (store.decoded, store.reused) == (2 * len(infos), 0)
    store.close()


def test_a_store_left_by_a_killed_build_is_removed(make_descent, tmp_path: Path) -> None:
    folder, _ = make_descent()
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    orphan = tmp_path / f"descent-decoded-{int(gone.stdout)}-abc123"  # its process has ended
    orphan.mkdir()
    (orphan / "1.raw").write_bytes(bytes(1000))
    running = tmp_path / f"descent-decoded-{os.getpid()}-def456"  # another build, still going
    running.mkdir()
    store = open_store(tmp_path, _infos(folder))
    assert store is not None
    assert not orphan.exists() and running.exists()
    store.close()
