"""Who may use a dataset folder at the same time: an advisory lock (flock) on the folder itself.

A writer holds the lock exclusively for as long as it is open; a tool that rewrites a dataset in place takes it
exclusively too; tools that only read a dataset (merge and split sources, push, info) take it shared, so they can
run side by side but never next to a writer whose files are half-way through a save. The kernel drops the lock
when the process dies, so a crash never leaves a stale lock behind (unlike a lock file).
"""

from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .errors import DatasetBusyError


def lock_dataset(root: Path | str, shared: bool = False, action: str = "open it") -> int:
    """Take the folder's lock without waiting; returns the descriptor that holds it (close it to release).
    Raises DatasetBusyError when a writer (or, for an exclusive lock, any tool) has it."""
    root = Path(root)
    fd = os.open(str(root), os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise DatasetBusyError(
            f"{root}: cannot {action}: the dataset is open in another LeRobotDatasetWriter (recorder, bag converter)"
            f"{'' if shared else ' or dataset tool'}, in this or another process; wait until it is closed"
        ) from None
    return fd


def release(fd: int | None) -> None:
    if fd is not None:
        os.close(fd)  # closing the descriptor releases the flock


@contextmanager
def dataset_lock(root: Path | str, shared: bool = False, action: str = "open it") -> Iterator[None]:
    """`with dataset_lock(root, shared=True, action="push it"):` ... the lock is released on exit."""
    fd = lock_dataset(root, shared, action)
    try:
        yield
    finally:
        release(fd)


def is_locked(root: Path | str) -> bool:
    """True when someone holds the folder's lock (a live writer or an in-place tool)."""
    try:
        fd = lock_dataset(root, shared=True)
    except DatasetBusyError:
        return True
    release(fd)
    return False


__all__ = ["dataset_lock", "is_locked", "lock_dataset", "release"]
