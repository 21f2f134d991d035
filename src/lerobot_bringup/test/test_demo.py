"""`make demo` end to end: the demo records on the simulated SO-101 through the pip bringup path and validates."""
import json
import sys

import pytest

from lerobot_dataset.reader import LeRobotDatasetReader

pytestmark = [pytest.mark.graph, pytest.mark.slow]


def test_demo_records_a_valid_dataset(spawn, tmp_path):
    output = tmp_path / "demo" / "sim_so101"
    demo = spawn([sys.executable, "-m", "lerobot_bringup.demo", "--output", str(output), "--episodes", "2",
                  "--episode-time", "3", "--reset-time", "1"], "demo")
    assert demo.popen.wait(timeout=400) == 0, demo.output()[-6000:]
    text = demo.output()
    assert "validation: OK" in text and f"dataset: {output}" in text
    info = json.loads((output / "meta" / "info.json").read_text())
    assert info["total_episodes"] == 2 and info["robot_type"] == "so_follower"
    reader = LeRobotDatasetReader(output)
    # The follower tracks the leader that the scripted operator moves: the arm really moved during an episode.
    states = [reader[i]["observation.state"] for i in range(len(reader))]
    spread = max(s[1] for s in states) - min(s[1] for s in states)  # shoulder_lift, degrees
    assert spread > 5.0, f"shoulder_lift barely moved ({spread:.2f} deg) in the demo dataset"
    assert reader[0]["task"] == "Reach the cube with the gripper."
