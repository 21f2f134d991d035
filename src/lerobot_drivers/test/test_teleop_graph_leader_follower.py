"""Teleoperation over DDS: a leader arm_driver drives a follower arm_driver, each on its own `lerobot-servo-sim`.

The follower's `joint_commands` is remapped to `/leader/joint_states` (same names and units, no mapping code).
The leader is moved by "hand" through its simulator's control socket; the follower simulator's true state is
compared with the leader's.
"""
import math
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from arm_graph_support import Probe, start_driver, start_sim, wait_for  # noqa: E402

pytestmark = pytest.mark.graph

PARAMS = Path(__file__).resolve().parents[3] / "config" / "params"
JOINTS = ["shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper"]
FINAL_TOLERANCE = 0.02      # rad (about 1.1 degree); gripper fraction
# While the leader moves at ~0.6 rad/s: DDS + one control tick + the servo's lag is ~0.04 rad. Stated tolerance:
# median 0.06 rad, 90 % of the samples within 0.15 rad (the rest only bounds stalls of a heavily shared host).
TRACKING_MEDIAN = 0.06
TRACKING_P90 = 0.15


@pytest.fixture(scope="module")
def teleop(tmp_path_factory):
    import rclpy
    from rclpy.context import Context

    tmp = tmp_path_factory.mktemp("teleop_graph")
    processes = []
    context = Context()
    rclpy.init(context=context)
    probe = None
    try:
        leader_sim = start_sim(processes, tmp, "so101_leader", "leader_sim")
        follower_sim = start_sim(processes, tmp, "so101_follower", "follower_sim")
        # The shipped parameter files, with the simulator's port and calibration on top.
        leader = start_driver(processes, tmp, "leader_driver", "leader", leader_sim.port, "so101_leader",
                              params_file=PARAMS / "leader.yaml")
        follower = start_driver(processes, tmp, "follower_driver", "follower", follower_sim.port, "so101_follower",
                                {"command_timeout_s": 0.3}, remappings={"joint_commands": "/leader/joint_states"},
                                params_file=PARAMS / "follower.yaml")
        probe = Probe(context).start(["leader", "follower"])
        assert wait_for(lambda: len(probe.joint_states["leader"]) > 10 and len(probe.joint_states["follower"]) > 10,
                        30), leader.output() + follower.output()
        yield leader_sim, follower_sim, leader, follower, probe
    finally:
        if probe is not None:
            probe.stop()
        for proc in reversed(processes):
            proc.stop()
        context.try_shutdown()


def positions(sim):
    state = sim.state()
    return {n: (state[n]["normalized"] / 100.0 if n == "gripper" else math.radians(state[n]["normalized"]))
            for n in JOINTS}


def max_error(a, b):
    return max(abs(a[n] - b[n]) for n in JOINTS)


def test_follower_tracks_the_leader(teleop):
    leader_sim, follower_sim, leader, follower, probe = teleop
    assert not any(leader_sim.torque().values()), "the SO leader must stay limp"
    assert all(follower_sim.torque().values())
    start = positions(leader_sim)
    targets = {"shoulder_pan": 25.0, "elbow_flex": 40.0, "wrist_roll": -30.0, "gripper": 20.0}  # LeRobot units
    leader_sim.command(cmd="move", positions=targets, frame="normalized", speed=400.0)  # ticks/s, ~0.6 rad/s
    errors = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        lead, follow = positions(leader_sim), positions(follower_sim)
        errors.append(max_error(lead, follow))
        if all(abs(lead[n] - (targets[n] / 100 if n == "gripper" else math.radians(targets[n]))) < 0.005
               for n in targets):
            break
        time.sleep(0.02)
    assert len(errors) > 20, "the leader did not move long enough to measure tracking"
    errors = sorted(errors)
    median, p90 = errors[len(errors) // 2], errors[int(0.9 * (len(errors) - 1))]
    assert median < TRACKING_MEDIAN and p90 < TRACKING_P90, f"median {median:.3f}, p90 {p90:.3f}, max {errors[-1]:.3f}"
    assert wait_for(lambda: max_error(positions(leader_sim), positions(follower_sim)) < FINAL_TOLERANCE, 5), \
        (positions(leader_sim), positions(follower_sim))
    moved = positions(follower_sim)
    assert moved["shoulder_pan"] - start["shoulder_pan"] > 0.1  # it really moved
    # The follower measures the leader -> goal latency from the leader's joint_states stamps.
    since = probe.now_s()
    assert wait_for(lambda: probe.status_value("/follower/arm_driver", "command latency p99 (ms)", since), 5)
    leader_sim.command(cmd="release")


def test_follower_holds_when_the_leader_stops_publishing(teleop):
    leader_sim, follower_sim, leader, follower, probe = teleop
    assert probe.change_state("/leader/arm_driver", "deactivate")
    since = probe.now_s()
    assert wait_for(lambda: probe.status_value("/follower/arm_driver", "command source", since) == "stale_hold", 10)
    held = positions(follower_sim)
    leader_sim.command(cmd="move", positions={"shoulder_pan": -10.0}, frame="normalized")
    time.sleep(1.0)
    assert max_error(positions(follower_sim), held) < 0.005, "the follower moved without fresh commands"
    # The leader comes back: the follower resumes and converges to the leader's new pose.
    assert probe.change_state("/leader/arm_driver", "activate")
    assert wait_for(lambda: max_error(positions(leader_sim), positions(follower_sim)) < FINAL_TOLERANCE, 10), \
        (positions(leader_sim), positions(follower_sim))
    assert positions(follower_sim)["shoulder_pan"] == pytest.approx(math.radians(-10.0), abs=FINAL_TOLERANCE)
    leader_sim.command(cmd="release")


def test_sigterm_turns_the_follower_torque_off(teleop):
    import signal

    leader_sim, follower_sim, leader, follower, probe = teleop
    assert all(follower_sim.torque().values())
    follower.send_signal(signal.SIGTERM)  # what process managers (systemd, docker stop) send
    assert follower.popen.wait(15) == 0, follower.output()
    assert not any(follower_sim.torque().values())
    assert leader.popen.poll() is None  # the leader is independent of the follower
