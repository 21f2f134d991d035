"""ros2 launch lerobot_bringup so101_record.launch.py [name:=value ...]: the processes of the bringup file so101_record.yaml.

The bringup file is found by name in the installed share/lerobot_bringup/config/bringup, so this works from any
folder. The pip environment (no ros2 launch) starts the same file with: lerobot-bringup so101_record
"""
from lerobot_bringup.launch_glue import generate_from_bringup

BRINGUP = "so101_record"


def generate_launch_description():
    return generate_from_bringup(BRINGUP)
