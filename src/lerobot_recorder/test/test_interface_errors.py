"""Every kind of interface-file mistake is reported as `file:line: key: message`."""
import pytest

from lerobot_recorder.interface import InterfaceError, load_interface, parse_interface

BASE = """\
robot_type: test_arm
fps: 30
observation:
  state:
    topic: /follower/joint_states
    joints: [a, b, c]
    names: [a.pos, b.pos, c.pos]
    transforms: [rad2deg, rad2deg, {scale: 100}]
  images:
    front:
      topic: /cameras/front/image_raw
      height: 4
      width: 6
action:
  topic: /leader/joint_states
  joints: [a, b, c]
  names: [a.pos, b.pos, c.pos]
  transforms: [rad2deg, rad2deg, {scale: 100}]
task:
  text: do it
"""


STATE_BLOCK = """\
    topic: /follower/joint_states
    joints: [a, b, c]
    names: [a.pos, b.pos, c.pos]
    transforms: [rad2deg, rad2deg, {scale: 100}]
"""


def load_text(tmp_path, text):
    path = tmp_path / "x.yaml"
    path.write_text(text)
    return load_interface(path), path


def error_of(tmp_path, text) -> tuple[InterfaceError, str]:
    path = tmp_path / "x.yaml"
    path.write_text(text)
    with pytest.raises(InterfaceError) as info:
        load_interface(path)
    return info.value, str(path)


def edit(old, new, text=BASE):
    assert old in text, old
    return text.replace(old, new, 1)


def test_base_document_is_valid(tmp_path):
    interface, _ = load_text(tmp_path, BASE)
    assert interface.state.names == ["a.pos", "b.pos", "c.pos"]


CASES = [
    # (old, new, line, key, message fragment)
    ("  names: [a.pos, b.pos, c.pos]\n  transforms", "  names: [a.pos, b.pos]\n  transforms", 17, "action.names",
     "expected 3 entries to match action.joints, got 2"),
    ("      width: 6\n", "      width: 6\n      colour: red\n", 14, "observation.images.front.colour", "unknown key"),
    ("  topic: /leader/joint_states\n", "", 14, "action.topic", "missing required key"),
    ("fps: 30", "fps: thirty", 2, "fps", "expected an integer, got 'thirty'"),
    ("fps: 30", "fps: 0", 2, "fps", "expected an integer >= 1, got 0"),
    ("fps: 30", "fps: 29.97", 2, "fps", "expected an integer"),
    ("[rad2deg, rad2deg, {scale: 100}]\n  images", "[rad2deg, rad2grad, {scale: 100}]\n  images", 8,
     "observation.state.transforms[1]", "unknown transform 'rad2grad'"),
    ("[rad2deg, rad2deg, {scale: 100}]\n  images", "[rad2deg, rad2deg, {scale: 0}]\n  images", 8,
     "observation.state.transforms[2]", "scale 0 is not invertible"),
    ("[rad2deg, rad2deg, {scale: 100}]\n  images", "[rad2deg, rad2deg]\n  images", 8,
     "observation.state.transforms", "expected 3 entries to match observation.state.joints, got 2"),
    ("[rad2deg, rad2deg, {scale: 100}]\n  images", "{default: rad2deg, d: identity}\n  images", 8,
     "observation.state.transforms.d", "not a joint of observation.state.joints ['a', 'b', 'c']"),
    ("[rad2deg, rad2deg, {scale: 100}]\n  images", "{scale: 2, linear: {scale: 1}}\n  images", 8,
     "observation.state.transforms", "exactly one key"),
    ("    joints: [a, b, c]\n    names", "    joints: [a, b, a]\n    names", 6, "observation.state.joints[2]",
     "duplicate entry 'a'"),
    ("    joints: [a, b, c]\n    names", "    joints: []\n    names", 6, "observation.state.joints",
     "expected at least one entry"),
    ("[a.pos, b.pos, c.pos]\n    transforms", "[a.pos, b/pos, c.pos]\n    transforms", 7, "observation.state.names[1]",
     "must not contain '/'"),
    ("topic: /follower/joint_states", "topic: follower joint states", 5, "observation.state.topic",
     "not a valid ROS topic name"),
    ("      height: 4\n", "      height: 4\n      type: jpeg\n", 13, "observation.images.front.type",
     "expected one of raw, compressed, got 'jpeg'"),
    ("      height: 4\n", "      height: 4\n      channels: 4\n", 13, "observation.images.front.channels",
     "expected one of 1, 3, got 4"),
    ("      height: 4\n", "      height: -4\n", 12, "observation.images.front.height", "expected an integer >= 1"),
    ("      height: 4\n", "      height: 4\n      type: compressed\n      channels: 1\n", 14,
     "observation.images.front.channels", "decoded to 3 channels"),
    ("    front:\n", "    front.cam:\n", 10, "observation.images.front.cam", "camera names use letters"),
    ("      height: 4\n", "", 10, "observation.images.front.height", "missing required key"),
    ("  text: do it\n", "  text: do it\n  qos: {reliability: sometimes}\n", 21, "task.qos.reliability",
     "expected one of reliable, best_effort, got 'sometimes'"),
    ("  text: do it\n", "  text: do it\n  topic: /task\n  qos: {depth: 0}\n", 22, "task.qos.depth",
     "expected an integer >= 1, got 0"),
    ("  text: do it\n", "  text: do it\n  qos: {history: keep_all}\n", 21, "task.qos.history", "unknown key"),
    ("  text: do it\n", "  text: do it\n  required: true\n", 21, "task.required", "there is none"),
    ("  text: do it\n", "  other: 1\n", 20, "task.other", "unknown key"),
    ("task:\n  text: do it\n", "task: {}\n", 19, "task", "declare text, topic or both"),
    ("    topic: /follower/joint_states\n", "    topic: /follower/joint_states\n    max_age_s: -0.1\n", 6,
     "observation.state.max_age_s", "expected a positive number of seconds"),
    ("    topic: /follower/joint_states\n", "    topic: /follower/joint_states\n    max_age_s: soon\n", 6,
     "observation.state.max_age_s", "expected a number, got 'soon'"),
    ("    topic: /follower/joint_states\n", "    topic: /follower/joint_states\n    required: 1\n", 6,
     "observation.state.required", "expected true or false, got 1"),
    ("    topic: /follower/joint_states\n", "    topic: /follower/joint_states\n    field: torque\n", 6,
     "observation.state.field", "expected one of position, velocity, effort, got 'torque'"),
    ("    topic: /follower/joint_states\n",
     "    topic: /follower/joint_states\n    type: sensor_msgs/msg/Imu\n", 6, "observation.state.type",
     "unsupported message type 'sensor_msgs/msg/Imu'"),
    ("  topic: /leader/joint_states\n",
     "  topic: /leader/joint_states\n  type: std_msgs/msg/Float64MultiArray\n  stamp: header\n", 17,
     "action.stamp", "has no header; use stamp: receive"),
    ("  topic: /leader/joint_states\n", "  topic: /leader/joint_states\n  command: {joints: [x, y]}\n", 16,
     "action.command.joints", "expected 3 entries to match action.names, got 2"),
    ("  topic: /leader/joint_states\n", "  topic: /leader/joint_states\n  command: {type: geometry_msgs/msg/Twist}\n",
     16, "action.command.type", "unsupported message type"),
    ("fps: 30\n", "fps: 30\nfps: 60\n", 3, "fps", "duplicate key"),
    ("fps: 30\n", "fps: 30\nrobot: so101\n", 3, "robot", "unknown key"),
    ("robot_type: test_arm\n", "", 1, "robot_type", "missing required key"),
    ("      topic: /cameras/front/image_raw", "      topic: /follower/joint_states", 10,
     "observation.images.front", "topic /follower/joint_states is also read at"),
    ("  topic: /leader/joint_states\n", "  topic: /follower/joint_states\n  qos: {reliability: reliable}\n", 14,
     "action", "with qos best_effort/volatile/depth 50; here it is reliable/volatile/depth 50"),
    (STATE_BLOCK, "    sources: []\n", 5, "observation.state.sources",
     "expected at least one source"),
    ("    topic: /follower/joint_states\n",
     "    sources: [{topic: /x, joints: [z]}]\n    topic: /follower/joint_states\n",
     6, "observation.state.topic", "put source keys inside `sources`"),
]


@pytest.mark.parametrize("old,new,line,key,fragment", CASES, ids=[f"{c[3]}:{c[4][:30]}" for c in CASES])
def test_errors_name_file_line_and_key(tmp_path, old, new, line, key, fragment):
    error, path = error_of(tmp_path, edit(old, new))
    assert str(error).startswith(f"{path}:{line}: {key}: "), str(error)
    assert fragment in str(error)
    assert (error.file, error.line, error.key) == (path, line, key)


def test_brief_example_message_format(tmp_path):
    text = edit("  names: [a.pos, b.pos, c.pos]\n  transforms", "  names: [a.pos, b.pos]\n  transforms")
    error, path = error_of(tmp_path, text)
    assert str(error) == f"{path}:17: action.names: expected 3 entries to match action.joints, got 2"


def test_yaml_syntax_error_has_line(tmp_path):
    error, path = error_of(tmp_path, edit("fps: 30", "fps: [30"))
    assert str(error).startswith(f"{path}:3: YAML syntax error")


def test_structural_errors(tmp_path):
    error, path = error_of(tmp_path, "- just\n- a list\n")
    assert str(error) == f"{path}:1: expected a mapping at the top level, got a list"
    error, path = error_of(tmp_path, "")
    assert str(error) == f"{path}:1: the file is empty"
    error, path = error_of(tmp_path, edit("  state:\n" + STATE_BLOCK, "  state: 5\n"))
    assert str(error).startswith(f"{path}:4: observation.state: expected a mapping, got 5")
    with pytest.raises(InterfaceError, match="cannot read the file"):
        load_interface(tmp_path / "absent.yaml")


def test_duplicate_dataset_names_across_sources():
    text = edit("    topic: /follower/joint_states\n    joints: [a, b, c]\n    names: [a.pos, b.pos, c.pos]\n"
                "    transforms: [rad2deg, rad2deg, {scale: 100}]\n",
                "    sources:\n      - {topic: /l/joint_states, joints: [a]}\n"
                "      - {topic: /r/joint_states, joints: [a]}\n")
    with pytest.raises(InterfaceError, match=r"^x.yaml:4: observation.state: dataset name 'a.pos' appears twice"):
        parse_interface(text, "x.yaml")


def test_several_action_topics_need_a_command_topic():
    two = ("  sources:\n    - {topic: /arm/cmd, joints: [a, b]}\n    - {topic: /grip/cmd, joints: [c]}\n")
    text = edit("  topic: /leader/joint_states\n  joints: [a, b, c]\n  names: [a.pos, b.pos, c.pos]\n"
                "  transforms: [rad2deg, rad2deg, {scale: 100}]\n", two)
    with pytest.raises(InterfaceError, match="^x.yaml:14: action: action has several source topics"):
        parse_interface(text, "x.yaml")
    with pytest.raises(InterfaceError, match="^x.yaml:18: action.command: action has several source topics"):
        parse_interface(text.replace("task:", "  command: {type: sensor_msgs/msg/JointState}\ntask:"), "x.yaml")
    ok = parse_interface(text.replace("task:", "  command: {topic: /arm/all}\ntask:"), "x.yaml")
    assert ok.command.topic == "/arm/all" and ok.command.joints == ("a", "b", "c")


def test_defaults_when_optional_keys_are_absent():
    text = edit("    names: [a.pos, b.pos, c.pos]\n    transforms: [rad2deg, rad2deg, {scale: 100}]\n", "")
    interface = parse_interface(text, "x.yaml")
    assert interface.state.names == ["a.pos", "b.pos", "c.pos"]
    assert [t.kind for t in interface.state.transform.transforms] == ["identity"] * 3
    camera = interface.images["front"]
    assert (camera.kind, camera.channels, camera.storage, camera.stamp, camera.required) == (
        "raw", 3, "video", "header", True)
    assert interface.command.topic == "/leader/joint_states" and interface.command.msg_type.endswith("JointState")
    assert interface.task.topic is None and interface.task.text == "do it"
    velocity = parse_interface(edit("    topic: /follower/joint_states\n",
                                    "    topic: /follower/joint_states\n    field: velocity\n", text), "x.yaml")
    assert velocity.state.names == ["a.vel", "b.vel", "c.vel"]
    short_type = parse_interface(edit("  topic: /leader/joint_states\n",
                                      "  topic: /leader/joint_states\n  type: sensor_msgs/JointState\n"), "x.yaml")
    assert short_type.action.sources[0].msg_type == "sensor_msgs/msg/JointState"
    no_limit = parse_interface(edit("      width: 6\n", "      width: 6\n      max_age_s: null\n"), "x.yaml")
    assert no_limit.images["front"].max_age_s is None
    exp_float = parse_interface(edit("      width: 6\n", "      width: 6\n      max_age_s: 1e-1\n"), "x.yaml")
    assert exp_float.images["front"].max_age_s == pytest.approx(0.1)
