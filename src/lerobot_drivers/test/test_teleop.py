"""Keyboard and gamepad jog cores without a terminal or a gamepad."""
import os
import pty

import pytest

from lerobot_drivers.teleop.gamepad import GamepadJog, apply_deadzone
from lerobot_drivers.teleop.jog import SO_ARM_JOINTS, JogTarget, NoJointStateYet
from lerobot_drivers.teleop.keyboard import KeyboardJog, help_text, parse_key_line
from lerobot_drivers.teleop.terminal import KeyDecoder, TerminalKeys

STATE = {"shoulder_pan": 0.1, "shoulder_lift": -0.2, "elbow_flex": 0.3, "wrist_flex": 0.0, "wrist_roll": 0.5,
         "gripper": 0.95}


def keyboard(**kw):
    jog = JogTarget(SO_ARM_JOINTS, limits={"shoulder_pan": (-1.0, 1.0)}, resync_after=1.0)
    return KeyboardJog(jog, **kw)


def test_key_line_protocol():
    assert parse_key_line("q q a") == ["q", "q", "a"]
    assert parse_key_line("qqw  ] space ESC") == ["q", "q", "w", "]", "space", "esc"]
    assert parse_key_line("  \n") == []


def test_keys_jog_joints_from_the_measured_state():
    kb = keyboard()
    outcome = kb.handle("q", now=0.0)
    assert outcome.command is None and "no joint state yet" in outcome.message
    kb.jog.update_state(list(STATE), list(STATE.values()))
    command = kb.handle("q", now=0.0).command
    assert command.names == SO_ARM_JOINTS
    assert command.as_dict() == pytest.approx({**STATE, "shoulder_pan": 0.15})
    # keys within resync_after accumulate on the target even though the arm has not moved yet
    assert kb.handle("q", now=0.1).command.as_dict()["shoulder_pan"] == pytest.approx(0.2)
    assert kb.handle("s", now=0.2).command.as_dict()["shoulder_lift"] == pytest.approx(-0.25)
    assert kb.handle("e", now=0.3).command.as_dict()["elbow_flex"] == pytest.approx(0.35)
    assert kb.handle("f", now=0.4).command.as_dict()["wrist_flex"] == pytest.approx(-0.05)
    assert kb.handle("t", now=0.5).command.as_dict()["wrist_roll"] == pytest.approx(0.55)
    # gripper steps are fractions and clamp at fully open
    assert kb.handle("y", now=0.6).command.as_dict()["gripper"] == pytest.approx(1.0)
    assert kb.handle("h", now=0.7).command.as_dict()["gripper"] == pytest.approx(0.9)
    # after a pause the jog restarts from the measured state
    kb.jog.update_state(["shoulder_pan"], [0.18])
    assert kb.handle("a", now=5.0).command.as_dict() == pytest.approx({**STATE, "shoulder_pan": 0.13})


def test_step_size_hold_limits_quit_and_unmapped_keys():
    kb = keyboard()
    kb.jog.update_state(list(STATE), list(STATE.values()))
    assert "step 0.1000 rad, gripper step 0.200" in kb.handle("]", now=0).message
    assert kb.handle("q", now=0).command.as_dict()["shoulder_pan"] == pytest.approx(0.2)
    kb.handle("[", now=0)
    kb.handle("[", now=0)
    assert kb.step == pytest.approx(0.025)
    for i in range(100):  # limits clamp the target
        command = kb.handle("q", now=0.01 * i).command
    assert command.as_dict()["shoulder_pan"] == pytest.approx(1.0)
    hold = kb.handle("space", now=1.0)
    assert hold.command.as_dict() == pytest.approx(STATE) and hold.message == "hold"
    assert kb.handle("esc", now=1.0).quit
    assert "not mapped" in kb.handle("z", now=1.0).message
    assert "q / a  shoulder_pan" in help_text()
    with pytest.raises(ValueError, match="step"):
        keyboard(step=0)


def test_jog_target_errors():
    jog = JogTarget(["a", "b"])
    with pytest.raises(NoJointStateYet, match=r"no joint state yet for \['a', 'b'\]"):
        jog.nudge({"a": 0.1}, now=0)
    jog.update_state(["a", "b", "other"], [1.0, 2.0, 3.0])
    with pytest.raises(KeyError, match="cannot jog"):
        jog.nudge({"c": 0.1}, now=0)


def test_terminal_reader_decodes_keys_from_a_pseudo_terminal():
    master, slave = pty.openpty()
    with open(slave, "r") as stream, TerminalKeys(stream) as terminal:
        os.write(master, b"q")
        assert terminal.read_key(timeout=1.0) == "q"
        os.write(master, b"\x1b[A")
        assert terminal.read_key(timeout=1.0) == "up"
        os.write(master, b" ")
        assert terminal.read_key(timeout=1.0) == "space"
        os.write(master, b"\x1b")
        assert terminal.read_key(timeout=1.0) == "esc"
        assert terminal.read_key(timeout=0.05) is None
    os.close(master)


def test_key_decoder_arrows_escape_and_split_sequences():
    """One decoder for both keyboards (jog teleop and record keyboard): bytes -> key names."""
    decoder = KeyDecoder()
    assert decoder.feed(b"\x1b[C\x1b[Dx\x1bOC") == ["right", "left", "x", "right"]
    # A sequence split across reads is completed by the next read.
    assert decoder.feed(b"\x1b") == []
    assert decoder.feed(b"[") == []
    assert decoder.feed(b"D") == ["left"]
    # A lone ESC is the Esc key once no more bytes come (read timeout -> flush).
    assert decoder.feed(b"\x1b") == []
    assert decoder.flush() == ["esc"]
    assert decoder.flush() == []
    # ESC followed by an unrelated byte: Esc pressed, then that key.
    assert decoder.feed(b"\x1bq") == ["esc", "q"]
    # Up/down, named characters; a modified arrow (ctrl+right) is one ignored sequence, not stray characters.
    assert decoder.feed(b"\x1b[A\x1b[B \n\x1b[1;5CQ") == ["up", "down", "space", "enter", "q"]


def test_terminal_reader_reads_a_pipe_to_its_end():
    read_fd, write_fd = os.pipe()
    os.write(write_fd, b"\x1b[Cq")
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as stream, TerminalKeys(stream) as terminal:
        assert terminal.read_key(timeout=1.0) == "right"
        assert terminal.read_key(timeout=1.0) == "q"
        assert terminal.read_key(timeout=1.0) is None and terminal.at_end


def test_gamepad_deadzone_and_integration():
    assert apply_deadzone(0.05, 0.1) == 0.0
    assert apply_deadzone(1.0, 0.1) == pytest.approx(1.0)
    assert apply_deadzone(-0.55, 0.1) == pytest.approx(-0.5)
    pad = GamepadJog(JogTarget(SO_ARM_JOINTS), max_speed=1.0, gripper_speed=0.5, deadzone=0.1)
    axes, buttons = [0.0] * 6, [0] * 8
    assert pad.update(axes, buttons, dt=0.02, now=0) is None  # no state yet
    pad.jog.update_state(list(STATE), list(STATE.values()))
    assert pad.update([0.05, -0.05, 0, 0, 0.02, 0], buttons, dt=0.02, now=0) is None  # idle inside deadzone
    # full right on the left stick turns the pan negative at max_speed; stick up tilts the shoulder forward
    command = pad.update([1.0, -1.0, 0, 0, 0, 0], buttons, dt=0.1, now=0.1).as_dict()
    assert command["shoulder_pan"] == pytest.approx(0.0)
    assert command["shoulder_lift"] == pytest.approx(-0.1)
    # B opens the gripper (clamped at 1), RB rolls the wrist
    command = pad.update(axes, [0, 1, 0, 0, 0, 1, 0, 0], dt=0.2, now=0.2).as_dict()
    assert command["gripper"] == pytest.approx(1.0)
    assert command["wrist_roll"] == pytest.approx(0.7)
    assert pad.velocities([0, 0, 0, 0.55, -1.0, 0], [1, 0, 0, 0, 1, 0]) == pytest.approx(
        {"wrist_flex": 0.5, "elbow_flex": -1.0, "gripper": -0.5, "wrist_roll": -1.0})
    assert pad.velocities([], []) == {}  # a pad with fewer axes/buttons reads as released
