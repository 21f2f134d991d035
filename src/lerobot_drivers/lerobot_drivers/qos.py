"""Every QoS of the suite, in one place, each name saying which stream it is for.

`QoSSpec` is plain data (no rclpy import), so robot interface files can declare QoS in a ROS-free module and the
bag converter can read them without a ROS graph; `QoSSpec.profile()` builds the rclpy `QoSProfile`.

Why each one:
- Camera images are published RELIABLE (keep last 10). A reliable publisher matches reliable and best-effort
  subscribers alike, and a reliable subscriber (the recorder's default) gets every frame even when it is briefly
  busy: measured with 3 cameras at 640x480@30 on a loaded 2-core machine, best-effort delivery lost 50-85 % of the
  frames while reliable delivery lost under 4 %. With keep-last history the publisher never blocks on a slow reader.
- Joint states are published reliable (depth 10), so both kinds of subscriber match. Subscribers that only need
  the newest state (teleop, the simulated camera, the scripted operator) read them best effort; the recorder keeps
  the last 50 (0.5 s at 100 Hz) so an ingest stall does not overwrite messages and leave gaps in a stream.
- Direct joint commands are a latest-value stream: best effort, depth 1, newest wins (an old goal is worthless).
- Trajectories and action chunks are plans that must not be lost: reliable, depth 10.
- A command topic of a robot interface (the action feature read from a JointTrajectory or a multi-array by the
  recorder, or written by the policy node) is reliable, depth 10.
- The task text is reliable, depth 1, volatile (a transient_local subscription gets nothing from a volatile
  publisher; an interface file can ask for transient_local to receive a task latched before the recorder started).
"""
from __future__ import annotations

from dataclasses import dataclass

RELIABILITIES = ("reliable", "best_effort")
DURABILITIES = ("volatile", "transient_local")


@dataclass(frozen=True)
class QoSSpec:
    """A keep-last QoS as plain data: reliability, durability, depth."""

    reliability: str  # "reliable" | "best_effort"
    durability: str  # "volatile" | "transient_local"
    depth: int

    def __post_init__(self) -> None:
        if self.reliability not in RELIABILITIES:
            raise ValueError(f"QoS reliability must be one of {RELIABILITIES}, got {self.reliability!r}")
        if self.durability not in DURABILITIES:
            raise ValueError(f"QoS durability must be one of {DURABILITIES}, got {self.durability!r}")
        if isinstance(self.depth, bool) or not isinstance(self.depth, int) or self.depth < 1:
            raise ValueError(f"QoS depth must be an integer >= 1, got {self.depth!r}")

    def profile(self):
        """The rclpy QoSProfile (keep-last history)."""
        from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

        return QoSProfile(
            history=HistoryPolicy.KEEP_LAST,
            depth=self.depth,
            reliability=ReliabilityPolicy.RELIABLE if self.reliability == "reliable" else ReliabilityPolicy.BEST_EFFORT,
            durability=(DurabilityPolicy.TRANSIENT_LOCAL if self.durability == "transient_local"
                        else DurabilityPolicy.VOLATILE),
        )

    # The name the robot interface code has always used.
    to_rclpy = profile

    def describe(self) -> str:
        return f"{self.reliability}/{self.durability}/depth {self.depth}"


# Publishers.
CAMERA_IMAGE_QOS = QoSSpec("reliable", "volatile", 10)  # camera nodes publish images; the recorder reads them so
JOINT_STATE_PUBLISHER_QOS = QoSSpec("reliable", "volatile", 10)  # arm drivers' joint_states and joint_goals
# Subscriptions.
LATEST_JOINT_STATE_QOS = QoSSpec("best_effort", "volatile", 5)  # readers that only want the newest state
RECORDED_JOINT_STATE_QOS = QoSSpec("best_effort", "volatile", 50)  # the recorder: 0.5 s at 100 Hz, no gaps
LATEST_COMMAND_QOS = QoSSpec("best_effort", "volatile", 1)  # the arm driver's joint_commands: newest wins
TRAJECTORY_QOS = QoSSpec("reliable", "volatile", 10)  # joint_trajectory and action_chunk: never lost
COMMAND_TOPIC_QOS = QoSSpec("reliable", "volatile", 10)  # an interface's command topic (recorded or published)
TASK_QOS = QoSSpec("reliable", "volatile", 1)  # task text for the recorder
