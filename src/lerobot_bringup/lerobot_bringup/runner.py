"""Bringup files: one definition of a set of processes, started by `ros2 launch` or by `lerobot-bringup`.

A bringup file (`config/bringup/*.yaml`) lists the processes of a setup (servo simulators, drivers, cameras,
recorder, ...) with their parameters. The launch files in `launch/` translate it into launch_ros actions on machines
with a full ROS 2 install; `lerobot-bringup` (bringup_cli.py) starts the same processes in the pip environment,
where `ros2 launch` does not exist. Both read the file through `load_bringup`, so there is no second copy of node
lists or parameters.

Schema::

    description: text
    include: [other.yaml]           # optional: that file's arguments and processes come first
    arguments:                      # defaults; override with name:=value on either command line
      dataset_root: /tmp/lerobot_demo
    processes:
      - name: follower              # node name (or label of a plain process)
        package: lerobot_drivers    # executable is looked up in <prefix of package>/lib/<package>/
        executable: arm_driver
        ros_node: true              # false for plain programs (e.g. lerobot-servo-sim): no --ros-args
        namespace: follower         # optional
        args: [--flag, value]       # optional command-line arguments (before --ros-args)
        parameter_files: [../params/follower.yaml]   # optional, relative to this file
        parameters: {port: /tmp/lerobot_sim/follower, rate: 100.0}
        remappings: {joint_commands: /leader/joint_states}
        delay_s: 0.5                # optional start delay
        required: true              # the whole bringup stops when this process exits

Strings may contain `$(arg NAME)`, replaced by the argument's value (after command-line overrides), and
`$(dirname)`, replaced by the directory of the file the string is in (as in ROS 2 XML launch files).

Bringup files are found by path, or by name (`so101_record`, `so101_record.yaml`) in `bringup_dirs()`:
$LEROBOT_BRINGUP_PATH (':'-separated), then the installed share/lerobot_bringup/config/bringup, so
`lerobot-bringup so101_record` and the launch files work from any folder.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

_ARG_PATTERN = re.compile(r"\$\(arg ([A-Za-z_][A-Za-z0-9_]*)\)")
_DIRNAME = "$(dirname)"
_PROCESS_KEYS = {
    "name", "package", "executable", "ros_node", "namespace", "args", "parameter_files", "parameters",
    "remappings", "delay_s", "required",
}


class BringupError(ValueError):
    """A bringup file that cannot be used; the message names the file and the entry."""


@dataclass
class ProcessSpec:
    name: str
    package: str
    executable: str
    ros_node: bool = True
    namespace: str = ""
    args: list[str] = field(default_factory=list)
    parameter_files: list[Path] = field(default_factory=list)
    parameters: dict = field(default_factory=dict)
    remappings: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    required: bool = False


@dataclass
class Bringup:
    path: Path
    description: str
    arguments: dict[str, str]
    processes: list[ProcessSpec]


def bringup_dirs() -> list[Path]:
    """Where bringup files are looked up by name: $LEROBOT_BRINGUP_PATH, then the installed share directory."""
    dirs = [Path(p) for p in os.environ.get("LEROBOT_BRINGUP_PATH", "").split(os.pathsep) if p]
    try:
        from ament_index_python.packages import get_package_share_directory

        dirs.append(Path(get_package_share_directory("lerobot_bringup")) / "config" / "bringup")
    except Exception:  # noqa: BLE001 - not installed through colcon: only $LEROBOT_BRINGUP_PATH applies
        pass
    return dirs


def available_bringups() -> list[str]:
    """Names of the bringup files found in bringup_dirs()."""
    return sorted({p.stem for d in bringup_dirs() if d.is_dir() for p in d.glob("*.yaml")})


def find_bringup(name_or_path: str | os.PathLike) -> Path:
    """A bringup file given a path, or a name such as `so101_record` (with or without .yaml) in bringup_dirs()."""
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path.absolute()
    name = path.name if path.suffix in (".yaml", ".yml") else f"{path.name}.yaml"
    if path.parent == Path("."):  # a bare name: look it up
        for directory in bringup_dirs():
            if (directory / name).is_file():
                return (directory / name).absolute()
    known = ", ".join(available_bringups()) or "none found"
    raise BringupError(f"bringup file {str(name_or_path)!r} not found: not a file, and not a name in "
                       f"{[str(d) for d in bringup_dirs()]} (known names: {known})")


def parse_overrides(items: list[str]) -> dict[str, str]:
    """`name:=value` command-line items (as ros2 launch takes them) -> dict."""
    overrides = {}
    for item in items:
        if ":=" not in item:
            raise BringupError(f"argument {item!r}: expected NAME:=VALUE")
        name, value = item.split(":=", 1)
        overrides[name] = value
    return overrides


def _read_document(path: Path, seen: tuple[Path, ...] = ()) -> tuple[dict[str, str], list[tuple[Path, int, dict]]]:
    """Arguments and raw process entries of a file, its includes first. Entries keep their file for errors."""
    if path in seen:
        raise BringupError(f"{path}: include cycle through {[str(p) for p in seen]}")
    try:
        document = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise BringupError(f"{path}: cannot read bringup file: {exc}") from exc
    if not isinstance(document, dict) or not isinstance(document.get("processes", []), list):
        raise BringupError(f"{path}: expected a mapping with a 'processes' list")
    if "processes" not in document and "include" not in document:
        raise BringupError(f"{path}: expected a mapping with a 'processes' list")
    arguments: dict[str, str] = {}
    entries: list[tuple[Path, int, dict]] = []
    includes = document.get("include", [])
    for include in [includes] if isinstance(includes, str) else includes:
        included_arguments, included_entries = _read_document((path.parent / include).resolve(), seen + (path,))
        arguments.update(included_arguments)
        entries += included_entries
    arguments.update({str(k): str(v) for k, v in (document.get("arguments") or {}).items()})
    entries += [(path, index, entry) for index, entry in enumerate(document.get("processes", []))]
    return arguments, entries


def load_bringup(path: str | Path, overrides: dict[str, str] | None = None) -> Bringup:
    path = Path(path).resolve()
    arguments, entries = _read_document(path)
    for name in overrides or {}:
        if name not in arguments:
            raise BringupError(f"{path}: unknown argument {name!r}; known: {sorted(arguments)}")
    arguments.update(overrides or {})

    def substitute(value, where: str, source: Path):
        if isinstance(value, str):
            def replace(match):
                if match.group(1) not in arguments:
                    raise BringupError(f"{source}: {where}: $(arg {match.group(1)}) is not declared under 'arguments'")
                return arguments[match.group(1)]
            replaced = _ARG_PATTERN.sub(replace, value).replace(_DIRNAME, str(source.parent))
            # A value that was only a substitution keeps YAML typing (numbers, booleans) of the argument.
            if _ARG_PATTERN.fullmatch(value.strip()):
                loaded = yaml.safe_load(replaced) if replaced else replaced
                return loaded if isinstance(loaded, (int, float, bool)) else replaced
            return replaced
        if isinstance(value, list):
            return [substitute(v, where, source) for v in value]
        if isinstance(value, dict):
            return {k: substitute(v, f"{where}.{k}", source) for k, v in value.items()}
        return value

    processes = []
    names = set()
    for source, index, entry in entries:
        where = f"processes[{index}]"
        if not isinstance(entry, dict):
            raise BringupError(f"{source}: {where}: expected a mapping")
        unknown = set(entry) - _PROCESS_KEYS
        if unknown:
            raise BringupError(f"{source}: {where}: unknown keys {sorted(unknown)}; allowed: {sorted(_PROCESS_KEYS)}")
        for key in ("name", "package", "executable"):
            if not isinstance(entry.get(key), str) or not entry[key]:
                raise BringupError(f"{source}: {where}.{key}: required string")
        where = f"process {entry['name']!r}"
        if entry["name"] in names:
            raise BringupError(f"{source}: {where}: duplicate name")
        names.add(entry["name"])
        entry = substitute(entry, where, source)
        parameter_files = [(source.parent / f).resolve() for f in entry.get("parameter_files", [])]
        processes.append(ProcessSpec(
            name=entry["name"],
            package=entry["package"],
            executable=entry["executable"],
            ros_node=bool(entry.get("ros_node", True)),
            namespace=str(entry.get("namespace", "")),
            args=[str(a) for a in entry.get("args", [])],
            parameter_files=parameter_files,
            parameters=dict(entry.get("parameters") or {}),
            remappings={str(k): str(v) for k, v in (entry.get("remappings") or {}).items()},
            delay_s=float(entry.get("delay_s", 0.0)),
            required=bool(entry.get("required", False)),
        ))
    document = yaml.safe_load(path.read_text())
    return Bringup(path=path, description=str(document.get("description", "")).strip(), arguments=arguments,
                   processes=processes)


def ros_arguments(spec: ProcessSpec, inline_parameter_file: Path | None) -> list[str]:
    """The `--ros-args ...` tail of a node's command line (what launch_ros builds for a Node action)."""
    if not spec.ros_node:
        return []
    tail = ["--ros-args", "-r", f"__node:={spec.name}"]
    if spec.namespace:
        tail += ["-r", f"__ns:=/{spec.namespace.strip('/')}"]
    for file in spec.parameter_files:
        tail += ["--params-file", str(file)]
    if inline_parameter_file is not None:
        tail += ["--params-file", str(inline_parameter_file)]
    for source, target in spec.remappings.items():
        tail += ["-r", f"{source}:={target}"]
    return tail


def inline_parameters_yaml(spec: ProcessSpec) -> str:
    """A ROS parameter file holding the spec's inline parameters for any node name."""
    return yaml.safe_dump({"/**": {"ros__parameters": spec.parameters}}, sort_keys=False)
