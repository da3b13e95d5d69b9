"""ai_usage.prefetch: order, errors in place, the first item in the caller's thread, early close."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from ai_usage.prefetch import prefetched


def test_items_come_in_order_each_after_its_handle() -> None:
    handled: list[int] = []
    got = []
    for item in prefetched(range(50), handled.append, depth=2):
        assert item in handled  # handled (archived) before the caller sees it
        got.append(item)
    assert got == list(range(50)) and handled == list(range(50))


def test_the_first_item_is_fetched_in_the_callers_thread_the_rest_ahead_in_another() -> None:
    threads: list[str] = []

    def source() -> Iterator[int]:
        for i in range(4):
            threads.append(threading.current_thread().name)
            yield i

    assert list(prefetched(source(), lambda _: None)) == [0, 1, 2, 3]
    assert threads[0] == threading.current_thread().name
    assert set(threads[1:]) == {"ai-usage-prefetch"}


def test_fetching_overlaps_with_the_callers_work() -> None:
    fetched: list[float] = []

    def source() -> Iterator[int]:
        for i in range(3):
            fetched.append(time.monotonic())
            yield i

    seen = []
    for item in prefetched(source(), lambda _: None, depth=2):
        seen.append((item, time.monotonic()))
        time.sleep(0.2)  # the caller is busy: the next items are fetched meanwhile
    # Item 2 was fetched while the caller still worked on item 0 or 1, not after it asked for it.
    assert fetched[2] < seen[2][1] - 0.1


def test_an_error_is_raised_after_every_earlier_item() -> None:
    def source() -> Iterator[int]:
        yield 1
        yield 2
        raise ValueError("vendor broke at page 3")

    got = []
    with pytest.raises(ValueError, match="page 3"):
        for item in prefetched(source(), lambda _: None):
            got.append(item)
    assert got == [1, 2]


def test_an_error_of_handle_stops_before_that_item() -> None:
    def handle(item: int) -> None:
        if item == 3:
            raise OSError("archive full")

    got = []
    with pytest.raises(OSError, match="archive full"):
        for item in prefetched(range(10), handle):
            got.append(item)
    assert got == [0, 1, 2]


def test_closing_early_stops_the_worker_and_closes_the_source() -> None:
    produced: list[int] = []
    closed = threading.Event()

    def source() -> Iterator[int]:
        try:
            for i in range(1000):
                produced.append(i)
                yield i
        finally:
            closed.set()

    it = prefetched(source(), lambda _: None, depth=2)
    assert next(it) == 0
    assert next(it) == 1
    it.close()
    assert closed.is_set()
    assert len(produced) <= 6  # at most `depth` items ahead (plus the one in hand)
    assert not [t for t in threading.enumerate() if t.name == "ai-usage-prefetch"]


def test_an_empty_source_yields_nothing() -> None:
    assert list(prefetched(iter(()), lambda _: None)) == []
