"""Bringup files: parsing, argument substitution, errors, and the command lines built from them."""
from pathlib import Path

import pytest

from lerobot_bringup.runner import BringupError, load_bringup, parse_overrides, ros_arguments

EXAMPLE = """
description: two processes
arguments:
  rate: 50.0
  port: /tmp/sim/follower
processes:
  - name: bus_sim
    package: lerobot_drivers
    executable: lerobot-servo-sim
    ros_node: false
    args: [--arm, so101_follower, --link, $(arg port)]
  - name: follower
    package: lerobot_drivers
    executable: arm_driver
    namespace: follower
    parameter_files: [params/follower.yaml]
    parameters: {port: $(arg port), rate: $(arg rate), label: "rate=$(arg rate)"}
    remappings: {joint_commands: /leader/joint_states}
    delay_s: 0.5
    required: true
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bringup.yaml"
    path.write_text(text)
    return path


def test_parses_processes_and_substitutes_arguments(tmp_path):
    bringup = load_bringup(write(tmp_path, EXAMPLE), {"rate": "100"})
    sim, follower = bringup.processes
    assert sim.ros_node is False and sim.args == ["--arm", "so101_follower", "--link", "/tmp/sim/follower"]
    assert follower.parameters == {"port": "/tmp/sim/follower", "rate": 100, "label": "rate=100"}
    assert follower.parameter_files == [(tmp_path / "params" / "follower.yaml").resolve()]
    assert follower.delay_s == 0.5 and follower.required is True
    assert ros_arguments(follower, Path("/tmp/inline.yaml")) == [
        "--ros-args", "-r", "__node:=follower", "-r", "__ns:=/follower",
        "--params-file", str((tmp_path / "params" / "follower.yaml").resolve()),
        "--params-file", "/tmp/inline.yaml", "-r", "joint_commands:=/leader/joint_states",
    ]
    assert ros_arguments(sim, None) == []


@pytest.mark.parametrize("text, message", [
    ("processes: 3", "expected a mapping with a 'processes' list"),
    ("processes: [{name: a, package: p}]", "processes[0].executable: required string"),
    ("processes: [{name: a, package: p, executable: e, colour: red}]", "unknown keys ['colour']"),
    ("processes: [{name: a, package: p, executable: e, args: [$(arg nope)]}]", "$(arg nope) is not declared"),
    ("processes: [{name: a, package: p, executable: e}, {name: a, package: p, executable: e}]", "duplicate name"),
])
def test_errors_name_the_entry(tmp_path, text, message):
    with pytest.raises(BringupError, match=message.replace("[", r"\[").replace("]", r"\]").replace("$", r"\$")
                       .replace("(", r"\(").replace(")", r"\)")):
        load_bringup(write(tmp_path, text))


def test_unknown_override_is_rejected(tmp_path):
    with pytest.raises(BringupError, match="unknown argument 'speed'"):
        load_bringup(write(tmp_path, EXAMPLE), parse_overrides(["speed:=3"]))
    with pytest.raises(BringupError, match="expected NAME:=VALUE"):
        parse_overrides(["rate=3"])


def test_include_and_dirname(tmp_path):
    (tmp_path / "base.yaml").write_text(
        "arguments: {rate: '10', where: base}\n"
        "processes: [{name: a, package: p, executable: e, args: [$(arg rate), $(dirname)/x.yaml]}]\n")
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "top.yaml").write_text(
        "include: ../base.yaml\narguments: {rate: '20'}\n"
        "processes: [{name: b, package: p, executable: e, args: [$(arg where), $(dirname)]}]\n")
    bringup = load_bringup(sub / "top.yaml")
    assert [p.name for p in bringup.processes] == ["a", "b"]
    assert bringup.processes[0].args == ["20", f"{tmp_path}/x.yaml"]  # includer's default wins; dirname of base
    assert bringup.processes[1].args == ["base", str(sub)]
    (tmp_path / "base.yaml").write_text("include: sub/top.yaml\nprocesses: []\n")
    with pytest.raises(BringupError, match="include cycle"):
        load_bringup(sub / "top.yaml")


def test_shipped_bringup_files_name_existing_packages_executables_and_files():
    """Every bringup file (and so every launch file built on it) names installed packages, executables and files."""
    from lerobot_bringup.cli import resolve_executable

    config = Path(__file__).resolve().parents[3] / "config" / "bringup"
    files = sorted(config.glob("*.yaml"))
    assert files, f"no bringup files in {config}"
    for file in files:
        bringup = load_bringup(file)
        for spec in bringup.processes:
            assert resolve_executable(spec).exists()
            for parameter_file in spec.parameter_files:
                assert parameter_file.is_file(), f"{file}: {spec.name}: {parameter_file} missing"
            for value in spec.parameters.values():
                if isinstance(value, str) and value.endswith(".yaml"):
                    assert Path(value).is_file(), f"{file}: {spec.name}: {value} missing"


def test_launch_files_load_existing_bringup_files():
    """launch/*.launch.py (run by ros2 launch on a full install) each name a bringup file that loads."""
    import ast

    workspace = Path(__file__).resolve().parents[3]
    launch_files = sorted((workspace / "launch").glob("*.launch.py"))
    assert launch_files
    for launch_file in launch_files:
        tree = ast.parse(launch_file.read_text())
        names = [node.value for node in ast.walk(tree) if isinstance(node, ast.Constant)
                 and isinstance(node.value, str) and node.value.endswith(".yaml")]
        assert len(names) == 1, f"{launch_file}: expected one bringup file name, found {names}"
        bringup_file = workspace / "config" / "bringup" / names[0]
        assert bringup_file.is_file(), f"{launch_file}: {bringup_file} missing"
        assert "generate_from_bringup" in launch_file.read_text()
        assert load_bringup(bringup_file).processes
