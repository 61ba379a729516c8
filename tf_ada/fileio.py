"""Safe file writing shared by every job: atomic writes and a per-folder lock.

A job never overwrites a file in place (readers and a crash mid-write see the old file or the new
one, never half of one) and never runs beside another job on the same folder.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import tempfile

LOCK_NAME = ".tf-ada.lock"


class FolderBusyError(RuntimeError):
    """Another job holds the folder's lock; the message names the folder and the holder."""


def sha256_file(path: str) -> str:
    """The SHA-256 hex digest of a file's bytes, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def atomic_write_text(path: str, text: str) -> None:
    """Writes `text` to `path` through a uniquely named temporary file in the same folder, synced
    and renamed into place. On any failure the temporary file is removed and `path` is unchanged."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(path) + ".", suffix=".partial")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def atomic_write_json(path: str, obj, **kwargs) -> None:
    """`atomic_write_text` of `json.dumps(obj, indent=1, **kwargs)`."""
    atomic_write_text(path, json.dumps(obj, indent=1, **kwargs))


class FolderLock:
    """An exclusive, non-blocking lock on a folder (`folder/.tf-ada.lock`, flock).

    The operating system releases it when the process ends, however it ends, so a killed job never
    leaves a stale lock. Use as a context manager or call `release()`.

    Raises:
      FolderBusyError: another process holds the lock.
    """

    def __init__(self, folder: str, job: str):
        self._fd = None
        os.makedirs(folder, exist_ok=True)
        self.path = os.path.join(folder, LOCK_NAME)
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(self._fd, 200, 0).decode(errors="replace").strip() or "another process"
            os.close(self._fd)
            self._fd = None
            raise FolderBusyError(f"{folder}: another tf-ada job is using this folder ({holder}); "
                                  f"wait for it to finish or choose another folder") from None
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, f"{job}, pid {os.getpid()}".encode(), 0)

    def release(self) -> None:
        """Releases the lock (closing the file releases the flock); safe to call twice."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()

    def __del__(self):
        self.release()
