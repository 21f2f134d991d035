"""LogThrottle: the logger is called only when a key's period has passed (nothing is computed for a dropped one)."""
from lerobot_drivers.nodes.log_throttle import LogThrottle


class Recorder:
    def __init__(self):
        self.lines = []

    def warning(self, text):
        self.lines.append(("warning", text))

    def error(self, text):
        self.lines.append(("error", text))


def test_each_key_is_logged_at_most_once_per_period_and_dropped_messages_are_never_built():
    now = [100.0]
    logger = Recorder()
    throttle = LogThrottle(logger, clock=lambda: now[0])
    built = []

    def message():
        built.append(now[0])
        return f"stale at {now[0]}"

    for t in (100.0, 100.5, 101.9, 102.0, 102.1, 104.5):
        now[0] = t
        throttle.warning("stale", 2.0, message)
        throttle.error("failed", 1.0, "inference error")
    assert [text for level, text in logger.lines if level == "warning"] == [
        "stale at 100.0", "stale at 102.0", "stale at 104.5"]
    assert built == [100.0, 102.0, 104.5]
    assert sum(level == "error" for level, _ in logger.lines) == 3  # at 100.0, 101.9 and 104.5: its own period
