"""`lerobot-bringup NAME|FILE [name:=value ...]`: start a bringup file's processes where `ros2 launch` is missing.

NAME is a bringup file's name (`so101_record`) looked up in the installed share/lerobot_bringup/config/bringup
(and $LEROBOT_BRINGUP_PATH); a path works too. Each process gets the command line launch_ros would give it
(executable from `<prefix>/lib/<package>/`, `--ros-args` with node name, namespace, parameter files and
remappings). Output lines are prefixed with the process name. Every process that exits is announced with its exit
code; when a `required` one exits, the rest are stopped and the exit code is that process's. Ctrl-C (SIGINT) or
SIGTERM stops every process with SIGINT, so nodes run their shutdown path (drivers switch torque off) — nodes
before plain processes such as simulators — then SIGKILL after a grace period. The temporary folder of inline
parameter files is removed on exit (also after --dry-run).
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from lerobot_bringup.runner import (
    BringupError, ProcessSpec, available_bringups, find_bringup, inline_parameters_yaml, load_bringup,
    parse_overrides, ros_arguments,
)

STOP_GRACE_S = 10.0


def resolve_executable(spec: ProcessSpec) -> Path:
    from ament_index_python.packages import PackageNotFoundError, get_package_prefix

    try:
        prefix = Path(get_package_prefix(spec.package))
    except PackageNotFoundError as exc:
        raise BringupError(
            f"process {spec.name!r}: package {spec.package!r} is not installed (did you source env.bash?)") from exc
    executable = prefix / "lib" / spec.package / spec.executable
    if not executable.exists():
        raise BringupError(f"process {spec.name!r}: {executable} does not exist (package {spec.package!r} "
                           f"has no executable {spec.executable!r}; rebuild with `make setup`?)")
    return executable


def command_line(spec: ProcessSpec, workdir: Path) -> list[str]:
    inline_file = None
    if spec.ros_node and spec.parameters:
        inline_file = workdir / f"{spec.name}.params.yaml"
        inline_file.write_text(inline_parameters_yaml(spec))
    return [str(resolve_executable(spec)), *spec.args, *ros_arguments(spec, inline_file)]


def _pump(name: str, stream, lock: threading.Lock, log_file=None) -> None:
    for raw in iter(stream.readline, b""):
        line = raw.decode(errors="replace")
        with lock:
            if log_file is not None:
                log_file.write(f"[{name}] {line}")
                log_file.flush()
            else:
                sys.stdout.write(f"[{name}] {line}")
                sys.stdout.flush()


class BringupRunner:
    """Starts a bringup's processes, watches them, stops them all. Used by `lerobot-bringup` and by the demo.

    log_path: where the processes' prefixed output goes (default: this process's stdout).
    """

    def __init__(self, bringup: str | Path, overrides: dict[str, str] | None = None,
                 log_path: str | Path | None = None):
        self.bringup = load_bringup(find_bringup(bringup), overrides)
        self.workdir = Path(tempfile.mkdtemp(prefix="lerobot-bringup-"))
        try:
            self.commands = {spec.name: command_line(spec, self.workdir) for spec in self.bringup.processes}
        except BaseException:
            self.remove_workdir()
            raise
        self.children: dict[str, subprocess.Popen] = {}
        self._announced: set[str] = set()
        self._lock = threading.Lock()
        self._log_file = open(log_path, "w") if log_path else None

    def remove_workdir(self) -> None:
        """The inline parameter files are only needed while the processes start: remove their folder."""
        shutil.rmtree(self.workdir, ignore_errors=True)

    def start(self, stop_requested: threading.Event | None = None) -> None:
        stop_requested = stop_requested or threading.Event()
        for spec in self.bringup.processes:
            if stop_requested.wait(spec.delay_s):
                return
            popen = subprocess.Popen(self.commands[spec.name], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     start_new_session=True)
            self.children[spec.name] = popen
            threading.Thread(target=_pump, args=(spec.name, popen.stdout, self._lock, self._log_file),
                             daemon=True).start()
            self._say(f"started {spec.name} (pid {popen.pid})")

    def exited(self) -> tuple[str, int] | None:
        """(name, exit code) of a required process that ended, or of the last one when all ended; else None.

        Every process that ends is announced once, required or not: a camera that exits must not go unnoticed."""
        finished = [n for n, p in self.children.items() if p.poll() is not None]
        for name in finished:
            if name not in self._announced:
                self._announced.add(name)
                required = any(s.required and s.name == name for s in self.bringup.processes)
                code = self.children[name].returncode
                self._say(f"{name} exited with code {code}" + ("" if required else
                          " (not required: the other processes keep running; see its output above)"))
        required = [n for n in finished if any(s.required and s.name == n for s in self.bringup.processes)]
        if required or (self.children and len(finished) == len(self.children)):
            name = (required or finished)[0]
            return name, self.children[name].returncode
        return None

    def stop(self) -> None:
        """SIGINT to the ROS nodes first (drivers switch torque off while their bus is still there), then to the
        plain processes (simulators); SIGKILL whatever outlives the grace period."""
        is_node = {spec.name: spec.ros_node for spec in self.bringup.processes}
        for layer in (True, False):
            members = {n: p for n, p in self.children.items() if is_node[n] == layer}
            for popen in members.values():
                if popen.poll() is None:
                    os.killpg(popen.pid, signal.SIGINT)
            deadline = time.monotonic() + STOP_GRACE_S
            for name, popen in members.items():
                try:
                    popen.wait(max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    self._say(f"{name} did not stop within {STOP_GRACE_S} s; killing it")
                    os.killpg(popen.pid, signal.SIGKILL)
                    popen.wait()
        self.remove_workdir()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def _say(self, text: str) -> None:
        with self._lock:
            print(f"[bringup] {text}", flush=True, file=self._log_file or sys.stdout)


def run(bringup: str, overrides: dict[str, str], dry_run: bool = False) -> int:
    runner = BringupRunner(bringup, overrides)
    if dry_run:
        try:
            for name, cmd in runner.commands.items():
                print(f"{name}: {' '.join(cmd)}")
        finally:
            runner.remove_workdir()
        return 0
    stop_requested = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop_requested.set())
    exit_code = 0
    try:
        runner.start(stop_requested)
        while not stop_requested.wait(0.1):
            ended = runner.exited()
            if ended:
                name, exit_code = ended
                print(f"[bringup] {name} ended the bringup (exit code {exit_code}); stopping the others", flush=True)
                break
    finally:
        runner.stop()
    return exit_code


def main(argv: list[str] | None = None) -> int:
    names = ", ".join(available_bringups()) or "none installed (run make setup)"
    parser = argparse.ArgumentParser(prog="lerobot-bringup", description=__doc__.split("\n\n")[0],
                                     epilog=f"bringup files by name: {names}")
    parser.add_argument("bringup", help="a bringup file's name (e.g. sim_so101_record) or path")
    parser.add_argument("overrides", nargs="*", help="argument overrides as NAME:=VALUE (see --show-arguments)")
    parser.add_argument("--dry-run", action="store_true", help="print the command lines and exit")
    parser.add_argument("--show-arguments", action="store_true",
                        help="print the bringup file's arguments with their defaults and exit")
    args = parser.parse_intermixed_args(argv)  # flags may come after NAME:=VALUE items
    try:
        if args.show_arguments:
            bringup = load_bringup(find_bringup(args.bringup))
            print(f"{bringup.path}: {bringup.description}")
            for name, value in bringup.arguments.items():
                print(f"  {name}:={value}")
            return 0
        return run(args.bringup, parse_overrides(args.overrides), args.dry_run)
    except BringupError as exc:
        print(f"lerobot-bringup: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
