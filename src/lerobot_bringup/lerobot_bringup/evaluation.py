"""Scoring the reaching task: evaluation cube positions, episode outcomes, the success table (no ROS here).

Every method is scored on the same cube positions, drawn from one seed with the scene's own sampler (the area
where the recording's cubes are drawn too, but other positions). An episode succeeds when the simulated scene
reports the fingertips within its reach radius of the cube; time to reach runs from the start of the episode
(the policy run or the trajectory being sent) to the first "reached".
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass

import numpy as np

from lerobot_drivers.sim.kinematics import JOINT_NAMES, forward_kinematics
from lerobot_drivers.sim.scene import ReachingScene, SceneConfig, TargetSampler
from lerobot_drivers.sim.scripted_operator import HOME, JointPath, plan_home, plan_reach

LIVE = "live"
SCENE_MODEL = "scene model"


def evaluation_targets(seed: int, count: int, config: SceneConfig = SceneConfig()) -> list[np.ndarray]:
    """`count` cube positions (x, y on the table, metres) from the scene's sampler with `seed`."""
    sampler = TargetSampler(config, seed)
    return [sampler.sample() for _ in range(count)]


def home_joints() -> np.ndarray:
    """The scripted operator's home pose (suite units, JOINT_NAMES order): where every episode starts."""
    return np.array([HOME[name] for name in JOINT_NAMES])


def sample_path(path: JointPath, rate_hz: float) -> tuple[np.ndarray, np.ndarray]:
    """(times from start in s, positions (K, 6)) of a joint path at `rate_hz`, its end point included."""
    times = np.arange(0.0, path.duration, 1.0 / rate_hz)
    times = np.append(times, path.duration)
    return times, np.stack([path.at(t) for t in times])


def home_path(current: np.ndarray) -> JointPath:
    return plan_home(dict(zip(JOINT_NAMES, map(float, current))))


def scripted_reach_path(current: np.ndarray, target_xy: np.ndarray, config: SceneConfig = SceneConfig()) -> JointPath:
    """The scripted operator's demonstration from `current` to the cube at `target_xy` (its top centre)."""
    target = np.array([target_xy[0], target_xy[1], config.target_size])
    return plan_reach(dict(zip(JOINT_NAMES, map(float, current))), target)


@dataclass(frozen=True)
class EpisodeOutcome:
    method: str
    episode: int
    target_xy: tuple[float, float]
    reached: bool
    time_to_reach_s: float | None  # None when not reached
    joints_at_reach: tuple[float, ...] | None = None  # the arm when it reached the cube (JOINT_NAMES, suite units)


@dataclass(frozen=True)
class MethodSummary:
    method: str
    evaluated: str  # LIVE (on the running robot graph) or SCENE_MODEL (computed from the scene's geometry)
    episodes: int
    successes: int
    mean_time_to_reach_s: float | None
    median_time_to_reach_s: float | None

    @property
    def success_rate(self) -> float:
        return self.successes / self.episodes if self.episodes else 0.0


def summarize(method: str, evaluated: str, outcomes: list[EpisodeOutcome]) -> MethodSummary:
    times = [o.time_to_reach_s for o in outcomes if o.reached and o.time_to_reach_s is not None]
    return MethodSummary(method, evaluated, len(outcomes), sum(o.reached for o in outcomes),
                         statistics.fmean(times) if times else None, statistics.median(times) if times else None)


def do_nothing_outcomes(targets: list[np.ndarray], config: SceneConfig = SceneConfig()) -> list[EpisodeOutcome]:
    """The do-nothing baseline in the scene model: the arm stays at home for the whole episode, so it succeeds
    exactly when the home pose's fingertips already are within the reach radius of the cube (the scene's test)."""
    scene = ReachingScene(config)
    pose = forward_kinematics(home_joints(), config.geometry)
    outcomes = []
    for index, target in enumerate(targets):
        scene.set_target(*target)
        reached = scene.is_reached(pose)
        outcomes.append(EpisodeOutcome("do nothing", index, (float(target[0]), float(target[1])), reached,
                                       0.0 if reached else None))
    return outcomes


def render_reach(outcome: EpisodeOutcome, path, width: int = 480, height: int = 360) -> None:
    """A PNG of the scene (the simulated camera's picture, larger) with the arm as it was when it reached the cube."""
    import cv2

    if outcome.joints_at_reach is None:
        raise ValueError(f"episode {outcome.episode} of {outcome.method} did not reach the cube: nothing to render")
    scene = ReachingScene(SceneConfig(width=width, height=height))
    scene.set_target(*outcome.target_xy)
    image = scene.render(np.asarray(outcome.joints_at_reach))
    if not cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
        raise OSError(f"cannot write {path}")


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


def format_table(summaries: list[MethodSummary]) -> str:
    """The success table, one row per method."""
    header = ("method", "evaluated", "success", "mean time to reach", "median time to reach")
    rows = [(s.method, s.evaluated, f"{s.successes}/{s.episodes} ({100 * s.success_rate:.0f} %)",
             _seconds(s.mean_time_to_reach_s), _seconds(s.median_time_to_reach_s)) for s in summaries]
    widths = [max(len(str(r[i])) for r in (header, *rows)) for i in range(len(header))]
    line = "-+-".join("-" * w for w in widths)
    out = [" | ".join(str(v).ljust(w) for v, w in zip(header, widths)), line]
    out += [" | ".join(str(v).ljust(w) for v, w in zip(row, widths)) for row in rows]
    return "\n".join(out)
