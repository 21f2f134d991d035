"""Robot interface files: shipped files load, SO-101 features equal lerobot-record's, message conversion by name."""
import math
from pathlib import Path

import numpy as np
import pytest
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray, String
from trajectory_msgs.msg import JointTrajectory

from lerobot_recorder.alignment import Frame, AlignedValue
from lerobot_recorder.interface import (
    QoSSpec,
    find_interface,
    load_interface,
    parse_interface,
)

ROBOTS = Path(__file__).resolve().parents[3] / "config" / "robots"
SO_MOTORS = ["shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper"]
SO_NAMES = [f"{m}.pos" for m in SO_MOTORS]

# What lerobot-record builds for so101_follower (use_degrees) + so101_leader with one 640x480 opencv camera "front"
# (hw_to_dataset_features for the action and the observation, combined; video=True).
LEROBOT_SO101_FEATURES = {
    "action": {"dtype": "float32", "shape": (6,), "names": SO_NAMES},
    "observation.state": {"dtype": "float32", "shape": (6,), "names": SO_NAMES},
    "observation.images.front": {"dtype": "video", "shape": (480, 640, 3), "names": ["height", "width", "channels"]},
}


def joint_state(names, positions, sec=0, nanosec=0):
    msg = JointState()
    msg.header.stamp.sec, msg.header.stamp.nanosec = sec, nanosec
    msg.name = list(names)
    msg.position = [float(p) for p in positions]
    return msg


@pytest.fixture(scope="module")
def so101():
    return load_interface(ROBOTS / "so101.yaml")


@pytest.mark.parametrize("name", ["so101", "koch", "sim_so101", "sim_so101_small", "ros2_control_arm.example"])
def test_every_shipped_file_loads(name):
    interface = load_interface(ROBOTS / f"{name}.yaml")
    assert interface.fps == 30
    features = interface.dataset_features()
    assert list(features)[:2] == ["action", "observation.state"]
    assert features["action"]["shape"] == (len(interface.command.joints),)
    assert all("/" not in key for key in features)
    assert interface.stream_specs()  # every file yields alignment streams
    for sub in interface.subscriptions():
        assert sub.topic.startswith("/")


def test_shipped_files_found_by_name():
    # Names resolve from the installed share/lerobot_bringup/config/robots (a symlink install points at config/).
    found = find_interface("so101")
    assert "share/lerobot_bringup/config/robots" in found.as_posix()
    assert found.resolve() == (ROBOTS / "so101.yaml").resolve()
    assert find_interface("sim_so101.yaml").resolve() == (ROBOTS / "sim_so101.yaml").resolve()
    with pytest.raises(FileNotFoundError, match="no_such_robot"):
        find_interface("no_such_robot")


def test_so101_dataset_features_equal_lerobot_record(so101):
    assert so101.dataset_features() == LEROBOT_SO101_FEATURES
    assert so101.robot_type == "so_follower"
    assert so101.use_videos


def test_koch_and_sim_features(so101):
    koch = load_interface(ROBOTS / "koch.yaml")
    assert koch.dataset_features() == LEROBOT_SO101_FEATURES  # same motor names and order as LeRobot's koch
    assert koch.robot_type == "koch_follower"
    sim = load_interface(ROBOTS / "sim_so101.yaml")
    assert sim.dataset_features() == LEROBOT_SO101_FEATURES
    assert sim.task.text and sim.task.topic == "/task"
    small = load_interface(ROBOTS / "sim_so101_small.yaml")
    assert small.dataset_features()["observation.images.front"]["shape"] == (240, 320, 3)
    assert small.dataset_features()["observation.state"] == LEROBOT_SO101_FEATURES["observation.state"]


def test_so101_topics_qos_and_defaults(so101):
    subs = {s.topic: s for s in so101.subscriptions()}
    assert set(subs) == {"/follower/joint_states", "/cameras/front/image_raw", "/leader/joint_states", "/task"}
    assert subs["/follower/joint_states"].qos.reliability == "best_effort"
    assert subs["/cameras/front/image_raw"].qos.reliability == "reliable"
    assert subs["/cameras/front/image_raw"].msg_type == "sensor_msgs/msg/Image"
    assert subs["/task"].qos == QoSSpec("reliable", "volatile", 1)
    assert so101.command.topic == "/follower/joint_commands"
    assert so101.command.qos.reliability == "reliable"
    specs = {s.key: s for s in so101.stream_specs()}
    assert specs["observation.state"].max_age_s == pytest.approx(2 / 30)
    assert specs["observation.images.front"].max_age_s == pytest.approx(3 / 30)
    assert specs["action"].required and not specs["task"].required and specs["task"].max_age_s is None
    assert "action" not in {s.key for s in so101.stream_specs(include_action=False)}
    qos = subs["/follower/joint_states"].qos.to_rclpy()
    from rclpy.qos import ReliabilityPolicy
    assert qos.reliability == ReliabilityPolicy.BEST_EFFORT and qos.depth == 50


# ------------------------------------------------------------------------------------- messages -> state
def test_state_from_msg_selects_by_name_in_declared_order(so101):
    rad = [0.1, -0.2, 0.3, -0.4, 0.5, 0.25]
    order = [5, 2, 0, 4, 1, 3]
    msg = joint_state([SO_MOTORS[i] for i in order], [rad[i] for i in order])
    state = so101.state_from_msg(msg)
    assert state.dtype == np.float32 and state.shape == (6,)
    np.testing.assert_allclose(state, [math.degrees(r) for r in rad[:5]] + [25.0], rtol=1e-6)


def test_state_from_msg_ignores_extra_joints(so101):
    msg = joint_state(["base_camera_tilt"] + SO_MOTORS + ["conveyor"], [9.0, 0, 0, 0, 0, 0, 1.0, 7.0])
    np.testing.assert_allclose(so101.state_from_msg(msg), [0, 0, 0, 0, 0, 100.0])


def test_state_from_msg_missing_joint_names_topic_and_joint(so101):
    msg = joint_state(SO_MOTORS[:5], [0.0] * 5)
    with pytest.raises(ValueError, match=r"/follower/joint_states: JointState lacks joint\(s\) \['gripper'\]"):
        so101.state_from_msg(msg)


def test_state_from_msg_wrong_count(so101):
    msg = joint_state(SO_MOTORS, [0.0] * 6)
    msg.position = [0.0] * 5
    with pytest.raises(ValueError, match="/follower/joint_states: JointState has 6 names but 5 position values"):
        so101.state_from_msg(msg)


def test_state_from_msg_nan_is_an_error(so101):
    msg = joint_state(SO_MOTORS, [0.0, 0.0, float("nan"), 0.0, 0.0, 0.5])
    with pytest.raises(ValueError, match="/follower/joint_states: non-finite values: elbow_flex=nan"):
        so101.state_from_msg(msg)


def test_action_round_trip_through_command_message(so101):
    action = np.array([10.0, -45.5, 90.0, 0.0, 170.25, 37.5], dtype=np.float32)
    msg = so101.action_to_msg(action, stamp_ns=1_500_000_000)
    assert isinstance(msg, JointState)
    assert list(msg.name) == SO_MOTORS
    assert msg.header.stamp.sec == 1 and msg.header.stamp.nanosec == 500_000_000
    np.testing.assert_allclose(msg.position, [math.radians(a) for a in action[:5]] + [0.375], rtol=1e-6)
    np.testing.assert_allclose(so101.action_from_msg(msg), action, rtol=1e-6, atol=1e-5)
    chunk = np.stack([action, action * 0.5])
    np.testing.assert_allclose(so101.action_to_ros(chunk)[1], np.array(msg.position) * 0.5, rtol=1e-6)
    with pytest.raises(ValueError, match="non-finite values for \\['gripper.pos'\\]"):
        so101.action_to_msg([0, 0, 0, 0, 0, float("inf")])
    with pytest.raises(ValueError, match="expected a last axis of 6 values"):
        so101.action_to_msg([0, 0, 0])


def test_ros2_control_example_trajectory_in_and_out():
    arm = load_interface(ROBOTS / "ros2_control_arm.example.yaml")
    joints = [f"joint_{i}" for i in range(1, 7)]
    values = np.array([0.1, 0.2, -0.3, 0.4, 0.5, -0.6], dtype=np.float32)
    msg = arm.action_to_msg(values)
    assert isinstance(msg, JointTrajectory)
    assert list(msg.joint_names) == joints and len(msg.points) == 1
    np.testing.assert_allclose(msg.points[0].positions, values, rtol=1e-6)  # radians kept as-is
    np.testing.assert_allclose(arm.action_from_msg(msg), values, rtol=1e-6)
    assert arm.dataset_features()["observation.images.wrist"]["shape"] == (480, 640, 3)
    assert arm.images["wrist"].kind == "compressed"


# ------------------------------------------------------------------------------------- decode and frames
def test_decode_and_frame_values(so101):
    state_msg = joint_state(SO_MOTORS, [0.0] * 5 + [0.5], sec=10)
    [sample] = so101.decode("/follower/joint_states", state_msg, receive_ns=99)
    assert sample.key == "observation.state" and sample.stamp_ns == 10 * 10**9 and sample.is_valid
    bad = joint_state(SO_MOTORS[:3], [0.0] * 3, sec=11)
    [invalid] = so101.decode("/follower/joint_states", bad, receive_ns=99)
    assert not invalid.is_valid and "lacks joint(s)" in invalid.error
    [task] = so101.decode("/task", String(data=" stack the cubes "), receive_ns=12 * 10**9)
    assert task.value == "stack the cubes" and task.stamp_ns == 12 * 10**9  # String has no header: receive time
    with pytest.raises(KeyError, match="/nowhere"):
        so101.decode("/nowhere", state_msg, 0)

    image = np.zeros((480, 640, 3), dtype=np.uint8)
    frame = Frame(0, 10**10, {
        "observation.state": AlignedValue(sample.value, sample.stamp_ns, 0.0),
        "action": AlignedValue(np.ones(6, np.float32), 0, 0.01),
        "observation.images.front": AlignedValue(image, 0, 0.02),
        "task": AlignedValue("stack the cubes", 0, 1.0),
    })
    values = so101.frame_values(frame)
    assert set(values) == {"observation.state", "action", "observation.images.front", "task"}
    assert values["observation.state"].dtype == np.float32 and values["observation.state"][5] == 50.0
    assert values["task"] == "stack the cubes"
    partial = Frame(1, 10**10, {"observation.state": frame.values["observation.state"]})
    with pytest.raises(ValueError, match="lacks"):
        so101.frame_values(partial)


MULTI = """\
robot_type: bimanual_test
fps: 10
observation:
  state:
    sources:
      - topic: /left/joint_states
        joints: [j1, j2]
        names: [left_j1.pos, left_j2.pos]
        transforms: rad2deg
      - topic: /gripper/state
        type: std_msgs/msg/Float64MultiArray
        joints: [finger]
        transforms: {scale: 100}
        max_age_s: 0.5
action:
  topic: /left/joint_commands
  joints: [j1, j2, finger]
  transforms: {default: rad2deg, finger: {linear: {scale: 100, offset: -5}}}
  qos: {reliability: reliable, depth: 3}
"""


def test_several_state_sources_are_concatenated():
    interface = parse_interface(MULTI, "multi.yaml")
    assert interface.dataset_features()["observation.state"] == {
        "dtype": "float32", "shape": (3,), "names": ["left_j1.pos", "left_j2.pos", "finger.pos"]}
    keys = [s.key for s in interface.stream_specs()]
    assert keys == ["observation.state#0", "observation.state#1", "action"]
    [left] = interface.decode("/left/joint_states", joint_state(["j2", "j1"], [math.pi, 0.0], sec=1), 0)
    [finger] = interface.decode("/gripper/state", Float64MultiArray(data=[0.5]), receive_ns=7)
    assert finger.stamp_ns == 7
    with pytest.raises(ValueError, match="read from 2 topics"):
        interface.state_from_msg(joint_state(["j1", "j2"], [0, 0]))
    frame = Frame(0, 0, {"observation.state#0": AlignedValue(left.value, 0, 0.0),
                         "observation.state#1": AlignedValue(finger.value, 0, 0.0)})
    np.testing.assert_allclose(interface.frame_values(frame, include_action=False)["observation.state"],
                               [0.0, 180.0, 50.0], atol=1e-4)
    assert interface.action.sources[0].qos.depth == 3
    assert interface.action.sources[0].max_age_s == pytest.approx(0.2)  # default 2/fps
    action_msg = interface.action_to_msg([90.0, 0.0, 45.0])
    np.testing.assert_allclose(action_msg.position, [math.pi / 2, 0.0, 0.5], rtol=1e-12)


def test_so101_messages_through_assembler_to_dataset_frames(so101):
    """The path every consumer takes: decode() -> FrameAssembler -> frame_values()."""
    from sensor_msgs.msg import Image
    from lerobot_recorder.alignment import SkippedTick

    assembler = so101.make_assembler(start_ns=10**9, latency_s=0.05)
    image = np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8)
    results = []
    for k in range(10):  # 100 Hz joint states, 30 Hz camera, for 0.1 s; camera missing after 50 ms
        t = 10**9 + k * 10_000_000
        sec, nsec = divmod(t, 10**9)
        for topic, value in [("/follower/joint_states", 0.1 * k), ("/leader/joint_states", 0.1 * k + 0.05)]:
            msg = joint_state(SO_MOTORS, [value] * 5 + [0.5], sec=sec, nanosec=nsec)
            for sample in so101.decode(topic, msg, receive_ns=t):
                assembler.add(sample)
        if k in (0, 3):
            img = Image(height=480, width=640, encoding="rgb8", step=1920, data=image.tobytes())
            img.header.stamp.sec, img.header.stamp.nanosec = sec, nsec
            assembler.add(*so101.decode("/cameras/front/image_raw", img, receive_ns=t))
        results += assembler.poll(now_ns=t + 1)
    results += assembler.flush(10**9 + 200_000_000)
    frames = [r for r in results if not isinstance(r, SkippedTick)]
    # ticks 0..100 ms; at 133 ms the 30 ms camera image is 103 ms old (> 3/fps) and the state 43 ms (< 2/fps)
    assert [r.tick_index for r in frames] == [0, 1, 2, 3]
    values = so101.frame_values(frames[1])  # tick at 33.3 ms: state from 30 ms, camera from 30 ms
    np.testing.assert_allclose(values["observation.state"], [math.degrees(0.3)] * 5 + [50.0], rtol=1e-5)
    np.testing.assert_allclose(values["action"], [math.degrees(0.35)] * 5 + [50.0], rtol=1e-5)
    np.testing.assert_array_equal(values["observation.images.front"], image)
    assert "task" not in values  # no task text in so101.yaml and none published: the recorder supplies its own
    assert frames[1].values["observation.images.front"].age_s == pytest.approx(1 / 30 - 0.03, abs=1e-6)
    skipped = [r for r in results if isinstance(r, SkippedTick)]
    assert skipped[0].tick_index == 4 and skipped[0].reasons == {"observation.images.front": "stale", "task": "missing"}
    assert all(r.reasons["observation.images.front"] == "stale" for r in skipped)
