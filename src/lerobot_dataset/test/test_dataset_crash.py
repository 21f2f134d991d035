"""Crash safety: a writer process SIGKILLed at any instant loses at most the episode in progress; a disk-full
error while saving abandons that episode and leaves the dataset valid. `open()` repairs and recording goes on."""

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lerobot_dataset import LeRobotDatasetWriter
from lerobot_dataset import format as F
from lerobot_dataset import recovery as recovery_mod
from lerobot_dataset.writer import EpisodeSaveError

FPS = 30
H, W = 48, 64
CAMS = ["observation.images.front", "observation.images.wrist"]

# The child and the parent share these definitions (the child gets them as source text).
COMMON = textwrap.dedent(
    f"""
    import numpy as np
    FPS = {FPS}
    H, W = {H}, {W}
    CAMS = {CAMS!r}
    FEATURES = {{
        "observation.state": {{"dtype": "float32", "shape": (3,), "names": ["a", "b", "c"]}},
        CAMS[0]: {{"dtype": "video", "shape": (H, W, 3), "names": ["height", "width", "channels"]}},
        CAMS[1]: {{"dtype": "video", "shape": (H, W, 3), "names": ["height", "width", "channels"]}},
        "observation.images.top": {{"dtype": "image", "shape": (16, 16, 3), "names": ["height", "width", "channels"]}},
    }}

    def level(ep, i, cam):
        return 20 + (ep * 53 + i * 11 + cam * 97) % 200

    def episode_length(ep):
        return 8 + (ep * 5) % 7

    def task_of(ep):
        return f"task {{ep % 3}}"

    def frame(ep, i):
        return {{
            "observation.state": np.array([ep, i, ep * 100 + i], np.float32),
            CAMS[0]: np.full((H, W, 3), level(ep, i, 0), np.uint8),
            CAMS[1]: np.full((H, W, 3), level(ep, i, 1), np.uint8),
            "observation.images.top": np.full((16, 16, 3), (ep * 7 + i) % 256, np.uint8),
        }}
    """
)
exec(COMMON)  # noqa: S102 - defines FEATURES, level, episode_length, task_of, frame here too

CHILD = COMMON + textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from lerobot_dataset import LeRobotDatasetWriter

    root, mode, arg = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    if root.exists():
        w = LeRobotDatasetWriter.open(root)
    else:
        w = LeRobotDatasetWriter.create(root, FPS, FEATURES, data_files_size_in_mb=float(os.environ.get("DATA_MB", "100")),
                                        video_files_size_in_mb=float(os.environ.get("VIDEO_MB", "200")))

    def record(ep):
        for i in range(episode_length(ep)):
            w.add_frame(frame(ep, i), task=task_of(ep))

    def kill_at(stage):
        def hook(name):
            if name == stage:
                os.kill(os.getpid(), signal.SIGKILL)
        return hook

    ep = w.total_episodes
    if mode == "stage":          # save 2 episodes, die at save stage `arg` of the third
        for _ in range(2):
            record(ep); w.save_episode(); ep += 1
        w._test_hook = kill_at(arg)
        record(ep); w.save_episode()
        print("NOT KILLED", flush=True)
    elif mode == "mid_episode":  # save `arg` episodes, then record forever
        for _ in range(int(arg)):
            record(ep); w.save_episode(); ep += 1
        w.wait_for_videos()
        i = 0
        while True:
            w.add_frame(frame(ep, i % 50), task=task_of(ep)); i += 1
            if i == 5:
                print("RECORDING", flush=True)
    elif mode == "loop":         # save episodes until killed
        while True:
            record(ep); w.save_episode()
            print(f"SAVED {ep}", flush=True)
            ep += 1
    """
)


def run_child(tmp_path, root, mode, arg, env_extra=None, wait_for=None, kill_after_s=None):
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    env = dict(os.environ, **(env_extra or {}))
    proc = subprocess.Popen([sys.executable, str(script), str(root), mode, str(arg)], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, env=env, text=True)
    lines = []
    try:
        if wait_for is not None:
            deadline = time.monotonic() + 120
            for line in proc.stdout:
                lines.append(line.strip())
                if wait_for(lines) or time.monotonic() > deadline:
                    break
            if kill_after_s:
                time.sleep(kill_after_s)
            proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=120)
        lines += [ln.strip() for ln in proc.stdout]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, lines


def verify_dataset(root, expect_episodes=None):
    """Check every file of the dataset against the deterministic content of the child; return #episodes."""
    root = Path(root)
    info = json.loads((root / "meta/info.json").read_text())
    rows = []
    for p in sorted(root.glob("meta/episodes/*/*.parquet")):
        rows += pq.read_table(p).to_pylist()
    n_ep = len(rows)
    if expect_episodes is not None:
        assert n_ep == expect_episodes
    assert [r["episode_index"] for r in rows] == list(range(n_ep))
    lengths = [episode_length(e) for e in range(n_ep)]
    assert [r["length"] for r in rows] == lengths
    total = sum(lengths)
    assert (info["total_episodes"], info["total_frames"]) == (n_ep, total)
    tasks = list(pd.read_parquet(root / "meta/tasks.parquet").index) if n_ep else []
    assert info["total_tasks"] == len(tasks)
    assert sorted(tasks) == sorted({task_of(e) for e in range(n_ep)})  # no task of a lost episode survives
    # data: sorted files concatenated, row position == index, values are the child's
    files = sorted(root.glob("data/*/*.parquet"))
    data = pa.concat_tables([pq.read_table(p) for p in files]) if files else None
    if n_ep:
        assert data.column("index").to_pylist() == list(range(total))
        state = np.stack(data.column("observation.state").to_numpy(zero_copy_only=False))
        want = np.array([[e, i, e * 100 + i] for e in range(n_ep) for i in range(episode_length(e))], np.float32)
        np.testing.assert_array_equal(state, want)
        assert [tasks[t] for t in data.column("task_index").to_pylist()] == [task_of(e) for e in range(n_ep) for _ in range(episode_length(e))]
        for r in rows:
            f = F.data_file_path(root, r["data/chunk_index"], r["data/file_index"])
            t = pq.read_table(f)
            sel = t.filter(pa.compute.equal(t.column("episode_index"), r["episode_index"]))
            assert sel.column("index").to_pylist() == list(range(r["dataset_from_index"], r["dataset_to_index"]))
    else:
        assert not files
    # videos: each file holds exactly the frames its episodes say, at k/fps, with the right content
    for cam_no, cam in enumerate(CAMS):
        per_file = {}
        for r in rows:
            per_file.setdefault((r[f"videos/{cam}/chunk_index"], r[f"videos/{cam}/file_index"]), []).append(r)
        on_disk = sorted(root.glob(f"videos/{cam}/*/*.mp4"))
        assert [p.relative_to(root).as_posix() for p in on_disk] == [
            F.VIDEO_PATH.format(video_key=cam, chunk_index=c, file_index=f) for c, f in sorted(per_file)
        ]
        for (c, f), eps in per_file.items():
            with av.open(str(F.video_file_path(root, cam, c, f))) as cont:
                s = cont.streams.video[0]
                decoded = [(Fraction(fr.pts) * s.time_base, fr.to_ndarray(format="rgb24").mean()) for fr in cont.decode(s)]
            frames_in_file = round(eps[-1][f"videos/{cam}/to_timestamp"] * FPS)
            assert len(decoded) == frames_in_file
            assert [t for t, _ in decoded] == [Fraction(k, FPS) for k in range(frames_in_file)]
            for r in eps:
                start = round(r[f"videos/{cam}/from_timestamp"] * FPS)
                for i in (0, r["length"] - 1):
                    assert abs(decoded[start + i][1] - level(r["episode_index"], i, cam_no)) < 4
    stats = json.loads((root / "meta/stats.json").read_text()) if n_ep else None
    if n_ep:
        assert stats["index"]["count"] == [total] and stats["index"]["max"] == [total - 1]
        assert stats["observation.state"]["max"][0] == n_ep - 1
    assert not list(root.rglob(".*.tmp"))
    return n_ep


def append_and_verify(root, n_before):
    with LeRobotDatasetWriter.open(root) as w:
        assert w.total_episodes == n_before
        ep = w.total_episodes
        for i in range(episode_length(ep)):
            w.add_frame(frame(ep, i), task=task_of(ep))
        w.save_episode()
    assert not (Path(root) / ".staging").exists()
    verify_dataset(root, n_before + 1)


@pytest.mark.parametrize(
    "stage, committed",
    [
        ("journal_written", False),
        ("data_written", False),
        ("segments_staged", False),
        ("tasks_written", False),
        ("meta_written", True),
        ("info_written", True),
    ],
)
def test_sigkill_during_save_recovers(tmp_path, stage, committed):
    root = tmp_path / "ds"
    rc, lines = run_child(tmp_path, root, "stage", stage)
    assert rc == -signal.SIGKILL and "NOT KILLED" not in lines
    assert (root / ".staging" / "journal.json").exists()
    if stage not in ("journal_written", "info_written"):  # the first changes nothing, the last is complete
        # Killed between file replacements: the folder is inconsistent until open() repairs it.
        with pytest.raises(AssertionError):
            verify_dataset(root)
    # open() finishes (committed) or rolls back (not committed) the third episode.
    LeRobotDatasetWriter.open(root).close()
    n = verify_dataset(root, 3 if committed else 2)
    append_and_verify(root, n)


def test_sigkill_during_save_with_rollover_recovers(tmp_path):
    # tiny size limits: the killed episode had created new data/video/meta files, which must disappear
    root = tmp_path / "ds"
    rc, _ = run_child(tmp_path, root, "stage", "tasks_written", env_extra={"DATA_MB": "0.0001", "VIDEO_MB": "0.0001"})
    assert rc == -signal.SIGKILL
    assert len(list(root.glob("data/*/*.parquet"))) == 3
    LeRobotDatasetWriter.open(root).close()
    verify_dataset(root, 2)
    assert len(list(root.glob("data/*/*.parquet"))) == 2
    append_and_verify(root, 2)


def test_sigkill_mid_episode_loses_only_that_episode(tmp_path):
    root = tmp_path / "ds"
    rc, lines = run_child(tmp_path, root, "mid_episode", 2, wait_for=lambda ls: "RECORDING" in ls, kill_after_s=0.2)
    assert rc == -signal.SIGKILL and "RECORDING" in lines
    assert (root / ".staging" / "segments").exists()  # the interrupted episode's segments
    verify_dataset(root, 2)  # valid even before repair: nothing committed was touched
    LeRobotDatasetWriter.open(root).close()
    assert not (root / ".staging").exists()
    append_and_verify(root, 2)


def test_sigkill_mid_first_episode(tmp_path):
    """No episode was ever saved: there is no dataset (no meta/info.json), at most the interrupted episode's
    staging folder (the encoder threads create it; a loaded machine may kill the child before they ran), and a new
    writer reuses the folder."""
    root = tmp_path / "ds"
    rc, _ = run_child(tmp_path, root, "mid_episode", 0, wait_for=lambda ls: "RECORDING" in ls)
    assert rc == -signal.SIGKILL
    assert {p.name for p in root.iterdir()} <= {".staging"}
    with LeRobotDatasetWriter.create(root, FPS, FEATURES) as w:
        _record(w, 0)
        w.save_episode()
    assert not (root / ".staging").exists()
    verify_dataset(root, 1)
    append_and_verify(root, 1)


@pytest.mark.parametrize("delay", [0.0, 0.013, 0.031, 0.057])
def test_sigkill_at_arbitrary_instants(tmp_path, delay):
    """Kill a process that saves episodes back to back at arbitrary moments (often inside save_episode)."""
    root = tmp_path / "ds"
    rc, lines = run_child(
        tmp_path, root, "loop", 0, env_extra={"DATA_MB": "0.002", "VIDEO_MB": "0.02"},
        wait_for=lambda ls: sum(ln.startswith("SAVED") for ln in ls) >= 3, kill_after_s=delay,
    )
    assert rc == -signal.SIGKILL
    saved = sum(ln.startswith("SAVED") for ln in lines)
    LeRobotDatasetWriter.open(root).close()
    n = verify_dataset(root)
    assert n in (saved, saved + 1)  # the episode being saved at the kill is either fully in or fully out
    append_and_verify(root, n)


# ---------------------------------------------------------------------------------------------- disk full
def _record(w, ep):
    for i in range(episode_length(ep)):
        w.add_frame(frame(ep, i), task=task_of(ep))


def _enospc(*_a, **_k):
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("stage", ["encoders_flushed", "journal_written", "data_written", "segments_staged", "tasks_written"])
def test_disk_full_while_saving_abandons_episode(tmp_path, stage):
    root = tmp_path / "ds"
    with LeRobotDatasetWriter.create(root, FPS, FEATURES) as w:
        for ep in range(2):
            _record(w, ep)
            w.save_episode()
        w._test_hook = lambda name: _enospc() if name == stage else None
        _record(w, 2)
        with pytest.raises(EpisodeSaveError, match="disk full.*keeps 2 episodes"):
            w.save_episode()
        w._test_hook = None
        assert w.total_episodes == 2 and w.episode_length == 0
        w.wait_for_videos()
        verify_dataset(root, 2)
        _record(w, 2)  # recording goes on
        assert w.save_episode().episode_index == 2
    verify_dataset(root, 3)


def test_disk_full_in_real_writes(tmp_path, monkeypatch):
    """ENOSPC raised by the actual file writes: the data parquet (episode abandoned, dataset unchanged) and the
    background video append (episode committed; its segment stays pending and is appended once possible)."""
    root = tmp_path / "ds"
    with LeRobotDatasetWriter.create(root, FPS, FEATURES) as w:
        _record(w, 0)
        w.save_episode()
        w.wait_for_videos()

        real_write_table = pq.ParquetWriter.write_table
        monkeypatch.setattr(pq.ParquetWriter, "write_table", _enospc)
        _record(w, 1)
        with pytest.raises(EpisodeSaveError, match="disk full"):
            w.save_episode()
        monkeypatch.setattr(pq.ParquetWriter, "write_table", real_write_table)
        verify_dataset(root, 1)

        real_concat = recovery_mod.concat_segment

        def concat_then_fail(target, segment, tmp):
            real_concat(target, segment, tmp)  # the temp file is really written, then the disk "fills up"
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(recovery_mod, "concat_segment", concat_then_fail)
        _record(w, 1)
        assert w.save_episode().episode_index == 1  # committed; the video append runs in the background
        with pytest.raises(EpisodeSaveError, match="video append.*No space left"):
            w.wait_for_videos()
        assert w.videos_pending == 2  # both cameras' segments kept
        assert not list(root.rglob(".*.tmp"))
        monkeypatch.setattr(recovery_mod, "concat_segment", real_concat)  # space is back
        w.wait_for_videos()  # retried
        assert w.videos_pending == 0
        verify_dataset(root, 2)
        _record(w, 2)
        w.save_episode()
    verify_dataset(root, 3)
    append_and_verify(root, 3)


def test_failed_video_append_is_finished_by_open(tmp_path, monkeypatch):
    root = tmp_path / "ds"
    w = LeRobotDatasetWriter.create(root, FPS, FEATURES)
    for ep in range(2):
        _record(w, ep)
        w.save_episode()
    w.wait_for_videos()
    monkeypatch.setattr(recovery_mod, "concat_segment", _enospc)
    _record(w, 2)
    w.save_episode()
    with pytest.raises(EpisodeSaveError, match="pending"):
        w.close()
    assert len(list((root / ".staging" / "pending").glob("*/*.mp4"))) == 2
    monkeypatch.undo()
    LeRobotDatasetWriter.open(root).close()
    verify_dataset(root, 3)


def test_failure_after_commit_keeps_episode_and_recording_goes_on(tmp_path):
    """info.json/stats.json cannot be written (e.g. disk full) after the episode was committed: the episode is
    kept, the error says so, and the next save (or open()) brings info/stats up to date."""
    root = tmp_path / "ds"
    with LeRobotDatasetWriter.create(root, FPS, FEATURES) as w:
        _record(w, 0)
        w.save_episode()
        w._test_hook = lambda name: _enospc() if name == "meta_written" else None
        _record(w, 1)
        with pytest.raises(EpisodeSaveError, match="episode 1 was saved, but updating info.json"):
            w.save_episode()
        w._test_hook = None
        assert w.total_episodes == 2 and w.episode_length == 0
        _record(w, 2)
        assert w.save_episode().episode_index == 2
    verify_dataset(root, 3)
    append_and_verify(root, 3)
