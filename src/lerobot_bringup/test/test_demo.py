"""`make demo` end to end, reduced (2 demonstrations, a few training steps, 1 evaluation episode), through the pip
bringup path; then the policy bringup a user starts by hand (`lerobot-bringup sim_so101_policy policy_path:=...`)
serving the demo's checkpoint, checked against what the saved rviz view shows.

The success rate is not checked here (a few training steps learn nothing); the README reports what the full demo
measured. What is checked is that every stage ran for real and left what it says it left.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from lerobot_testing.processes import ManagedProcess

pytestmark = [pytest.mark.graph, pytest.mark.slow]

RVIZ = Path(__file__).resolve().parents[1] / "rviz" / "policy.rviz"
# Published by robot_state_publisher, which only a full ROS install has: the launch files add it (robot_view_launch).
ROBOT_STATE_PUBLISHER_TOPICS = {"/robot_description", "/tf", "/tf_static"}


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """Run the reduced demo once; yields (output folder, its printed text)."""
    output = tmp_path_factory.mktemp("demo") / "out"
    text = run_demo(output, ["--episodes", "2", "--episode-time-s", "3", "--reset-time-s", "1", "--steps", "4",
                             "--batch-size", "4", "--num-workers", "0", "--eval-episodes", "1",
                             "--eval-episode-time-s", "3"], output.parent / "demo.log", timeout=900)
    return output, text


def run_demo(output: Path, args: list[str], log: Path, timeout: float) -> str:
    """`lerobot-demo --output OUTPUT ARGS` to its end; returns what it printed (it must exit 0)."""
    process = ManagedProcess([sys.executable, "-m", "lerobot_bringup.demo", "--output", str(output), *args], log)
    try:
        code = process.popen.wait(timeout=timeout)
    finally:
        process.stop()
    text = process.output()
    assert code == 0, text[-8000:]
    return text


def test_every_stage_leaves_its_artefacts(demo):
    from lerobot_dataset.reader import LeRobotDatasetReader
    from lerobot_dataset.validate import validate_dataset
    from lerobot_train import load_policy

    output, text = demo
    for stage in ("[1/4] record", "[2/4] train", "[3/4] deploy"):
        assert stage in text, text[-4000:]
    # the table: one row per method, the do-nothing baseline marked as evaluated in the scene model
    lines = text.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("method") and "success" in line)
    rows = {line.split(" | ")[0].strip(): line for line in lines[header + 2:header + 5]}
    assert set(rows) == {"trained policy", "scripted operator", "do nothing"}, lines[header:header + 5]
    assert "| live" in rows["trained policy"] and "| live" in rows["scripted operator"]
    assert "| scene model" in rows["do nothing"] and "/1 (" in rows["trained policy"]

    # 1. the recorded dataset
    dataset = output / "sim_so101_demo"
    assert validate_dataset(dataset).ok
    info = json.loads((dataset / "meta" / "info.json").read_text())
    assert info["total_episodes"] == 2 and info["features"]["observation.images.front"]["shape"][:2] == [96, 128]
    reader = LeRobotDatasetReader(dataset)
    states = np.stack([reader[i]["observation.state"] for i in range(len(reader))])
    assert np.ptp(states[:, 1]) > 5.0, "the scripted operator's arm barely moved: shoulder_lift spread in degrees"

    # 2. the checkpoint: loads, carries the recording's robot interface, predicts a chunk of the configured size
    checkpoint = output / "train" / "checkpoints" / "last" / "pretrained_model"
    policy = load_policy(checkpoint)
    assert policy.robot_interface is not None and policy.robot_interface["interface"] is not None
    frame = reader[0]
    chunk = policy.predict_action_chunk({"observation.state": frame["observation.state"][None],
                                         "observation.images.front": frame["observation.images.front"][None],
                                         "task": [frame["task"]]})
    assert chunk.shape == (1, 32, 6) and np.isfinite(chunk).all()
    assert (output / "train" / "training_curves.png").is_file()
    assert f"checkpoint:       {checkpoint.resolve()}" in text

    # 4. the evaluation dataset: one recorded rollout, same features as the training data
    eval_dataset = output / "eval_sim_so101_demo"
    assert validate_dataset(eval_dataset).ok
    eval_info = json.loads((eval_dataset / "meta" / "info.json").read_text())
    assert eval_info["total_episodes"] == 1
    assert eval_info["features"].keys() == info["features"].keys()
    assert "/follower/joint_goals" in (eval_dataset / "meta" / "robot_interface.yaml").read_text()
    assert f"eval dataset:     {eval_dataset.resolve()} (1 episode(s), validation OK)" in text


def _rviz_topics() -> set[str]:
    """Every topic the saved rviz view subscribes to (`Topic:` and `Description Topic:` values)."""
    found = set()

    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("Topic", "Description Topic") and isinstance(value, dict):
                    found.add(value["Value"])
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(yaml.safe_load(RVIZ.read_text()))
    return found


def test_policy_bringup_publishes_every_topic_of_the_rviz_view(demo, tmp_path, rclpy_context):
    """`lerobot-bringup sim_so101_policy policy_path:=<the demo's checkpoint>` starts, the policy node configures
    with the checkpoint (its interface matches), and every topic rviz shows has a publisher in that graph, except
    robot_state_publisher's, which only a full ROS install runs (its launch files add it)."""
    from rclpy.node import Node
    from visualization_msgs.msg import MarkerArray

    from lerobot_drivers.qos import JOINT_STATE_PUBLISHER_QOS

    output, _ = demo
    checkpoint = output / "train" / "checkpoints" / "last" / "pretrained_model"
    topics = _rviz_topics()
    assert {"/cameras/front/image_raw", "/robot_view/markers", "/robot_description"} <= topics, topics
    bringup = ManagedProcess(["lerobot-bringup", "sim_so101_policy", f"policy_path:={checkpoint}",
                              f"sim_dir:={tmp_path}"], tmp_path / "bringup.log")
    node = Node("rviz_topics_probe", context=rclpy_context)
    from rclpy.executors import SingleThreadedExecutor

    executor = SingleThreadedExecutor(context=rclpy_context)
    executor.add_node(node)
    namespaces: set[str] = set()
    node.create_subscription(MarkerArray, "/robot_view/markers",
                             lambda msg: namespaces.update(m.ns for m in msg.markers),
                             JOINT_STATE_PUBLISHER_QOS.profile())
    try:
        bringup.wait_for_output("configured:", timeout=240)  # the policy node loaded the checkpoint
        wanted = topics - ROBOT_STATE_PUBLISHER_TOPICS
        deadline = time.monotonic() + 120
        missing = wanted
        while time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.1)
            missing = {t for t in wanted if not node.get_publishers_info_by_topic(t)}
            if not missing and {"executed_end_effector_path", "cube"} <= namespaces:
                break
            assert bringup.popen.poll() is None, bringup.output()[-4000:]
        assert not missing, f"rviz topics without a publisher: {missing}\n{bringup.output()[-4000:]}"
        assert {"executed_end_effector_path", "cube"} <= namespaces, namespaces
        assert node.get_publishers_info_by_topic("/follower/action_chunk"), "the policy node's chunk output"
    finally:
        executor.shutdown()
        node.destroy_node()
        bringup.stop(timeout=30)


@pytest.mark.oracle
def test_an_act_policy_is_deployed_the_same_way_and_loads_in_upstream(demo, tmp_path):
    """`--policy-type act` on the demo's recording: lerobot-train trains ACT, the policy node serves it in the same
    evaluation (a recorded rollout), and upstream LeRobot 0.4.4 loads the checkpoint and predicts the same chunk."""
    from oracle import oracle_env

    from lerobot_dataset.reader import LeRobotDatasetReader
    from lerobot_dataset.validate import validate_dataset
    from lerobot_train import load_policy

    output, _ = demo
    act_output = tmp_path / "act"
    act_output.mkdir()
    (act_output / "sim_so101_demo").symlink_to(output / "sim_so101_demo")
    text = run_demo(act_output, ["--from-stage", "train", "--policy-type", "act", "--steps", "3", "--batch-size", "4",
                                 "--train-processes", "1", "--eval-episodes", "1", "--eval-episode-time-s", "3",
                                 "--no-evaluate-scripted"], tmp_path / "act_demo.log", timeout=600)
    assert "--policy.type=act" in text and "trained policy" in text
    assert validate_dataset(act_output / "eval_sim_so101_demo").ok

    checkpoint = (act_output / "train" / "checkpoints" / "last" / "pretrained_model").resolve()
    assert json.loads((checkpoint / "config.json").read_text())["type"] == "act"
    frame = LeRobotDatasetReader(output / "sim_so101_demo")[0]
    observation = {"observation.state": frame["observation.state"][None].astype(np.float32),
                   "observation.images.front": frame["observation.images.front"][None].astype(np.float32)}
    ours = load_policy(checkpoint).predict_action_chunk({**observation, "task": [frame["task"]]})
    np.savez(tmp_path / "obs.npz", **observation)
    jobs = [{"op": "predict", "ckpt": str(checkpoint), "obs": str(tmp_path / "obs.npz"),
             "out": str(tmp_path / "upstream.npz")}]
    (tmp_path / "jobs.json").write_text(json.dumps(jobs))
    oracle_env.run_oracle("act_upstream.py", str(tmp_path / "jobs.json"))
    upstream = np.load(tmp_path / "upstream.npz")["chunk"]
    assert upstream.shape == ours.shape == (1, 32, 6)
    np.testing.assert_allclose(ours, upstream, atol=1e-3)
