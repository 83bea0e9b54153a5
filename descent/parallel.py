"""Run a function over items on worker threads, results in input order, a bounded number ahead.

Decoders (OpenCV, zlib, hashlib) release the GIL, so threads decode in parallel while the main
thread feeds ffmpeg. Results come back in order whatever the number of workers, and no more than
`ahead` are held at once, so memory does not grow with the length of the sequence.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def ordered_map(fn: Callable[[T], R], items: Iterable[T], *, workers: int, ahead: int | None = None) -> Iterator[R]:
    """`map(fn, items)` on `workers` threads; exceptions are raised where their result would be."""
    if workers <= 1:
        yield from map(fn, items)
        return
    limit = ahead if ahead is not None else 2 * workers
    pending: collections.deque[Future[R]] = collections.deque()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="descent") as pool:
        try:
            for item in items:
                pending.append(pool.submit(fn, item))
                if len(pending) >= limit:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()
