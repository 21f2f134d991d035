#!/usr/bin/env python3
"""Policy node benchmark: runtime overhead, control-output jitter, and smoothness at chunk boundaries (sync, naive
async, aggregation, RTC) on the simulated reaching task. Prints figures; writes a plot and a JSON summary.

    source env.bash && python benchmarks/bench_policy_node.py [--policy.path DIR] [--train-steps 4000]
        [--episodes 20] [--delays 0,0.1,0.2,0.3] [--jitter-seconds 20] [--skip-jitter] [--skip-overhead]
        [--retrain] [--out DIR] [--quick] [--policy.num_steps N] [--rtc.prefix_attention_schedule S]
        [--rtc.max_guidance_weight B] [--rtc.guidance_jacobian vjp|identity] [--rtc.execution_horizon H]

1. Policy: a flow_chunk checkpoint. Without --policy.path one is made here (minutes on 2 CPU cores): scripted
   reaching demonstrations on the simulated SO-101 scene (lerobot_drivers.sim: the scripted operator's minimum-jerk
   reaches to a random cube, a follower lagging its leader, the scene rendered from the follower at 64x48), written
   with lerobot_dataset's writer through config/robots/sim_so101.yaml's features, trained with lerobot_train's loop.
   It is kept in OUT/policy/ and reused by later runs with the same training settings (--retrain: train anew), so
   `--skip-jitter --skip-overhead` with the sampler/RTC flags studies RTC settings in seconds per setting.
2. Overhead per chunk beyond the model (in this process, real clock): a joint state and a camera image go through
   the runtime as the node feeds them (decode + alignment), then one inference (batch, processors, model, merge,
   gates), then the ActionChunk and JointTrajectory are built and published with real rclpy publishers (the
   MarkerArray, built only while rviz subscribes, is timed apart). Overhead = that total - the model's own forward
   (the normalized-space predict_action_chunk), which is the reference. Target <= 2 ms.
3. Control-output jitter (real processes over DDS): servo simulator + arm driver + sim camera + policy_node in rtc
   mode with the per-tick command stream at 30 Hz driving the arm; jitter = |interval between consecutive command
   stamps - 1/30 s|, p50/p99. Reference in the same run: a bare rclpy 30 Hz timer in this process. Target p99
   <= 2 ms.
4. Smoothness and success (this process, simulated clock, deterministic): the same episodes (cube positions) for
   each mode and artificial inference delay (the world keeps running while the policy "thinks"). Executed actions
   are the plan at each 30 Hz control tick. Per chunk switch: boundary jump = |first executed new row - the old
   row it replaces| (the held action when the old plan had run out), L2 over the 5 body joints in degrees. Jerk =
   |second difference of the executed actions| (body joints, degrees/tick^2), at the ticks around a switch
   (boundary) vs all other moving ticks (interior). Success = the fingertips came within the scene's reach radius
   of the cube at some point (closest: the mean smallest distance). Targets: RTC's boundary jump >= 5x smaller than
   naive async at 200 ms; success not below sync. The "rtc" row uses the checkpoint's RTC settings (or the
   --rtc.* flags); when those do not use the paper's VJP guidance, a "rtc, VJP" row shows the same settings with it.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

WS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(WS / "tests"))
sys.path.insert(0, str(WS / "src" / "lerobot_drivers" / "test"))

FPS = 30
CAMERA_W, CAMERA_H = 64, 48
SIM_STEP_S = 0.01  # world step: joint states at 100 Hz, as the arm driver publishes them


@dataclass(frozen=True)
class Mode:
    runtime_mode: str  # the PolicyRuntime mode
    aggregate_fn_name: str = "weighted_average"  # async only
    # rtc only: RTCConfig fields set over the checkpoint's (and the command line's) for this row
    rtc_changes: tuple = ()


MODES = {
    "sync": Mode("sync"),
    "naive async": Mode("async", "latest_only"),
    "aggregation": Mode("async", "weighted_average"),
    "rtc": Mode("rtc"),  # the checkpoint's RTC settings (with --rtc.* overrides): the headline row
}
# Shown next to "rtc" when that one does not use the paper's Jacobian: the same settings with the paper's VJP
# guidance, so the table shows what the choice of Jacobian does.
RTC_PAPER_VJP = "rtc, VJP"


# ---------------------------------------------------------------------------------------------- the world
class FollowerArm:
    """A servo arm in suite units (rad, gripper 0..1): the goal is followed with a first-order lag (servo
    response) and a velocity limit (the SO arm's 4 rad/s), like the simulated follower."""

    def __init__(self, start: np.ndarray, tau_s: float = 0.05, max_velocity: float = 4.0) -> None:
        self.position = np.array(start, dtype=np.float64)
        self.goal = self.position.copy()
        self.tau_s, self.max_velocity = tau_s, max_velocity

    def step(self, dt: float) -> None:
        wanted = (self.goal - self.position) * (1.0 - np.exp(-dt / self.tau_s))
        self.position += np.clip(wanted, -self.max_velocity * dt, self.max_velocity * dt)


def start_pose(rng: np.random.Generator) -> np.ndarray:
    from lerobot_drivers.sim.kinematics import JOINT_NAMES
    from lerobot_drivers.sim.scripted_operator import HOME

    pose = np.array([HOME[n] for n in JOINT_NAMES])
    pose[:5] += rng.normal(0, 0.05, 5)  # every joint varies: a joint constant in the data gets std 0, and then
    return pose                          # any offset on the robot normalizes to ~1e6 (the policy goes wild)


CUBE_EDGE_M = 0.05  # the scene's default 3 cm cube is ~3 pixels at 64x48; 5 cm keeps it visible to a tiny policy


def make_scene(seed: int):
    from lerobot_drivers.sim.scene import ReachingScene, SceneConfig

    return ReachingScene(SceneConfig(width=CAMERA_W, height=CAMERA_H, target_size=CUBE_EDGE_M), seed=seed)


def time_msg(stamp_ns: int):
    from builtin_interfaces.msg import Time

    return Time(sec=int(stamp_ns // 10**9), nanosec=int(stamp_ns % 10**9))


def interface_file(folder: Path) -> Path:
    import re

    text = (WS / "config/robots/sim_so101.yaml").read_text()
    text = re.sub(r"height: \d+", f"height: {CAMERA_H}", re.sub(r"width: \d+", f"width: {CAMERA_W}", text))
    path = folder / "sim_so101_bench.yaml"
    path.write_text(text)
    return path


# ------------------------------------------------------------------------------------------------ 1. policy
def write_demonstrations(root: Path, interface_path: Path, episodes: int, seed: int = 0) -> Path:
    from tqdm import tqdm

    from lerobot_dataset.writer import LeRobotDatasetWriter
    from lerobot_drivers.sim.kinematics import JOINT_NAMES
    from lerobot_drivers.sim.scripted_operator import plan_reach
    from lerobot_recorder.interface import load_interface
    from lerobot_recorder.recording_dataset import interface_features

    interface = load_interface(interface_path)
    camera = next(iter(interface.images.values()))
    writer = LeRobotDatasetWriter.create(root, fps=FPS, features=interface_features(interface, False),
                                         robot_type=interface.robot_type, use_videos=False, fsync=False)
    rng = np.random.default_rng(seed)
    scene = make_scene(seed)
    try:
        for _ in tqdm(range(episodes), desc="demonstrations", unit="episode"):
            scene.randomize_target()
            arm = FollowerArm(start_pose(rng))
            path = plan_reach(dict(zip(JOINT_NAMES, arm.position)), scene.target_centre)
            for frame in range(int((path.duration + 0.7) * FPS)):
                leader = path.at(frame / FPS)
                # + servo read-out noise (about one encoder tick, 0.088 deg)
                state = (interface.state.transform.forward(arm.position) + rng.normal(0, 0.05, 6)).astype(np.float32)
                action = interface.action.transform.forward(leader).astype(np.float32)
                writer.add_frame({"observation.state": state, "action": action,
                                  camera.key: scene.render(arm.position)}, task=interface.task.text)
                arm.goal = leader
                for _ in range(round(1 / (FPS * SIM_STEP_S))):
                    arm.step(SIM_STEP_S)
            writer.save_episode()
    finally:
        writer.close()
    return root


def train_policy(dataset: Path, interface_path: Path, output: Path, steps: int) -> Path:
    import torch

    from lerobot_train.train import run_training
    from lerobot_train.train_config import parse_train_args

    flags = [
        f"--dataset.root={dataset}", "--policy.type=flow_chunk", "--policy.push_to_hub=false", "--policy.device=cpu",
        "--policy.chunk_size=32", "--policy.n_action_steps=16", "--policy.image_resize_shape=null",
        "--policy.vision_channels=[16,32,32]", "--policy.spatial_softmax_num_keypoints=16",
        "--policy.image_feature_dim=64", "--policy.state_feature_dim=32", "--policy.hidden_dim=64",
        "--policy.channel_hidden_dim=128", "--policy.token_hidden_dim=32", "--policy.num_layers=2",
        "--policy.num_steps=10", "--policy.scheduler_warmup_steps=100", f"--policy.scheduler_decay_steps={steps}",
        "--policy.optimizer_lr=1e-3", f"--steps={steps}", f"--save_freq={steps}", "--batch_size=32",
        "--num_workers=0", f"--log_freq={max(steps // 10, 1)}", f"--output_dir={output}", "--seed=0",
        f"--robot_interface={interface_path}",
    ]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model: one thread is faster than two on a busy 2-core machine
    try:
        run_training(parse_train_args(flags))
    finally:
        torch.set_num_threads(threads)
    return next(output.glob("checkpoints/*/pretrained_model"))


def _training_settings(args) -> dict:
    return {"train_steps": args.train_steps, "demonstrations": args.demonstrations}


def kept_policy(folder: Path, args) -> Path | None:
    """The policy a previous run kept in `folder` when it was trained with the same settings (None: train one)."""
    settings = folder / "training_settings.json"
    if args.retrain or args.quick or not settings.is_file():
        return None
    if json.loads(settings.read_text()) != _training_settings(args):
        print(f"policy: {folder} was trained with other settings ({settings.read_text().strip()}); training anew")
        return None
    print(f"policy: reusing {folder / 'pretrained_model'} (--retrain trains a new one)")
    return folder / "pretrained_model"


def keep_policy(checkpoint: Path, folder: Path, args) -> Path:
    """Copy a freshly trained pretrained_model/ to `folder` so later runs (--skip-jitter --skip-overhead while
    studying RTC settings) reuse it instead of training for minutes."""
    import shutil

    target = folder / "pretrained_model"
    if folder.exists():
        shutil.rmtree(folder)
    shutil.copytree(checkpoint, target)
    (folder / "training_settings.json").write_text(json.dumps(_training_settings(args)))
    return target


# ---------------------------------------------------------------------------------------------- 2. overhead
def measure_overhead(checkpoint: Path, interface_path: Path, chunks: int) -> dict:
    import rclpy
    from rclpy.node import Node

    from lerobot_drivers.image_conversion import numpy_to_image_msg
    from lerobot_msgs.msg import ActionChunk
    from lerobot_policy_node.nodes.policy_node import action_chunk_msg, marker_array_msg, trajectory_msg
    from lerobot_policy_node.runtime.engine import ChunkReady
    from lerobot_policy_node.runtime.outputs import trajectory_content
    from lerobot_policy_node.runtime.serving import ServingConfig, build_served_policy
    from lerobot_recorder import ros_conversion as rc
    from trajectory_msgs.msg import JointTrajectory
    from visualization_msgs.msg import MarkerArray

    # Every chunk must be merged to be measured, so the first-row gate (which holds a chunk far from the state) is
    # off; the boundary-jump gate (from the training dataset) still runs.
    served = build_served_policy(ServingConfig(str(checkpoint), str(interface_path), mode="rtc",
                                               warmup_inferences=3, max_first_row_deviation=0.0), time.time_ns)
    runtime, interface = served.runtime, served.interface
    model = served.policy.policy
    model_seconds: list[float] = []
    original = model.predict_action_chunk

    def timed_model(*args, **kwargs):
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            model_seconds.append(time.perf_counter() - started)

    model.predict_action_chunk = timed_model
    rclpy.init()
    node = Node("bench_policy_overhead")
    publishers = [node.create_publisher(t, n, 10) for t, n in ((ActionChunk, "action_chunk"),
                                                               (JointTrajectory, "joint_trajectory"),
                                                               (MarkerArray, "chunk_markers"))]
    scene = make_scene(3)
    pose = start_pose(np.random.default_rng(3))
    camera = next(iter(interface.images.values()))
    rows = {"total": [], "model": [], "assembly": [], "runtime": [], "messages": [], "markers": []}
    warmup = 3  # the first chunks pay for first-use costs (message classes, allocations): not measured
    try:
        for index in range(chunks + warmup):
            now = time.time_ns()
            state_msg = rc.joint_state_msg(list(interface.state.joints), pose, now - 1_000_000)
            image_msg = numpy_to_image_msg(scene.render(pose), stamp=time_msg(now - 1_000_000))
            runtime.start()  # an empty queue: the next step infers at once
            t0 = time.perf_counter()
            runtime.add_message(interface.state.sources[0].topic, state_msg, now)
            runtime.add_message(camera.topic, image_msg, now)
            t1 = time.perf_counter()
            before = len(model_seconds)
            result = runtime.run_once()
            t2 = time.perf_counter()
            if not isinstance(result, ChunkReady) or len(model_seconds) != before + 1:
                raise RuntimeError(f"overhead measurement: expected one inference, got {result}")
            chunk = result.chunk
            first = chunk.first_row_not_before(chunk.row_times_ns[chunk.start_row])
            content = trajectory_content(interface, chunk, int(chunk.row_times_ns[chunk.start_row]))
            publishers[0].publish(action_chunk_msg(chunk, first, interface, served.policy_id))
            publishers[1].publish(trajectory_msg(content))
            t3 = time.perf_counter()
            # The node builds markers only while rviz subscribes: timed apart, not part of the overhead.
            publishers[2].publish(marker_array_msg(chunk, interface, "world"))
            rows["markers"].append(time.perf_counter() - t3)
            if index < warmup:
                continue
            rows["model"].append(model_seconds[-1])
            rows["assembly"].append(t1 - t0)
            rows["runtime"].append(t2 - t1 - model_seconds[-1])
            rows["messages"].append(t3 - t2)
            rows["total"].append(t3 - t0)
    finally:
        model.predict_action_chunk = original
        node.destroy_node()
        rclpy.shutdown()
    overhead = [t - m for t, m in zip(rows["total"], rows["model"])]
    return {"chunks": chunks, **{f"{k}_ms_p50": 1000 * statistics.median(v) for k, v in rows.items()},
            "overhead_ms_p50": 1000 * statistics.median(overhead),
            "overhead_ms_p95": 1000 * float(np.percentile(overhead, 95)),
            "overhead_vs_model": statistics.median(overhead) / statistics.median(rows["model"])}


# ------------------------------------------------------------------------------------------------ 3. jitter
def move_to_home(probe, seconds: float = 2.0) -> None:
    from sensor_msgs.msg import JointState

    from lerobot_drivers.sim.kinematics import JOINT_NAMES
    from lerobot_drivers.sim.scripted_operator import HOME

    publisher = probe.publisher(JointState, "/follower/joint_commands")
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        publisher.publish(JointState(name=list(JOINT_NAMES), position=[HOME[n] for n in JOINT_NAMES]))
        time.sleep(0.02)


def measure_jitter(checkpoint: Path, interface_path: Path, seconds: float) -> dict:
    import rclpy
    from rclpy.context import Context
    from sensor_msgs.msg import JointState

    from arm_graph_support import Probe, start_driver, start_sim, wait_for
    from lerobot_testing.processes import ManagedProcess

    tmp = Path(tempfile.mkdtemp(prefix="bench-policy-jitter-"))
    processes: list = []
    context = Context()
    rclpy.init(context=context)
    probe = None
    try:
        sim = start_sim(processes, tmp, "so101_follower", "sim")
        start_driver(processes, tmp, "driver", "follower", sim.port, "so101_follower", {"command_timeout_s": 0.5})
        processes.append(ManagedProcess([sys.executable, "-m", "lerobot_drivers.nodes.sim_camera_node", "--ros-args",
                                         "-p", f"width:={CAMERA_W}", "-p", f"height:={CAMERA_H}"], tmp / "camera.log"))
        node = ManagedProcess([sys.executable, "-m", "lerobot_policy_node.nodes.policy_node", "--ros-args",
                               "-p", f"policy_path:={checkpoint}", "-p", f"interface:={interface_path}",
                               "-p", "mode:=rtc", "-p", "command_stream:=true", "-p", "action_chunk_topic:=''",
                               "-p", "trajectory_topic:=''", "-p", "markers:=false"], tmp / "policy.log")
        processes.append(node)
        probe = Probe(context).start(["follower"])
        move_to_home(probe)  # the demonstrations start there; the simulator's own start pose is elsewhere
        commands: list = []
        probe.node.create_subscription(JointState, "/follower/joint_commands", commands.append, 100)
        bare: list[int] = []
        probe.node.create_timer(1.0 / FPS, lambda: bare.append(time.time_ns()))
        node.wait_for_output("policy_node ready", timeout=300)
        if not wait_for(lambda: len(commands) > 10, 60):
            raise RuntimeError(f"no command stream:\n{node.output()[-3000:]}")
        commands.clear()
        bare.clear()
        time.sleep(seconds)
        stamps = np.array([m.header.stamp.sec * 10**9 + m.header.stamp.nanosec for m in list(commands)])
        bare_stamps = np.array(list(bare))
    finally:
        if probe is not None:
            probe.stop()
        for proc in reversed(processes):
            proc.stop()
        context.try_shutdown()

    def jitter(series: np.ndarray) -> tuple[float, float]:
        deviation = np.abs(np.diff(series) / 1e9 - 1.0 / FPS) * 1000
        return float(np.percentile(deviation, 50)), float(np.percentile(deviation, 99))

    node_p50, node_p99 = jitter(stamps)
    bare_p50, bare_p99 = jitter(bare_stamps)
    # Intervals with a missing message (the plan ran out, a stale observation) are not timer jitter.
    gaps = int(np.sum(np.diff(stamps) > 1.5e9 / FPS))
    return {"commands": len(stamps), "node_jitter_ms_p50": node_p50, "node_jitter_ms_p99": node_p99,
            "bare_timer_jitter_ms_p50": bare_p50, "bare_timer_jitter_ms_p99": bare_p99, "gaps": gaps}


# ------------------------------------------------------------------------------------------------ 4. smoothness
@dataclass
class EpisodeRecord:
    executed: list = field(default_factory=list)  # (tick, action in dataset units or None while holding)
    switches: list = field(default_factory=list)  # (switch tick, jump)
    reached: bool = False
    closest_m: float = float("inf")  # smallest fingertip distance to the cube's top centre


class World:
    """The simulated robot around a PolicyRuntime: an executor that follows the runtime's per-tick plan, the arm,
    joint states at 100 Hz and camera images at 30 fps fed through the runtime as the node feeds them."""

    def __init__(self, runtime, interface, scene, clock, arm: FollowerArm) -> None:
        from lerobot_drivers.image_conversion import numpy_to_image_msg
        from lerobot_recorder import ros_conversion as rc

        self.runtime, self.interface, self.scene, self.clock, self.arm = runtime, interface, scene, clock, arm
        self._rc, self._image_msg = rc, numpy_to_image_msg
        self.camera = next(iter(interface.images.values()))
        self.record = EpisodeRecord()
        self._next_image_ns = clock.now_ns
        self._next_tick = None
        self._held = None

    def advance(self, seconds: float) -> None:
        from lerobot_drivers.sim.kinematics import forward_kinematics

        end = self.clock.now_ns + int(round(seconds * 1e9))
        while self.clock.now_ns < end:
            now = self.clock.now_ns
            self._record_ticks(now)
            command = self.runtime.command_at(now)
            if command is not None:
                self.arm.goal = self.interface.action_to_ros(command)
            self.arm.step(SIM_STEP_S)
            pose = forward_kinematics(self.arm.position)
            self.record.reached |= self.scene.is_reached(pose)
            self.record.closest_m = min(self.record.closest_m, self.scene.tip_distance(pose))
            stamp = time_msg(now)
            self.runtime.add_message(self.interface.state.sources[0].topic,
                                     self._rc.joint_state_msg(list(self.interface.state.joints), self.arm.position,
                                                              now), now)
            if now >= self._next_image_ns:
                self.runtime.add_message(self.camera.topic,
                                         self._image_msg(self.scene.render(self.arm.position), stamp=stamp), now)
                self._next_image_ns += int(1e9 / FPS)
            self.clock.now_ns += int(SIM_STEP_S * 1e9)

    def _record_ticks(self, now: int) -> None:
        ticks = self.runtime.ticks
        if ticks is None:
            return
        if self._next_tick is None:
            self._next_tick = ticks.tick_at_or_before(now)
        while ticks.time_ns(self._next_tick) <= now:
            action = self.runtime.command_at(ticks.time_ns(self._next_tick))
            if action is not None:
                self._held = action
            self.record.executed.append((self._next_tick, action))
            self._next_tick += 1

    def held_action(self):
        return self._held


class DelayedPolicy:
    """The real policy, plus an artificial inference delay during which the world keeps running."""

    def __init__(self, policy, world_ref: list, delay_s: float) -> None:
        self.policy, self.world_ref, self.delay_s = policy, world_ref, delay_s
        self.input_features, self.output_features = policy.input_features, policy.output_features
        self.robot_interface, self.config = policy.robot_interface, policy.config

    def supports_rtc(self) -> bool:
        return self.policy.supports_rtc()

    def predict_action_chunk(self, observation, **rtc):
        out = self.policy.predict_action_chunk(observation, **rtc)
        if self.world_ref and self.delay_s > 0:
            self.world_ref[0].advance(self.delay_s)
        return out

    def reset(self) -> None:
        self.policy.reset()


def run_episode(policy, interface, mode: Mode, delay_s: float, seed: int, seconds: float,
                execution_horizon: int = 0) -> EpisodeRecord:
    """One episode of `seconds` on the simulated clock; `execution_horizon` is the runtime's RTC mask end."""
    with rtc_settings(policy, dict(mode.rtc_changes)):
        return _run_episode(policy, interface, mode, delay_s, seed, seconds, execution_horizon)


@contextmanager
def rtc_settings(policy, changes: dict):
    """The policy's RTC config with `changes` (validated by RTCConfig) while the block runs."""
    import dataclasses

    saved = policy.config.rtc_config
    policy.config.rtc_config = dataclasses.replace(saved, **changes)
    try:
        yield
    finally:
        policy.config.rtc_config = saved


def modes_to_run(policy) -> dict[str, Mode]:
    from lerobot_train.policies.rtc import RTCGuidanceJacobian

    modes = dict(MODES)
    if policy.config.rtc_config.guidance_jacobian is not RTCGuidanceJacobian.VJP:
        modes[RTC_PAPER_VJP] = Mode("rtc", rtc_changes=(("guidance_jacobian", RTCGuidanceJacobian.VJP),))
    return modes


def _run_episode(policy, interface, mode: Mode, delay_s: float, seed: int, seconds: float,
                 execution_horizon: int) -> EpisodeRecord:
    import torch

    from lerobot_policy_node.runtime.engine import ChunkReady, PolicyRuntime, RuntimeConfig, Wait
    from lerobot_policy_node.runtime.gates import GateConfig, SafetyGates
    from lerobot_policy_node.runtime.observation import ObservationAssembler
    from lerobot_policy_node.runtime.policy_runner import PolicyRunner

    class SimClock:
        now_ns = 1_000 * 10**9

        def __call__(self) -> int:
            return self.now_ns

    torch.manual_seed(seed)  # the same flow noise for every mode
    clock, world_ref = SimClock(), []
    delayed = DelayedPolicy(policy, world_ref, delay_s)
    rows = policy.config.n_action_steps if mode.runtime_mode == "sync" else 0  # sync: n_action_steps, as upstream's select_action
    runner = PolicyRunner(delayed, interface, rows)
    runner.chunk_rows = rows or policy.config.chunk_size
    gates = SafetyGates(GateConfig(names=tuple(interface.action.names), max_first_row_deviation=0))  # measure, do not gate
    runtime = PolicyRuntime(runner, ObservationAssembler(interface),
                            RuntimeConfig(mode=mode.runtime_mode, aggregate_fn_name=mode.aggregate_fn_name,
                                          execution_horizon=execution_horizon), gates, clock)
    scene = make_scene(seed)
    world = World(runtime, interface, scene, clock, FollowerArm(start_pose(np.random.default_rng(seed))))
    world_ref.append(world)
    world.advance(0.2)  # sensors running before the policy starts
    runtime.start()
    end = clock.now_ns + int(seconds * 1e9)
    previous = None
    while clock.now_ns < end:
        held_before = world.held_action()
        result = runtime.run_once()
        if isinstance(result, Wait):
            world.advance(min(max((result.until_ns - clock.now_ns) / 1e9, SIM_STEP_S), 0.05))
            continue
        if isinstance(result, ChunkReady):
            chunk = result.chunk
            switch_tick = runtime.ticks.tick_at_or_before(int(chunk.row_times_ns[chunk.start_row]))
            replaced = old_row(previous, chunk.row_times_ns[chunk.start_row]) if previous is not None else None
            if replaced is None:
                replaced = world.held_action() if world.held_action() is not None else held_before
            if replaced is not None:
                jump = float(np.linalg.norm(chunk.rows[chunk.start_row][:5] - replaced[:5]))
                world.record.switches.append((switch_tick, jump))
            previous = chunk
    return world.record


def old_row(chunk, time_ns: int):
    """The row `chunk` planned for `time_ns`, or None outside its executed rows."""
    matches = np.flatnonzero(chunk.row_times_ns == time_ns)
    if len(matches) and matches[0] >= chunk.start_row:
        return chunk.rows[matches[0]]
    return None


def smoothness(records: list[EpisodeRecord]) -> dict:
    jumps, boundary, interior = [], [], []
    for record in records:
        jumps += [j for _, j in record.switches[1:]]  # the first chunk replaces nothing the policy planned
        switch_ticks = {t for t, _ in record.switches[1:]}
        actions = {t: a for t, a in record.executed if a is not None}
        for t in actions:
            if t - 1 in actions and t + 1 in actions:
                jerk = float(np.linalg.norm((actions[t + 1] - 2 * actions[t] + actions[t - 1])[:5]))
                (boundary if (t in switch_ticks or t + 1 in switch_ticks) else interior).append(jerk)
    return {"boundary_jump_mean": float(np.mean(jumps)) if jumps else float("nan"),
            "boundary_jump_p95": float(np.percentile(jumps, 95)) if jumps else float("nan"),
            "jerk_boundary": float(np.mean(boundary)) if boundary else float("nan"),
            "jerk_interior": float(np.mean(interior)) if interior else float("nan"),
            "success": float(np.mean([r.reached for r in records])),
            "closest_cm": float(np.mean([100 * r.closest_m for r in records])), "switches": len(jumps)}


@dataclass(frozen=True)
class RtcOverrides:
    """Sampler and RTC settings evaluated instead of the checkpoint's (None: the checkpoint's)."""

    num_steps: int | None = None  # Euler steps per chunk
    prefix_attention_schedule: str | None = None
    max_guidance_weight: float | None = None
    guidance_jacobian: str | None = None
    execution_horizon: int = 0  # the runtime's soft-mask end (0: the overlap with the old chunk)


def load_with_overrides(checkpoint: Path, overrides: RtcOverrides):
    import dataclasses

    from lerobot_train import load_policy

    policy = load_policy(checkpoint)
    if overrides.num_steps is not None:
        policy.config.num_steps = overrides.num_steps
    changes = {name: getattr(overrides, name) for name in ("prefix_attention_schedule", "max_guidance_weight",
                                                           "guidance_jacobian") if getattr(overrides, name) is not None}
    policy.config.rtc_config = dataclasses.replace(policy.config.rtc_config, **changes)
    return policy


def rtc_description(policy, overrides: RtcOverrides) -> str:
    rtc = policy.config.rtc_config
    horizon = overrides.execution_horizon or "the overlap with the old chunk"
    return (f"{rtc.guidance_jacobian.value} Jacobian, {rtc.prefix_attention_schedule.value} soft mask, "
            f"max_guidance_weight {rtc.max_guidance_weight:g}, {policy.config.num_steps} Euler steps, "
            f"mask end: {horizon}")


def measure_smoothness(checkpoint: Path, interface_path: Path, delays: list[float], episodes: int,
                       seconds: float, overrides: RtcOverrides = RtcOverrides()) -> dict:
    import torch
    from tqdm import tqdm

    from lerobot_recorder.interface import load_interface

    torch.set_num_threads(1)
    interface = load_interface(interface_path)
    policy = load_with_overrides(checkpoint, overrides)
    modes = modes_to_run(policy)
    results: dict = {"rtc_settings": rtc_description(policy, overrides), "modes": list(modes)}
    runs = [(label, delay) for delay in delays for label in modes]
    for label, delay in tqdm(runs, desc="smoothness", unit="setting"):
        records = [run_episode(policy, interface, modes[label], delay, seed, seconds, overrides.execution_horizon)
                   for seed in range(episodes)]
        results[f"{label}@{delay:g}"] = smoothness(records)
    return results


# ------------------------------------------------------------------------------------------------------ report
def plot(results: dict, delays: list[float], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (jumps, success) = plt.subplots(1, 2, figsize=(11, 4))
    for label in results["modes"]:
        ms = [d * 1000 for d in delays]
        jumps.plot(ms, [results[f"{label}@{d:g}"]["boundary_jump_mean"] for d in delays], marker="o", label=label)
        success.plot(ms, [results[f"{label}@{d:g}"]["success"] for d in delays], marker="o", label=label)
    jumps.set(xlabel="inference delay (ms)", ylabel="boundary jump, mean (deg, L2 of 5 joints)", yscale="log",
              title="jump at chunk switches")
    success.set(xlabel="inference delay (ms)", ylabel="success rate", ylim=(-0.05, 1.05), title="cube reached")
    jumps.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--policy.path", dest="policy_path", type=Path, default=None,
                        help="a flow_chunk pretrained_model/ trained on sim_so101 at 64x48 (default: train one)")
    parser.add_argument("--train-steps", type=int, default=4000)
    parser.add_argument("--demonstrations", type=int, default=100)
    parser.add_argument("--episodes", type=int, default=20, help="evaluation episodes per mode and delay")
    parser.add_argument("--episode-seconds", type=float, default=6.0)
    parser.add_argument("--delays", default="0,0.1,0.2,0.3", help="artificial inference delays (s)")
    parser.add_argument("--overhead-chunks", type=int, default=40)
    parser.add_argument("--jitter-seconds", type=float, default=20.0)
    parser.add_argument("--skip-jitter", action="store_true", help="skip the DDS graph part")
    parser.add_argument("--skip-overhead", action="store_true", help="skip the overhead part")
    parser.add_argument("--retrain", action="store_true",
                        help="train a new policy even if OUT/policy holds one trained with the same settings")
    parser.add_argument("--out", type=Path, default=WS / "outputs" / "bench_policy_node")
    rtc = parser.add_argument_group("sampler and RTC settings for the smoothness part (default: the checkpoint's)")
    rtc.add_argument("--policy.num_steps", dest="num_steps", type=int, default=None, help="Euler steps per chunk")
    rtc.add_argument("--rtc.prefix_attention_schedule", dest="schedule", default=None,
                     help="ZEROS, ONES, LINEAR or EXP")
    rtc.add_argument("--rtc.max_guidance_weight", dest="beta", type=float, default=None, help="beta, the clip")
    rtc.add_argument("--rtc.guidance_jacobian", dest="jacobian", default=None,
                     help="vjp (the paper) or identity (upstream LeRobot's RTCProcessor)")
    rtc.add_argument("--rtc.execution_horizon", dest="horizon", type=int, default=0,
                     help="the runtime's soft-mask end in rows (0: the overlap with the old chunk)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: tiny training, 1 episode, 2 delays")
    args = parser.parse_args()
    if args.quick:
        args.train_steps, args.demonstrations, args.episodes = 30, 3, 1
        args.delays, args.overhead_chunks, args.jitter_seconds, args.episode_seconds = "0,0.2", 5, 3.0, 2.0
    try:
        delays = [float(d) for d in args.delays.split(",")]
    except ValueError:
        print(f"bench_policy_node: --delays {args.delays!r}: expected comma-separated seconds", file=sys.stderr)
        return 2
    overrides = RtcOverrides(args.num_steps, args.schedule, args.beta, args.jacobian, args.horizon)
    try:  # bad values are named before minutes of training
        from lerobot_train.policies.rtc import RTCConfig

        RTCConfig(prefix_attention_schedule=args.schedule or "LINEAR", max_guidance_weight=args.beta or 1.0,
                  execution_horizon=args.horizon, guidance_jacobian=args.jacobian or "vjp")
        if args.num_steps is not None and args.num_steps < 1:
            raise ValueError(f"--policy.num_steps must be >= 1, got {args.num_steps}")
    except ValueError as error:
        print(f"bench_policy_node: {error}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="bench-policy-node-"))
    interface_path = interface_file(work)
    checkpoint = args.policy_path or kept_policy(args.out / "policy", args)
    if checkpoint is None:
        started = time.monotonic()
        dataset = write_demonstrations(work / "dataset", interface_path, args.demonstrations)
        checkpoint = train_policy(dataset, interface_path, work / "train", args.train_steps)
        print(f"policy: flow_chunk trained {args.train_steps} steps on {args.demonstrations} demonstrations in "
              f"{time.monotonic() - started:.0f} s: {checkpoint}")
        if not args.quick:  # a smoke run's policy is not worth keeping
            checkpoint = keep_policy(checkpoint, args.out / "policy", args)
    summary: dict = {"policy": str(checkpoint)}

    if not args.skip_overhead:
        overhead = summary["overhead"] = measure_overhead(checkpoint, interface_path, args.overhead_chunks)
        print(f"\n== overhead per chunk beyond the model ({overhead['chunks']} chunks, rtc, 1 camera "
              f"{CAMERA_W}x{CAMERA_H})")
        print(f"model forward (reference) p50 {overhead['model_ms_p50']:.2f} ms")
        print(f"observation assembly p50 {overhead['assembly_ms_p50']:.2f} ms, runtime (batch, processors, merge, "
              f"gates) p50 {overhead['runtime_ms_p50']:.2f} ms, messages + publish p50 "
              f"{overhead['messages_ms_p50']:.2f} ms")
        print(f"rviz markers (only while subscribed, not in the overhead) p50 {overhead['markers_ms_p50']:.2f} ms")
        print(f"overhead p50 {overhead['overhead_ms_p50']:.2f} ms, p95 {overhead['overhead_ms_p95']:.2f} ms "
              f"({overhead['overhead_vs_model']:.2f} x the model forward)  [target <= 2 ms]")

    if not args.skip_jitter:
        jitter = summary["jitter"] = measure_jitter(checkpoint, interface_path, args.jitter_seconds)
        print(f"\n== control-output jitter at {FPS} Hz ({jitter['commands']} commands, rtc inference running)")
        print(f"policy_node command stream: p50 {jitter['node_jitter_ms_p50']:.2f} ms, p99 "
              f"{jitter['node_jitter_ms_p99']:.2f} ms  [target p99 <= 2 ms]; intervals with a missing command: "
              f"{jitter['gaps']}")
        print(f"bare rclpy timer (reference): p50 {jitter['bare_timer_jitter_ms_p50']:.2f} ms, p99 "
              f"{jitter['bare_timer_jitter_ms_p99']:.2f} ms")

    results = summary["smoothness"] = measure_smoothness(checkpoint, interface_path, delays, args.episodes,
                                                         args.episode_seconds, overrides)
    print(f"\n== smoothness at chunk boundaries ({args.episodes} episodes x {args.episode_seconds:g} s per setting)")
    print(f"rtc: {results['rtc_settings']}" + (f"; '{RTC_PAPER_VJP}': the same with the paper's VJP guidance"
                                               if RTC_PAPER_VJP in results["modes"] else ""))
    print(f"{'delay':>6} {'mode':>12} {'jump mean':>10} {'jump p95':>9} {'jerk bnd':>9} {'jerk int':>9} "
          f"{'bnd-int':>8} {'success':>8} {'closest':>8}")
    for delay in delays:
        for label in results["modes"]:
            r = results[f"{label}@{delay:g}"]
            print(f"{delay * 1000:>4.0f}ms {label:>12} {r['boundary_jump_mean']:>10.3f} {r['boundary_jump_p95']:>9.3f} "
                  f"{r['jerk_boundary']:>9.3f} {r['jerk_interior']:>9.3f} "
                  f"{r['jerk_boundary'] - r['jerk_interior']:>8.3f} {r['success']:>8.2f} {r['closest_cm']:>6.1f}cm")
    if 0.2 in delays:
        naive, rtc, sync = (results[f"{m}@0.2"] for m in ("naive async", "rtc", "sync"))
        ratio = naive["boundary_jump_mean"] / rtc["boundary_jump_mean"] if rtc["boundary_jump_mean"] > 0 else float("inf")
        summary["rtc_vs_naive_jump_ratio_at_200ms"] = ratio
        print(f"at 200 ms: naive async boundary jump / RTC's = {ratio:.1f} x  [target >= 5 x]; success rtc "
              f"{rtc['success']:.2f} vs sync {sync['success']:.2f}  [target rtc >= sync]")
    plot(results, delays, args.out / "smoothness.png")
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"\nplot: {args.out / 'smoothness.png'}; figures: {args.out / 'summary.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
