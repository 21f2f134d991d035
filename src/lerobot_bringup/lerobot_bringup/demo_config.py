"""What `make demo` does, sized so that record -> train -> deploy -> evaluate fits in minutes on two CPU cores.

Every field has a command-line flag of the same name (`--eval-episodes 20`, `--steps 6000`, ...): see
`python -m lerobot_bringup.demo --help`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

TASK = "Reach the cube with the gripper."
# The robot interfaces of the demo (config/robots/): the recording's (action = the leader arm) and the rollouts'
# (the same features; action = the goals the arm driver wrote). The camera size comes from them.
RECORD_INTERFACE = "sim_so101_demo"
ROLLOUT_INTERFACE = "sim_so101_demo_policy"
POLICY_TYPES = ("flow_chunk", "act")


@dataclass
class DemoConfig:
    # Where everything goes: <output>/sim_so101_demo (dataset), <output>/train (checkpoints, curves),
    # <output>/eval_sim_so101_demo (the evaluation rollouts), <output>/*.log (the processes' output).
    output: Path = Path("demo_output")

    # ---- 1. record: the scripted operator demonstrates the reaching task on the leader arm, cube at random
    # Every episode is another cube position: the policy must learn where the cube is from the picture alone.
    episodes: int = 50
    # The operator's reach from home takes 2.6-3.3 s; the rest of the episode shows the arm holding on the cube.
    episode_time_s: float = 4.0
    # Between episodes (after the save): the operator brings the arm home and the scene moves the cube.
    reset_time_s: float = 1.5
    # Codec of video cameras (the demo's camera is stored as PNG frames; see config/robots/sim_so101_demo.yaml).
    vcodec: str = "h264"

    # ---- 2. train (lerobot-train): flow_chunk is ours (RTC-capable); act is upstream's ACT (loads in LeRobot 0.4.4)
    policy_type: str = "flow_chunk"
    steps: int = 4000
    # The batch of one optimizer step, split over the training processes.
    batch_size: int = 32
    # Data-parallel training processes (torchrun -m lerobot_train.train, one torch thread each): on two cores, two
    # processes made 16 steps/s where one made 11 (flow_chunk, batch 32). 1 = a plain lerobot-train.
    train_processes: int = 2
    num_workers: int = 0
    seed: int = 1000
    # chunk_size: rows per inference; n_action_steps: rows executed before the next inference in sync mode.
    # 32 rows (1.07 s) from the home pose already show where the arm is going: with 16 the first chunk of an
    # episode moved the arm by 3 degrees on average and the policy never learned to look for the cube.
    chunk_size: int = 32
    n_action_steps: int = 16

    # ---- 3./4. deploy and evaluate on the same simulated robot (no leader, no scripted operator)
    eval_episodes: int = 10
    # An episode ends when the fingertips reach the cube (success) or after this long (failure).
    eval_episode_time_s: float = 8.0
    # The evaluation cube positions come from this seed: not the recording's positions, the same for every method.
    eval_seed: int = 12345
    # The policy node's execution mode (sync, async, rtc; rtc needs flow_chunk).
    policy_mode: str = "sync"
    # Also measure the scripted operator live on the evaluation cubes (its plan sent as a JointTrajectory).
    evaluate_scripted: bool = True

    def __post_init__(self) -> None:
        self.output = Path(self.output)
        if self.policy_type not in POLICY_TYPES:
            raise ValueError(f"--policy-type must be one of {', '.join(POLICY_TYPES)}, got {self.policy_type!r}")
        positive = {"episodes": self.episodes, "episode_time_s": self.episode_time_s, "steps": self.steps,
                    "batch_size": self.batch_size, "train_processes": self.train_processes,
                    "eval_episodes": self.eval_episodes,
                    "eval_episode_time_s": self.eval_episode_time_s, "chunk_size": self.chunk_size,
                    "n_action_steps": self.n_action_steps}
        for name, value in positive.items():
            if value <= 0:
                raise ValueError(f"--{name.replace('_', '-')} must be > 0, got {value}")
        if self.batch_size % self.train_processes:
            raise ValueError(f"--batch-size ({self.batch_size}) must be a multiple of --train-processes "
                             f"({self.train_processes}): each process takes an equal share")
        if self.n_action_steps > self.chunk_size:
            raise ValueError(f"--n-action-steps ({self.n_action_steps}) must be <= --chunk-size ({self.chunk_size})")
        if self.reset_time_s < 0 or self.num_workers < 0:
            raise ValueError("--reset-time-s and --num-workers must be >= 0")
        if self.policy_mode == "rtc" and self.policy_type != "flow_chunk":
            raise ValueError("--policy-mode rtc needs --policy-type flow_chunk (ACT does not support RTC)")

    # ---- where things are
    @staticmethod
    def camera_size(interface: str = RECORD_INTERFACE) -> tuple[int, int]:
        """(width, height) of the interface's front camera: what the simulated camera must render."""
        from lerobot_recorder.interface import find_interface, load_interface

        front = load_interface(find_interface(interface)).images["front"]
        return front.width, front.height

    @property
    def dataset_root(self) -> Path:
        return self.output / "sim_so101_demo"

    @property
    def train_dir(self) -> Path:
        return self.output / "train"

    @property
    def checkpoint(self) -> Path:
        return self.train_dir / "checkpoints" / "last" / "pretrained_model"

    @property
    def eval_dataset_root(self) -> Path:
        return self.output / "eval_sim_so101_demo"  # LeRobot's convention: evaluation datasets are eval_<name>
