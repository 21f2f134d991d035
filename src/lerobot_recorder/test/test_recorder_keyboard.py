"""Keyboard control without a terminal: key names (decoded by lerobot_drivers.teleop.terminal) and the session's
commands."""
from __future__ import annotations

from lerobot_recorder.keyboard_session import Command, CommandKind, Key, KeyboardSession, key_from_name


def test_key_names_of_the_shared_terminal_reader_map_to_session_keys():
    assert [key_from_name(n) for n in ("right", "left", "esc", "up", "q")] == [Key.RIGHT, Key.LEFT, Key.ESCAPE,
                                                                              None, None]


def test_session_right_saves_and_starts_the_next_episode():
    session = KeyboardSession(task="pick", episode_time_s=20.0, num_episodes=2)
    assert session.start() == [Command(CommandKind.SEND_GOAL, "pick", 20.0)]
    assert session.on_key(Key.RIGHT) == [Command(CommandKind.STOP)]
    assert session.on_result(saved=True) == [Command(CommandKind.SEND_GOAL, "pick", 20.0)]
    # Right arrow while the goal waits for the reset period: the recorder's ~/stop ends the reset.
    assert session.on_key(Key.RIGHT) == [Command(CommandKind.STOP)]
    assert session.on_result(saved=True) == [Command(CommandKind.EXIT)]
    assert session.saved_episodes == 2 and session.stopping


def test_session_left_rerecords_the_same_task():
    session = KeyboardSession(task="stack", num_episodes=1)
    session.start()
    assert session.on_key(Key.LEFT) == [Command(CommandKind.CANCEL_GOAL)]
    assert session.on_result(saved=False) == [Command(CommandKind.SEND_GOAL, "stack", 0.0)]
    assert session.saved_episodes == 0
    assert session.on_result(saved=True) == [Command(CommandKind.EXIT)]


def test_session_escape_saves_then_exits_and_ignores_later_keys():
    session = KeyboardSession(task="t")
    session.start()
    assert session.on_key(Key.ESCAPE) == [Command(CommandKind.STOP)]
    assert session.on_key(Key.RIGHT) == []
    assert session.on_key(Key.LEFT) == []
    assert session.on_result(saved=True) == [Command(CommandKind.EXIT)]
    assert session.saved_episodes == 1


def test_session_rejected_goal_exits():
    session = KeyboardSession(task="t")
    session.start()
    assert session.on_goal_rejected() == [Command(CommandKind.EXIT)]
    idle = KeyboardSession(task="t")
    assert idle.on_key(Key.ESCAPE) == [Command(CommandKind.EXIT)]  # no goal active: nothing to save


def test_session_ends_on_a_failed_episode_instead_of_looping():
    """An episode that failed (e.g. no camera frame at all) ends the session with the reason, not a new goal."""
    session = KeyboardSession(task="t", num_episodes=3)
    session.start()
    assert session.on_result(saved=False, error="error: no frames were recorded") == [Command(CommandKind.EXIT)]
    assert session.stopping and session.failure == "error: no frames were recorded"
