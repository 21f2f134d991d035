"""ros2 launch launch/so101_record.launch.py [name:=value ...]: the processes of config/bringup/so101_record.yaml.

The pip environment (no ros2 launch) starts the same file with: lerobot-bringup config/bringup/so101_record.yaml
"""
from pathlib import Path

from lerobot_bringup.launch_glue import generate_from_bringup

BRINGUP = Path(__file__).resolve().parent.parent / "config" / "bringup" / "so101_record.yaml"


def generate_launch_description():
    return generate_from_bringup(BRINGUP)
