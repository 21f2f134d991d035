"""Drive upstream lerobot 0.4.4 (the .venv-oracle interpreter) from our pytest process.

The oracle runs in its own venv because upstream pins a different torch/torchvision; tests talk to it only by
running the scripts in this folder in a subprocess and exchanging files (npz / json). `ensure_oracle()` builds
the venv on first use (scripts/setup_oracle.sh is a fast no-op once built), so `pytest` alone works as well as
`make test`. Results that every test needs (the upstream-written dataset) are built once per pytest session and
memoised here: this module is imported once per session (tests/ is on the pytest pythonpath).
"""

from __future__ import annotations

import atexit
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

ORACLE_DIR = Path(__file__).resolve().parent
WS = ORACLE_DIR.parents[1]
ORACLE_VENV = Path(os.environ.get("ORACLE_VENV", WS / ".venv-oracle"))
ORACLE_PYTHON = ORACLE_VENV / "bin" / "python"
SETUP_SCRIPT = WS / "scripts" / "setup_oracle.sh"

_session_dir: Path | None = None
_cache: dict[Any, Any] = {}
_counter = itertools.count()


def session_dir() -> Path:
    global _session_dir
    if _session_dir is None:
        _session_dir = Path(tempfile.mkdtemp(prefix="lerobot-oracle-"))
        atexit.register(shutil.rmtree, _session_dir, True)
    return _session_dir


def ensure_oracle() -> Path:
    if "ready" not in _cache:
        proc = subprocess.run(["bash", str(SETUP_SCRIPT)], capture_output=True, text=True, timeout=1200)
        if proc.returncode != 0:
            raise RuntimeError(f"scripts/setup_oracle.sh failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        _cache["ready"] = True
    return ORACLE_PYTHON


def run_oracle(script: str, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run tests/oracle/<script> with the oracle interpreter, offline, with a private HF cache."""
    python = ensure_oracle()
    env = dict(os.environ)
    for var in ("PYTHONPATH", "VIRTUAL_ENV", "AMENT_PREFIX_PATH", "PYTHONHOME"):
        env.pop(var, None)
    hf_home = session_dir() / "hf_home"
    env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", HF_HOME=str(hf_home), HF_LEROBOT_HOME=str(hf_home / "lerobot"),
               TQDM_DISABLE="1", SVT_LOG="1")
    proc = subprocess.run(
        [str(python), str(ORACLE_DIR / script), *args], capture_output=True, text=True, timeout=timeout, env=env
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"oracle script {script} {' '.join(args)} failed ({proc.returncode}):\n"
            f"--- stdout\n{proc.stdout[-4000:]}\n--- stderr\n{proc.stderr[-8000:]}"
        )
    return proc


UPSTREAM_VCODECS = ("libsvtav1", "h264")


def upstream_dataset(vcodec: str = "libsvtav1") -> Path:
    """A dataset written by upstream LeRobotDataset (built once per session; treat it as read-only).
    All UPSTREAM_VCODECS are written by one oracle process on first use."""
    key = ("upstream_dataset", vcodec)
    if key not in _cache:
        wanted = [v for v in dict.fromkeys((*UPSTREAM_VCODECS, vcodec)) if ("upstream_dataset", v) not in _cache]
        roots = {v: session_dir() / f"upstream_{v}" for v in wanted}
        run_oracle("write_upstream_dataset.py", *[f"{root}:{v}" for v, root in roots.items()])
        for v, root in roots.items():
            _cache[("upstream_dataset", v)] = root
    return _cache[key]


def our_dataset(vcodec: str = "libsvtav1") -> Path:
    """The same synthetic episodes written by OUR writer in this process (built once per session; read-only)."""
    key = ("our_dataset", vcodec)
    if key not in _cache:
        from oracle.our_writer_dataset import write_with_our_writer

        _cache[key] = write_with_our_writer(session_dir() / f"ours_{vcodec}", vcodec=vcodec)
    return _cache[key]


def copy_dataset(root: Path, name: str) -> Path:
    """A private copy of a dataset that a test may corrupt."""
    dst = session_dir() / "copies" / name
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(root, dst)
    return dst


class UpstreamItems:
    """Items dumped by read_with_upstream.py: `items[i]` is the dict upstream's `ds[i]` returned (as numpy)."""

    def __init__(self, npz_path: Path) -> None:
        data = np.load(npz_path)
        self.length = int(data["__len__"])
        self.num_episodes = int(data["__num_episodes__"])
        self.indices = [int(i) for i in data["__indices__"]]
        strings = json.loads(Path(str(npz_path) + ".json").read_text())
        self._items: dict[int, dict[str, Any]] = {i: {} for i in self.indices}
        for name in data.files:
            if name.startswith("__"):
                continue
            i, key = name.split("|", 1)
            self._items[int(i)][key] = data[name]
        for name, value in strings.items():
            i, key = name.split("|", 1)
            self._items[int(i)][key] = value

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self._items[i]


def read_many_with_upstream(jobs: dict[str, tuple[Path, dict | None]]) -> dict[str, UpstreamItems]:
    """Upstream `LeRobotDataset(root=root, **spec)` items for each named (root, spec), memoised; everything not
    yet computed is read by ONE oracle process (its start-up, importing torch and lerobot, is the main cost)."""
    out_dir = session_dir() / "reads"
    out_dir.mkdir(exist_ok=True)
    keys = {name: ("read", str(root), json.dumps(spec or {}, sort_keys=True)) for name, (root, spec) in jobs.items()}
    todo = []
    for name, key in keys.items():
        if key in _cache or any(key == keys[t] for t in todo):
            continue
        out = out_dir / f"read_{next(_counter)}.npz"
        todo.append(name)
        _cache[("pending", key)] = out
    if todo:
        job_file = out_dir / f"jobs_{next(_counter)}.json"
        job_file.write_text(json.dumps([
            {"root": str(jobs[n][0]), "out": str(_cache[("pending", keys[n])]), "spec": jobs[n][1] or {}} for n in todo
        ]))
        run_oracle("read_with_upstream.py", str(job_file))
        for n in todo:
            _cache[keys[n]] = UpstreamItems(_cache.pop(("pending", keys[n])))
    return {name: _cache[key] for name, key in keys.items()}


def read_with_upstream(root: Path, spec: dict | None = None) -> UpstreamItems:
    """Upstream `LeRobotDataset(root=root, **spec)` items (memoised per (root, spec))."""
    return read_many_with_upstream({"one": (root, spec)})["one"]
