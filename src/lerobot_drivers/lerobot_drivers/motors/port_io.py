"""Serial reads that wait instead of spinning.

Both SDKs open the port with timeout=0 and poll `readPort` in a tight loop until the packet timeout: one full
core per waiting bus, and, inside a Python process, the polling thread hogs the GIL so the driver's other
threads (ROS executor, a simulator thread) get scheduled only every switch interval. `WaitingReadMixin`
overrides `readPort`: when no byte is pending it sleeps in select() on the port's fd (GIL released) until
bytes arrive or the packet deadline passes, capped at a few ms so the SDK's own timeout logic stays in charge.

It also owns the per-packet reply timeout: `packet_timeout_ms(packet_length)` (the SDK formula unless a
subclass corrects it) with an optional floor `min_packet_timeout_ms` (0 = none). A floor helps on a heavily
loaded machine running the simulator, where the simulator process may not be scheduled within ~35 ms.
"""
from __future__ import annotations

import select

MAX_WAIT_MS = 5.0


class WaitingReadMixin:
    """Mix into an SDK PortHandler (before the SDK class in the bases)."""

    min_packet_timeout_ms: float = 0.0

    def packet_timeout_ms(self, packet_length: int) -> float:
        # Both SDKs: transmission time + 2 x USB latency timer (16 ms) + 2 ms.
        return self.tx_time_per_byte * packet_length + 16.0 * 2.0 + 2.0

    def setPacketTimeout(self, packet_length):  # noqa: N802 (SDK name)
        self.packet_start_time = self.getCurrentTime()
        self.packet_timeout = max(self.packet_timeout_ms(packet_length), self.min_packet_timeout_ms)

    def readPort(self, length):  # noqa: N802 (SDK name)
        data = self.ser.read(length)
        if data or length <= 0:
            return data
        remaining_ms = self.packet_timeout - self.getTimeSinceStart()
        if remaining_ms > 0:
            try:
                select.select([self.ser.fileno()], [], [], min(remaining_ms, MAX_WAIT_MS) / 1000.0)
            except (OSError, ValueError):
                return data
            data = self.ser.read(length)
        return data
