"""PolicyRuntime on a simulated clock: when it infers, what it skips, RTC arguments, resets, staleness, errors.

The robot here follows the runtime's per-tick command exactly (holding when there is none) and publishes its joint
state at 100 Hz; "inference" advances the simulated clock by the policy's latency.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from policy_runtime_testlib import RampPolicy, SimClock, TinyFlowPolicy, image, joint_state, make_interface  # noqa: E402

from lerobot_policy_node.runtime.engine import (  # noqa: E402
    ChunkHeld, ChunkReady, InferenceFailed, NoObservation, PolicyRuntime, RuntimeConfig, Wait,
)
from lerobot_policy_node.runtime.execution import ExecutionMonitor, ExecutionMonitorConfig  # noqa: E402
from lerobot_policy_node.runtime.gates import GateConfig, SafetyGates, TripKind  # noqa: E402
from lerobot_policy_node.runtime.observation import ObservationAssembler  # noqa: E402
from lerobot_policy_node.runtime.policy_runner import PolicyRunner  # noqa: E402


class SimRobot:
    """Follows the runtime's command for now (dataset units = degrees here), else holds; joint states at 100 Hz."""

    def __init__(self, runtime: PolicyRuntime, clock: SimClock, start=(10.0, 20.0), camera: bool = False):
        self.runtime, self.clock, self.camera = runtime, clock, camera
        self.position = np.array(start, dtype=np.float64)
        self.publish_states = True
        self.publish_images = True
        self._last_publish = None

    def publish(self) -> None:
        now = self.clock.now_ns
        if self._last_publish is not None and now - self._last_publish < 10_000_000:
            return
        self._last_publish = now
        command = self.runtime.command_at(now)
        if command is not None:
            self.position = command
        if self.publish_states:
            self.runtime.add_message("/arm/joint_states", joint_state(np.radians(self.position), now), now)
        if self.camera and self.publish_images:
            self.runtime.add_message("/arm/wrist/image_raw", image(now), now)


def build(mode="sync", rows=10, latency=0.0, fps=10, camera=False, gate_config=None, monitor=None, policy=None,
          **config):
    clock = SimClock()
    interface = make_interface(fps, camera=camera)
    policy = policy or RampPolicy(clock, rows=rows, latency_s=latency)
    runner = PolicyRunner(policy, interface)
    gates = SafetyGates(gate_config or GateConfig(names=tuple(interface.action.names), max_first_row_deviation=0))
    runtime = PolicyRuntime(runner, ObservationAssembler(interface), RuntimeConfig(mode=mode, **config), gates, clock,
                            monitor)
    robot = SimRobot(runtime, clock, camera=camera)
    return runtime, clock, policy, robot


def drive(runtime, clock, robot, seconds, until=None):
    """Run the inference loop on simulated time; returns every non-Wait result."""
    end = clock.now_ns + int(seconds * 1e9)
    results = []
    while clock.now_ns < end:
        robot.publish()
        result = runtime.run_once()
        if isinstance(result, Wait):
            step = min(max(result.until_ns - clock.now_ns, 1_000_000), 10_000_000)
            clock.advance(step / 1e9)
            continue
        results.append(result)
        if until is not None and until(results):
            break
    return results


def chunks(results):
    return [r.chunk for r in results if isinstance(r, ChunkReady)]


def prime(runtime, clock, robot):
    """Joint states for 0.3 s before starting, so the first tick has a fresh observation."""
    for _ in range(30):
        robot.publish()
        clock.advance(0.01)
    runtime.start()


def test_upstream_issue_4223_long_warmup_then_slow_inference_no_jump_on_the_first_chunk():
    # SO-101 at 30 fps: ~0.7 s warm-up, then ~0.3 s per inference, 30-row chunks.
    runtime, clock, policy, robot = build(mode="rtc", rows=30, fps=30)
    policy.latency_s = 0.35
    runtime.warm_up(2)  # 0.7 s at configure, excluded from the statistics
    policy.latency_s = 0.3
    prime(runtime, clock, robot)
    held = robot.position.copy()
    first = chunks(drive(runtime, clock, robot, 2.0, until=lambda r: len(chunks(r)) >= 1))[0]
    assert first.delay_rows == 10  # 0.3 s at 30 fps, switch at the first tick after the merge
    assert first.executed_during_inference == 0 and first.start_row == 0
    # The arm, holding at `held`, is sent to row 0 (one step of the ramp away), not to row 10 (upstream's bug
    # skipped the measured delay and jumped 21 rows ahead after the 0.7 s warm-up).
    jump = np.abs(first.rows[first.start_row] - held)
    assert np.allclose(jump, np.abs(policy.velocity))
    stats = runtime.stats()
    assert stats.latency_p95_s == pytest.approx(0.3) and runtime.latency.warmup == 2


def test_async_steady_state_skips_the_rows_executed_during_inference():
    runtime, clock, policy, robot = build(mode="async", rows=10, latency=0.25, aggregate_fn_name="latest_only")
    prime(runtime, clock, robot)
    made = chunks(drive(runtime, clock, robot, 4.0, until=lambda r: len(chunks(r)) >= 3))
    for chunk in made[1:]:
        assert chunk.delay_rows == 3  # 0.25 s at 10 fps: ticks n, n+1, n+2 ran meanwhile
        assert chunk.executed_during_inference == 3 and chunk.start_row == 3
    # Nominal alignment: row k of a chunk is the k-th tick from its observation.
    second = made[1]
    assert second.row_times_ns[0] == second.observation_stamp_ns


def test_sync_infers_only_when_the_chunk_is_used_up():
    runtime, clock, policy, robot = build(mode="sync", rows=5, latency=0.25)
    prime(runtime, clock, robot)
    made = chunks(drive(runtime, clock, robot, 3.0, until=lambda r: len(chunks(r)) >= 2))
    first, second = made
    assert second.observation_stamp_ns == first.row_times_ns[-1]  # observed at the first chunk's last row
    assert second.executed_during_inference == 1  # only that last row; the robot held after it
    assert second.delay_rows == 3 and second.start_row == 1


def test_rtc_gives_the_policy_the_old_rows_from_the_observation_tick_padded_by_repeating_the_last():
    runtime, clock, policy, robot = build(mode="rtc", rows=10, latency=0.25, execution_horizon=8,
                                          chunk_size_threshold=0.5)
    prime(runtime, clock, robot)
    made = chunks(drive(runtime, clock, robot, 3.0, until=lambda r: len(chunks(r)) >= 2))
    first = made[0]
    assert policy.calls[0] == {}  # the first chunk is unguided
    rtc = policy.calls[1]
    prefix = rtc["prev_chunk_left_over"][0]
    assert prefix.shape == (8, 2) and rtc["execution_horizon"] == 8
    assert rtc["inference_delay"] == 3  # p95 of one 0.25 s latency at 10 fps: 3 rows
    observed = made[1].observation_stamp_ns
    k0 = int(np.flatnonzero(first.row_times_ns == observed)[0])
    real = first.rows[k0:]  # the old plan's rows from the observation tick on
    assert len(real) == 6
    assert np.allclose(prefix[:6], real, atol=1e-5)
    assert np.allclose(prefix[6:], real[-1], atol=1e-5)  # padded with the last real row, never zeros


@pytest.mark.parametrize("latency", [0.2, 0.23, 0.3])
def test_steady_rtc_freezes_exactly_the_rows_run_during_inference_and_time_aligns_the_prefix(latency):
    """At 30 fps, for every guided chunk: the delay the policy is given = the rows the executor ran from the old plan
    while it was computed = the rows skipped, so the first executed new row is the first row not frozen; and prefix
    row k is the old plan's row at the new chunk's row-k time (a one-row shift would be a one-row jump)."""
    runtime, clock, policy, robot = build(mode="rtc", rows=30, latency=latency, fps=30)
    prime(runtime, clock, robot)
    made = chunks(drive(runtime, clock, robot, 5.0, until=lambda r: len(chunks(r)) >= 5))
    guided = [(old, new, call) for old, new, call in zip(made, made[1:], policy.calls[1:])]
    assert len(guided) == 4
    for old, new, call in guided:
        assert call["inference_delay"] == new.inference_delay == new.delay_rows == new.executed_during_inference
        assert new.start_row == new.delay_rows == int(np.floor(latency * 30 + 1e-9)) + 1
        prefix = call["prev_chunk_left_over"][0]
        real = len(old.rows) - int(np.flatnonzero(old.row_times_ns == new.row_times_ns[0])[0])
        for k in range(real):
            old_k = int(np.flatnonzero(old.row_times_ns == new.row_times_ns[k])[0])
            assert np.allclose(prefix[k], old.rows[old_k], atol=1e-5)


def test_rtc_default_horizon_is_the_overlap_with_the_old_chunk():
    runtime, clock, policy, robot = build(mode="rtc", rows=10, latency=0.25, chunk_size_threshold=0.5)
    prime(runtime, clock, robot)
    chunks(drive(runtime, clock, robot, 3.0, until=lambda r: len(chunks(r)) >= 2))
    rtc = policy.calls[1]
    assert rtc["execution_horizon"] == 6 and rtc["prev_chunk_left_over"].shape == (1, 6, 2)  # no padding


def test_a_chunk_computed_across_a_reset_is_discarded():
    runtime, clock, policy, robot = build(mode="async", rows=10, latency=0.2)
    prime(runtime, clock, robot)
    original = policy.predict_action_chunk

    def reset_meanwhile(observation, **rtc):
        out = original(observation, **rtc)
        runtime.reset()  # e.g. the ~/reset service, called from another thread while the policy runs
        return out

    policy.predict_action_chunk = reset_meanwhile
    results = drive(runtime, clock, robot, 0.5, until=lambda r: len(r) >= 1)
    assert isinstance(results[0], ChunkHeld) and results[0].kind == TripKind.DISCARDED_AFTER_RESET
    assert runtime.command_at(clock.now_ns) is None and runtime.stats().trips["discarded_after_reset"] == 1


def test_stale_state_stops_inference_and_is_counted_per_feature_and_reason():
    runtime, clock, policy, robot = build(mode="sync", rows=5)
    prime(runtime, clock, robot)
    robot.publish_states = False
    clock.advance(0.5)  # state limit is 2 / fps = 0.2 s
    results = drive(runtime, clock, robot, 0.5)
    assert results and all(isinstance(r, NoObservation) for r in results)
    assert results[0].missed.reasons == {"observation.state": "stale"}
    assert policy.calls == []
    stats = runtime.stats()
    assert stats.misses["observation.state"]["stale"] == len(results) == stats.stale_observations


def test_a_new_run_counts_its_own_stale_ticks_and_trips():
    """RunPolicy's result describes its run: counts from an earlier run (here stale ticks) start again from zero, as
    chunks and latency do (the demo printed the first episode's 16 stale ticks for every later episode)."""
    runtime, clock, policy, robot = build(mode="sync", rows=5)
    prime(runtime, clock, robot)
    robot.publish_states = False
    clock.advance(0.5)
    drive(runtime, clock, robot, 0.3)
    assert runtime.stats().stale_observations > 0
    runtime.stop()
    robot.publish_states = True
    prime(runtime, clock, robot)
    made = chunks(drive(runtime, clock, robot, 1.0, until=lambda r: len(chunks(r)) >= 1))
    stats = runtime.stats()
    assert made and stats.chunks == len(made)
    assert stats.stale_observations == 0 and stats.misses == {} and stats.trips == {}
    assert stats.observations >= 1


def test_stale_camera_stops_inference():
    runtime, clock, policy, robot = build(mode="sync", rows=5, camera=True)
    prime(runtime, clock, robot)
    assert chunks(drive(runtime, clock, robot, 0.3, until=lambda r: len(chunks(r)) >= 1))
    robot.publish_images = False
    clock.advance(1.0)
    calls = len(policy.calls)
    results = drive(runtime, clock, robot, 0.5)
    assert results and all(isinstance(r, NoObservation) for r in results)
    assert results[-1].missed.reasons == {"observation.images.wrist": "stale"}
    assert len(policy.calls) == calls


def test_inference_errors_are_retried_after_half_a_second_then_fatal():
    runtime, clock, policy, robot = build(mode="sync", rows=5, max_consecutive_errors=3)
    prime(runtime, clock, robot)
    policy.fail_next = 2
    results = drive(runtime, clock, robot, 2.0, until=lambda r: any(isinstance(x, ChunkReady) for x in r))
    failures = [r for r in results if isinstance(r, InferenceFailed)]
    assert len(failures) == 2 and not any(f.fatal for f in failures)
    assert "retrying in 0.5 s" in failures[0].message and "simulated CUDA error" in failures[0].message
    assert isinstance(results[-1], ChunkReady)
    policy.fail_next = 10
    results = drive(runtime, clock, robot, 5.0, until=lambda r: any(getattr(x, "fatal", False) for x in r))
    assert [getattr(r, "fatal", None) for r in results if isinstance(r, InferenceFailed)] == [False, False, True]
    assert not runtime.running and "3 inference errors in a row" in runtime.failed


def test_executor_goals_decide_which_rows_count_as_executed():
    # The simulated executor cannot publish while the (single-threaded) simulated inference runs, so its goal
    # stream may be silent for one inference (0.25 s) without counting as stopped.
    monitor = ExecutionMonitor(ExecutionMonitorConfig(use_goals=True, tolerance=0.5, goal_timeout_s=0.5))
    runtime, clock, policy, robot = build(mode="async", rows=10, latency=0.25, aggregate_fn_name="latest_only",
                                          monitor=monitor)
    prime(runtime, clock, robot)
    following = True

    def publish_goal():
        now = clock.now_ns
        planned = runtime.command_at(now)
        if planned is not None:
            runtime.add_executor_goal(now, planned if following else planned + 5.0)

    original = robot.publish

    def publish_with_goals():
        original()
        publish_goal()

    robot.publish = publish_with_goals
    made = chunks(drive(runtime, clock, robot, 3.0, until=lambda r: len(chunks(r)) >= 2))
    assert made[1].start_row == 3  # followed: every row run during inference counts
    following = False  # the executor stops following (e.g. it rejected the chunk): its goals disagree
    made = chunks(drive(runtime, clock, robot, 3.0, until=lambda r: len(chunks(r)) >= 1))
    assert made[0].start_row < made[0].delay_rows
    assert monitor.goals_mismatched > 0


def test_stop_returns_the_action_to_hold_and_clears_the_plan():
    runtime, clock, policy, robot = build(mode="sync", rows=10)
    prime(runtime, clock, robot)
    first = chunks(drive(runtime, clock, robot, 0.3, until=lambda r: len(chunks(r)) >= 1))[0]
    clock.now_ns = int(first.row_times_ns[3]) + 50_000_000  # half way between rows 3 and 4
    planned = runtime.command_at(clock.now_ns)
    assert np.allclose(planned, (first.rows[3] + first.rows[4]) / 2)
    hold = runtime.stop()
    assert np.allclose(hold, planned) and runtime.command_at(clock.now_ns) is None
    assert isinstance(runtime.run_once(), Wait)


def test_a_chunk_merged_before_a_stop_or_reset_is_no_longer_current():
    """The node publishes a merged chunk after the runtime's lock is released; a stop or reset in between sends a
    hold, and the chunk must not follow it (the arm would move again after the hold)."""
    for interrupt in ("stop", "reset"):
        runtime, clock, policy, robot = build(mode="async", rows=10, latency=0.2)
        prime(runtime, clock, robot)
        merged = chunks(drive(runtime, clock, robot, 0.5, until=lambda r: len(chunks(r)) >= 1))[0]
        assert runtime.is_current(merged)
        getattr(runtime, interrupt)()
        assert not runtime.is_current(merged)
        runtime.start()
        assert not runtime.is_current(merged)


def test_boundary_jump_is_clamped_or_held_by_the_gate_inside_the_runtime():
    for action in ("clamp", "hold"):
        interface = make_interface(10)
        gate_config = GateConfig(names=tuple(interface.action.names), max_first_row_deviation=0,
                                 max_step=np.array([2.0, 2.0]), jump_action=action)
        runtime, clock, policy, robot = build(mode="async", rows=10, latency=0.25, gate_config=gate_config,
                                              aggregate_fn_name="latest_only")
        prime(runtime, clock, robot)
        first = chunks(drive(runtime, clock, robot, 0.5, until=lambda r: len(chunks(r)) >= 1))[0]
        policy.velocity = (1.0, 30.0)  # the next chunk veers off: a jump of tens of degrees at the boundary
        results = drive(runtime, clock, robot, 2.0, until=lambda r: len(r) >= 1)
        if action == "clamp":
            chunk = results[0].chunk
            assert [t.kind for t in results[0].trips] == [TripKind.BOUNDARY_JUMP]
            executed = chunk.rows[chunk.start_row:]
            old_at_switch = first.rows[list(first.row_times_ns).index(chunk.row_times_ns[chunk.start_row])]
            assert np.all(np.abs(executed[0] - old_at_switch) <= 2.0 + 1e-9)
        else:
            assert isinstance(results[0], ChunkHeld) and results[0].kind == TripKind.BOUNDARY_JUMP
        assert runtime.stats().trips["boundary_jump"] == 1


@pytest.mark.slow
def test_guided_velocity_makes_the_new_chunk_agree_with_the_rows_it_replaces():
    """A tiny torch flow policy: with RTC the new chunk's frozen rows follow the old plan; naive async does not."""
    pytest.importorskip("torch")
    disagreement = {}
    for mode in ("rtc", "async"):
        clock = SimClock()
        policy = TinyFlowPolicy(rows=10, seed=3)
        runtime, clock, _, robot = build(mode=mode, policy=policy, aggregate_fn_name="latest_only",
                                         execution_horizon=8)
        runtime.runner.policy = policy
        robot.position = np.zeros(2)
        prime(runtime, clock, robot)
        made = chunks(drive(runtime, clock, robot, 3.0, until=lambda r: len(chunks(r)) >= 4))
        gaps = []
        for old, new in zip(made, made[1:]):
            times = list(old.row_times_ns)
            k_old = times.index(new.row_times_ns[0])
            overlap = min(len(old.rows) - k_old, 3)  # the rows the guidance weighs most
            gaps.append(np.abs(new.rows[:overlap] - old.rows[k_old:k_old + overlap]).mean())
        disagreement[mode] = float(np.mean(gaps))
    assert disagreement["rtc"] < 0.6 * disagreement["async"], disagreement


def test_the_task_comes_from_the_task_topic_unless_a_run_sets_one():
    from std_msgs.msg import String

    from lerobot_recorder.interface import parse_interface
    from policy_runtime_testlib import INTERFACE_YAML

    text = INTERFACE_YAML.format(fps=10, images="").replace("  text: test task", "  text: test task\n  topic: /task")
    interface = parse_interface(text, "task_arm.yaml")
    clock = SimClock()
    seen = []

    class TaskPolicy(RampPolicy):
        def predict_action_chunk(self, observation, **rtc):
            seen.append(observation["task"][0])
            return super().predict_action_chunk(observation, **rtc)

    policy = TaskPolicy(clock, rows=3)
    runtime = PolicyRuntime(PolicyRunner(policy, interface), ObservationAssembler(interface), RuntimeConfig(),
                            SafetyGates(GateConfig(names=tuple(interface.action.names), max_first_row_deviation=0)),
                            clock)
    robot = SimRobot(runtime, clock)
    prime(runtime, clock, robot)
    drive(runtime, clock, robot, 0.5, until=lambda r: len(chunks(r)) >= 1)
    assert seen[-1] == "test task"  # no message on /task yet: the interface's text
    runtime.add_message("/task", String(data="stack the cubes"), clock.now_ns)
    drive(runtime, clock, robot, 1.0, until=lambda r: len(chunks(r)) >= 1)
    assert seen[-1] == "stack the cubes"
    runtime.set_task("reach the cube")  # a RunPolicy goal's task wins over the topic
    drive(runtime, clock, robot, 1.0, until=lambda r: len(chunks(r)) >= 1)
    assert seen[-1] == "reach the cube"
