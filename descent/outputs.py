"""Every file descent writes follows the video's rules.

- Checked before any frame is read: a file name (not a folder), in a folder that exists and can
  be written, not one of the inputs, not another output of the same run, and replacing an existing
  file only with --overwrite.
- Written under a unique hidden name beside the target and renamed into place when complete, so a
  failure, a signal or a second run never leaves a half-written file at the target.
- One run at a time per output: a lock file beside it says which process is writing it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from descent.errors import UsageError

FRESH_LOCK_S = 5.0


@dataclass(frozen=True, slots=True)
class PlannedOutput:
    path: Path
    option: str  # how the user named it: "-o", "--report" ...


def _same_place(path: Path) -> Path:
    return Path(os.path.realpath(path))


def check_outputs(outputs: Iterable[PlannedOutput], *, inputs: Iterable[Path], overwrite: bool) -> None:
    """Refuse, with one line naming the file and the fix, any output that cannot or must not be written."""
    wanted = list(outputs)
    taken: dict[Path, str] = {_same_place(p): "an input" for p in inputs}
    for output in wanted:
        path, option = output.path, output.option
        place = _same_place(path)
        if place in taken:
            what = taken[place]
            raise UsageError(f"{option} {path}: is {what}" + (" too" if what != "an input" else "")
                             + "; give it a name of its own")
        taken[place] = f"the {option} output"
        check_writable(path, option, overwrite=overwrite)


def check_writable(path: Path, option: str, *, overwrite: bool) -> None:
    if path.is_dir():
        raise UsageError(f"{option} {path}: is a folder; give a file name inside it")
    folder = path.parent
    if not folder.is_dir():
        raise UsageError(f"{option} {path}: the folder {folder} does not exist; create it first")
    if path.exists() and not overwrite:
        raise UsageError(f"{option} {path}: exists; add --overwrite to replace it")
    # os.access says yes to root on any folder, and /proc says yes but takes no new file: try for real.
    probe = partial_name(path, "probe")
    try:
        probe.open("xb").close()
    except OSError as exc:
        raise UsageError(f"{option} {path}: cannot write in {folder} ({exc.strerror or exc}); choose another "
                         "folder") from None
    probe.unlink(missing_ok=True)


def partial_name(path: Path, kind: str = "partial") -> Path:
    """A hidden name beside `path` that no other run uses: .NAME.PID.RANDOM.partial.EXT."""
    return path.with_name(f".{path.stem}.{os.getpid()}.{secrets.token_hex(3)}.{kind}{path.suffix}")


@contextlib.contextmanager
def written_atomically(path: Path) -> Iterator[Path]:
    """Yields a partial path to write; on success it replaces `path`, on any failure it is removed."""
    partial = partial_name(path)
    try:
        yield partial
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def write_text_atomically(path: Path, text: str) -> None:
    with written_atomically(path) as partial:
        partial.write_text(text)


def write_bytes_atomically(path: Path, data: bytes) -> None:
    with written_atomically(path) as partial:
        partial.write_bytes(data)


class OutputLock:
    """`.NAME.lock` beside an output while a run writes it: a second run to the same output refuses at once.

    A lock left by a process that is gone (killed, power cut) is taken over.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = path.with_name(f".{path.name}.lock")
        self._held = False

    def __enter__(self) -> OutputLock:
        for _ in range(2):
            try:
                fd = os.open(self.lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                owner = _owner(self.lock)
                if owner is not None and process_alive(owner):
                    raise UsageError(f"{self.path}: another descent (pid {owner}) is writing it now; wait for it to "
                                     "finish or choose another output") from None
                self.lock.unlink(missing_ok=True)  # left by a run that is gone
                continue
            except OSError as exc:
                raise UsageError(f"{self.path}: cannot write in {self.path.parent} ({exc.strerror or exc}); "
                                 "choose another folder") from None
            with os.fdopen(fd, "w") as handle:
                handle.write(f"{os.getpid()}\n")
            self._held = True
            return self
        raise UsageError(f"{self.path}: another descent keeps taking its lock {self.lock}; try again")

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._held:
            self.lock.unlink(missing_ok=True)
            self._held = False


def _owner(lock: Path) -> int | None:
    """The pid in a lock; None when it names none. A lock just made may not hold its pid yet: it is the
    owner's for a few seconds."""
    try:
        text = lock.read_text().strip()
        if not text:
            return os.getpid() if time.time() - lock.stat().st_mtime < FRESH_LOCK_S else None
        return int(text)
    except (OSError, ValueError):
        return None


def process_alive(pid: int) -> bool:
    """Whether a process exists with this pid (POSIX: os.kill(pid, 0) only asks)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except OSError as exc:
        return exc.errno == errno.EPERM  # it exists, under another user
    return True


class StagedOutputs:
    """Side outputs written under partial names, put in place together once the whole run has succeeded.

    Left as a context manager, a failure (or Ctrl-C) removes every partial file and touches no target.
    """

    def __init__(self) -> None:
        self._pending: list[tuple[Path, Path]] = []

    def stage(self, path: Path) -> Path:
        """The partial path to write `path`'s content to."""
        partial = partial_name(path)
        self._pending.append((partial, path))
        return partial

    def commit(self) -> None:
        for partial, path in self._pending:
            os.replace(partial, path)
        self._pending.clear()

    def __enter__(self) -> StagedOutputs:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        for partial, _ in self._pending:
            partial.unlink(missing_ok=True)
        self._pending.clear()


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")


def check_image_name(path: Path, option: str) -> None:
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise UsageError(f"{option} {path}: give a picture name ending in {', '.join(IMAGE_SUFFIXES)}")


def write_image_atomically(path: Path, pixels: object) -> None:
    """A picture in the format its name says (profile.png, profile.jpg ...), written whole or not at all."""
    import cv2

    ok, data = cv2.imencode(path.suffix.lower(), pixels)  # type: ignore[call-overload]
    if not ok:
        raise UsageError(f"{path}: the picture could not be encoded as {path.suffix}; try a .png name")
    try:
        write_bytes_atomically(path, data.tobytes())
    except OSError as exc:
        raise UsageError(f"{path}: cannot write the picture ({exc.strerror or exc})") from None
