"""Teleoperators that jog joints: keyboard and gamepad cores (ROS-free)."""
