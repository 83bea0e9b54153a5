"""Decoded frames kept on disk between the passes, so that each compressed image is decoded once.

A stabilised build reads every frame twice: pass 1 measures motion, pass 2 warps and encodes.
Decoding a 1024x1024 PNG costs about 7 ms; writing its pixels to a scratch file and reading them
back costs a tenth of that. So the first read of a PNG, JPEG or TIFF keeps the decoded pixels in a
scratch directory, and pass 2 takes them from there and deletes the file.

Bounds, so that neither memory nor disk grows without limit:
- by default the files go to a disk-backed directory only: a memory-backed one (tmpfs, ramfs)
  would turn the store into memory that grows with the number of frames;
- at most `budget_bytes` are held at once: half the free space, and no more than `--scratch-max`
  (4 GB by default, about 4,000 frames of 1024x1024); frames beyond it are simply decoded again.
  Kept compressed they would cost more than a second decode: a fast PNG or zlib level 1 takes
  10-18 ms to write and 4-8 ms to read back, against 7 ms to decode the original PNG again and
  under 1 ms for the raw file (measured on 1024x1024 descent frames);
- pass 2 deletes each file as it takes it, so the store shrinks as the video is written (and on
  a short descent, a file may go before the kernel has even written it out).

Archive products are not kept: their raw arrays are read (memory-mapped) as cheaply as a scratch file.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from descent.frames import FrameInfo
from descent.options import SCRATCH_MAX_GB
from descent.outputs import process_alive
from descent.sources.images import read_pixels

log = logging.getLogger("descent")

MEMORY_FILESYSTEMS = frozenset({"tmpfs", "ramfs"})
BUDGET_SHARE_OF_FREE = 0.5
SCRATCH_MAX_BYTES = round(SCRATCH_MAX_GB * 1e9)
DIRECTORY_PREFIX = "descent-decoded-"  # then the process id: remove_orphans reads it
COMPRESSED_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".jp2"})


class DecodedStore:
    """`read` gives a frame's pixels, decoding it only the first time; `take` is the last read."""

    def __init__(self, directory: Path, *, budget_bytes: int, kept: Iterable[Path]) -> None:
        self.directory = directory
        self.budget_bytes = budget_bytes
        self._kept = frozenset(kept)  # the frames pass 2 will take; others are not worth a file
        self._stored: dict[Path, tuple[Path, tuple[int, ...], np.dtype]] = {}
        self._writing: set[Path] = set()  # two workers may decode one frame at once; one file is enough
        self._used_bytes = 0
        self._files_made = 0
        self._lock = threading.Lock()
        self.decoded = 0  # frames decoded, for the tests and the benchmark
        self.reused = 0  # reads served from the store

    def read(self, info: FrameInfo) -> np.ndarray:
        return self._read(info, last=False)

    def take(self, info: FrameInfo) -> np.ndarray:
        return self._read(info, last=True)

    def _read(self, info: FrameInfo, *, last: bool) -> np.ndarray:
        with self._lock:
            entry = self._stored.pop(info.path, None) if last else self._stored.get(info.path)
            if entry is not None and last:
                self._used_bytes -= _nbytes(entry)
        if entry is not None:
            file, shape, dtype = entry
            try:
                pixels = np.fromfile(file, dtype).reshape(shape)
                with self._lock:
                    self.reused += 1
                return pixels
            except (OSError, ValueError) as exc:
                log.warning("%s: cannot read back the decoded copy (%s); decoding the frame again", file, exc)
            finally:
                if last:
                    file.unlink(missing_ok=True)
        pixels = read_pixels(info)
        with self._lock:
            self.decoded += 1
        if not last:
            self._keep(info.path, pixels)
        return pixels

    def _keep(self, path: Path, pixels: np.ndarray) -> None:
        if path not in self._kept:
            return
        with self._lock:
            if path in self._stored or path in self._writing or self._used_bytes + pixels.nbytes > self.budget_bytes:
                return
            self._writing.add(path)
            self._files_made += 1
            file = self.directory / f"{self._files_made}.raw"
            self._used_bytes += pixels.nbytes  # charged now, so that two threads cannot both overrun
        try:
            pixels.tofile(file)
        except OSError as exc:
            log.warning("%s: cannot keep decoded frames here (%s); decoding them again in pass 2",
                        self.directory, exc.strerror or exc)
            file.unlink(missing_ok=True)
            with self._lock:
                self._writing.discard(path)
                self._used_bytes -= pixels.nbytes
                self.budget_bytes = 0  # a full or failing disk: stop trying
            return
        with self._lock:
            self._writing.discard(path)
            self._stored[path] = (file, pixels.shape, pixels.dtype)

    def close(self) -> None:
        with self._lock:
            self.budget_bytes = 0  # a worker still finishing after Ctrl-C keeps nothing more
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> DecodedStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def worth_keeping(info: FrameInfo) -> bool:
    """Compressed images only. Archive products (raw arrays, memory-mapped) and bitmaps already
    read as fast as a scratch file would; a video's frames decode again faster than a scratch file
    reads back, and would fill the disk (descent.sources.video)."""
    return info.layout is None and info.video is None and info.path.suffix.lower() in COMPRESSED_SUFFIXES


def _nbytes(entry: tuple[Path, tuple[int, ...], np.dtype]) -> int:
    _, shape, dtype = entry
    return int(np.prod(shape)) * dtype.itemsize


def open_store(scratch: Path | None, kept: list[FrameInfo], *,
               max_bytes: int = SCRATCH_MAX_BYTES) -> DecodedStore | None:
    """A store in `scratch` (default: the system temporary directory) holding at most `max_bytes`,
    or None when it would not help.

    None when no frame is compressed, when `max_bytes` is 0, or when the place is memory-backed or
    has no room.
    """
    kept = [info for info in kept if worth_keeping(info)]
    if not kept or max_bytes <= 0:
        return None
    place = scratch or Path(tempfile.gettempdir())
    if scratch is None and memory_backed(place):
        log.info("%s is held in memory (tmpfs); frames are decoded again in pass 2 (give --scratch DIR on a "
                 "disk to decode them once)", place)
        return None
    remove_orphans(place)
    try:
        budget = min(max_bytes, int(shutil.disk_usage(place).free * BUDGET_SHARE_OF_FREE))
        directory = Path(tempfile.mkdtemp(prefix=f"{DIRECTORY_PREFIX}{os.getpid()}-", dir=place))
    except OSError as exc:
        log.warning("%s: cannot keep decoded frames here (%s); frames are decoded again in pass 2",
                    place, exc.strerror or exc)
        return None
    return DecodedStore(directory, budget_bytes=budget, kept=(info.path for info in kept))


def remove_orphans(place: Path) -> None:
    """Remove the stores of builds that died without cleaning up (killed, out of memory, power cut).

    A store's directory is named after its process; one whose process is gone is left over. A
    process of another user, or a number taken again by a new process, keeps its directory.
    POSIX only: os.kill(pid, 0) asks whether a process exists there, and would end it on Windows.
    """
    if os.name != "posix":
        return
    for directory in place.glob(f"{DIRECTORY_PREFIX}*-*"):
        pid_text = directory.name[len(DIRECTORY_PREFIX):].split("-", 1)[0]
        if not pid_text.isdigit() or process_alive(int(pid_text)):
            continue
        size = sum(f.stat().st_size for f in directory.glob("*.raw") if f.is_file())
        shutil.rmtree(directory, ignore_errors=True)
        if not directory.exists():
            log.info("%s: removed %.0f MB of decoded frames left by a build that was stopped", directory, size / 1e6)


def memory_backed(place: Path) -> bool:
    """Whether `place` is on a filesystem held in memory, from the mount table (Linux; elsewhere False)."""
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return False
    resolved = os.path.realpath(place)
    best, kind = "", ""
    for line in mounts:
        fields = line.split()
        if len(fields) < 3:
            continue
        mount_point = fields[1].replace("\\040", " ")
        inside = resolved == mount_point or resolved.startswith(mount_point.rstrip("/") + "/")
        if inside and len(mount_point) > len(best):
            best, kind = mount_point, fields[2]
    return kind in MEMORY_FILESYSTEMS
