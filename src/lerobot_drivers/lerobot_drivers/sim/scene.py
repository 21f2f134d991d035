"""A reaching-task scene for the simulated SO-101 and a CPU renderer of it (OpenCV drawing, no GPU).

The scene is a table, the arm (drawn from forward kinematics) with its shadow, and a coloured target cube whose
position is drawn from a seeded sampler between episodes. The picture is meant to be learnable by a visuomotor
policy: each link has its own colour, the shadow and the table grid give depth cues in the 3/4 view, and the cube
turns from red to green while the fingertips are within `reach_radius` of it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lerobot_drivers.sim.kinematics import SO101, ArmGeometry, ArmPose, forward_kinematics

# RGB colours
SKY = (188, 204, 222)
TABLE = (196, 170, 132)
GRID = (176, 150, 112)
SHADOW = (120, 104, 80)
BASE = (60, 60, 68)
UPPER_ARM = (235, 140, 30)
FOREARM = (240, 210, 40)
WRIST = (60, 110, 230)
JAW = (150, 60, 170)
JOINT = (40, 40, 40)
TIP = (255, 255, 255)
TARGET = (220, 30, 30)
TARGET_REACHED = (40, 200, 60)
LINK_COLOURS = {"upper_arm": UPPER_ARM, "forearm": FOREARM, "wrist": WRIST, "jaw": JAW}

TABLE_EXTENT = ((-0.15, 0.45), (-0.32, 0.32))  # x range, y range on z = 0 (metres)


@dataclass(frozen=True)
class ViewCamera:
    """Pinhole camera looking from `eye` at `look_at`; `up` fixes the image's up direction."""

    eye: tuple[float, float, float]
    look_at: tuple[float, float, float]
    up: tuple[float, float, float] = (0.0, 0.0, 1.0)
    horizontal_fov_deg: float = 55.0


VIEWS = {
    # the arm seen from the front-right and above: height and depth both readable
    "three_quarter": ViewCamera(eye=(0.55, -0.38, 0.42), look_at=(0.14, 0.0, 0.07)),
    # straight down, forward (+x) at the top of the image
    "top": ViewCamera(eye=(0.14, 0.0, 0.85), look_at=(0.14, 0.0, 0.0), up=(1.0, 0.0, 0.0)),
    # from the robot's right side
    "side": ViewCamera(eye=(0.14, -0.75, 0.16), look_at=(0.14, 0.0, 0.12)),
}


class Projector:
    """World (base frame) points -> pixel coordinates and depths for one view and image size."""

    def __init__(self, view: ViewCamera, width: int, height: int):
        eye = np.asarray(view.eye, float)
        forward = np.asarray(view.look_at, float) - eye
        forward /= np.linalg.norm(forward)
        right = np.cross(forward, np.asarray(view.up, float))
        right /= np.linalg.norm(right)
        down = np.cross(forward, right)
        self.rotation = np.stack([right, down, forward])  # rows: camera x (right), y (down), z (forward)
        self.eye = eye
        self.focal = (width / 2.0) / np.tan(np.radians(view.horizontal_fov_deg) / 2.0)
        self.centre = np.array([width / 2.0, height / 2.0])

    def camera_coords(self, points: np.ndarray) -> np.ndarray:
        return (np.atleast_2d(points) - self.eye) @ self.rotation.T

    def project(self, points) -> np.ndarray:
        """(N, 3) metres -> (N, 2) float pixels (x right, y down)."""
        cam = self.camera_coords(np.asarray(points, float))
        return self.focal * cam[:, :2] / cam[:, 2:3] + self.centre

    def depth(self, points) -> np.ndarray:
        return self.camera_coords(np.asarray(points, float))[:, 2]

    def pixels_per_metre(self, point) -> float:
        return float(self.focal / self.depth(point)[0])


@dataclass(frozen=True)
class SceneConfig:
    width: int = 640
    height: int = 480
    view: str = "three_quarter"
    target_size: float = 0.03  # cube edge (metres)
    reach_radius: float = 0.04  # fingertips within this distance of the cube's top centre count as reached
    target_min_radius: float = 0.13  # where targets are sampled: an annulus sector in front of the robot
    target_max_radius: float = 0.23
    target_max_angle: float = 1.0  # radians either side of straight ahead
    link_radius: float = 0.014
    geometry: ArmGeometry = SO101

    def __post_init__(self):
        if self.view not in VIEWS:
            raise ValueError(f"scene view must be one of {sorted(VIEWS)}, got {self.view!r}")
        if self.width < 32 or self.height < 32:
            raise ValueError(f"scene image must be at least 32x32, got {self.width}x{self.height}")
        if not 0 < self.target_min_radius < self.target_max_radius:
            raise ValueError("target_min_radius must be > 0 and < target_max_radius, got "
                             f"{self.target_min_radius} and {self.target_max_radius}")


class TargetSampler:
    """Target positions (x, y on the table) from a seeded generator: the same seed gives the same episodes."""

    def __init__(self, config: SceneConfig, seed: int = 0):
        self.config = config
        self._rng = np.random.default_rng(seed)

    def sample(self) -> np.ndarray:
        c = self.config
        # uniform over the area of the annulus sector, not over the radius
        r = np.sqrt(self._rng.uniform(c.target_min_radius ** 2, c.target_max_radius ** 2))
        angle = self._rng.uniform(-c.target_max_angle, c.target_max_angle)
        return np.array([r * np.cos(angle), r * np.sin(angle)])


class ReachingScene:
    """Scene state (target, reached) and its renderers, one per view. Not thread-safe; one owner calls it."""

    def __init__(self, config: SceneConfig = SceneConfig(), seed: int = 0):
        self.config = config
        self.sampler = TargetSampler(config, seed)
        self.target_xy = self.sampler.sample()
        self._renderers: dict[str, SceneRenderer] = {}
        self.projector = self.renderer(config.view).projector  # of the default view

    def renderer(self, view: str) -> "SceneRenderer":
        """The renderer of `view` (cached: its static background is drawn once)."""
        if view not in self._renderers:
            if view not in VIEWS:
                raise ValueError(f"scene view must be one of {sorted(VIEWS)}, got {view!r}")
            self._renderers[view] = SceneRenderer(self.config, VIEWS[view])
        return self._renderers[view]

    def render(self, joints, pose: ArmPose | None = None, view: str | None = None) -> np.ndarray:
        """HxWx3 RGB uint8 picture with the arm at `joints` (dict name->value or 6 values), default view."""
        pose = pose if pose is not None else forward_kinematics(joints, self.config.geometry)
        return self.renderer(view or self.config.view).render(self, pose)

    # --- task ----------------------------------------------------------------------------------------------
    @property
    def target_centre(self) -> np.ndarray:
        """Centre of the cube's top face (metres, base frame): the point to reach."""
        return np.array([self.target_xy[0], self.target_xy[1], self.config.target_size])

    def randomize_target(self) -> np.ndarray:
        self.target_xy = self.sampler.sample()
        return self.target_centre

    def set_target(self, x: float, y: float) -> np.ndarray:
        self.target_xy = np.array([float(x), float(y)])
        return self.target_centre

    def tip_distance(self, pose: ArmPose) -> float:
        return float(np.linalg.norm(pose.tip - self.target_centre))

    def is_reached(self, pose: ArmPose) -> bool:
        return self.tip_distance(pose) <= self.config.reach_radius


class SceneRenderer:
    """Draws a ReachingScene from one viewpoint; the table and grid are drawn once and copied per frame."""

    def __init__(self, config: SceneConfig, view: ViewCamera):
        import cv2

        cv2.setNumThreads(1)
        self.config = config
        self.projector = Projector(view, config.width, config.height)
        self._background = self._draw_background()

    def _px(self, points) -> np.ndarray:
        return np.round(self.projector.project(points) * 16).astype(np.int32)  # 4 fractional bits for cv2

    def _draw_background(self) -> np.ndarray:
        import cv2

        c = self.config
        image = np.empty((c.height, c.width, 3), np.uint8)
        image[:] = SKY
        (x0, x1), (y0, y1) = TABLE_EXTENT
        corners = np.array([[x0, y0, 0], [x1, y0, 0], [x1, y1, 0], [x0, y1, 0]])
        cv2.fillPoly(image, [self._px(corners)], TABLE, cv2.LINE_AA, shift=4)
        for x in np.arange(-0.1, x1 + 1e-9, 0.05):  # 5 cm grid: a ruler for the policy
            cv2.line(image, *self._px([[x, y0, 0], [x, y1, 0]]), GRID, 1, cv2.LINE_AA, shift=4)
        for y in np.arange(-0.3, y1 + 1e-9, 0.05):
            cv2.line(image, *self._px([[x0, y, 0], [x1, y, 0]]), GRID, 1, cv2.LINE_AA, shift=4)
        return image

    def _thickness(self, a, b, radius: float) -> int:
        mid = (np.asarray(a) + np.asarray(b)) / 2
        return max(2, int(round(2 * radius * self.projector.pixels_per_metre(mid))))

    def _draw_target(self, image: np.ndarray, target_xy, reached: bool) -> None:
        import cv2

        s = self.config.target_size
        x, y = target_xy
        h = s / 2
        corners = np.array([[x + dx, y + dy, z] for z in (0.0, s) for dx, dy in ((-h, -h), (h, -h), (h, h), (-h, h))])
        faces = [((4, 5, 6, 7), 1.0), ((0, 1, 5, 4), 0.75), ((1, 2, 6, 5), 0.85), ((2, 3, 7, 6), 0.75),
                 ((3, 0, 4, 7), 0.85)]
        colour = np.array(TARGET_REACHED if reached else TARGET, float)
        depths = self.projector.depth(corners)
        pixels = self._px(corners)
        # painter's order: farthest face first (the cube is convex, so this is exact)
        for face, shade in sorted(faces, key=lambda f: -depths[list(f[0])].mean()):
            cv2.fillPoly(image, [pixels[list(face)]], tuple(int(v) for v in colour * shade), cv2.LINE_AA, shift=4)

    def arm_segments(self, pose: ArmPose) -> list[tuple[str, np.ndarray, np.ndarray]]:
        return [("base", pose.base, pose.shoulder), ("upper_arm", pose.shoulder, pose.elbow),
                ("forearm", pose.elbow, pose.wrist), ("wrist", pose.wrist, pose.palm),
                ("jaw", pose.palm, pose.jaw_left), ("jaw", pose.palm, pose.jaw_right)]

    def render(self, scene: ReachingScene, pose: ArmPose) -> np.ndarray:
        import cv2

        image = self._background.copy()
        radius = self.config.link_radius
        segments = self.arm_segments(pose)
        # shadow straight down on the table (drawn first: it is under everything)
        for _, a, b in segments:
            flat_a, flat_b = a * [1, 1, 0], b * [1, 1, 0]
            cv2.line(image, *self._px([flat_a, flat_b]), SHADOW, self._thickness(flat_a, flat_b, radius * 0.8),
                     cv2.LINE_AA, shift=4)
        self._draw_target(image, scene.target_xy, scene.is_reached(pose))
        base_ring = np.array([[self.config.geometry.base_radius * np.cos(t), self.config.geometry.base_radius * np.sin(t),
                               0.0] for t in np.linspace(0, 2 * np.pi, 24, endpoint=False)])
        cv2.fillPoly(image, [self._px(base_ring)], BASE, cv2.LINE_AA, shift=4)
        depth = self.projector.depth
        for name, a, b in sorted(segments, key=lambda s: -float(depth(np.stack([s[1], s[2]])).mean())):
            colour = BASE if name == "base" else LINK_COLOURS[name]
            link_radius = radius * (1.6 if name == "base" else 0.5 if name == "jaw" else 1.0)
            cv2.line(image, *self._px([a, b]), colour, self._thickness(a, b, link_radius), cv2.LINE_AA, shift=4)
        for point in (pose.shoulder, pose.elbow, pose.wrist):
            r_px = max(2, int(round(radius * 0.9 * self.projector.pixels_per_metre(point))))
            cv2.circle(image, tuple(self._px([point])[0]), r_px * 16, JOINT, -1, cv2.LINE_AA, shift=4)
        cv2.circle(image, tuple(self._px([pose.tip])[0]), 2 * 16, TIP, -1, cv2.LINE_AA, shift=4)
        return image
