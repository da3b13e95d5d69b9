"""Processes taking turns on one DuckDB file, handing it over the moment it is free.

DuckDB lets one process open a file for writing, or several for reading, and refuses everyone else at
once: a process that finds the file taken can only try again later. Parallel Airflow tasks on the
embedded warehouse did exactly that, with growing pauses, and so started (and finished) up to a couple
of seconds after the file had become free. So before opening the file the backend takes an advisory lock
on a companion file, ``<warehouse>.lock`` (exclusive to write, shared to read; `fcntl.flock`). The kernel
releases it when its holder closes it or dies, and a waiter tries again every few milliseconds, which
costs a system call, not a database open.

DuckDB's own lock stays the authority: tools outside this package (the DuckDB CLI, a BI driver) do not
take the companion lock, and the backend still retries when DuckDB refuses it. Where the companion file
cannot be created (a read-only folder) or locked (a file system without `flock`), there is no
turn-taking, only DuckDB's lock.

Within one process a turn is counted, not taken twice: two backends of one process on the same file
would otherwise wait for each other forever, and DuckDB decides, as before, what they may do together.
A forked child never inherits its parent's turn.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

# Pause between tries: starts short (a hand-over between tasks takes milliseconds) and grows to a bound
# that keeps a queue of waiters cheap.
FIRST_PAUSE_S = 0.002
LONGEST_PAUSE_S = 0.02

_guard = threading.Lock()
_held: dict[str, list[int]] = {}  # lock file -> [descriptor, holders in this process]


class TurnTimeout(Exception):
    """Another process kept the file for longer than the caller would wait."""


def lock_path(database: Path) -> Path:
    return database.with_name(database.name + ".lock")


def take(database: Path, *, shared: bool, timeout_s: float,
         on_wait: Callable[[], None] | None = None) -> Callable[[], None]:
    """Wait for this process's turn on `database` (shared: with other readers); return the release.

    `on_wait` is called once if the turn is not free at once (to log that the task waits). Raises
    `TurnTimeout` after `timeout_s`.
    """
    path = str(lock_path(database))
    with _guard:
        held = _held.get(path)
        if held is not None:
            held[1] += 1
            return _releaser(path)
    try:
        # Read-only is enough to flock, so a lock file created by another user (0644) still works.
        fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o666)
    except OSError as exc:
        log.debug("no turn-taking on %s (%s): DuckDB's own lock only", database, exc)
        return _nothing
    operation = (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB
    deadline = time.monotonic() + timeout_s
    pause = FIRST_PAUSE_S
    waiting = False
    while True:
        try:
            fcntl.flock(fd, operation)
            break
        except BlockingIOError:
            if time.monotonic() >= deadline:
                os.close(fd)
                raise TurnTimeout(f"{database} was kept by another process for more than {timeout_s:.0f} s "
                                  f"(turns are taken on {path})") from None
            if not waiting and on_wait is not None:
                on_wait()
            waiting = True
            time.sleep(pause)
            pause = min(pause * 2, LONGEST_PAUSE_S)
        except OSError as exc:  # a file system without flock (some network mounts): DuckDB's lock only
            os.close(fd)
            log.warning("no turn-taking on %s: the file system refuses flock (%s); DuckDB's own lock only",
                        database, exc)
            return _nothing
        except BaseException:
            os.close(fd)
            raise
    with _guard:
        _held[path] = [fd, 1]
    return _releaser(path)


def _releaser(path: str) -> Callable[[], None]:
    done = False

    def release() -> None:
        nonlocal done
        if done:
            return
        done = True
        with _guard:
            held = _held.get(path)
            if held is None:
                return
            held[1] -= 1
            if held[1] == 0:
                del _held[path]
                os.close(held[0])  # closing the descriptor releases the flock

    return release


def _nothing() -> None:
    return None


def _forget_in_child() -> None:
    """A forked child shares its parent's lock descriptors; it closes its copies and holds no turn."""
    global _guard
    _guard = threading.Lock()
    for fd, _count in _held.values():
        try:
            os.close(fd)
        except OSError:
            pass
    _held.clear()


os.register_at_fork(after_in_child=_forget_in_child)
