"""`lerobot-bringup FILE [name:=value ...]`: start a bringup file's processes where `ros2 launch` is missing.

Each process gets the command line launch_ros would give it (executable from `<prefix>/lib/<package>/`,
`--ros-args` with node name, namespace, parameter files and remappings). Output lines are prefixed with the
process name. Ctrl-C (SIGINT) or SIGTERM stops every process with SIGINT, so nodes run their shutdown path
(drivers switch torque off), then SIGKILL after a grace period. When a `required` process exits, the rest are
stopped and the exit code is that process's.
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from lerobot_recorder.bringup import (
    BringupError, ProcessSpec, inline_parameters_yaml, load_bringup, parse_overrides, ros_arguments,
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


def _pump(name: str, stream, lock: threading.Lock) -> None:
    for raw in iter(stream.readline, b""):
        with lock:
            sys.stdout.write(f"[{name}] {raw.decode(errors='replace')}")
            sys.stdout.flush()


def _stop_all(children: dict[str, subprocess.Popen]) -> None:
    for popen in children.values():
        if popen.poll() is None:
            os.killpg(popen.pid, signal.SIGINT)
    deadline = time.monotonic() + STOP_GRACE_S
    for name, popen in children.items():
        try:
            popen.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            print(f"[bringup] {name} did not stop within {STOP_GRACE_S} s; killing it", flush=True)
            os.killpg(popen.pid, signal.SIGKILL)
            popen.wait()


def run(bringup_path: str, overrides: dict[str, str], dry_run: bool = False) -> int:
    bringup = load_bringup(bringup_path, overrides)
    workdir = Path(tempfile.mkdtemp(prefix="lerobot-bringup-"))
    commands = {spec.name: command_line(spec, workdir) for spec in bringup.processes}
    if dry_run:
        for name, cmd in commands.items():
            print(f"{name}: {' '.join(cmd)}")
        return 0

    stop_requested = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop_requested.set())

    lock = threading.Lock()
    children: dict[str, subprocess.Popen] = {}
    exit_code = 0
    try:
        for spec in bringup.processes:
            if stop_requested.wait(spec.delay_s):
                break
            popen = subprocess.Popen(commands[spec.name], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     start_new_session=True)
            children[spec.name] = popen
            threading.Thread(target=_pump, args=(spec.name, popen.stdout, lock), daemon=True).start()
            print(f"[bringup] started {spec.name} (pid {popen.pid})", flush=True)
        required = {s.name for s in bringup.processes if s.required}
        while not stop_requested.is_set():
            finished = [n for n, p in children.items() if p.poll() is not None]
            failed_required = [n for n in finished if n in required]
            if failed_required or (children and len(finished) == len(children)):
                name = (failed_required or finished)[0]
                exit_code = children[name].returncode
                print(f"[bringup] {name} exited with code {exit_code}; stopping the others", flush=True)
                break
            time.sleep(0.1)
    finally:
        _stop_all(children)
    return exit_code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lerobot-bringup", description=__doc__.split("\n\n")[0])
    parser.add_argument("bringup_file", help="a config/bringup/*.yaml file")
    parser.add_argument("overrides", nargs="*", help="argument overrides as NAME:=VALUE")
    parser.add_argument("--dry-run", action="store_true", help="print the command lines and exit")
    args = parser.parse_args(argv)
    try:
        return run(args.bringup_file, parse_overrides(args.overrides), args.dry_run)
    except BringupError as exc:
        print(f"lerobot-bringup: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
