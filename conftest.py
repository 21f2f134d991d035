"""Test-session wide setup shared by every package's tests.

DDS isolation is set here as well as in scripts/run_tests.sh so that running `pytest` directly on a machine
with other ROS graphs cannot cross-talk: a per-run domain, localhost-only discovery, logs in a temp dir.
"""
import os
import random
import tempfile

os.environ.setdefault("ROS_DOMAIN_ID", str(random.Random(os.getpid()).randint(1, 200)))
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.setdefault("ROS_LOG_DIR", tempfile.mkdtemp(prefix="lerobot-ros-log-"))
os.environ.setdefault("FASTDDS_BUILTIN_TRANSPORTS", "DEFAULT?sockets_size=4MB")

pytest_plugins = ["lerobot_testing.fixtures"]
