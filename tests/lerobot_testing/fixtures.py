"""pytest fixtures for graph tests: processes that die with the test, an rclpy context per test."""
from __future__ import annotations

import pytest

from lerobot_testing.processes import ManagedProcess


@pytest.fixture
def spawn(tmp_path):
    """spawn(args, name) starts a ManagedProcess logged to tmp_path/<name>.log; all are stopped at teardown."""
    started: list[ManagedProcess] = []

    def _spawn(args: list[str], name: str, env: dict | None = None, cwd: str | None = None) -> ManagedProcess:
        proc = ManagedProcess(args, tmp_path / f"{name}.log", env=env, cwd=cwd)
        started.append(proc)
        return proc

    yield _spawn
    for proc in reversed(started):
        proc.stop()


@pytest.fixture
def rclpy_context():
    """An initialised rclpy context of this test alone (shut down afterwards)."""
    import rclpy
    from rclpy.context import Context

    context = Context()
    rclpy.init(context=context)
    yield context
    context.try_shutdown()
