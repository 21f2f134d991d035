"""lerobot_dataset is plain Python: it installs with pip on a machine without ROS, and importing it (or
lerobot_train, which reads datasets through it) never imports rclpy."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from lerobot_dataset import LeRobotDatasetWriter

PACKAGE_DIR = Path(__file__).resolve().parents[1]
WS = PACKAGE_DIR.parents[1]
CONSTRAINTS = WS / "requirements" / "constraints.txt"
# What a plain `pip install src/lerobot_dataset` needs from the index (install_requires and the build backend).
WHEELS = ["numpy", "pyarrow", "av", "pandas", "packaging", "tqdm", "setuptools", "wheel"]
# Wheels downloaded by the first run are kept here and installed offline afterwards (pip's own cache is disabled
# on some machines); delete the folder to download again.
WHEELHOUSE = Path(os.environ.get("LEROBOT_TEST_WHEELHOUSE", Path.home() / ".cache" / "lerobot_ros" / "wheels"))


def _run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def _record_small_dataset(root: Path) -> None:
    features = {
        "observation.state": {"dtype": "float32", "shape": (2,), "names": ["a", "b"]},
        "observation.images.cam": {"dtype": "video", "shape": (32, 48, 3), "names": ["height", "width", "channels"]},
    }
    with LeRobotDatasetWriter.create(root, 10, features, fsync=False) as writer:
        for i in range(6):
            writer.add_frame({"observation.state": np.array([i, -i], np.float32),
                              "observation.images.cam": np.full((32, 48, 3), 40 * i, np.uint8)}, task="wave")
        writer.save_episode()


@pytest.mark.slow
def test_pip_install_into_a_plain_venv_without_ros(tmp_path):
    """`pip install src/lerobot_dataset` into a fresh venv (no ROS wheels, no system packages), then read and
    validate a dataset there with the installed package and console script."""
    root = tmp_path / "ds"
    _record_small_dataset(root)
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    py, env = venv / "bin" / "python", {k: v for k, v in os.environ.items()
                                         if k not in ("PYTHONPATH", "AMENT_PREFIX_PATH", "VIRTUAL_ENV")}
    pip = [str(py), "-m", "pip", "--disable-pip-version-check", "-q"]
    WHEELHOUSE.mkdir(parents=True, exist_ok=True)
    offline = [*pip, "install", "--no-compile", "--no-index", "--find-links", str(WHEELHOUSE), "-c", str(CONSTRAINTS)]
    if subprocess.run([*offline, *WHEELS], capture_output=True, env=env).returncode != 0:
        _run([*pip, "download", "-d", str(WHEELHOUSE), "-c", str(CONSTRAINTS), *WHEELS], env=env, timeout=900)
        _run([*offline, *WHEELS], env=env)
    # pip builds in the source folder (build/, *.egg-info): install from a copy so the workspace stays clean.
    source = tmp_path / "lerobot_dataset_src"
    shutil.copytree(PACKAGE_DIR, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__", "test"))
    _run([*offline, str(source)], env=env, timeout=600)

    script = textwrap.dedent(
        f"""
        import importlib.util, json, sys
        assert importlib.util.find_spec("rclpy") is None, "the venv must not have ROS"
        from lerobot_dataset import LeRobotDatasetReader, validate_dataset
        import lerobot_dataset
        reader = LeRobotDatasetReader({str(root)!r}, return_uint8=True)
        item = reader[3]
        print(json.dumps({{
            "where": lerobot_dataset.__file__,
            "frames": len(reader),
            "state": item["observation.state"].tolist(),
            "pixel": int(item["observation.images.cam"].mean()),
            "task": item["task"],
            "valid": validate_dataset({str(root)!r}).ok,
            "rclpy": "rclpy" in sys.modules,
        }}))
        """
    )
    out = json.loads(_run([str(py), "-c", script], env=env, cwd=tmp_path).stdout.strip().splitlines()[-1])
    assert Path(out["where"]).is_relative_to(venv), out["where"]  # the installed copy, not the workspace's
    assert out["frames"] == 6 and out["state"] == [3.0, -3.0] and out["task"] == "wave"
    assert abs(out["pixel"] - 120) < 6 and out["valid"] and not out["rclpy"]
    cli = _run([str(venv / "bin" / "lerobot-dataset"), "validate", str(root)], env=env)
    assert "VALID" in cli.stdout


def test_importing_lerobot_dataset_or_lerobot_train_never_imports_rclpy():
    modules = ["lerobot_dataset", "lerobot_dataset.writer", "lerobot_dataset.reader", "lerobot_dataset.validate",
               "lerobot_dataset.tools", "lerobot_dataset.feature_edits", "lerobot_dataset.hub", "lerobot_dataset.cli",
               "lerobot_train"]
    script = textwrap.dedent(
        f"""
        import importlib, sys
        for name in {modules!r}:
            importlib.import_module(name)
        from lerobot_dataset import LeRobotDatasetWriter, LeRobotDatasetReader, validate_dataset  # lazy names too
        ros = sorted(m for m in sys.modules if m == "rclpy" or m.startswith(("rclpy.", "rosidl", "lerobot_msgs")))
        print(",".join(ros) or "none")
        """
    )
    proc = _run([sys.executable, "-c", script])
    assert proc.stdout.strip().splitlines()[-1] == "none"
