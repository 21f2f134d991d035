"""Issue 9 item 10, power loss: after a rename the folder is flushed (a rename lives in the directory), new chunk
folders are flushed into their parents, backup links are durable before the original is replaced, a rollback
whose backup is missing fails loudly, and recovery checks the data rows against meta/episodes.

A power loss cannot be simulated here, so the tests record the file-system calls the writer makes (mkdir, link,
replace, fsync, in order, from every thread) and check the order that makes each step durable."""

from __future__ import annotations

import os
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from hardening_testlib import CAMERA, FPS, STATE, file_digests, frame, kill_during_save, record  # noqa: E402

from lerobot_dataset import LeRobotDatasetWriter, cli  # noqa: E402
from lerobot_dataset.errors import DatasetFormatError  # noqa: E402


@dataclass(frozen=True)
class FsCall:
    op: str  # mkdir, link, replace, fsync
    path: Path  # the created / linked / renamed-to / flushed path
    source: Path | None = None  # link and replace: the existing path


class FsCallLog:
    """Patches os.mkdir, os.link, os.replace and os.fsync to log what they are called on (in call order)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[FsCall] = []
        self._lock = threading.Lock()
        real = {name: getattr(os, name) for name in ("mkdir", "link", "replace", "fsync")}

        def log(call: FsCall) -> None:
            with self._lock:
                self.calls.append(call)

        def mkdir(path, *args, **kwargs):
            real["mkdir"](path, *args, **kwargs)
            log(FsCall("mkdir", Path(os.fsdecode(path)).absolute()))

        def link(src, dst, *args, **kwargs):
            real["link"](src, dst, *args, **kwargs)
            log(FsCall("link", Path(os.fsdecode(dst)).absolute(), Path(os.fsdecode(src)).absolute()))

        def replace(src, dst, *args, **kwargs):
            real["replace"](src, dst, *args, **kwargs)
            log(FsCall("replace", Path(os.fsdecode(dst)).absolute(), Path(os.fsdecode(src)).absolute()))

        def fsync(fd):
            real["fsync"](fd)
            log(FsCall("fsync", Path(os.readlink(f"/proc/self/fd/{fd}"))))

        for name, fn in (("mkdir", mkdir), ("link", link), ("replace", replace), ("fsync", fsync)):
            monkeypatch.setattr(os, name, fn)

    def flushed_after(self, position: int, path: Path) -> int | None:
        """Position of the first fsync of `path` after `position`, or None."""
        return next((i for i, c in enumerate(self.calls[position + 1 :], position + 1) if c.op == "fsync" and c.path == path), None)


def test_renames_new_chunk_folders_and_backups_are_made_durable(tmp_path, monkeypatch):
    root = tmp_path / "ds"
    log = FsCallLog(monkeypatch)
    # chunks_size=1 and tiny files: every save starts new files in new chunk folders, so every kind of step happens.
    with LeRobotDatasetWriter.create(root, FPS, {**STATE, **CAMERA}, chunks_size=1, data_files_size_in_mb=0.002,
                                     video_files_size_in_mb=0.02, rewrite_limit_mb=0.002) as writer:
        for ep in range(4):
            for i in range(5):
                writer.add_frame(frame(ep, i, video=True), task=f"task {ep % 2}")
            writer.save_episode()
        writer.wait_for_videos()
    # .staging/segments is the scratch space of the episode being recorded: a power loss loses that episode by
    # design, so its folders need no flush (the segment's rename out of it is checked like every other).
    scratch = root / ".staging" / "segments"

    def checked(c: FsCall) -> bool:
        return (c.path.is_relative_to(root) or c.path == root) and not c.path.is_relative_to(scratch)

    assert any(c.op == "mkdir" and c.path.name == "chunk-001" for c in log.calls)
    problems = []
    for pos, c in enumerate(log.calls):
        if not checked(c) or c.op not in ("mkdir", "replace", "link"):
            continue
        flushed = log.flushed_after(pos, c.path.parent)
        if flushed is None:
            problems.append(f"{c.op} {c.path.relative_to(tmp_path)}: its folder is never flushed afterwards")
        if c.op == "link":  # a backup: durable before its original is replaced
            replaced = next((j for j, d in enumerate(log.calls[pos + 1 :], pos + 1)
                             if d.op == "replace" and d.path == c.source), None)
            if replaced is not None and (flushed is None or flushed > replaced):
                problems.append(f"backup {c.path.relative_to(tmp_path)} is not durable before {c.source.name} is replaced")
    assert not problems, "\n".join(problems)
    assert any(c.op == "link" and checked(c) for c in log.calls)  # backups were taken (episodes 1..3 rewrote tasks and meta files)


def test_rollback_fails_loudly_when_a_backup_is_missing(tmp_path):
    root = record(tmp_path / "ds", episodes=2)
    kill_during_save(root, "data_written", tmp_path)  # the data file holds part of episode 2; backups protect it
    backup = root / ".staging/backup/data/chunk-000/file-000.parquet"
    assert backup.exists()
    backup.unlink()  # lost (e.g. to a power loss on a file system that did not keep it)
    before = file_digests(root)
    with pytest.raises(DatasetFormatError, match=r"cannot undo the interrupted save of episode 2: backup.*missing"):
        LeRobotDatasetWriter.open(root)
    assert file_digests(root) == before  # nothing was changed, the journal is still there for a human
    assert cli.main(["recover", str(root)]) == 1


def test_recovery_checks_data_rows_against_the_metadata(tmp_path, capsys):
    """meta/episodes lists 3 episodes but the data file lost the last one's rows (its rename did not survive):
    opening for append must refuse, not append episode 3 after a hole."""
    root = record(tmp_path / "ds", episodes=3)
    data = root / "data/chunk-000/file-000.parquet"
    table = pq.read_table(data)
    pq.write_table(table.filter(pc.not_equal(table["episode_index"], 2)), data)
    with pytest.raises(DatasetFormatError, match=r"data/chunk-000/file-000.parquet does not match meta/episodes.*episode 2: 0 rows"):
        LeRobotDatasetWriter.open(root)
    assert cli.main(["recover", str(root)]) == 1
    assert "does not match meta/episodes" in capsys.readouterr().err

    # rows of an episode meta/episodes does not know (a data rename that survived while the meta rename did not)
    root2 = record(tmp_path / "ds2", episodes=2)
    data2 = root2 / "data/chunk-000/file-000.parquet"
    table2 = pq.read_table(data2)
    extra = table2.slice(0, 3).set_column(table2.schema.get_field_index("episode_index"), "episode_index",
                                          pa.array(np.full(3, 2, np.int64)))
    pq.write_table(pa.concat_tables([table2, extra]), data2)
    with pytest.raises(DatasetFormatError, match=r"rows of episodes \[2\] that meta/episodes does not place"):
        LeRobotDatasetWriter.open(root2)
