"""Progress bars on a terminal, nothing elsewhere (CI logs, pipes, --quiet)."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def progress(items: Iterable[T], *, total: int, desc: str, show: bool) -> Iterator[T]:
    from tqdm import tqdm

    visible = show and sys.stderr.isatty()
    yield from tqdm(items, total=total, desc=desc, unit="frame", disable=not visible, leave=False, dynamic_ncols=True)
