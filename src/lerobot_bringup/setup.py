"""lerobot_bringup installs the workspace's top-level launch/ and config/ (reached through the symlinks beside this
file, so they stay the single source) into share/lerobot_bringup/, where `ros2 launch lerobot_bringup ...`,
`lerobot-bringup <name>` and interface names (`so101`, `koch`, ...) find them from any folder."""
import glob
import os

from setuptools import find_packages, setup

PACKAGE = "lerobot_bringup"
HERE = os.path.dirname(os.path.abspath(__file__))


def share_tree(folder: str) -> list[tuple[str, list[str]]]:
    """data_files entries that mirror `folder` (a symlink to a top-level folder) under share/<package>/."""
    entries: dict[str, list[str]] = {}
    for path in sorted(glob.glob(os.path.join(folder, "**", "*"), recursive=True)):
        if os.path.isfile(os.path.join(HERE, path)):
            entries.setdefault(os.path.join("share", PACKAGE, os.path.dirname(path)), []).append(path)
    return sorted(entries.items())


setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + PACKAGE]),
        ("share/" + PACKAGE, ["package.xml"]),
        ("share/" + PACKAGE + "/urdf", sorted(glob.glob("urdf/*.urdf"))),  # robot descriptions (SO-101, Koch)
        ("share/" + PACKAGE + "/rviz", sorted(glob.glob("rviz/*.rviz"))),  # saved rviz views
        *share_tree("launch"),
        *share_tree("config"),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="lerobot_ros maintainers",
    maintainer_email="maintainers@lerobot-ros.dev",
    description="The bringup runner, launch files and configs that start the whole loop; the demo.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "lerobot-bringup = lerobot_bringup.cli:main",
            "lerobot-demo = lerobot_bringup.demo:main",
            "robot_view = lerobot_bringup.nodes.robot_view_node:main",
        ],
    },
)
