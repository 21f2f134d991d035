"""The package dependency graph follows the loop (ARCHITECTURE.md): no arrow runs back up it.

    msgs <- drivers <- recorder (image conversion, QoS, node helpers) ; dataset <- recorder ;
    dataset <- train <- policy_node -> recorder (interface) ; bringup -> everything

Read from the package.xml files, so a new <depend> that breaks the loop fails here, not on a user's machine.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

WORKSPACE = Path(__file__).resolve().parents[3]

# The workspace packages each package may depend on (directly).
ALLOWED = {
    "lerobot_msgs": set(),
    "lerobot_dataset": set(),
    "lerobot_drivers": {"lerobot_msgs"},
    "lerobot_recorder": {"lerobot_msgs", "lerobot_drivers", "lerobot_dataset"},
    "lerobot_train": {"lerobot_dataset"},
    "lerobot_policy_node": {"lerobot_msgs", "lerobot_drivers", "lerobot_dataset", "lerobot_recorder", "lerobot_train"},
    "lerobot_bringup": {"lerobot_msgs", "lerobot_drivers", "lerobot_dataset", "lerobot_recorder", "lerobot_train",
                        "lerobot_policy_node"},
}
DEPEND_TAGS = ("depend", "build_depend", "exec_depend", "build_export_depend", "buildtool_depend")


def workspace_dependencies() -> dict[str, set[str]]:
    packages = {}
    for manifest in sorted((WORKSPACE / "src").glob("*/package.xml")):
        root = ET.parse(manifest).getroot()
        packages[root.findtext("name")] = {e.text.strip() for tag in DEPEND_TAGS for e in root.iter(tag) if e.text}
    names = set(packages)
    return {name: deps & names for name, deps in packages.items()}


def test_every_package_is_placed_on_the_loop():
    assert set(workspace_dependencies()) == set(ALLOWED)


def test_no_dependency_runs_back_up_the_loop():
    wrong = {name: sorted(deps - ALLOWED[name]) for name, deps in workspace_dependencies().items()
             if deps - ALLOWED[name]}
    assert not wrong, f"dependencies against the loop (see ARCHITECTURE.md): {wrong}"


def test_the_graph_has_no_cycle():
    graph = workspace_dependencies()
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, f"dependency cycle: {' -> '.join(path + (name,))}"
        if name in done:
            return
        for dep in graph[name]:
            visit(dep, path + (name,))
        done.add(name)

    for name in graph:
        visit(name, ())


def test_ros_free_packages_do_not_depend_on_rclpy():
    """A training machine reads datasets without the ROS runtime (import-level checks live with those packages)."""
    for manifest in (WORKSPACE / "src" / "lerobot_dataset" / "package.xml", WORKSPACE / "src" / "lerobot_train" /
                     "package.xml"):
        root = ET.parse(manifest).getroot()
        deps = {e.text.strip() for tag in DEPEND_TAGS for e in root.iter(tag) if e.text}
        assert "rclpy" not in deps, f"{manifest} depends on rclpy"
