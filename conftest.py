"""Test-session wide setup shared by every package's tests.

DDS isolation is set here as well as in scripts/run_tests.sh so that running `pytest` directly on a machine
with other ROS graphs cannot cross-talk: a per-run domain, localhost-only discovery, logs in a temp dir.
"""
import os
import random
import tempfile

import pytest

os.environ.setdefault("ROS_DOMAIN_ID", str(random.Random(os.getpid()).randint(1, 200)))
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.setdefault("ROS_LOG_DIR", tempfile.mkdtemp(prefix="lerobot-ros-log-"))
os.environ.setdefault("FASTDDS_BUILTIN_TRANSPORTS", "DEFAULT?sockets_size=4MB")

pytest_plugins = ["lerobot_testing.fixtures"]


@pytest.fixture(autouse=True)
def _normal_scheduling():
    """Put every thread of the test process back on the normal scheduler before each test.

    In fresh-clone runs the pytest process was found at SCHED_FIFO priority 99 (its parent `make` was not): some
    library imported by an earlier test made a thread real-time (not yet identified; nothing of ours does). The
    nodes the tests start inherit the policy, and Fast DDS threads spinning at FIFO 99 starved everything else on
    two cores until a graph test hung. This resets the policy; it does not find the cause.
    """
    if hasattr(os, "sched_setscheduler"):
        for tid in os.listdir("/proc/self/task"):
            try:
                if os.sched_getscheduler(int(tid)) != os.SCHED_OTHER:
                    os.sched_setscheduler(int(tid), os.SCHED_OTHER, os.sched_param(0))
            except OSError:  # the thread ended meanwhile
                pass
    yield
