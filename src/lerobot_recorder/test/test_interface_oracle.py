"""Oracle: the SO-101 and Koch interface files give the features upstream lerobot 0.4.4 builds for those arms.

Upstream's robot classes need `draccus`, which the oracle venv lacks, so the motor order and robot name are read
from upstream's own so_follower.py / koch_follower.py sources, and the features are built by upstream's
`hw_to_dataset_features` + `combine_feature_dicts` exactly as `lerobot-record` combines action and observation.
"""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from oracle import oracle_env  # noqa: E402

from lerobot_recorder.interface import load_interface

pytestmark = pytest.mark.oracle

ROBOTS = Path(__file__).resolve().parents[3] / "config" / "robots"

SCRIPT = r"""
import json, re, sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
import oracle_shims  # noqa: F401  (before lerobot)
import lerobot
from lerobot.datasets.utils import combine_feature_dicts, hw_to_dataset_features

out = {}
for robot, module in [("so_follower", "so_follower"), ("koch_follower", "koch_follower")]:
    source = (Path(lerobot.__file__).parent / "robots" / module / f"{module}.py").read_text()
    name = re.search(r'^\s+name = "([^"]+)"', source, re.M).group(1)
    motors = re.findall(r'"(\w+)": Motor\(', source)
    hw = {f"{m}.pos": float for m in motors}
    camera = {"front": (480, 640, 3)}
    features = combine_feature_dicts(
        hw_to_dataset_features(hw, "action", True),
        hw_to_dataset_features({**hw, **camera}, "observation", True),
    )
    out[robot] = {"name": name, "features": {k: {**v, "shape": list(v["shape"])} for k, v in features.items()},
                  "order": list(features)}
print(json.dumps(out))
"""


def upstream_features() -> dict:
    python = oracle_env.ensure_oracle()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "AMENT_PREFIX_PATH")}
    proc = subprocess.run([str(python), "-c", SCRIPT, str(oracle_env.ORACLE_DIR)], capture_output=True, text=True,
                          timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def upstream():
    return upstream_features()


@pytest.mark.parametrize("file,robot", [("so101.yaml", "so_follower"), ("koch.yaml", "koch_follower"),
                                        ("sim_so101.yaml", "so_follower")])
def test_features_match_upstream(upstream, file, robot):
    interface = load_interface(ROBOTS / file)
    ours = interface.dataset_features()
    theirs = upstream[robot]
    assert interface.robot_type == theirs["name"]
    assert list(ours) == theirs["order"]
    assert {k: {**v, "shape": list(v["shape"])} for k, v in ours.items()} == theirs["features"]
