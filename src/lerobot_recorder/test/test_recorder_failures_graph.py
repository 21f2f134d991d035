"""Failures are loud (issue 15): a recorder whose configure fails exits with the reason instead of printing "recorder
ready"; the bringup stops with it; record_keyboard says why there is no recorder to talk to."""
from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import recorder_streams as rs  # noqa: E402

pytestmark = pytest.mark.graph


def recorder_args(interface: str, root: Path, *params: str) -> list[str]:
    return [sys.executable, "-m", "lerobot_recorder.nodes.recorder_node", "--ros-args", "-p", f"interface:={interface}",
            "-p", f"dataset_root:={root}", *[a for p in params for a in ("-p", p)]]


def test_a_recorder_that_cannot_configure_exits_with_the_reason(tmp_path):
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "notes.txt").write_text("someone else's folder")
    interface = rs.write_interface(tmp_path)
    for args, reason in ((recorder_args(str(interface), taken), "already exists"),
                         (recorder_args("no_such_robot", tmp_path / "ds"), "robot interface 'no_such_robot' not found")):
        result = subprocess.run(args, capture_output=True, text=True, timeout=120)
        output = result.stdout + result.stderr
        assert result.returncode == 1, output
        assert "configure failed: " in output and reason in output, output
        assert "recorder ready" not in output and "Traceback" not in output


def test_the_record_bringup_stops_when_the_recorder_fails(tmp_path):
    from lerobot_bringup.cli import BringupRunner

    bringup = tmp_path / "record.yaml"
    bringup.write_text(
        "processes:\n"
        "  - {name: recorder, package: lerobot_recorder, executable: recorder, required: true,\n"
        f"     parameters: {{interface: no_such_robot, dataset_root: {tmp_path}/ds}}}}\n")
    log = tmp_path / "bringup.log"
    runner = BringupRunner(bringup, log_path=log)
    try:
        runner.start(threading.Event())
        deadline = time.monotonic() + 120
        while (ended := runner.exited()) is None:
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
    finally:
        runner.stop()
    assert ended == ("recorder", 1)
    text = log.read_text()
    assert "robot interface 'no_such_robot' not found" in text and "recorder exited with code 1" in text


def keyboard(timeout_s: float) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lerobot_recorder.nodes.record_keyboard_node", "--ros-args",
                           "-p", "task:=t", "-p", f"server_timeout_s:={timeout_s}"],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)


def test_record_keyboard_says_why_the_recorder_is_absent(spawn, tmp_path):
    result = keyboard(2.0)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "no node /recorder on the ROS graph" in result.stdout

    # A recorder that did not configure (here: waiting for a lifecycle manager) is named with its state.
    interface = rs.write_interface(tmp_path)
    recorder = spawn(recorder_args(str(interface), tmp_path / "ds", "autostart:=false"), "recorder")
    recorder.wait_for_output("recorder ready", timeout=60)
    result = keyboard(4.0)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "the recorder /recorder is unconfigured, not active" in result.stdout, result.stdout


def test_a_renamed_recorder_is_one_node_and_logs_no_rosout_clash(spawn, rclpy_context, tmp_path):
    """Issue: `Publisher already registered for node name` on every recorder start (bringups rename nodes with
    -r __node:=..., which also renamed the recorder's message-ingest helper node)."""
    import rclpy

    interface = rs.write_interface(tmp_path)
    recorder = spawn(recorder_args(str(interface), tmp_path / "ds", "vcodec:=libsvtav1") + ["-r", "__node:=renamed"],
                     "recorder")
    recorder.wait_for_output("renamed", timeout=60)
    recorder.wait_for_output("recorder ready", timeout=60)
    node = rclpy.create_node("graph_probe", context=rclpy_context)
    try:
        deadline = time.monotonic() + 30
        while "_renamed_ingest" not in [n for n, _ in node.get_node_names_and_namespaces()]:
            assert time.monotonic() < deadline, node.get_node_names_and_namespaces()
            time.sleep(0.1)
        assert [n for n, _ in node.get_node_names_and_namespaces()].count("renamed") == 1
    finally:
        node.destroy_node()
    assert "already registered" not in recorder.output()


def test_the_message_input_restarts_if_its_executor_dies(rclpy_context, tmp_path):
    """Issue: an exception escaping a subscription callback (cv2.error from a malformed image) ended the ingest
    thread for good while the node stayed active. The callback does not raise any more (see test_live_recorder);
    should anything else ever end the ingest executor with an error, it is restarted."""
    import rclpy
    from lerobot_recorder.nodes.recorder_node import RecorderNode
    from rclpy.lifecycle import TransitionCallbackReturn
    from rclpy.parameter import Parameter
    from sensor_msgs.msg import JointState

    interface = rs.write_interface(tmp_path)
    node = RecorderNode(context=rclpy_context, parameter_overrides=[
        Parameter("interface", value=str(interface)), Parameter("dataset_root", value=str(tmp_path / "ds")),
        Parameter("autostart", value=False)])
    publisher_node = rclpy.create_node("ingest_test_publisher", context=rclpy_context)
    publisher = publisher_node.create_publisher(JointState, "/rt/follower/joint_states", 10)
    try:
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
        recorder = node.recorder
        health = recorder.topics["/rt/follower/joint_states"]
        real_on_message = recorder.on_message
        failures = []

        def fails_once(topic, msg):
            if not failures:
                failures.append(topic)
                raise RuntimeError("a bug in a callback")
            real_on_message(topic, msg)

        recorder.on_message = fails_once
        deadline = time.monotonic() + 60
        while health.received < 5:  # messages keep arriving after the failure: the executor was restarted
            assert time.monotonic() < deadline, (failures, health.received)
            publisher.publish(JointState(name=list(rs.JOINTS), position=[0.0] * len(rs.JOINTS)))
            time.sleep(0.05)
        assert failures == ["/rt/follower/joint_states"]
    finally:
        node.shutdown_cleanly("test done")
        node.destroy_node()
        publisher_node.destroy_node()
