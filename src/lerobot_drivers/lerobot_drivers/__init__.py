"""Servo buses (Feetech, Dynamixel), LeRobot-compatible calibration, SO-100/101 and Koch arms, cameras, teleoperators and their wire-level simulators as ROS 2 nodes."""
