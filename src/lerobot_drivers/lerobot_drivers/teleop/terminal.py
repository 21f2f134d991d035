"""The one terminal key reader of the suite: the jog teleop keyboard and the record keyboard both read keys here.

`KeyDecoder` turns raw terminal bytes into key names: printable characters (lowercased), "space", "enter", "tab",
"backspace", the arrows "up"/"down"/"left"/"right", and "esc". A lone ESC byte is ambiguous (the Esc key, or the
start of an arrow's escape sequence) until more bytes come or the caller decides none will (`flush()` after a
short read timeout).

`TerminalKeys` reads key presses one at a time from a stream: a terminal is put in cbreak mode (no Enter needed;
Ctrl-C still sends SIGINT) and restored on exit; a pipe is read as it is, so scripts and tests can send the same
bytes a terminal would.
"""
from __future__ import annotations

import os
import select
import sys

ESC = 0x1B
# Cursor keys arrive as CSI (ESC [ A) or, in application cursor mode, SS3 (ESC O A) sequences.
ARROWS = {"A": "up", "B": "down", "C": "right", "D": "left"}
CHAR_NAMES = {" ": "space", "\n": "enter", "\r": "enter", "\t": "tab", "\x7f": "backspace"}
# How long to wait for the rest of an escape sequence before a lone ESC counts as the Esc key.
ESC_TIMEOUT_S = 0.05


class KeyDecoder:
    """Incremental decoder of terminal input bytes into key names (see the module docstring)."""

    def __init__(self) -> None:
        self._pending = b""

    def feed(self, data: bytes) -> list[str]:
        keys: list[str] = []
        buffer = self._pending + data
        i = 0
        while i < len(buffer):
            if buffer[i] != ESC:
                end = i + 1
                while end < len(buffer) and buffer[end] & 0xC0 == 0x80:  # UTF-8 continuation bytes
                    end += 1
                char = buffer[i:end].decode(errors="replace")
                keys.append(CHAR_NAMES.get(char, char.lower()))
                i = end
                continue
            if i + 1 >= len(buffer):
                break  # lone ESC at the end: wait for more bytes or flush()
            introducer = chr(buffer[i + 1])
            if introducer not in "[O":
                keys.append("esc")  # ESC followed by an unrelated byte: a real Esc press
                i += 1
                continue
            end = self._sequence_end(buffer, i, introducer)
            if end is None:
                break  # incomplete sequence: wait for the rest
            final = chr(buffer[end - 1])
            if end - i == 3 and final in ARROWS:  # plain arrows only; modified ones (ESC [ 1 ; 5 C) are ignored
                keys.append(ARROWS[final])
            i = end
        self._pending = buffer[i:]
        return keys

    @staticmethod
    def _sequence_end(buffer: bytes, start: int, introducer: str) -> int | None:
        """End (exclusive) of the escape sequence at `start`, or None when it is not complete yet."""
        if introducer == "O":  # SS3: exactly one more byte
            return start + 3 if start + 2 < len(buffer) else None
        for j in range(start + 2, len(buffer)):  # CSI: parameters, then a final byte in @..~
            if 0x40 <= buffer[j] <= 0x7E:
                return j + 1
        return None

    def flush(self) -> list[str]:
        """No more bytes came after a pending ESC: it was the Esc key."""
        pending, self._pending = self._pending, b""
        return ["esc"] if pending == b"\x1b" else []


class TerminalKeys:
    """Key presses from a terminal in cbreak mode, or from a pipe; a context manager that restores the terminal."""

    def __init__(self, stream=None) -> None:
        self.stream = stream or sys.stdin
        self.fd = self.stream.fileno()
        self._saved = None
        self._decoder = KeyDecoder()
        self._ready: list[str] = []
        self.at_end = False  # the input was closed (end of a pipe)

    def __enter__(self) -> "TerminalKeys":
        if os.isatty(self.fd):
            import termios
            import tty

            self._saved = termios.tcgetattr(self.fd)
            tty.setcbreak(self.fd)
        return self

    def __exit__(self, *exc) -> None:
        if self._saved is not None:
            import termios

            termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)
            self._saved = None

    def read_key(self, timeout: float) -> str | None:
        """The next key name, or None when no key came within `timeout` seconds (or the input ended)."""
        if self._ready:
            return self._ready.pop(0)
        if self.at_end:
            return None
        ready = select.select([self.fd], [], [], timeout)[0]
        if not ready:
            self._ready += self._decoder.flush()
            return self._ready.pop(0) if self._ready else None
        data = os.read(self.fd, 64)
        if not data:
            self.at_end = True
            self._ready += self._decoder.flush()
        else:
            self._ready += self._decoder.feed(data)
            if not self._ready and self._decoder_waits_for_esc(timeout):
                self._ready += self._decoder.flush()
        return self._ready.pop(0) if self._ready else None

    def _decoder_waits_for_esc(self, timeout: float) -> bool:
        """A lone ESC is pending: read more within ESC_TIMEOUT_S; True when nothing came (it was the Esc key)."""
        if not select.select([self.fd], [], [], min(ESC_TIMEOUT_S, timeout))[0]:
            return True
        data = os.read(self.fd, 64)
        if not data:
            self.at_end = True
            return True
        self._ready += self._decoder.feed(data)
        return False
