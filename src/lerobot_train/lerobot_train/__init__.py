"""Offline training of LeRobot-compatible policies from LeRobotDataset v3.0 (never imports rclpy)."""
