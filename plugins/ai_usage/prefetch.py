"""Fetch ahead: iterate a page source in a background thread while the caller works on the current page.

A vendor page costs the time the vendor takes to answer plus the time to receive, syntax-check and
archive it (gzip and fsync release the GIL); parsing and staging the previous page overlaps with all of
it. The first page is fetched in the caller's thread, so whatever the source sets up on first use (an
Airflow connection lookup, a session) happens where the task runs; later pages come from one worker
thread, at most `depth` pages ahead, in order. An exception in the source or in `handle` is raised to
the caller at the position of the page that failed, after every earlier page; closing the iterator
early stops the worker and closes the source.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

_DONE = object()
_PUT_WAIT_S = 0.1


class _Failed:
    def __init__(self, error: BaseException) -> None:
        self.error = error


def prefetched(source: Iterable[T], handle: Callable[[T], None], *, depth: int = 2) -> Iterator[T]:
    """Yield the items of `source` in order, each after `handle(item)` returned, fetching ahead in a thread."""
    items = iter(source)
    try:
        first = next(items)
    except StopIteration:
        return
    handle(first)
    ahead: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(value: object) -> bool:
        while not stop.is_set():
            try:
                ahead.put(value, timeout=_PUT_WAIT_S)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for item in items:
                if stop.is_set():
                    return
                handle(item)
                if not put(item):
                    return
            put(_DONE)
        except BaseException as exc:  # handed to the caller, raised there in order
            put(_Failed(exc))

    worker = threading.Thread(target=work, name="ai-usage-prefetch", daemon=True)
    worker.start()
    try:
        yield first
        while True:
            got = ahead.get()
            if got is _DONE:
                return
            if isinstance(got, _Failed):
                raise got.error
            yield got  # type: ignore[misc]
    finally:
        stop.set()
        worker.join()
        close = getattr(items, "close", None)
        if close is not None:
            close()  # safe now: the worker no longer runs the source
