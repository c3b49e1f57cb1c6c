"""One run at a time in a run folder: an OS lock on ``<run folder>/run.lock``.

The lock is ``flock``'s, which the kernel drops when its process ends, however it ends (``kill -9``, a
SLURM job preempted or requeued), so no stale lock is ever left and a requeued job takes it again. It
is taken before the run writes anything into the folder. Once the run is allowed to go on, the holder
writes who it is into the file, for the message a second run gets, and empties it when it is done.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import socket
import time
from pathlib import Path

from amodal.errors import AmodalError

log = logging.getLogger(__name__)

LOCK_FILE = "run.lock"


class FolderInUseError(AmodalError):
    """Another process is running into the same run folder."""


class RunLock:
    """``with RunLock(run_dir) as lock: ...; lock.claim()`` once the run really starts."""

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_FILE
        self._fd: int | None = None
        self._created = self._claimed = False

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def acquire(self) -> None:
        while True:
            created = not self.path.exists()
            try:  # never through a link: claim() truncates the file
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
            except OSError as err:
                if err.errno != errno.ELOOP:
                    raise
                raise AmodalError(f"{self.path} is a symbolic link, which a run would truncate: delete it (the run "
                                  "makes its own)") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise FolderInUseError(
                    f"{self.run_dir} is in use by another run ({self._holder()}): wait until it ends, or choose "
                    "another hydra.run.dir"
                ) from None
            except OSError as err:  # a file system without locks (some network mounts)
                log.warning("cannot lock %s (%s): running without the lock, so start no second run into this "
                            "folder", self.run_dir, err.strerror)
            try:
                same_file = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same_file = False
            if same_file:
                self._fd, self._created = fd, created
                return
            os.close(fd)  # a run that created the file removed it before we locked it: lock the new one

    def claim(self) -> None:
        """Write this process into the lock file: the run has passed its checks and starts writing."""
        holder = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, (json.dumps(holder) + "\n").encode(), 0)
        self._claimed = True

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            if self._claimed:
                os.ftruncate(self._fd, 0)
            elif self._created:
                self.path.unlink(missing_ok=True)  # a refused run leaves the folder as it found it
        except OSError:
            pass  # the lock goes with the descriptor anyway
        finally:
            os.close(self._fd)
            self._fd = None

    def _holder(self) -> str:
        try:
            holder = json.loads(self.path.read_text())
            return f"pid {holder['pid']} on {holder['host']}, started {holder['started']}"
        except (OSError, ValueError, KeyError, TypeError):
            return "a process that is still starting"
