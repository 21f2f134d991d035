"""Writes that survive a crash or a power loss: the one place that knows about temp files, fsync and renames.

A file is never modified where it lies. It is written to `.<name>.tmp` next to its final path, flushed to disk
(fsync), renamed over the final path (atomic on POSIX), and then the DIRECTORY is flushed too: a rename is a change
of the directory, and without the directory fsync a power loss can bring back the old name (or no name at all for
a new file) even though the file's data reached the disk. New folders get the same treatment (their parent is
flushed), so a new `data/chunk-001/` does not vanish after a power loss while the metadata that points into it
survives.

`fsync=False` everywhere skips the flushes (tests and benchmarks on throwaway data); the rename order is kept.
"""

from __future__ import annotations

import json
import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator

import pyarrow as pa
import pyarrow.parquet as pq


def fsync_file(path: Path | str) -> None:
    """Flush a file's data and metadata to disk."""
    fd = os.open(str(path), os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(directory: Path | str) -> None:
    """Flush a directory's entries (names created, renamed or removed in it) to disk."""
    fd = os.open(str(directory), os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_dirs(path: Path | str, fsync: bool = True) -> Path:
    """`mkdir -p path`, flushing the parent of every folder it creates so that the new entries are durable."""
    path = Path(path)
    missing: list[Path] = []
    probe = path
    while not probe.exists():
        missing.append(probe)
        if probe.parent == probe:
            break
        probe = probe.parent
    for folder in reversed(missing):
        try:
            folder.mkdir()
        except FileExistsError:
            if not folder.is_dir():
                raise
            continue
        if fsync:
            fsync_dir(folder.parent)
    return path


def tmp_path_for(path: Path | str) -> Path:
    """The temporary name a file is written under before it replaces `path` (hidden, same folder)."""
    path = Path(path)
    return path.with_name(f".{path.name}.tmp")


def replace(src: Path | str, dst: Path | str, fsync: bool = True) -> None:
    """Atomically rename `src` over `dst` and make the rename durable (both folders flushed)."""
    src, dst = Path(src), Path(dst)
    os.replace(src, dst)
    if fsync:
        fsync_dir(dst.parent)
        if src.parent != dst.parent:
            fsync_dir(src.parent)


@contextmanager
def atomic_output(path: Path | str, fsync: bool = True) -> Iterator[Path]:
    """Yield a temporary path to write `path`'s new content into; on success it replaces `path` durably, on any
    error it is removed and `path` is untouched."""
    path = Path(path)
    make_dirs(path.parent, fsync)
    tmp = tmp_path_for(path)
    try:
        yield tmp
        if fsync:
            fsync_file(tmp)
        replace(tmp, path, fsync)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_json(path: Path | str, obj: Any, fsync: bool = True) -> None:
    """JSON as upstream LeRobot writes it (indent=4, ensure_ascii=False), replaced atomically."""
    with atomic_output(path, fsync) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(obj, f, indent=4, ensure_ascii=False)


def write_parquet(path: Path | str, row_groups: Iterable[pa.Table], schema: pa.Schema, fsync: bool = True) -> None:
    """A parquet file with one row group per table of `row_groups` (an iterable, so large files can be streamed
    from disk), snappy + dictionary encoding as upstream, replaced atomically."""
    with atomic_output(path, fsync) as tmp:
        with pq.ParquetWriter(tmp, schema, compression="snappy", use_dictionary=True) as writer:
            for table in row_groups:
                writer.write_table(table, row_group_size=max(1, table.num_rows))


def link_or_copy(src: Path | str, dst: Path | str, fsync: bool = True) -> None:
    """Make `dst` a durable second name for `src`'s current content (a hard link; a complete copy where links are
    not possible). Used for backups taken before `src` is replaced: after a power loss the backup is there."""
    src, dst = Path(src), Path(dst)
    make_dirs(dst.parent, fsync)
    dst.unlink(missing_ok=True)
    try:
        os.link(src, dst)
    except OSError:  # no hard links on this file system: copy, and only a complete copy gets the backup's name
        tmp = tmp_path_for(dst)
        shutil.copy2(src, tmp)
        if fsync:
            fsync_file(tmp)
        os.replace(tmp, dst)
    if fsync:
        fsync_dir(dst.parent)


def fsync_tree(root: Path | str) -> None:
    """Flush every file and folder under `root` (a freshly written dataset, before it is renamed into place)."""
    root = Path(root)
    paths = sorted(root.rglob("*"))
    for p in [*(q for q in paths if q.is_file() and not q.is_symlink()), *(q for q in paths if q.is_dir()), root]:
        if p.is_dir():
            fsync_dir(p)
        else:
            fsync_file(p)


def remove_tree(path: Path | str, fsync: bool = True) -> None:
    """Delete a folder and everything in it, then flush its parent."""
    path = Path(path)
    if not path.exists():
        return
    shutil.rmtree(path)
    if fsync:
        fsync_dir(path.parent)


def remove_empty_dirs(root: Path | str, keep_root: bool = True) -> None:
    """Remove folders under `root` that hold no file (deepest first)."""
    root = Path(root)
    if not root.is_dir():
        return
    for folder in sorted((p for p in root.rglob("*") if p.is_dir() and not p.is_symlink()), key=lambda p: -len(p.parts)):
        try:
            folder.rmdir()
        except OSError:
            pass
    if not keep_root:
        try:
            root.rmdir()
        except OSError:
            pass


__all__ = [
    "atomic_output",
    "fsync_dir",
    "fsync_file",
    "fsync_tree",
    "link_or_copy",
    "make_dirs",
    "remove_empty_dirs",
    "remove_tree",
    "replace",
    "tmp_path_for",
    "write_json",
    "write_parquet",
]
