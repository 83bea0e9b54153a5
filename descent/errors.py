"""Errors that reach the user as one line: what went wrong, with which file, and what to do."""

from __future__ import annotations


class DescentError(Exception):
    """A problem with the user's input or environment, reported without a traceback."""

    exit_code = 1


class UsageError(DescentError):
    """Options that contradict each other or name something that does not exist."""

    exit_code = 2


class FrameReadError(DescentError):
    """One frame could not be read; the pipeline may skip it unless --strict."""

    def __init__(self, path: object, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class EncodeError(DescentError):
    """ffmpeg is missing, refused the arguments, or died while encoding."""
