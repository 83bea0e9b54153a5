"""Run a function over items on worker threads, results in input order, a bounded number ahead.

Decoders (OpenCV, zlib, hashlib) release the GIL, so threads decode in parallel while the main
thread feeds ffmpeg. Results come back in order whatever the number of workers, and no more than
`ahead` are held at once, so memory does not grow with the length of the sequence.
"""

from __future__ import annotations

import collections
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar, cast

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


_DONE = object()


def in_background(items: Iterable[T], *, ahead: int = 2) -> Iterator[T]:
    """`items`, produced on a thread of their own, at most `ahead` waiting: a sequential stage (the
    canvas) then runs beside the one that consumes it (the thread feeding ffmpeg) instead of before it.

    An exception in the producer is raised here, where its item would have come; when the consumer
    stops early, the producer is told to stop too and is waited for.
    """
    queue_: queue.Queue[object] = queue.Queue(maxsize=ahead)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                if not _put(queue_, item, stop):
                    return
            _put(queue_, _DONE, stop)
        except BaseException as error:  # noqa: BLE001 - handed to the consumer, who raises it
            _put(queue_, _Raised(error), stop)
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()  # a generator's own clean-up (its worker pool) runs here, on the thread that ran it

    worker = threading.Thread(target=produce, name="descent-stage", daemon=True)
    worker.start()
    try:
        while True:
            item = queue_.get()
            if item is _DONE:
                return
            if isinstance(item, _Raised):
                raise item.error
            yield cast(T, item)
    finally:
        stop.set()
        worker.join()


class _Raised:
    def __init__(self, error: BaseException) -> None:
        self.error = error


def _put(queue_: queue.Queue[object], item: object, stop: threading.Event) -> bool:
    """Hand one item over unless told to stop; False when stopped."""
    while not stop.is_set():
        try:
            queue_.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False
