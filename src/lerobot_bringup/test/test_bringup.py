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


def test_launch_files_find_their_bringup_file_by_name_in_the_installed_share_directory(tmp_path, monkeypatch):
    """launch/*.launch.py (run by `ros2 launch lerobot_bringup X.launch.py` on a full install) name their bringup
    file, which is found in share/lerobot_bringup/config/bringup from any folder; the launch files are installed."""
    import ast

    from ament_index_python.packages import get_package_share_directory

    from lerobot_bringup.runner import find_bringup

    share = Path(get_package_share_directory("lerobot_bringup"))
    workspace = Path(__file__).resolve().parents[3]
    launch_files = sorted((workspace / "launch").glob("*.launch.py"))
    assert launch_files
    monkeypatch.chdir(tmp_path)  # nothing relative to the source tree may be needed
    monkeypatch.delenv("LEROBOT_BRINGUP_PATH", raising=False)
    for launch_file in launch_files:
        assert (share / "launch" / launch_file.name).is_file(), f"{launch_file.name} is not installed"
        tree = ast.parse(launch_file.read_text())
        names = [node.value.value for node in ast.walk(tree) if isinstance(node, ast.Assign)
                 and any(getattr(t, "id", "") == "BRINGUP" for t in node.targets)]
        assert len(names) == 1, f"{launch_file}: expected one BRINGUP name, found {names}"
        assert "generate_from_bringup(BRINGUP)" in launch_file.read_text()
        found = find_bringup(names[0])
        assert found.parent == share / "config" / "bringup", found
        assert load_bringup(found).processes


def test_bringup_files_by_name_or_path(tmp_path, monkeypatch):
    from lerobot_bringup.runner import available_bringups, find_bringup

    monkeypatch.chdir(tmp_path)
    assert {"sim_so101_record", "so101_record", "so101_teleop"} <= set(available_bringups())
    assert find_bringup("so101_teleop") == find_bringup("so101_teleop.yaml")
    own = write(tmp_path, EXAMPLE)
    assert find_bringup(str(own)) == own
    monkeypatch.setenv("LEROBOT_BRINGUP_PATH", str(tmp_path))
    assert find_bringup("bringup") == own  # $LEROBOT_BRINGUP_PATH first
    with pytest.raises(BringupError, match=r"bringup file 'no_such_setup' not found.*known names: .*so101_record"):
        find_bringup("no_such_setup")


def test_cli_by_name_dry_run_leaves_no_temp_folder(tmp_path, monkeypatch, capsys):
    """`lerobot-bringup NAME --dry-run` from any folder; its inline parameter files' folder is removed (issue: one
    lerobot-bringup-* folder per run was left in the temp directory)."""
    from lerobot_bringup import cli

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    code = cli.main(["so101_record", "--dry-run", "follower_port:=/dev/ttyUSB7", "vcodec:=h264",
                     "camera_width:=320", "sim_default_calibration:=true", "repo_id:=me/so101",
                     "episode_time_s:=20"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "port:=" not in out and "/dev/ttyUSB7" not in out  # parameters go through the inline file
    assert not list(tmp_path.glob("lerobot-bringup-*")), list(tmp_path.iterdir())
    assert cli.main(["so101_record", "--show-arguments"]) == 0
    shown = capsys.readouterr().out
    for argument in ("vcodec", "repo_id", "camera_width", "camera_height", "camera_fps", "episode_time_s",
                     "sim_default_calibration", "camera_device"):
        assert f"  {argument}:=" in shown, shown
    assert cli.main(["no_such_setup"]) == 2
    assert "not found" in capsys.readouterr().err


@pytest.mark.graph
def test_every_process_that_exits_is_announced(tmp_path, capsys):
    """A process that is not required (a camera without a device) exits: the bringup says so and goes on; a
    required one ends the bringup with its exit code."""
    import signal
    import threading
    import time

    from lerobot_bringup.cli import BringupRunner

    bringup = tmp_path / "two.yaml"
    bringup.write_text(
        "processes:\n"
        "  - {name: camera, package: lerobot_drivers, executable: opencv_camera,\n"
        f"     parameters: {{device: {tmp_path}/no_such_video.mp4}}}}\n"
        "  - {name: sim, package: lerobot_drivers, executable: lerobot-servo-sim, ros_node: false,\n"
        f"     args: [--arm, so101_follower, --link, {tmp_path}/port], delay_s: 0.5, required: true}}\n")
    log = tmp_path / "bringup.log"
    runner = BringupRunner(bringup, log_path=log)
    try:
        runner.start(threading.Event())
        deadline = time.monotonic() + 120
        while "camera exited with code 1" not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()
            assert runner.exited() is None, log.read_text()  # the required simulator keeps the bringup up
            time.sleep(0.1)
        assert "not required: the other processes keep running" in log.read_text()
        runner.children["sim"].send_signal(signal.SIGINT)
        runner.children["sim"].wait(30)
        ended = None
        while ended is None:
            ended = runner.exited()
        assert ended[0] == "sim"
    finally:
        runner.stop()
    assert not runner.workdir.exists()
