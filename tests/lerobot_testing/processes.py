"""Start real processes (nodes, simulators) for graph tests and make sure they end with the test."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path


class ManagedProcess:
    """A child process whose combined output goes to a log file, so a failing test can show it."""

    def __init__(self, args: list[str], log_path: Path, env: dict | None = None, cwd: str | None = None):
        self.args = args
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.popen = subprocess.Popen(
            args, stdout=self._log, stderr=subprocess.STDOUT, env=env or os.environ.copy(), cwd=cwd,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def output(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def wait_for_output(self, text: str, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.output():
                return
            if self.popen.poll() is not None:
                raise RuntimeError(f"{self.args} exited ({self.popen.returncode}) before printing {text!r}:\n{self.output()}")
            time.sleep(0.05)
        raise TimeoutError(f"{self.args} did not print {text!r} within {timeout} s:\n{self.output()}")

    def send_signal(self, sig: int) -> None:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, sig)

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGINT (what Ctrl-C sends, so nodes run their shutdown path), then SIGKILL if it hangs."""
        if self.popen.poll() is None:
            self.send_signal(signal.SIGINT)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.send_signal(signal.SIGKILL)
                self.popen.wait(5)
        self._log.close()
        return self.popen.returncode


def python_module(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]
