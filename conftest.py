"""Test-session wide setup shared by every package's tests.

DDS isolation is set here as well as in scripts/run_tests.sh so that running `pytest` directly on a machine
with other ROS graphs cannot cross-talk: a per-run domain, localhost-only discovery, logs in a temp dir.
"""
import os
import random
import tempfile
import time

import pytest
from lerobot_dataset.thread_scheduling import real_time_threads, set_thread_scheduling

os.environ.setdefault("ROS_DOMAIN_ID", str(random.Random(os.getpid()).randint(1, 200)))
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.setdefault("ROS_LOG_DIR", tempfile.mkdtemp(prefix="lerobot-ros-log-"))
os.environ.setdefault("FASTDDS_BUILTIN_TRANSPORTS", "DEFAULT?sockets_size=4MB")

pytest_plugins = ["lerobot_testing.fixtures"]


@pytest.fixture(autouse=True)
def _no_real_time_threads_left():
    """Fail the test after which a thread of the test process runs at real-time priority, and put it back.

    SVT-AV1 switched video-encoding threads to SCHED_FIFO 99 (as root); the nodes the later tests started inherited
    it and Fast DDS threads spinning at FIFO 99 starved two cores until a graph test hung, far from the cause.
    lerobot_dataset.thread_scheduling now undoes that; this names the test if anything does it again.
    """
    if not os.path.isdir("/proc/self/task"):
        yield
        return
    before = set(real_time_threads())
    yield
    deadline = time.monotonic() + 2.0  # an encoder thread may still be inside its (guarded) first encode call
    while (left := set(real_time_threads()) - before) and time.monotonic() < deadline:
        time.sleep(0.05)
    for tid in left:
        try:
            set_thread_scheduling(tid, os.SCHED_OTHER, 0)
        except OSError:  # the thread ended meanwhile
            pass
    assert not left, f"this test left {len(left)} thread(s) of the test process at real-time scheduling"
