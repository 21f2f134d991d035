"""Keyboard control without a terminal: byte decoding of arrow/Esc keys and the session's commands."""
from __future__ import annotations

from lerobot_recorder.keyboard_session import Command, CommandKind, Key, KeyboardSession, KeyDecoder


def test_decoder_arrows_escape_and_split_sequences():
    decoder = KeyDecoder()
    assert decoder.feed(b"\x1b[C\x1b[Dx\x1bOC") == [Key.RIGHT, Key.LEFT, Key.RIGHT]
    # A sequence split across reads is completed by the next read.
    assert decoder.feed(b"\x1b") == []
    assert decoder.feed(b"[") == []
    assert decoder.feed(b"D") == [Key.LEFT]
    # A lone ESC is the Esc key once no more bytes come (read timeout -> flush).
    assert decoder.feed(b"\x1b") == []
    assert decoder.flush() == [Key.ESCAPE]
    assert decoder.flush() == []
    # ESC followed by an unrelated byte: Esc pressed, then that key.
    assert decoder.feed(b"\x1bq") == [Key.ESCAPE]
    # Other cursor keys are ignored.
    assert decoder.feed(b"\x1b[A\x1b[B") == []


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
