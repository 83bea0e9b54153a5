"""The two ways frames are handed between threads: in order, bounded, and errors where they belong."""

from __future__ import annotations

import threading

import pytest

from descent.parallel import in_background, ordered_map


def test_ordered_map_keeps_the_order_whatever_the_workers() -> None:
    assert list(ordered_map(lambda x: x * x, range(50), workers=4)) == [x * x for x in range(50)]


def test_in_background_gives_every_item_in_order_from_another_thread() -> None:
    threads: set[str] = set()

    def produce():
        for k in range(100):
            threads.add(threading.current_thread().name)
            yield k

    assert list(in_background(produce(), ahead=3)) == list(range(100))
    assert threads == {"descent-stage"}


def test_in_background_raises_the_producers_error_where_its_item_would_be() -> None:
    def produce():
        yield 1
        yield 2
        raise ValueError("frame 3 is broken")

    got = []
    with pytest.raises(ValueError, match="frame 3"):
        for item in in_background(produce()):
            got.append(item)
    assert got == [1, 2]


def test_in_background_stops_and_cleans_up_when_the_consumer_stops() -> None:
    closed = threading.Event()

    def produce():
        try:
            k = 0
            while True:
                yield k
                k += 1
        finally:
            closed.set()

    stage = in_background(produce(), ahead=2)
    assert [next(stage) for _ in range(5)] == [0, 1, 2, 3, 4]
    stage.close()  # the consumer gives up (an error downstream, Ctrl-C)
    assert closed.wait(2)  # the producer's own clean-up ran
    assert not any(t.name == "descent-stage" for t in threading.enumerate())
