"""Processes taking turns on a DuckDB file (`ai_usage.warehouse.turns`): exclusive writers, shared readers,
hand-over to a waiter, a bounded wait, no self-deadlock within a process, no turn inherited by a fork."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from ai_usage.warehouse import turns

HOLD = r"""
import sys, time
from pathlib import Path
from ai_usage.warehouse import turns
release = turns.take(Path(sys.argv[1]), shared=sys.argv[2] == "shared", timeout_s=60)
print("holding", flush=True)
sys.stdin.readline()  # hold until told
release()
print("released", time.time(), flush=True)
sys.stdin.readline()
"""


class Holder:
    """Another process holding a turn on `database` until `release()`."""

    def __init__(self, database: Path, *, shared: bool = False) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", HOLD, str(database), "shared" if shared else "exclusive"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env={**os.environ},
        )
        assert self._line() == "holding"

    def _line(self) -> str:
        assert self.proc.stdout is not None
        return self.proc.stdout.readline().strip()

    def release(self) -> float:
        assert self.proc.stdin is not None
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()
        word, stamp = self._line().split()
        assert word == "released"
        return float(stamp)

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


@pytest.fixture
def database(tmp_path: Path) -> Path:
    return tmp_path / "warehouse.duckdb"


def test_a_writer_waits_for_the_holder_and_gets_the_file_after_it(database: Path) -> None:
    holder = Holder(database)
    waits: list[float] = []
    try:
        released: list[float] = []
        timer = threading.Timer(0.5, lambda: released.append(holder.release()))
        timer.start()
        release = turns.take(database, shared=False, timeout_s=60, on_wait=lambda: waits.append(time.time()))
        taken = time.time()
        timer.join()
        release()
    finally:
        holder.stop()
    assert len(waits) == 1  # told once that it waits, not once per try
    assert released and taken >= released[0]
    assert turns.lock_path(database).is_file()


def test_readers_share_and_a_writer_waits_for_every_reader(database: Path) -> None:
    reader = Holder(database, shared=True)
    try:
        release = turns.take(database, shared=True, timeout_s=5)  # a second reader at once
        release()
        with pytest.raises(turns.TurnTimeout, match=r"warehouse.duckdb was kept by another process .*\.lock"):
            turns.take(database, shared=False, timeout_s=0.3)
        reader.release()
        turns.take(database, shared=False, timeout_s=5)()
    finally:
        reader.stop()


def test_turns_within_one_process_are_counted_not_waited_for(database: Path) -> None:
    first = turns.take(database, shared=False, timeout_s=1)
    second = turns.take(database, shared=True, timeout_s=1)  # would wait forever if taken twice
    first()
    first()  # releasing twice is harmless
    with pytest.raises(subprocess.CalledProcessError):  # still held: the second holder has not released
        subprocess.run([sys.executable, "-c", "import sys; from pathlib import Path; from ai_usage.warehouse "
                        "import turns; turns.take(Path(sys.argv[1]), shared=False, timeout_s=0.2)",
                        str(database)], check=True, capture_output=True)
    second()
    subprocess.run([sys.executable, "-c", "import sys; from pathlib import Path; from ai_usage.warehouse "
                    "import turns; turns.take(Path(sys.argv[1]), shared=False, timeout_s=5)",
                    str(database)], check=True, capture_output=True)


def test_a_forked_child_does_not_keep_its_parents_turn(database: Path) -> None:
    release = turns.take(database, shared=False, timeout_s=1)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: holds nothing, and outlives the parent's release
        os.close(read)
        os.write(write, b"1" if not turns._held else b"0")
        time.sleep(3)
        os._exit(0)
    os.close(write)
    try:
        assert os.read(read, 1) == b"1"
        release()
        # Another process gets the file while the child still runs.
        subprocess.run([sys.executable, "-c", "import sys; from pathlib import Path; from ai_usage.warehouse "
                        "import turns; turns.take(Path(sys.argv[1]), shared=False, timeout_s=2)",
                        str(database)], check=True, capture_output=True)
    finally:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        os.close(read)


def test_without_a_lock_file_there_is_no_turn_taking(tmp_path: Path) -> None:
    # No folder for the companion file: DuckDB's own lock is all there is (the backend still retries it).
    release = turns.take(tmp_path / "missing" / "warehouse.duckdb", shared=False, timeout_s=1)
    release()
    assert not (tmp_path / "missing").exists()


def test_a_file_system_without_flock_falls_back_to_duckdbs_lock(
    database: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    import errno
    import fcntl

    def unsupported(fd: int, operation: int) -> None:
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", unsupported)
    caplog.set_level("WARNING", logger="ai_usage.warehouse.turns")
    release = turns.take(database, shared=False, timeout_s=1)
    release()
    assert "file system refuses flock" in caplog.text
    assert not turns._held  # nothing held, nothing leaked
