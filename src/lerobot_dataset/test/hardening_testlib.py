"""Helpers for the dataset hardening tests (issue 9 items 9, 10, 12): small datasets, a child process that is
SIGKILLed at a chosen point of a save or an edit, and the file bytes of a dataset (to prove nothing changed)."""

from __future__ import annotations

import hashlib
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

from lerobot_dataset import LeRobotDatasetWriter

FPS = 10
STATE = {"observation.state": {"dtype": "float32", "shape": (2,), "names": ["a", "b"]}}
CAMERA = {"observation.images.cam": {"dtype": "video", "shape": (24, 32, 3), "names": ["height", "width", "channels"]}}


def frame(ep: int, i: int, video: bool = False) -> dict:
    out = {"observation.state": np.array([ep, i], np.float32)}
    if video:
        out["observation.images.cam"] = np.full((24, 32, 3), (40 * ep + 9 * i) % 256, np.uint8)
    return out


def record(root: Path, episodes: int = 3, length: int = 5, video: bool = False, **create_kwargs) -> Path:
    """A dataset of `episodes` episodes; episode e's state is [e, frame] and its task is 'task e'."""
    features = {**STATE, **(CAMERA if video else {})}
    with LeRobotDatasetWriter.create(root, FPS, features, use_videos=video, fsync=False, **create_kwargs) as writer:
        for ep in range(episodes):
            for i in range(length):
                writer.add_frame(frame(ep, i, video), task=f"task {ep}")
            writer.save_episode()
    return root


def file_digests(root: Path) -> dict[str, str]:
    """sha256 of every file under root (relative path -> digest)."""
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def run_and_kill(code: str, tmp_path: Path) -> int:
    """Run `code` in a child python; it SIGKILLs itself (os.kill) where the code says. Returns the exit code."""
    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent(code))
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, f"child was not killed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr[-3000:]}"
    return proc.returncode


def kill_during_save(root: Path, stage: str, tmp_path: Path, video: bool = False) -> None:
    """Open `root`, record one more episode and SIGKILL the process at save stage `stage`."""
    run_and_kill(f"""
        import os, signal, sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from hardening_testlib import frame
        from lerobot_dataset import LeRobotDatasetWriter
        w = LeRobotDatasetWriter.open({str(root)!r})
        ep = w.total_episodes
        for i in range(5):
            w.add_frame(frame(ep, i, {video!r}), task=f"task {{ep}}")
        w._test_hook = lambda name: os.kill(os.getpid(), signal.SIGKILL) if name == {stage!r} else None
        w.save_episode()
        """, tmp_path)


__all__ = ["FPS", "file_digests", "frame", "kill_during_save", "record", "run_and_kill"]
