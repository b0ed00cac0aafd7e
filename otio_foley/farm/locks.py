"""One lock per job on shared storage, so two workers never render the same stem, and a dead worker's
lock does not block the farm.

Why lock files and not `filelock.FileLock`: fcntl/flock locks vanish with the process (good) but are
not honoured on every network mount (NFS mounted `nolock`, many SMB setups) and say nothing about who
holds them. Here a lock is a file created with O_CREAT|O_EXCL (atomic on local disks, NFSv3+ and SMB)
holding its owner (machine, pid, token). While held, a heartbeat thread touches it every HEARTBEAT
seconds. A lock is stale, and is broken, when its owner is a dead process on this machine, or when it
has not been touched for STALE_AFTER seconds (a dead or cut-off machine; needs clocks within a fraction
of that, as NTP gives). Breaking renames the file to a unique name first, so of several workers that
find the same stale lock exactly one removes it; a worker that finds it renamed a fresh lock instead
puts that back.
"""
from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from pathlib import Path

HEARTBEAT = 10.0
STALE_AFTER = 120.0


def machine_id() -> str:
    """Host name plus boot id and pid namespace: pids are comparable only within one of these."""
    parts = [socket.gethostname()]
    for path in ("/proc/sys/kernel/random/boot_id", "/proc/self/ns/pid"):
        try:
            parts.append(Path(path).read_text().strip() if "boot_id" in path else str(os.stat(path).st_ino))
        except OSError:
            pass
    return "|".join(parts)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


class JobLock:
    """`JobLock(path)`: try_acquire / acquire / release; also a context manager (blocking acquire)."""

    def __init__(self, path: Path, *, stale_after: float = STALE_AFTER) -> None:
        self.path = Path(path)
        self.stale_after = stale_after
        self.token: str | None = None

    # -- acquiring ---------------------------------------------------------------------------------

    def try_acquire(self) -> bool:
        """Take the lock if it is free or stale; False if a live owner holds it."""
        if self.token is not None:
            raise RuntimeError(f"{self.path} is already held by this object")
        for _ in range(3):  # free -> create; stale -> break and create again
            if self._create():
                _HEARTBEAT.add(self)
                return True
            seen = _read(self.path)
            if seen is None:  # released meanwhile
                continue
            if not self._is_stale(seen):
                return False
            self._break(seen)
        return False

    def acquire(self, timeout: float | None = None, poll: float = 0.5) -> None:
        """Wait until the lock is ours; TimeoutError after `timeout` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.try_acquire():
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"{self.path} is held by {self.owner()}")
            time.sleep(poll)

    def release(self) -> None:
        """Remove the lock if it is still ours (a lock broken as stale belongs to someone else now)."""
        if self.token is None:
            return
        _HEARTBEAT.discard(self)
        if self.holds():
            self.path.unlink(missing_ok=True)
        self.token = None

    def holds(self) -> bool:
        seen = _read(self.path)
        return seen is not None and seen[1].get("token") == self.token

    def owner(self) -> str:
        """`host pid N` of the current holder, for messages."""
        seen = _read(self.path)
        info = seen[1] if seen else {}
        return f"{info.get('machine', '?').split('|')[0]} pid {info.get('pid', '?')}"

    def __enter__(self) -> JobLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    # -- internals ---------------------------------------------------------------------------------

    def _create(self) -> bool:
        token = uuid.uuid4().hex
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as handle:
            json.dump({"machine": machine_id(), "pid": os.getpid(), "token": token, "since": time.time()}, handle)
        self.token = token
        return True

    def _is_stale(self, seen: tuple[bytes, dict, float]) -> bool:
        _, info, mtime = seen
        if info.get("machine") == machine_id() and isinstance(info.get("pid"), int):
            return not _pid_alive(info["pid"])
        # no owner info yet (a creator killed before writing it) or another machine: heartbeat age
        return time.time() - mtime > self.stale_after

    def _break(self, seen: tuple[bytes, dict, float]) -> None:
        grave = self.path.with_name(f"{self.path.name}.stale-{uuid.uuid4().hex}")
        try:
            os.rename(self.path, grave)
        except FileNotFoundError:  # another worker broke it first
            return
        try:
            if grave.read_bytes() != seen[0]:  # not the lock we judged: a fresh one, put it back
                try:
                    os.link(grave, self.path)
                except FileExistsError:
                    pass
        finally:
            grave.unlink(missing_ok=True)


def _read(path: Path) -> tuple[bytes, dict, float] | None:
    """(raw bytes, parsed owner or {}, mtime) of a lock file, None if it does not exist."""
    try:
        raw = path.read_bytes()
        mtime = path.stat().st_mtime
    except FileNotFoundError:
        return None
    try:
        info = json.loads(raw)
    except ValueError:
        info = {}
    return raw, info if isinstance(info, dict) else {}, mtime


class _Heartbeat:
    """One daemon thread per process touching every held lock, started on first use."""

    def __init__(self, interval: float = HEARTBEAT) -> None:
        self.interval = interval
        self.locks: set[JobLock] = set()
        self.guard = threading.Lock()
        self.thread: threading.Thread | None = None

    def add(self, lock: JobLock) -> None:
        with self.guard:
            self.locks.add(lock)
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._run, name="otio-foley-lock-heartbeat", daemon=True)
                self.thread.start()

    def discard(self, lock: JobLock) -> None:
        with self.guard:
            self.locks.discard(lock)

    def _run(self) -> None:
        while True:
            time.sleep(self.interval)
            with self.guard:
                held = list(self.locks)
            for lock in held:
                try:
                    os.utime(lock.path)
                except OSError:  # broken by another worker as stale: release() will notice
                    pass


_HEARTBEAT = _Heartbeat()
