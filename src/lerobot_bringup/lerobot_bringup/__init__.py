"""Starting the whole loop: the bringup runner (`lerobot-bringup`), the launch glue for `ros2 launch`, the demo."""
