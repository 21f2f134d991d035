"""The simulated SO-101 reaching env, the rollout/metrics loop, and `lerobot-eval` on a trained checkpoint."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import train_testlib as tl  # noqa: E402

from lerobot_drivers.sim.kinematics import JOINT_NAMES, inverse_kinematics  # noqa: E402
from lerobot_train.envs.configs import GymEnvConfig, SO101ReachEnvConfig  # noqa: E402
from lerobot_train.envs.factory import make_envs, observation_to_batch  # noqa: E402
from lerobot_train.envs.reach import STATE_KEY, SO101ReachEnv, from_dataset_units, to_dataset_units  # noqa: E402
from lerobot_train.eval import evaluate  # noqa: E402

SMALL = SO101ReachEnvConfig(image_height=48, image_width=64, episode_length=60)


def reach_command(target_xyz: np.ndarray) -> np.ndarray:
    """Joint targets (dataset units) that put the fingertips on the cube: inverse kinematics, gripper open."""
    solution = inverse_kinematics(np.asarray(target_xyz) + [0.0, 0.0, 0.005])
    joints = np.array([solution.joints[n] for n in JOINT_NAMES])
    joints[5] = 0.9
    return to_dataset_units(joints)


class ScriptedReacher:
    """A controller that knows where each env's cube is (not learned): it checks that the rollout loop, the
    env's dynamics and its success signal fit together. `still=True` holds the arm where it is instead."""

    def __init__(self, envs, still: bool = False):
        self.envs, self.still = envs, still

    def reset(self) -> None:
        pass

    def select_action(self, batch):
        if self.still:
            return batch[STATE_KEY].copy()
        return np.stack([reach_command(env.scene.target_centre) for env in self.envs[: len(batch[STATE_KEY])]])


def test_reach_env_observations_units_and_seeds():
    env = SO101ReachEnv(SMALL)
    obs, info = env.reset(seed=3)
    assert obs[STATE_KEY].dtype == np.float32 and obs[STATE_KEY].shape == (6,)
    image = obs["observation.images.front"]
    assert image.dtype == np.uint8 and image.shape == (48, 64, 3) and image.std() > 10
    assert env.observation_space.contains(obs)
    # home pose in LeRobot units: degrees, gripper 0..100 (HOME gripper opening 0.3 -> 30)
    assert obs[STATE_KEY][5] == pytest.approx(30.0) and obs[STATE_KEY][1] == pytest.approx(np.degrees(-0.35), abs=1e-4)
    again, info2 = SO101ReachEnv(SMALL).reset(seed=3)
    assert np.array_equal(info["target"], info2["target"])  # the same seed poses the same problem
    assert not np.array_equal(info["target"], SO101ReachEnv(SMALL).reset(seed=4)[1]["target"])
    assert np.allclose(from_dataset_units(to_dataset_units(np.array([0.1, -0.2, 0.3, 0.4, -0.5, 0.6]))),
                       [0.1, -0.2, 0.3, 0.4, -0.5, 0.6], atol=1e-6)


def test_reach_env_follows_commands_and_reports_success():
    env = SO101ReachEnv(SMALL)
    _, info = env.reset(seed=0)
    start = env.joints.copy()
    command = reach_command(info["target"])
    _, reward, terminated, truncated, step_info = env.step(command)
    moved = np.abs(env.joints - start)
    assert moved[:4].max() > 0.0 and moved[:4].max() <= np.radians(SMALL.servo_max_speed_deg_s) / SMALL.fps + 1e-9
    assert reward == 0.0 and not terminated and not truncated
    for _ in range(SMALL.episode_length):
        _, reward, terminated, truncated, step_info = env.step(command)
        if terminated or truncated:
            break
    assert terminated and not truncated and reward == 1.0 and step_info["is_success"]
    assert step_info["tip_distance"] <= SMALL.reach_radius


def test_evaluate_aggregates_success_and_writes_videos(tmp_path):
    envs = make_envs(SMALL, 2)
    reached = evaluate(SMALL, ScriptedReacher(envs), n_episodes=3, batch_size=2, start_seed=10,
                       videos_dir=tmp_path / "videos", max_episodes_rendered=1, envs=envs, progress=False)
    overall = reached["overall"]
    assert overall["pc_success"] == 100.0 and overall["avg_sum_reward"] == 1.0 and overall["n_episodes"] == 3
    assert [e["seed"] for e in reached["per_episode"]] == [10, 11, 12]
    assert all(1 <= e["length"] < SMALL.episode_length for e in reached["per_episode"])
    assert overall["video_paths"] == [str(tmp_path / "videos" / "eval_episode_0.mp4")]
    import av

    with av.open(overall["video_paths"][0]) as container:
        frames = sum(1 for _ in container.decode(video=0))
    assert frames == reached["per_episode"][0]["length"] + 1  # the reset frame and one per step
    still = evaluate(SMALL, ScriptedReacher(envs, still=True), n_episodes=2, batch_size=2, envs=envs, progress=False)
    assert still["overall"]["pc_success"] == 0.0
    assert still["overall"]["avg_episode_length"] == SMALL.episode_length  # truncated, never terminated


def test_gym_env_observations_map_to_lerobot_keys():
    envs = make_envs(GymEnvConfig(gym_id="gym_pusht/PushT-v0", episode_length=5), 2)
    batch = observation_to_batch([env.reset(seed=i)[0] for i, env in enumerate(envs)], "push the T")
    assert batch["observation.image"].shape == (2, 3, 96, 96) and batch["observation.image"].dtype == np.float32
    assert 0.0 <= batch["observation.image"].min() and batch["observation.image"].max() <= 1.0
    assert batch["observation.state"].shape == (2, 2) and batch["task"] == ["push the T"] * 2
    for env in envs:
        env.close()


@pytest.mark.slow
def test_lerobot_eval_cli_on_a_trained_checkpoint(tmp_path):
    out = tmp_path / "train"
    interface_file = tl.WS / "config" / "robots" / "sim_so101.yaml"
    tl.run_train_in_process(tl.train_flags(out, f"--robot_interface={interface_file}", steps=1, save_freq=1))
    checkpoint = out / "checkpoints" / "last" / "pretrained_model"
    stored = json.loads((checkpoint / "robot_interface.json").read_text())
    assert stored["interface"]["fps"] == 30 and stored["interface"]["observation"]["images"]["front"]["width"] == 640
    result = tl.run_cli(["-m", "lerobot_train.eval", f"--policy.path={checkpoint}", "--env.type=so101_reach",
                         "--env.image_height=32", "--env.image_width=40", "--env.episode_length=6",
                         "--eval.n_episodes=2", "--eval.batch_size=2", "--max_episodes_rendered=1", "--seed=5",
                         f"--output_dir={tmp_path / 'eval'}", "--policy.device=cpu"])
    assert result.returncode == 0, result.stderr[-3000:]
    assert "success rate:" in result.stdout and "mean episode length: " in result.stdout
    info = json.loads((tmp_path / "eval" / "eval_info.json").read_text())
    assert info["overall"]["n_episodes"] == 2 and [e["seed"] for e in info["per_episode"]] == [5, 6]
    assert (tmp_path / "eval" / "videos" / "eval_episode_0.mp4").stat().st_size > 0
    wrong = tl.run_cli(["-m", "lerobot_train.eval", f"--policy.path={checkpoint}", "--env.type=so101_reach",
                        "--env.image_height=48", "--env.image_width=64", "--eval.n_episodes=1", "--eval.batch_size=1",
                        f"--output_dir={tmp_path / 'eval2'}"])
    assert wrong.returncode == 2 and "Traceback" not in wrong.stderr
    assert "observation.images.front: the environment gives shape (3, 48, 64), the policy was trained on (3, 32, 40)" \
        in wrong.stderr
